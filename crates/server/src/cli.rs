//! The `ledgerlink` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LogFormat, Sources};
use crate::{hub, sandbox, telemetry, tenants};

#[derive(Parser, Debug)]
#[command(
    name = "ledgerlink",
    version,
    about = "An accounting connection hub: keeps links to Xero, QuickBooks Online, MYOB, MYOB Acumatica and \
             Reckon Accounts alive, says why one broke and tells the right people.",
    after_help = "Configuration: a TOML file (--config or LEDGERLINK_CONFIG), overridden by LEDGERLINK_* \
                  environment variables, overridden by flags. `ledgerlink config example` lists every key."
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, value_name = "FILE", env = "LEDGERLINK_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database and the key file (overrides `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log as readable text or as one JSON object per line (overrides `log_format`).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the hub: the HTTP API and its background workers. Stops cleanly on SIGTERM or Ctrl-C.
    Serve {
        /// Address and port to listen on (overrides `listen`), e.g. 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Also run the built-in sandbox: a demo tenant (its API key is printed) and simulated providers.
        #[arg(long)]
        sandbox: bool,
    },
    /// Manage tenants: the platforms that use this hub.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Create the database or bring its schema up to date, then exit. `serve` does this too.
    Migrate,
    /// Configuration reference.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Benchmarks: throughput and memory, each beside a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// Simulated clients, to try the hub without the real desktop software.
    Simulate {
        #[command(subcommand)]
        which: SimulateCommand,
    },
}

