//! The Kubernetes example (`examples/kubernetes/`), checked without `kubectl`: every
//! manifest parses and has its required fields, the Deployment runs one `grace serve`
//! per pod with the ConfigMap's `grace.toml`, its probes and scrape annotations name
//! the port that config sets, the Service reaches it; and a real serve on that config
//! answers the probes' paths.

mod deploy_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deploy_support::{grace_ok, Running, GRACE};
use nix::sys::signal::Signal;
use serde_yaml_ng::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes")
}

fn manifest(name: &str) -> Value {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path).expect("read manifest");
    let v: Value =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for key in ["apiVersion", "kind"] {
        assert!(
            v[key].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: no {key}"
        );
    }
    if v["kind"] != "Kustomization" {
        assert!(
            v["metadata"]["name"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{name}: no metadata.name"
        );
    }
    v
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// The ConfigMap's grace.toml, written to `to`, and the configuration Grace reads
/// from it.
fn config_map_config(to: &Path) -> (PathBuf, grace::config::Config) {
    let cm = manifest("configmap.yaml");
    assert_eq!(cm["kind"], "ConfigMap");
    let path = to.join("grace.toml");
    std::fs::write(&path, s(&cm["data"]["grace.toml"])).expect("write grace.toml");
    let loaded = grace::config::load(Some(&path)).expect("the ConfigMap's grace.toml loads");
    (path, loaded.config)
}

/// The container port a probe's or Service's `port` names (a name or a number).
fn resolve_port(container: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = s(port);
    container["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

/// The value after `flag` in `args`.
fn arg<'a>(args: &'a [&'a str], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| *a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    args[i + 1]
}

#[test]
fn the_manifests_run_one_serve_probed_and_scraped_on_the_configured_port() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, config) = config_map_config(tmp.path());
    let port = u64::from(config.http.port);
    assert_eq!(
        config.http.bind, "0.0.0.0",
        "the kubelet probes the pod's address"
    );

    let cm = manifest("configmap.yaml");
    let d = manifest("deployment.yaml");
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["kind"], "Deployment");
    let template = &d["spec"]["template"];
    let labels = template["metadata"]["labels"]
        .as_mapping()
        .expect("pod labels");
    for (k, v) in d["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("selector")
    {
        assert_eq!(labels.get(k), Some(v), "the selector matches the pod");
    }
    let containers = template["spec"]["containers"]
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one serve per pod");
    let c = &containers[0];
    assert!(c["name"].as_str().is_some() && c["image"].as_str().is_some());
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(s)
        .collect();
    assert_eq!(args.last(), Some(&"serve"), "{args:?}");
    assert!(!args.contains(&"watch"), "the kubelet is the watchdog");

    // The config is the ConfigMap, mounted where --config points.
    let mounts = c["volumeMounts"].as_sequence().expect("volumeMounts");
    let volumes = template["spec"]["volumes"].as_sequence().expect("volumes");
    let volume_at = |path: &Path| -> &Value {
        let m = mounts
            .iter()
            .filter(|m| path.starts_with(s(&m["mountPath"])))
            .max_by_key(|m| s(&m["mountPath"]).len())
            .unwrap_or_else(|| panic!("nothing mounted at {}", path.display()));
        let v = volumes
            .iter()
            .find(|v| v["name"] == m["name"])
            .expect("the mount's volume");
        assert_eq!(
            m["readOnly"].as_bool().unwrap_or(false),
            v.get("configMap").is_some()
        );
        v
    };
    let config_path = Path::new(arg(&args, "--config"));
    let v = volume_at(config_path);
    assert_eq!(v["configMap"]["name"], cm["metadata"]["name"]);
    let file = config_path
        .file_name()
        .and_then(|f| f.to_str())
        .expect("file");
    assert!(cm["data"].get(file).is_some(), "the ConfigMap has {file}");
    let state = volume_at(Path::new(arg(&args, "--state-dir")));
    assert!(
        state.get("configMap").is_none(),
        "the state directory is writable"
    );

    // Probes: liveness /health, readiness /ready, start-up /health, on the port.
    assert_eq!(c["ports"][0]["containerPort"].as_u64(), Some(port));
    for (probe, path) in [
        ("livenessProbe", "/health"),
        ("readinessProbe", "/ready"),
        ("startupProbe", "/health"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(resolve_port(c, &get["port"]), port, "{probe}");
    }

    // Prometheus' scrape annotations on the pod.
    let ann = &template["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"], "true");
    assert_eq!(ann["prometheus.io/path"], "/metrics");
    assert_eq!(ann["prometheus.io/port"], port.to_string().as_str());

    // The Service selects the pod and reaches the port.
    let svc = manifest("service.yaml");
    assert_eq!(
        (svc["apiVersion"].as_str(), svc["kind"].as_str()),
        (Some("v1"), Some("Service"))
    );
    for (k, v) in svc["spec"]["selector"].as_mapping().expect("selector") {
        assert_eq!(labels.get(k), Some(v), "the Service selects the pod");
    }
    let sp = &svc["spec"]["ports"][0];
    assert_eq!(resolve_port(c, &sp["targetPort"]), port);

    // kubectl apply -k applies every manifest here.
    let k = manifest("kustomization.yaml");
    let listed: Vec<&str> = k["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .map(s)
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    files.sort();
    let mut listed_sorted: Vec<String> = listed.iter().map(|x| (*x).to_owned()).collect();
    listed_sorted.sort();
    assert_eq!(listed_sorted, files);
}

#[test]
fn serve_on_the_config_map_answers_the_probes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (config, _) = config_map_config(tmp.path());
    grace_ok(&[Path::new("--config"), &config, Path::new("check")]);
    // The same config, on loopback and a free port for the test.
    let state = tmp.path().join("state");
    let mut serve = Running {
        child: Command::new(GRACE)
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&state)
            .args(["serve", "--port", "0", "--bind", "127.0.0.1"])
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve"),
        state: state.clone(),
    };
    let paths = grace::state::StatePaths::new(&state);
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(Some(info)) = grace::state::ServeInfo::read(&paths) {
            break info.health_addr();
        }
        assert!(Instant::now() < deadline, "serve never wrote serve.json");
        serve.assert_alive("serve");
        std::thread::sleep(Duration::from_millis(20));
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let get = |path: &str| {
        rt.block_on(grace::alerts::http::get(addr, path, Duration::from_secs(2)))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    };
    let health = get("/health");
    assert_eq!(health.status, 200, "liveness");
    let verdict: serde_json::Value = serde_json::from_slice(&health.body).expect("json");
    assert!(verdict["status"] == "healthy" || verdict["status"] == "degraded");
    let ready = get("/ready");
    assert!(
        matches!(ready.status, 200 | 503),
        "readiness: {}",
        ready.status
    );
    assert_eq!(get("/metrics").status, 200, "the scrape path");
    let exit = serve.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert!(exit.success(), "serve on SIGTERM: {exit}");
}
