//! One sender per Alertmanager in a process: a thread with a runtime of its own that
//! keeps the alerts still firing, posts each change at once, posts the firing alerts
//! again every resend interval, and retries a failed post with backoff (1 s, doubling up
//! to the resend interval). Ends and events not yet delivered wait in a bounded queue.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::model::{Change, PostableAlert};

/// Where and how often to post.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    /// The Alertmanager, `http://host:port[/prefix]`.
    pub url: String,
    /// The bound on one post.
    pub timeout: Duration,
    /// How often firing alerts are posted again.
    pub resend: Duration,
}

/// Ends and events not yet delivered are kept up to this many; past it the oldest are
/// dropped (and counted in the log).
const MAX_PENDING: usize = 1000;
/// The first retry after a failed post; it doubles up to the resend interval.
const FIRST_RETRY: Duration = Duration::from_secs(1);

type Senders = Mutex<HashMap<Target, mpsc::UnboundedSender<Change>>>;

/// Queues `change` for `target`'s sender, starting the sender on first use (or again,
/// should its thread have ended).
pub(crate) fn submit(target: &Target, change: Change) {
    static SENDERS: OnceLock<Senders> = OnceLock::new();
    let mut senders = SENDERS.get_or_init(Senders::default).lock();
    let change = match senders.get(target) {
        Some(tx) => match tx.send(change) {
            Ok(()) => return,
            Err(mpsc::error::SendError(c)) => c,
        },
        None => change,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(change);
    let t = target.clone();
    let started = std::thread::Builder::new()
        .name("grace-alertmanager".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run(t, rx)),
                Err(e) => tracing::error!(error = %e, "cannot start the Alertmanager sender"),
            }
        });
    match started {
        Ok(_) => {
            senders.insert(target.clone(), tx);
        }
        Err(e) => {
            tracing::error!(error = %e, url = %target.url, "cannot start the Alertmanager sender")
        }
    }
}

async fn run(target: Target, mut rx: mpsc::UnboundedReceiver<Change>) {
    let mut out = Outbox::default();
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            c = rx.recv() => {
                let Some(c) = c else { return };
                out.apply(c);
                while let Ok(c) = rx.try_recv() {
                    out.apply(c);
                }
            }
            _ = tokio::time::sleep_until(next) => {}
        }
        next = tokio::time::Instant::now() + out.flush(&target).await;
    }
}

/// The alerts a sender owes Alertmanager.
#[derive(Debug, Default)]
struct Outbox {
    /// Alerts of open incidents, by (incident, alertname).
    firing: BTreeMap<(String, String), PostableAlert>,
    /// Ends and events not yet delivered, oldest first.
    pending: VecDeque<PostableAlert>,
    /// Posts failed in a row.
    failures: u32,
    /// Pending alerts dropped since the last delivery.
    dropped: usize,
}

impl Outbox {
    fn apply(&mut self, change: Change) {
        match change {
            Change::Fire {
                incident_id,
                mut alert,
            } => {
                let name = alert.labels.get("alertname").cloned().unwrap_or_default();
                let key = (incident_id, name);
                if let Some(old) = self.firing.get(&key) {
                    // The same alert again: it keeps firing since it first did.
                    alert.starts_at.clone_from(&old.starts_at);
                }
                self.firing.insert(key, alert);
            }
            Change::End {
                incident_id,
                at,
                notice,
            } => {
                let keys: Vec<(String, String)> = self
                    .firing
                    .range((incident_id.clone(), String::new())..)
                    .take_while(|((id, _), _)| *id == incident_id)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    if let Some(mut a) = self.firing.remove(&k) {
                        // Same RFC 3339 shape, so the strings order as the times do.
                        a.ends_at = Some(at.clone().max(a.starts_at.clone()));
                        self.queue(a);
                    }
                }
                if let Some(n) = notice {
                    self.queue(n);
                }
            }
            Change::Event(a) => self.queue(a),
        }
    }

    fn queue(&mut self, a: PostableAlert) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.pending.push_back(a);
    }

    /// Posts every firing and pending alert; returns how long until the next post.
    async fn flush(&mut self, target: &Target) -> Duration {
        if self.firing.is_empty() && self.pending.is_empty() {
            return target.resend;
        }
        let batch: Vec<&PostableAlert> = self.firing.values().chain(&self.pending).collect();
        let posted = match serde_json::to_vec(&batch) {
            Ok(body) => post(target, body).await,
            Err(e) => Err(e.to_string()),
        };
        match posted {
            Ok(()) => {
                if self.failures > 0 || self.dropped > 0 {
                    tracing::info!(url = %target.url, failed_posts = self.failures, dropped = self.dropped,
                        "alerts delivered to Alertmanager again");
                }
                self.pending.clear();
                self.failures = 0;
                self.dropped = 0;
                target.resend
            }
            Err(e) => {
                self.failures += 1;
                let retry = FIRST_RETRY
                    .saturating_mul(1 << self.failures.min(16).saturating_sub(1))
                    .min(target.resend);
                tracing::warn!(url = %target.url, error = %e, failures = self.failures,
                    firing = self.firing.len(), pending = self.pending.len(),
                    retry_in_ms = retry.as_millis() as u64, "cannot post alerts to Alertmanager; will retry");
                retry
            }
        }
    }
}

