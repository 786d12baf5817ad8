//! Structured, rotatable platform logs (feature `logs`): JSON lines with the agent's
//! identity on every record, a log file reopened on request or rotated by size, RFC 5424
//! syslog, and `vctl log`'s reader.
//!
//! [`install`] sets the process's global `tracing` subscriber from [`LogSettings`] (what
//! `volttron` does with its flags and `$VOLTTRON_HOME/config`); an embedding application
//! that has its own subscriber uses the parts instead: the [`WithAgent`] format (and the
//! [`AgentSpans`] layer), [`RotatingFile`], [`SyslogLayer`].
//!
//! | part | behaviour |
//! |------|-----------|
//! | [`LogFormat::Json`] | one JSON object per line: `timestamp` (RFC 3339 UTC), `level`, `target`, `message`, the event's fields; `agent` (the identity) on everything an agent logs: what its handlers log (`crate::agent::log_scope`), and each stdout/stderr line of an agent process together with `stream` |
//! | [`LogFormat::Human`] | tracing-subscriber's text format, with ` agent=ID` at the end of what an agent's handlers log |
//! | a log file | [`RotatingFile`] behind `tracing_appender::non_blocking` (the arbiters only queue lines; 128,000 queued lines at most, more are dropped and counted): [`LogGuard::reopen`] makes the next record reopen the file by name (`volttron` calls it on SIGHUP, for logrotate); `max_bytes` rotates by size |
//! | syslog | [`SyslogLayer`]: every record also as an RFC 5424 message over UDP, TCP or a Unix socket |
//! | settings | [`LogSettings::from_platform_config`]: a bad value is a [`LogError::InvalidValue`] naming the key |
//! | reading | [`reader`]: where the platform logs (`run/log-path`) and `vctl log`'s filters ([`print_log`]) |
//!
//! This module installs no signal handler: reopening is the caller's decision (an
//! embedding host has its own).
//!
//! ```no_run
//! # fn main() -> Result<(), volttron::logs::LogError> {
//! use volttron::logs::{LogFormat, LogSettings};
//!
//! let log = volttron::logs::install(&LogSettings {
//!     format: LogFormat::Json,
//!     file: Some("/var/log/my-app.log".into()),
//!     ..LogSettings::default()
//! })?;
//! // ... on SIGHUP, from the application's own signal handling:
//! log.reopen();
//! # Ok(()) }
//! ```
//!
//! With a subscriber of the application's own, the `agent` field comes from [`WithAgent`]
//! (and [`AgentSpans`], for the application's spans that carry an `agent` field):
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//! use volttron::logs::{AgentSpans, WithAgent};
//!
//! let json = tracing_subscriber::fmt::layer()
//!     .event_format(WithAgent(tracing_subscriber::fmt::format().json().flatten_event(true)))
//!     .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new());
//! tracing_subscriber::registry().with(AgentSpans).with(json).init();
//! ```

pub mod agent_field;
pub mod reader;
pub mod record;
pub mod rotating;
pub mod settings;
pub mod syslog;

use std::path::PathBuf;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use agent_field::{AgentSpans, WithAgent};
pub use reader::{LogQuery, platform_log_path, read_log, record_log_path};
pub use record::{LogLevel, LogLine};
pub use rotating::{ReopenHandle, RotatingFile};
pub use settings::{LogFormat, LogSettings, SyslogAddress};
pub use syslog::{SyslogGuard, SyslogLayer};

use crate::home::VolttronHome;

/// What can go wrong setting up or reading the logs.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A logging key of the config (or its flag) has a value it cannot take.
    #[error("{key} = {value:?}: expected {expected}")]
    InvalidValue {
        /// The key (`log-format`, ...).
        key: &'static str,
        /// What it was set to.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A file could not be opened or read.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `run/log-path` could not be written.
    #[error("cannot record the log's path in {}: {reason}", path.display())]
    Record {
        /// `run/log-path`.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `vctl log` found no log file.
    #[error(
        "the platform of {} logs to no file: start it with `volttron -l FILE` (it records the path in run/log-path)",
        home.display()
    )]
    NoLogFile {
        /// The platform's home.
        home: PathBuf,
    },
    /// Writing `vctl log`'s output failed.
    #[error("cannot write the log: {source}")]
    Output {
        /// Why.
        source: std::io::Error,
    },
    /// The syslog socket could not be opened.
    #[error("cannot send to syslog at {address}: {source}")]
    Syslog {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The process already has a global subscriber.
    #[error("a global tracing subscriber is already set")]
    AlreadyInstalled,
}

/// Keeps the log's writer threads running: hold it until the platform stops; dropping it
/// writes out what is queued.
#[derive(Debug)]
pub struct LogGuard {
    reopen: Option<ReopenHandle>,
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
    _syslog: Option<SyslogGuard>,
}

impl LogGuard {
    /// Makes the next record reopen the log file by name (after logrotate renamed it);
    /// nothing when logging to stderr.
    pub fn reopen(&self) {
        if let Some(handle) = &self.reopen {
            handle.request();
        }
    }
}

/// Sets the global `tracing` subscriber from `settings` (see the module docs).
pub fn install(settings: &LogSettings) -> Result<LogGuard, LogError> {
    install_with(settings, None)
}

/// A layer beside the log output (an OpenTelemetry exporter's), with its own filter: the
/// log level applies to the log output only.
pub type ExtraLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// [`install`], with `extra` beside the log output.
pub fn install_with(settings: &LogSettings, extra: Option<ExtraLayer>) -> Result<LogGuard, LogError> {
    let (writer, file_guard, reopen) = match &settings.file {
        Some(path) => {
            let file = RotatingFile::open(path, settings.max_bytes, settings.keep)?;
            let reopen = file.reopen_handle();
            let (writer, guard) = tracing_appender::non_blocking(file);
            (writer, Some(guard), Some(reopen))
        }
        None => {
            let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
            (writer, Some(guard), None)
        }
    };
    let ansi = settings.file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let output = match settings.format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .event_format(WithAgent(tracing_subscriber::fmt::format().with_ansi(ansi)))
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(WithAgent(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            ))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .with_writer(writer)
            .boxed(),
    };
    let (syslog, syslog_guard) = match &settings.syslog {
        Some(address) => {
            let (layer, guard) = SyslogLayer::connect(address)?;
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let level = LevelFilter::from_level(settings.level);
    tracing_subscriber::registry()
        .with(extra)
        .with(AgentSpans.with_filter(level))
        .with(output.with_filter(level))
        .with(syslog.with_filter(level))
        .try_init()
        .map_err(|_| LogError::AlreadyInstalled)?;
    Ok(LogGuard {
        reopen,
        _file: file_guard,
        _syslog: syslog_guard,
    })
}

/// `vctl log`: prints the records of `home`'s platform log that pass `query` to stdout
/// (see [`reader`]); `level` is the `--level` text (`warn`, `WARNING`, ...).
pub fn print_log(
    home: &VolttronHome,
    agent: Option<String>,
    level: Option<&str>,
    follow: bool,
) -> Result<(), LogError> {
    let level = match level {
        None => LogLevel::Trace,
        Some(text) => text.parse().map_err(|()| LogError::InvalidValue {
            key: "--level",
            value: text.to_owned(),
            expected: "trace, debug, info, warn or error",
        })?,
    };
    let path = platform_log_path(home)?;
    let query = LogQuery { agent, level, follow };
    read_log(&path, &query, &mut std::io::stdout().lock())
}
