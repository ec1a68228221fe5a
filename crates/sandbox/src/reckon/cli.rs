//! `ledgerlink simulate reckon`: one simulated RWC connection with a generated company file,
//! running on its schedule until shut down.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, bail};
use ledgerlink_core::SecretString;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::client::{Client, ClientConfig};
use super::company::CompanyFile;
use super::records::CompanyOptions;

/// What `ledgerlink simulate reckon` needs.
#[derive(Debug, Clone)]
pub struct CliOptions {
    /// The hub's "initiate communication" URL (`{public_url}/webconnector/reckon`).
    pub endpoint: String,
    /// The connection id the hub issued.
    pub id: String,
    pub username: String,
    pub password: SecretString,
    /// Minutes between scheduled communications (at least 1, as in the RWC). Default 5.
    pub schedule_minutes: u64,
    /// Active customers in the generated company file. Default 35.
    pub customers: usize,
    /// Seed of the generated company file. Default 1.
    pub seed: u64,
    /// Seconds the SDK session stays usable for a repeat GET. Default 30, as in the RWC.
    pub iterator_window_secs: u64,
    /// Run one communication cycle (a scheduled GET and its repeats), print its report and exit.
    pub once: bool,
}

impl CliOptions {
    pub fn new(
        endpoint: impl Into<String>,
        id: impl Into<String>,
        username: impl Into<String>,
        password: SecretString,
    ) -> Self {
        CliOptions {
            endpoint: endpoint.into(),
            id: id.into(),
            username: username.into(),
            password,
            schedule_minutes: 5,
            customers: 35,
            seed: 1,
            iterator_window_secs: 30,
            once: false,
        }
    }
}

/// Runs the simulated connection until `shutdown` completes, logging each cycle.
pub async fn run_cli(options: CliOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let endpoint = url::Url::parse(&options.endpoint)
        .with_context(|| format!("Failed to read the endpoint URL {:?}", options.endpoint))?;
    if !matches!(endpoint.scheme(), "http" | "https") {
        bail!("the endpoint must be an http:// or https:// URL, not {:?}", options.endpoint);
    }
    if options.schedule_minutes == 0 {
        bail!("--schedule-minutes must be at least 1");
    }
    if options.id.is_empty() {
        bail!("--id must not be empty");
    }

    let company_options =
        CompanyOptions { seed: options.seed, customers: options.customers, ..CompanyOptions::default() };
    let company = CompanyFile::generate(&company_options);
    info!(
        company = company.company_name(),
        path = company.path(),
        customers = company.customers().len(),
        items = company.items().len(),
        invoices = company.invoices().len(),
        "generated the company file"
    );
    let mut config =
        ClientConfig::new(options.endpoint.clone(), options.id.clone(), options.username, options.password);
    config.schedule = Duration::from_secs(options.schedule_minutes * 60);
    config.iterator_window = Duration::from_secs(options.iterator_window_secs);
    config.company_file_path = company.path().to_owned();
    let mut client =
        Client::new(config, company.shared()).context("Failed to start the simulated RWC client")?;

    if options.once {
        let report = client.run_cycle().await.context("The communication cycle failed")?;
        println!(
            "one cycle: {} exchanges, {} qbXML documents processed, {} posts ({} with an errorCode), {} repeats",
            report.exchanges, report.qbxml_processed, report.posts, report.error_posts, report.repeats
        );
        return Ok(());
    }
    info!(
        endpoint = %options.endpoint,
        connection = %options.id,
        schedule_minutes = options.schedule_minutes,
        "simulated Reckon Web Connector running; stop it with Ctrl-C"
    );
    let token = CancellationToken::new();
    let run = client.run(token.clone());
    tokio::pin!(run);
    tokio::select! {
        _ = &mut run => {}
        _ = shutdown => token.cancel(),
    }
    info!(connection = %options.id, "simulated Reckon Web Connector stopped");
    Ok(())
}
