//! Chaos scenarios: the built-ins parse, lookups by name and path, and every kind of
//! mistake in a scenario file is reported with its file, line and a way to fix it.

use std::time::Duration;

use grace::chaos::scenario::{Expectation, FaultKind, KernelAction, Probe, Process};
use grace::chaos::{self, ChaosError, Scenario};

fn parse_err(text: &str) -> ChaosError {
    Scenario::parse(text, "t.yaml").expect_err("must be rejected")
}

const MINIMAL: &str =
    "name: t\nfaults:\n  - fault: kill_kernel\n    kernel: kv_store\nslo: { max_recovery: 5s }\n";

#[test]
fn every_builtin_parses_and_names_are_unique() {
    let all = chaos::builtins().expect("built-ins parse");
    assert!(all.len() >= 16, "{} built-ins", all.len());
    let mut names: Vec<String> = all.iter().map(|s| s.name.to_lowercase()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.len(), "duplicate names");
    for s in &all {
        assert!(!s.description.is_empty(), "{} has no description", s.name);
        assert!(!s.steady_state.is_empty());
    }
}

#[test]
fn dirt01_kills_three_critical_kernels_at_once() {
    let s = chaos::find("dirt01").expect("found regardless of case");
    assert_eq!(s.name, "DIRT01");
    assert_eq!(s.faults.len(), 1, "one parallel step");
    let killed: Vec<&str> = s.faults[0]
        .faults
        .iter()
        .map(|f| match &f.kind {
            FaultKind::Kernel {
                kernel,
                action: KernelAction::Kill,
            } => kernel.as_str(),
            other => panic!("unexpected fault {other:?}"),
        })
        .collect();
    assert_eq!(killed, ["message_bus", "self_healing", "coding_agent"]);
    assert_eq!(s.slo.max_recovery, Duration::from_secs(120));
    assert_eq!(chaos::find("DiRt01").expect("any case").name, "DIRT01");
    assert_eq!(
        chaos::find("process_crash").expect("by stem").name,
        "process_crash"
    );
}

#[test]
fn a_path_loads_a_file_and_unknown_names_list_the_builtins() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("mine.yaml");
    std::fs::write(&p, MINIMAL).expect("write");
    let s = chaos::find(p.to_str().expect("utf8")).expect("file loads");
    assert_eq!(s.name, "t");
    assert_eq!(
        s.steady_state,
        vec![Probe::HealthOk],
        "default steady state"
    );
    let e = chaos::find("no_such_scenario").expect_err("unknown");
    let msg = e.to_string();
    assert!(
        msg.contains("DIRT01") && msg.contains("kill_switch"),
        "{msg}"
    );
    assert!(e.is_usage());
}

#[test]
fn full_syntax_parses_probes_expectations_and_parallel_groups() {
    let text = r#"
name: full
seed: 7
config: { heartbeat: { critical_timeout: 1s } }
spawn: { fixed_port: true }
steady_state:
  - health_ok
  - all_kernels_running
  - no_open_incidents
  - kernel_running: kv_store
  - http_get: { path: /api/kernels, status: 200 }
faults:
  - at: 2s
    fault: sigstop
    process: serve
    duration: 3s
  - at: 0s
    parallel:
      - { fault: panic_kernel, kernel: a, repeat: 3, every: 100ms }
      - { fault: cpu_siege, threads: 2, duration: 1s }
slo: { max_recovery: 30s, max_detection: 5s }
abort:
  - { probe: { kernel_running: kv_store }, failing_for: 10s }
expect:
  - incident: { trigger: resource_spike, playbook: shed_load, resolved: true }
  - kernel_restarted: a
  - kernel_state: { kernel: a, state: failed }
  - serve_restarted
  - serve_down: { from: 1s, to: 2s }
  - alert: critical
timeout: 9s
poll: 20ms
"#;
    let s = Scenario::parse(text, "full.yaml").expect("parses");
    assert_eq!(s.faults[0].at, Duration::ZERO, "steps sorted by offset");
    assert_eq!(s.faults[0].faults.len(), 2);
    assert_eq!(s.faults[0].faults[0].repeat, 3);
    assert_eq!(
        s.faults[1].faults[0].kind,
        FaultKind::Sigstop {
            process: Process::Serve
        }
    );
    assert_eq!(s.steady_state.len(), 5);
    assert_eq!(
        s.steady_state[4],
        Probe::HttpGet {
            path: "/api/kernels".into(),
            status: 200
        }
    );
    assert_eq!(s.expect.len(), 6);
    assert_eq!(s.expect[3], Expectation::ServeRestarted);
    assert_eq!(s.abort[0].probe, Probe::KernelRunning("kv_store".into()));
    // The last fault ends at 2 s + 3 s.
    assert_eq!(s.injection_end(), Duration::from_secs(5));
    assert_eq!(s.timeout(), Duration::from_secs(9));
    assert!(s.spawn.fixed_port);
}

