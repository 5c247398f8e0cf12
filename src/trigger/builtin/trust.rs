//! `trust_score`: components whose trust score fell below the threshold (`[trust]
//! threshold`, 0.7, unless `min_score` is set here) → `rollback_deployment`.

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::incident::Severity;
use crate::kernel::KernelContext;
use crate::trigger::config::TrustScoreConfig;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

/// `trust_score`: reads the trust ledger at every check.
pub struct TrustScore {
    cfg: TrustScoreConfig,
    components: usize,
}

impl TrustScore {
    /// The trigger with its settings.
    pub fn new(cfg: TrustScoreConfig) -> TrustScore {
        TrustScore { cfg, components: 0 }
    }
}

#[async_trait]
impl Trigger for TrustScore {
    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let trust = &ctx.system.trust;
        let min = self.cfg.min_score.unwrap_or(trust.config().threshold);
        let scores = trust.all();
        self.components = scores.len();
        Ok(scores
            .into_iter()
            .filter(|(_, s)| *s < min)
            .map(|(c, s)| {
                Finding::Holds(
                    Alert::new(
                        Level::Incident,
                        "trust_score",
                        &c,
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
        json!({ "components": self.components })
    }
}
