//! Prometheus metrics at `GET /metrics`, in the text exposition format.
//!
//! Counters live in this process (they restart at zero, as Prometheus expects of counters);
//! gauges that describe shared state (connections by provider and status, outbox depth) are
//! read from the database at scrape time, so every instance reports the same totals.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::AppState;

/// The counters a hub process keeps, each with its help text.
pub const COUNTERS: &[(&str, &str)] = &[
    ("ledgerlink_refreshes_total", "Token refreshes that stored new tokens, by provider."),
    ("ledgerlink_refresh_failures_total", "Token refreshes that failed, by provider and diagnosis category."),
    ("ledgerlink_alerts_total", "Alerts raised (the `ledgerlink alert` log line), by event type."),
    ("ledgerlink_webhook_deliveries_total", "Webhook delivery attempts, by outcome (delivered, failed)."),
    ("ledgerlink_emails_total", "Alert emails, by outcome (sent, retry, failed)."),
    (
        "ledgerlink_proxy_requests_total",
        "Requests forwarded by the proxy, by provider and HTTP status class.",
    ),
    ("ledgerlink_connection_tests_total", "Test-connection calls, by provider and result (ok, failed)."),
    ("ledgerlink_jobs_total", "qbXML jobs finished, by outcome (done, failed)."),
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
}

impl Metrics {
    /// Adds one to `name` with `labels`. `name` must be listed in [`COUNTERS`].
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        debug_assert!(COUNTERS.iter().any(|(n, _)| *n == name), "undeclared counter {name}");
        let labels = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let mut counters = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *counters.entry((name, labels)).or_default() += 1;
    }

    /// The current value of one counter, summed over the labels not given.
    #[cfg(test)]
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let counters = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counters
            .iter()
            .filter(|((n, l), _)| {
                *n == name && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| *v)
            .sum()
    }

    fn render_counters(&self, out: &mut String) {
        let counters = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, help) in COUNTERS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((n, labels), value) in counters.iter() {
                if n == name {
                    let _ = writeln!(out, "{name}{} {value}", label_text(labels));
                }
            }
        }
    }
}

fn label_text(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{{{}}}", inner.join(","))
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The whole exposition: gauges from the database, then this process's counters.
pub async fn render(state: &AppState) -> anyhow::Result<String> {
    let mut out = String::new();
    let counts = state.store.connection_counts().await?;
    let _ = writeln!(
        out,
        "# HELP ledgerlink_connections Connections by provider and status (green connected, amber degraded, red disconnected).\n\
         # TYPE ledgerlink_connections gauge"
    );
    // Every status appears for every provider seen, so a status dropping to zero shows as 0.
    let providers: std::collections::BTreeSet<&str> = counts.iter().map(|(p, _, _)| p.as_str()).collect();
    for provider in providers {
        for status in ["pending", "connected", "degraded", "disconnected", "paused"] {
            let n = counts.iter().find(|(p, s, _)| p == provider && s == status).map_or(0, |(_, _, n)| *n);
            let _ = writeln!(
                out,
                "ledgerlink_connections{{provider=\"{}\",status=\"{status}\"}} {n}",
                escape(provider)
            );
        }
    }
    let (deliveries, emails) = state.store.outbox_depth().await?;
    let _ = writeln!(
        out,
        "# HELP ledgerlink_outbox_pending Webhook deliveries and emails waiting to go out.\n\
         # TYPE ledgerlink_outbox_pending gauge\n\
         ledgerlink_outbox_pending{{kind=\"webhook\"}} {deliveries}\n\
         ledgerlink_outbox_pending{{kind=\"email\"}} {emails}"
    );
    state.metrics.render_counters(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_escaped_labels_and_sum_by_partial_labels() {
        let m = Metrics::default();
        m.inc("ledgerlink_refreshes_total", &[("provider", "xero")]);
        m.inc("ledgerlink_refreshes_total", &[("provider", "xero")]);
        m.inc("ledgerlink_refresh_failures_total", &[("provider", "myob"), ("category", "a\"b")]);
        assert_eq!(m.get("ledgerlink_refreshes_total", &[("provider", "xero")]), 2);
        assert_eq!(m.get("ledgerlink_refresh_failures_total", &[]), 1);
        let mut out = String::new();
        m.render_counters(&mut out);
        assert!(out.contains("ledgerlink_refreshes_total{provider=\"xero\"} 2\n"), "{out}");
        assert!(out.contains("category=\"a\\\"b\""), "{out}");
        assert!(out.contains("# TYPE ledgerlink_emails_total counter"));
    }
}
