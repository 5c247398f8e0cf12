//! The trust ledger: a score in [0, 1] per component.
