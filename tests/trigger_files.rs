//! Triggers on real files, readings and processes: config_drift, model_integrity,
//! resource_spike (sysinfo and statvfs), exec (a real command), and scheduled.

mod trigger_support;

use std::path::Path;
use std::time::Duration;

use grace::bus::Topic;
use grace::config::Config;
use grace::incident::Severity;
use grace::trigger::{sha256_file, ExecTriggerConfig};
use trigger_support::{is, only, Harness};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn glob_in(dir: &Path, pattern: &str) -> Vec<String> {
    vec![format!("{}/{pattern}", dir.display())]
}

#[tokio::test]
async fn a_config_file_changed_without_a_deploy_is_drift_and_an_accepted_one_is_not() {
    let mut h = Harness::new(Config::default()).await;
    let watched = tempfile::tempdir().expect("tempdir");
    let file = watched.path().join("app.toml");
    std::fs::write(&file, "workers = 2\n").expect("write");
    let mut t = only();
    t.config_drift.enabled = true;
    t.config_drift.interval = 50 * MS;
    t.config_drift.paths = glob_in(watched.path(), "*.toml");
    h.start_triggers(&t).await;
    assert!(
        h.collect(300 * MS).await.is_empty(),
        "unchanged files are quiet"
    );

    std::fs::write(&file, "workers = 9\n").expect("write");
    let (_, d) = h
        .wait_for(5 * S, |e, d| is(e, d, Topic::EventIncident, "config_drift"))
        .await
        .expect("drift");
    assert_eq!(d.component, file.display().to_string());
    assert_eq!(d.playbook.as_deref(), Some("restore_from_snapshot"));
    assert_eq!(d.details["change"], "modified");
    assert_eq!(
        d.details["actual"],
        sha256_file(&file).expect("hash").as_str()
    );

    // Restored: the condition clears, so the next change is a new occurrence.
    std::fs::write(&file, "workers = 2\n").expect("write");
    assert!(h.collect(300 * MS).await.is_empty());
    std::fs::write(watched.path().join("extra.toml"), "x = 1\n").expect("write");
    let (_, d) = h
        .wait_for(5 * S, |e, d| is(e, d, Topic::EventIncident, "config_drift"))
        .await
        .expect("a new file is drift too");
    assert_eq!(d.details["change"], "added");

    // A deploy: new files, then the marker. The trigger takes them as the baseline.
    std::fs::write(&file, "workers = 4\n").expect("write");
    let marker = h.system.paths.root().join("accept_config_changes");
    std::fs::write(&marker, "").expect("marker");
    for _ in 0..200 {
        if !marker.exists() {
            break;
        }
        h.collect(20 * MS).await;
    }
    assert!(!marker.exists(), "the marker is consumed");
    assert!(
        h.collect(400 * MS).await.is_empty(),
        "accepted changes are quiet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_file_is_seen_on_its_file_event_not_at_the_next_sweep() {
    let mut h = Harness::new(Config::default()).await;
    let watched = tempfile::tempdir().expect("tempdir");
    let file = watched.path().join("app.yaml");
    std::fs::write(&file, "workers: 2\n").expect("write");
    let mut t = only();
    t.config_drift.enabled = true;
    // The sweep would come after a minute.
    t.config_drift.interval = 60 * S;
    t.config_drift.paths = glob_in(watched.path(), "*.yaml");
    h.start_triggers(&t).await;
    assert!(h.collect(300 * MS).await.is_empty());

    let written = std::time::Instant::now();
    std::fs::write(&file, "workers: 9\n").expect("write");
    let (_, d) = h
        .wait_for(5 * S, |e, d| is(e, d, Topic::EventIncident, "config_drift"))
        .await
        .expect("drift");
    let seen = written.elapsed();
    eprintln!("config drift seen {seen:?} after the write");
    assert!(seen < S, "seen after {seen:?}");
    assert_eq!(d.component, file.display().to_string());

    // A deploy's marker is taken on its event too.
    let marker = h.system.paths.root().join("accept_config_changes");
    std::fs::write(&marker, "").expect("marker");
    let t0 = std::time::Instant::now();
    while marker.exists() && t0.elapsed() < 5 * S {
        h.collect(10 * MS).await;
    }
    assert!(
        t0.elapsed() < S,
        "the marker was taken after {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn a_config_file_that_cannot_be_read_is_its_own_low_condition_not_drift() {
    let mut h = Harness::new(Config::default()).await;
    let watched = tempfile::tempdir().expect("tempdir");
    let file = watched.path().join("app.toml");
    std::fs::write(&file, "workers = 2\n").expect("write");
    let mut t = only();
    t.config_drift.enabled = true;
    t.config_drift.interval = 50 * MS;
    t.config_drift.paths = glob_in(watched.path(), "*.toml");
    h.start_triggers(&t).await;
    assert!(h.collect(300 * MS).await.is_empty());

    // A directory in the file's place: reading it fails with EISDIR, not "not found".
    std::fs::remove_file(&file).expect("rm");
    std::fs::create_dir(&file).expect("mkdir");
    let got = h.collect(600 * MS).await;
    assert_eq!(got.len(), 1, "one condition, published once: {got:?}");
    let (e, d) = &got[0];
    assert!(is(e, d, Topic::EventIncident, "config_drift"));
    assert_eq!(d.failure_mode, "file_unreadable");
    assert_eq!(d.severity, Severity::Low);
    assert_eq!(d.playbook, None);
    assert_eq!(d.component, file.display().to_string());
    assert_eq!(d.details["informational"], true);
    assert!(
        d.details["error"]
            .as_str()
            .is_some_and(|e| e.contains("directory")),
        "{}",
        d.details
    );
    assert!(grace::trigger::is_informational(d));

    // The baseline was kept: the same content back is quiet, other content is drift.
    std::fs::remove_dir(&file).expect("rmdir");
    std::fs::write(&file, "workers = 2\n").expect("write");
    assert!(h.collect(300 * MS).await.is_empty());
    std::fs::write(&file, "workers = 9\n").expect("write");
    let (_, d) = h
        .wait_for(5 * S, |e, d| is(e, d, Topic::EventIncident, "config_drift"))
        .await
        .expect("drift");
    assert_eq!(
        (d.failure_mode.as_str(), d.severity),
        ("config_drift", Severity::High)
    );
    assert_eq!(d.details["change"], "modified");
}

#[tokio::test]
async fn model_weights_that_do_not_match_their_checksum_are_restored() {
    let mut h = Harness::new(Config::default()).await;
    let models = tempfile::tempdir().expect("tempdir");
    let weights = models.path().join("model.pt");
    std::fs::write(&weights, vec![7u8; 4096]).expect("write");
    let sum = sha256_file(&weights).expect("hash");
    std::fs::write(
        models.path().join("model.pt.sha256"),
        format!("{sum}  model.pt\n"),
    )
    .expect("sidecar");
    let mut t = only();
    t.model_integrity.enabled = true;
    t.model_integrity.interval = 50 * MS;
    t.model_integrity.paths = glob_in(models.path(), "*.pt");
    h.start_triggers(&t).await;
    assert!(
        h.collect(300 * MS).await.is_empty(),
        "matching weights are quiet"
    );

    let mut bytes = std::fs::read(&weights).expect("read");
    bytes[100] ^= 0xff;
    std::fs::write(&weights, bytes).expect("corrupt");
    let (_, d) = h
        .wait_for(5 * S, |e, d| {
            is(e, d, Topic::EventIncident, "model_integrity")
        })
        .await
        .expect("mismatch");
    assert_eq!(d.playbook.as_deref(), Some("restore_model_weights"));
    assert_eq!(d.failure_mode, "checksum_mismatch");
    assert_eq!(d.details["expected_sha256"], sum.as_str());
    assert!(d.component.ends_with("model.pt"));
}

#[tokio::test]
async fn host_pressure_is_read_for_real_and_held_for_its_window() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.resource_spike.enabled = true;
    t.resource_spike.scope = grace::trigger::ResourceScope::Host;
    t.resource_spike.interval = 50 * MS;
    // Real readings against thresholds a live host is always above (memory, disk) or
    // never above (CPU).
    t.resource_spike.cpu_percent = 100.0;
    t.resource_spike.memory_percent = 0.0;
    t.resource_spike.disk_percent = 0.0;
    t.resource_spike.memory_for = Some(300 * MS);
    t.resource_spike.disk_for = Some(Duration::ZERO);
    h.start_triggers(&t).await;
    let started = tokio::time::Instant::now();
    let got = h.collect(2 * S).await;
    let find = |mode: &str| {
        got.iter()
            .find(|(e, d)| {
                is(e, d, Topic::EventIncident, "resource_spike") && d.failure_mode == mode
            })
            .map(|(_, d)| d.clone())
    };
    let disk = find("disk_pressure").expect("disk over 0%");
    assert_eq!(
        (disk.component.as_str(), disk.playbook.as_deref()),
        ("host", Some("resource_cleanup"))
    );
    assert!(disk.details["percent"]
        .as_f64()
        .is_some_and(|p| p > 0.0 && p <= 100.0));
    assert_eq!(
        disk.details["path"],
        h.system.paths.root().display().to_string()
    );
    let mem = find("memory_pressure").expect("memory over 0%");
    assert_eq!(mem.playbook.as_deref(), Some("restart_service"));
    assert!(mem.details["used_bytes"].as_u64().is_some_and(|b| b > 0));
    assert!(find("cpu_pressure").is_none());
    assert_eq!(got.len(), 2, "each condition once: {got:?}");
    assert!(started.elapsed() >= 300 * MS);

    // The default thresholds on a test machine stay quiet... unless it really is under
    // pressure; what must hold is that nothing below a threshold fires.
    for (_, d) in &got {
        let p = d.details["percent"].as_f64().expect("percent");
        assert!(p > d.details["threshold_percent"].as_f64().expect("threshold"));
    }
}

#[tokio::test]
async fn the_serve_process_itself_can_be_watched_instead_of_the_host() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    let r = &mut t.resource_spike;
    r.enabled = true;
    r.interval = 50 * MS;
    r.process = Some("self".into());
    // This process holds more than 1 MiB; CPU keeps its minute-long window.
    r.memory_mib = Some(1);
    r.memory_for = Some(Duration::ZERO);
    r.cpu_percent = 100.0;
    r.disk_percent = 100.0;
    h.start_triggers(&t).await;
    let (_, d) = h
        .wait_for(5 * S, |e, d| {
            is(e, d, Topic::EventIncident, "resource_spike")
        })
        .await
        .expect("memory pressure of this process");
    assert_eq!(
        (d.component.as_str(), d.failure_mode.as_str()),
        ("grace", "memory_pressure")
    );
    assert_eq!(d.details["pid"], std::process::id());
    let rss = d.details["rss_bytes"].as_u64().expect("rss");
    assert!(d.details["mib"]
        .as_f64()
        .is_some_and(|m| m > 1.0 && (m * 1048576.0) as u64 <= rss + 1));
    assert_eq!(d.details["threshold_mib"], 1.0);
}

