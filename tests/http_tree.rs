//! The HTTP server over the whole tree `grace serve` runs (system kernels, triggers,
//! playbooks, the demo kernels, and `http` itself as a kernel of the root).

mod http_support;

use std::time::Duration;

use grace::config::{parse, ConfigSource, DEFAULT_TOML};
use grace::http::{self, HttpKernel};
use grace::kernel::KernelSpec;
use grace::supervisor::ChildSpec;
use grace::tree::{Extensions, Tree};
use http_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_metrics_show_the_whole_tree_and_its_triggers() {
    let loaded = parse(DEFAULT_TOML, ConfigSource::Embedded).expect("embedded default config");
    let (sys, _dir) = system(loaded.config);
    let server = http::start(sys.clone(), &http_config(), None, None)
        .await
        .expect("start http");
    let addr = server.local_addr();
    let http_child = ChildSpec::kernel(KernelSpec::new("http", HttpKernel::factory(server)));
    let tree = Tree::start(
        &sys,
        Extensions {
            http: Some(http_child),
            ..Extensions::default()
        },
    )
    .await
    .expect("tree");

    let v = get(addr, "/api/kernels").await.json();
    let sup_of = |name: &str| {
        v["kernels"]
            .as_array()
            .and_then(|ks| ks.iter().find(|k| k["name"] == name))
            .map(|k| k["supervisor"].clone())
            .unwrap_or_default()
    };
    assert_eq!(sup_of("message_bus"), "system");
    assert_eq!(sup_of("self_healing"), "system");
    assert_eq!(sup_of("trigger.heartbeat_failure"), "triggers");
    assert_eq!(sup_of("kv_store"), "kernels");
    assert_eq!(sup_of("http"), "root");

    let checked = eventually(Duration::from_secs(15), || async {
        let d = get(addr, "/operator/dashboard").await.json();
        d["triggers"]["running"] == true && d["triggers"]["total_checks"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert!(checked, "no trigger check reported");
    let d = get(addr, "/operator/dashboard").await.json();
    let monitored = d["triggers"]["triggers_monitored"]
        .as_array()
        .expect("list")
        .clone();
    assert!(
        monitored.iter().any(|t| t == "heartbeat_failure"),
        "{monitored:?}"
    );
    assert!(d["triggers"]["last_run"].is_string());
    // The dispatcher's counters, from the self_healing kernel.
    assert!(d["playbooks"]["runs"].is_u64(), "{}", d["playbooks"]);
    assert_eq!(d["health"]["status"], "healthy", "{}", d["health"]);
    let m = get(addr, "/metrics").await.body;
    assert!(
        m.contains("grace_trigger_checks_total{trigger=\"heartbeat_failure\"}"),
        "{m}"
    );

    // An operator restart of a system kernel goes through its rest_for_one supervisor.
    let a = post_auth(addr, &sys, "/api/kernels/coding_agent/restart", "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(kernel(addr, "coding_agent").await["restarts"], 1);
    tree.shutdown(Duration::from_secs(10)).await;
}
