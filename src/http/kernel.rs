//! The `http` kernel: the HTTP server as a supervised child of the root, so that a
//! crashed server is restarted like any other kernel, on the same address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::error::HttpError;
use super::server::{start, HttpServer};
use crate::kernel::{Kernel, KernelContext, KernelError, KernelFactory, Request};

/// The kernel holding the HTTP server.
pub struct HttpKernel {
    first: Arc<Mutex<Option<HttpServer>>>,
    addr: SocketAddr,
    server: Option<HttpServer>,
}

impl HttpKernel {
    /// A factory whose first kernel adopts `server` (already bound by serve, which
    /// needed its address for `serve.json`) and whose later incarnations bind the same
    /// address again.
    pub fn factory(server: HttpServer) -> KernelFactory {
        let addr = server.local_addr();
        let first = Arc::new(Mutex::new(Some(server)));
        Arc::new(move || {
            Box::new(HttpKernel {
                first: first.clone(),
                addr,
                server: None,
            })
        })
    }
}

/// How long a restarted `http` kernel keeps trying to bind its address while the
/// previous incarnation's listener is being released.
const REBIND_FOR: Duration = Duration::from_secs(2);
/// Pause between bind attempts.
const REBIND_EVERY: Duration = Duration::from_millis(25);

impl HttpKernel {
    /// Binds the address again. The listener of a crashed incarnation is released by
    /// its task's cancellation, which can lag the restart by a moment, so a port in use
    /// is retried for [`REBIND_FOR`].
    async fn rebind(&self, ctx: &KernelContext) -> Result<HttpServer, KernelError> {
        let deadline = tokio::time::Instant::now() + REBIND_FOR;
        let ip = self.addr.ip().to_string();
        loop {
            match start(
                ctx.system.clone(),
                &ctx.system.config.http,
                Some(self.addr.port()),
                Some(&ip),
            )
            .await
            {
                Ok(s) => return Ok(s),
                Err(HttpError::PortInUse { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(REBIND_EVERY).await;
                }
                Err(e) => {
                    return Err(KernelError::failed(format!(
                        "http server did not start: {e}"
                    )))
                }
            }
        }
    }
}

#[async_trait]
impl Kernel for HttpKernel {
    async fn start(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        let adopted = self.first.lock().take();
        let server = match adopted {
            Some(s) => s,
            None => self.rebind(ctx).await?,
        };
        self.server = Some(server);
        Ok(())
    }

    fn ticks(&self) -> bool {
        true
    }

    async fn tick(&mut self, _ctx: &KernelContext) -> Result<(), KernelError> {
        match &self.server {
            Some(s) if !s.is_finished() => Ok(()),
            _ => Err(KernelError::failed("http server task ended")),
        }
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        Err(KernelError::BadRequest {
            kernel: ctx.name.to_string(),
            reason: format!("unknown op {:?}; the http kernel takes no requests", req.op),
        })
    }

    fn stats(&self) -> Value {
        json!({ "addr": self.addr.to_string() })
    }

    async fn stop(&mut self, _ctx: &KernelContext) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}
