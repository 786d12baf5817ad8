//! The platform configuration file, `$VOLTTRON_HOME/config`: VOLTTRON's INI format.
//!
//! ```ini
//! [volttron]
//! instance-name = campus-hq
//! vip-address = tcp://127.0.0.1:22916, ipc://@/home/volttron/.volttron/run/vip.socket
//! agent-monitor-frequency = 30
//! message-bus = zmq
//! ```
//!
//! | key | field | value |
//! |-----|-------|-------|
//! | `instance-name` | [`instance_name`](PlatformConfig::instance_name) | text |
//! | `vip-address` | [`vip_addresses`](PlatformConfig::vip_addresses) | addresses separated by commas or whitespace; repeated keys add more |
//! | `agent-monitor-frequency` | [`agent_monitor_frequency`](PlatformConfig::agent_monitor_frequency) | seconds (> 0, fractions allowed) |
//! | `auth` | [`auth`](PlatformConfig::auth) | boolean (ours) |
//! | `agent-restart-limit` | [`agent_restart_limit`](PlatformConfig::agent_restart_limit) | integer (ours) |
//! | `agent-restart-period` | [`agent_restart_period`](PlatformConfig::agent_restart_period) | seconds (ours) |
//! | `agent-isolation-mode` | [`agent_isolation_mode`](PlatformConfig::agent_isolation_mode) | boolean: each agent runs as a user of its own ([`crate::control::isolation`]) |
//! | `agent-uid-range` | [`agent_uid_range`](PlatformConfig::agent_uid_range) | `FIRST-LAST`: the uids those users get (ours; default `200000-299999`) |
//! | `agent-data-only-writable` | [`agent_data_only_writable`](PlatformConfig::agent_data_only_writable) | boolean: agents may write only beneath their `data/` (ours) |
//! | `agent-cpu-budget`, `agent-memory-budget` | [`agent_cpu_budget`](PlatformConfig::agent_cpu_budget), [`agent_memory_budget`](PlatformConfig::agent_memory_budget) | the shares of the machine's BogoMIPS and memory that resource contracts may reserve, in (0, 1] (ours; default 0.8 and 0.5, VOLTTRON's) |
//! | `agent-memory-hard-cap` | [`agent_memory_hard_cap`](PlatformConfig::agent_memory_hard_cap) | a number >= 1: an agent's cgroup memory cap, as a multiple of its contract's soft limit (ours; default none) |
//! | `memory-pressure-below` | [`memory_pressure_below`](PlatformConfig::memory_pressure_below) | bytes of MemAvailable below which the machine is under memory pressure (ours; default 10% of MemTotal) |
//! | `message-bus` | [`message_bus`](PlatformConfig::message_bus) | kept, not used (one bus here) |
//! | `bind-web-address` | [`bind_web_address`](PlatformConfig::bind_web_address) | kept, not used (no web service yet) |
//! | anything else | [`extra`](PlatformConfig::extra) | kept, with a warning |
//!
//! Booleans are `true`/`yes`/`on`/`1` or `false`/`no`/`off`/`0` (any case); a boolean
//! key alone on its line means true, as in VOLTTRON's own config parser.
//!
//! The syntax is that of Python's `configparser`, which VOLTTRON reads the file with:
//! `key = value` or `key: value`; `#` and `;` start comment lines (not inline comments);
//! keys are case-insensitive; an indented line continues the previous value. Also
//! accepted, as VOLTTRON 9 did: keys written as long options (`--vip-address`), and keys
//! before the first section or in `[DEFAULT]`, which apply unless `[volttron]` sets the
//! same key. Underscores in keys count as dashes. Other sections are ignored.
//!
//! Differences from `configparser`: `%` is literal (no interpolation); a key repeated in
//! a section is not an error (the last one wins, with a warning; `vip-address` adds up).
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

