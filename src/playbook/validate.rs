//! Parsing and validating one playbook file: YAML errors with their line and column,
//! then the checks serde cannot make (unknown actions, bad arguments and templates,
//! step structure), each with the line and column of the offending key.

use std::collections::HashMap;

use serde_json::Value;

use super::action::{ActionRegistry, Args};
use super::load::SkippedPlaybook;
use super::locate::{Locator, Pos};
use super::model::{Playbook, Step};
use super::template;
use crate::config::ConfigError;

/// What parsing one file gave.
#[derive(Debug)]
pub enum Parsed {
    /// A valid playbook.
    Loaded(Playbook),
    /// A valid playbook that needs a missing capability.
    Skipped(SkippedPlaybook),
}

/// Parses and validates one playbook file. Errors read `file:line:column: what; how to
/// fix`.
pub fn parse_playbook(
    file: &str,
    text: &str,
    actions: &ActionRegistry,
) -> Result<Parsed, ConfigError> {
    let p: Playbook = serde_yaml_ng::from_str(text).map_err(|e| {
        let msg = e.to_string();
        match e.location() {
            Some(l) => {
                let suffix = format!(" at line {} column {}", l.line(), l.column());
                let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
                ConfigError(format!("{file}:{}:{}: {msg}", l.line(), l.column()))
            }
            None => ConfigError(format!("{file}:1:1: {msg}")),
        }
    })?;
    let loc = Locator::new(text);
    let err = |at: Pos, msg: String| ConfigError(format!("{file}:{at}: {msg}"));
    if p.name.is_empty()
        || !p
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(err(
            loc.top("name"),
            format!(
                "playbook name {:?} must be letters, digits, '_' or '-'",
                p.name
            ),
        ));
    }
    if let Some(missing) = p.requires.iter().find(|c| !actions.provides(c)) {
        return Ok(Parsed::Skipped(SkippedPlaybook {
            name: p.name.clone(),
            file: file.to_owned(),
            reason: format!("it requires {missing:?}, which this build does not provide"),
        }));
    }
    if p.steps.is_empty() {
        return Err(err(
            loc.top("steps"),
            "a playbook needs at least one step".into(),
        ));
    }
    if p.slo.is_some_and(|s| s.0.is_zero()) {
        return Err(err(loc.top("slo"), "slo must be longer than zero".into()));
    }
    if p.rate_limit
        .is_some_and(|r| r.max == 0 || r.window.0.is_zero())
    {
        return Err(err(
            loc.top("rate_limit"),
            "rate_limit needs max >= 1 and a window longer than zero".into(),
        ));
    }
    let mut names = HashMap::new();
    for s in &p.steps {
        check_step(s, false, &loc, actions, &mut names).map_err(|(l, m)| err(l, m))?;
    }
    for s in p.verify.iter().flat_map(|v| &v.steps) {
        check_step(s, true, &loc, actions, &mut names).map_err(|(l, m)| err(l, m))?;
        if s.action.as_deref().is_some_and(super::harm::is_disruptive) {
            return Err(err(
                loc.in_step(&s.name, "action"),
                format!(
                    "verify step {:?} runs a disruptive action; verify steps only probe (verify_health, check_kernels, exec, ...)",
                    s.name
                ),
            ));
        }
    }
    if p.verify.as_ref().is_some_and(|v| v.successes == Some(0)) {
        return Err(err(
            loc.top("verify"),
            "verify.successes must be at least 1".into(),
        ));
    }
    Ok(Parsed::Loaded(p))
}

fn check_step(
    s: &Step,
    nested: bool,
    loc: &Locator<'_>,
    actions: &ActionRegistry,
    names: &mut HashMap<String, ()>,
) -> Result<(), (Pos, String)> {
    let at = |key: &str| loc.in_step(&s.name, key);
    if s.name.is_empty() {
        return Err((Pos::START, "a step needs a non-empty name".into()));
    }
    if names.insert(s.name.clone(), ()).is_some() {
        return Err((
            at("name"),
            format!(
                "step name {:?} is used twice; step names must be unique",
                s.name
            ),
        ));
    }
    match (&s.action, &s.parallel) {
        (Some(_), Some(_)) | (None, None) => Err((
            at("name"),
            format!(
                "step {:?} needs exactly one of `action` and `parallel`",
                s.name
            ),
        )),
        (None, Some(group)) => {
            if nested {
                return Err((
                    at("parallel"),
                    "a parallel group cannot contain another".into(),
                ));
            }
            if group.is_empty() {
                return Err((
                    at("parallel"),
                    format!("parallel group {:?} is empty", s.name),
                ));
            }
            if !s.args.is_empty() || s.retries > 0 || s.retry_delay.is_some() || s.timeout.is_some()
            {
                return Err((
                    at("parallel"),
                    format!(
                        "parallel group {:?} takes only name, parallel and continue_on_failure; set args, retries and timeouts on its steps",
                        s.name
                    ),
                ));
            }
            group
                .iter()
                .try_for_each(|c| check_step(c, true, loc, actions, names))
        }
        (Some(action), None) => {
            let Some(a) = actions.get(action) else {
                return Err((
                    at("action"),
                    format!(
                        "unknown action {action:?} in step {:?}; known actions: {}",
                        s.name,
                        actions.names().join(", ")
                    ),
                ));
            };
            for (k, v) in &s.args {
                template::check_value(v)
                    .map_err(|(text, e)| (at(k), format!("argument {k:?} = {text:?}: {e}")))?;
            }
            a.validate(&Args::new(action, s.args.clone()))
                .map_err(|e| (at("action"), format!("step {:?}: {e}", s.name)))
        }
    }
}

/// Arguments of a step after expansion, for running.
pub(crate) fn expanded_args(
    s: &Step,
    vars: &template::Vars,
) -> Result<Args, template::TemplateError> {
    let v = template::expand_value(&Value::Object(s.args.clone()), vars)?;
    let map = match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    Ok(Args::new(s.action.as_deref().unwrap_or_default(), map))
}
