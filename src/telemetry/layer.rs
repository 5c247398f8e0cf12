//! The tracing layer that turns every event into a [`Record`]: to the log file as a
//! JSON line, and to stderr as [`StderrOut`] says.
//!
//! Spans: each span's fields are kept with it; a record made inside spans gets a `span`
//! object naming the innermost span and carrying the fields of all of them, a field
//! called `name` under the span's own name (`supervisor{name=core}` becomes
//! `"supervisor": "core"`). ractor's own per-actor spans (`Actor`, with only an actor
//! id) are left out: Grace's spans (`kernel`, `supervisor`, `incident`) say which one.

use std::fmt::Debug;
use std::io::Write;

use serde_json::{Map, Number, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::record::Record;
use super::stderr::StderrOut;

/// The fields of an event or span as JSON values; `message` apart.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    map: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, v: Value) {
        let name = field.name();
        if name == "message" {
            self.message = Some(match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if !name.starts_with("log.") {
            self.map.insert(name.to_owned(), v);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(
            field,
            Number::from_f64(value).map_or(Value::Null, Value::Number),
        );
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}

/// A span's fields, kept in its extensions.
struct SpanFields(Map<String, Value>);

/// Writes every event as a record.
pub(super) struct RecordLayer {
    pub(super) file: Option<NonBlocking>,
    pub(super) stderr: StderrOut,
    pub(super) pid: u32,
}

fn is_ractor(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("ractor")
}

impl<S> Layer<S> for RecordLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if is_ractor(attrs.metadata()) {
            return;
        }
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(f.map));
        }
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut f = Fields::default();
        values.record(&mut f);
        let mut ext = span.extensions_mut();
        if let Some(kept) = ext.get_mut::<SpanFields>() {
            kept.0.extend(f.map);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let meta = event.metadata();
        let mut span = None;
        if let Some(scope) = ctx.event_scope(event) {
            let mut merged = Map::new();
            let mut leaf = None;
            for s in scope.from_root().filter(|s| !is_ractor(s.metadata())) {
                leaf = Some(s.name());
                if let Some(kept) = s.extensions().get::<SpanFields>() {
                    for (k, v) in &kept.0 {
                        let key = if k == "name" { s.name() } else { k.as_str() };
                        merged.insert(key.to_owned(), v.clone());
                    }
                }
            }
            if let Some(name) = leaf {
                merged.insert("name".to_owned(), name.into());
                span = Some(merged);
            }
        }
        let record = Record {
            timestamp: crate::time::rfc3339(crate::time::now()),
            level: (*meta.level()).into(),
            target: meta.target().to_owned(),
            message: f.message.unwrap_or_default(),
            pid: self.pid,
            fields: f.map,
            span,
        };
        if let Some(file) = &self.file {
            // One write per record: the writer thread appends it whole.
            let _ = file.clone().write_all(&record.json_line());
        }
        let _ = self.stderr.write(&record);
    }
}
