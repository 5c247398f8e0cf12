//! The trust ledger.

use crate::bus::Bus;

/// Trust scores by component.
pub struct TrustLedger {
    _bus: Bus,
}

impl TrustLedger {
    /// An empty ledger publishing on `bus`.
    pub fn new(bus: Bus) -> TrustLedger {
        TrustLedger { _bus: bus }
    }
}
