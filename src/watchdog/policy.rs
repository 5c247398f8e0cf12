//! The watchdog's decisions as plain functions: what a run's end means, when to start
//! serve again, when to pause, what a health probe means, how the kill switch moves the
//! watchdog. The actor only carries these decisions out.

use std::time::Duration;

use super::WatchdogConfig;

/// How a run of serve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// It exited on its own with this status.
    Code(i32),
    /// A signal we did not send killed it.
    Signal(i32),
    /// It exited with [`crate::serve::EXIT_RESTART_REQUESTED`]: replace it, not a crash.
    RestartRequested,
    /// Its health probe failed too many times in a row; we killed it.
    Hung,
    /// It did not answer `GET /health` with 200 within `ready_timeout`; we killed it.
    NeverReady,
}

impl ExitKind {
    /// Classifies a wait status: exit code or terminating signal.
    pub fn from_status(code: Option<i32>, signal: Option<i32>) -> ExitKind {
        match (code, signal) {
            (Some(c), _) if c == crate::serve::EXIT_RESTART_REQUESTED => ExitKind::RestartRequested,
            (Some(c), _) => ExitKind::Code(c),
            (None, Some(s)) => ExitKind::Signal(s),
            (None, None) => ExitKind::Code(-1),
        }
    }

    /// The class of the end, one of a fixed few (`exited`, `killed`, `restart_requested`,
    /// `hung`, `never_ready`): what `state.json` counts restarts by and `/metrics` labels
    /// them with.
    pub fn cause(&self) -> &'static str {
        match self {
            ExitKind::Code(_) => "exited",
            ExitKind::Signal(_) => "killed",
            ExitKind::RestartRequested => "restart_requested",
            ExitKind::Hung => "hung",
            ExitKind::NeverReady => "never_ready",
        }
    }

    /// The reason recorded in `state.json` and the log.
    pub fn reason(&self) -> String {
        match self {
            ExitKind::Code(c) => format!("exited with status {c}"),
            ExitKind::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(*s)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| format!("signal {s}"));
                format!("killed by {name}")
            }
            ExitKind::RestartRequested => "restart requested".to_owned(),
            ExitKind::Hung => "hung: health probe failed".to_owned(),
            ExitKind::NeverReady => "never became healthy".to_owned(),
        }
    }
}

/// The end of one run of serve, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEnd {
    /// How it ended.
    pub kind: ExitKind,
    /// How long it ran.
    pub uptime: Duration,
    /// Whether it ever answered `GET /health` with 200 (or was not probed at all).
    pub was_ready: bool,
}

/// What to do after a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Start serve again after this delay (zero: at once).
    Restart(Duration),
    /// Too many failed starts: raise a critical alert, wait this long, then start again.
    Pause(Duration),
    /// The kill switch is set: leave serve down.
    StayStopped,
}

/// Whether a run that ended this way was a failed start: it died before `min_uptime`
/// or never became healthy, whatever its exit status (a serve that asks for a restart
/// before it has served is failing to start, not restarting on purpose).
pub fn is_failed_start(end: &RunEnd, min_uptime: Duration) -> bool {
    !end.was_ready || end.uptime < min_uptime
}

/// Decides what follows the end of a run, given the failed starts in a row so far.
/// Returns the decision and the new count of failed starts in a row. `jitter` is a
/// sample in [-1, 1].
pub fn after_exit(
    cfg: &WatchdogConfig,
    failures: u32,
    end: &RunEnd,
    manual_shutdown: bool,
    jitter: f64,
) -> (Next, u32) {
    if manual_shutdown {
        return (Next::StayStopped, failures);
    }
    if end.kind == ExitKind::Code(crate::serve::EXIT_BAD_CONFIG) {
        // Serve refused its configuration: starting it again at once cannot help (as
        // systemd's RestartPreventExitStatus). Pause, with the critical alert a pause
        // raises, and try again after it, when someone may have fixed the file.
        return (Next::Pause(cfg.pause_after_failures), 0);
    }
    let failed = is_failed_start(end, cfg.min_uptime);
    if end.kind == ExitKind::RestartRequested && !failed {
        return (Next::Restart(Duration::ZERO), 0);
    }
    let failures = if failed {
        failures.saturating_add(1)
    } else {
        0
    };
    if failures >= cfg.max_consecutive_failures.max(1) {
        return (Next::Pause(cfg.pause_after_failures), 0);
    }
    (Next::Restart(backoff(cfg, failures, jitter)), failures)
}

