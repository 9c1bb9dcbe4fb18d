//! The ops endpoints of a long-running command: `GET /metrics` (Prometheus text), `/healthz`
//! (live: the process answers) and `/readyz` (200 when every component is ready, else 503 with
//! each component's state as JSON), on `[ops] http_bind` (127.0.0.1:9464 by default).

use anyhow::{Context, Result};
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::time::Duration;

use super::{DEFAULT_BIND, health, recorder};

/// Where to serve, and whether the address was asked for (an address asked for that cannot be
/// bound stops the process; the default one, when taken, gives way to a free port).
#[derive(Debug, Clone)]
pub struct Bind {
    pub addr: String,
    pub explicit: bool,
}

impl Bind {
    /// The address from the command line / DUBAN_OPS_BIND (`flag`), else the configuration's
    /// `[ops] http_bind`, else the default.
    pub fn resolve(flag: Option<&str>, config: Option<&super::OpsConfig>) -> Bind {
        match flag
            .filter(|s| !s.is_empty())
            .or_else(|| config.and_then(|c| c.http_bind.as_deref()))
        {
            Some(a) => Bind {
                addr: a.to_string(),
                explicit: true,
            },
            None => Bind {
                addr: DEFAULT_BIND.into(),
                explicit: false,
            },
        }
    }
}

/// The endpoints' router (also mountable elsewhere).
pub fn router() -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
}

async fn metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        recorder::render(),
    )
        .into_response()
}

async fn readyz() -> Response {
    let (ready, components) = health::report();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({"ready": ready, "components": components})),
    )
        .into_response()
}

/// Serve the endpoints for the rest of the process's life (a background task); returns the
/// address bound. `command` names the process in the log line.
pub async fn start(bind: &Bind, command: &str) -> Result<SocketAddr> {
    recorder::init();
    ::metrics::gauge!("duban_build_info", "version" => env!("CARGO_PKG_VERSION"), "command" => command.to_string())
        .set(1.0);
    let listener = match tokio::net::TcpListener::bind(&bind.addr).await {
        Ok(l) => l,
        Err(e) if !bind.explicit && e.kind() == std::io::ErrorKind::AddrInUse => {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("ops endpoints: cannot bind any port on 127.0.0.1")?;
            tracing::warn!(target: "duban::ops", "ops endpoints: the default {} is taken (another duban process?); serving on {} instead (set [ops] http_bind or --ops-bind)", bind.addr, l.local_addr()?);
            l
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "ops endpoints: cannot bind {} (set [ops] http_bind, --ops-bind or DUBAN_OPS_BIND)",
                    bind.addr
                )
            });
        }
    };
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router()).await {
            tracing::error!(target: "duban::ops", "ops endpoints stopped: {e}");
        }
    });
    tokio::spawn(async {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            recorder::upkeep();
        }
    });
    tracing::info!(target: "duban::ops", "{command}: metrics on http://{addr}/metrics, health on http://{addr}/healthz and /readyz");
    Ok(addr)
}
