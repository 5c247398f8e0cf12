//! Queries of the incident store for the HTTP API, the dashboard and diagnostics.

use super::journal::read_incidents;
use super::model::Incident;
use super::store::{IncidentError, IncidentStore};
use super::summary::{build, Summary};

impl IncidentStore {
    /// The open incidents, oldest first.
    pub fn open_incidents(&self) -> Vec<Incident> {
        let mut v: Vec<Incident> = self.inner.lock().open.values().cloned().collect();
        v.sort_by(|a, b| a.incident_id.cmp(&b.incident_id));
        v
    }

    fn newest_matching(&self, n: usize, keep: impl Fn(&Incident) -> bool) -> Vec<Incident> {
        let g = self.inner.lock();
        let mut v: Vec<Incident> = g
            .open
            .values()
            .chain(g.recent.iter())
            .filter(|i| keep(i))
            .cloned()
            .collect();
        drop(g);
        v.sort_by(|a, b| b.incident_id.cmp(&a.incident_id));
        v.truncate(n);
        v
    }

    /// The `n` most recent incidents (open or closed), newest first.
    pub fn recent(&self, n: usize) -> Vec<Incident> {
        self.newest_matching(n, |_| true)
    }

    /// The `n` most recent incidents of `component`, newest first.
    pub fn for_component(&self, component: &str, n: usize) -> Vec<Incident> {
        self.newest_matching(n, |i| i.component == component)
    }

    /// One incident by id: from memory, else from the file or its segments (closed
    /// long ago).
    pub fn get(&self, id: &str) -> Result<Option<Incident>, IncidentError> {
        {
            let g = self.inner.lock();
            if let Some(i) = g.open.get(id) {
                return Ok(Some(i.clone()));
            }
            if let Some(i) = g.recent.iter().rev().find(|i| i.incident_id == id) {
                return Ok(Some(i.clone()));
            }
        }
        Ok(read_incidents(&self.path)?
            .incidents
            .into_iter()
            .find(|i| i.incident_id == id))
    }

    /// Count by status and MTTR p50/p95/max over every incident in the file and its
    /// segments.
    pub fn summary(&self) -> Summary {
        let g = self.inner.lock();
        let (counts, mttrs) = (g.counts, g.mttrs.clone());
        drop(g);
        build(counts, &mttrs)
    }
}
