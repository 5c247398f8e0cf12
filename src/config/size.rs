//! Byte sizes in `grace.toml`: a plain integer (bytes) or a string with a unit,
//! `"512KB"`, `"10MB"`, `"1GiB"` (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A size in bytes, read from an integer or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

const UNITS: [(&str, u64); 9] = [
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("k", 1_000),
    ("m", 1_000_000),
];

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let unit = unit.trim().to_ascii_lowercase();
        let mult = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, m)| *m)
                .ok_or_else(|| {
                    format!(
                        "unknown unit {unit:?} in size {s:?}: use B, KB, MB, GB, KiB, MiB or GiB"
                    )
                })?
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size: write it like \"10MB\" or 10485760"))?;
        Ok(ByteSize((n * mult as f64).round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (u, m) in [("GB", 1_000_000_000u64), ("MB", 1_000_000), ("KB", 1_000)] {
            if b >= m && b % m == 0 {
                return write!(f, "{}{u}", b / m);
            }
        }
        write!(f, "{b}B")
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_integers_and_units() {
        let p = |s: &str| s.parse::<ByteSize>().map(ByteSize::bytes);
        assert_eq!(p("10MB"), Ok(10_000_000));
        assert_eq!(p("10 MiB"), Ok(10 << 20));
        assert_eq!(p("512kb"), Ok(512_000));
        assert_eq!(p("1.5GB"), Ok(1_500_000_000));
        assert_eq!(p("4096"), Ok(4096));
        assert!(p("10 parsecs").is_err_and(|e| e.contains("unknown unit")));
        assert!(p("MB").is_err());
        #[derive(Deserialize)]
        struct T {
            a: ByteSize,
            b: ByteSize,
        }
        let t: T = toml::from_str("a = 100\nb = \"2MB\"").expect("parse");
        assert_eq!((t.a.0, t.b.0), (100, 2_000_000));
        assert_eq!(ByteSize(10_000_000).to_string(), "10MB");
        assert_eq!(ByteSize(1 << 20).to_string(), "1048576B");
    }
}
