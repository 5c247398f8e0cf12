//! The playbook actions of the snapshot manager: `create_snapshot`,
//! `restore_from_snapshot`, `restore_model_weights`, `rollback_deployment`,
//! `quarantine` and `release_quarantine`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{json, Value};

use super::manager::model_weights;
use super::schedule::{announce_created, announce_restored};
use super::{policy, SnapshotError, SnapshotManager};
use crate::playbook::action::{skipped, Action, ActionContext, ActionError, ActionRegistry, Args};
use crate::state::atomic_write;

/// Registers the snapshot actions and declares the `snapshots` capability.
pub fn register_actions(r: &mut ActionRegistry) {
    r.register("create_snapshot", CreateSnapshot)
        .register("restore_from_snapshot", RestoreFromSnapshot)
        .register("restore_model_weights", RestoreModelWeights)
        .register("rollback_deployment", RollbackDeployment)
        .register("quarantine", Quarantine)
        .register("release_quarantine", ReleaseQuarantine)
        .provide("snapshots");
}

fn manager(ctx: &ActionContext) -> SnapshotManager {
    SnapshotManager::from_config(&ctx.system.config, &ctx.system.paths)
}

fn failed(e: SnapshotError) -> ActionError {
    ActionError::failed(e.to_string())
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SnapshotError> + Send + 'static,
) -> Result<T, ActionError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ActionError::failed(format!("snapshot task failed: {e}")))?
        .map_err(failed)
}

/// The kernel a step acts on: its `kernel` argument, else the incident's component.
fn kernel(ctx: &ActionContext, args: &Args) -> Result<String, ActionError> {
    Ok(args
        .str("kernel")?
        .filter(|s| !s.is_empty())
        .unwrap_or(&ctx.incident.component)
        .to_owned())
}

/// The files that belong to `name`: a model kernel's weights, its configured
/// artifacts, or `name` itself (or the incident's `path`) when it is a watched file.
fn files_of(ctx: &ActionContext, m: &SnapshotManager, name: &str) -> Vec<PathBuf> {
    let cfg = &ctx.system.config;
    let mut out: Vec<PathBuf> = model_weights(cfg, name).into_iter().collect();
    out.extend(
        cfg.snapshots
            .artifacts
            .get(name)
            .cloned()
            .unwrap_or_default(),
    );
    let path = ctx.incident.details.get("path").and_then(Value::as_str);
    for p in [Some(name), path].into_iter().flatten() {
        let p = m.resolve(Path::new(p));
        let known =
            m.watched().is_ok_and(|w| w.contains(&p)) || m.sources().is_ok_and(|s| s.contains(&p));
        if known {
            out.push(p);
        }
    }
    let mut out: Vec<PathBuf> = out.iter().map(|p| m.resolve(p)).collect();
    out.sort();
    out.dedup();
    out
}

/// The files a step names with `file` or `kind`, else those of the incident's component.
fn chosen_files(
    ctx: &ActionContext,
    args: &Args,
    m: &SnapshotManager,
    candidates: impl Fn() -> Result<Vec<PathBuf>, SnapshotError>,
) -> Result<Vec<PathBuf>, ActionError> {
    if let Some(f) = args.str("file")? {
        return Ok(vec![m.resolve(Path::new(f))]);
    }
    if let Some(k) = args.str("kind")? {
        return Ok(candidates()
            .map_err(failed)?
            .into_iter()
            .filter(|p| policy::kind_of(p) == k)
            .collect());
    }
    Ok(files_of(ctx, m, &ctx.incident.component))
}

fn validate_file_kind(args: &Args) -> Result<(), String> {
    args.only(&["file", "kind"])
}

/// `create_snapshot`: snapshots `file`, the files of `kind`, the incident component's
/// files, or, when the component has none, every watched file.
struct CreateSnapshot;

