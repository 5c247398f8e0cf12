//! Incident ids: `inc_YYYYmmdd_HHMMSS_micros`, strictly increasing within a store so
//! two incidents opened in the same microsecond still get different ids.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Formats the id of an incident opened at `micros` (microseconds since the Unix epoch).
pub fn format_id(micros: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
    format!(
        "inc_{}_{:06}",
        t.format("%Y%m%d_%H%M%S"),
        t.timestamp_subsec_micros()
    )
}

/// The time encoded in an id (microseconds since the Unix epoch), if it is well formed.
pub fn parse_id(id: &str) -> Option<i64> {
    let rest = id.strip_prefix("inc_")?;
    let mut parts = rest.split('_');
    let (date, time, micros) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || date.len() != 8 || time.len() != 6 || micros.len() != 6 {
        return None;
    }
    let num = |s: &str| s.parse::<u32>().ok();
    let d = NaiveDate::from_ymd_opt(num(&date[..4])? as i32, num(&date[4..6])?, num(&date[6..])?)?;
    let t = NaiveTime::from_hms_micro_opt(
        num(&time[..2])?,
        num(&time[2..4])?,
        num(&time[4..])?,
        num(micros)?,
    )?;
    Some(NaiveDateTime::new(d, t).and_utc().timestamp_micros())
}

/// Hands out ids in strictly increasing time order.
#[derive(Debug, Default, Clone)]
pub struct IdClock {
    last: i64,
}

impl IdClock {
    /// The id for an incident opened at `now`: `now`, or one microsecond past the last
    /// id handed out if the clock has not moved (or went back).
    pub fn next(&mut self, now: DateTime<Utc>) -> String {
        let t = now.timestamp_micros().max(self.last + 1);
        self.last = t;
        format_id(t)
    }

    /// Notes an existing id, so later ids sort after it.
    pub fn observe(&mut self, id: &str) {
        if let Some(t) = parse_id(id) {
            self.last = self.last.max(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_format_of_the_seed() {
        let t = DateTime::parse_from_rfc3339("2025-11-17T16:43:28.024197Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(IdClock::default().next(t), "inc_20251117_164328_024197");
    }

    #[test]
    fn the_same_microsecond_gives_different_increasing_ids() {
        let t = Utc::now();
        let mut c = IdClock::default();
        let ids: Vec<String> = (0..5).map(|_| c.next(t)).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{ids:?}");
        }
    }

    proptest! {
        #[test]
        fn ids_round_trip(micros in 0i64..4_102_444_800_000_000) {
            prop_assert_eq!(parse_id(&format_id(micros)), Some(micros));
        }
    }
}