fn assert_parse(e: ChaosError, line: usize, needles: &[&str]) {
    match &e {
        ChaosError::Parse { file, line: l, .. } => {
            assert_eq!(file, "t.yaml");
            assert_eq!(*l, line, "{e}");
        }
        other => panic!("expected a parse error, got {other}"),
    }
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "{msg:?} lacks {n:?}");
    }
    assert!(e.is_usage());
}

#[test]
fn unknown_top_level_key_is_reported_with_its_line() {
    let e = parse_err(&format!("{MINIMAL}sloo: 1\n"));
    assert_parse(e, 6, &["sloo", "t.yaml"]);
}

#[test]
fn unknown_fault_kind_lists_the_faults() {
    let e =
        parse_err("name: t\nfaults:\n  - at: 1s\n    fault: explode\nslo: { max_recovery: 5s }\n");
    assert_parse(e, 3, &["explode", "kill_kernel", "occupy_port"]);
}

#[test]
fn missing_and_foreign_parameters_are_named() {
    let e = parse_err("name: t\nfaults:\n  - fault: kill_kernel\nslo: { max_recovery: 5s }\n");
    assert_parse(e, 3, &["kill_kernel needs `kernel`"]);
    let e = parse_err(
        "name: t\nfaults:\n  - fault: kill_kernel\n    kernel: a\n    mib: 3\nslo: { max_recovery: 5s }\n",
    );
    assert_parse(e, 3, &["does not take `mib`", "kernel"]);
    let e = parse_err("name: t\nfaults:\n  - fault: cpu_siege\nslo: { max_recovery: 5s }\n");
    assert_parse(e, 3, &["needs `duration`"]);
    let e = parse_err(
        "name: t\nfaults:\n  - fault: panic_kernel\n    kernel: a\n    repeat: 3\nslo: { max_recovery: 5s }\n",
    );
    assert_parse(e, 3, &["every"]);
    let e = parse_err(
        "name: t\nfaults:\n  - fault: disk_siege\n    level: 150\n    duration: 1s\nslo: { max_recovery: 5s }\n",
    );
    assert_parse(e, 3, &["level 150"]);
}

#[test]
fn a_fault_inside_a_parallel_group_is_located() {
    let e = parse_err(
        "name: t\nfaults:\n  - parallel:\n      - { fault: kill_kernel, kernel: a }\n      - { fault: kill_kernel, kernal: b }\nslo: { max_recovery: 5s }\n",
    );
    assert_parse(e, 5, &["kernal"]);
}

#[test]
fn bad_durations_and_probes_are_reported() {
    let e = parse_err(
        "name: t\nfaults:\n  - fault: kill_kernel\n    kernel: a\nslo: { max_recovery: soon }\n",
    );
    assert_parse(e, 5, &["max_recovery"]);
    let e = parse_err(&format!("{MINIMAL}steady_state:\n  - healthy\n"));
    assert_parse(e, 7, &["healthy"]);
}

