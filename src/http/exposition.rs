//! The Prometheus exposition, written through `prometheus-client`: a thin writer over
//! its descriptor encoder (families of counters, gauges and histograms, label values
//! escaped), and the two formats `/metrics` speaks. The crate writes OpenMetrics 1.0,
//! which Prometheus asks for; every other client (curl, promtool, older scrapers) gets
//! the classic text format 0.0.4, derived from it by [`classic_text`].

use std::collections::HashSet;
use std::fmt::Write;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelValue, LabelValueEncoder,
    MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

/// Content type of OpenMetrics 1.0.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the classic text format.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value, escaped as both formats require (backslash, double quote, newline):
/// the crate writes label values as given.
#[derive(Debug, Clone, Copy)]
struct Escaped<'a>(&'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, enc: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        for c in self.0.chars() {
            match c {
                '\\' => enc.write_str("\\\\")?,
                '"' => enc.write_str("\\\"")?,
                '\n' => enc.write_str("\\n")?,
                c => enc.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Label pairs of one sample.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// A histogram's figures: counts per range (`counts[i]` for the values up to
/// `bounds[i]` and above the previous bound; one more for the values above the last
/// bound), and the sum of the values.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramData<'a> {
    /// Upper bounds, ascending.
    pub bounds: &'a [f64],
    /// Counts per range, `bounds.len() + 1` of them.
    pub counts: Vec<u64>,
    /// Sum of the values.
    pub sum: f64,
}

/// Writes metric families into the crate's encoder.
pub struct Families<'a> {
    enc: DescriptorEncoder<'a>,
}

/// Writes `labels` (if any) and lets `f` encode the value.
fn with_labels(
    m: &mut MetricEncoder<'_>,
    labels: Labels<'_>,
    f: impl FnOnce(&mut MetricEncoder<'_>) -> std::fmt::Result,
) -> std::fmt::Result {
    if labels.is_empty() {
        return f(m);
    }
    let set: Vec<(&str, Escaped<'_>)> = labels.iter().map(|(k, v)| (*k, Escaped(v))).collect();
    let set = set.as_slice();
    f(&mut m.encode_family(&set)?)
}

fn encode_counter<V: EncodeCounterValue>(m: &mut MetricEncoder<'_>, v: &V) -> std::fmt::Result {
    m.encode_counter::<NoLabelSet, _, u64>(v, None)
}

fn encode_gauge<V: EncodeGaugeValue>(m: &mut MetricEncoder<'_>, v: &V) -> std::fmt::Result {
    m.encode_gauge(v)
}

impl<'a> Families<'a> {
    /// Writes into `enc`.
    pub fn new(enc: DescriptorEncoder<'a>) -> Families<'a> {
        Families { enc }
    }

    /// A family of `kind`: its descriptor, then each sample's labels and value.
    fn family<'l, V>(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        samples: impl IntoIterator<Item = (Labels<'l>, V)>,
        value: impl Fn(&mut MetricEncoder<'_>, &V) -> std::fmt::Result,
    ) -> std::fmt::Result {
        let mut m = self.enc.encode_descriptor(name, help, None, kind)?;
        for (labels, v) in samples {
            with_labels(&mut m, labels, |m| value(m, &v))?;
        }
        Ok(())
    }

    /// A family of `kind` with one label, `key`: samples are (label value, value).
    fn family_by<'s, V>(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        key: &str,
        samples: impl IntoIterator<Item = (&'s str, V)>,
        value: impl Fn(&mut MetricEncoder<'_>, &V) -> std::fmt::Result,
    ) -> std::fmt::Result {
        let rows: Vec<_> = samples.into_iter().map(|(l, v)| ([(key, l)], v)).collect();
        let samples = rows.iter().map(|(l, v)| (&l[..], v));
        self.family(name, help, kind, samples, |m, v| value(m, v))
    }

    /// A counter family. `name` is without `_total`, which the encoder appends to each
    /// sample (and [`classic_text`] to the family).
    pub fn counter<'l, V: EncodeCounterValue>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'l>, V)>,
    ) -> std::fmt::Result {
        self.family(name, help, MetricType::Counter, samples, encode_counter)
    }

    /// A gauge family.
    pub fn gauge<'l, V: EncodeGaugeValue>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'l>, V)>,
    ) -> std::fmt::Result {
        self.family(name, help, MetricType::Gauge, samples, encode_gauge)
    }

    /// A counter family with one label, `key`: samples are (label value, value).
    pub fn counter_by<'s, V: EncodeCounterValue>(
        &mut self,
        name: &str,
        help: &str,
        key: &str,
        samples: impl IntoIterator<Item = (&'s str, V)>,
    ) -> std::fmt::Result {
        self.family_by(
            name,
            help,
            MetricType::Counter,
            key,
            samples,
            encode_counter,
        )
    }

    /// A gauge family with one label, `key`: samples are (label value, value).
    pub fn gauge_by<'s, V: EncodeGaugeValue>(
        &mut self,
        name: &str,
        help: &str,
        key: &str,
        samples: impl IntoIterator<Item = (&'s str, V)>,
    ) -> std::fmt::Result {
        self.family_by(name, help, MetricType::Gauge, key, samples, encode_gauge)
    }

    /// A histogram family.
    pub fn histogram<'l, 'd>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'l>, HistogramData<'d>)>,
    ) -> std::fmt::Result {
        self.family(name, help, MetricType::Histogram, samples, |m, h| {
            let buckets: Vec<(f64, u64)> = h
                .bounds
                .iter()
                .copied()
                .chain(std::iter::once(f64::MAX))
                .zip(h.counts.iter().copied())
                .collect();
            let count = h.counts.iter().sum();
            m.encode_histogram::<NoLabelSet>(h.sum, count, &buckets, None)
        })
    }
}

