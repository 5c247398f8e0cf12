//! Root-cause classification: a pure function from [`Evidence`] to a [`Diagnosis`] with a
//! confidence and recommended fixes, each marked safe (applied automatically) or not
//! (escalated).
//!
//! Each cause gets a score from the signals that point to it; the best score wins when it
//! reaches [`MIN_CONFIDENCE`], ties going to the cause that explains the others (a down
//! dependency explains timeouts; exhausted resources explain crashes). Below that the
//! cause is `unknown`.

use serde::{Deserialize, Serialize};

use super::evidence::Evidence;
use super::recommend::fixes_for;

/// Below this score no cause is claimed.
pub const MIN_CONFIDENCE: f64 = 0.4;
/// The confidence reported with `unknown`.
pub const UNKNOWN_CONFIDENCE: f64 = 0.2;
/// No diagnosis is more certain than this.
pub const MAX_CONFIDENCE: f64 = 0.95;

/// The classes of root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootCause {
    /// Something the component needs is down.
    Dependency,
    /// CPU, memory or disk is exhausted.
    Resource,
    /// A configuration change or error.
    Configuration,
    /// A bug: a panic, or the same failure over and over.
    Code,
    /// Not enough evidence.
    Unknown,
}

impl RootCause {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RootCause::Dependency => "dependency",
            RootCause::Resource => "resource",
            RootCause::Configuration => "configuration",
            RootCause::Code => "code",
            RootCause::Unknown => "unknown",
        }
    }
}

/// What a fix does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FixAction {
    /// Restart a dependency that is down (through its supervisor).
    RestartDependency {
        /// The dependency.
        kernel: String,
    },
    /// Restart the component itself, after its dependencies.
    RestartComponent {
        /// The component.
        kernel: String,
    },
    /// Turn on load shedding in a kernel.
    ShedLoad {
        /// The kernel.
        kernel: String,
    },
    /// Drop a kernel's caches.
    ClearCaches {
        /// The kernel.
        kernel: String,
    },
    /// Restore drifted configuration from its snapshot (the `restore_from_snapshot`
    /// playbook), once a human confirmed the change was not intended.
    RestoreConfiguration {
        /// The drifted components.
        components: Vec<String>,
    },
    /// Free space on the state directory's file system.
    FreeDisk,
    /// Fix the code; the signature is the error to look for.
    FixCode {
        /// The error signature.
        signature: String,
    },
    /// Investigate by hand.
    Investigate,
}

/// A recommended fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// What it does.
    #[serde(flatten)]
    pub action: FixAction,
    /// Whether it may be applied without a human (it cannot make things worse).
    pub safe: bool,
    /// For humans.
    pub description: String,
}

/// The score of one cause and the signals behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The cause.
    pub cause: RootCause,
    /// Its score in [0, 1].
    pub score: f64,
    /// Why.
    pub signals: Vec<String>,
}

/// The result of classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The most likely root cause.
    pub root_cause: RootCause,
    /// How sure, in [0, 1].
    pub confidence: f64,
    /// The signals behind the chosen cause.
    pub signals: Vec<String>,
    /// Every cause with a score, best first.
    pub candidates: Vec<Candidate>,
    /// Recommended fixes, in the order to apply them.
    pub fixes: Vec<Fix>,
}

const DEPENDENCY_WORDS: &[&str] = &[
    "connection refused",
    "connection reset",
    "unavailable",
    "not running",
    "timed out",
    "timeout",
    "broken pipe",
    "no kernel named",
    "dependency",
    "upstream",
];
const RESOURCE_WORDS: &[&str] = &[
    "out of memory",
    "oom",
    "cannot allocate",
    "memory allocation",
    "no space left",
    "enospc",
    "disk full",
    "too many open files",
    "emfile",
    "resource temporarily unavailable",
];
const DISK_WORDS: &[&str] = &["no space left", "enospc", "disk full"];
const CONFIG_WORDS: &[&str] = &[
    "config",
    "configuration",
    "invalid value",
    "missing field",
    "unknown field",
    "parse error",
    "toml",
    "yaml",
    "permission denied",
    "no such file",
];
const PANIC_WORDS: &[&str] = &[
    "panic",
    "panicked",
    "unwrap",
    "index out of bounds",
    "assertion",
    "overflow",
    "segmentation fault",
    "sigsegv",
    "null pointer",
    "unreachable",
];

/// Whether `text` holds `phrase` as whole words ("oom" is not in "boom").
fn has_phrase(text: &str, phrase: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(phrase).any(|(at, _)| {
        !word(text[..at].chars().next_back()) && !word(text[at + phrase.len()..].chars().next())
    })
}

fn mentions(text: &str, words: &[&str]) -> Option<String> {
    words
        .iter()
        .find(|w| has_phrase(text, w))
        .map(|w| (*w).to_owned())
}

fn text_of(e: &Evidence) -> String {
    let mut t = e.error.clone().unwrap_or_default();
    if let Some(r) = e.kernel.as_ref().and_then(|k| k.last_reason.as_ref()) {
        t.push(' ');
        t.push_str(r);
    }
    t.to_lowercase()
}