/// The delay before the restart that follows `failures` failed starts in a row: none
/// for the first, then `backoff_initial` doubling per failure up to `backoff_max`, with
/// ±`backoff_jitter` of random spread (`jitter` in [-1, 1]).
pub fn backoff(cfg: &WatchdogConfig, failures: u32, jitter: f64) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let exp = (failures - 2).min(30);
    let base = cfg
        .backoff_initial
        .saturating_mul(1u32 << exp)
        .min(cfg.backoff_max);
    let spread = cfg.backoff_jitter.clamp(0.0, 1.0) * jitter.clamp(-1.0, 1.0);
    base.mul_f64((1.0 + spread).max(0.0))
}

/// What one health probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// 200 with the verdict `healthy` in the body.
    Healthy,
    /// 200 with another verdict (`degraded`: a kernel down, an incident open) or none:
    /// serve's tree answers, so it is up.
    Alive,
    /// Another HTTP status. The process answers, so it is not hung.
    Failing,
    /// No answer in time: refused, reset, timed out (a SIGSTOPped serve), malformed.
    NoAnswer,
}

/// The health bookkeeping of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    /// Answered 200 at least once.
    pub ready: bool,
    /// Probes in a row without an answer since it became ready.
    pub misses: u32,
}

/// The verdict after a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep running.
    Fine,
    /// It just became healthy for the first time.
    BecameReady,
    /// Kill it: hung.
    Hung,
    /// Kill it: not healthy within `ready_timeout`.
    NeverReady,
}

/// Folds one probe result into the run's health. Before it is ready, missing answers
/// are expected (it is starting) until `ready_timeout`; after, `health_failures` misses
/// in a row mean it hangs. It is ready at its first 200 (healthy or degraded); any
/// answer proves it alive.
pub fn on_probe(cfg: &WatchdogConfig, h: Health, p: Probe, uptime: Duration) -> (Health, Verdict) {
    match (h.ready, p) {
        (false, Probe::Healthy | Probe::Alive) => (
            Health {
                ready: true,
                misses: 0,
            },
            Verdict::BecameReady,
        ),
        (false, _) if uptime >= cfg.ready_timeout => (h, Verdict::NeverReady),
        (false, _) => (h, Verdict::Fine),
        (true, Probe::Healthy | Probe::Alive | Probe::Failing) => {
            (Health { misses: 0, ..h }, Verdict::Fine)
        }
        (true, Probe::NoAnswer) => {
            let misses = h.misses + 1;
            let v = if misses >= cfg.health_failures.max(1) {
                Verdict::Hung
            } else {
                Verdict::Fine
            };
            (Health { misses, ..h }, v)
        }
    }
}

/// Where the watchdog stands, as far as the kill switch is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Serve runs.
    Running,
    /// Waiting to start serve (backoff or pause).
    Waiting,
    /// Serve is down and stays down.
    Stopped,
}

/// What a (re-read) kill switch asks of the watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchAction {
    /// Nothing changes.
    Nothing,
    /// Stop serve gracefully (if it runs) and stay stopped.
    Stop,
    /// Start serve now, forgetting the failure count (an operator asked for it).
    StartNow,
}

