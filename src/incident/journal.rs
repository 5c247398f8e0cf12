//! Reading `incidents.jsonl`: one JSON object per state change, folded by `incident_id`
//! (the last line of an incident wins). A torn last line (no newline: a write cut short)
//! is ignored; a complete line that is not an incident is skipped and counted.

use std::collections::HashMap;
use std::path::Path;

use super::model::Incident;
use super::store::IncidentError;

/// The folded content of an incidents file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Journal {
    /// Every incident in its latest state, in the order each was first seen.
    pub incidents: Vec<Incident>,
    /// Line numbers (from 1) of complete lines that are not incidents.
    pub bad_lines: Vec<u64>,
    /// Bytes up to the end of the last complete line.
    pub complete_len: u64,
    /// Bytes after it (a torn last line), 0 when the file ends with a newline.
    pub torn_bytes: u64,
}

/// Folds the lines of an incidents file.
pub fn fold(bytes: &[u8]) -> Journal {
    let complete_len = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut incidents: Vec<Incident> = Vec::new();
    let mut bad_lines = Vec::new();
    for (n, line) in bytes[..complete_len].split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Incident>(line) {
            Ok(i) => match index.get(&i.incident_id) {
                Some(&at) => incidents[at] = i,
                None => {
                    index.insert(i.incident_id.clone(), incidents.len());
                    incidents.push(i);
                }
            },
            Err(_) => bad_lines.push(n as u64 + 1),
        }
    }
    Journal {
        incidents,
        bad_lines,
        complete_len: complete_len as u64,
        torn_bytes: (bytes.len() - complete_len) as u64,
    }
}

/// Reads and folds the incidents file at `path`; a missing file has no incidents.
pub fn read_journal(path: &Path) -> Result<Journal, IncidentError> {
    match std::fs::read(path) {
        Ok(b) => Ok(fold(&b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Journal::default()),
        Err(source) => Err(IncidentError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Folds `later` into `earlier`: an incident in both takes its state in `later`.
pub fn merge(earlier: Vec<Incident>, later: Vec<Incident>) -> Vec<Incident> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out = earlier;
    for (n, i) in out.iter().enumerate() {
        index.insert(i.incident_id.clone(), n);
    }
    for i in later {
        match index.get(&i.incident_id) {
            Some(&at) => out[at] = i,
            None => {
                index.insert(i.incident_id.clone(), out.len());
                out.push(i);
            }
        }
    }
    out
}

/// Every incident of the incidents file at `path` and of its segments
/// (`incidents/<YYYY-MM>.jsonl`, closed incidents past retention), segments first.
/// The file is read before the segments, so an incident being moved is found in one
/// or both, never in neither.
pub fn read_incidents(path: &Path) -> Result<Journal, IncidentError> {
    let active = read_journal(path)?;
    let mut archived = Vec::new();
    for seg in super::store::segment_files(path) {
        archived = merge(archived, read_journal(&seg)?.incidents);
    }
    Ok(Journal {
        incidents: merge(archived, active.incidents),
        ..active
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_of_an_incident_wins_and_bad_lines_are_counted() {
        let a1 = r#"{"incident_id":"inc_a","detected_at":"t","status":"open","failure_mode":"f","severity":"low","component":"c","trigger":"t","occurrences":1}"#;
        let b1 = a1.replace("inc_a", "inc_b");
        let a2 = a1.replace("\"open\"", "\"resolved\"");
        let text = format!("{a1}\nnot json\n\n{b1}\n{a2}\n{{\"incident_id\":");
        let j = fold(text.as_bytes());
        let ids: Vec<_> = j.incidents.iter().map(|i| i.incident_id.as_str()).collect();
        assert_eq!(ids, ["inc_a", "inc_b"]);
        assert_eq!(j.incidents[0].status.as_str(), "resolved");
        assert_eq!(j.bad_lines, [2]);
        assert_eq!(j.torn_bytes, "{\"incident_id\":".len() as u64);
    }
}
