//! The append-only, hash-chained audit log (`audit.log`) and its verifier.