/// `POST <url>/api/v2/alerts` with `body`.
async fn post(target: &Target, body: Vec<u8>) -> Result<(), String> {
    let (host, port, prefix) = crate::alerts::notify::parse_http_url(&target.url)?;
    let path = format!(
        "{}/api/v2/alerts",
        prefix.split('?').next().unwrap_or("").trim_end_matches('/')
    );
    crate::alerts::notify::post_json(&host, port, &path, body, target.timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing(id: &str, name: &str, at: &str) -> Change {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_owned(), name.to_owned());
        labels.insert("incident_id".to_owned(), id.to_owned());
        Change::Fire {
            incident_id: id.to_owned(),
            alert: PostableAlert {
                labels,
                annotations: BTreeMap::new(),
                starts_at: at.to_owned(),
                ends_at: None,
                generator_url: None,
            },
        }
    }

    #[test]
    fn an_end_ends_every_alert_of_its_incident_only() {
        let mut o = Outbox::default();
        o.apply(firing(
            "inc_1",
            "GraceIncidentOpened",
            "2025-01-01T00:00:01.000000Z",
        ));
        o.apply(firing(
            "inc_1",
            "GraceIncidentOpened",
            "2025-01-01T00:00:05.000000Z",
        ));
        o.apply(firing(
            "inc_1",
            "GracePlaybookNotify",
            "2025-01-01T00:00:02.000000Z",
        ));
        o.apply(firing(
            "inc_10",
            "GraceIncidentOpened",
            "2025-01-01T00:00:03.000000Z",
        ));
        assert_eq!(o.firing.len(), 3);
        let first = &o.firing[&("inc_1".to_owned(), "GraceIncidentOpened".to_owned())];
        assert_eq!(
            first.starts_at, "2025-01-01T00:00:01.000000Z",
            "re-raised keeps its start"
        );
        o.apply(Change::End {
            incident_id: "inc_1".to_owned(),
            at: "2025-01-01T00:01:00.000000Z".to_owned(),
            notice: None,
        });
        assert_eq!(o.firing.len(), 1, "inc_10 still fires");
        assert_eq!(o.pending.len(), 2);
        assert!(o
            .pending
            .iter()
            .all(|a| a.ends_at.as_deref() == Some("2025-01-01T00:01:00.000000Z")));
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut o = Outbox::default();
        for i in 0..MAX_PENDING + 5 {
            o.apply(Change::End {
                incident_id: "none".to_owned(),
                at: String::new(),
                notice: match firing(&i.to_string(), "N", "t") {
                    Change::Fire { alert, .. } => Some(alert),
                    _ => None,
                },
            });
        }
        assert_eq!(o.pending.len(), MAX_PENDING);
        assert_eq!(o.dropped, 5);
        assert_eq!(o.pending[0].labels["incident_id"], "5");
    }
}
