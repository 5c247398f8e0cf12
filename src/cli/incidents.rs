//! `grace incidents [--json] [--open]`: incidents with why they were closed and their
//! MTTR, then a summary line.

use std::io::Write;

use anyhow::Context;
use serde_json::json;

use crate::incident::{format_seconds, read_incidents, summarize, Incident};
use crate::state::StatePaths;

const HEADERS: [&str; 8] = [
    "ID",
    "STATUS",
    "REASON",
    "TRIGGER",
    "COMPONENT",
    "PLAYBOOK",
    "MTTR",
    "OCCURRENCES",
];

fn row(i: &Incident) -> [String; 8] {
    [
        i.incident_id.clone(),
        i.status.to_string(),
        i.closed_reason
            .map_or_else(|| "-".to_owned(), |r| r.to_string()),
        i.trigger.clone(),
        i.component.clone(),
        i.playbook.clone().unwrap_or_else(|| "-".to_owned()),
        i.mttr_seconds
            .map(format_seconds)
            .unwrap_or_else(|| "-".to_owned()),
        i.occurrences.to_string(),
    ]
}

/// Prints the incidents of the state directory `paths` (only open ones with
/// `open_only`) as a table, or as JSON `{incidents, summary}`; the summary covers every
/// incident. Reads `incidents.jsonl` and its segments (`incidents/`) without changing
/// them, so it works whether or not serve runs.
pub fn incidents(
    paths: &StatePaths,
    json: bool,
    open_only: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let journal = read_incidents(&paths.incidents())
        .with_context(|| format!("reading incidents from {}", paths.root().display()))?;
    let summary = summarize(&journal.incidents);
    let mut shown: Vec<&Incident> = journal
        .incidents
        .iter()
        .filter(|i| !open_only || i.status.is_open())
        .collect();
    shown.sort_by(|a, b| a.incident_id.cmp(&b.incident_id));
    if json {
        let doc = json!({ "incidents": shown, "summary": summary });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    if shown.is_empty() {
        let what = if open_only {
            "open incidents"
        } else {
            "incidents"
        };
        writeln!(out, "no {what} in {}", paths.incidents().display())?;
    } else {
        let rows: Vec<[String; 8]> = shown.iter().map(|i| row(i)).collect();
        let mut widths = HEADERS.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[&str]| -> String {
            let mut s = String::new();
            for (k, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if k + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    s.push_str(&format!("{cell:<w$}  "));
                }
            }
            s
        };
        writeln!(out, "{}", line(&HEADERS))?;
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            writeln!(out, "{}", line(&cells))?;
        }
    }
    writeln!(out, "{summary}")?;
    if !journal.bad_lines.is_empty() {
        writeln!(
            out,
            "note: lines {:?} of {} are not incidents and were skipped",
            journal.bad_lines,
            paths.incidents().display()
        )?;
    }
    Ok(())
}
