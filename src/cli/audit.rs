//! `grace audit verify`: checks the audit log's hash chain, and every damaged log set
//! aside before it.

use std::io::Write;

use anyhow::Context;

use crate::audit::verify_chain;
use crate::state::StatePaths;

/// Verifies `audit.log` of the state directory `paths` and prints `OK` with the record
/// count, or the first bad record (sequence number, byte offset, reason) and how to
/// recover; then every log set aside before it (its damage, and whether it still holds
/// what the new chain names). Returns whether the log is intact and every set-aside log
/// is as recorded (the binary exits 1 when not).
pub fn audit_verify(paths: &StatePaths, out: &mut dyn Write) -> anyhow::Result<bool> {
    let path = paths.audit_log();
    let report = verify_chain(&path).with_context(|| format!("verifying {}", path.display()))?;
    writeln!(out, "{report}")?;
    Ok(report.ok())
}
