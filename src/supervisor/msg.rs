//! What a supervisor is asked (its mailbox type) and how its calls fail.

use ractor::RpcReplyPort;

use super::spec::{ChildInfo, ChildSpec, Counts, Started};

/// Why a supervisor call failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupervisorError {
    /// No child with that id.
    #[error("no child named {0:?} in this supervisor")]
    NoSuchChild(String),
    /// A child with that id exists already.
    #[error("a child named {0:?} already exists; names must be unique among siblings")]
    AlreadyExists(String),
    /// The dynamic supervisor is full.
    #[error("supervisor {name} already has its maximum of {max} children; raise max_children")]
    MaxChildren {
        /// The supervisor.
        name: String,
        /// Its bound.
        max: usize,
    },
    /// The child failed to start.
    #[error("child {id} failed to start: {reason}")]
    StartFailed {
        /// The child.
        id: String,
        /// Why.
        reason: String,
    },
    /// The supervisor is not running.
    #[error("supervisor {0} is not running")]
    NotRunning(String),
    /// The child runs; it must be terminated before it can be deleted.
    #[error("child {0:?} is running; terminate it before deleting it")]
    StillRunning(String),
    /// `restart_child` of a running child (OTP `{error, running}`).
    #[error("child {0:?} is running; terminate it first, or use force_restart")]
    Running(String),
    /// The child is waiting for a restart already (a backoff, or a start to try again).
    #[error("child {0:?} is being restarted; wait for it, or use force_restart")]
    Restarting(String),
    /// Another supervisor's kernel holds the name (OTP `{error, {already_started, Pid}}`).
    #[error("kernel name {name:?} is held by another supervisor ({holder}); kernel names are unique across the tree")]
    NameTaken {
        /// The name.
        name: String,
        /// The supervisor that holds it.
        holder: String,
    },
    /// The spec is invalid; nothing was started.
    #[error("invalid spec for {name}: {reason}")]
    InvalidSpec {
        /// The supervisor or child.
        name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// The mailbox type of every supervisor actor.
#[derive(Debug)]
#[non_exhaustive]
pub enum SupervisorMsg {
    /// `which_children`.
    WhichChildren(RpcReplyPort<Vec<ChildInfo>>),
    /// `count_children`.
    CountChildren(RpcReplyPort<Counts>),
    /// Adds and starts a child (any supervisor; bounded by `max_children`).
    StartChild(
        Box<ChildSpec>,
        RpcReplyPort<Result<Started, SupervisorError>>,
    ),
    /// Stops a child gracefully (OTP `terminate_child`); a temporary child is forgotten,
    /// any other keeps its spec.
    TerminateChild(String, RpcReplyPort<Result<(), SupervisorError>>),
    /// Starts a child that is not running (OTP `restart_child`): `Running` if it runs,
    /// `Restarting` if a restart is pending; a failed start leaves it down. Does not
    /// count toward intensity.
    RestartChild(String, RpcReplyPort<Result<Started, SupervisorError>>),
    /// Restarts a child now, running or not, with a reason (e.g. `heartbeat_timeout`):
    /// a running child is taken down (killed at once for `heartbeat_timeout`) and its
    /// supervisor's strategy applies as to a failure, counted toward intensity, without
    /// backoff or attempt limit. A child that is down is started as by `RestartChild`.
    ForceRestart {
        /// The child.
        id: String,
        /// Why.
        reason: String,
        /// Answered once the child runs again (or did not start).
        reply: Option<RpcReplyPort<Result<(), SupervisorError>>>,
    },
    /// Removes a stopped child's spec (OTP `delete_child`).
    DeleteChild(String, RpcReplyPort<Result<(), SupervisorError>>),
    /// A child's spec (OTP `get_childspec`).
    GetChildspec(String, RpcReplyPort<Result<ChildSpec, SupervisorError>>),
    /// The handle of a nested supervisor child (its current incarnation).
    ChildSupervisor(
        String,
        RpcReplyPort<Result<super::SupervisorHandle, SupervisorError>>,
    ),
    /// What a supervisor sends itself; not constructible outside it.
    Internal(Internal),
}

/// A message a supervisor sends itself (a timer, a retry).
#[derive(Debug)]
pub struct Internal(pub(crate) InternalMsg);

#[derive(Debug)]
pub(crate) enum InternalMsg {
    /// A backoff delay for a child has elapsed: start its group now.
    BackoffElapsed(String),
    /// A restart whose start failed is tried again (OTP's `try_again_restart`), after
    /// the calls that arrived meanwhile.
    TryAgain(String),
}
