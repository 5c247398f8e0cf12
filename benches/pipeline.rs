//! Incident throughput of the store + audit path: open → resolve with steps → durable,
//! under each fsync policy, against a same-run baseline of raw appends of the same bytes;
//! and of the whole pipeline on a running tree: a trigger's publication on the bus →
//! the dispatcher opens the incident → a playbook runs against a live kernel → the
//! incident is closed and durable.
//!
//! Run with: `cargo bench --bench pipeline` (optionally `GRACE_BENCH_DIR=/some/disk`,
//! `GRACE_BENCH_INCIDENTS=N`). Files go under the target directory by default, so the
//! numbers are those of a real disk, not of a tmpfs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grace::audit::{AuditConfig, AuditLog, FsyncPolicy};
use grace::incident::{
    IncidentDraft, IncidentStatus, IncidentStore, IncidentsConfig, Severity, StepRecord,
};
use serde_json::json;

struct Row {
    name: String,
    threads: usize,
    incidents: usize,
    secs: f64,
    fsyncs: Option<u64>,
    baseline: Option<usize>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.incidents as f64 / self.secs
    }
}

fn draft(component: String) -> IncidentDraft {
    IncidentDraft {
        trigger: "heartbeat_failure".into(),
        component,
        failure_mode: "heartbeat_failure".into(),
        severity: Severity::High,
        playbook: Some("restart_kernel".into()),
        summary: "heartbeat older than 5s".into(),
        details: json!({ "heartbeat_age_ms": 6123, "timeout_ms": 5000 }),
        detected_at: None,
    }
}

fn steps() -> Vec<StepRecord> {
    ["stop", "restart", "verify"]
        .iter()
        .map(|s| StepRecord {
            name: (*s).into(),
            action: format!("{s}_kernel"),
            status: "ok".into(),
            attempts: 1,
            duration_ms: 3,
            output: json!({ "kernel": "worker" }),
            available_before: Some(true),
            available_after: Some(true),
        })
        .collect()
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}

fn store(dir: &Path, fsync: FsyncPolicy) -> (Arc<IncidentStore>, Arc<AuditLog>) {
    let interval = Duration::from_millis(50);
    let audit = Arc::new(
        AuditLog::open(
            &dir.join("audit.log"),
            &AuditConfig {
                fsync,
                group_interval: interval,
                ..AuditConfig::default()
            },
        )
        .expect("audit"),
    );
    let store = IncidentStore::load(
        &dir.join("incidents.jsonl"),
        audit.clone(),
        &IncidentsConfig {
            fsync,
            group_interval: interval,
            keep_recent: 1000,
            ..IncidentsConfig::default()
        },
    )
    .expect("store");
    (Arc::new(store), audit)
}

/// Runs `n` incidents on `threads` threads; `wait` makes each durable before the next.
fn run_store(
    dir: &Path,
    name: &str,
    fsync: FsyncPolicy,
    threads: usize,
    n: usize,
    wait: bool,
) -> Row {
    let d = fresh(dir, name);
    let (s, audit) = store(&d, fsync);
    let per = n / threads;
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..per {
                    let opened = s.open(draft(format!("k{t}_{i}"))).expect("open");
                    s.resolve(
                        opened.incident_id(),
                        IncidentStatus::Resolved,
                        true,
                        steps(),
                    )
                    .expect("resolve");
                    if wait {
                        s.sync().expect("sync");
                    }
                }
            });
        }
    });
    s.sync().expect("final sync");
    let secs = t0.elapsed().as_secs_f64();
    Row {
        name: name.to_owned(),
        threads,
        incidents: per * threads,
        secs,
        fsyncs: Some(audit.fsyncs()),
        baseline: None,
    }
}

