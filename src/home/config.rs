//! The platform configuration file, `$VOLTTRON_HOME/config`: VOLTTRON's INI format, as
//! VOLTTRON 9 (`vcfg`) and VOLTTRON 11 (`ServerOptions.store`) write it.
//!
//! ```ini
//! [volttron]
//! instance-name = campus-hq
//! address = ipc://@/home/volttron/.volttron/run/vip.socket
//! bridge-address = tcp://0.0.0.0:22917
//! agent-monitor-frequency = 30
//! messagebus = zmq
//! auth-enabled = True
//! ```
//!
//! | key | field | value |
//! |-----|-------|-------|
//! | `instance-name` | [`instance_name`](PlatformConfig::instance_name) | text (surrounding `"` dropped, as VOLTTRON's agents do) |
//! | `address`, `vip-address` | [`vip_addresses`](PlatformConfig::vip_addresses) | the VIP (ZeroMQ) listener's addresses, which VOLTTRON agents connect to; separated by commas or whitespace; repeated keys add more |
//! | `local-address` | [`local_address`](PlatformConfig::local_address) | the local VIP address (VOLTTRON 11; default `ipc://@$VOLTTRON_HOME/run/vip.socket`) |
//! | `bridge-address` | [`bridge_addresses`](PlatformConfig::bridge_addresses) | this project's Noise-encrypted bridge listener (ours); as `vip-address` |
//! | `agent-monitor-frequency` | [`agent_monitor_frequency`](PlatformConfig::agent_monitor_frequency) | seconds (> 0, fractions allowed) |
//! | `auth-enabled` (VOLTTRON 11), `auth` (ours) | [`auth`](PlatformConfig::auth) | boolean; false turns authentication and authorization off, with a warning |
//! | `auth-disabled` | [`auth`](PlatformConfig::auth) | boolean, the inverse (VOLTTRON 11's command-line switch) |
//! | `messagebus` (VOLTTRON 11), `message-bus` (VOLTTRON 9) | [`message_bus`](PlatformConfig::message_bus) | must be `zmq`: anything else is an error |
//! | `agent-restart-limit` | [`agent_restart_limit`](PlatformConfig::agent_restart_limit) | integer (ours) |
//! | `agent-restart-period` | [`agent_restart_period`](PlatformConfig::agent_restart_period) | seconds (ours) |
//! | `agent-isolation-mode`, `secure-agent-users` (VOLTTRON 8/9) | [`agent_isolation_mode`](PlatformConfig::agent_isolation_mode) | boolean: each agent runs as a user of its own ([`crate::control::isolation`]) |
//! | `agent-uid-range` | [`agent_uid_range`](PlatformConfig::agent_uid_range) | `FIRST-LAST`: the uids those users get (ours; default `200000-299999`) |
//! | `agent-data-only-writable` | [`agent_data_only_writable`](PlatformConfig::agent_data_only_writable) | boolean: agents may write only beneath their `data/` (ours) |
//! | `agent-cpu-budget`, `agent-memory-budget` | [`agent_cpu_budget`](PlatformConfig::agent_cpu_budget), [`agent_memory_budget`](PlatformConfig::agent_memory_budget) | the shares of the machine's BogoMIPS and memory that resource contracts may reserve, in (0, 1] (ours; default 0.8 and 0.5, VOLTTRON's) |
//! | `agent-memory-hard-cap` | [`agent_memory_hard_cap`](PlatformConfig::agent_memory_hard_cap) | a number >= 1: an agent's cgroup memory cap, as a multiple of its contract's soft limit (ours; default none) |
//! | `memory-pressure-below` | [`memory_pressure_below`](PlatformConfig::memory_pressure_below) | bytes of MemAvailable below which the machine is under memory pressure (ours; default 10% of MemTotal) |
//! | `bind-web-address` | [`bind_web_address`](PlatformConfig::bind_web_address) | the web service's address, `http://HOST:PORT` or `https://HOST:PORT` |
//! | `web-secret-key`, `web-ssl-cert`, `web-ssl-key`, `web-ca-cert`, `rpc-allow-list`, `web-root-dir` | [`extra`](PlatformConfig::extra) | read by the web service (feature `web`; a `[web]` section may set them too) |
//! | `audit-schedule` | [`extra`](PlatformConfig::extra) | a cron expression: when the `platform.audit` service publishes its report (feature `audit`) |
//! | `log-format`, `log-max-bytes`, `log-keep`, `syslog` | [`extra`](PlatformConfig::extra) | read by the logging setup (feature `logs`: `volttron::logs::LogSettings`) |
//! | `metrics-address` | [`extra`](PlatformConfig::extra) | `HOST:PORT` of a plain Prometheus listener (feature `metrics`: `volttron::metrics::MetricsService`) |
//! | `enable-federation` | [`enable_federation`](PlatformConfig::enable_federation) | boolean; true gives a warning (VOLTTRON 11's registry federation is not implemented; this crate federates through MQTT, `[federation]`) |
//! | other keys VOLTTRON knows | [`extra`](PlatformConfig::extra) | kept, with a [`ConfigWarning`] saying why they do nothing (see below) |
//! | anything else | [`extra`](PlatformConfig::extra) | kept, with a warning |
//!
//! Loading returns the settings and, in [`warnings`](PlatformConfig::warnings), a
//! [`ConfigWarning`] for each setting that is not honoured or that weakens security, for the
//! binary to log ([`PlatformConfig::log_warnings`]):
//!
//! * [`AuthDisabled`](ConfigWarningKind::AuthDisabled): `auth-enabled`/`auth` false or
//!   `auth-disabled` true. Honoured: any agent may connect and call anything.
//! * [`NotImplemented`](ConfigWarningKind::NotImplemented): a VOLTTRON feature this platform
//!   does not have: `volttron-central-address`, `volttron-central-serverkey` (no Volttron
//!   Central);
//!   `enable-federation = True` and, then, `federation-url`, `enable-federation-cache`,
//!   `federation-cache-limit-gb`, `federation-cache-limit-hours` (ignored, as VOLTTRON 11 ignores
//!   them without federation); `autostart = False`; `setup-mode` (never auto-approves);
//!   `log`, `log-config`, `log-level`, `verboseness`, `verbose`, `quiet`, `monitor` (logging is
//!   set on the command line).
//! * [`Meaningless`](ConfigWarningKind::Meaningless): VOLTTRON 11's own plumbing, which
//!   `ServerOptions.store` writes into every config: `server-messagebus-id`, `service-address`,
//!   `poetry-project-path`, `initialized`, `config-file`, `volttron-home`, `dev`, `show-config`
//!   ([`is_minor`](ConfigWarning::is_minor): log it quietly).
//! * [`Volttron11IsolationMode`](ConfigWarningKind::Volttron11IsolationMode): the file was
//!   written by VOLTTRON 11, which stores `agent-isolation-mode = True` in every config it
//!   writes (a bug: `opts.agent_isolation_mode != 'False'` compares a boolean with a string)
//!   and then only sets a umask. It is honoured here as what it says, every agent as a user
//!   of its own, which needs the platform to run with privileges; set it to `False` to run
//!   agents as the platform's user.
//! * [`Unknown`](ConfigWarningKind::Unknown) and [`Repeated`](ConfigWarningKind::Repeated).
//!
//! A security setting that cannot be honoured is an error ([`ConfigError::Unsupported`]):
//! `messagebus`/`message-bus` other than `zmq`. Booleans are `true`/`yes`/`on`/`1` or
//! `false`/`no`/`off`/`0` (any case, so VOLTTRON 11's `True`/`False` too); a boolean key alone
//! on its line means true, as in VOLTTRON's own config parser.
//!
//! The syntax is that of Python's `configparser`, which VOLTTRON reads the file with:
//! `key = value` or `key: value`; `#` and `;` start comment lines (not inline comments);
//! keys are case-insensitive; an indented line continues the previous value. Also
//! accepted, as VOLTTRON 9 did: keys written as long options (`--vip-address`), and keys
//! before the first section or in `[DEFAULT]`, which apply unless `[volttron]` sets the
//! same key. Underscores in keys count as dashes. Other sections (`[web]`, VOLTTRON 11's
//! service sections) are kept in [`sections`](PlatformConfig::sections) for the services
//! that read them.
//!
//! Differences from `configparser`: `%` is literal (no interpolation); a key repeated in
//! a section is not an error (the last one wins, with a warning; the address keys add up).
//!
//! A missing file gives the defaults (every field unset). Every error names the file,
//! the line, the key and the value.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists and could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A line is not a section header, a `key = value` line, a comment or a continuation.
    #[error("{}:{line}: {message}: {text:?}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
        /// What is wrong.
        message: &'static str,
    },
    /// A known setting whose value this platform cannot honour, and that may not be ignored
    /// (such as a message bus other than ZeroMQ).
    #[error("{}:{line}: `{key} = {value}` is not supported: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the key.
        line: usize,
        /// The key (normalized).
        key: String,
        /// The value as written.
        value: String,
        /// Why, and what to do.
        reason: &'static str,
    },
    /// A known key has a value of the wrong kind.
    #[error("{}:{line}: invalid value {value:?} for `{key}`: expected {expected}", path.display())]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the key.
        line: usize,
        /// The key (normalized: lower case, dashes).
        key: String,
        /// The value as written (empty for a key alone on its line).
        value: String,
        /// What the key takes.
        expected: &'static str,
    },
}

