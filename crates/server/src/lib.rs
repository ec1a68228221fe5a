//! The ledgerlink hub: the HTTP API, the workers, and the `ledgerlink` command line.
//!
//! # Layout
//!
//! - [`config`]: the TOML file, `LEDGERLINK_*` environment and flags, and the documented key list.
//! - [`cli`]: the `ledgerlink` commands; `main.rs` only calls [`cli::main`].
//! - [`hub`]: startup — the data directory, the encryption keys, the store — into an [`AppState`].
//! - [`api`]: the v1 JSON API (axum), its errors, authentication and OpenAPI document.
//! - [`engine`]: the refresh engine that keeps OAuth tokens alive; [`connections`]: the OAuth
//!   round trip, duplicate detection.
//! - [`alerts`]: events to the `ledgerlink alert` line, [`webhooks`] (Standard Webhooks, durable
//!   outbox) and [`email`] (via [`mailer`], with [`links`] for signed reconnect links);
//!   [`metrics`] for Prometheus.
//! - [`proxy`]: per-account rate-limit queues of the API proxy.
//! - [`webconnector`]: the Reckon Web Connector protocol and job queue; [`passwords`]: argon2.
//! - [`telemetry`]: logging (text or JSON) and the per-request id.
//! - [`sandbox`]: what `serve --sandbox` adds (a demo tenant and the provider simulators).
//! - [`bench`](mod@bench): `ledgerlink bench`.
//!
//! [`run`] serves a bound listener until a cancellation token fires, so tests start the real
//! server on port 0 and stop it when they are done.

use std::future::IntoFuture;
use std::sync::Arc;

use ledgerlink_core::Clock;
use ledgerlink_core::crypto::KeyRing;
use ledgerlink_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod acumatica;
pub mod alerts;
pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod connections;
pub mod email;
pub mod engine;
pub mod hub;
pub mod links;
pub mod mailer;
pub mod metrics;
pub mod passwords;
pub mod providers;
pub mod proxy;
pub mod sandbox;
pub mod telemetry;
pub mod tenants;
pub mod webconnector;
pub mod webhooks;

pub use config::Config;

/// What every request handler and worker shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    pub providers: Arc<providers::ProviderRegistry>,
    pub engine: Arc<engine::RefreshEngine>,
    /// This process's counters (the engine's, shared).
    pub metrics: Arc<metrics::Metrics>,
    /// The API proxy's client and per-account rate-limit queues.
    pub proxy: Arc<proxy::Proxy>,
    /// Extra routes mounted beside the API (the sandbox simulators).
    pub extra_routes: Option<axum::Router>,
}

/// Serves the API and runs the background workers (the refresh engine) until `shutdown` is
/// cancelled, then lets in-flight work finish (bounded by `shutdown_timeout`).
pub async fn run(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> std::io::Result<()> {
    let engine = tokio::spawn(Arc::clone(&state.engine).run(shutdown.clone()));
    let alerts = tokio::spawn(alerts::run(state.clone(), shutdown.clone()));
    let outbox = tokio::spawn(send_outbox(state.clone(), shutdown.clone()));
    let served = serve_api(listener, state, shutdown).await;
    let _ = tokio::join!(engine, alerts, outbox);
    served
}

/// Sends webhook deliveries and alert emails as they fall due, until `shutdown`.
async fn send_outbox(state: AppState, shutdown: CancellationToken) {
    let sender = match webhooks::Sender::new(state.config.webhooks.timeout) {
        Ok(sender) => sender,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook client; webhooks will not be sent");
            return;
        }
    };
    let mailer = match email::mailer(&state) {
        Ok(mailer) => mailer,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "alert emails are off: the SMTP settings are not usable"
            );
            None
        }
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            () = shutdown.cancelled() => return,
        }
        if let Err(error) = sender.deliver_due(&state).await {
            tracing::warn!(error = format!("{error:#}"), "webhook sender failed; retrying");
        }
        if let Some(mailer) = &mailer
            && let Err(error) = email::send_due(&state, mailer).await
        {
            tracing::warn!(error = format!("{error:#}"), "email sender failed; retrying");
        }
    }
}

/// Serves only the API, without background workers: tests drive the engine themselves.
pub async fn serve_api(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let grace = state.config.shutdown_timeout;
    let router = api::router(state);
    let stopping = shutdown.clone();
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stopping.cancelled().await })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "in-flight requests did not finish within shutdown_timeout; exiting anyway");
            Ok(())
        }
    }
}
