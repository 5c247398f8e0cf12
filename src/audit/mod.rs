//! The append-only, hash-chained audit log (`audit.log`) and its verifier.
//!
//! Every incident, playbook step, restart, kill-switch change and snapshot restore is
//! appended as one record with [`AuditLog::append`].
//!
//! # Record format
//!
//! Records are binary-safe frames, one after the other:
//!
//! ```text
//! magic "GAL1" | len: u32 LE | crc32: u32 LE | prev: [u8; 32] | payload: len bytes
//! ```
//!
//! The CRC-32 covers magic, length, `prev` and payload. `prev` is the SHA-256 of the
//! whole previous record (zeros for the first), so the records form a hash chain: editing,
//! removing or reordering a record breaks the chain at the next one. The payload is the
//! JSON object `{seq, at, kind, data}` ([`AuditRecord`]); `seq` counts from 0 without gaps.
//!
//! # Durability: the fsync policy
//!
//! `[audit] fsync` chooses when records are forced to disk:
//!
//! - `"group"` (default): [`AuditLog::append`] returns once the record is written to the
//!   OS, so a crash of the process loses nothing; a background thread fsyncs every
//!   `group_interval` (default 50 ms), which bounds what a power loss can take.
//! - `"always"`: every append is on disk before it returns.
//!
//! Whatever the policy, [`AuditLog::append_durable`] returns only once its record is on
//! disk. Concurrent callers waiting for durability share one fsync (group commit): the
//! first becomes the leader and fsyncs everything written so far, with no lock held.
//!
//! # Recovery at open
//!
//! [`AuditLog::open`] checks every record. A record cut short by a crash mid-write (a torn
//! tail: a truncated or checksum-failing last record with nothing good after it) is cut
//! off; the cut bytes are kept in `audit.log.torn-<time>-<offset>`, the cut is logged, and
//! an `audit.torn_tail_cut` record says what was removed. Every record before it is kept.
//! Damage anywhere else (a bad checksum with good records after it, a broken chain, a
//! sequence gap) is never repaired silently, and never keeps serve from starting: the
//! file is set aside as `audit.log.damaged-<time>` (kept, never deleted) and a new chain
//! starts whose first record, `audit.chain_restarted`, names it, its last good hash and
//! its first bad record ([`SetAside`]); serve raises a critical alert and opens an
//! `audit_log_damaged` incident ([`announce_set_aside`]). [`verify`] reports the first
//! bad record of one file, its byte offset and the reason, without changing the file;
//! [`verify_chain`] (`grace audit verify`) also checks every set-aside log the chain
//! names, and that it still holds exactly what was set aside.
//!
//! # Several writers
//!
//! Appends take an exclusive `flock` on the file and first check any records another
//! process (`grace stop`, the watchdog) appended since, so that every process extends the
//! same chain. Readers ([`verify`], [`read_all`]) take a shared lock and never see a
//! half-written record.

mod aside;
mod chain;
mod config;
mod error;
mod log;
mod record;
mod scan;
mod segment;
mod sync;
mod verify;
mod writer;

pub use aside::{announce_set_aside, SetAside, SetAsideCheck, CHAIN_RESTARTED};
pub use chain::{verify_chain, ChainReport, SegmentCheck};
pub use config::{AuditConfig, FsyncPolicy};
pub use error::AuditError;
pub use log::AuditLog;
pub use record::AuditRecord;
pub use segment::{segments, segments_dir, SegmentStart, SEGMENT_STARTED};
pub use verify::{read_all, verify, BadRecord, VerifyReport};

pub(crate) use sync::Syncer;