#[test]
fn inconsistent_scenarios_are_invalid_with_a_fix() {
    let e = parse_err("name: t\nfaults: []\nslo: { max_recovery: 5s }\n");
    assert!(matches!(e, ChaosError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("at least one fault"), "{e}");
    let e = parse_err(
        "name: t\nfaults:\n  - fault: kill_kernel\n    kernel: a\nslo: { max_recovery: 0s }\n",
    );
    assert!(e.to_string().contains("max_recovery"), "{e}");
    let e = parse_err(&format!("{MINIMAL}expect: [files_restored]\n"));
    assert!(e.to_string().contains("needs a corrupt fault"), "{e}");
    let e = parse_err(&format!(
        "{MINIMAL}expect:\n  - serve_down: {{ from: 3s, to: 1s }}\n"
    ));
    assert!(e.to_string().contains("before `to`"), "{e}");
    let e = parse_err(&format!(
        "{MINIMAL}steady_state:\n  - http_get: {{ path: health }}\n"
    ));
    assert!(e.to_string().contains("must start with `/`"), "{e}");
}

#[test]
fn spawned_config_enables_chaos_and_merges_overrides() {
    let s = chaos::find("heartbeat_hang").expect("built-in");
    let text = chaos::spawn_config(&s).expect("valid config");
    let cfg: toml::Table = toml::from_str(&text).expect("toml");
    assert_eq!(cfg["chaos"]["enabled"].as_bool(), Some(true));
    let kernels = cfg["kernel"].as_array().expect("kernels");
    let wp: Vec<_> = kernels
        .iter()
        .filter(|k| k["name"].as_str() == Some("worker_pool"))
        .collect();
    assert_eq!(wp.len(), 1, "same name replaces");
    assert_eq!(wp[0]["heartbeat_timeout"].as_str(), Some("2s"));
    assert!(kernels.len() >= 3, "the other demo kernels stay");

    let bad = Scenario::parse(
        &format!("{MINIMAL}config: {{ heartbeat: {{ nonsense: 1 }} }}\n"),
        "t.yaml",
    )
    .expect("parses; the config is checked when spawning");
    let e = chaos::spawn_config(&bad).expect_err("unknown key");
    assert!(e.to_string().contains("nonsense"), "{e}");
}

#[test]
fn spawned_instances_watch_host_resources_only_in_scenarios_about_them() {
    let spike = |name: &str| {
        let s = chaos::find(name).expect("built-in");
        let cfg: toml::Table =
            toml::from_str(&chaos::spawn_config(&s).expect("valid")).expect("toml");
        cfg["triggers"]["resource_spike"]
            .get("enabled")
            .and_then(toml::Value::as_bool)
    };
    assert_eq!(
        spike("dirt02"),
        Some(false),
        "snapshot corruption ignores the host"
    );
    assert_ne!(spike("dirt03"), Some(false), "the CPU siege watches it");
    assert_ne!(spike("memory_spike"), Some(false));
}

#[test]
fn host_relative_thresholds_are_parsed_and_merged_last() {
    let s = Scenario::parse(
        &format!("{MINIMAL}spawn: {{ memory_threshold_above_use_mib: 1536, disk_threshold_above_use_mib: 2048 }}\n"),
        "t.yaml",
    )
    .expect("parses");
    assert_eq!(s.spawn.memory_threshold_above_use_mib, Some(1536));
    assert_eq!(s.spawn.disk_threshold_above_use_mib, Some(2048));
    let host = chaos::host::relative_thresholds(
        &s.spawn,
        Some(chaos::host::Usage {
            used: 1 << 30,
            usable: 8 << 30,
        }),
        Some(chaos::host::Usage {
            used: 0,
            usable: 100 << 30,
        }),
    )
    .expect("readings");
    let cfg: toml::Table =
        toml::from_str(&chaos::spawn_config_with(&s, &host).expect("valid")).expect("toml");
    let spike = &cfg["triggers"]["resource_spike"];
    assert_eq!(spike["memory_percent"].as_float(), Some(31.25));
    assert_eq!(spike["disk_percent"].as_float(), Some(2.0));
}

#[test]
fn every_builtin_makes_a_valid_spawned_config() {
    for s in chaos::builtins().expect("built-ins") {
        if let Err(e) = chaos::spawn_config(&s) {
            panic!("{}: {e}", s.name);
        }
    }
}

#[test]
fn merge_appends_new_kernels_and_replaces_scalars() {
    let mut base: toml::Table =
        toml::from_str("a = 1\n[t]\nx = 1\ny = 2\n[[kernel]]\nname = \"k\"\nkind = \"model\"\n")
            .expect("base");
    let over: toml::Table =
        toml::from_str("a = 2\n[t]\ny = 3\n[[kernel]]\nname = \"new\"\nkind = \"exec\"\n")
            .expect("over");
    chaos::merge_config(&mut base, &over);
    assert_eq!(base["a"].as_integer(), Some(2));
    assert_eq!(base["t"]["x"].as_integer(), Some(1));
    assert_eq!(base["t"]["y"].as_integer(), Some(3));
    assert_eq!(base["kernel"].as_array().map(Vec::len), Some(2));
}

#[test]
fn harm_probes_faults_and_expectations_parse() {
    let text = r#"
name: harm
spawn: { nofile: 120 }
steady_state:
  - service_http: { url: "http://127.0.0.1:18999/x" }
  - tcp_connect: "[::1]:18999"
faults:
  - { at: 0s, fault: stall_uploads, connections: 10, duration: 5s }
  - { at: 1s, fault: idle_connections, connections: 150, duration: 8s }
slo: { max_recovery: 30s }
expect:
  - no_incident: { trigger: api_timeout, component: host }
  - incident: { trigger: resource_spike, status: failed, closed_reason: [verification_failed, remediation_failed] }
  - incident: { trigger: heartbeat_failure, closed_reason: recovered_by_restart }
  - no_open_incidents_at_end
  - serve_not_restarted
"#;
    let s = Scenario::parse(text, "harm.yaml").expect("parses");
    assert_eq!(s.spawn.nofile, Some(120));
    match &s.steady_state[0] {
        Probe::ServiceHttp { url, status } => {
            assert_eq!(
                (url.addr.port, url.path.as_str(), *status),
                (18999, "/x", 200)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.steady_state[1].label(), "tcp_connect([::1]:18999)");
    assert_eq!(
        s.faults[0].faults[0].kind,
        FaultKind::StallUploads {
            connections: 10,
            path: "/api/chaos/errors".into()
        }
    );
    assert_eq!(
        s.faults[1].faults[0].kind,
        FaultKind::IdleConnections { connections: 150 }
    );
    assert_eq!(s.injection_end(), Duration::from_secs(9));
    match &s.expect[1] {
        Expectation::Incident(m) => {
            assert_eq!(m.status, Some(vec!["failed".to_owned()]));
            assert_eq!(m.closed_reason.as_ref().map(Vec::len), Some(2));
        }
        other => panic!("{other:?}"),
    }
    match &s.expect[2] {
        Expectation::Incident(m) => {
            assert_eq!(
                m.closed_reason,
                Some(vec!["recovered_by_restart".to_owned()])
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.expect[3], Expectation::NoOpenIncidentsAtEnd);
    assert_eq!(s.expect[4], Expectation::ServeNotRestarted);
}

#[test]
fn harm_mistakes_are_reported_with_a_fix() {
    let e = parse_err(&format!(
        "{MINIMAL}steady_state:\n  - service_http: {{ url: \"http://192.168.0.9:80/\" }}\n"
    ));
    assert_parse(
        e,
        7,
        &["192.168.0.9 is not a loopback address", "127.0.0.1"],
    );
    let e = parse_err(&format!(
        "{MINIMAL}steady_state:\n  - tcp_connect: \"127.0.0.1\"\n"
    ));
    assert_parse(e, 7, &["has no port"]);
    let e = parse_err(
        "name: t\nfaults:\n  - fault: stall_uploads\n    duration: 1s\nslo: { max_recovery: 5s }\n",
    );
    assert_parse(e, 3, &["needs `connections`"]);
    let e = parse_err(
        "name: t\nfaults:\n  - { fault: idle_connections, connections: 0, duration: 1s }\nslo: { max_recovery: 5s }\n",
    );
    assert_parse(e, 3, &["connections 0 is out of range"]);
    let e = parse_err(
        "name: t\nfaults:\n  - { fault: stall_uploads, connections: 1, path: up, duration: 1s }\nslo: { max_recovery: 5s }\n",
    );
    assert_parse(e, 3, &["must start with `/`"]);
    let e = parse_err(
        "name: t\nfaults:\n  - { fault: idle_connections, connections: 3 }\nslo: { max_recovery: 5s }\n",
    );
    assert_parse(e, 3, &["needs `duration`"]);
    let e = parse_err(&format!(
        "{MINIMAL}expect:\n  - incident: {{ trigger: x, status: done }}\n"
    ));
    assert!(matches!(e, ChaosError::Invalid { .. }), "{e}");
    assert!(
        e.to_string().contains("status \"done\" is not one of"),
        "{e}"
    );
    let e = parse_err(&format!("{MINIMAL}spawn: {{ nofile: 8 }}\n"));
    assert!(e.to_string().contains("at least 32"), "{e}");
}