/// A setting of the configuration file that is not honoured, or that weakens security: for
/// the binary to log (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number of the key.
    pub line: usize,
    /// The key (normalized: lower case, dashes).
    pub key: String,
    /// The value as written (empty for a key alone on its line).
    pub value: String,
    /// What it is about.
    pub kind: ConfigWarningKind,
}

/// What a [`ConfigWarning`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigWarningKind {
    /// Authentication and authorization are turned off.
    AuthDisabled,
    /// A VOLTTRON setting for a feature this platform does not have; it does nothing.
    NotImplemented {
        /// Why it does nothing here.
        note: &'static str,
    },
    /// A setting of VOLTTRON 11's own implementation, meaningless here.
    Meaningless,
    /// `agent-isolation-mode = True` in a file VOLTTRON 11 wrote (see the module docs).
    Volttron11IsolationMode,
    /// A key this platform does not know (kept in [`PlatformConfig::extra`]).
    Unknown,
    /// The key was set before, on `first_line`; this value replaces that one.
    Repeated {
        /// The line of the earlier setting.
        first_line: usize,
    },
}

impl ConfigWarning {
    /// Whether it is only worth a debug line (VOLTTRON 11's plumbing keys).
    pub fn is_minor(&self) -> bool {
        self.kind == ConfigWarningKind::Meaningless
    }
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: `{}`", self.path.display(), self.line, self.key)?;
        match &self.kind {
            ConfigWarningKind::AuthDisabled => f.write_str(
                " turns authentication and authorization off: any local or remote agent may connect \
                 and call, publish and subscribe to anything",
            ),
            ConfigWarningKind::NotImplemented { note } => write!(f, " is ignored: {note}"),
            ConfigWarningKind::Meaningless => {
                f.write_str(" is ignored: it configures VOLTTRON 11's own implementation")
            }
            ConfigWarningKind::Volttron11IsolationMode => f.write_str(
                " = True was probably written by VOLTTRON 11, which stores it in every config (a bug) \
                 and then only sets a umask; here every agent runs as a user of its own, which needs \
                 privileges: set `agent-isolation-mode = False` to run agents as the platform's user",
            ),
            ConfigWarningKind::Unknown => write!(f, " is not a known key in [{SECTION}]; kept but not used"),
            ConfigWarningKind::Repeated { first_line } => {
                write!(
                    f,
                    " is set on lines {first_line} and {}; the last one is used",
                    self.line
                )
            }
        }
    }
}

