//! The event bus: typed events on dotted topics, delivered to named subscribers.
//!
//! The bus state (the queue of undelivered events and every subscription with its
//! mailbox) lives in a shared [`Bus`] value, outside the `message_bus` kernel that pumps
//! it. Restarting that kernel therefore loses no subscription and no event: events
//! published while it is down wait in the bounded queue, and anything past the bound is
//! counted as overflow rather than silently dropped.

mod event;
mod hub;
mod pump;

pub use event::{Event, Topic};
pub use hub::{Bus, BusStats, Subscription};
pub use pump::MessageBusKernel;
