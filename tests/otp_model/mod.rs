//! A reference model of OTP's supervisor decisions, in plain Rust: children with their
//! restart types and significance, the three strategies, restart intensity (a window
//! long enough never to slide during a test), `terminate_child`, `restart_child`,
//! `delete_child`, `start_child`, Grace's `force_restart`, starts that fail (retried as
//! OTP's `try_again_restart`: each retry counts toward intensity), escalation and
//! `auto_shutdown`.
//!
//! It is written from OTP's `supervisor.erl`, not from Grace's code; the model-based
//! test drives both with the same operations and compares them after every step.
//! Restart counts are Grace's own bookkeeping (OTP has none): a child's count grows
//! each time a restart of it is initiated (by a failure, a group restart, a retry of
//! its own failed start, `restart_child` or `force_restart`), not again for a child
//! already waiting in a group.

#![allow(dead_code)]

use std::collections::HashMap;

/// OTP's restart types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Permanent,
    Transient,
    Temporary,
}

/// OTP's strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    OneForOne,
    OneForAll,
    RestForOne,
}

/// OTP 24's `auto_shutdown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auto {
    Never,
    AnySignificant,
    AllSignificant,
}

/// How the supervisor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `shutdown` was asked.
    Normal,
    /// Intensity exceeded.
    Failed,
    /// Its significant children ended.
    AutoShutdown,
}

/// What a call answers, as far as the test compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Ok,
    NoSuchChild,
    AlreadyExists,
    Running,
    /// A forced restart's group is still starting (a sibling's start failed and is
    /// retried).
    Restarting,
    StillRunning,
    StartFailed,
    InvalidSpec,
}

/// One child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub id: String,
    pub restart: Restart,
    pub significant: bool,
    pub running: bool,
    pub restarts: u64,
    /// Waiting to be started by a group restart in progress.
    pending: bool,
}

/// The supervisor.
#[derive(Debug, Clone)]
pub struct Model {
    pub strategy: Strategy,
    pub auto: Auto,
    max_restarts: u32,
    used: u32,
    pub children: Vec<Child>,
    pub exit: Option<Exit>,
    /// Starts still to fail, per child id.
    fail: HashMap<String, u32>,
    /// What a `force_restart` in progress answers.
    force_reply: Option<Reply>,
}

fn should_restart(r: Restart, abnormal: bool) -> bool {
    match r {
        Restart::Permanent => true,
        Restart::Transient => abnormal,
        Restart::Temporary => false,
    }
}

impl Model {
    pub fn new(strategy: Strategy, max_restarts: u32, auto: Auto) -> Model {
        Model {
            strategy,
            auto,
            max_restarts,
            used: 0,
            children: Vec::new(),
            exit: None,
            fail: HashMap::new(),
            force_reply: None,
        }
    }

