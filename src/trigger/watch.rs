//! Event-driven checks of file triggers: a `notify` watcher (inotify on Linux) on the
//! directories of a trigger's glob patterns calls back when a matching file changes,
//! so `config_drift` and `model_integrity` see a write at once instead of at their next
//! periodic sweep. The sweep stays as the fallback for what events miss (a watch that
//! could not be set, a directory created later, a full event queue).

use std::path::{Component, Path, PathBuf};

use notify::{EventKind, RecursiveMode, Watcher};

/// Whether a path component holds glob syntax.
fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The directory to watch for `pattern` (absolute): its components up to the first
/// with glob syntax; and whether what is below needs a recursive watch.
pub fn base_dir(pattern: &str) -> (PathBuf, RecursiveMode) {
    let mut base = PathBuf::new();
    let mut rest = Vec::new();
    for c in Path::new(pattern).components() {
        let s = c.as_os_str().to_string_lossy();
        if rest.is_empty() && !(matches!(c, Component::Normal(_)) && is_glob(&s)) {
            base.push(c);
        } else {
            rest.push(s.into_owned());
        }
    }
    if rest.is_empty() {
        // A plain file: its directory (files are replaced by rename, which a watch on
        // the file itself would not follow).
        let dir = base.parent().map(Path::to_path_buf).unwrap_or_default();
        return (dir, RecursiveMode::NonRecursive);
    }
    let deep = rest.len() > 1 || rest.iter().any(|r| r.contains("**"));
    let mode = match deep {
        true => RecursiveMode::Recursive,
        false => RecursiveMode::NonRecursive,
    };
    (base, mode)
}

/// Makes relative patterns absolute from `dir` (which is taken literally, not as a
/// pattern).
pub fn absolute(patterns: &[String], dir: &Path) -> Vec<String> {
    patterns
        .iter()
        .map(|p| match Path::new(p).is_absolute() {
            true => p.clone(),
            false => format!("{}/{p}", glob::Pattern::escape(&dir.display().to_string())),
        })
        .collect()
}

/// A running watch; dropping it stops it.
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
    /// The directories watched.
    pub dirs: Vec<PathBuf>,
}

impl FileWatch {
    /// Watches the directories of `patterns` (absolute) and calls `on_change` for every
    /// event on a path matching one of them. Directories that cannot be watched are
    /// logged and left to the periodic sweep; None when none can.
    pub fn start(
        trigger: &str,
        patterns: &[String],
        on_change: impl Fn() + Send + 'static,
    ) -> Option<FileWatch> {
        let globs: Vec<glob::Pattern> = patterns
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            if event
                .paths
                .iter()
                .any(|p| globs.iter().any(|g| g.matches_path(p)))
            {
                on_change();
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(trigger, error = %e, "cannot watch files; checks stay periodic");
                return None;
            }
        };
        let mut dirs: Vec<(PathBuf, RecursiveMode)> =
            patterns.iter().map(|p| base_dir(p)).collect();
        dirs.sort_by(|a, b| a.0.cmp(&b.0));
        dirs.dedup_by(|a, b| a.0 == b.0);
        let mut watched = Vec::new();
        for (dir, mode) in dirs {
            match watcher.watch(&dir, mode) {
                Ok(()) => watched.push(dir),
                Err(e) => {
                    tracing::info!(trigger, dir = %dir.display(), error = %e, "directory not watched; the periodic check covers it")
                }
            }
        }
        if watched.is_empty() {
            return None;
        }
        tracing::debug!(trigger, dirs = watched.len(), "watching files");
        Some(FileWatch {
            _watcher: watcher,
            dirs: watched,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn the_watched_directory_is_the_part_before_the_first_glob() {
        let b = |p: &str| base_dir(p);
        assert_eq!(
            b("/s/models/*.pt"),
            (PathBuf::from("/s/models"), RecursiveMode::NonRecursive)
        );
        assert_eq!(
            b("/etc/app.toml"),
            (PathBuf::from("/etc"), RecursiveMode::NonRecursive)
        );
        assert_eq!(
            b("/s/**/*.yaml"),
            (PathBuf::from("/s"), RecursiveMode::Recursive)
        );
        assert_eq!(
            b("/s/*/x.yaml"),
            (PathBuf::from("/s"), RecursiveMode::Recursive)
        );
        assert_eq!(
            absolute(&["a/*.pt".into(), "/b".into()], Path::new("/r[1]")),
            vec!["/r[[]1[]]/a/*.pt".to_owned(), "/b".to_owned()]
        );
    }

    #[test]
    fn a_write_to_a_matching_file_calls_back_and_others_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let patterns = absolute(&["*.pt".to_owned()], dir.path());
        let w = FileWatch::start("test", &patterns, move || {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .expect("watch");
        assert_eq!(w.dirs, vec![dir.path().to_path_buf()]);
        std::fs::write(dir.path().join("other.txt"), b"x").expect("write");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(seen.load(Ordering::SeqCst), 0, "not a watched file");
        let t = Instant::now();
        std::fs::write(dir.path().join("m.pt"), b"x").expect("write");
        while seen.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(seen.load(Ordering::SeqCst) > 0, "the write was seen");
    }
}