fn exec(name: &str, command: &str) -> ExecTriggerConfig {
    toml::from_str(&format!(
        "name = {name:?}\ncommand = {command:?}\nplaybook = \"restart_service\"\ninterval = \"50ms\"\ntimeout = \"300ms\"\n"
    ))
    .expect("exec config")
}

#[tokio::test]
async fn a_command_exiting_non_zero_is_an_incident_with_its_playbook() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.exec = vec![
        exec("ok", "true"),
        exec("broken", "echo 'db unreachable' >&2; exit 3"),
        exec("stuck", "sleep 5"),
    ];
    t.exec[1].severity = Severity::High;
    h.start_triggers(&t).await;
    let got = h.collect(1500 * MS).await;
    let by = |c: &str| -> Vec<_> { got.iter().filter(|(_, d)| d.component == c).collect() };
    assert!(by("ok").is_empty(), "{got:?}");
    let broken = by("broken");
    assert_eq!(
        broken.len(),
        1,
        "a lasting failure is published once: {got:?}"
    );
    let d = &broken[0].1;
    assert_eq!(
        (d.trigger.as_str(), d.playbook.as_deref()),
        ("exec", Some("restart_service"))
    );
    assert_eq!(
        (d.failure_mode.as_str(), d.severity),
        ("check_failed", Severity::High)
    );
    assert_eq!(d.details["exit_code"], 3);
    assert_eq!(d.details["stderr"], "db unreachable\n");
    let stuck = by("stuck");
    assert_eq!(stuck.len(), 1, "{got:?}");
    assert_eq!(stuck[0].1.details["timed_out"], true);
}

