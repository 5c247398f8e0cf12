//! The operator page in headless Chromium: it loads without console errors, shows the
//! kernels of the tree, a kernel restarted over the API shows its new restart count
//! within a few seconds (the page polls the JSON endpoints), and a kernel left down
//! turns the header DEGRADED with the reason, puts it in the Problems panel with its
//! restart button and lists it first under its supervisor. Then, with a long restart
//! reason showing, the page is laid out at 390, 768 and 1440 px: no horizontal
//! overflow, no button cut off, and a screenshot of each.
//!
//! Skips only when Chromium is absent and `GRACE_REQUIRE_CHROMIUM` is unset (CI sets
//! it; `.ci/install-deps` installs Chromium). `GRACE_SCREENSHOT_DIR=DIR` keeps the
//! screenshots (`dashboard-390.png`, ...) there.

mod http_support;

use std::time::Duration;

use grace::config::Config;
use grace::incident::{IncidentDraft, IncidentStatus, Opened, Severity};
use grace::kernel::Request;
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

/// Every visible button whose box is cut: outside the window, outside its section, or
/// its label wider than the button. Each as `name: why`.
const CLIPPED_BUTTONS: &str = r#"(() => {
  const out = [];
  for (const b of document.querySelectorAll("button")) {
    if (b.offsetParent === null) continue;
    const r = b.getBoundingClientRect();
    const sec = b.closest("section").getBoundingClientRect();
    const name = b.title || b.textContent;
    if (r.left < 0 || r.right > window.innerWidth) out.push(name + ": outside the window");
    else if (r.left < sec.left || r.right > sec.right) out.push(name + ": outside its section");
    else if (b.scrollWidth > b.clientWidth) out.push(name + ": label cut");
  }
  return out;
})()"#;

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
        // As long as the longest names of the default tree.
        tree::counter("trigger.heartbeat_failure", false),
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
    let shots = std::env::var_os("GRACE_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("screenshots"));
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
        assert_eq!(sups, "system,triggers,kernels");
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
        assert_eq!(
            b.eval(&s, "document.querySelectorAll('#problems li[data-problem-kernel=\"model\"] button').length"),
            1,
            "the down kernel is in the Problems panel with its restart button"
        );
        assert_eq!(
            b.eval(&s, "document.getElementById('problems-panel').compareDocumentPosition(document.querySelector('tr[data-supervisor=\"triggers\"], tr[data-supervisor=\"system\"]')) & Node.DOCUMENT_POSITION_FOLLOWING"),
            4,
            "problems come before the tree"
        );

        // A restart reason far longer than its column.
        let long = format!("panic: {}", "the replica answered with a stale generation ".repeat(6));
        sys.registry
            .cast("kv_store", Request::new("panic", serde_json::json!({ "message": long })))
            .expect("cast");
        let reason = "document.querySelector('tr[data-kernel=\"kv_store\"] td.reason').textContent.length";
        assert!(
            b.wait_for(&s, &format!("{reason} > 200"), Duration::from_secs(5)),
            "the long reason never showed: {}",
            b.eval(&s, reason)
        );
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        for width in [1440, 768, 390] {
            b.call(
                "Emulation.setDeviceMetricsOverride",
                serde_json::json!({ "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500 }),
                Some(&s),
            );
            let polls = b.eval(&s, "Number(document.body.dataset.polls)").as_u64().unwrap_or(0);
            assert!(
                b.wait_for(&s, &format!("Number(document.body.dataset.polls) > {polls}"), Duration::from_secs(5)),
                "the page stopped polling at {width} px"
            );
            assert_eq!(b.eval(&s, "window.innerWidth"), width);
            // The window's width less a vertical scrollbar, if one shows.
            let fits = b.eval(
                &s,
                "[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth, document.documentElement.clientWidth]",
            );
            let n = |i: usize| fits[i].as_u64().unwrap_or(u64::MAX);
            assert!(
                n(0) <= n(2) && n(0) <= n(3) && n(1) <= n(3),
                "horizontal overflow at {width} px: [scrollWidth, body, innerWidth, clientWidth] {fits}"
            );
            let clipped = b.eval(&s, CLIPPED_BUTTONS);
            assert_eq!(clipped, serde_json::json!([]), "buttons cut off at {width} px");
            let shown = b.eval(&s, "document.querySelectorAll('tr[data-kernel] button').length");
            assert!(shown.as_u64().unwrap_or(0) >= 4, "restart buttons at {width} px: {shown}");
            assert_eq!(b.eval(&s, &format!("{state}.innerText")), "DEGRADED", "at {width} px");
            let png = b.screenshot(&s);
            assert_eq!(&png[1..4], b"PNG");
            let png_width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
            assert_eq!(
                u64::from(png_width),
                n(3),
                "the screenshot is {png_width} px wide, the page {} px",
                n(3)
            );
            std::fs::write(shots.join(format!("dashboard-{width}.png")), png).expect("write screenshot");
        }
        let errors = b.errors();
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    })
    .await
    .expect("browser session");
    h.server.shutdown().await;
}
