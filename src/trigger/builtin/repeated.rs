//! `repeated_error`: the same error signature (a restart reason or error message with
//! numbers, addresses and ids stripped) N times within a window →
//! `escalate_to_coding_agent`.

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{event_component, event_text, mentions_any};
use crate::bus::{Event, Topic};
use crate::incident::Severity;
use crate::kernel::KernelContext;
use crate::time::mono_ms;
use crate::trigger::config::RepeatedErrorConfig;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

/// Signatures remembered at most; the least recently seen is forgotten first.
const MAX_SIGNATURES: usize = 1024;

/// Normalises an error message: every word made of hex digits that holds a digit
/// (numbers, `0x7ffd…`, hashes, uuid parts) becomes `#`, and remaining digit runs inside
/// words (`worker3`) become `#` too; whitespace is collapsed.
pub fn normalize(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        let body = word
            .strip_prefix("0x")
            .or_else(|| word.strip_prefix("0X"))
            .unwrap_or(word);
        let hexy = !body.is_empty()
            && body.bytes().all(|b| b.is_ascii_hexdigit())
            && body.bytes().any(|b| b.is_ascii_digit());
        if hexy {
            out.push('#');
        } else {
            let mut in_digits = false;
            for c in word.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        out.push('#');
                    }
                    in_digits = true;
                } else {
                    out.push(c);
                    in_digits = false;
                }
            }
        }
        word.clear();
    };
    let mut last_space = false;
    for c in message.trim().chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            last_space = false;
            continue;
        }
        flush(&mut word, &mut out);
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    flush(&mut word, &mut out);
    out
}

#[derive(Debug)]
struct Seen {
    component: String,
    at: VecDeque<u64>,
    sample: String,
    last: u64,
}

/// `repeated_error`: counts signatures from restart reasons and error events.
pub struct RepeatedError {
    cfg: RepeatedErrorConfig,
    seen: HashMap<String, Seen>,
}

impl RepeatedError {
    /// The trigger with its settings.
    pub fn new(cfg: RepeatedErrorConfig) -> RepeatedError {
        RepeatedError {
            cfg,
            seen: HashMap::new(),
        }
    }

    fn window_ms(&self) -> u64 {
        u64::try_from(self.cfg.window.as_millis()).unwrap_or(u64::MAX)
    }

    /// Records one error of `component` at `now`.
    pub fn record(&mut self, component: &str, message: &str, now: u64) {
        let sig = format!("{component}: {}", normalize(message));
        if !self.seen.contains_key(&sig) && self.seen.len() >= MAX_SIGNATURES {
            if let Some(oldest) = self
                .seen
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone())
            {
                self.seen.remove(&oldest);
            }
        }
        let cap = self.cfg.threshold.max(1) * 4;
        let s = self.seen.entry(sig).or_insert_with(|| Seen {
            component: component.to_owned(),
            at: VecDeque::new(),
            sample: String::new(),
            last: now,
        });
        s.at.push_back(now);
        while s.at.len() > cap {
            s.at.pop_front();
        }
        s.sample = message.chars().take(500).collect();
        s.last = now;
    }
}

#[async_trait]
impl Trigger for RepeatedError {
    fn subscriptions(&self) -> Vec<String> {
        [
            "kernel.error",
            "kernel.restart.initiated",
            "kernel.restart.failed",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn on_event(&mut self, event: &Event, _ctx: &KernelContext) {
        let Some(text) = event_text(event) else {
            return;
        };
        if event.topic != Topic::KernelError && mentions_any(&text, &self.cfg.ignore_reasons) {
            return;
        }
        let component = event_component(event).unwrap_or_else(|| "system".to_owned());
        self.record(&component, &text, mono_ms());
    }

    async fn check(&mut self, _ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let now = mono_ms();
        let window = self.window_ms();
        let threshold = self.cfg.threshold.max(1);
        for s in self.seen.values_mut() {
            while s
                .at
                .front()
                .is_some_and(|t| now.saturating_sub(*t) > window)
            {
                s.at.pop_front();
            }
        }
        self.seen.retain(|_, s| !s.at.is_empty());
        // One condition per component: its most repeated signature.
        let mut worst: HashMap<&str, (&String, &Seen)> = HashMap::new();
        for (sig, s) in &self.seen {
            if s.at.len() >= threshold
                && worst
                    .get(s.component.as_str())
                    .is_none_or(|(_, w)| w.at.len() < s.at.len())
            {
                worst.insert(&s.component, (sig, s));
            }
        }
        let playbook = self.cfg.playbook_or("escalate_to_coding_agent");
        let secs = self.cfg.window.as_secs_f64();
        Ok(worst
            .into_iter()
            .map(|(component, (sig, s))| {
                Finding::Holds(
                    Alert::new(
                        Level::Incident,
                        "repeated_error",
                        component,
                        "repeated_error",
                        Severity::High,
                        Some(playbook),
                        format!(
                            "the same error repeated {} times in {secs:.0} s on {component}: {}",
                            s.at.len(),
                            s.sample
                        ),
                    )
                    .details(json!({
                        "signature": sig,
                        "count": s.at.len(),
                        "window_s": secs,
                        "threshold": threshold,
                        "sample": s.sample,
                    })),
                )
            })
            .collect())
    }

    fn stats(&self) -> Value {
        json!({ "signatures": self.seen.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_addresses_and_ids_are_stripped() {
        assert_eq!(
            normalize("panic at 0x7ffd3a2b: index 17 out of range for worker3"),
            "panic at #: index # out of range for worker#"
        );
        assert_eq!(
            normalize("request 550e8400-e29b-41d4-a716-446655440000  failed"),
            "request #-#-#-#-# failed"
        );
        assert_eq!(
            normalize("dead beef"),
            "dead beef",
            "words without digits stay"
        );
    }

    proptest! {
        #[test]
        fn messages_differing_only_in_numbers_share_a_signature(a in 0u64..u64::MAX, b in 0u64..u64::MAX) {
            let x = normalize(&format!("timeout after {a} ms on conn {b:x}"));
            let y = normalize(&format!("timeout after {b} ms on conn {a:x}"));
            prop_assert_eq!(x, y);
        }

        #[test]
        fn normalizing_is_idempotent(s in "[ -~]{0,60}") {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once.clone());
        }
    }
}
