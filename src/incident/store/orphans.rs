//! Orphans, adoption and imported incidents.
//!
//! An orphan is an open incident no one is working on: one an earlier run left open
//! (loaded from the file), or one whose close could not be recorded. It stays open (and
//! counted) but is never deduplicated against, so a new draft for its trigger and
//! component opens a new incident. Whoever resumes it adopts it; whoever gives up on it
//! closes it with a reason. Imported incidents arrive already closed (the watchdog's
//! repairs of serve) and are written as one line.

use super::{IncidentError, IncidentStore};
use crate::incident::model::Incident;

/// The field of an imported watchdog repair's `details` holding the watchdog's record.
pub(crate) const WATCHDOG_DETAILS: &str = "watchdog_repair";

/// The sequence number of the watchdog repair `inc` was imported from, if it was.
pub(crate) fn watchdog_seq(inc: &Incident) -> Option<u64> {
    if inc.trigger != "watchdog" {
        return None;
    }
    inc.details.get(WATCHDOG_DETAILS)?.get("seq")?.as_u64()
}

impl IncidentStore {
    /// The open incidents no one is working on, oldest first: those an earlier run left
    /// open, mitigating or verifying (and any whose close could not be recorded).
    pub fn orphans(&self) -> Vec<Incident> {
        let g = self.inner.lock();
        let mut v: Vec<Incident> = g
            .orphans
            .iter()
            .filter_map(|id| g.open.get(id).cloned())
            .collect();
        drop(g);
        v.sort_by(|a, b| a.incident_id.cmp(&b.incident_id));
        v
    }

    /// Takes an orphan back: new occurrences of its trigger and component count on it
    /// again. Records an `incident.adopted` line and audit record.
    pub fn adopt(&self, id: &str) -> Result<Incident, IncidentError> {
        let mut g = self.inner.lock();
        let Some(inc) = g.open.get(id).cloned() else {
            return Err(self.missing(&g, id));
        };
        if !g.orphans.contains(id) {
            return Err(IncidentError::NotOrphan(id.to_owned()));
        }
        let key = (inc.trigger.clone(), inc.component.clone());
        if let Some(other) = g.dedup.get(&key) {
            return Err(IncidentError::KeyTaken {
                id: id.to_owned(),
                other: other.clone(),
                trigger: key.0,
                component: key.1,
            });
        }
        let r = self.record(&mut g, "incident.adopted", &inc)?;
        g.orphans.remove(id);
        g.dedup.insert(key, id.to_owned());
        drop(g);
        self.settle(r)?;
        Ok(inc)
    }

    /// Records an incident that is already closed (detected and recovered elsewhere,
    /// such as a repair of serve by the watchdog) as one line and an `incident.imported`
    /// audit record. It gets a new id; its other fields are kept.
    pub(crate) fn record_closed(&self, mut inc: Incident) -> Result<Incident, IncidentError> {
        if inc.status.is_open() {
            return Err(IncidentError::NotTerminal(inc.status));
        }
        let mut g = self.inner.lock();
        let mut ids = g.ids.clone();
        inc.incident_id = ids.next(crate::time::now());
        let r = self.record(&mut g, "incident.imported", &inc)?;
        g.ids = ids;
        g.counts.add(inc.status);
        if let Some(m) = inc.mttr_seconds {
            g.mttrs.push(m);
        }
        g.remember_closed(inc.clone());
        drop(g);
        self.settle(r)?;
        Ok(inc)
    }
}
