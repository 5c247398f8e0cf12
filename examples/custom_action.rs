//! Run with: cargo run --example custom_action
//!
//! A library user adds a playbook action of their own: implement [`Action`], register
//! it in an [`ActionRegistry`] next to the built-ins, and name it in a playbook. Here
//! the action records the incident in a marker file (the kind of thing a deploy tool
//! or a runbook script would pick up), and the playbook runs it for an incident.

use std::sync::Arc;

use async_trait::async_trait;
use grace::config::Config;
use grace::incident::{Incident, IncidentStatus, Severity};
use grace::playbook::{
    parse_playbook, Action, ActionContext, ActionError, ActionRegistry, Args, Parsed, Run,
};
use grace::state::{atomic_write, StatePaths};
use grace::tree::System;
use serde_json::{json, Value};

/// Writes `<state dir>/markers/<name>.json` with the incident, atomically.
struct WriteMarker;

#[async_trait]
impl Action for WriteMarker {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let name = args.require_str("name")?;
        let path = ctx
            .system
            .paths
            .root()
            .join("markers")
            .join(format!("{name}.json"));
        let body = serde_json::to_vec_pretty(&*ctx.incident)
            .map_err(|e| ActionError::failed(e.to_string()))?;
        atomic_write(&path, &body).map_err(|source| ActionError::Io {
            context: format!("writing {}", path.display()),
            source,
        })?;
        Ok(json!({ "marker": path.display().to_string(), "bytes": body.len() }))
    }

    /// Checked when the playbook is loaded, so a typo fails `grace check`.
    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["name"])?;
        args.require_str("name")
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

const PLAYBOOK: &str = r#"
name: mark_and_notify
triggers: [deploy_check]
slo: 5s
steps:
  - name: mark
    action: write_marker
    args: { name: "{{component}}-{{incident_id}}" }
    retries: 2
    retry_delay: 100ms
  - name: tell
    action: notify
    args: { level: info, message: "marker written for {{component}}" }
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let system = System::open(Arc::new(Config::default()), StatePaths::new(dir.path()))?;

    let mut actions = ActionRegistry::builtin();
    actions.register("write_marker", WriteMarker);

    let playbook = match parse_playbook("mark_and_notify.yaml", PLAYBOOK, &actions)? {
        Parsed::Loaded(p) => p,
        Parsed::Skipped(s) => anyhow::bail!("not loaded: {}", s.reason),
    };
    let incident = Incident {
        incident_id: "inc_20250101_120000_000001".into(),
        detected_at: grace::time::rfc3339(grace::time::now()),
        resolved_at: None,
        status: IncidentStatus::Open,
        failure_mode: "bad_deploy".into(),
        severity: Severity::Medium,
        component: "api".into(),
        trigger: "deploy_check".into(),
        playbook: Some(playbook.name.clone()),
        steps: Vec::new(),
        mttr_seconds: None,
        success: None,
        occurrences: 1,
        summary: "deploy check failed for api".into(),
        details: Value::Null,
        closed_reason: None,
    };
    let report = Run {
        system,
        actions: Arc::new(actions),
        playbook: Arc::new(playbook),
        incident: Arc::new(incident),
        dry_run: false,
        budget: Arc::new(grace::playbook::harm::DisruptionBudget::new(1)),
    }
    .execute()
    .await;

    println!(
        "playbook {}: success={} in {} ms (SLO met: {:?})",
        report.playbook, report.success, report.duration_ms, report.slo_met
    );
    for s in &report.steps {
        println!(
            "  {:<6} {:<12} {:<3} {}",
            s.name, s.action, s.status, s.output
        );
    }
    Ok(())
}
