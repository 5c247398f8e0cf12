//! The options of the `worker_pool` demo kernel (`options = { ... }` of its
//! `[[kernel]]` table) and their checks.

use std::time::Duration;

use serde::Deserialize;

/// Options of a `worker_pool` kernel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerPoolOptions {
    /// Workers at start.
    pub workers: usize,
    /// Upper bound for `scale`.
    pub max_workers: usize,
    /// Jobs per second the pool generates for itself (0: none).
    pub rate: f64,
    /// Bytes each job hashes.
    pub job_bytes: usize,
    /// Fraction of generated jobs that are low priority (shed under `shed_load`).
    pub low_priority: f64,
    /// Jobs the queue holds at most; past it new jobs are rejected and counted.
    pub max_backlog: usize,
    /// How long the queue must stay empty before workers above `workers` are removed.
    #[serde(with = "humantime_serde")]
    pub scale_down_after: Duration,
}

impl Default for WorkerPoolOptions {
    fn default() -> Self {
        WorkerPoolOptions {
            workers: 4,
            max_workers: 64,
            rate: 20.0,
            job_bytes: 64 * 1024,
            low_priority: 0.5,
            max_backlog: 10_000,
            scale_down_after: Duration::from_secs(30),
        }
    }
}

impl WorkerPoolOptions {
    /// Checks the ranges serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.workers == 0 {
            return Err(
                "option workers must be at least 1 (a pool of 0 workers runs no job)".into(),
            );
        }
        if self.workers > self.max_workers {
            return Err(format!(
                "option workers ({}) is above max_workers ({})",
                self.workers, self.max_workers
            ));
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return Err("option rate must be a number of jobs per second, 0 or more".into());
        }
        if !(0.0..=1.0).contains(&self.low_priority) {
            return Err("option low_priority must be a fraction between 0 and 1".into());
        }
        if self.job_bytes == 0 || self.job_bytes > 16 << 20 {
            return Err("option job_bytes must be between 1 and 16777216".into());
        }
        if self.max_backlog == 0 {
            return Err("option max_backlog must be at least 1 (0 would reject every job)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let mut o = WorkerPoolOptions::default();
        assert!(o.validate().is_ok());
        o.low_priority = 2.0;
        assert!(o.validate().is_err());
        o = WorkerPoolOptions {
            workers: 100,
            ..WorkerPoolOptions::default()
        };
        assert!(o.validate().expect_err("too many").contains("max_workers"));
        o = WorkerPoolOptions {
            workers: 0,
            ..WorkerPoolOptions::default()
        };
        assert!(o
            .validate()
            .expect_err("none")
            .starts_with("option workers"));
    }
}