    /// OTP's child spec check under this supervisor.
    pub fn valid(&self, restart: Restart, significant: bool) -> bool {
        !significant || (restart != Restart::Permanent && self.auto != Auto::Never)
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.id == id)
    }

    /// The next start of `id` fails this many more times.
    pub fn fail_starts(&mut self, id: &str, n: u32) {
        self.fail.insert(id.to_owned(), n);
    }

    fn attempt(&mut self, id: &str) -> bool {
        match self.fail.get_mut(id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        }
    }

    /// `start_child`: added at the end and started; not kept if its start fails.
    pub fn start_child(&mut self, id: &str, restart: Restart, significant: bool) -> Reply {
        if !self.valid(restart, significant) {
            return Reply::InvalidSpec;
        }
        if self.find(id).is_some() {
            return Reply::AlreadyExists;
        }
        if !self.attempt(id) {
            return Reply::StartFailed;
        }
        self.children.push(Child {
            id: id.to_owned(),
            restart,
            significant,
            running: true,
            restarts: 0,
            pending: false,
        });
        Reply::Ok
    }

    /// A child ends by itself: a crash (`abnormal`) or a normal exit.
    pub fn exit_child(&mut self, i: usize, abnormal: bool) {
        self.children[i].running = false;
        self.decide(i, abnormal, false, Vec::new());
    }

    /// `terminate_child`: stopped, not a failure; a temporary child is deleted.
    pub fn terminate_child(&mut self, id: &str) -> Reply {
        let Some(i) = self.find(id) else {
            return Reply::NoSuchChild;
        };
        self.children[i].running = false;
        if self.children[i].restart == Restart::Temporary {
            self.children.remove(i);
        }
        Reply::Ok
    }

    /// `restart_child`: only a child that is down; no intensity, no strategy.
    pub fn restart_child(&mut self, id: &str) -> Reply {
        let Some(i) = self.find(id) else {
            return Reply::NoSuchChild;
        };
        if self.children[i].running {
            return Reply::Running;
        }
        self.start_alone(i)
    }

    fn start_alone(&mut self, i: usize) -> Reply {
        self.children[i].restarts += 1;
        let id = self.children[i].id.clone();
        if self.attempt(&id) {
            self.children[i].running = true;
            Reply::Ok
        } else {
            Reply::StartFailed
        }
    }

    /// `delete_child`: only a child that is down.
    pub fn delete_child(&mut self, id: &str) -> Reply {
        let Some(i) = self.find(id) else {
            return Reply::NoSuchChild;
        };
        if self.children[i].running {
            return Reply::StillRunning;
        }
        self.children.remove(i);
        Reply::Ok
    }

    /// Grace's `force_restart`: a running child is taken down as by a failure and
    /// restarted whatever its type; a child that is down is started alone.
    pub fn force_restart(&mut self, id: &str) -> Reply {
        let Some(i) = self.find(id) else {
            return Reply::NoSuchChild;
        };
        if !self.children[i].running {
            return self.start_alone(i);
        }
        self.children[i].running = false;
        self.force_reply = None;
        self.decide(i, true, true, Vec::new());
        self.force_reply.take().unwrap_or(Reply::Ok)
    }

    /// `shutdown`.
    pub fn shutdown(&mut self) {
        self.stop_all();
        self.exit = Some(Exit::Normal);
    }

    fn stop_all(&mut self) {
        for c in &mut self.children {
            c.running = false;
            c.pending = false;
        }
    }

    fn auto_shutdown_due(&self) -> bool {
        match self.auto {
            Auto::Never => false,
            Auto::AnySignificant => true,
            Auto::AllSignificant => !self
                .children
                .iter()
                .any(|c| c.significant && (c.running || c.pending)),
        }
    }

    /// OTP's `do_restart` and `restart/2` for child `i`, down now.
    fn decide(&mut self, i: usize, abnormal: bool, force: bool, rest: Vec<String>) {
        self.children[i].pending = false;
        let c = self.children[i].clone();
        if !(force || should_restart(c.restart, abnormal)) {
            if c.restart == Restart::Temporary {
                self.children.remove(i);
            }
            if c.significant && self.auto_shutdown_due() {
                self.stop_all();
                self.exit = Some(Exit::AutoShutdown);
                return;
            }
            self.start_group(rest, None);
            return;
        }
        if self.used >= self.max_restarts {
            self.stop_all();
            self.exit = Some(Exit::Failed);
            if force {
                self.force_reply = Some(Reply::StartFailed);
            }
            return;
        }
        self.used += 1;
        let scope: Vec<usize> = match self.strategy {
            Strategy::OneForOne => vec![i],
            Strategy::RestForOne => (i..self.children.len()).collect(),
            Strategy::OneForAll => (0..self.children.len()).collect(),
        };
        let mut group = Vec::new();
        let mut retired = Vec::new();
        for k in scope {
            let child = &mut self.children[k];
            if k != i && child.restart == Restart::Temporary {
                if child.running || child.pending {
                    retired.push(child.id.clone());
                }
                continue;
            }
            child.running = false;
            if !child.pending {
                child.restarts += 1;
                child.pending = true;
            }
            group.push(child.id.clone());
        }
        self.children.retain(|c| !retired.contains(&c.id));
        let reply_for = force.then(|| c.id.clone());
        self.start_group(group, reply_for);
    }

    /// Starts the waiting children of `group` in order; at the first failed start,
    /// that child is retried (a new failure of it), the rest still waiting.
    fn start_group(&mut self, group: Vec<String>, reply_for: Option<String>) {
        for (n, id) in group.iter().enumerate() {
            let Some(k) = self.find(id) else {
                continue;
            };
            if self.children[k].running || !self.children[k].pending {
                continue;
            }
            self.children[k].pending = false;
            let ok = self.attempt(id);
            if reply_for.as_deref() == Some(id.as_str()) {
                self.force_reply = Some(if ok { Reply::Ok } else { Reply::StartFailed });
            }
            if ok {
                self.children[k].running = true;
                continue;
            }
            if reply_for.is_some() && self.force_reply.is_none() {
                self.force_reply = Some(Reply::Restarting);
            }
            self.children[k].pending = true;
            let rest = group[n + 1..].to_vec();
            self.decide(k, true, false, rest);
            return;
        }
    }
}
