//! The shared bus state: the pending-event queue and the subscriptions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::{mpsc, Mutex};

use super::event::{Event, Topic};

/// Events waiting for the `message_bus` kernel; past this, publishing counts overflow.
pub const DEFAULT_QUEUE: usize = 65_536;
/// Events waiting in one subscriber's mailbox; past this, delivery to it counts a drop.
pub const DEFAULT_SUBSCRIBER_QUEUE: usize = 16_384;

/// A handle to the bus. Cheap to clone; every clone is the same bus.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Event>,
    rx: Mutex<mpsc::Receiver<Event>>,
    subs: DashMap<String, SubEntry>,
    published: AtomicU64,
    delivered: AtomicU64,
    overflow: AtomicU64,
    subscriber_drops: AtomicU64,
}

struct SubEntry {
    patterns: Vec<String>,
    tx: mpsc::Sender<Event>,
    rx: Arc<Mutex<mpsc::Receiver<Event>>>,
}

/// A subscriber's mailbox. Subscribing again under the same name returns the same
/// mailbox, so a subscriber that restarts picks up what arrived while it was down.
#[derive(Clone)]
pub struct Subscription {
    name: String,
    rx: Arc<Mutex<mpsc::Receiver<Event>>>,
}

/// Counters of the bus, for the dashboard and `/metrics`.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct BusStats {
    /// Events accepted by [`Bus::publish`].
    pub published: u64,
    /// Deliveries into subscriber mailboxes.
    pub delivered: u64,
    /// Events refused because the pending queue was full.
    pub overflow: u64,
    /// Deliveries refused because a subscriber's mailbox was full.
    pub subscriber_drops: u64,
    /// Events waiting for the pump.
    pub pending: u64,
    /// Number of subscriptions.
    pub subscribers: u64,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::with_capacity(DEFAULT_QUEUE)
    }
}

/// The one record of an event in the log: its topic as the message, at the topic's
/// level, with the component and the payload (JSON text).
fn log(event: &Event) {
    let topic = event.topic.as_str();
    let component = event.component.as_deref();
    let payload = &event.payload;
    match event.topic.log_level() {
        tracing::Level::ERROR => {
            tracing::error!(target: "grace::event", component, %payload, "{topic}")
        }
        tracing::Level::WARN => {
            tracing::warn!(target: "grace::event", component, %payload, "{topic}")
        }
        _ => tracing::info!(target: "grace::event", component, %payload, "{topic}"),
    }
}

impl Bus {
    /// A bus whose pending queue holds `capacity` events.
    pub fn with_capacity(capacity: usize) -> Bus {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Bus {
            inner: Arc::new(Inner {
                tx,
                rx: Mutex::new(rx),
                subs: DashMap::new(),
                published: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                overflow: AtomicU64::new(0),
                subscriber_drops: AtomicU64::new(0),
            }),
        }
    }

