//! The ledgerlink hub: the HTTP API, the workers, and the `ledgerlink` command line.
//!
//! # Layout
//!
//! - [`config`]: the TOML file, `LEDGERLINK_*` environment and flags, and the documented key list.
//! - [`cli`]: the `ledgerlink` commands; `main.rs` only calls [`cli::main`].
//! - [`hub`]: startup — the data directory, the encryption keys, the store — into an [`AppState`].
//! - [`api`]: the v1 JSON API (axum), its errors, authentication and OpenAPI document.
//! - [`telemetry`]: logging (text or JSON) and the per-request id.
//! - [`sandbox`]: what `serve --sandbox` adds (a demo tenant; the provider simulators arrive with
//!   the OAuth issue).
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

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod connections;
pub mod engine;
pub mod hub;
pub mod providers;
pub mod sandbox;
pub mod telemetry;
pub mod tenants;

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
    /// Extra routes mounted beside the API (the sandbox simulators).
    pub extra_routes: Option<axum::Router>,
}

/// Serves the API and runs the background workers (the refresh engine) until `shutdown` is
/// cancelled, then lets in-flight work finish (bounded by `shutdown_timeout`).
pub async fn run(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> std::io::Result<()> {
    let engine = tokio::spawn(Arc::clone(&state.engine).run(shutdown.clone()));
    let served = serve_api(listener, state, shutdown).await;
    let _ = engine.await;
    served
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