/// Keys of `[volttron]` read by a plugged service (the web service, the audit) or by
/// the logging setup, kept in [`PlatformConfig::extra`] without a warning.
const SERVICE_KEYS: &[&str] = &[
    "log-format",
    "log-max-bytes",
    "log-keep",
    "syslog",
    "web-ssl-cert",
    "web-ssl-key",
    "web-secret-key",
    "web-ca-cert",
    "rpc-allow-list",
    "web-root-dir",
    "audit-schedule",
    "metrics-address",
];

/// Keys VOLTTRON knows whose feature this platform lacks, with why they do nothing.
const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    (
        "volttron-central-address",
        "there is no web service (Volttron Central)",
    ),
    (
        "volttron-central-serverkey",
        "there is no web service (Volttron Central)",
    ),
    (
        "setup-mode",
        "external platforms are never approved automatically",
    ),
    ("log", "logging is set on the command line"),
    ("log-config", "logging is set on the command line"),
    ("log-level", "logging is set on the command line"),
    ("verboseness", "logging is set on the command line"),
    ("verbose", "logging is set on the command line"),
    ("quiet", "logging is set on the command line"),
    ("monitor", "logging is set on the command line"),
];

/// Federation keys: ignored, with a warning when federation is asked for.
const FEDERATION: &[&str] = &[
    "federation-url",
    "enable-federation-cache",
    "disable-federation-cache",
    "federation-cache-limit-gb",
    "federation-cache-limit-hours",
];

/// VOLTTRON 11's plumbing, written by `ServerOptions.store`.
const MEANINGLESS: &[&str] = &[
    "server-messagebus-id",
    "service-address",
    "poetry-project-path",
    "initialized",
    "config-file",
    "volttron-home",
    "dev",
    "show-config",
];

/// The platform's settings from `$VOLTTRON_HOME/config`, each `None` when not set.
///
/// Command-line flags override the file: build a `PlatformConfig` from the flags and
/// [`merge`](Self::merge) it over the loaded one, or override single fields with `or`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformConfig {
    /// `instance-name`.
    pub instance_name: Option<String>,
    /// `address` (VOLTTRON 11) and `vip-address` (VOLTTRON 9): the addresses of the VIP
    /// (ZeroMQ) listener, which VOLTTRON agents connect to, as written
    /// (`tcp://127.0.0.1:22916`, `ipc://@/path`).
    pub vip_addresses: Option<Vec<String>>,
    /// `local-address` (VOLTTRON 11): the local VIP address, as written (VOLTTRON expands
    /// `$VOLTTRON_HOME` and `~` in it).
    pub local_address: Option<String>,
    /// `bridge-address`: the addresses of this project's Noise-encrypted bridge listener, as
    /// written; parse each with [`BridgeAddress`](crate::bridge::BridgeAddress)'s `FromStr`.
    pub bridge_addresses: Option<Vec<String>>,
    /// `agent-monitor-frequency`: how often crashed agents are looked for.
    pub agent_monitor_frequency: Option<Duration>,
    /// `auth-enabled` (VOLTTRON 11), `auth` (ours), or the inverse of `auth-disabled`:
    /// whether connections are authenticated and authorized.
    pub auth: Option<bool>,
    /// `agent-restart-limit`: restarts of a crashing agent within the period.
    pub agent_restart_limit: Option<u32>,
    /// `agent-restart-period`: the window the restart limit counts in.
    pub agent_restart_period: Option<Duration>,
    /// `agent-isolation-mode` (or VOLTTRON 8/9's `secure-agent-users`): each agent runs as a
    /// user of its own.
    pub agent_isolation_mode: Option<bool>,
    /// `agent-uid-range`: the uids agents get in isolation mode.
    pub agent_uid_range: Option<crate::control::isolation::UidRange>,
    /// `agent-data-only-writable`: agents may write only beneath their `data/`.
    pub agent_data_only_writable: Option<bool>,
    /// `agent-cpu-budget`: the share of the machine's BogoMIPS contracts may reserve.
    pub agent_cpu_budget: Option<f64>,
    /// `agent-memory-budget`: the share of the machine's memory contracts may reserve.
    pub agent_memory_budget: Option<f64>,
    /// `agent-memory-hard-cap`: the cgroup memory cap, as a multiple of the contract's
    /// soft limit.
    pub agent_memory_hard_cap: Option<f64>,
    /// `memory-pressure-below`: MemAvailable (bytes) below which the machine is under
    /// memory pressure.
    pub memory_pressure_below: Option<u64>,
    /// `messagebus` (VOLTTRON 11) or `message-bus` (VOLTTRON 9): always `zmq` when set
    /// (anything else is refused); kept for `query`.
    pub message_bus: Option<String>,
    /// `bind-web-address`: where the web service listens (`http://HOST:PORT` or
    /// `https://HOST:PORT`), when the binary has it.
    pub bind_web_address: Option<String>,
    /// `enable-federation` (VOLTTRON 11's registry federation): not implemented; true
    /// gives a warning. This crate federates through an MQTT broker instead: the
    /// `[federation]` section, read by `volttron::mqtt` (feature `mqtt`).
    pub enable_federation: Option<bool>,
    /// Keys this crate does not act on, normalized, with their values (empty for a key
    /// alone on its line): unknown keys and the VOLTTRON keys listed in the module docs.
    pub extra: BTreeMap<String, String>,
    /// The keys of the file's other sections (`[web]`, ...), normalized, by section name,
    /// for the services that own them.
    pub sections: BTreeMap<String, BTreeMap<String, String>>,
    /// What the binary should log: settings not honoured, or weakening security.
    pub warnings: Vec<ConfigWarning>,
}

