//! A small 5-field cron expression (`minute hour day-of-month month day-of-week`), as
//! Vixie cron reads it: `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists,
//! month and day names, 0 or 7 for Sunday, and the `@hourly`-style shorthands. When both
//! day fields are restricted a day matching either one matches.

use std::str::FromStr;

use chrono::{Datelike, Duration, NaiveDateTime, Timelike};

/// A parsed cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_star: bool,
    weekdays_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, min: u32, max: u32, names: &[&str], name_base: u32) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + name_base);
    }
    let v: u32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v < min || v > max {
        return Err(format!("{v} is outside {min}-{max}"));
    }
    Ok(v)
}

/// Parses one field into a bit set of allowed values.
fn field(s: &str, min: u32, max: u32, names: &[&str], name_base: u32) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => {
                let n: u32 = st.parse().map_err(|_| format!("bad step {st:?}"))?;
                if n == 0 {
                    return Err("a step must be at least 1".to_owned());
                }
                (r, n)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(a, min, max, names, name_base)?,
                value(b, min, max, names, name_base)?,
            )
        } else {
            let v = value(range, min, max, names, name_base)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo > hi {
            return Err(format!("range {lo}-{hi} is backwards"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl FromStr for Cron {
    type Err = String;

    fn from_str(s: &str) -> Result<Cron, String> {
        let expanded = match s.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        let [mi, h, dom, mon, dow] = f[..] else {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                f.len()
            ));
        };
        let mut weekdays = field(dow, 0, 7, &WEEKDAYS, 0)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        Ok(Cron {
            minutes: field(mi, 0, 59, &[], 0)?,
            hours: field(h, 0, 23, &[], 0)? as u32,
            days: field(dom, 1, 31, &[], 0)? as u32,
            months: field(mon, 1, 12, &MONTHS, 1)? as u16,
            weekdays: weekdays as u8,
            days_star: dom.starts_with('*'),
            weekdays_star: dow.starts_with('*'),
        })
    }
}

impl Cron {
    fn day_matches(&self, t: &NaiveDateTime) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        let month = self.months & (1 << t.month()) != 0;
        month
            && match (self.days_star, self.weekdays_star) {
                (true, true) => true,
                (false, true) => dom,
                (true, false) => dow,
                (false, false) => dom || dow,
            }
    }

    /// Whether the minute of `t` matches.
    pub fn matches(&self, t: &NaiveDateTime) -> bool {
        self.day_matches(t)
            && self.hours & (1 << t.hour()) != 0
            && self.minutes & (1 << t.minute()) != 0
    }

    /// The first matching minute strictly after `t`, within eight years.
    pub fn next_after(&self, t: &NaiveDateTime) -> Option<NaiveDateTime> {
        let mut c = t.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = *t + Duration::days(366 * 8);
        while c <= limit {
            if !self.day_matches(&c) {
                c = c.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
            } else if self.hours & (1 << c.hour()) == 0 {
                c = c.with_minute(0)? + Duration::hours(1);
            } else if self.minutes & (1 << c.minute()) == 0 {
                c += Duration::minutes(1);
            } else {
                return Some(c);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .expect("valid date")
    }

    fn cron(s: &str) -> Cron {
        s.parse().expect("valid cron")
    }

    #[test]
    fn next_minutes_of_common_expressions() {
        let t = at(2025, 11, 17, 16, 43);
        assert_eq!(
            cron("*/15 * * * *").next_after(&t),
            Some(at(2025, 11, 17, 16, 45))
        );
        assert_eq!(
            cron("0 * * * *").next_after(&t),
            Some(at(2025, 11, 17, 17, 0))
        );
        assert_eq!(cron("@daily").next_after(&t), Some(at(2025, 11, 18, 0, 0)));
        assert_eq!(
            cron("30 2 * * mon-fri").next_after(&t),
            Some(at(2025, 11, 18, 2, 30))
        );
        assert_eq!(
            cron("0 0 29 feb *").next_after(&t),
            Some(at(2028, 2, 29, 0, 0))
        );
        assert_eq!(
            cron("0 12 * * 7").next_after(&t),
            Some(at(2025, 11, 23, 12, 0))
        );
        // Both day fields restricted: either matches (the 1st, or a Friday).
        assert_eq!(
            cron("0 0 1 * fri").next_after(&t),
            Some(at(2025, 11, 21, 0, 0))
        );
        assert_eq!(
            cron("5/20 * * * *").next_after(&t),
            Some(at(2025, 11, 17, 16, 45))
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        for bad in [
            "* * * *",
            "60 * * * *",
            "*/0 * * * *",
            "5-1 * * * *",
            "x * * * *",
        ] {
            assert!(bad.parse::<Cron>().is_err(), "{bad}");
        }
        assert!("0 0 31 2 *"
            .parse::<Cron>()
            .is_ok_and(|c| c.next_after(&at(2025, 1, 1, 0, 0)).is_none()));
    }

    proptest! {
        #[test]
        fn next_is_the_first_match_after(min in 0u32..60, hour in 0u32..24, step in 1u32..30,
                                         day in 1u32..28, mo in 1u32..13, h in 0u32..24, mi in 0u32..60) {
            let c = cron(&format!("{min}/{step} {hour}-23 * * *"));
            let t = at(2025, mo, day, h, mi);
            let n = c.next_after(&t).expect("a match within a day");
            prop_assert!(n > t && c.matches(&n));
            let mut x = t + Duration::minutes(1);
            while x < n {
                prop_assert!(!c.matches(&x), "{x} matches before {n}");
                x += Duration::minutes(1);
            }
        }
    }
}
