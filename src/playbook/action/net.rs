//! A small HTTP client for webhooks: POST a JSON body, bounded by a timeout.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::ActionError;

/// Largest response body kept in a step's output.
const MAX_BODY: usize = 4096;

/// POSTs `body` as JSON to `url` (plain `http://`) and returns the status code and
/// the start of the response body. A non-2xx status is an error.
pub async fn post_json(
    url: &str,
    body: &Value,
    timeout: Duration,
) -> Result<(u16, String), ActionError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| ActionError::failed(format!("webhook url {url:?} is not a valid URL: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(ActionError::failed(format!(
            "webhook url {url:?}: only http:// is supported; put a local relay in front of an https endpoint"
        )));
    }
    let bytes =
        serde_json::to_vec(body).map_err(|e| ActionError::failed(format!("webhook body: {e}")))?;
    let req = hyper::Request::post(uri)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("grace/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| ActionError::failed(format!("webhook request to {url}: {e}")))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let call = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| ActionError::failed(format!("webhook POST {url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_BODY)]).into_owned();
        Ok::<_, ActionError>((status, text))
    };
    let (status, text) = tokio::time::timeout(timeout, call).await.map_err(|_| {
        ActionError::failed(format!("webhook POST {url}: no answer within {timeout:?}"))
    })??;
    if (200..300).contains(&status) {
        Ok((status, text))
    } else {
        Err(ActionError::failed(format!(
            "webhook POST {url}: status {status}: {}",
            text.chars().take(200).collect::<String>()
        )))
    }
}
