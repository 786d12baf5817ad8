//! `volttron`: runs a platform from `$VOLTTRON_HOME`.
//!
//! ```text
//! volttron                         # ~/.volttron, or $VOLTTRON_HOME
//! volttron --volttron-home /srv/v -vv -l /var/log/volttron.log
//! volttron --vip-address tcp://0.0.0.0:22916 --instance-name campus1
//! ```
//!
//! Reads `$VOLTTRON_HOME/config` (VOLTTRON's INI `[volttron]` section); flags override it.
//! Writes `VOLTTRON_PID`, refuses a second platform on the same home, listens on
//! `$VOLTTRON_HOME/run/vip.socket` (and any `vip-address`), serves the web service at
//! `bind-web-address` (`--bind-web-address http://127.0.0.1:8080`), runs the core services with
//! auth on and the `control` service, autostarts enabled agents in priority order, and
//! shuts down gracefully on SIGINT or SIGTERM (agents stopped in reverse order).
//!
//! Logs: `-l FILE` (mode 0600; reopened by name on SIGHUP, for logrotate), `--log-format
//! json` (one JSON object per line with the agent's identity), `--log-max-bytes` and
//! `--log-keep` (rotation by size), `--syslog ADDRESS` (RFC 5424), each also a config key
//! (see [`volttron::logs`]); `vctl log` reads the file back.
//!
//! Agent processes: `agent-isolation-mode = true` runs each agent as a user of its own
//! (uids from `agent-uid-range`; needs root), `agent-data-only-writable = true` lets them
//! write only beneath their `data/`, `agent-cpu-budget` / `agent-memory-budget` set what
//! resource contracts may reserve, `agent-memory-hard-cap` caps an agent's cgroup memory
//! at a multiple of its soft limit, and `memory-pressure-below` sets the MemAvailable
//! under which agents over their contract are acted on (see
//! [`volttron::home::config`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser};
use volttron::Platform;
use volttron::auth::keys::CredentialStore;
use volttron::bridge::BridgeAddress;
use volttron::control::restart::RestartPolicy;
use volttron::home::VolttronHome;
use volttron::home::config::PlatformConfig;
use volttron::home::pid::PidFile;
use volttron::resources::admission::BudgetPolicy;
use volttron::services::control::CONTROL_CONNECTION;

/// Command-line options (they override `$VOLTTRON_HOME/config`).
#[derive(Debug, Parser)]
#[command(
    name = "volttron",
    version,
    about = "Run a VOLTTRON platform from $VOLTTRON_HOME"
)]
struct Args {
    /// The platform home (default: $VOLTTRON_HOME, else ~/.volttron).
    #[arg(long, value_name = "DIR")]
    volttron_home: Option<PathBuf>,
    /// The instance name (config: instance-name).
    #[arg(long, value_name = "NAME")]
    instance_name: Option<String>,
    /// Also listen for VOLTTRON's agents (VIP over ZeroMQ) here, e.g.
    /// tcp://0.0.0.0:22916 (config: vip-address; repeatable).
    #[arg(long = "vip-address", value_name = "ADDRESS")]
    vip_address: Vec<String>,
    /// Also listen for this project's bridged agents here, e.g. tcp://0.0.0.0:22917
    /// (config: bridge-address; repeatable).
    #[arg(long = "bridge-address", value_name = "ADDRESS")]
    bridge_address: Vec<String>,
    /// Serve the web service here: http://HOST:PORT or https://HOST:PORT (config:
    /// bind-web-address; see volttron::web::config for its other keys).
    #[arg(long = "bind-web-address", value_name = "URL")]
    bind_web_address: Option<String>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics on a listener of their own
    /// (config: metrics-address); with the web service they are at /metrics there too.
    #[arg(long = "metrics-address", value_name = "HOST:PORT")]
    metrics_address: Option<String>,
    /// Turn authentication and authorization off (config: auth = false).
    #[arg(long)]
    no_auth: bool,
    /// Log to this file instead of stderr (reopened on SIGHUP, for logrotate).
    #[arg(short = 'l', long = "log", value_name = "FILE")]
    log: Option<PathBuf>,
    /// `human` or `json`: one JSON object per line (config: log-format).
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Rotate the log file past this size, e.g. 10M (config: log-max-bytes).
    #[arg(long, value_name = "BYTES")]
    log_max_bytes: Option<String>,
    /// Rotated log files kept (config: log-keep; default 5).
    #[arg(long, value_name = "N")]
    log_keep: Option<String>,
    /// Also send every record to syslog (RFC 5424): udp://HOST:PORT, tcp://HOST:PORT or
    /// unix:///dev/log (config: syslog).
    #[arg(long, value_name = "ADDRESS")]
    syslog: Option<String>,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
    /// Less logging (-q warnings only, -qq errors only).
    #[arg(short, long, action = ArgAction::Count)]
    quiet: u8,
}

