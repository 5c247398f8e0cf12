//! One observation of the target, how the answers of `/api/kernels` and
//! `/api/incidents` are parsed into it, and whether a probe passes on it.

use std::collections::HashMap;

use serde_json::Value;

use crate::chaos::scenario::Probe;

/// A kernel as `/api/kernels` shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KernelView {
    pub name: String,
    pub state: String,
    pub restarts: u64,
}

/// One observation.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub health: Option<Result<u16, String>>,
    pub kernels: Option<Result<Vec<KernelView>, String>>,
    pub incidents: Option<Result<Vec<Value>, String>>,
    pub gets: HashMap<String, Result<u16, String>>,
    /// `files_exist` globs and how many files matched.
    pub files: HashMap<String, usize>,
    /// `service_http` URLs and their answers.
    pub services: HashMap<String, Result<u16, String>>,
    /// `tcp_connect` addresses and whether a connection was accepted.
    pub tcp: HashMap<String, Result<(), String>>,
}

fn list<'a>(v: &'a Value, key: &str) -> Option<&'a Vec<Value>> {
    v.as_array()
        .or_else(|| v.get(key).and_then(Value::as_array))
}

/// Parses `/api/kernels` (an array, or an object with a `kernels` array).
pub(crate) fn parse_kernels(v: &Value) -> Result<Vec<KernelView>, String> {
    let items = list(v, "kernels").ok_or("/api/kernels is not a list of kernels")?;
    Ok(items
        .iter()
        .filter_map(|k| {
            Some(KernelView {
                name: k.get("name")?.as_str()?.to_owned(),
                state: k
                    .get("state")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                restarts: k.get("restarts").and_then(Value::as_u64).unwrap_or(0),
            })
        })
        .collect())
}

/// Parses `/api/incidents` (an array, or an object with an `incidents` array).
pub(crate) fn parse_incidents(v: &Value) -> Result<Vec<Value>, String> {
    list(v, "incidents")
        .cloned()
        .ok_or_else(|| "/api/incidents is not a list of incidents".to_owned())
}

