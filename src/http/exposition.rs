//! The Prometheus text exposition format (version 0.0.4), written by hand: families
//! with help and type, samples with escaped labels, histograms.

use std::fmt::Write;

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// Escapes a label value (backslash, double quote, newline).
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

impl Exposition {
    /// Starts a metric family with its help text and type.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// Writes one sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", value(v));
    }

    /// Writes a histogram's buckets, sum and count from cumulative counts per bound.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        cumulative: &[u64],
        sum: f64,
        count: u64,
    ) {
        let bucket = format!("{name}_bucket");
        for (b, c) in bounds.iter().zip(cumulative) {
            let le = value(*b);
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, *c as f64);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        self.sample(&bucket, &l, count as f64);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_histograms_end_with_inf() {
        let mut e = Exposition::default();
        e.family("x", "histogram", "a\nb");
        e.sample("y", &[("k", "a\"b\\c\nd")], 1.5);
        e.histogram("x", &[("p", "q")], &[1.0, 2.0], &[1, 2], 3.0, 3);
        let t = e.finish();
        assert!(t.contains("# HELP x a\\nb\n"));
        assert!(t.contains("y{k=\"a\\\"b\\\\c\\nd\"} 1.5\n"));
        assert!(t.contains("x_bucket{p=\"q\",le=\"+Inf\"} 3\n"));
        assert!(t.contains("x_bucket{p=\"q\",le=\"1\"} 1\n"));
        assert!(t.contains("x_count{p=\"q\"} 3\n"));
    }
}