/// The logging settings: `$VOLTTRON_HOME/config`'s logging keys, the flags over them.
fn log_settings(args: &Args, config: &PlatformConfig) -> Result<volttron::logs::LogSettings, String> {
    let mut config = config.clone();
    let flags = [
        ("log-format", &args.log_format),
        ("log-max-bytes", &args.log_max_bytes),
        ("log-keep", &args.log_keep),
        ("syslog", &args.syslog),
    ];
    for (key, value) in flags {
        if let Some(value) = value {
            config.extra.insert(key.to_owned(), value.clone());
        }
    }
    let mut settings =
        volttron::logs::LogSettings::from_platform_config(&config).map_err(|e| format!("config: {e}"))?;
    settings.level = match (args.verbose, args.quiet) {
        (0, 0) => tracing::Level::INFO,
        (1, _) => tracing::Level::DEBUG,
        (v, _) if v >= 2 => tracing::Level::TRACE,
        (_, 1) => tracing::Level::WARN,
        _ => tracing::Level::ERROR,
    };
    settings.file = args.log.clone();
    Ok(settings)
}

async fn run(
    args: Args,
    home: VolttronHome,
    file: PlatformConfig,
    log: volttron::logs::LogGuard,
) -> Result<(), String> {
    let flags = PlatformConfig {
        instance_name: args.instance_name.clone(),
        vip_addresses: (!args.vip_address.is_empty()).then(|| args.vip_address.clone()),
        bridge_addresses: (!args.bridge_address.is_empty()).then(|| args.bridge_address.clone()),
        auth: args.no_auth.then_some(false),
        bind_web_address: args.bind_web_address.clone(),
        extra: args
            .metrics_address
            .iter()
            .map(|a| ("metrics-address".to_owned(), a.clone()))
            .collect(),
        ..PlatformConfig::default()
    };
    let config = file.merge(flags);
    config.log_warnings();
    let _pid = PidFile::acquire(home.pid_file()).map_err(|e| e.to_string())?;
    volttron::logs::record_log_path(&home, args.log.as_deref()).map_err(|e| e.to_string())?;
    // Watched from here on: a logrotate run during startup must not end the platform.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("cannot watch SIGHUP: {e}"))?;

    let mut builder = Platform::builder()
        .home(home.path())
        .instance_name(config.instance_name.clone().unwrap_or_else(|| "volttron1".into()))
        .auth(config.auth.unwrap_or(true))
        .control(true);
    // VOLTTRON's agents: ZeroMQ on the home's abstract socket and every TCP `vip-address`.
    let mut vip = volttron::vip::VipService::new();
    for text in config.vip_addresses.iter().flatten() {
        if text.starts_with("tcp://") {
            vip = vip.listen(text.clone());
        } else if text.starts_with("ipc://") {
            // The home's own address is always bound; another is not this platform's.
            let own = volttron::vip::VipService::ipc_address(home.path()).map_err(|e| e.to_string())?;
            if *text != own {
                return Err(format!(
                    "vip-address {text}: only the home's own {own} can be bound"
                ));
            }
        } else {
            return Err(format!(
                "vip-address {text}: expected tcp://HOST:PORT or ipc://@PATH"
            ));
        }
    }
    builder = builder.service(vip);
    // Prometheus metrics: at `/metrics` on the web service and on `metrics-address`.
    let metrics = volttron::metrics::Metrics::new();
    builder = builder.instrumentation(metrics.clone());
    if let Some(text) = config.extra.get("metrics-address") {
        let address = volttron::metrics::MetricsService::parse_address(text).map_err(|e| e.to_string())?;
        builder = builder.service(volttron::metrics::MetricsService::new(address, metrics.clone()));
    }
    // The web service, when `bind-web-address` is set.
    if let Some(web) = volttron::web::WebConfig::from_platform_config(&config).map_err(|e| e.to_string())? {
        // DOTS's clients get their token where DOTS serves it (`platform.simulation`'s paths).
        let web = web.oauth2_token_path("/api/v1/simulation/token");
        let scraped = metrics.clone();
        let mut service = volttron::web::WebService::new(web).endpoint(
            "/metrics",
            "the platform's Prometheus metrics",
            move |platform, accept| {
                let metrics = scraped.clone();
                async move {
                    let (content_type, text) = metrics.scrape(&platform, accept.as_deref()).await;
                    (content_type.to_owned(), text)
                }
            },
        );
        if let Some(tcp) = config
            .vip_addresses
            .iter()
            .flatten()
            .find(|a| a.starts_with("tcp://"))
        {
            service = service.vip_address(tcp.clone());
        }
        builder = builder.service(service);
    }
    // CPU profiles on demand (`platform.profile`); nothing samples until one is asked for.
    builder = builder.service(volttron::profile::ProfileService::new());
    // The security audit (`platform.audit`), published on `audit-schedule` if set.
    builder = builder
        .service(volttron::audit::AuditService::from_platform_config(&config).map_err(|e| e.to_string())?);
    // Alert management (`platform.alerts`); its rules are its `config` in the config store.
    builder = builder.service(volttron::alerts::AlertsService::new());
    // Co-simulations (`platform.simulation`): the programs of a `[simulation]` section.
    builder = builder.service(volttron::simulation::SimulationService::from_platform_config(
        &config,
    )?);
    // Federation through an MQTT 5 broker, with a `[federation]` section.
    if let Some(federation) =
        volttron::mqtt::FederationConfig::from_platform_config(&config).map_err(|e| e.to_string())?
    {
        builder = builder.service(volttron::mqtt::FederationService::new(federation));
    }
    // This project's own agents: the bridge, on the home's socket file and every
    // `bridge-address`.
    let socket = BridgeAddress::Unix(home.socket_path());
    for text in config.bridge_addresses.iter().flatten() {
        let address: BridgeAddress = text.parse().map_err(|e| format!("bridge-address: {e}"))?;
        if address != socket {
            builder = builder.listen(address);
        }
    }
    let mut restart = RestartPolicy::default();
    if let Some(limit) = config.agent_restart_limit {
        restart.limit = limit;
    }
    if let Some(period) = config.agent_restart_period {
        restart.period = period;
    }
    builder = builder.agent_restart(restart);
    if let Some(every) = config.agent_monitor_frequency {
        builder = builder.agent_monitor_interval(every);
    }
    if let Some(bytes) = config.memory_pressure_below {
        builder = builder.agent_memory_pressure_below(bytes);
    }
    if config.agent_cpu_budget.is_some() || config.agent_memory_budget.is_some() {
        let default = BudgetPolicy::VOLTTRON;
        let budget = BudgetPolicy::new(
            config.agent_cpu_budget.unwrap_or(default.cpu_fraction),
            config.agent_memory_budget.unwrap_or(default.memory_fraction),
        )
        .map_err(|e| format!("config: {e}"))?;
        builder = builder.agent_budget(budget);
    }
    if let Some(factor) = config.agent_memory_hard_cap {
        builder = builder.agent_memory_hard_cap(factor);
    }
    if config.agent_isolation_mode == Some(true) {
        builder = builder.agent_isolation(config.agent_uid_range.unwrap_or_default());
    }
    if let Some(on) = config.agent_data_only_writable {
        builder = builder.agent_data_only_writable(on);
    }
    // vctl's key: made once, readable only by the platform's user.
    CredentialStore::new(home.path())
        .load_or_create(CONTROL_CONNECTION)
        .map_err(|e| e.to_string())?;
    let platform = builder.start().await.map_err(|e| e.to_string())?;
    tracing::info!(
        home = %home.path().display(),
        instance = platform.instance_name(),
        addresses = ?platform.addresses().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "platform running"
    );
    match platform
        .call(volttron::services::control::IDENTITY, "start_enabled", ())
        .timeout(Duration::from_secs(60))
        .returning::<Vec<String>>()
        .await
    {
        Ok(started) if !started.is_empty() => tracing::info!(?started, "autostarted agents"),
        Ok(_) => {}
        Err(e) => tracing::error!("autostart failed: {e}"),
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => break tracing::info!("SIGTERM: shutting down"),
            _ = hup.recv() => {
                log.reopen();
                tracing::info!("SIGHUP: log file reopened");
            }
        }
    }
    platform.shutdown().await;
    tracing::info!("platform stopped");
    Ok(())
}

