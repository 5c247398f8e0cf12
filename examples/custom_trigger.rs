//! Run with: cargo run --example custom_trigger
//!
//! A library user adds a trigger of their own: implement [`Trigger`] (check a signal,
//! return the conditions that hold), make its kernel with [`trigger_spec`] and a
//! [`Rule`] (check interval, `for` duration, repeat interval, flap detection), and add
//! it to the tree with [`Extensions`]. The tree runs it under the `triggers` supervisor
//! like the built-in ones; what it finds is published as `event.incident` and handled
//! by the playbook dispatcher.
//!
//! Here the trigger watches a spool directory: more than `limit` bytes waiting, for at
//! least a second, is an incident answered by the `resource_cleanup` playbook.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grace::config::Config;
use grace::incident::{IncidentDraft, Severity};
use grace::kernel::KernelContext;
use grace::state::StatePaths;
use grace::tree::{Extensions, System, Tree};
use grace::trigger::{trigger_spec, Alert, Finding, Level, Rule, Trigger, TriggerError};
use serde_json::json;

/// Bytes waiting in a spool directory.
struct SpoolQuota {
    dir: PathBuf,
    limit: u64,
}

#[async_trait]
impl Trigger for SpoolQuota {
    async fn check(&mut self, _ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| TriggerError::io("spool_quota", &self.dir, e))?;
        let (mut files, mut bytes) = (0u64, 0u64);
        for e in entries.flatten() {
            if let Ok(m) = e.metadata() {
                files += 1;
                bytes += m.len();
            }
        }
        if bytes <= self.limit {
            // Nothing found: a condition reported before has cleared.
            return Ok(Vec::new());
        }
        Ok(vec![Finding::Holds(
            Alert::new(
                Level::Incident,
                "spool_quota",
                "spool",
                "spool_full",
                Severity::Medium,
                Some("resource_cleanup"),
                format!("{bytes} bytes waiting in the spool, above {}", self.limit),
            )
            .details(json!({ "bytes": bytes, "files": files, "limit": self.limit })),
        )])
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool)?;

    let mut config = Config::default();
    // Only the trigger of this example; `grace serve` runs the built-in ones too.
    config.triggers.enabled = false;
    let system = System::open(Arc::new(config), StatePaths::new(dir.path().join("state")))?;

    // Check every 200 ms; fire once the spool has been over quota for 1 s.
    let rule = Rule {
        interval: Duration::from_millis(200),
        hold_for: Duration::from_secs(1),
        ..Rule::default()
    };
    let watched = spool.clone();
    let spec = trigger_spec("spool_quota", rule, move || SpoolQuota {
        dir: watched.clone(),
        limit: 2048,
    });
    let incidents = system.bus.subscribe("example", &["event.incident"]);
    let tree = Tree::start(
        &system,
        Extensions {
            triggers: vec![spec],
            ..Extensions::default()
        },
    )
    .await?;
    println!(
        "running; kernel trigger.spool_quota checks {}",
        spool.display()
    );

    for i in 0..3 {
        std::fs::write(spool.join(format!("job{i}.bin")), vec![0u8; 1024])?;
    }
    println!("wrote 3 KiB to the spool (quota 2 KiB)");

    let event = tokio::time::timeout(Duration::from_secs(10), incidents.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the bus closed"))?;
    let draft: IncidentDraft = serde_json::from_value(event.payload)?;
    println!(
        "{} from trigger {}: {} (component {}, playbook {:?})",
        event.topic, draft.trigger, draft.summary, draft.component, draft.playbook
    );
    println!("details: {}", draft.details);

    tree.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
