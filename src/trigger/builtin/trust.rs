//! `trust_score`: components whose trust score fell below a minimum →
//! `rollback_deployment`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::event_component;
use crate::bus::Event;
use crate::incident::Severity;
use crate::kernel::KernelContext;
use crate::tree::System;
use crate::trigger::config::TrustScoreConfig;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

/// The scores the trust ledger holds, when it can be read directly.
///
/// The ledger's read API (`all()`) is not available yet, so this returns None and the
/// trigger relies on the `trust.score.update` events the ledger publishes on every
/// change. Once `TrustLedger::all()` exists, this becomes `Some(system.trust.all())`.
fn ledger_scores(_system: &System) -> Option<Vec<(String, f64)>> {
    None
}

/// The new score carried by a `trust.score.update` payload (`score`, or `new_score`,
/// `new`, `to`), or a bare number.
pub fn payload_score(payload: &Value) -> Option<f64> {
    if let Some(f) = payload.as_f64() {
        return Some(f);
    }
    ["score", "new_score", "new", "to"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_f64))
}

/// `trust_score`: reads the ledger (or follows its `trust.score.update` events).
pub struct TrustScore {
    cfg: TrustScoreConfig,
    seen: BTreeMap<String, f64>,
}

impl TrustScore {
    /// The trigger with its settings.
    pub fn new(cfg: TrustScoreConfig) -> TrustScore {
        TrustScore {
            cfg,
            seen: BTreeMap::new(),
        }
    }
}

#[async_trait]
impl Trigger for TrustScore {
    fn subscriptions(&self) -> Vec<String> {
        vec!["trust.score.update".to_owned()]
    }

    fn on_event(&mut self, event: &Event, _ctx: &KernelContext) {
        if let (Some(c), Some(s)) = (event_component(event), payload_score(&event.payload)) {
            self.seen.insert(c, s);
        }
    }

    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        if let Some(all) = ledger_scores(&ctx.system) {
            self.seen = all.into_iter().collect();
        }
        let min = self.cfg.min_score;
        Ok(self
            .seen
            .iter()
            .filter(|(_, s)| **s < min)
            .map(|(c, s)| {
                Finding::Holds(
                    Alert::new(
                        Level::Incident,
                        "trust_score",
                        c,
                        "low_trust",
                        Severity::High,
                        Some(self.cfg.playbook_or("rollback_deployment")),
                        format!("trust in {c} is {s:.2}, below {min:.2}"),
                    )
                    .details(json!({ "score": s, "min_score": min })),
                )
            })
            .collect())
    }

    fn stats(&self) -> Value {
        json!({ "components": self.seen.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_read_from_the_usual_fields() {
        assert_eq!(payload_score(&json!({"score": 0.5})), Some(0.5));
        assert_eq!(payload_score(&json!({"old": 0.9, "new": 0.6})), Some(0.6));
        assert_eq!(payload_score(&json!(0.3)), Some(0.3));
        assert_eq!(payload_score(&json!({"component": "x"})), None);
    }
}