/// The kill-switch transition: a set switch stops serve and keeps it down; a clear
/// switch starts serve at once unless it already runs.
pub fn on_switch(manual_shutdown: bool, phase: Phase) -> SwitchAction {
    match (manual_shutdown, phase) {
        (true, Phase::Running | Phase::Waiting) => SwitchAction::Stop,
        (true, Phase::Stopped) | (false, Phase::Running) => SwitchAction::Nothing,
        (false, Phase::Waiting | Phase::Stopped) => SwitchAction::StartNow,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_serve_that_refuses_its_configuration_is_paused_not_restarted_at_once() {
        let cfg = WatchdogConfig::default();
        let end = RunEnd {
            kind: ExitKind::from_status(Some(crate::serve::EXIT_BAD_CONFIG), None),
            uptime: Duration::from_millis(5),
            was_ready: false,
        };
        let (next, failures) = after_exit(&cfg, 0, &end, false, 0.0);
        assert_eq!(next, Next::Pause(cfg.pause_after_failures));
        assert_eq!(failures, 0);
    }
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> WatchdogConfig {
        WatchdogConfig {
            min_uptime: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            backoff_jitter: 0.2,
            max_consecutive_failures: 5,
            pause_after_failures: Duration::from_secs(60),
            ..WatchdogConfig::default()
        }
    }

    fn crash(uptime_ms: u64) -> RunEnd {
        RunEnd {
            kind: ExitKind::Code(1),
            uptime: Duration::from_millis(uptime_ms),
            was_ready: true,
        }
    }

    #[test]
    fn crash_loop_backs_off_then_pauses() {
        let c = cfg();
        let mut f = 0;
        let mut delays = Vec::new();
        for _ in 0..4 {
            let (next, nf) = after_exit(&c, f, &crash(10), false, 0.0);
            f = nf;
            delays.push(next);
        }
        assert_eq!(
            delays,
            vec![
                Next::Restart(Duration::ZERO),
                Next::Restart(Duration::from_millis(100)),
                Next::Restart(Duration::from_millis(200)),
                Next::Restart(Duration::from_millis(400)),
            ]
        );
        let (next, f) = after_exit(&c, f, &crash(10), false, 0.0);
        assert_eq!(next, Next::Pause(Duration::from_secs(60)));
        assert_eq!(f, 0);
    }

    #[test]
    fn a_stable_run_resets_and_restarts_at_once() {
        let (next, f) = after_exit(&cfg(), 3, &crash(60_000), false, 1.0);
        assert_eq!((next, f), (Next::Restart(Duration::ZERO), 0));
    }

    #[test]
    fn never_ready_is_a_failed_start_even_when_long() {
        let end = RunEnd {
            kind: ExitKind::NeverReady,
            uptime: Duration::from_secs(90),
            was_ready: false,
        };
        assert!(is_failed_start(&end, Duration::from_secs(30)));
    }

    #[test]
    fn a_restart_requested_after_serving_is_immediate_one_before_is_a_failed_start() {
        let kind = ExitKind::from_status(Some(crate::serve::EXIT_RESTART_REQUESTED), None);
        assert_eq!(kind, ExitKind::RestartRequested);
        let served = RunEnd {
            kind,
            uptime: Duration::from_secs(60),
            was_ready: true,
        };
        assert_eq!(
            after_exit(&cfg(), 4, &served, false, 0.5),
            (Next::Restart(Duration::ZERO), 0)
        );
        let early = RunEnd {
            kind,
            uptime: Duration::from_millis(5),
            was_ready: true,
        };
        assert!(is_failed_start(&early, cfg().min_uptime));
        let (next, f) = after_exit(&cfg(), 2, &early, false, 0.0);
        assert_eq!(f, 3);
        assert!(matches!(next, Next::Restart(d) if d > Duration::ZERO));
    }

    #[test]
    fn a_set_switch_keeps_serve_down() {
        assert_eq!(
            after_exit(&cfg(), 0, &crash(1), true, 0.0),
            (Next::StayStopped, 0)
        );
        assert_eq!(on_switch(true, Phase::Running), SwitchAction::Stop);
        assert_eq!(on_switch(true, Phase::Waiting), SwitchAction::Stop);
        assert_eq!(on_switch(true, Phase::Stopped), SwitchAction::Nothing);
        assert_eq!(on_switch(false, Phase::Stopped), SwitchAction::StartNow);
        assert_eq!(on_switch(false, Phase::Waiting), SwitchAction::StartNow);
        assert_eq!(on_switch(false, Phase::Running), SwitchAction::Nothing);
    }

    #[test]
    fn hang_needs_consecutive_misses_after_ready() {
        let c = WatchdogConfig {
            health_failures: 3,
            ready_timeout: Duration::from_secs(1),
            ..cfg()
        };
        let up = Duration::from_millis(10);
        let (h, v) = on_probe(&c, Health::default(), Probe::NoAnswer, up);
        assert_eq!(v, Verdict::Fine, "a starting serve may not answer yet");
        let (h, v) = on_probe(&c, h, Probe::Healthy, up);
        assert_eq!(v, Verdict::BecameReady);
        let (h, _) = on_probe(&c, h, Probe::NoAnswer, up);
        let (h, _) = on_probe(&c, h, Probe::NoAnswer, up);
        let (h, v) = on_probe(&c, h, Probe::Failing, up);
        assert_eq!(
            (h.misses, v),
            (0, Verdict::Fine),
            "failing answers reset misses"
        );
        let (h, _) = on_probe(&c, h, Probe::NoAnswer, up);
        let (h, _) = on_probe(&c, h, Probe::NoAnswer, up);
        let (_, v) = on_probe(&c, h, Probe::NoAnswer, up);
        assert_eq!(v, Verdict::Hung);
        let (_, v) = on_probe(
            &c,
            Health::default(),
            Probe::Failing,
            Duration::from_secs(2),
        );
        assert_eq!(v, Verdict::NeverReady);
        let (h, v) = on_probe(&c, Health::default(), Probe::Alive, up);
        assert_eq!(
            (h.ready, v),
            (true, Verdict::BecameReady),
            "a degraded serve is up"
        );
    }

    #[test]
    fn signals_are_named_and_ends_have_a_class() {
        let killed = ExitKind::from_status(None, Some(9));
        assert_eq!(killed.reason(), "killed by SIGKILL");
        assert_eq!(killed.cause(), "killed");
        assert_eq!(ExitKind::from_status(Some(1), None).cause(), "exited");
        let asked = ExitKind::from_status(Some(crate::serve::EXIT_RESTART_REQUESTED), None);
        assert_eq!(asked.cause(), "restart_requested");
    }

    proptest! {
        #[test]
        fn backoff_is_bounded_and_grows(f in 0u32..64, j in -1.0f64..=1.0) {
            let c = cfg();
            let d = backoff(&c, f, j);
            prop_assert!(d <= c.backoff_max.mul_f64(1.0 + c.backoff_jitter));
            prop_assert!(backoff(&c, f, 0.0) <= backoff(&c, f + 1, 0.0));
            if f <= 1 { prop_assert_eq!(d, Duration::ZERO); }
        }

        #[test]
        fn failures_never_reach_the_limit_without_a_pause(
            ups in proptest::collection::vec(0u64..100_000, 1..40),
            requested in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let c = cfg();
            let mut f = 0;
            for (i, up) in ups.iter().enumerate() {
                let mut end = crash(*up);
                if requested[i] { end.kind = ExitKind::RestartRequested; }
                let (next, nf) = after_exit(&c, f, &end, false, 0.0);
                prop_assert!(nf < c.max_consecutive_failures);
                if requested[i] && !is_failed_start(&end, c.min_uptime) { prop_assert_eq!(nf, 0); }
                if let Next::Pause(_) = next { prop_assert_eq!(nf, 0); }
                f = nf;
            }
        }
    }
}
