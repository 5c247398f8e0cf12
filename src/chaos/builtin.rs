//! The built-in scenarios (the repository's `chaos/*.yaml`, embedded in the binary so
//! that `grace chaos list` and `grace chaos run dirt01` work from any directory), and
//! the lookup of a scenario by name or path.

use std::path::Path;

use super::{ChaosError, Scenario};

/// The embedded scenario files: (file name, text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("dirt01.yaml", include_str!("../../chaos/dirt01.yaml")),
    ("dirt02.yaml", include_str!("../../chaos/dirt02.yaml")),
    ("dirt03.yaml", include_str!("../../chaos/dirt03.yaml")),
    (
        "heartbeat_hang.yaml",
        include_str!("../../chaos/heartbeat_hang.yaml"),
    ),
    (
        "api_timeout.yaml",
        include_str!("../../chaos/api_timeout.yaml"),
    ),
    (
        "high_latency.yaml",
        include_str!("../../chaos/high_latency.yaml"),
    ),
    (
        "memory_spike.yaml",
        include_str!("../../chaos/memory_spike.yaml"),
    ),
    (
        "disk_spike.yaml",
        include_str!("../../chaos/disk_spike.yaml"),
    ),
    (
        "trust_drop.yaml",
        include_str!("../../chaos/trust_drop.yaml"),
    ),
    (
        "sandbox_crash.yaml",
        include_str!("../../chaos/sandbox_crash.yaml"),
    ),
    (
        "error_burst.yaml",
        include_str!("../../chaos/error_burst.yaml"),
    ),
    (
        "restart_fails.yaml",
        include_str!("../../chaos/restart_fails.yaml"),
    ),
    (
        "process_crash.yaml",
        include_str!("../../chaos/process_crash.yaml"),
    ),
    (
        "serve_hang.yaml",
        include_str!("../../chaos/serve_hang.yaml"),
    ),
    (
        "port_conflict.yaml",
        include_str!("../../chaos/port_conflict.yaml"),
    ),
    (
        "kill_switch.yaml",
        include_str!("../../chaos/kill_switch.yaml"),
    ),
    (
        "exec_kernel_crash.yaml",
        include_str!("../../chaos/exec_kernel_crash.yaml"),
    ),
    (
        "stalled_uploads.yaml",
        include_str!("../../chaos/stalled_uploads.yaml"),
    ),
    (
        "disk_full_nothing_to_free.yaml",
        include_str!("../../chaos/disk_full_nothing_to_free.yaml"),
    ),
    (
        "host_cpu_burn.yaml",
        include_str!("../../chaos/host_cpu_burn.yaml"),
    ),
    (
        "serve_killed_mid_playbook.yaml",
        include_str!("../../chaos/serve_killed_mid_playbook.yaml"),
    ),
    (
        "descriptors_exhausted.yaml",
        include_str!("../../chaos/descriptors_exhausted.yaml"),
    ),
];

/// Every built-in scenario, parsed.
pub fn builtins() -> Result<Vec<Scenario>, ChaosError> {
    BUILTIN
        .iter()
        .map(|(file, text)| Scenario::parse(text, &format!("<built-in {file}>")))
        .collect()
}

/// The built-in names, comma-separated, for messages.
fn names() -> String {
    builtins()
        .map(|v| {
            v.iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Finds a scenario: a built-in by name or file stem, regardless of case; else a file.
pub fn find(name_or_path: &str) -> Result<Scenario, ChaosError> {
    let wanted = name_or_path.trim();
    for (file, text) in BUILTIN {
        let stem = file.trim_end_matches(".yaml");
        let s = Scenario::parse(text, &format!("<built-in {file}>"))?;
        if stem.eq_ignore_ascii_case(wanted) || s.name.eq_ignore_ascii_case(wanted) {
            return Ok(s);
        }
    }
    let path = Path::new(wanted);
    if path.is_file() {
        return load(path);
    }
    Err(ChaosError::UnknownScenario {
        name: wanted.to_owned(),
        available: names(),
    })
}

/// Loads a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ChaosError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ChaosError::io("cannot read chaos scenario", path, e))?;
    Scenario::parse(&text, &path.display().to_string())
}
