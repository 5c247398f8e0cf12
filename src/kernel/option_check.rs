//! Checking a kernel's options straight from the configuration document: strict
//! deserialisation (unknown options, wrong types) and the kind's range checks, each error
//! with the span of the offending option so that it can be reported at its line and
//! column.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeValue, ValueDeserializer};
use toml::Spanned;

/// A kernel's options that its kind refuses, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    /// The span of the offending option in the configuration text; else of the
    /// `options` table, or of the kernel when it has none.
    pub span: Range<usize>,
    /// What is wrong, naming the option.
    pub reason: String,
    /// How to fix it.
    pub fix: String,
}

/// Deserialises `T` from `options` and runs `validate`; errors carry the option's span.
pub(crate) fn check_spanned<T: DeserializeOwned>(
    options: Spanned<DeValue<'_>>,
    fix: &str,
    validate: impl Fn(&T) -> Result<(), String>,
) -> Result<(), OptionError> {
    let whole = options.span();
    let doc = options.clone();
    let failed = |span: Range<usize>, reason: String| OptionError {
        span,
        reason,
        fix: fix.to_owned(),
    };
    let o = T::deserialize(ValueDeserializer::from(options)).map_err(|e| {
        let span = e.span().unwrap_or_else(|| whole.clone());
        let msg = e.message().trim_end();
        if let Some(field) = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            return failed(span, format!("option {field} is required"));
        }
        match option_path_at(&doc, span.start) {
            // Reported at the option's key, whichever part of it serde pointed at.
            Some(o) => {
                let key = option_span(&doc, &o).unwrap_or(span);
                if msg.contains(&format!("`{o}`")) {
                    failed(key, format!("in options: {msg}"))
                } else {
                    failed(key, format!("option {o}: {msg}"))
                }
            }
            None => failed(span, format!("in options: {msg}")),
        }
    })?;
    validate(&o).map_err(|reason| {
        let span = option_named(&reason)
            .and_then(|n| option_span(&doc, n))
            .unwrap_or(whole);
        failed(span, reason)
    })
}

/// The dotted path of the option whose key or value holds byte `at`.
fn option_path_at(v: &Spanned<DeValue<'_>>, at: usize) -> Option<String> {
    let t = v.get_ref().as_table()?;
    t.iter().find_map(|(k, val)| {
        let inside = |r: Range<usize>| r.contains(&at);
        if !(inside(k.span()) || inside(val.span())) {
            return None;
        }
        Some(match option_path_at(val, at) {
            Some(sub) => format!("{}.{sub}", k.get_ref()),
            None => k.get_ref().to_string(),
        })
    })
}

/// The option a validation message names: the word after its leading `option `.
fn option_named(reason: &str) -> Option<&str> {
    let rest = reason.strip_prefix("option ")?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|n| !n.is_empty())
}

/// The span of the key of dotted option `path` in `v`.
fn option_span(v: &Spanned<DeValue<'_>>, path: &str) -> Option<Range<usize>> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let (k, val) = v
        .get_ref()
        .as_table()?
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == head)?;
    match rest {
        Some(r) => option_span(val, r).or(Some(k.span())),
        None => Some(k.span()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_found_by_name_and_by_position() {
        let text = "{ command = \"x\", probe = { tcp = \"h\" } }";
        let v = DeValue::parse(text).expect("value");
        let tcp = text.find("tcp").expect("tcp");
        assert_eq!(option_path_at(&v, tcp + 8).as_deref(), Some("probe.tcp"));
        assert_eq!(option_path_at(&v, 0), None);
        assert_eq!(option_span(&v, "probe.tcp"), Some(tcp..tcp + 3));
        assert_eq!(option_named("option probe.tcp: bad"), Some("probe.tcp"));
        assert_eq!(option_named("option workers (3) is above"), Some("workers"));
        assert_eq!(option_named("in options: x"), None);
    }
}
