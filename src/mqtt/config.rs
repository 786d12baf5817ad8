//! The federation's settings: the `[federation]` section of `$VOLTTRON_HOME/config`, or
//! [`FederationConfig`] built in code for [`PlatformBuilder::service`](crate::PlatformBuilder::service).
//!
//! ```ini
//! [federation]
//! broker = mqtt://127.0.0.1:1883      # mqtts://host:8883 for TLS
//! username = site1                    # the broker's credentials of this platform
//! password = secret                   # or password-file = /path (first line)
//! ca-file = /etc/volttron/broker-ca.pem   # mqtts: the CA that signed the broker
//! export = devices/, alerts/          # what leaves this platform (nothing by default)
//! import = devices/                   # what it takes in (everything by default)
//! allow = site2, site3                # platforms it talks to (any by default)
//! keepalive = 5                       # seconds, at least 5
//! max-message-bytes = 1048576
//! backlog-max-messages = 100000
//! backlog-max-bytes = 67108864
//! backlog-policy = alerts/ drop_newest 10, devices/ keep_latest_per_topic 0
//! mqtt-export = devices/ -> bms/devices qos=1 retain=true
//! mqtt-import = scada/commands/# -> commands/scada qos=1
//! ```
//!
//! Lists are separated by commas or newlines. Every value is checked: a bad one fails
//! the platform's start with the key and the reason.

use std::path::PathBuf;
use std::time::Duration;

use crate::home::config::PlatformConfig;
use crate::mqtt::backlog::{KeepPolicy, PrefixPolicy};
use crate::mqtt::bridging::{ExportRule, ImportRule};