pub(super) fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Whether a probe passes on a snapshot; `Err` says why not.
pub(crate) fn evaluate(probe: &Probe, s: &Snapshot) -> Result<(), String> {
    let kernels = || match &s.kernels {
        Some(Ok(k)) => Ok(k),
        Some(Err(e)) => Err(format!("/api/kernels: {e}")),
        None => Err("/api/kernels not read".to_owned()),
    };
    match probe {
        Probe::HealthOk => match &s.health {
            Some(Ok(200)) => Ok(()),
            Some(Ok(code)) => Err(format!("/health answered {code}")),
            Some(Err(e)) => Err(e.clone()),
            None => Err("/health not read".to_owned()),
        },
        Probe::AllKernelsRunning => {
            let k = kernels()?;
            let bad: Vec<String> = k
                .iter()
                .filter(|k| k.state != "running")
                .map(|k| format!("{} {}", k.name, k.state))
                .collect();
            if k.is_empty() {
                Err("no kernels listed".to_owned())
            } else if bad.is_empty() {
                Ok(())
            } else {
                Err(format!("not running: {}", bad.join(", ")))
            }
        }
        Probe::KernelRunning(name) => match kernels()?.iter().find(|k| k.name == *name) {
            Some(k) if k.state == "running" => Ok(()),
            Some(k) => Err(format!("{name} is {}", k.state)),
            None => Err(format!("no kernel named {name}")),
        },
        Probe::NoOpenIncidents => match &s.incidents {
            Some(Ok(list)) => {
                let open: Vec<String> = list
                    .iter()
                    .filter(|i| {
                        matches!(
                            text(i, "status").as_str(),
                            "open" | "mitigating" | "verifying"
                        )
                    })
                    .map(|i| format!("{} ({})", text(i, "incident_id"), text(i, "trigger")))
                    .collect();
                if open.is_empty() {
                    Ok(())
                } else {
                    Err(format!("open incidents: {}", open.join(", ")))
                }
            }
            Some(Err(e)) => Err(format!("/api/incidents: {e}")),
            None => Err("/api/incidents not read".to_owned()),
        },
        Probe::HttpGet { path, status } => match s.gets.get(path) {
            Some(Ok(code)) if code == status => Ok(()),
            Some(Ok(code)) => Err(format!("GET {path} answered {code}, expected {status}")),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("GET {path} not made")),
        },
        Probe::FilesExist { glob, min } => match s.files.get(glob) {
            Some(n) if n >= min => Ok(()),
            Some(n) => Err(format!("{n} file(s) match {glob}, {min} wanted")),
            None => Err(format!("{glob} not looked for")),
        },
        Probe::ServiceHttp { url, status } => match s.services.get(&url.to_string()) {
            Some(Ok(code)) if code == status => Ok(()),
            Some(Ok(code)) => Err(format!("GET {url} answered {code}, expected {status}")),
            Some(Err(e)) => Err(format!("GET {url}: {e}")),
            None => Err(format!("GET {url} not made")),
        },
        Probe::TcpConnect(addr) => match s.tcp.get(&addr.to_string()) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("connect to {addr}: {e}")),
            None => Err(format!("connect to {addr} not tried")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_evaluate_on_snapshots() {
        let mut s = Snapshot {
            health: Some(Ok(503)),
            ..Snapshot::default()
        };
        assert!(evaluate(&Probe::HealthOk, &s).is_err());
        s.health = Some(Ok(200));
        assert!(evaluate(&Probe::HealthOk, &s).is_ok());
        let k = serde_json::json!([
            {"name": "a", "state": "running", "restarts": 1},
            {"name": "b", "state": "restarting"}
        ]);
        s.kernels = Some(parse_kernels(&k));
        assert!(evaluate(&Probe::KernelRunning("a".into()), &s).is_ok());
        let e = evaluate(&Probe::AllKernelsRunning, &s).expect_err("b restarting");
        assert!(e.contains("b restarting"), "{e}");
        assert!(evaluate(&Probe::KernelRunning("zz".into()), &s).is_err());
        let inc = serde_json::json!({"incidents": [{"incident_id": "i1", "status": "resolved"}]});
        s.incidents = Some(parse_incidents(&inc));
        assert!(evaluate(&Probe::NoOpenIncidents, &s).is_ok());
        let glob = "snapshots/*/model_*.pt".to_owned();
        let snap = Probe::FilesExist {
            glob: glob.clone(),
            min: 2,
        };
        assert!(evaluate(&snap, &s).is_err(), "not looked for");
        s.files.insert(glob.clone(), 1);
        assert!(evaluate(&snap, &s).expect_err("one").contains("2 wanted"));
        s.files.insert(glob, 2);
        assert!(evaluate(&snap, &s).is_ok());
        let url = crate::chaos::scenario::LoopbackUrl::try_from("http://127.0.0.1:9/x".to_owned())
            .expect("url");
        let svc = Probe::ServiceHttp { url, status: 200 };
        assert!(evaluate(&svc, &s)
            .expect_err("not made")
            .contains("not made"));
        s.services.insert("http://127.0.0.1:9/x".into(), Ok(503));
        assert!(evaluate(&svc, &s)
            .expect_err("503")
            .contains("answered 503"));
        s.services.insert("http://127.0.0.1:9/x".into(), Ok(200));
        assert!(evaluate(&svc, &s).is_ok());
        let addr = crate::chaos::scenario::LoopbackAddr::parse("127.0.0.1:9", "t").expect("addr");
        let tcp = Probe::TcpConnect(addr);
        s.tcp.insert("127.0.0.1:9".into(), Err("refused".into()));
        assert!(evaluate(&tcp, &s).expect_err("refused").contains("refused"));
        s.tcp.insert("127.0.0.1:9".into(), Ok(()));
        assert!(evaluate(&tcp, &s).is_ok());
    }
}