/// Whether a scraper's `Accept` header asks for OpenMetrics (Prometheus does).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut params = part.split(';').map(str::trim);
            params.next() == Some("application/openmetrics-text")
                && params.all(|p| p.replace(' ', "") != "q=0")
        })
    })
}

/// The classic text format 0.0.4 of an OpenMetrics exposition: a counter family takes
/// its samples' `_total` name, and the `# UNIT` and `# EOF` lines go.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 8 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let comment = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match comment {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let _ = write!(out, "{p}{name}");
                if counters.contains(name) {
                    out.push_str("_total");
                }
                let _ = writeln!(out, " {tail}");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::collector::Collector;
    use prometheus_client::registry::Registry;

    #[derive(Debug)]
    struct Sample;

    impl Collector for Sample {
        fn encode(&self, enc: DescriptorEncoder<'_>) -> std::fmt::Result {
            let mut f = Families::new(enc);
            f.counter("c", "A counter.", [(&[("k", "a\"b\\c\nd")][..], 2u64)])?;
            f.gauge("g", "A gauge.", [(&[][..], 1.5f64)])?;
            f.histogram(
                "h",
                "A histogram.",
                [(
                    &[("p", "q")][..],
                    HistogramData {
                        bounds: &[1.0, 2.0],
                        counts: vec![1, 1, 1],
                        sum: 3.5,
                    },
                )],
            )
        }
    }

    fn exposition() -> String {
        let mut r = Registry::default();
        r.register_collector(Box::new(Sample));
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &r).expect("encode");
        s
    }

    #[test]
    fn labels_are_escaped_and_histograms_are_cumulative() {
        let t = exposition();
        assert!(t.contains("c_total{k=\"a\\\"b\\\\c\\nd\"} 2\n"), "{t}");
        assert!(t.contains("h_bucket{le=\"1.0\",p=\"q\"} 1\n"), "{t}");
        assert!(t.contains("h_bucket{le=\"2.0\",p=\"q\"} 2\n"), "{t}");
        assert!(t.contains("h_bucket{le=\"+Inf\",p=\"q\"} 3\n"), "{t}");
        assert!(t.contains("h_count{p=\"q\"} 3\n"), "{t}");
        assert!(t.ends_with("# EOF\n"), "{t}");
    }

    #[test]
    fn the_classic_format_names_counters_by_their_samples() {
        let t = classic_text(&exposition());
        assert!(
            t.contains("# HELP c_total A counter.\n# TYPE c_total counter\n"),
            "{t}"
        );
        assert!(t.contains("# TYPE g gauge\ng 1.5\n"), "{t}");
        assert!(!t.contains("# EOF"), "{t}");
    }

    #[test]
    fn openmetrics_is_chosen_only_when_asked_for() {
        let prom = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert!(wants_openmetrics(Some(prom)));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text; q=0"
        )));
        assert!(!wants_openmetrics(None));
    }
}
