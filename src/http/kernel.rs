//! The `http` kernel: the HTTP server as a supervised child of the root, so that a
//! crashed server is restarted like any other kernel, on the same address.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{json, Value};

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

#[async_trait]
impl Kernel for HttpKernel {
    async fn start(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        let adopted = self.first.lock().take();
        let server = match adopted {
            Some(s) => s,
            None => start(
                ctx.system.clone(),
                &ctx.system.config.http,
                Some(self.addr.port()),
                Some(&self.addr.ip().to_string()),
            )
            .await
            .map_err(|e| KernelError::failed(format!("http server did not start: {e}")))?,
        };
        self.server = Some(server);
        Ok(())
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