fn dependency(e: &Evidence, text: &str) -> Candidate {
    let mut score: f64 = 0.0;
    let mut signals = Vec::new();
    if !e.dependencies_down.is_empty() {
        let names: Vec<&str> = e
            .dependencies_down
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        signals.push(format!("dependencies down: {}", names.join(", ")));
        score = 0.6;
        if names.len() > 1 {
            score += 0.05;
        }
        let named = names.iter().any(|n| has_phrase(text, &n.to_lowercase()));
        if named {
            signals.push("the error names a dependency that is down".to_owned());
            score += 0.25;
        } else if let Some(w) = mentions(text, DEPENDENCY_WORDS) {
            signals.push(format!("the error says {w:?}"));
            score += 0.2;
        }
    } else if let Some(w) = mentions(text, DEPENDENCY_WORDS) {
        signals.push(format!("the error says {w:?}, but no dependency is down"));
        score = 0.3;
    }
    Candidate {
        cause: RootCause::Dependency,
        score,
        signals,
    }
}

/// Which resources are over their limits.
pub(super) struct Pressure {
    pub cpu: bool,
    pub memory: bool,
    pub disk: bool,
}

fn pressure(e: &Evidence) -> Pressure {
    let (r, t) = (&e.resources, &e.thresholds);
    Pressure {
        cpu: r.cpu_percent > t.cpu_percent,
        memory: r.memory_percent > t.memory_percent,
        disk: r.disk_percent.is_some_and(|d| d > t.disk_percent),
    }
}

fn resource(e: &Evidence, text: &str, p: &Pressure) -> Candidate {
    let (r, t) = (&e.resources, &e.thresholds);
    let mut signals = Vec::new();
    if p.cpu {
        signals.push(format!(
            "CPU at {:.0}% (limit {:.0}%)",
            r.cpu_percent, t.cpu_percent
        ));
    }
    if p.memory {
        signals.push(format!(
            "memory at {:.0}% (limit {:.0}%)",
            r.memory_percent, t.memory_percent
        ));
    }
    if p.disk {
        signals.push(format!(
            "disk at {:.0}% (limit {:.0}%)",
            r.disk_percent.unwrap_or_default(),
            t.disk_percent
        ));
    }
    let over = signals.len();
    let mut score = if over > 0 {
        0.55 + 0.1 * (over - 1) as f64
    } else {
        0.0
    };
    if let Some(w) = mentions(text, RESOURCE_WORDS) {
        signals.push(format!("the error says {w:?}"));
        score = if over > 0 { score + 0.25 } else { 0.7 };
    }
    Candidate {
        cause: RootCause::Resource,
        score,
        signals,
    }
}

fn configuration(e: &Evidence, text: &str) -> Candidate {
    let mut signals = Vec::new();
    let mine = e.drift.iter().any(|d| d.component == e.component);
    let mut score: f64 = if mine {
        signals.push(format!("config drift on {} recently", e.component));
        0.7
    } else if !e.drift.is_empty() {
        let names: Vec<&str> = e.drift.iter().map(|d| d.component.as_str()).collect();
        signals.push(format!("config drift recently on {}", names.join(", ")));
        0.5
    } else {
        0.0
    };
    if let Some(w) = mentions(text, CONFIG_WORDS) {
        signals.push(format!("the error says {w:?}"));
        score = if score > 0.0 { score + 0.2 } else { 0.45 };
    }
    Candidate {
        cause: RootCause::Configuration,
        score,
        signals,
    }
}

fn code(e: &Evidence, text: &str) -> Candidate {
    let mut signals = Vec::new();
    let mut score: f64 = 0.0;
    if let Some(w) = mentions(text, PANIC_WORDS) {
        signals.push(format!("the error is a crash ({w:?})"));
        score = 0.7;
    }
    let restarts = e.kernel.as_ref().map_or(0, |k| k.restarts);
    let repeats: u64 = e.incidents.iter().map(|i| i.occurrences).sum();
    if restarts >= 3 || repeats >= 3 {
        signals.push(format!(
            "the failure recurs ({restarts} restarts, {repeats} incident occurrences)"
        ));
        score = if score > 0.0 {
            score + 0.1
        } else if !text.trim().is_empty() {
            0.45
        } else {
            0.3
        };
    }
    Candidate {
        cause: RootCause::Code,
        score,
        signals,
    }
}

/// Classifies the root cause of the failure the evidence describes.
pub fn classify(e: &Evidence) -> Diagnosis {
    let text = text_of(e);
    let p = pressure(e);
    // Declaration order is the tie-break order.
    let mut candidates = vec![
        dependency(e, &text),
        resource(e, &text, &p),
        configuration(e, &text),
        code(e, &text),
    ];
    for c in &mut candidates {
        c.score = c.score.clamp(0.0, MAX_CONFIDENCE);
    }
    // Stable sort: equal scores keep the tie-break order.
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.retain(|c| c.score > 0.0);
    let (root_cause, confidence, signals) = match candidates.first() {
        Some(best) if best.score >= MIN_CONFIDENCE => {
            (best.cause, best.score, best.signals.clone())
        }
        _ => (
            RootCause::Unknown,
            UNKNOWN_CONFIDENCE,
            vec!["no cause has enough evidence".to_owned()],
        ),
    };
    let fixes = fixes_for(root_cause, e, &p, mentions(&text, DISK_WORDS).is_some());
    Diagnosis {
        root_cause,
        confidence,
        signals,
        candidates,
        fixes,
    }
}