/// The whole pipeline on a running tree (`Tree::start`): `n` publications on
/// `event.incident`, as a trigger makes them, each answered by a one-step playbook
/// (`verify_health` of a live kernel); done when every incident is closed and the files
/// are synced.
fn run_pipeline(dir: &Path, name: &str, fsync: FsyncPolicy, n: usize) -> Row {
    use grace::bus::Topic;
    use grace::config::{parse, ConfigSource};
    use grace::state::StatePaths;
    use grace::tree::{Extensions, System, Tree};

    let d = fresh(dir, name);
    let books = d.join("playbooks");
    std::fs::create_dir_all(&books).expect("playbooks dir");
    std::fs::write(
        books.join("bench.yaml"),
        "name: bench_verify\ndescription: verify a live kernel\ntriggers: [bench]\nslo: 10s\n\
         steps:\n  - name: verify\n    action: verify_health\n    args: { kernel: w }\n",
    )
    .expect("playbook");
    let policy = match fsync {
        FsyncPolicy::Always => "always",
        _ => "group",
    };
    let toml = format!(
        "[triggers]\nenabled = false\n[playbooks]\ndir = {books:?}\nmax_concurrent = 64\n\
         [audit]\nfsync = \"{policy}\"\n[incidents]\nfsync = \"{policy}\"\n\
         [[kernel]]\nname = \"w\"\nkind = \"kv_store\"\n"
    );
    let config = parse(&toml, ConfigSource::Embedded)
        .expect("bench config")
        .config;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (secs, fsyncs) = rt.block_on(async {
        let system =
            System::open(Arc::new(config), StatePaths::new(d.join("state"))).expect("system");
        let tree = Tree::start(&system, Extensions::default())
            .await
            .expect("tree");
        let t0 = Instant::now();
        for i in 0..n {
            let mut dr = draft(format!("k{i}"));
            dr.trigger = "bench".into();
            dr.playbook = None;
            system
                .bus
                .emit(Topic::EventIncident, Some(&dr.component), &dr);
        }
        while tree.dispatcher.stats().snapshot().successes < n as u64 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        system.incidents.sync().expect("sync");
        system.audit.sync().expect("sync");
        let secs = t0.elapsed().as_secs_f64();
        let fsyncs = system.audit.fsyncs();
        tree.shutdown(Duration::from_secs(10)).await;
        (secs, fsyncs)
    });
    Row {
        name: name.to_owned(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        incidents: n,
        secs,
        fsyncs: Some(fsyncs),
        baseline: None,
    }
}

/// The records the store wrote, in write order per file: each line of incidents.jsonl
/// and each frame of audit.log, interleaved as the store writes them (line, then frame).
fn records_of(dir: &Path) -> Vec<Vec<u8>> {
    let jsonl = std::fs::read(dir.join("incidents.jsonl")).expect("jsonl");
    let audit = std::fs::read(dir.join("audit.log")).expect("audit");
    let lines: Vec<Vec<u8>> = jsonl
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos + 44 <= audit.len() {
        let len = u32::from_le_bytes([
            audit[pos + 4],
            audit[pos + 5],
            audit[pos + 6],
            audit[pos + 7],
        ]) as usize;
        frames.push(audit[pos..pos + 44 + len].to_vec());
        pos += 44 + len;
    }
    lines
        .into_iter()
        .zip(frames)
        .flat_map(|(l, f)| [l, f])
        .collect()
}

fn run_raw(dir: &Path, name: &str, records: &[Vec<u8>], per_incident: usize, fsync: bool) -> Row {
    let d = fresh(dir, name);
    let mut f: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("raw.log"))
        .expect("raw");
    let t0 = Instant::now();
    let mut fsyncs = 0;
    for r in records {
        f.write_all(r).expect("write");
        if fsync {
            f.sync_data().expect("fsync");
            fsyncs += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    Row {
        name: name.to_owned(),
        threads: 1,
        incidents: records.len() / per_incident,
        secs,
        fsyncs: Some(fsyncs),
        baseline: None,
    }
}

fn main() {
    let dir = std::env::var_os("GRACE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pipeline-bench"));
    let n_sync: usize = std::env::var("GRACE_BENCH_INCIDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let n_fast = n_sync * 20;
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!(
        "incident pipeline (store + audit log), files in {}",
        dir.display()
    );
    println!("each incident: open, resolve with 3 steps = 2 lines in incidents.jsonl + 2 audit records\n");

    let mut rows = Vec::new();
    // Capture the exact bytes for the raw baselines from a non-durable run.
    rows.push(run_store(
        &dir,
        "group, no wait (durable <= 50 ms)",
        FsyncPolicy::Group,
        1,
        n_fast,
        false,
    ));
    let records = records_of(&dir.join(&rows[0].name));
    let per_incident = 4;
    let raw_fast = run_raw(&dir, "raw append, no fsync", &records, per_incident, false);
    let raw_sync = run_raw(
        &dir,
        "raw append, fsync per record",
        &records[..n_sync * per_incident],
        per_incident,
        true,
    );
    rows.push(run_store(
        &dir,
        "always (fsync per record)",
        FsyncPolicy::Always,
        1,
        n_sync,
        false,
    ));
    rows.push(run_store(
        &dir,
        "always, 8 writers",
        FsyncPolicy::Always,
        8,
        n_sync,
        false,
    ));
    rows.push(run_store(
        &dir,
        "group commit, durable each",
        FsyncPolicy::Group,
        1,
        n_sync,
        true,
    ));
    rows.push(run_store(
        &dir,
        "group commit, durable each, 8 writers",
        FsyncPolicy::Group,
        8,
        n_sync * 2,
        true,
    ));
    rows.push(run_pipeline(
        &dir,
        "pipeline on a tree, group commit",
        FsyncPolicy::Group,
        n_fast / 4,
    ));
    rows.push(run_pipeline(
        &dir,
        "pipeline on a tree, fsync per record",
        FsyncPolicy::Always,
        n_sync,
    ));
    rows[0].baseline = Some(0);
    for r in rows.iter_mut().skip(1) {
        r.baseline = Some(1);
    }
    let last = rows.len() - 2;
    rows[last].baseline = Some(0);
    let baselines = [raw_fast, raw_sync];

    println!(
        "{:<40} {:>7} {:>9} {:>9} {:>13} {:>8} {:>12}",
        "path", "threads", "incidents", "seconds", "incidents/s", "fsyncs", "vs baseline"
    );
    for b in &baselines {
        println!(
            "{:<40} {:>7} {:>9} {:>9.3} {:>13.0} {:>8} {:>12}",
            b.name,
            b.threads,
            b.incidents,
            b.secs,
            b.rate(),
            b.fsyncs.unwrap_or(0),
            "baseline"
        );
    }
    for r in &rows {
        let base = &baselines[r.baseline.unwrap_or(0)];
        println!(
            "{:<40} {:>7} {:>9} {:>9.3} {:>13.0} {:>8} {:>11.2}x",
            r.name,
            r.threads,
            r.incidents,
            r.secs,
            r.rate(),
            r.fsyncs.map(|f| f.to_string()).unwrap_or_default(),
            r.rate() / base.rate()
        );
    }
    println!("\nfsyncs: those of audit.log (incidents.jsonl does as many). Baseline of the");
    println!("no-wait and group-commit pipeline rows: raw append without fsync; of the others:");
    println!(
        "raw append with fsync per record. Pipeline rows: threads = the tree's runtime workers;"
    );
    println!("each incident is also a playbook run with its step records (more audit records).");
    let _ = std::fs::remove_dir_all(&dir);
}
