//! The operator page in headless Chromium: it loads without console errors, shows the
//! kernels of the tree, a kernel restarted over the API shows its new restart count
//! within a few seconds (the page polls the JSON endpoints), and a kernel left down
//! turns the header DEGRADED with the reason and lists that kernel first.
//!
//! Skips only when Chromium is absent and `GRACE_REQUIRE_CHROMIUM` is unset (CI sets
//! it; `.ci/install-chromium` installs Chromium). `GRACE_SCREENSHOT=FILE` saves a PNG
//! of the page.

mod http_support;

use std::time::Duration;

use grace::config::Config;
use grace::incident::{IncidentDraft, IncidentStatus, Opened, Severity};
use http_support::cdp::{find_chromium, Browser};
use http_support::*;

/// Opens an incident detected `ago_ms` before now on `component` and resolves it, so
/// its MTTR is about `ago_ms`.
fn resolved_incident(sys: &grace::tree::System, trigger: &str, component: &str, ago_ms: i64) {
    let detected = chrono::Utc::now() - chrono::Duration::milliseconds(ago_ms);
    let draft = IncidentDraft {
        trigger: trigger.to_owned(),
        component: component.to_owned(),
        failure_mode: trigger.to_owned(),
        severity: Severity::High,
        playbook: Some("restart_kernel".to_owned()),
        summary: format!("{trigger} on {component}"),
        details: serde_json::Value::Null,
        detected_at: Some(detected.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    };
    let Opened::New(inc) = sys.incidents.open(draft).expect("open") else {
        panic!("a new incident");
    };
    sys.incidents
        .resolve(&inc.incident_id, IncidentStatus::Resolved, true, Vec::new())
        .expect("resolve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_tree_and_live_restart_counts() {
    let Some(chromium) = find_chromium() else {
        if std::env::var_os("GRACE_REQUIRE_CHROMIUM").is_some() {
            panic!("GRACE_REQUIRE_CHROMIUM is set but Chromium is not installed; run .ci/install-chromium (as root)");
        }
        eprintln!("SKIPPED: Chromium not found (/usr/bin/chromium); install it with .ci/install-chromium, or set GRACE_CHROMIUM");
        return;
    };
    let kernels = vec![
        tree::counter("kv_store", false),
        tree::counter("model", false),
        tree::counter("worker_pool", true),
    ];
    let h = harness(Config::default(), http_config(), kernels).await;
    let triggers = ["heartbeat_failure", "api_timeout", "kpi_threshold"];
    for i in 0..6 {
        resolved_incident(&h.sys, triggers[i % 3], "kv_store", 200 + 300 * i as i64);
    }
    h.sys
        .trust
        .penalize("kv_store", "repeated incidents")
        .expect("trust");

    let url = format!("http://{}/", h.addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let sys = h.sys.clone();
    let addr = h.addr;
    let rt = tokio::runtime::Handle::current();
    let screenshot = std::env::var_os("GRACE_SCREENSHOT");
    tokio::task::spawn_blocking(move || {
        let mut b = Browser::launch(&chromium, dir.path());
        let s = b.open(&url);
        assert!(
            b.wait_for(&s, "Number(document.body.dataset.polls || 0) >= 1", Duration::from_secs(20)),
            "the page never rendered the dashboard; errors: {:?}",
            b.errors()
        );
        let names = b.eval(
            &s,
            "JSON.stringify([...document.querySelectorAll('tr[data-kernel]')].map(e => e.dataset.kernel))",
        );
        let names: Vec<String> =
            serde_json::from_str(names.as_str().expect("names")).expect("names json");
        for k in ["kv_store", "model", "worker_pool", "message_bus"] {
            assert!(names.iter().any(|n| n == k), "kernel {k} not shown: {names:?}");
        }
        let sups = b.eval(
            &s,
            "[...document.querySelectorAll('tr[data-supervisor]')].map(e => e.dataset.supervisor).join(',')",
        );
        assert_eq!(sups, "system,kernels");
        let restarts = "document.querySelector('tr[data-kernel=\"kv_store\"] .restarts').textContent";
        assert_eq!(b.eval(&s, restarts), "0");

        let a = rt.block_on(post_auth(addr, &sys, "/api/kernels/kv_store/restart", ""));
        assert_eq!(a.status, 200, "{}", a.body);
        let shown = b.wait_for(&s, &format!("{restarts} === '1'"), Duration::from_secs(5));
        assert!(shown, "restart count not updated on the page: {}", b.eval(&s, restarts));
        assert_eq!(
            b.eval(&s, "document.querySelectorAll('tr[data-incident]').length"),
            6
        );
        assert!(b.wait_for(&s, "document.querySelectorAll('#chart rect').length >= 1", Duration::from_secs(5)), "no restart bar in the chart");
        assert_eq!(b.eval(&s, "document.querySelectorAll('#chart circle').length"), 6);
        assert_eq!(b.eval(&s, "document.getElementById('i-total').textContent"), "6");
        assert_eq!(b.eval(&s, "document.getElementById('i-open').textContent"), "0");
        let p50 = b.eval(&s, "document.getElementById('i-mttr').textContent");
        assert!(p50.as_str().is_some_and(|t| t.ends_with(" ms") || t.ends_with(" s")), "MTTR p50 shown as {p50}");
        assert_eq!(
            b.eval(&s, "document.querySelectorAll('tr[data-trust=\"kv_store\"]').length"),
            1
        );
        // This tree has no self_healing kernel: the section says so.
        assert_eq!(
            b.eval(&s, "document.getElementById('playbooks').textContent"),
            "dispatcher not reporting"
        );
        // Healthy so far (the incidents are closed): no problems panel.
        assert_eq!(b.eval(&s, "document.getElementById('state').textContent"), "healthy");
        assert_eq!(b.eval(&s, "document.getElementById('problems-panel').hidden"), true);

        // A kernel left down: the header says DEGRADED with the reason, and the kernel
        // is listed first under its supervisor.
        rt.block_on(sys.registry.stop("model", Duration::from_secs(2)))
            .expect("stop model");
        let state = "document.getElementById('state')";
        assert!(
            b.wait_for(&s, &format!("{state}.textContent === 'degraded'"), Duration::from_secs(5)),
            "the header did not turn degraded: {}",
            b.eval(&s, &format!("{state}.textContent"))
        );
        assert_eq!(b.eval(&s, &format!("{state}.innerText")), "DEGRADED");
        let reasons = b.eval(&s, "document.getElementById('reasons').textContent");
        assert!(
            reasons.as_str().is_some_and(|r| r.starts_with("kernel model stopped")),
            "header reasons: {reasons}"
        );
        assert_eq!(b.eval(&s, "document.getElementById('problems-panel').hidden"), false);
        assert_eq!(
            b.eval(&s, "document.querySelector('tr[data-supervisor=\"kernels\"] + tr').dataset.kernel"),
            "model"
        );
        let errors = b.errors();
        assert!(errors.is_empty(), "console errors: {errors:#?}");
        if let Some(path) = screenshot {
            std::fs::write(path, b.screenshot(&s)).expect("write screenshot");
        }
    })
    .await
    .expect("browser session");
    h.server.shutdown().await;
}
