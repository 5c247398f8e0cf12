//! Everything the chaos harness creates is undone when its guard drops, on the normal
//! path and when a panic unwinds through it: siege threads, siege files, stopped
//! processes, held ports, corrupted files.

use std::path::Path;
use std::time::Duration;

use grace::chaos::guard::{newest_match, Corrupted, PortHold, Stopped};
use grace::chaos::scenario::CorruptMode;
use grace::chaos::siege::{CpuSiege, DiskSiege, MemorySiege};

fn siege_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("disk-siege"))
        .collect()
}

#[test]
fn disk_siege_file_is_removed_on_drop() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = DiskSiege::start(dir.path(), 99.0, 2).expect("siege");
    assert!(
        s.capped(),
        "99 % of the test file system is more than 2 MiB"
    );
    assert_eq!(s.bytes(), 2 << 20);
    let meta = std::fs::metadata(s.path()).expect("file exists");
    assert_eq!(meta.len(), 2 << 20);
    assert_eq!(siege_files(dir.path()).len(), 1);
    drop(s);
    assert!(siege_files(dir.path()).is_empty());
}

#[test]
fn disk_siege_file_is_removed_when_a_panic_unwinds() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_path_buf();
    let r = std::panic::catch_unwind(move || {
        let _s = DiskSiege::start(&d, 99.0, 1).expect("siege");
        assert_eq!(siege_files(&d).len(), 1);
        panic!("fault in the middle of a siege");
    });
    assert!(r.is_err());
    assert!(siege_files(dir.path()).is_empty());
}

#[test]
fn a_level_already_reached_writes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = DiskSiege::start(dir.path(), 1.0, 64).expect("siege");
    assert_eq!(s.bytes(), 0, "the test file system is above 1 %");
    assert!(!s.capped());
}

fn cpu_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .map(|c| c.starts_with("chaos-cpu"))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn cpu_siege_threads_run_and_are_joined_on_drop() {
    let s = CpuSiege::start(2).expect("siege");
    assert_eq!(s.threads(), 2);
    // A thread names itself once it runs.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cpu_threads() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "siege threads never ran"
        );
        std::thread::yield_now();
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _s = s;
        panic!("unwinding through a siege");
    }));
    assert!(r.is_err());
    assert_eq!(cpu_threads(), 0, "every siege thread was joined");
}

#[test]
fn memory_siege_holds_touched_memory() {
    let s = MemorySiege::start(8).expect("siege");
    assert_eq!(s.bytes(), 8 << 20);
    assert!(
        MemorySiege::start(u64::MAX >> 20).is_err(),
        "too large fails, no abort"
    );
}

fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = stat.rsplit_once(')').expect("comm").1;
    after.trim_start().chars().next().expect("state")
}

#[test]
fn a_stopped_process_is_continued_on_drop() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let pid = child.id();
    let stopped = Stopped::stop(pid).expect("stop");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while proc_state(pid) != 'T' {
        assert!(std::time::Instant::now() < deadline, "never stopped");
        std::thread::yield_now();
    }
    drop(stopped);
    while proc_state(pid) == 'T' {
        assert!(std::time::Instant::now() < deadline, "never continued");
        std::thread::yield_now();
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
}

#[test]
fn a_held_port_is_released_on_drop() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let hold = PortHold::bind("127.0.0.1", port).expect("hold");
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
    drop(hold);
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
}

#[test]
fn a_corrupted_file_is_put_back_unless_the_system_restored_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("weights.bin");
    let original: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    std::fs::write(&p, &original).expect("write");

    // Not restored by anyone: the guard puts it back when it drops.
    let c = Corrupted::corrupt(&p, CorruptMode::Flip, 8, 1).expect("corrupt");
    assert_ne!(std::fs::read(&p).expect("read"), original);
    assert!(!c.restored());
    drop(c);
    assert_eq!(std::fs::read(&p).expect("read"), original);

    // Restored by the system: the guard sees it and leaves it alone.
    let mut c = Corrupted::corrupt(&p, CorruptMode::Truncate, 0, 1).expect("corrupt");
    assert_eq!(std::fs::read(&p).expect("read").len(), 2048);
    std::fs::write(&p, &original).expect("restore");
    assert!(c.restored());
    assert!(!c.undo().expect("undo"), "nothing to put back");

    // Deleted by a bad cleanup: put back too.
    let mut c = Corrupted::corrupt(&p, CorruptMode::Flip, 1, 2).expect("corrupt");
    std::fs::remove_file(&p).expect("rm");
    assert!(c.undo().expect("undo"));
    assert_eq!(std::fs::read(&p).expect("read"), original);

    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").expect("write");
    assert!(Corrupted::corrupt(&empty, CorruptMode::Flip, 1, 1).is_err());
}

#[test]
fn the_newest_match_is_chosen_by_modification_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let snaps = dir.path().join("snapshots/model");
    std::fs::create_dir_all(&snaps).expect("mkdir");
    let old = snaps.join("model_20250101_000000.bin");
    let new = snaps.join("model_20250102_000000.bin");
    std::fs::write(&new, b"new").expect("write");
    std::fs::write(&old, b"old").expect("write");
    let t = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .expect("open")
        .set_modified(t)
        .expect("mtime");
    assert_eq!(
        newest_match(dir.path(), "snapshots/model/model_*"),
        Some(new)
    );
    assert_eq!(newest_match(dir.path(), "snapshots/nothing/*"), None);
}
