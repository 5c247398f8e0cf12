//! The HTTP server as the supervised `http` kernel: a crash of the kernel is repaired by
//! its supervisor, and the server comes back on the same address.

mod http_support;

use std::sync::Arc;
use std::time::Duration;

use grace::config::Config;
use grace::http::{self, HttpKernel};
use grace::kernel::KernelSpec;
use grace::supervisor::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
use http_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_http_kernel_serves_again_on_the_same_port() {
    let mut config = Config::default();
    config.chaos.enabled = true;
    let (sys, _dir) = system(config);
    let server = http::start(sys.clone(), &http_config(), None, None)
        .await
        .expect("start");
    let addr = server.local_addr();
    let spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(10))
        .child(ChildSpec::kernel(KernelSpec::new(
            "http",
            HttpKernel::factory(server),
        )));
    let root = SupervisorHandle::start(spec, Arc::clone(&sys))
        .await
        .expect("root");
    assert_eq!(kernel(addr, "http").await["state"], "running");

    let a = post_auth(addr, &sys, "/api/chaos/kernels/http/panic", "").await;
    assert_eq!(a.status, 202, "{}", a.body);
    let back = eventually(Duration::from_secs(10), || async {
        match try_get(addr, "/api/kernels").await {
            Some(a) if a.status == 200 => {
                let v = a.json();
                v["kernels"].as_array().is_some_and(|ks| {
                    ks.iter().any(|k| {
                        k["name"] == "http" && k["restarts"] == 1 && k["state"] == "running"
                    })
                })
            }
            _ => false,
        }
    })
    .await;
    assert!(back, "the http kernel did not come back on {addr}");
    assert_eq!(get(addr, "/health").await.status, 200);

    root.shutdown(Duration::from_secs(5))
        .await
        .expect("shutdown");
    assert!(
        eventually(Duration::from_secs(5), || async {
            try_get(addr, "/health").await.is_none()
        })
        .await,
        "the server still answers after its kernel stopped"
    );
}
