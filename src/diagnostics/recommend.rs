//! Recommended fixes for a classified root cause (pure), each marked safe or not.

use super::classify::{Fix, FixAction, Pressure, RootCause};
use super::evidence::Evidence;

fn fix(action: FixAction, safe: bool, description: String) -> Fix {
    Fix {
        action,
        safe,
        description,
    }
}

/// The fixes for `cause`, in the order to apply them: dependencies before the
/// component; only kernels get kernel fixes; only the fixes that cannot make things
/// worse are marked safe. `disk_error` says the error reports a full disk.
pub(super) fn fixes_for(
    cause: RootCause,
    e: &Evidence,
    p: &Pressure,
    disk_error: bool,
) -> Vec<Fix> {
    let is_kernel = e.kernel.is_some();
    let c = e.component.clone();
    let mut out = Vec::new();
    match cause {
        RootCause::Dependency => {
            for d in &e.dependencies_down {
                if d.state.is_some() {
                    out.push(fix(
                        FixAction::RestartDependency {
                            kernel: d.name.clone(),
                        },
                        true,
                        format!("restart {} first: {c} needs it", d.name),
                    ));
                } else {
                    out.push(fix(
                        FixAction::Investigate,
                        false,
                        format!("{c} depends on {}, which does not exist", d.name),
                    ));
                }
            }
            if is_kernel {
                out.push(fix(
                    FixAction::RestartComponent { kernel: c.clone() },
                    true,
                    format!("then restart {c}"),
                ));
            }
        }
        RootCause::Resource => {
            if is_kernel && (p.cpu || p.memory || !p.disk) {
                out.push(fix(
                    FixAction::ShedLoad { kernel: c.clone() },
                    true,
                    format!("shed low-priority load in {c}"),
                ));
            }
            if is_kernel && p.memory {
                out.push(fix(
                    FixAction::ClearCaches { kernel: c.clone() },
                    true,
                    format!("drop the caches of {c}"),
                ));
            }
            if p.disk || disk_error {
                out.push(fix(
                    FixAction::FreeDisk,
                    false,
                    "free disk space (resource_cleanup playbook, or by hand)".to_owned(),
                ));
            }
            if out.is_empty() {
                out.push(fix(
                    FixAction::Investigate,
                    false,
                    "find what exhausts the host's resources".to_owned(),
                ));
            }
        }
        RootCause::Configuration => {
            let mut components: Vec<String> = e.drift.iter().map(|d| d.component.clone()).collect();
            components.dedup();
            if components.is_empty() {
                components.push(c.clone());
            }
            out.push(fix(
                FixAction::RestoreConfiguration {
                    components: components.clone(),
                },
                false,
                format!(
                    "check whether the change to {} was intended; if not, restore it from \
                     its snapshot (restore_from_snapshot)",
                    components.join(", ")
                ),
            ));
        }
        RootCause::Code => {
            let signature = e
                .error
                .clone()
                .or_else(|| e.kernel.as_ref().and_then(|k| k.last_reason.clone()))
                .unwrap_or_else(|| format!("repeated failures of {c}"));
            out.push(fix(
                FixAction::FixCode {
                    signature: signature.chars().take(300).collect(),
                },
                false,
                format!("a code fix is needed in {c}; roll back the last deployment meanwhile"),
            ));
        }
        RootCause::Unknown => out.push(fix(
            FixAction::Investigate,
            false,
            format!("not enough evidence to explain the failure of {c}; investigate"),
        )),
    }
    out
}
