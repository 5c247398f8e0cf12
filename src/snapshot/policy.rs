//! The decisions of the snapshot manager as plain functions: a file's kind, a
//! snapshot's name, what retention keeps, and which snapshot a restore uses.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::manifest::Entry;

/// The kind of a watched file, from its extension: `weights` (`pt`, `pkl`), `config`
/// (`yaml`, `yml`, `json`, `toml`), else `files`.
pub fn kind_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("pt" | "pkl") => "weights",
        Some("yaml" | "yml" | "json" | "toml") => "config",
        _ => "files",
    }
}

/// The snapshot file name of `source` taken at `at`: `<name>_<YYYYmmdd_HHMMSS>.<ext>`.
pub fn snapshot_name(source: &Path, at: DateTime<Utc>) -> String {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let stamp = at.format("%Y%m%d_%H%M%S");
    match source.extension() {
        Some(ext) => format!("{stem}_{stamp}.{}", ext.to_string_lossy()),
        None => format!("{stem}_{stamp}"),
    }
}

/// The name of the `latest` copy of `source`: `<name>_latest.<ext>`.
pub fn latest_name(source: &Path) -> String {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    match source.extension() {
        Some(ext) => format!("{stem}_latest.{}", ext.to_string_lossy()),
        None => format!("{stem}_latest"),
    }
}

/// Splits `entries` (of one kind) into those kept and those dropped: per source file
/// at most `max` (the newest), and none taken before `now - max_age`.
pub fn retain(
    entries: &[Entry],
    now: DateTime<Utc>,
    max: usize,
    max_age: std::time::Duration,
) -> (Vec<Entry>, Vec<Entry>) {
    let cutoff = chrono::Duration::from_std(max_age)
        .ok()
        .and_then(|d| now.checked_sub_signed(d));
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.file.cmp(&a.file)));
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let (mut keep, mut drop) = (Vec::new(), Vec::new());
    for e in sorted {
        let n = counts.entry(e.source.as_str()).or_default();
        let fresh = cutoff.is_none_or(|c| e.taken_at >= c);
        if fresh && *n < max {
            *n += 1;
            keep.push(e.clone());
        } else {
            drop.push(e.clone());
        }
    }
    keep.reverse();
    (keep, drop)
}

/// What a restore decided: the snapshot to use, and the newer ones skipped because
/// their content no longer matches their recorded checksum.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The snapshot to restore, if any verifies.
    pub chosen: Option<Entry>,
    /// Newer snapshots that failed verification (corrupted), newest first.
    pub corrupted: Vec<Entry>,
}

/// Chooses the newest snapshot of `source` that `verifies` (its content hashes to its
/// recorded sha256) and whose sha256 is not `exclude` (a rollback excludes what the
/// file holds now). Corrupted snapshots on the way are reported, not chosen.
pub fn choose_restore(
    entries: &[Entry],
    source: &str,
    exclude: Option<&str>,
    mut verifies: impl FnMut(&Entry) -> bool,
) -> Choice {
    let mut mine: Vec<&Entry> = entries.iter().filter(|e| e.source == source).collect();
    mine.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.file.cmp(&a.file)));
    let mut corrupted = Vec::new();
    for e in mine {
        if exclude == Some(e.sha256.as_str()) {
            continue;
        }
        if verifies(e) {
            return Choice {
                chosen: Some(e.clone()),
                corrupted,
            };
        }
        corrupted.push(e.clone());
    }
    Choice {
        chosen: None,
        corrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn entry(source: &str, secs: i64, sha: &str) -> Entry {
        let at = Utc
            .timestamp_opt(1_700_000_000 + secs, 0)
            .single()
            .expect("ts");
        Entry {
            file: snapshot_name(Path::new(source), at),
            sha256: sha.to_owned(),
            size: 1,
            taken_at: at,
            source: source.to_owned(),
        }
    }

    #[test]
    fn kinds_and_names() {
        assert_eq!(kind_of(Path::new("m/a.pt")), "weights");
        assert_eq!(kind_of(Path::new("grace.toml")), "config");
        assert_eq!(kind_of(Path::new("x.bin")), "files");
        let at = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("ts");
        assert_eq!(
            snapshot_name(Path::new("m/a.pt"), at),
            "a_20260102_030405.pt"
        );
        assert_eq!(latest_name(Path::new("m/a.pt")), "a_latest.pt");
    }

    #[test]
    fn restore_skips_corrupted_newest_and_excluded() {
        let es = [
            entry("a", 0, "s0"),
            entry("a", 10, "s1"),
            entry("a", 20, "s2"),
        ];
        let c = choose_restore(&es, "a", None, |e| e.sha256 != "s2");
        assert_eq!(c.chosen.map(|e| e.sha256), Some("s1".into()));
        assert_eq!(c.corrupted.len(), 1);
        let c = choose_restore(&es, "a", Some("s2"), |_| true);
        assert_eq!(c.chosen.map(|e| e.sha256), Some("s1".into()));
        let c = choose_restore(&es, "b", None, |_| true);
        assert!(c.chosen.is_none());
    }

    proptest! {
        #[test]
        fn retention_keeps_newest_within_limits(
            ages in proptest::collection::vec((0u8..3, 0i64..200_000), 0..40),
            max in 1usize..8,
        ) {
            let now = Utc.timestamp_opt(1_700_000_000 + 200_000, 0).single().expect("ts");
            let es: Vec<Entry> = ages.iter().enumerate()
                .map(|(i, (s, age))| {
                    let mut e = entry(&format!("f{s}"), 200_000 - age, "x");
                    e.file = format!("{i}");
                    e
                })
                .collect();
            let day = std::time::Duration::from_secs(86_400);
            let (keep, drop) = retain(&es, now, max, day);
            prop_assert_eq!(keep.len() + drop.len(), es.len());
            for s in 0..3 {
                let src = format!("f{s}");
                let kept: Vec<_> = keep.iter().filter(|e| e.source == src).collect();
                prop_assert!(kept.len() <= max);
                let eligible = es.iter()
                    .filter(|e| e.source == src && now - e.taken_at <= chrono::Duration::days(1))
                    .count();
                prop_assert_eq!(kept.len(), eligible.min(max));
                if let Some(oldest_kept) = kept.iter().map(|e| e.taken_at).min() {
                    for d in drop.iter().filter(|e| e.source == src) {
                        prop_assert!(d.taken_at <= oldest_kept || now - d.taken_at > chrono::Duration::days(1));
                    }
                }
            }
            for e in &keep {
                prop_assert!(now - e.taken_at <= chrono::Duration::days(1));
            }
        }
    }
}
