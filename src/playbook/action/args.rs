//! Action arguments: the step's `args` map after template expansion, with typed getters
//! whose errors name the argument and the expected type.

use std::time::Duration;

use serde_json::{Map, Value};

use super::ActionError;

/// The arguments of one step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    action: String,
    map: Map<String, Value>,
}

impl Args {
    /// Arguments of `action`.
    pub fn new(action: &str, map: Map<String, Value>) -> Args {
        Args {
            action: action.to_owned(),
            map,
        }
    }

    /// The raw map.
    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A bad-arguments error for `key`.
    pub fn bad(&self, key: &str, expected: &str) -> ActionError {
        ActionError::BadArgs {
            action: self.action.clone(),
            reason: format!("argument {key:?} must be {expected}"),
        }
    }

    /// A string argument.
    pub fn str(&self, key: &str) -> Result<Option<&str>, ActionError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    /// A string argument that must be present.
    pub fn require_str(&self, key: &str) -> Result<&str, ActionError> {
        self.str(key)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.bad(key, "given (a non-empty string)"))
    }

    /// A boolean argument.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ActionError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "on" || s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "off" || s == "false" => Ok(Some(false)),
            Some(_) => Err(self.bad(key, "true or false")),
        }
    }

    /// A non-negative integer argument.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ActionError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .map(Some)
                .ok_or_else(|| self.bad(key, "a non-negative integer")),
        }
    }

    /// A number argument.
    pub fn f64(&self, key: &str) -> Result<Option<f64>, ActionError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .map(Some)
                .ok_or_else(|| self.bad(key, "a number")),
        }
    }

    /// A duration argument: `"30s"`, `"2m"` or a number of seconds.
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, ActionError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => humantime::parse_duration(s.trim())
                .map(Some)
                .map_err(|_| self.bad(key, "a duration such as \"30s\" or \"2m\"")),
            Some(v) => v
                .as_f64()
                .and_then(|f| Duration::try_from_secs_f64(f).ok())
                .map(Some)
                .ok_or_else(|| self.bad(key, "a duration such as \"30s\" or \"2m\"")),
        }
    }

    /// A list of strings; a single string is a list of one.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ActionError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| self.bad(key, "a string or a list of strings")),
            Some(_) => Err(self.bad(key, "a string or a list of strings")),
        }
    }

    /// Checks at load time that only `allowed` keys are present.
    pub fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(format!(
                "unknown argument {k:?} for action {}; it takes: {}",
                self.action,
                if allowed.is_empty() {
                    "no arguments".to_owned()
                } else {
                    allowed.join(", ")
                }
            )),
        }
    }

    /// Checks at load time that a value which is not a template has the right type:
    /// `check` runs the getter; a string holding `{{` is accepted as is.
    pub fn typed<T>(
        &self,
        key: &str,
        check: impl Fn(&Args, &str) -> Result<T, ActionError>,
    ) -> Result<(), String> {
        if matches!(self.get(key), Some(Value::String(s)) if s.contains("{{")) {
            return Ok(());
        }
        check(self, key).map(|_| ()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        match v {
            Value::Object(m) => Args::new("t", m),
            _ => Args::new("t", Map::new()),
        }
    }

    #[test]
    fn typed_getters_accept_their_types_and_name_the_key_otherwise() {
        let a = args(json!({"s": "x", "b": "on", "n": 3, "d": "2s", "l": ["a", "b"], "f": 0.5}));
        assert_eq!(a.str("s").expect("s"), Some("x"));
        assert_eq!(a.bool("b").expect("b"), Some(true));
        assert_eq!(a.u64("n").expect("n"), Some(3));
        assert_eq!(a.duration("d").expect("d"), Some(Duration::from_secs(2)));
        assert_eq!(
            a.strings("l").expect("l"),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(a.f64("f").expect("f"), Some(0.5));
        assert_eq!(a.str("missing").expect("none"), None);
        let e = a.u64("s").expect_err("type");
        assert!(e.to_string().contains("\"s\""), "{e}");
        assert!(!e.retryable());
    }

    #[test]
    fn only_names_the_unknown_key() {
        let a = args(json!({"kernel": "k", "kernal": "k"}));
        let e = a.only(&["kernel"]).expect_err("unknown");
        assert!(e.contains("kernal"), "{e}");
    }
}
