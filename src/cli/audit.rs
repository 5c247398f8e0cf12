//! `grace audit verify`: checks the audit log's hash chain.

use std::io::Write;

use anyhow::Context;

use crate::audit::verify;
use crate::state::StatePaths;

/// Verifies `audit.log` of the state directory `paths` and prints `OK` with the record
/// count, or the first bad record (sequence number, byte offset, reason) and how to
/// recover. Returns whether the log is intact (the binary exits 1 when it is not).
pub fn audit_verify(paths: &StatePaths, out: &mut dyn Write) -> anyhow::Result<bool> {
    let path = paths.audit_log();
    let report = verify(&path).with_context(|| format!("verifying {}", path.display()))?;
    writeln!(out, "{report}")?;
    Ok(report.ok())
}