    /// Publishes an event. Never blocks: when the queue is full the event is counted as
    /// overflow and logged, and `false` is returned.
    pub fn publish(&self, event: Event) -> bool {
        log(&event);
        match self.inner.tx.try_send(event) {
            Ok(()) => {
                self.inner.published.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                let n = self.inner.overflow.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        overflow = n,
                        "event bus queue full; event counted as overflow"
                    );
                }
                false
            }
        }
    }

    /// Shorthand for `publish(Event::new(topic, component, payload))`.
    pub fn emit(&self, topic: Topic, component: Option<&str>, payload: impl Serialize) -> bool {
        self.publish(Event::new(topic, component, payload))
    }

    /// Subscribes `name` to the topics matching `patterns` (see [`Topic::matches`]).
    /// Idempotent per name: the patterns are replaced and the existing mailbox kept.
    pub fn subscribe(&self, name: &str, patterns: &[&str]) -> Subscription {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        let mut entry = self.inner.subs.entry(name.to_owned()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(DEFAULT_SUBSCRIBER_QUEUE);
            SubEntry {
                patterns: Vec::new(),
                tx,
                rx: Arc::new(Mutex::new(rx)),
            }
        });
        entry.patterns = patterns;
        Subscription {
            name: name.to_owned(),
            rx: entry.rx.clone(),
        }
    }

    /// Removes a subscription; its undelivered events are discarded.
    pub fn unsubscribe(&self, name: &str) {
        self.inner.subs.remove(name);
    }

    /// Moves pending events to the subscribers' mailboxes: waits up to `wait` for the
    /// first one, then takes up to `max` without waiting. Returns how many it moved.
    /// Only one pump runs at a time; a second caller waits for the first.
    pub async fn pump(&self, max: usize, wait: Duration) -> usize {
        let mut rx = self.inner.rx.lock().await;
        let first = match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(e)) => e,
            Ok(None) | Err(_) => return 0,
        };
        self.fan_out(&first);
        let mut moved = 1;
        while moved < max {
            match rx.try_recv() {
                Ok(e) => {
                    self.fan_out(&e);
                    moved += 1;
                }
                Err(_) => break,
            }
        }
        moved
    }

    fn fan_out(&self, event: &Event) {
        for sub in self.inner.subs.iter() {
            if !sub.patterns.iter().any(|p| event.topic.matches(p)) {
                continue;
            }
            match sub.tx.try_send(event.clone()) {
                Ok(()) => {
                    self.inner.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    let n = self.inner.subscriber_drops.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_power_of_two() {
                        tracing::warn!(subscriber = %sub.key(), drops = n, "subscriber mailbox full");
                    }
                }
            }
        }
    }

    /// The bus counters.
    pub fn stats(&self) -> BusStats {
        let i = &self.inner;
        BusStats {
            published: i.published.load(Ordering::Relaxed),
            delivered: i.delivered.load(Ordering::Relaxed),
            overflow: i.overflow.load(Ordering::Relaxed),
            subscriber_drops: i.subscriber_drops.load(Ordering::Relaxed),
            pending: (i.tx.max_capacity() - i.tx.capacity()) as u64,
            subscribers: i.subs.len() as u64,
        }
    }
}

impl Subscription {
    /// The subscriber's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the next event.
    pub async fn recv(&self) -> Option<Event> {
        self.rx.lock().await.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_lock().ok()?.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_published_before_the_pump_runs_are_delivered_later() {
        let bus = Bus::with_capacity(8);
        let sub = bus.subscribe("s", &["kernel.restart.*"]);
        assert!(bus.emit(Topic::KernelRestartSuccess, Some("k"), ()));
        assert!(bus.emit(Topic::TrustScoreUpdate, Some("k"), ()));
        assert_eq!(bus.pump(16, Duration::from_millis(10)).await, 2);
        let e = sub.try_recv().expect("delivered");
        assert_eq!(e.topic, Topic::KernelRestartSuccess);
        assert!(
            sub.try_recv().is_none(),
            "only matching topics are delivered"
        );
    }

    #[tokio::test]
    async fn overflow_is_counted_not_hidden() {
        let bus = Bus::with_capacity(2);
        assert!(bus.emit(Topic::KernelError, None, ()));
        assert!(bus.emit(Topic::KernelError, None, ()));
        assert!(!bus.emit(Topic::KernelError, None, ()));
        let s = bus.stats();
        assert_eq!((s.published, s.overflow, s.pending), (2, 1, 2));
    }

    #[tokio::test]
    async fn resubscribing_keeps_the_mailbox() {
        let bus = Bus::default();
        let first = bus.subscribe("s", &["*"]);
        bus.emit(Topic::KernelError, None, ());
        bus.pump(16, Duration::from_millis(10)).await;
        drop(first);
        let again = bus.subscribe("s", &["*"]);
        assert!(again.try_recv().is_some());
    }
}
