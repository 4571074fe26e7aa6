//! The HTTP admin port: Prometheus `/metrics`, `/livez` (the process answers) and `/readyz` (it
//! admits batches: 503 once shutdown has started or while the disk budget is exhausted).

use std::{net::SocketAddr, sync::Arc};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use tokio::net::TcpListener;

use crate::{CollectorError, Result, metrics::render, service::Ingest};

async fn metrics(State(ingest): State<Arc<Ingest>>) -> ([(&'static str, &'static str); 1], String) {
    let body = render(&ingest.metrics().stations(), &ingest.gauges());
    ([("content-type", "text/plain; version=0.0.4")], body)
}

async fn livez() -> &'static str {
    "ok\n"
}

async fn readyz(State(ingest): State<Arc<Ingest>>) -> (StatusCode, &'static str) {
    let g = ingest.gauges();
    match (g.admitting, g.disk_ok) {
        (true, true) => (StatusCode::OK, "ready\n"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        (true, false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "disk budget exhausted: batches are refused until space is freed\n",
        ),
    }
}

/// Binds the admin port; returns its address and the server future (run it until `shutdown`).
pub async fn bind(
    addr: SocketAddr,
    ingest: Arc<Ingest>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()> + Send)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| CollectorError::Serve { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| CollectorError::Serve { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(ingest);
    let serve = async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "Admin port failed.");
        }
    };
    Ok((local, serve))
}