/// The home and its config file, read before logging starts (the config sets it up).
fn prepare(args: &Args) -> Result<(VolttronHome, PlatformConfig, volttron::logs::LogGuard), String> {
    let home = VolttronHome::resolve(args.volttron_home.clone()).map_err(|e| e.to_string())?;
    home.ensure().map_err(|e| e.to_string())?;
    let file = PlatformConfig::load(home.config_file()).map_err(|e| e.to_string())?;
    let log = volttron::logs::install_with(&log_settings(args, &file)?, otel_layer()?)
        .map_err(|e| e.to_string())?;
    Ok((home, file, log))
}

/// With the `otel` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`)
/// set: traced work becomes spans exported over OTLP (see `volttron::otel`).
#[cfg(feature = "otel")]
fn otel_layer() -> Result<Option<volttron::logs::ExtraLayer>, String> {
    use tracing_subscriber::Layer;
    let wanted = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    if !wanted {
        return Ok(None);
    }
    let otel = volttron::otel::OtelTracing::from_env("volttron").map_err(|e| e.to_string())?;
    otel.install();
    let layer = otel.layer::<tracing_subscriber::Registry>().with_filter(
        tracing_subscriber::filter::Targets::new().with_target("volttron::trace", tracing::Level::INFO),
    );
    OTEL.with(|slot| *slot.borrow_mut() = Some(otel));
    Ok(Some(layer.boxed()))
}

#[cfg(not(feature = "otel"))]
fn otel_layer() -> Result<Option<volttron::logs::ExtraLayer>, String> {
    Ok(None)
}

#[cfg(feature = "otel")]
thread_local! {
    /// The exporter, flushed when `main` returns.
    static OTEL: std::cell::RefCell<Option<volttron::otel::OtelTracing>> = const { std::cell::RefCell::new(None) };
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (home, file, log) = match prepare(&args) {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("volttron: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("volttron: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args, home, file, log));
    #[cfg(feature = "otel")]
    OTEL.with(|slot| {
        if let Some(otel) = slot.borrow_mut().take() {
            otel.shutdown();
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("volttron: {e}");
            ExitCode::FAILURE
        }
    }
}
