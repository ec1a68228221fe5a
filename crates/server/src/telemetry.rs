//! Logging and request ids.
//!
//! Logs go to standard error, as readable text or one JSON object per line. Every request gets
//! an id (the caller's `x-request-id` when it is short and plain, else a new one), echoed in the
//! response header and carried by every log line of that request. Request lines show the path
//! but never the query string or headers, where callback codes and credentials travel.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("configuration error: `log_level`: {e} (expected e.g. \"info\" or \"info,ledgerlink_server=debug\")"))?
        // sqlx logs every statement at info; its slow-statement warnings are what an operator wants.
        .add_directive("sqlx=warn".parse().expect("valid directive"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
        }
    };
    // A second init (several hubs in one test process) keeps the first subscriber.
    let _ = result;
    INITIALISED.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

static INITIALISED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether [`init`] ran, so fatal errors go to the log (JSON for shippers) or, before that, to
/// plain standard error — never both.
pub fn initialised() -> bool {
    INITIALISED.load(std::sync::atomic::Ordering::SeqCst)
}

/// The id of the request being served, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub async fn request_context(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req_{:016x}", rand::thread_rng().r#gen::<u64>()));
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        tenant_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_millis() as u64;
    span.in_scope(|| tracing::info!(status, latency_ms, "request served"));
    response
}