/// One `key = value` line (with its continuations) of the relevant sections.
struct Entry {
    key: String,
    value: Option<String>,
    line: usize,
    /// In `[volttron]` (rather than before any section or in `[DEFAULT]`).
    in_volttron: bool,
}

const SECTION: &str = "volttron";

impl PlatformConfig {
    /// Reads `path`; a missing file gives [`PlatformConfig::default`].
    pub fn load(path: impl AsRef<Path>) -> Result<PlatformConfig, ConfigError> {
        let path = path.as_ref();
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                PlatformConfig::parse(&text, path)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PlatformConfig::default()),
            Err(source) => Err(ConfigError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses the text of a configuration file; `origin` names it in errors and warnings.
    pub fn parse(text: &str, origin: impl AsRef<Path>) -> Result<PlatformConfig, ConfigError> {
        let origin = origin.as_ref();
        let (entries, sections) = parse_ini(text, origin)?;
        // `[volttron]` keys replace fallback (global, `[DEFAULT]`) keys of the same name.
        let in_section: std::collections::HashSet<&str> = entries
            .iter()
            .filter(|e| e.in_volttron)
            .map(|e| e.key.as_str())
            .collect();
        let mut config = PlatformConfig {
            sections,
            ..PlatformConfig::default()
        };
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut federation_keys = Vec::new();
        let mut isolation_line = None;
        for entry in &entries {
            if !entry.in_volttron && in_section.contains(entry.key.as_str()) {
                continue;
            }
            if !matches!(entry.key.as_str(), "vip-address" | "address" | "bridge-address")
                && let Some(first) = seen.insert(&entry.key, entry.line)
            {
                config.warn(entry, origin, ConfigWarningKind::Repeated { first_line: first });
            }
            if FEDERATION.contains(&entry.key.as_str()) {
                federation_keys.push(entry);
            }
            if entry.key == "agent-isolation-mode" {
                isolation_line = Some(entry);
            }
            config.apply(entry, origin)?;
        }
        if config.enable_federation == Some(true) {
            for entry in federation_keys {
                config.warn(
                    entry,
                    origin,
                    ConfigWarningKind::NotImplemented {
                        note: "VOLTTRON 11's registry federation is not implemented; federate through an MQTT broker with a [federation] section (feature mqtt)",
                    },
                );
            }
        }
        // VOLTTRON 11's `ServerOptions.store` writes these; VOLTTRON 9 spelled the bus
        // `message-bus`.
        let by_volttron11 = entries.iter().any(|e| {
            matches!(
                e.key.as_str(),
                "server-messagebus-id" | "messagebus" | "auth-enabled"
            )
        });
        if by_volttron11
            && config.agent_isolation_mode == Some(true)
            && let Some(entry) = isolation_line
        {
            config.warn(entry, origin, ConfigWarningKind::Volttron11IsolationMode);
        }
        Ok(config)
    }

    /// Logs [`warnings`](Self::warnings) through `tracing`: minor ones at debug level, the
    /// others at warn level.
    pub fn log_warnings(&self) {
        for warning in &self.warnings {
            if warning.is_minor() {
                tracing::debug!("{warning}");
            } else {
                tracing::warn!("{warning}");
            }
        }
    }

    fn warn(&mut self, entry: &Entry, origin: &Path, kind: ConfigWarningKind) {
        self.warnings.push(ConfigWarning {
            path: origin.to_owned(),
            line: entry.line,
            key: entry.key.clone(),
            value: entry.value.clone().unwrap_or_default(),
            kind,
        });
    }

    fn keep(&mut self, entry: &Entry) {
        self.extra
            .insert(entry.key.clone(), entry.value.clone().unwrap_or_default());
    }

    fn apply(&mut self, entry: &Entry, origin: &Path) -> Result<(), ConfigError> {
        let invalid = |expected: &'static str| ConfigError::InvalidValue {
            path: origin.to_owned(),
            line: entry.line,
            key: entry.key.clone(),
            value: entry.value.clone().unwrap_or_default(),
            expected,
        };
        let text = || -> Result<String, ConfigError> {
            match entry.value.as_deref() {
                Some(v) if !v.is_empty() => Ok(v.to_owned()),
                _ => Err(invalid("a value")),
            }
        };
        let boolean = || -> Result<bool, ConfigError> {
            match entry.value.as_deref() {
                None => Ok(true),
                Some(v) => parse_bool(v).ok_or_else(|| invalid("true/false, yes/no, on/off or 1/0")),
            }
        };
        let fraction = || -> Result<f64, ConfigError> {
            let value = text()?;
            value
                .parse::<f64>()
                .ok()
                .filter(|f| *f > 0.0 && *f <= 1.0)
                .ok_or_else(|| invalid("a fraction in (0, 1]"))
        };
        let addresses = || -> Result<Vec<String>, ConfigError> {
            Ok(text()?
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect())
        };
        let key = entry.key.as_str();
        if key == "bind-web-address" {
            self.bind_web_address = Some(text()?);
            return Ok(());
        }
        if SERVICE_KEYS.contains(&key) {
            self.keep(entry);
            return Ok(());
        }
        if let Some((_, note)) = NOT_IMPLEMENTED.iter().find(|(k, _)| *k == key) {
            self.keep(entry);
            self.warn(entry, origin, ConfigWarningKind::NotImplemented { note });
            return Ok(());
        }
        if MEANINGLESS.contains(&key) {
            self.keep(entry);
            self.warn(entry, origin, ConfigWarningKind::Meaningless);
            return Ok(());
        }
        if FEDERATION.contains(&key) {
            // Warned about after all keys are read, if federation is enabled.
            self.keep(entry);
            return Ok(());
        }
        match key {
            "instance-name" => {
                let value = text()?;
                let unquoted = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(&value)
                    .to_owned();
                if unquoted.is_empty() {
                    return Err(invalid("a value"));
                }
                self.instance_name = Some(unquoted);
            }
            "vip-address" | "address" => {
                let list = addresses()?;
                self.vip_addresses.get_or_insert_with(Vec::new).extend(list);
            }
            "bridge-address" => {
                let list = addresses()?;
                self.bridge_addresses.get_or_insert_with(Vec::new).extend(list);
            }
            "local-address" => self.local_address = Some(text()?),
            "agent-monitor-frequency" => {
                self.agent_monitor_frequency =
                    Some(parse_seconds(&text()?).ok_or_else(|| invalid("a number of seconds > 0"))?);
            }
            "agent-restart-period" => {
                self.agent_restart_period =
                    Some(parse_seconds(&text()?).ok_or_else(|| invalid("a number of seconds > 0"))?);
            }
            "agent-restart-limit" => {
                let value = text()?;
                self.agent_restart_limit =
                    Some(value.parse::<u32>().map_err(|_| invalid("a whole number >= 0"))?);
            }
            "auth" | "auth-enabled" | "auth-disabled" => {
                let on = boolean()? != (key == "auth-disabled");
                self.auth = Some(on);
                if !on {
                    self.warn(entry, origin, ConfigWarningKind::AuthDisabled);
                }
            }
            "agent-isolation-mode" | "secure-agent-users" => self.agent_isolation_mode = Some(boolean()?),
            "enable-federation" | "disable-federation" => {
                let on = boolean()? != (key == "disable-federation");
                self.enable_federation = Some(on);
                if on {
                    self.warn(
                        entry,
                        origin,
                        ConfigWarningKind::NotImplemented {
                            note: "there is no federation here: this platform connects to others through its bridge",
                        },
                    );
                }
            }
            "autostart" | "no-autostart" => {
                let on = boolean()? != (key == "no-autostart");
                self.keep(entry);
                if !on {
                    self.warn(
                        entry,
                        origin,
                        ConfigWarningKind::NotImplemented {
                            note: "enabled agents are always started with the platform",
                        },
                    );
                }
            }
            "agent-data-only-writable" => self.agent_data_only_writable = Some(boolean()?),
            "agent-uid-range" => {
                self.agent_uid_range = Some(
                    text()?
                        .parse()
                        .map_err(|_| invalid("FIRST-LAST, two uids above 0"))?,
                );
            }
            "agent-cpu-budget" => self.agent_cpu_budget = Some(fraction()?),
            "agent-memory-budget" => self.agent_memory_budget = Some(fraction()?),
            "agent-memory-hard-cap" => {
                let value = text()?;
                self.agent_memory_hard_cap = Some(
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && *f >= 1.0)
                        .ok_or_else(|| invalid("a number >= 1 (times the soft limit)"))?,
                );
            }
            "memory-pressure-below" => {
                let value = text()?;
                self.memory_pressure_below =
                    Some(value.parse::<u64>().map_err(|_| invalid("a number of bytes"))?);
            }
            "message-bus" | "messagebus" => {
                let value = text()?;
                if !value.eq_ignore_ascii_case("zmq") {
                    return Err(ConfigError::Unsupported {
                        path: origin.to_owned(),
                        line: entry.line,
                        key: entry.key.clone(),
                        value,
                        reason: "this platform's message bus is ZeroMQ (VIP); agents configured for \
                                 another bus would not reach it: set it to zmq",
                    });
                }
                self.message_bus = Some("zmq".to_owned());
            }
            _ => {
                self.keep(entry);
                self.warn(entry, origin, ConfigWarningKind::Unknown);
            }
        }
        Ok(())
    }

    /// `self` with every field that `overrides` sets replaced by its value (for command
    /// line flags over the file). `extra` keys are united, `overrides` winning; the warnings
    /// of both are kept.
    pub fn merge(mut self, overrides: PlatformConfig) -> PlatformConfig {
        self.extra.extend(overrides.extra);
        for (name, keys) in overrides.sections {
            self.sections.entry(name).or_default().extend(keys);
        }
        self.warnings.extend(overrides.warnings);
        PlatformConfig {
            instance_name: overrides.instance_name.or(self.instance_name),
            vip_addresses: overrides.vip_addresses.or(self.vip_addresses),
            local_address: overrides.local_address.or(self.local_address),
            bridge_addresses: overrides.bridge_addresses.or(self.bridge_addresses),
            agent_monitor_frequency: overrides.agent_monitor_frequency.or(self.agent_monitor_frequency),
            auth: overrides.auth.or(self.auth),
            agent_restart_limit: overrides.agent_restart_limit.or(self.agent_restart_limit),
            agent_restart_period: overrides.agent_restart_period.or(self.agent_restart_period),
            agent_isolation_mode: overrides.agent_isolation_mode.or(self.agent_isolation_mode),
            agent_uid_range: overrides.agent_uid_range.or(self.agent_uid_range),
            agent_data_only_writable: overrides
                .agent_data_only_writable
                .or(self.agent_data_only_writable),
            agent_cpu_budget: overrides.agent_cpu_budget.or(self.agent_cpu_budget),
            agent_memory_budget: overrides.agent_memory_budget.or(self.agent_memory_budget),
            agent_memory_hard_cap: overrides.agent_memory_hard_cap.or(self.agent_memory_hard_cap),
            memory_pressure_below: overrides.memory_pressure_below.or(self.memory_pressure_below),
            message_bus: overrides.message_bus.or(self.message_bus),
            bind_web_address: overrides.bind_web_address.or(self.bind_web_address),
            enable_federation: overrides.enable_federation.or(self.enable_federation),
            extra: self.extra,
            sections: self.sections,
            warnings: self.warnings,
        }
    }
}