#[async_trait]
impl Action for CreateSnapshot {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let m = manager(ctx);
        let mut files = chosen_files(ctx, args, &m, || m.watched())?;
        if files.is_empty() && args.get("file").is_none() && args.get("kind").is_none() {
            files = m.watched().map_err(failed)?;
        }
        if files.is_empty() {
            return Ok(skipped("no watched file to snapshot"));
        }
        let mm = m.clone();
        let taken = blocking(move || {
            files
                .iter()
                .map(|f| mm.create(f))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
        for e in &taken {
            announce_created(&ctx.system, e, Some(&ctx.incident.component));
        }
        Ok(json!({ "created": taken }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        validate_file_kind(args)
    }
}

/// `restore_from_snapshot`: writes back the newest verified snapshot of `file`, of
/// every snapshotted file of `kind`, or of the incident component's files.
struct RestoreFromSnapshot;

#[async_trait]
impl Action for RestoreFromSnapshot {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let m = manager(ctx);
        let files = chosen_files(ctx, args, &m, || m.sources())?;
        if files.is_empty() {
            return Ok(skipped(format!(
                "no snapshotted file belongs to {}",
                ctx.incident.component
            )));
        }
        let restored = restore_all(ctx, m, files, false).await?;
        Ok(json!({ "restored": restored }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        validate_file_kind(args)
    }
}

async fn restore_all(
    ctx: &ActionContext,
    m: SnapshotManager,
    files: Vec<PathBuf>,
    previous: bool,
) -> Result<Vec<super::Restored>, ActionError> {
    let restored = blocking(move || {
        files
            .iter()
            .map(|f| {
                if previous {
                    m.rollback(f)
                } else {
                    m.restore(f)
                }
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    for r in &restored {
        announce_restored(&ctx.system, r, Some(&ctx.incident.component));
    }
    Ok(restored)
}

/// `restore_model_weights`: restores a `model` kernel's weights (the `kernel` argument,
/// else the incident's component when it is a model kernel, else the first model
/// kernel) from the newest verified snapshot, then restarts the kernel.
struct RestoreModelWeights;

#[async_trait]
impl Action for RestoreModelWeights {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let cfg = &ctx.system.config;
        let name = match args.str("kernel")? {
            Some(k) => k.to_owned(),
            None => match model_for_incident(ctx) {
                Some(k) => k,
                None => return Ok(skipped("no model kernel is configured")),
            },
        };
        let weights = model_weights(cfg, &name)
            .ok_or_else(|| args.bad("kernel", "the name of a configured model kernel"))?;
        let restored = restore_all(ctx, manager(ctx), vec![weights], false).await?;
        let reason = format!("weights restored for incident {}", ctx.incident.incident_id);
        ctx.system
            .registry
            .restart(&name, &reason, ctx.timeout)
            .await?;
        Ok(json!({ "kernel": name, "restored": restored, "restarted": true }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel"])
    }
}

/// The model kernel an incident is about: its component when that is a model kernel or
/// the weights file of one (also as the `path` detail), else the first model kernel.
fn model_for_incident(ctx: &ActionContext) -> Option<String> {
    let cfg = &ctx.system.config;
    let m = manager(ctx);
    let inc = &ctx.incident;
    let models = || cfg.kernel.iter().filter(|k| k.kind == "model");
    if models().any(|k| k.name == inc.component) {
        return Some(inc.component.clone());
    }
    let named: Vec<PathBuf> = [
        Some(inc.component.as_str()),
        inc.details.get("path").and_then(Value::as_str),
    ]
    .into_iter()
    .flatten()
    .map(|p| m.resolve(Path::new(p)))
    .collect();
    models()
        .find(|k| model_weights(cfg, &k.name).is_some_and(|w| named.contains(&m.resolve(&w))))
        .or_else(|| models().next())
        .map(|k| k.name.clone())
}

/// `rollback_deployment`: writes back, for each file of a kernel (its configured
/// artifacts, a model's weights), the newest verified snapshot that differs from what
/// the file holds now.
struct RollbackDeployment;

#[async_trait]
impl Action for RollbackDeployment {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let m = manager(ctx);
        let name = kernel(ctx, args)?;
        let files = match args.str("file")? {
            Some(f) => vec![m.resolve(Path::new(f))],
            None => files_of(ctx, &m, &name),
        };
        if files.is_empty() {
            return Ok(skipped(format!("no snapshotted file belongs to {name}")));
        }
        let restored = restore_all(ctx, m, files, true).await?;
        Ok(json!({ "kernel": name, "rolled_back": restored }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel", "file"])
    }
}

/// Where a kernel's quarantined artifacts and their record go.
fn quarantine_dir(ctx: &ActionContext) -> PathBuf {
    ctx.system.paths.root().join("quarantine")
}

/// `quarantine`: stops a kernel and moves its configured artifact paths into
/// `quarantine/<kernel>_<stamp>/`; `quarantine/<kernel>.json` records the moves so
/// that `release_quarantine` can put them back.
struct Quarantine;

#[async_trait]
impl Action for Quarantine {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let name = kernel(ctx, args)?;
        let m = manager(ctx);
        let paths: Vec<PathBuf> = ctx
            .system
            .config
            .snapshots
            .artifacts
            .get(&name)
            .map(|v| {
                v.iter()
                    .map(|p| m.resolve(p))
                    .filter(|p| p.exists())
                    .collect()
            })
            .unwrap_or_default();
        let stopped = match ctx.system.registry.get(&name) {
            Some(e) if e.status.state().is_up() => {
                ctx.system.registry.stop(&name, ctx.timeout).await?;
                true
            }
            _ => false,
        };
        if paths.is_empty() {
            return Ok(json!({
                "kernel": name, "stopped": stopped, "quarantined": [],
                "reason": "no configured artifact path exists",
            }));
        }
        let qdir = quarantine_dir(ctx);
        let stamp = crate::time::now().format("%Y%m%d_%H%M%S").to_string();
        let dest = qdir.join(format!("{name}_{stamp}"));
        let record = qdir.join(format!("{name}.json"));
        let moves = blocking(move || {
            std::fs::create_dir_all(&dest)
                .map_err(|e| SnapshotError::io(format!("creating {}", dest.display()), e))?;
            let mut moves = Vec::new();
            for (i, p) in paths.iter().enumerate() {
                let base = p.file_name().map(|n| n.to_string_lossy().into_owned());
                let to = dest.join(format!("{i}_{}", base.unwrap_or_default()));
                std::fs::rename(p, &to).map_err(|e| {
                    SnapshotError::io(format!("moving {} to {}", p.display(), to.display()), e)
                })?;
                moves.push(json!({ "from": p, "to": to }));
            }
            let text = serde_json::to_vec_pretty(&moves).unwrap_or_default();
            atomic_write(&record, &text)
                .map_err(|e| SnapshotError::io(format!("writing {}", record.display()), e))?;
            Ok(moves)
        })
        .await?;
        let data = json!({ "kernel": name, "moves": moves });
        if let Err(e) = ctx.system.audit.append("quarantine", data.clone()) {
            tracing::warn!(error = %e, "cannot audit quarantine");
        }
        Ok(json!({ "kernel": name, "stopped": stopped, "quarantined": moves }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel"])
    }
}

/// `release_quarantine`: moves a kernel's quarantined artifacts back and restarts it.
struct ReleaseQuarantine;

#[async_trait]
impl Action for ReleaseQuarantine {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let name = kernel(ctx, args)?;
        let record = quarantine_dir(ctx).join(format!("{name}.json"));
        if !record.exists() {
            return Ok(skipped(format!("{name} has nothing in quarantine")));
        }
        let moves = blocking(move || {
            let text = std::fs::read(&record)
                .map_err(|e| SnapshotError::io(format!("reading {}", record.display()), e))?;
            let moves: Vec<Value> =
                serde_json::from_slice(&text).map_err(|e| SnapshotError::Manifest {
                    path: record.clone(),
                    reason: e.to_string(),
                })?;
            for mv in &moves {
                let (Some(from), Some(to)) = (mv["from"].as_str(), mv["to"].as_str()) else {
                    continue;
                };
                std::fs::rename(to, from)
                    .map_err(|e| SnapshotError::io(format!("moving {to} back to {from}"), e))?;
            }
            std::fs::remove_file(&record)
                .map_err(|e| SnapshotError::io(format!("removing {}", record.display()), e))?;
            Ok(moves)
        })
        .await?;
        let reason = format!("released from quarantine ({})", ctx.incident.incident_id);
        ctx.system
            .registry
            .restart(&name, &reason, ctx.timeout)
            .await?;
        Ok(json!({ "kernel": name, "released": moves, "restarted": true }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel"])
    }
}