/// A setting that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[federation] {key} = {value:?}: {reason}")]
pub struct FederationConfigError {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

pub(crate) fn bad(key: &str, value: &str, reason: impl Into<String>) -> FederationConfigError {
    FederationConfigError {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `mqtts://`: TLS (rustls) to the broker.
    pub tls: bool,
}

impl std::str::FromStr for BrokerAddress {
    type Err = FederationConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("mqtt://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("mqtts://") {
            (true, r)
        } else {
            return Err(bad("broker", s, "expected mqtt://HOST:PORT or mqtts://HOST:PORT"));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad("broker", s, format!("port {p:?} is not a number from 1 to 65535")))?,
            ),
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(bad("broker", s, "needs a host and a port above 0"));
        }
        Ok(BrokerAddress {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

impl std::fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// How this platform joins a federation. See the module docs for the file's keys.
#[derive(Debug, Clone)]
pub struct FederationConfig {
    /// The broker.
    pub broker: BrokerAddress,
    /// The broker user and password of this platform.
    pub credentials: Option<(String, String)>,
    /// For `mqtts://`: a PEM file of the CA certificates the broker's is checked against.
    pub ca_file: Option<PathBuf>,
    /// VOLTTRON prefixes of the topics that leave this platform.
    pub export: Vec<String>,
    /// VOLTTRON prefixes of the topics taken in from other platforms.
    pub import: Vec<String>,
    /// The platforms this one exchanges publications and calls with; `None`: any the
    /// broker admits (the broker's credentials and ACL are then the only check).
    pub allow: Option<Vec<String>>,
    /// MQTT keep-alive, at least 5 s: a platform whose connection hangs is seen gone
    /// within 1.5 times this (one whose process dies, at once: its socket closes).
    pub keepalive: Duration,
    /// Larger payloads are neither sent nor taken in.
    pub max_message_bytes: usize,
    /// Where the backlog lives (`$VOLTTRON_HOME/federation/backlog.sqlite` by default).
    pub backlog_path: Option<PathBuf>,
    /// The backlog's bound, in messages.
    pub backlog_max_messages: usize,
    /// The backlog's bound, in bytes.
    pub backlog_max_bytes: u64,
    /// What the backlog keeps at its bound, and what it replays first, by prefix.
    pub backlog_policies: Vec<PrefixPolicy>,
    /// Bus topics published to plain MQTT topics, for other systems.
    pub mqtt_export: Vec<ExportRule>,
    /// Plain MQTT topics published on the bus.
    pub mqtt_import: Vec<ImportRule>,
}

impl FederationConfig {
    /// A federation through `broker` that exports nothing and imports everything.
    pub fn new(broker: &str) -> Result<FederationConfig, FederationConfigError> {
        Ok(FederationConfig {
            broker: broker.parse()?,
            credentials: None,
            ca_file: None,
            export: Vec::new(),
            import: vec![String::new()],
            allow: None,
            keepalive: Duration::from_secs(5),
            max_message_bytes: 1024 * 1024,
            backlog_path: None,
            backlog_max_messages: 100_000,
            backlog_max_bytes: 64 * 1024 * 1024,
            backlog_policies: Vec::new(),
            mqtt_export: Vec::new(),
            mqtt_import: Vec::new(),
        })
    }

    /// Sets the broker credentials.
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Sets the exported prefixes.
    pub fn export<S: AsRef<str>>(mut self, prefixes: impl IntoIterator<Item = S>) -> Self {
        self.export = prefixes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// Sets the imported prefixes.
    pub fn import<S: AsRef<str>>(mut self, prefixes: impl IntoIterator<Item = S>) -> Self {
        self.import = prefixes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// Sets the platforms allowed.
    pub fn allow<S: AsRef<str>>(mut self, platforms: impl IntoIterator<Item = S>) -> Self {
        self.allow = Some(platforms.into_iter().map(|s| s.as_ref().to_owned()).collect());
        self
    }

    /// Sets the keep-alive (at least 5 s: shorter ones are raised to 5 s).
    pub fn keepalive(mut self, keepalive: Duration) -> Self {
        self.keepalive = keepalive.max(Duration::from_secs(5));
        self
    }

    /// Sets where the backlog lives.
    pub fn backlog_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.backlog_path = Some(path.into());
        self
    }

    /// Sets the backlog's bounds.
    pub fn backlog_bounds(mut self, messages: usize, bytes: u64) -> Self {
        self.backlog_max_messages = messages;
        self.backlog_max_bytes = bytes;
        self
    }

    /// Adds a backlog policy for `prefix`.
    pub fn backlog_policy(mut self, prefix: &str, keep: KeepPolicy, priority: u8) -> Self {
        self.backlog_policies.push(PrefixPolicy {
            prefix: prefix.to_owned(),
            keep,
            priority,
        });
        self
    }

    /// Adds a plain MQTT export rule.
    pub fn mqtt_export(mut self, rule: ExportRule) -> Self {
        self.mqtt_export.push(rule);
        self
    }

    /// Adds a plain MQTT import rule.
    pub fn mqtt_import(mut self, rule: ImportRule) -> Self {
        self.mqtt_import.push(rule);
        self
    }

    /// Whether `platform` may exchange messages with this one.
    pub fn allows(&self, platform: &str) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|a| a.iter().any(|p| p == platform))
    }

    /// Whether a topic received from another platform is taken in.
    pub fn imports(&self, topic: &str) -> bool {
        self.import.iter().any(|p| topic.starts_with(p.as_str()))
    }

    /// Whether a topic of this platform leaves it.
    pub fn exports(&self, topic: &str) -> bool {
        self.export.iter().any(|p| topic.starts_with(p.as_str()))
    }

    /// The `[federation]` section of a platform configuration file; `None` without one.
    pub fn from_platform_config(
        config: &PlatformConfig,
    ) -> Result<Option<FederationConfig>, FederationConfigError> {
        let Some(section) = config.sections.get("federation") else {
            return Ok(None);
        };
        let get = |key: &str| section.get(key).map(|s| s.trim()).filter(|s| !s.is_empty());
        let broker = get("broker").ok_or_else(|| bad("broker", "", "the broker's address is required"))?;
        let mut c = FederationConfig::new(broker)?;
        let password = match (get("password"), get("password-file")) {
            (Some(p), None) => Some(p.to_owned()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| bad("password-file", file, e.to_string()))?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            ),
            (None, None) => None,
            (Some(_), Some(file)) => {
                return Err(bad(
                    "password-file",
                    file,
                    "set password or password-file, not both",
                ));
            }
        };
        match (get("username"), password) {
            (Some(u), Some(p)) => c.credentials = Some((u.to_owned(), p)),
            (None, None) => {}
            (Some(u), None) => return Err(bad("username", u, "needs a password (or password-file)")),
            (None, Some(_)) => return Err(bad("password", "…", "needs a username")),
        }
        c.ca_file = get("ca-file").map(PathBuf::from);
        if c.ca_file.is_some() && !c.broker.tls {
            return Err(bad(
                "ca-file",
                get("ca-file").unwrap_or(""),
                "is for mqtts:// brokers",
            ));
        }
        if let Some(v) = get("export") {
            c.export = prefixes("export", v)?;
        }
        if let Some(v) = get("import") {
            c.import = prefixes("import", v)?;
        }
        if let Some(v) = get("allow") {
            let names = list(v);
            for n in &names {
                crate::mqtt::topics::check_instance_name(n).map_err(|reason| bad("allow", n, reason))?;
            }
            c.allow = Some(names);
        }
        if let Some(v) = get("keepalive") {
            let secs: u64 = v
                .parse()
                .ok()
                .filter(|s| (5..=65535).contains(s))
                .ok_or_else(|| bad("keepalive", v, "seconds, from 5 to 65535 (rumqttc's range)"))?;
            c.keepalive = Duration::from_secs(secs);
        }
        if let Some(v) = get("max-message-bytes") {
            c.max_message_bytes = v
                .parse()
                .ok()
                .filter(|n| (1024..=256 * 1024 * 1024).contains(n))
                .ok_or_else(|| bad("max-message-bytes", v, "bytes, from 1024 to 268435456"))?;
        }
        c.backlog_path = get("backlog-path").map(PathBuf::from);
        if let Some(v) = get("backlog-max-messages") {
            c.backlog_max_messages = v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("backlog-max-messages", v, "a count above 0"))?;
        }
        if let Some(v) = get("backlog-max-bytes") {
            c.backlog_max_bytes = v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("backlog-max-bytes", v, "bytes, above 0"))?;
        }
        if let Some(v) = get("backlog-policy") {
            for item in list(v) {
                c.backlog_policies.push(policy(&item)?);
            }
        }
        if let Some(v) = get("mqtt-export") {
            for item in list(v) {
                c.mqtt_export.push(item.parse()?);
            }
        }
        if let Some(v) = get("mqtt-import") {
            for item in list(v) {
                c.mqtt_import.push(item.parse()?);
            }
        }
        Ok(Some(c))
    }
}

