//! Delivering an alert to the configured notifiers: an HTTP POST of the alert as JSON,
//! and a command with the alert on stdin and in its environment. Each has a timeout.
//! (Alertmanager has a notifier of its own, `alertmanager/`, which posts through
//! [`post_json`] too.)

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::{Alert, AlertError, AlertsConfig};

/// Delivers `alert` to every configured notifier; returns the failures.
pub async fn deliver(cfg: &AlertsConfig, alert: &Alert) -> Vec<AlertError> {
    let mut errors = Vec::new();
    if let Some(url) = &cfg.webhook {
        if let Err(e) = webhook(url, cfg.webhook_timeout, alert).await {
            errors.push(e);
        }
    }
    if !cfg.command.is_empty() {
        if let Err(e) = command(&cfg.command, cfg.command_timeout, alert).await {
            errors.push(e);
        }
    }
    errors
}

/// Splits an `http://host[:port][/path]` URL.
pub(crate) fn parse_http_url(url: &str) -> Result<(String, u16, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// is supported (use a local relay for https)".to_owned());
    }
    let host = uri.host().ok_or("no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    Ok((host, port, path))
}

async fn webhook(url: &str, timeout: std::time::Duration, alert: &Alert) -> Result<(), AlertError> {
    let (host, port, path) = parse_http_url(url).map_err(|reason| AlertError::BadWebhook {
        url: url.to_owned(),
        reason,
    })?;
    let fail = |reason: String| AlertError::Webhook {
        url: url.to_owned(),
        reason,
    };
    let body = serde_json::to_vec(alert).map_err(|e| fail(e.to_string()))?;
    post_json(&host, port, &path, body, timeout)
        .await
        .map_err(fail)
}

/// POSTs `body` (JSON) to `host:port` at `path`, all within `timeout`; a 2xx answer is
/// success.
pub(crate) async fn post_json(
    host: &str,
    port: u16,
    path: &str,
    body: Vec<u8>,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to nothing"))?;
    let host_header = format!("{host}:{port}");
    let answer = super::http::request(
        addr,
        "POST",
        path,
        &host_header,
        Some(("application/json", body)),
        &[],
        timeout,
    )
    .await?;
    if (200..300).contains(&answer.status) {
        Ok(())
    } else {
        let said = String::from_utf8_lossy(&answer.body);
        let said: String = said.chars().take(200).collect();
        Err(format!("answered {}: {}", answer.status, said.trim()))
    }
}

async fn command(
    argv: &[String],
    timeout: std::time::Duration,
    alert: &Alert,
) -> Result<(), AlertError> {
    let program = argv.first().cloned().unwrap_or_default();
    let fail = |reason: String| AlertError::Command {
        program: program.clone(),
        reason,
    };
    let json = serde_json::to_string(alert).map_err(|e| fail(e.to_string()))?;
    let mut child = tokio::process::Command::new(&program)
        .args(&argv[1..])
        .env("GRACE_ALERT", &json)
        .env("GRACE_ALERT_SEVERITY", alert.severity.as_str())
        .env("GRACE_ALERT_EVENT", &alert.event_type)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read stdin is fine.
        let _ = stdin.write_all(json.as_bytes()).await;
    }
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => Err(fail(format!("exited with {s}"))),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => {
            let _ = child.kill().await;
            Err(fail(format!("still running after {timeout:?}; killed")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Severity;

    fn alert() -> Alert {
        Alert {
            severity: Severity::Critical,
            event_type: "watchdog.crash_loop".to_owned(),
            timestamp: "2025-01-01T00:00:00.000000Z".to_owned(),
            summary: "s".to_owned(),
            payload: serde_json::json!({}),
            file: "x.json".into(),
        }
    }

    #[test]
    fn parses_http_urls_only() {
        assert_eq!(
            parse_http_url("http://127.0.0.1:9/hook?x=1").expect("ok"),
            ("127.0.0.1".to_owned(), 9, "/hook?x=1".to_owned())
        );
        assert!(parse_http_url("https://example.com/").is_err());
    }

    #[tokio::test]
    async fn webhook_posts_the_alert_as_json() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).await.expect("read");
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if n == 0 || text.contains("watchdog.crash_loop") {
                    break;
                }
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                .await
                .expect("write");
            String::from_utf8_lossy(&buf).into_owned()
        });
        let cfg = AlertsConfig {
            webhook: Some(format!("http://{addr}/hook")),
            ..AlertsConfig::default()
        };
        let errors = deliver(&cfg, &alert()).await;
        assert!(errors.is_empty(), "{errors:?}");
        let req = server.await.expect("server");
        assert!(req.starts_with("POST /hook HTTP/1.1"), "{req}");
        assert!(req.contains("application/json"), "{req}");
    }

    #[tokio::test]
    async fn command_gets_the_alert_and_failures_are_reported() {
        let d = tempfile::tempdir().expect("tempdir");
        let out = d.path().join("got.json");
        let cfg = AlertsConfig {
            command: vec!["sh".into(), "-c".into(), format!("cat > {}", out.display())],
            ..AlertsConfig::default()
        };
        assert!(deliver(&cfg, &alert()).await.is_empty());
        let got: Alert =
            serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("parse");
        assert_eq!(got, alert());
        let bad = AlertsConfig {
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
            ..AlertsConfig::default()
        };
        assert_eq!(deliver(&bad, &alert()).await.len(), 1);
    }
}
