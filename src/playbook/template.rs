//! Template expansion of step arguments: `{{component}}` and friends, from the incident.

use serde_json::Value;

use crate::incident::Incident;

/// The names a template may use.
pub const VARIABLES: [&str; 5] = [
    "component",
    "severity",
    "incident_id",
    "trigger",
    "failure_mode",
];

/// Why a template is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `{{` without its `}}`.
    #[error("unclosed \"{{{{\" in {0:?}; close it with \"}}}}\"")]
    Unclosed(String),
    /// A name that is not one of [`VARIABLES`].
    #[error("unknown template variable {{{{{name}}}}}; known: {known}")]
    Unknown {
        /// The name used.
        name: String,
        /// The known names.
        known: String,
    },
}

/// The values templates expand to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vars {
    /// `{{component}}`.
    pub component: String,
    /// `{{severity}}`.
    pub severity: String,
    /// `{{incident_id}}`.
    pub incident_id: String,
    /// `{{trigger}}`.
    pub trigger: String,
    /// `{{failure_mode}}`.
    pub failure_mode: String,
}

impl Vars {
    /// The variables of an incident.
    pub fn of(incident: &Incident) -> Vars {
        let severity = serde_json::to_value(incident.severity)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Vars {
            component: incident.component.clone(),
            severity,
            incident_id: incident.incident_id.clone(),
            trigger: incident.trigger.clone(),
            failure_mode: incident.failure_mode.clone(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        Some(match name {
            "component" => &self.component,
            "severity" => &self.severity,
            "incident_id" => &self.incident_id,
            "trigger" => &self.trigger,
            "failure_mode" => &self.failure_mode,
            _ => return None,
        })
    }
}

/// Splits a template into literal text and placeholder names, in order.
fn parse(s: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unclosed(s.to_owned()))?;
        out.push(Piece::Var(after[..close].trim()));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn unknown(name: &str) -> TemplateError {
    TemplateError::Unknown {
        name: name.to_owned(),
        known: VARIABLES.join(", "),
    }
}

/// Checks a template: every `{{` is closed and names a known variable.
pub fn check(s: &str) -> Result<(), TemplateError> {
    for p in parse(s)? {
        if let Piece::Var(name) = p {
            if !VARIABLES.contains(&name) {
                return Err(unknown(name));
            }
        }
    }
    Ok(())
}

/// Expands every `{{name}}` (spaces inside the braces allowed) in `s`.
pub fn expand(s: &str, vars: &Vars) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(s.len());
    for p in parse(s)? {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(name) => out.push_str(vars.get(name).ok_or_else(|| unknown(name))?),
        }
    }
    Ok(out)
}

/// Expands every string inside `v` (objects and arrays included, keys excepted).
pub fn expand_value(v: &Value, vars: &Vars) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::String(s) => Value::String(expand(s, vars)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| expand_value(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), expand_value(x, vars)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

/// Checks every string inside `v`; returns the first bad one with its error.
pub fn check_value(v: &Value) -> Result<(), (String, TemplateError)> {
    match v {
        Value::String(s) => check(s).map_err(|e| (s.clone(), e)),
        Value::Array(a) => a.iter().try_for_each(check_value),
        Value::Object(o) => o.values().try_for_each(check_value),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars() -> Vars {
        Vars {
            component: "kv".into(),
            severity: "high".into(),
            incident_id: "inc_1".into(),
            trigger: "heartbeat_failure".into(),
            failure_mode: "hang".into(),
        }
    }

    #[test]
    fn expands_every_variable_with_or_without_spaces() {
        let s = "{{component}}/{{ severity }}/{{incident_id}}/{{trigger}}/{{failure_mode}}";
        assert_eq!(
            expand(s, &vars()).expect("ok"),
            "kv/high/inc_1/heartbeat_failure/hang"
        );
    }

    #[test]
    fn unknown_and_unclosed_are_errors() {
        assert!(matches!(
            expand("{{kernel}}", &vars()),
            Err(TemplateError::Unknown { .. })
        ));
        assert!(matches!(
            check("a {{component"),
            Err(TemplateError::Unclosed(_))
        ));
        assert!(check("plain } { text").is_ok());
    }

    #[test]
    fn nested_values_are_expanded_keys_are_not() {
        let v = serde_json::json!({"{{component}}": ["x-{{component}}", 3, {"k": "{{severity}}"}]});
        let e = expand_value(&v, &vars()).expect("ok");
        assert_eq!(
            e,
            serde_json::json!({"{{component}}": ["x-kv", 3, {"k": "high"}]})
        );
    }

    proptest! {
        #[test]
        fn text_without_braces_is_unchanged(s in "[^{}]*") {
            prop_assert_eq!(expand(&s, &vars()).expect("ok"), s);
        }

        #[test]
        fn a_placeholder_becomes_its_value(pre in "[a-z ]{0,8}", post in "[a-z ]{0,8}", i in 0usize..5) {
            let v = vars();
            let name = VARIABLES[i];
            let out = expand(&format!("{pre}{{{{{name}}}}}{post}"), &v).expect("ok");
            prop_assert_eq!(out, format!("{pre}{}{post}", v.get(name).expect("known")));
        }

        #[test]
        fn check_agrees_with_expand(s in "[a-z{} _]{0,24}") {
            prop_assert_eq!(check(&s).is_ok(), expand(&s, &vars()).is_ok());
        }
    }
}