/// Comma- or newline-separated items, trimmed, empty ones dropped.
pub(crate) fn list(v: &str) -> Vec<String> {
    v.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn prefixes(key: &str, v: &str) -> Result<Vec<String>, FederationConfigError> {
    let items = list(v);
    for p in &items {
        if p.contains(['+', '#']) {
            return Err(bad(key, p, "a VOLTTRON prefix, without MQTT wildcards"));
        }
    }
    Ok(items)
}

/// `PREFIX KEEP [PRIORITY]`, e.g. `alerts/ drop_newest 10`.
fn policy(item: &str) -> Result<PrefixPolicy, FederationConfigError> {
    let words: Vec<&str> = item.split_whitespace().collect();
    let (prefix, keep, priority) = match words.as_slice() {
        [p, k] => (*p, *k, "0"),
        [p, k, n] => (*p, *k, *n),
        _ => return Err(bad("backlog-policy", item, "expected PREFIX KEEP [PRIORITY]")),
    };
    let keep = match keep {
        "drop_oldest" => KeepPolicy::DropOldest,
        "drop_newest" => KeepPolicy::DropNewest,
        "keep_latest_per_topic" => KeepPolicy::KeepLatestPerTopic,
        other => {
            return Err(bad(
                "backlog-policy",
                other,
                "expected drop_oldest, drop_newest or keep_latest_per_topic",
            ));
        }
    };
    let priority = priority
        .parse()
        .map_err(|_| bad("backlog-policy", priority, "a priority from 0 to 255"))?;
    Ok(PrefixPolicy {
        prefix: prefix.to_owned(),
        keep,
        priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<FederationConfig>, FederationConfigError> {
        let config = PlatformConfig::parse(text, "config").unwrap();
        FederationConfig::from_platform_config(&config)
    }

    #[test]
    fn a_full_section() {
        let c = parse(
            "[volttron]\ninstance-name = site1\n[federation]\nbroker = mqtt://127.0.0.1:1884\nusername = site1\npassword = pw\nexport = devices/, alerts/\nimport = devices/\nallow = site2, site3\nkeepalive = 7\nbacklog-policy = alerts/ drop_newest 10, devices/ keep_latest_per_topic\nmqtt-export = devices/ -> bms/devices qos=1 retain=true\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.broker.port, 1884);
        assert_eq!(c.credentials, Some(("site1".into(), "pw".into())));
        assert_eq!(c.export, ["devices/", "alerts/"]);
        assert!(c.allows("site2") && !c.allows("site9"));
        assert!(c.imports("devices/x") && !c.imports("alerts/x"));
        assert_eq!(c.keepalive, Duration::from_secs(7));
        assert_eq!(c.backlog_policies.len(), 2);
        assert_eq!(c.backlog_policies[0].priority, 10);
        assert_eq!(c.mqtt_export.len(), 1);
    }

    #[test]
    fn no_section_is_no_federation() {
        assert!(parse("[volttron]\ninstance-name = a\n").unwrap().is_none());
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("broker = http://x", "broker"),
            ("broker = mqtt://h:99999", "broker"),
            ("broker = mqtt://h:1\nusername = u", "username"),
            ("broker = mqtt://h:1\nexport = devices/#", "export"),
            ("broker = mqtt://h:1\nallow = a/b", "allow"),
            ("broker = mqtt://h:1\nkeepalive = 4", "keepalive"),
            (
                "broker = mqtt://h:1\nbacklog-policy = x keep_all",
                "backlog-policy",
            ),
            ("broker = mqtt://h:1\nca-file = /x", "ca-file"),
            ("username = u", "broker"),
        ] {
            let e = parse(&format!("[federation]\n{text}\n")).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
        }
    }
}