#[tokio::test]
async fn a_command_failing_every_other_run_is_flapping_not_a_remediation_loop() {
    let mut h = Harness::new(Config::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let flag = dir.path().join("flag");
    let cmd = format!(
        "if [ -f {f} ]; then rm {f}; exit 1; else touch {f}; exit 0; fi",
        f = flag.display()
    );
    let mut t = only();
    let mut e = exec("toggle", &cmd);
    e.repeat_interval = Some(Duration::ZERO);
    t.exec = vec![e];
    h.start_triggers(&t).await;
    let got = h.collect(3 * S).await;
    let warn = got
        .iter()
        .position(|(e, d)| e.topic == Topic::EventEarlyWarning && d.failure_mode == "flapping")
        .unwrap_or_else(|| panic!("flapping reported: {got:?}"));
    let flapping = got
        .iter()
        .filter(|(_, d)| d.failure_mode == "flapping")
        .count();
    assert_eq!(flapping, 1);
    let after = got[warn..]
        .iter()
        .filter(|(e, _)| e.topic == Topic::EventIncident)
        .count();
    assert_eq!(after, 0, "no incident while it flaps: {got:?}");
    assert!(warn <= 6, "{warn} incidents before flapping was seen");
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_health_check_falls_due_every_period() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.scheduled.enabled = true;
    t.scheduled.interval = S;
    t.scheduled.every = 10 * S;
    h.start_triggers(&t).await;
    let got = h.collect(35 * S).await;
    assert_eq!(got.len(), 3, "{got:?}");
    for (i, (e, d)) in got.iter().enumerate() {
        assert_eq!(e.topic, Topic::EventEarlyWarning);
        assert_eq!(
            (
                d.trigger.as_str(),
                d.failure_mode.as_str(),
                d.playbook.as_deref()
            ),
            (
                "scheduled",
                "health_check",
                Some("proactive_kernel_health_check")
            )
        );
        assert_eq!(d.details["run"], i as u64 + 1);
    }
}