/// The platform's settings from `$VOLTTRON_HOME/config`, each `None` when not set.
///
/// Command-line flags override the file: build a `PlatformConfig` from the flags and
/// [`merge`](Self::merge) it over the loaded one, or override single fields with `or`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformConfig {
    /// `instance-name`.
    pub instance_name: Option<String>,
    /// `vip-address`: addresses to listen on, as written (`tcp://127.0.0.1:22916`,
    /// `ipc://@/path`); parse each with [`BridgeAddress`](crate::bridge::BridgeAddress)'s
    /// `FromStr`.
    pub vip_addresses: Option<Vec<String>>,
    /// `bridge-address`: where this project's bridge listens for its own agents over TCP
    /// (Noise-encrypted), as written (`tcp://127.0.0.1:22917`).
    pub bridge_addresses: Option<Vec<String>>,
    /// `agent-monitor-frequency`: how often crashed agents are looked for.
    pub agent_monitor_frequency: Option<Duration>,
    /// `auth`: whether connections are authenticated.
    pub auth: Option<bool>,
    /// `agent-restart-limit`: restarts of a crashing agent within the period.
    pub agent_restart_limit: Option<u32>,
    /// `agent-restart-period`: the window the restart limit counts in.
    pub agent_restart_period: Option<Duration>,
    /// `agent-isolation-mode`: each agent runs as a user of its own.
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
    /// `message-bus` (`zmq`, `rmq` in VOLTTRON): kept for `query`, not used.
    pub message_bus: Option<String>,
    /// `bind-web-address`: kept for `query`, not used.
    pub bind_web_address: Option<String>,
    /// Keys this crate does not know, normalized, with their values (empty for a key
    /// alone on its line).
    pub extra: BTreeMap<String, String>,
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
        let entries = parse_ini(text, origin)?;
        // `[volttron]` keys replace fallback (global, `[DEFAULT]`) keys of the same name.
        let in_section: std::collections::HashSet<&str> = entries
            .iter()
            .filter(|e| e.in_volttron)
            .map(|e| e.key.as_str())
            .collect();
        let mut config = PlatformConfig::default();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in &entries {
            if !entry.in_volttron && in_section.contains(entry.key.as_str()) {
                continue;
            }
            if entry.key != "vip-address"
                && entry.key != "bridge-address"
                && let Some(first) = seen.insert(&entry.key, entry.line)
            {
                tracing::warn!(
                    file = %origin.display(),
                    key = %entry.key,
                    "`{}` is set on lines {first} and {}; the last one is used",
                    entry.key,
                    entry.line
                );
            }
            config.apply(entry, origin)?;
        }
        Ok(config)
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
        match entry.key.as_str() {
            "instance-name" => self.instance_name = Some(text()?),
            "vip-address" | "bridge-address" => {
                let value = text()?;
                let list = if entry.key == "vip-address" {
                    &mut self.vip_addresses
                } else {
                    &mut self.bridge_addresses
                };
                list.get_or_insert_with(Vec::new).extend(
                    value
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned),
                );
            }
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
            "auth" => self.auth = Some(boolean()?),
            "agent-isolation-mode" => self.agent_isolation_mode = Some(boolean()?),
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
            "message-bus" => {
                let value = text()?;
                if value != "zmq" {
                    tracing::warn!(
                        file = %origin.display(),
                        "message-bus = {value} is ignored: this platform has one built-in bus"
                    );
                }
                self.message_bus = Some(value);
            }
            "bind-web-address" => self.bind_web_address = Some(text()?),
            other => {
                tracing::warn!(
                    file = %origin.display(),
                    line = entry.line,
                    "unknown key `{other}` in [{SECTION}]; kept but not used"
                );
                self.extra
                    .insert(other.to_owned(), entry.value.clone().unwrap_or_default());
            }
        }
        Ok(())
    }

    /// `self` with every field that `overrides` sets replaced by its value (for command
    /// line flags over the file). `extra` keys are united, `overrides` winning.
    pub fn merge(mut self, overrides: PlatformConfig) -> PlatformConfig {
        self.extra.extend(overrides.extra);
        PlatformConfig {
            instance_name: overrides.instance_name.or(self.instance_name),
            vip_addresses: overrides.vip_addresses.or(self.vip_addresses),
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
            extra: self.extra,
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
fn parse_ini(text: &str, origin: &Path) -> Result<Vec<Entry>, ConfigError> {
    let syntax = |line: usize, text: &str, message| ConfigError::Syntax {
        path: origin.to_owned(),
        line,
        text: text.to_owned(),
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut section = Section::Global;
    let mut entries: Vec<Entry> = Vec::new();
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
                    tracing::debug!(file = %origin.display(), "section [{other}] ignored");
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
            continue;
        }
        entries.push(Entry {
            key,
            value,
            line: number,
            in_volttron: section == Section::Volttron,
        });
    }
    Ok(entries)
}

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
        // The addresses parse as the bridge's.
        for a in c.vip_addresses.as_ref().unwrap() {
            a.parse::<crate::bridge::BridgeAddress>().unwrap();
        }
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
