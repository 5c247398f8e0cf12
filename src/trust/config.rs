//! The `[trust]` section of `grace.toml`.

use serde::{Deserialize, Deserializer};

/// Settings of the trust section. Every value is in [0, 1].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// Score of a component never seen before (seed: 1.0).
    #[serde(deserialize_with = "unit")]
    pub initial: f64,
    /// Added after a successful remediation (seed: 0.05).
    #[serde(deserialize_with = "unit")]
    pub reward: f64,
    /// Removed after a failed remediation (default 0.15).
    #[serde(deserialize_with = "unit")]
    pub failure_penalty: f64,
    /// Removed for each repeat of an incident while it is open (default 0.05).
    #[serde(deserialize_with = "unit")]
    pub repeat_penalty: f64,
    /// Below this the trust_score trigger fires (seed: 0.7).
    #[serde(deserialize_with = "unit")]
    pub threshold: f64,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            initial: 1.0,
            reward: 0.05,
            failure_penalty: 0.15,
            repeat_penalty: 0.05,
            threshold: 0.7,
        }
    }
}

fn unit<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} is out of range: trust values are between 0 and 1"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_zero_to_one_are_rejected_with_the_reason() {
        let c: TrustConfig = toml::from_str("reward = 0.1\nthreshold = 0.5").expect("parse");
        assert_eq!((c.reward, c.threshold, c.initial), (0.1, 0.5, 1.0));
        let e = toml::from_str::<TrustConfig>("threshold = 1.5")
            .expect_err("out of range")
            .to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
    }
}