/// `configparser`'s booleans.
fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// Positive, finite seconds, fractions allowed.
fn parse_seconds(value: &str) -> Option<Duration> {
    let secs: f64 = value.parse().ok()?;
    if !(secs.is_finite() && secs > 0.0) {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// `--Vip_Address` → `vip-address`.
fn normalize_key(key: &str) -> String {
    key.trim()
        .trim_start_matches("--")
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// Splits `text` as `configparser` does and keeps the entries of `[volttron]`, `[DEFAULT]`
/// and before the first section.
fn parse_ini(text: &str, origin: &Path) -> Result<(Vec<Entry>, Sections), ConfigError> {
    let syntax = |line: usize, text: &str, message| ConfigError::Syntax {
        path: origin.to_owned(),
        line,
        text: text.to_owned(),
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut section = Section::Global;
    let mut entries: Vec<Entry> = Vec::new();
    let mut others = Sections::new();
    let mut other_name = String::new();
    // In another section: the key that indented lines continue, and its indentation.
    let mut other_current: Option<(String, usize)> = None;
    // The entry that indented lines continue, and its key line's indentation.
    let mut current: Option<(usize, usize)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let stripped = line.trim();
        if stripped.is_empty() || stripped.starts_with('#') || stripped.starts_with(';') {
            // Blank and comment lines do not end a multi-line value.
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if let Some((key, key_indent)) = &other_current
            && indent > *key_indent
        {
            if let Some(value) = others.get_mut(&other_name).and_then(|m| m.get_mut(key)) {
                if !value.is_empty() {
                    value.push('\n');
                }
                value.push_str(stripped);
            }
            continue;
        }
        other_current = None;
        if let Some((entry, key_indent)) = current
            && indent > key_indent
        {
            if let Some(e) = entries.get_mut(entry) {
                let value = e.value.get_or_insert_with(String::new);
                if !value.is_empty() {
                    value.push('\n');
                }
                value.push_str(stripped);
            }
            continue;
        }
        current = None;
        if let Some(rest) = stripped.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return Err(syntax(number, line, "a section header without its closing `]`"));
            };
            section = match &rest[..end] {
                SECTION => Section::Volttron,
                "DEFAULT" => Section::Default,
                other => {
                    other_name = other.trim().to_owned();
                    Section::Other
                }
            };
            continue;
        }
        let (key, value) = match stripped.find(['=', ':']) {
            Some(at) => (&stripped[..at], Some(stripped[at + 1..].trim().to_owned())),
            None => (stripped, None),
        };
        let key = normalize_key(key);
        if key.is_empty() {
            return Err(syntax(number, line, "a value without a key"));
        }
        if value.is_none() && key.contains(char::is_whitespace) {
            return Err(syntax(number, line, "expected `key = value`"));
        }
        // Continuations of an ignored section's value go nowhere (no entry at `MAX`).
        let index = if section == Section::Other {
            usize::MAX
        } else {
            entries.len()
        };
        current = value.is_some().then_some((index, indent));
        if section == Section::Other {
            other_current = value.is_some().then(|| (key.clone(), indent));
            others
                .entry(other_name.clone())
                .or_default()
                .insert(key, value.unwrap_or_default());
            continue;
        }
        entries.push(Entry {
            key,
            value,
            line: number,
            in_volttron: section == Section::Volttron,
        });
    }
    Ok((entries, others))
}

/// The keys of sections other than `[volttron]` and `[DEFAULT]`, by section.
type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// Where a line is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Before the first header.
    Global,
    /// `[DEFAULT]`.
    Default,
    /// `[volttron]`.
    Volttron,
    /// Any other section.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PlatformConfig, ConfigError> {
        PlatformConfig::parse(text, "/v/config")
    }

    /// As `vcfg` writes it.
    const SAMPLE: &str = "\
[volttron]
message-bus = zmq
vip-address = tcp://127.0.0.1:22916
instance-name = volttron1
agent-monitor-frequency = 600
bind-web-address = https://vhost:8443
web-ssl-cert = /home/u/.volttron/certificates/certs/platform_web-server.crt
";

    #[test]
    fn volttron_sample_config() {
        let c = parse(SAMPLE).unwrap();
        assert_eq!(c.instance_name.as_deref(), Some("volttron1"));
        assert_eq!(c.vip_addresses, Some(vec!["tcp://127.0.0.1:22916".to_owned()]));
        assert_eq!(c.agent_monitor_frequency, Some(Duration::from_secs(600)));
        assert_eq!(c.message_bus.as_deref(), Some("zmq"));
        assert_eq!(c.bind_web_address.as_deref(), Some("https://vhost:8443"));
        assert_eq!(c.auth, None);
        // The web service reads the web keys: no warnings.
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn other_sections_are_kept_for_their_services() {
        let c = parse(
            "[volttron]\ninstance-name = a\n[web]\nrpc-allow-list =\n  hvac: get_*\n  *: status\nweb_root_dir = /srv/web\n[other]\nx = 1\n",
        )
        .unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.sections["web"]["rpc-allow-list"], "hvac: get_*\n*: status");
        assert_eq!(c.sections["web"]["web-root-dir"], "/srv/web");
        assert_eq!(c.sections["other"]["x"], "1");
        assert!(!c.extra.contains_key("x"));
    }

    #[test]
    fn bridge_addresses_are_their_own_key() {
        let c = parse("[volttron]\nbridge-address = tcp://127.0.0.1:22917, ipc://@/tmp/b.sock\naddress = tcp://127.0.0.1:22916\n")
            .unwrap();
        assert_eq!(c.vip_addresses, Some(vec!["tcp://127.0.0.1:22916".to_owned()]));
        let bridge = c.bridge_addresses.unwrap();
        assert_eq!(bridge, ["tcp://127.0.0.1:22917", "ipc://@/tmp/b.sock"]);
        // They parse as the bridge's.
        for a in &bridge {
            a.parse::<crate::bridge::BridgeAddress>().unwrap();
        }
    }

    /// As VOLTTRON 11 (`ServerOptions.store`, volttron-core 2.0.0rc38) writes it at its first
    /// start.
    const VOLTTRON11: &str = "\
[volttron]
instance-name = vm
agent-isolation-mode = True
messagebus = zmq
auth-enabled = True
server-messagebus-id = vip.server
agent-monitor-frequency = 600
enable-federation = False
enable-federation-cache = True
";

    #[test]
    fn a_volttron11_config() {
        let c = parse(VOLTTRON11).unwrap();
        assert_eq!(c.instance_name.as_deref(), Some("vm"));
        assert_eq!(c.agent_isolation_mode, Some(true));
        assert_eq!(c.message_bus.as_deref(), Some("zmq"));
        assert_eq!(c.auth, Some(true));
        assert_eq!(c.agent_monitor_frequency, Some(Duration::from_secs(600)));
        assert_eq!(c.enable_federation, Some(false));
        let kinds: Vec<_> = c.warnings.iter().map(|w| (w.line, w.kind.clone())).collect();
        assert_eq!(
            kinds,
            [
                (6, ConfigWarningKind::Meaningless),
                (3, ConfigWarningKind::Volttron11IsolationMode),
            ],
            "federation off: its cache setting is as inert as in VOLTTRON 11"
        );
        assert!(c.warnings[0].is_minor() && !c.warnings[1].is_minor());
        assert!(c.warnings[1].to_string().contains("agent-isolation-mode = False"));
    }

    #[test]
    fn auth_off_is_honoured_and_warned() {
        for text in [
            "auth-enabled = False",
            "auth = no",
            "auth-disabled",
            "--auth-disabled = true",
        ] {
            let c = parse(&format!("[volttron]\n{text}\n")).unwrap();
            assert_eq!(c.auth, Some(false), "{text}");
            assert_eq!(c.warnings.len(), 1, "{text}");
            assert_eq!(c.warnings[0].kind, ConfigWarningKind::AuthDisabled);
            assert!(
                c.warnings[0]
                    .to_string()
                    .contains("turns authentication and authorization off")
            );
        }
        let c = parse("[volttron]\nauth-disabled = False\n").unwrap();
        assert_eq!(c.auth, Some(true));
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn another_message_bus_is_an_error() {
        for key in ["messagebus", "message-bus"] {
            let err = parse(&format!("[volttron]\n{key} = rmq\n")).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Unsupported { line: 2, key: k, value, .. } if k == key && value == "rmq"),
                "{err:?}"
            );
            assert!(err.to_string().contains("ZeroMQ"), "{err}");
        }
        assert_eq!(
            parse("[volttron]\nmessagebus = ZMQ\n")
                .unwrap()
                .message_bus
                .as_deref(),
            Some("zmq")
        );
    }

    #[test]
    fn federation_and_other_volttron_keys_warn() {
        let c = parse(
            "[volttron]\nenable-federation = True\nfederation-url = http://x\nvolttron-central-address = http://vc\n\
             autostart = False\nsecure-agent-users = True\ninstance-name = \"quoted\"\nlocal-address = ipc://@$VOLTTRON_HOME/run/vip.socket\n",
        )
        .unwrap();
        assert_eq!(c.enable_federation, Some(true));
        assert_eq!(c.agent_isolation_mode, Some(true), "VOLTTRON 8/9's spelling");
        assert_eq!(c.instance_name.as_deref(), Some("quoted"));
        assert_eq!(
            c.local_address.as_deref(),
            Some("ipc://@$VOLTTRON_HOME/run/vip.socket")
        );
        let keys: Vec<&str> = c.warnings.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "enable-federation",
                "volttron-central-address",
                "autostart",
                "federation-url"
            ]
        );
        assert!(
            c.warnings
                .iter()
                .all(|w| matches!(w.kind, ConfigWarningKind::NotImplemented { .. }))
        );
        assert_eq!(c.extra["federation-url"], "http://x");
        let c = parse("[volttron]\nsomething-new = 1\n").unwrap();
        assert_eq!(c.warnings[0].kind, ConfigWarningKind::Unknown);
    }

    #[test]
    fn unknown_keys_are_kept() {
        let c = parse(SAMPLE).unwrap();
        assert_eq!(
            c.extra.get("web-ssl-cert").map(String::as_str),
            Some("/home/u/.volttron/certificates/certs/platform_web-server.crt")
        );
        assert_eq!(c.extra.len(), 1);
    }

    #[test]
    fn address_lists_continuations_and_repeats() {
        let c = parse(
            "[volttron]\n\
             vip-address = tcp://127.0.0.1:22916,ipc://@/tmp/v/run/vip.socket  tcp://10.0.0.1:22916\n\
             \x20   tcp://10.0.0.2:22916\n\
             # a comment inside\n\
             \x20   tcp://10.0.0.3:22916\n\
             VIP_ADDRESS: tcp://10.0.0.4:22916\n",
        )
        .unwrap();
        assert_eq!(
            c.vip_addresses.unwrap(),
            [
                "tcp://127.0.0.1:22916",
                "ipc://@/tmp/v/run/vip.socket",
                "tcp://10.0.0.1:22916",
                "tcp://10.0.0.2:22916",
                "tcp://10.0.0.3:22916",
                "tcp://10.0.0.4:22916"
            ]
        );
    }

    #[test]
    fn our_keys_booleans_and_long_option_spelling() {
        let c =
            parse("; ours\n[volttron]\n--auth = Yes\nagent-restart-limit = 5\nagent_restart_period: 2.5\r\n")
                .unwrap();
        assert_eq!(c.auth, Some(true));
        assert_eq!(c.agent_restart_limit, Some(5));
        assert_eq!(c.agent_restart_period, Some(Duration::from_millis(2500)));
        for (v, b) in [
            ("off", false),
            ("0", false),
            ("FALSE", false),
            ("on", true),
            ("1", true),
        ] {
            assert_eq!(parse(&format!("[volttron]\nauth={v}\n")).unwrap().auth, Some(b));
        }
        // A boolean key alone on its line is true.
        let c = parse("[volttron]\nauth\ninstance-name = x\n").unwrap();
        assert_eq!(c.auth, Some(true));
        assert_eq!(c.instance_name.as_deref(), Some("x"));
    }

    #[test]
    fn bad_number_names_key_value_and_line() {
        let err = parse("[volttron]\ninstance-name = a\nagent-monitor-frequency = often\n").unwrap_err();
        let ConfigError::InvalidValue { line, key, value, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            (*line, key.as_str(), value.as_str()),
            (3, "agent-monitor-frequency", "often")
        );
        let msg = err.to_string();
        assert!(
            msg.contains("/v/config:3") && msg.contains("\"often\"") && msg.contains("seconds"),
            "{msg}"
        );
        for bad in ["0", "-1", "NaN", "inf", ""] {
            assert!(
                parse(&format!("[volttron]\nagent-monitor-frequency = {bad}\n")).is_err(),
                "{bad:?}"
            );
        }
        let err = parse("[volttron]\nagent-restart-limit = -3\n").unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { line: 2, .. }), "{err}");
    }

    #[test]
    fn agent_confinement_and_budget_keys() {
        let c = parse(
            "[volttron]\nagent-isolation-mode = true\nagent-uid-range = 300000-300099\n\
             agent-data-only-writable\nagent-cpu-budget = 0.25\nagent-memory-budget = 1\n\
             agent-memory-hard-cap = 1.5\nmemory-pressure-below = 1000000\n",
        )
        .unwrap();
        assert_eq!(c.agent_isolation_mode, Some(true));
        assert_eq!(c.agent_uid_range.map(|r| r.as_range()), Some(300_000..=300_099));
        assert_eq!(c.agent_data_only_writable, Some(true));
        assert_eq!(
            (c.agent_cpu_budget, c.agent_memory_budget),
            (Some(0.25), Some(1.0))
        );
        assert_eq!(c.agent_memory_hard_cap, Some(1.5));
        assert_eq!(c.memory_pressure_below, Some(1_000_000));
        assert!(c.extra.is_empty(), "{:?}", c.extra);
        for (key, bad, expected) in [
            ("agent-uid-range", "0-10", "FIRST-LAST"),
            ("agent-uid-range", "many", "FIRST-LAST"),
            ("agent-cpu-budget", "0", "(0, 1]"),
            ("agent-memory-budget", "1.5", "(0, 1]"),
            ("agent-memory-hard-cap", "0.5", ">= 1"),
            ("memory-pressure-below", "-1", "bytes"),
            ("agent-isolation-mode", "perhaps", "true/false"),
        ] {
            let err = parse(&format!("[volttron]\n{key} = {bad}\n")).unwrap_err();
            assert!(
                matches!(&err, ConfigError::InvalidValue { line: 2, key: k, .. } if k == key),
                "{key}: {err:?}"
            );
            assert!(err.to_string().contains(expected), "{key}: {err}");
        }
    }

    #[test]
    fn bad_boolean_is_an_error() {
        let err = parse("[volttron]\n\n\nauth = maybe\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::InvalidValue { line: 4, key, value, .. }
                if key == "auth" && value == "maybe"),
            "{err:?}"
        );
        assert!(err.to_string().contains("true/false"), "{err}");
    }

    #[test]
    fn syntax_errors_have_lines() {
        let err = parse("[volttron]\ninstance-name = a\n[volttron\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 3, .. }), "{err:?}");
        let err = parse("[volttron]\n= 5\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err:?}");
        let err = parse("[volttron]\ninstance-name = a\nnot a key\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 3, .. }), "{err:?}");
        // A key without a value is an error for keys that take one.
        let err = parse("[volttron]\ninstance-name\n").unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidValue { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn sections_precedence_and_last_wins() {
        let c = parse(
            "instance-name = global\nauth = false\n[DEFAULT]\nagent-restart-limit = 1\n\
             [vctl]\ninstance-name = not-ours\n  continued here\nflag\n\
             [volttron]\ninstance-name = first\ninstance-name = second\n",
        )
        .unwrap();
        assert_eq!(c.instance_name.as_deref(), Some("second"));
        assert_eq!(c.auth, Some(false));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.kind == ConfigWarningKind::Repeated { first_line: 10 })
        );
        assert_eq!(c.agent_restart_limit, Some(1));
        assert!(c.extra.is_empty(), "{:?}", c.extra);
    }

    #[test]
    fn missing_file_gives_defaults_and_merge_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let c = PlatformConfig::load(dir.path().join("config")).unwrap();
        assert_eq!(c, PlatformConfig::default());
        let err = PlatformConfig::load(dir.path()).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");

        let file = parse(SAMPLE).unwrap();
        let flags = PlatformConfig {
            instance_name: Some("from-flag".into()),
            auth: Some(false),
            ..PlatformConfig::default()
        };
        let merged = file.clone().merge(flags);
        assert_eq!(merged.instance_name.as_deref(), Some("from-flag"));
        assert_eq!(merged.auth, Some(false));
        assert_eq!(merged.vip_addresses, file.vip_addresses);
        assert_eq!(merged.extra, file.extra);
    }
}
