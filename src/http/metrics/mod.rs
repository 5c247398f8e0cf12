//! `GET /metrics`: the kernels' shared status, the bus counters and tallies, the
//! incidents, the triggers, trust and playbooks, the HTTP server's own accounting, the
//! watchdog's figures, this process and the build, through `prometheus-client`
//! ([`super::exposition`]).
//!
//! One [`Collector`] writes every family at scrape time from what is in memory and the
//! latest reading ([`super::readings`]); the request-duration histogram is a metric of
//! the crate, registered beside it. `kernels` writes the kernels' figures, `bus` the bus
//! counters and tallies, `incidents` the incidents, triggers, trust and playbooks, and
//! `serve` the HTTP, watchdog, process and build figures.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

use super::collector::SharedTallies;
use super::conns::ConnStats;
use super::exposition::{classic_text, Families};
use super::readings::SharedReadings;
use super::signals::ApiStats;
use crate::tree::System;

mod bus;
mod incidents;
mod kernels;
mod serve;

/// Where the figures come from.
#[derive(Clone)]
pub(crate) struct Sources {
    /// The tree: kernels, bus, incidents, trust.
    pub system: Arc<System>,
    /// HTTP accounting.
    pub api: Arc<ApiStats>,
    /// Connection accounting.
    pub conns: Arc<ConnStats>,
    /// Bus tallies.
    pub tallies: SharedTallies,
    /// The latest reading.
    pub readings: SharedReadings,
}

/// Writes every family of Grace's own at each scrape.
struct Grace(Sources);

impl std::fmt::Debug for Grace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Grace metrics")
    }
}

impl Collector for Grace {
    fn encode(&self, enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let s = &self.0;
        let mut f = Families::new(enc);
        let r = s.readings.latest();
        kernels::kernels(&mut f, &s.system.registry.statuses())?;
        {
            let t = s.tallies.lock();
            bus::bus(&mut f, &s.system.bus.stats(), &t)?;
            incidents::playbooks(&mut f, &t)?;
            let known = s
                .system
                .incidents
                .recent(s.system.config.incidents.keep_recent + 1_000);
            incidents::incidents(
                &mut f,
                &known,
                &s.system.incidents.summary(),
                t.mttr.as_ref(),
            )?;
        }
        incidents::trust(&mut f, &s.system.trust.all())?;
        incidents::triggers(&mut f, &r.triggers)?;
        serve::http(&mut f, &s.api, &s.conns)?;
        serve::emergency(&mut f, s.system.emergency())?;
        serve::watchdog(&mut f, &r.watchdog)?;
        serve::process(&mut f, &r.process)?;
        serve::build(&mut f)
    }
}

/// The registry of one HTTP server.
pub(crate) fn registry(sources: Sources) -> Registry {
    let mut r = Registry::default();
    r.register(
        "grace_http_request_duration_seconds",
        "Time to answer HTTP requests, by route",
        sources.api.durations().clone(),
    );
    r.register_collector(Box::new(Grace(sources)));
    r
}

/// The exposition: OpenMetrics, or the classic text format.
pub(crate) fn render(registry: &Registry, openmetrics: bool) -> String {
    let mut text = String::with_capacity(64 * 1024);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(error = %e, "metrics exposition failed");
    }
    if openmetrics {
        text
    } else {
        classic_text(&text)
    }
}