#[derive(Subcommand, Debug)]
enum SimulateCommand {
    /// The Reckon Web Connector on a desktop, with a generated Reckon Accounts company file
    /// (customers, items, invoices): polls the hub on its schedule, runs the qbXML it is given
    /// and posts the results, as the real RWC does. Stops on Ctrl-C or SIGTERM.
    Reckon {
        /// The hub's endpoint URL (the connection's `webconnector.endpoint_url`).
        #[arg(long, value_name = "URL")]
        endpoint: String,
        /// The connection id (`webconnector.connection_id`).
        #[arg(long, value_name = "ID")]
        id: String,
        /// The username of the connection.
        #[arg(long, value_name = "USER")]
        username: String,
        /// The password of the connection.
        #[arg(long, value_name = "PASSWORD")]
        password: String,
        /// Minutes between scheduled communications, as in the RWC's connection settings.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1440))]
        schedule_minutes: u64,
        /// Active customers in the generated company file.
        #[arg(long, default_value_t = 35, value_parser = clap::value_parser!(u64).range(0..=100_000))]
        customers: u64,
        /// Run one communication cycle, print what it did and exit (for scripts and demos).
        #[arg(long)]
        once: bool,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Refreshes N due connections against a simulated Xero on loopback with durable storage,
    /// beside the simulator's raw capacity; then the resident memory of an idle hub over many
    /// stored connections. Build with --release for meaningful figures.
    Refresh {
        /// How many connections to refresh.
        #[arg(long, default_value_t = 100_000)]
        connections: usize,
        /// Refreshes in flight at once (the hub's refresh_concurrency and the baseline's).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Stored connections for the idle-memory figure (0 skips it).
        #[arg(long, default_value_t = 1_000_000)]
        idle_connections: usize,
        /// Use this PostgreSQL instead of a temporary SQLite file.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Reckon Web Connector exchanges (GET for work, POST a 100-record CustomerQueryRs) over
    /// loopback against an in-process hub with durable storage, beside the same client against a
    /// server that answers from memory; then the qbXML response parser beside a bare quick-xml
    /// loop over the same bytes. Build with --release for meaningful figures.
    Webconnector {
        /// How many qbXML jobs to queue and exchange.
        #[arg(long, default_value_t = 2_000)]
        jobs: usize,
        /// Reckon connections polling at once, each one exchange at a time (as the RWC does).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Seconds to time each parser for.
        #[arg(long, default_value_t = 1.5, value_name = "SECONDS")]
        parse_seconds: f64,
        /// Use this PostgreSQL instead of a temporary SQLite file.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Create a tenant and print its id and API key. The key is shown once: store it now.
    Create {
        /// The tenant's name, e.g. the platform's product name.
        name: String,
        /// Print `{"id": "…", "api_key": "…"}` instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print a configuration file listing every key, its default and its environment variable.
    Example,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if telemetry::initialised() {
                tracing::error!("{error:#}");
            } else {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut sources = Sources { file: cli.config.clone(), ..Default::default() }.with_process_env();
    if let Some(dir) = &cli.data_dir {
        sources.flags.push(("data_dir", dir.display().to_string()));
    }
    if let Some(format) = cli.log_format {
        sources
            .flags
            .push(("log_format", if format == LogFormat::Json { "json".into() } else { "text".into() }));
    }
    if let Command::Serve { listen: Some(listen), .. } = &cli.command {
        sources.flags.push(("listen", listen.clone()));
    }
    match cli.command {
        Command::Config { command: ConfigCommand::Example } => {
            print!("{}", crate::config::example());
            return Ok(());
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&crate::api::openapi_document())?);
            return Ok(());
        }
        Command::Bench {
            which: BenchCommand::Refresh { connections, concurrency, idle_connections, database_url },
        } => {
            telemetry::init(LogFormat::Text, "warn")?;
            let options =
                crate::bench::RefreshBench { connections, concurrency, idle_connections, database_url };
            return crate::bench::refresh(options).await;
        }
        Command::Bench {
            which: BenchCommand::Webconnector { jobs, concurrency, parse_seconds, database_url },
        } => {
            telemetry::init(LogFormat::Text, "warn")?;
            let options = crate::bench::WebconnectorBench { jobs, concurrency, parse_seconds, database_url };
            return crate::bench::webconnector(options).await;
        }
        Command::Simulate {
            which:
                SimulateCommand::Reckon { endpoint, id, username, password, schedule_minutes, customers, once },
        } => {
            telemetry::init(cli.log_format.unwrap_or(LogFormat::Text), "info")?;
            let mut options =
                ledgerlink_sandbox::reckon::CliOptions::new(endpoint, id, username, password.into());
            options.schedule_minutes = schedule_minutes;
            options.customers = customers as usize;
            options.once = once;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            return ledgerlink_sandbox::reckon::run_cli(options, shutdown.cancelled_owned()).await;
        }
        _ => {}
    }
    let config = Config::load(&sources)?;
    telemetry::init(config.log_format, &config.log_level)?;
    for var in Config::unknown_env_vars(&sources) {
        tracing::warn!(variable = %var, "ignoring an environment variable that names no configuration key (a typo?)");
    }
    match cli.command {
        Command::Serve { sandbox, .. } => serve(config, sandbox).await,
        Command::Tenant { command: TenantCommand::Create { name, json } } => {
            let state = hub::build(config).await?;
            let (tenant, key) = tenants::create(&*state.store, &*state.clock, &name).await?;
            state.store.close().await;
            if json {
                println!("{}", serde_json::json!({"id": tenant.id, "api_key": key.expose()}));
            } else {
                println!("Created tenant {:?} ({}).", tenant.name, tenant.id);
                println!("API key (shown once, store it now): {}", key.expose());
            }
            Ok(())
        }
        Command::Migrate => {
            hub::prepare_data_dir(&config.data_dir)?;
            let options = ledgerlink_store::ConnectOptions {
                connect_timeout: config.database_connect_timeout,
                ..Default::default()
            };
            let store = ledgerlink_store::connect(&config.database_url, &options)
                .await
                .with_context(|| format!("Failed to migrate the database {}", config.database_url))?;
            println!("{} is at schema version {}", config.database_url, store.schema_version().await?);
            store.close().await;
            Ok(())
        }
        Command::Config { .. } | Command::Openapi | Command::Bench { .. } | Command::Simulate { .. } => {
            unreachable!("handled before loading the configuration")
        }
    }
}

async fn serve(mut config: Config, sandbox: bool) -> anyhow::Result<()> {
    let _lock = hub::lock_sqlite(&config)?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!("Failed to listen on {} (`listen`): is another process using it?", config.listen)
    })?;
    let address = listener.local_addr()?;
    // With port 0 the OS picks the port; URLs built from the default public_url must use it.
    if config.public_url.port() == Some(0) {
        let _ = config.public_url.set_port(Some(address.port()));
    }
    let clock: std::sync::Arc<dyn ledgerlink_core::Clock> = std::sync::Arc::new(ledgerlink_core::SystemClock);
    let simulators =
        if sandbox { Some(sandbox::attach_simulators(&mut config, clock.clone())?) } else { None };
    let mut state = hub::build_with_clock(config, clock).await?;
    state.extra_routes = simulators;
    if sandbox {
        let (tenant, key) = sandbox::ensure_demo_tenant(&state).await?;
        let base = state.config.public_base();
        println!("ledgerlink sandbox is ready at {base}");
        println!("  tenant:  {} ({})", tenant.name, tenant.id);
        println!("  API key: {}", key.expose());
        println!("Try it:");
        println!("  export LEDGERLINK_API_KEY={}", key.expose());
        println!("  curl -H \"Authorization: Bearer $LEDGERLINK_API_KEY\" {base}/v1/organisations");
        println!(
            "Simulated Xero, QuickBooks Online and MYOB answer under {base}{}/ (see the README).",
            sandbox::MOUNT
        );
        println!(
            "Simulated MYOB Acumatica: instance_url {base}{}/acumatica, user {}, password {}, tenant Company.",
            sandbox::MOUNT,
            sandbox::ACUMATICA_USER,
            sandbox::ACUMATICA_PASSWORD
        );
        println!("A simulated Reckon Web Connector desktop: `ledgerlink simulate reckon --help`.");
    }
    tracing::info!(
        %address,
        public_url = %state.config.public_url,
        database = %state.config.database_url,
        "ledgerlink is listening"
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    crate::run(listener, state.clone(), shutdown).await.context("the HTTP server failed")?;
    state.store.close().await;
    tracing::info!("ledgerlink stopped");
    Ok(())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM; only Ctrl-C will stop the hub");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    let signal = tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    tracing::info!(signal, "shutting down: finishing in-flight requests");
    shutdown.cancel();
}
