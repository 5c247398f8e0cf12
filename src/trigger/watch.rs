//! Event-driven checks of file triggers: a `notify` watcher (inotify on Linux) on the
//! directories of a trigger's glob patterns calls back when a matching file changes,
//! so `config_drift` and `model_integrity` see a write at once instead of at their next
//! periodic sweep. The sweep stays as the fallback for what events miss (a watch that
//! could not be set, a directory created later, a full event queue).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use notify::{EventKind, RecursiveMode, Watcher};
use parking_lot::Mutex;

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
    trigger: String,
    watcher: notify::RecommendedWatcher,
    /// The directories watched.
    pub dirs: Vec<PathBuf>,
    /// Directories that did not exist yet, shared with the event handler.
    missing: Arc<Mutex<Vec<(PathBuf, RecursiveMode)>>>,
    /// The existing ancestors watched for the missing directories to appear.
    ancestors: Vec<PathBuf>,
}

impl FileWatch {
    /// Watches the directories of `patterns` (absolute) and calls `on_change` for every
    /// event on a path matching one of them. A directory that does not exist yet is
    /// waited for on its nearest existing ancestor: its creation calls `on_change` too,
    /// and the owner then calls [`FileWatch::rearm`]. None when nothing can be watched
    /// (the periodic sweep still runs).
    pub fn start(
        trigger: &str,
        patterns: &[String],
        on_change: impl Fn() + Send + 'static,
    ) -> Option<FileWatch> {
        let globs: Vec<glob::Pattern> = patterns
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
        let missing: Arc<Mutex<Vec<(PathBuf, RecursiveMode)>>> = Arc::default();
        let waiting = missing.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            let matches = |p: &PathBuf| globs.iter().any(|g| g.matches_path(p));
            let appears = |p: &PathBuf| waiting.lock().iter().any(|(m, _)| m.starts_with(p));
            if event.paths.iter().any(|p| matches(p) || appears(p)) {
                on_change();
            }
        };
        let watcher = match notify::recommended_watcher(handler) {
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
        *missing.lock() = dirs;
        let mut w = FileWatch {
            trigger: trigger.to_owned(),
            watcher,
            dirs: Vec::new(),
            missing,
            ancestors: Vec::new(),
        };
        w.rearm();
        let waiting: Vec<PathBuf> = w.missing.lock().iter().map(|(d, _)| d.clone()).collect();
        for dir in waiting {
            let Some(a) = dir.ancestors().skip(1).find(|a| a.is_dir()) else {
                continue;
            };
            if !w.ancestors.iter().any(|x| x == a)
                && w.watcher.watch(a, RecursiveMode::NonRecursive).is_ok()
            {
                w.ancestors.push(a.to_path_buf());
            }
        }
        if w.dirs.is_empty() && w.ancestors.is_empty() {
            return None;
        }
        tracing::debug!(
            trigger,
            dirs = w.dirs.len(),
            waiting = w.ancestors.len(),
            "watching files"
        );
        Some(w)
    }

    /// Watches the directories that were missing and exist now; once none is missing,
    /// stops watching their ancestors. Cheap when nothing is missing.
    pub fn rearm(&mut self) {
        let mut missing = std::mem::take(&mut *self.missing.lock());
        missing.retain(|(dir, mode)| match self.watcher.watch(dir, *mode) {
            Ok(()) => {
                self.dirs.push(dir.clone());
                false
            }
            Err(e) => {
                tracing::debug!(trigger = %self.trigger, dir = %dir.display(), error = %e, "directory not watched yet");
                true
            }
        });
        let none_left = missing.is_empty();
        *self.missing.lock() = missing;
        if none_left {
            for a in self.ancestors.drain(..) {
                let _ = self.watcher.unwatch(&a);
            }
        }
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
        std::fs::write(dir.path().join("m.pt"), b"x").expect("write");
        assert!(wait_for(&seen, 1), "the write was seen");
    }

    fn wait_for(seen: &AtomicUsize, n: usize) -> bool {
        let t = Instant::now();
        while seen.load(Ordering::SeqCst) < n && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(2));
        }
        seen.load(Ordering::SeqCst) >= n
    }

    #[test]
    fn a_directory_created_later_is_waited_for_then_watched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let patterns = absolute(&["models/*.pt".to_owned()], dir.path());
        let mut w = FileWatch::start("test", &patterns, move || {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .expect("waits on the parent");
        assert!(w.dirs.is_empty());
        std::fs::create_dir(dir.path().join("models")).expect("mkdir");
        assert!(wait_for(&seen, 1), "the directory's creation was seen");
        w.rearm();
        assert_eq!(w.dirs, vec![dir.path().join("models")]);
        let before = seen.load(Ordering::SeqCst);
        std::fs::write(dir.path().join("models/m.pt"), b"x").expect("write");
        assert!(wait_for(&seen, before + 1), "a write inside it was seen");
    }
}
