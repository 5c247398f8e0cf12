//! `GET /metrics` over real HTTP: the Prometheus text format parses line by line, and
//! it carries the kernels, bus, incidents and HTTP figures.

mod http_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use grace::config::Config;
use http_support::*;

/// One parsed sample.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// Parses `name{k="v",...} value` (the text exposition format), or says why not.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value: {line}"))?;
    let name = &line[..name_end];
    if !is_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let end = loop {
            // label name
            let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
            if r[start..].starts_with('}') {
                break start + 1;
            }
            let eq = r[start..].find('=').ok_or("label without =")? + start;
            let lname = &r[start..eq];
            if !is_name(lname) {
                return Err(format!("bad label name {lname:?}"));
            }
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        'n' => value.push('\n'),
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(lname.to_owned(), value);
            match chars.next().ok_or("unterminated labels")? {
                (_, ',') => continue,
                (i, '}') => break i + 1,
                (_, c) => return Err(format!("unexpected {c:?} in labels")),
            }
        };
        rest = &r[end..];
    }
    let v = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space before value: {line}"))?;
    let v = v.split(' ').next().unwrap_or("");
    let value = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        x => x
            .parse()
            .map_err(|_| format!("bad value {x:?} in {line}"))?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Checks the whole exposition; returns the samples.
fn parse(text: &str) -> Vec<Sample> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix("# ") {
            let mut parts = c.splitn(3, ' ');
            let kw = parts.next().unwrap_or("");
            let name = parts.next().expect("comment names a metric");
            assert!(is_name(name), "bad name in {line}");
            if kw == "TYPE" {
                let t = parts.next().expect("type");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "bad type in {line}"
                );
                assert!(
                    typed.insert(name.to_owned(), t.to_owned()).is_none(),
                    "family {name} typed twice"
                );
            } else {
                assert_eq!(kw, "HELP", "unknown comment {line}");
            }
            continue;
        }
        let s = parse_sample(line).unwrap_or_else(|e| panic!("line {line:?}: {e}"));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suf| {
                s.name
                    .strip_suffix(suf)
                    .filter(|b| typed.get(*b).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(&s.name);
        assert!(
            typed.contains_key(family),
            "sample {} has no # TYPE",
            s.name
        );
        samples.push(s);
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[test]
fn the_parser_rejects_what_prometheus_rejects() {
    assert!(parse_sample("a_b{x=\"1\",y=\"q\\\"\"} 2.5").is_ok());
    assert!(parse_sample("a 1").is_ok());
    for bad in [
        "1a 1",
        "a{x=1} 1",
        "a{x=\"1\" 1",
        "a",
        "a{x=\"1\"}1",
        "a nope",
    ] {
        assert!(parse_sample(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn metrics_parse_and_carry_kernels_bus_incidents_and_http() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    assert_eq!(
        post_auth(h.addr, &h.sys, "/api/kernels/alpha/restart", "")
            .await
            .status,
        200
    );
    let _ = get(h.addr, "/health").await;
    let ok = eventually(Duration::from_secs(5), || async {
        get(h.addr, "/metrics")
            .await
            .body
            .contains("grace_restarts_total{kernel=\"alpha\"")
    })
    .await;
    assert!(ok, "restart event never counted");

    let a = get(h.addr, "/metrics").await;
    assert_eq!(a.status, 200);
    assert!(
        a.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        a.content_type
    );
    let s = parse(&a.body);
    assert_eq!(
        value(&s, "grace_kernel_restarts_total", &[("kernel", "alpha")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "grace_kernel_restarts_total", &[("kernel", "beta")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "grace_kernel_state",
            &[
                ("kernel", "alpha"),
                ("state", "running"),
                ("critical", "true")
            ]
        ),
        Some(1.0)
    );
    assert!(value(
        &s,
        "grace_kernel_heartbeat_age_seconds",
        &[("kernel", "beta")]
    )
    .is_some());
    assert_eq!(value(&s, "grace_kernels", &[("state", "total")]), Some(3.0));
    assert!(value(&s, "grace_bus_published_total", &[]).is_some_and(|v| v >= 2.0));
    assert_eq!(
        value(
            &s,
            "grace_restarts_total",
            &[
                ("kernel", "alpha"),
                ("reason", "explicit"),
                ("outcome", "success")
            ]
        ),
        Some(1.0)
    );
    assert!(value(
        &s,
        "grace_http_requests_total",
        &[("route", "/health"), ("status", "200")]
    )
    .is_some());
    assert_eq!(
        value(&s, "grace_incident_mttr_seconds_bucket", &[("le", "+Inf")]),
        Some(0.0)
    );
    let families: BTreeSet<&str> = s.iter().map(|x| x.name.as_str()).collect();
    for f in [
        "grace_kernel_mailbox",
        "grace_kernel_messages_total",
        "grace_kernel_handle_latency_seconds_count",
        "grace_http_request_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "grace_build_info",
        "grace_incidents_open",
        "grace_emergency_mode",
    ] {
        assert!(families.contains(f), "missing {f}");
    }
    h.server.shutdown().await;
}
