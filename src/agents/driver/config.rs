//! The platform driver's configuration, as VOLTTRON's platform driver reads it from its
//! configuration store.
//!
//! The agent's `config` entry ([`DriverSettings`]):
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `driver_scrape_interval` | `0.02` | seconds between the scrapes of consecutive devices (the stagger) |
//! | `group_offset_interval` | `0` | seconds added per device `group` |
//! | `publish_depth_first_all` | `true` | `devices/<path>/all` |
//! | `publish_breadth_first_all` | `false` | `devices/all/<reversed path>` |
//! | `publish_depth_first` | `false` | `devices/<path>/<point>` per point |
//! | `publish_breadth_first` | `false` | `devices/<point>/<reversed path>` per point |
//! | `timeout` | `5` | seconds a device may take to answer one request (this project's) |
//!
//! VOLTTRON keys this driver does not act on (`max_open_sockets`, `max_concurrent_publishes`,
//! `scalability_test`, `scalability_test_iterations`, `driver_config_version`) are accepted
//! and logged; other keys are refused.
//!
//! One `devices/<campus>/<building>/<unit>` entry per device ([`DeviceConfig`]):
//! `driver_config` (object), `driver_type`, `registry_config` (`config://<name>`),
//! `interval` (seconds, default 60), `timezone` (default `UTC`), `heart_beat_point`,
//! `group` (default 0), `timeout`, and the four `publish_*` keys overriding the agent's.

use std::time::Duration;

use crate::core::{Map, Value};

/// A configuration entry that cannot be used: which entry, which key, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{config}: {key:?}: {reason}")]
pub struct ConfigError {
    /// The configuration's name (`config`, `devices/campus/b/rtu1`).
    pub config: String,
    /// The key.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Which topics a scrape is published on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishSettings {
    /// `devices/<path>/all`.
    pub depth_first_all: bool,
    /// `devices/all/<reversed path>`.
    pub breadth_first_all: bool,
    /// `devices/<path>/<point>`.
    pub depth_first: bool,
    /// `devices/<point>/<reversed path>`.
    pub breadth_first: bool,
}

impl Default for PublishSettings {
    fn default() -> Self {
        PublishSettings {
            depth_first_all: true,
            breadth_first_all: false,
            depth_first: false,
            breadth_first: false,
        }
    }
}

/// The agent's `config`.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverSettings {
    /// Between consecutive devices' scrapes.
    pub stagger: Duration,
    /// Added per device group.
    pub group_offset: Duration,
    /// Where scrapes are published, unless a device says otherwise.
    pub publish: PublishSettings,
    /// How long one request to a device may take, unless a device says otherwise.
    pub timeout: Duration,
}

impl Default for DriverSettings {
    fn default() -> Self {
        DriverSettings {
            stagger: Duration::from_millis(20),
            group_offset: Duration::ZERO,
            publish: PublishSettings::default(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// VOLTTRON's keys that are accepted without effect.
const IGNORED: [&str; 5] = [
    "max_open_sockets",
    "max_concurrent_publishes",
    "scalability_test",
    "scalability_test_iterations",
    "driver_config_version",
];

struct Reader<'a> {
    config: &'a str,
    map: &'a Map,
}

impl Reader<'_> {
    fn error(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            config: self.config.to_owned(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn seconds(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            {
                Some(s) if (0.0..=1e9).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
                _ => Err(self.error(key, format!("{v} is not a number of seconds ≥ 0"))),
            },
        }
    }

    fn flag(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(self.error(key, format!("{v} is not true or false"))),
        }
    }

    fn text(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim())),
            Some(v) => Err(self.error(key, format!("{v} is not a non-empty string"))),
        }
    }

    fn publish(&self, base: PublishSettings) -> Result<PublishSettings, ConfigError> {
        Ok(PublishSettings {
            depth_first_all: self
                .flag("publish_depth_first_all")?
                .unwrap_or(base.depth_first_all),
            breadth_first_all: self
                .flag("publish_breadth_first_all")?
                .unwrap_or(base.breadth_first_all),
            depth_first: self.flag("publish_depth_first")?.unwrap_or(base.depth_first),
            breadth_first: self.flag("publish_breadth_first")?.unwrap_or(base.breadth_first),
        })
    }

    fn only(&self, known: &[&str]) -> Result<(), ConfigError> {
        for key in self.map.keys() {
            if !known.contains(&key.as_str()) && !IGNORED.contains(&key.as_str()) {
                return Err(self.error(key, format!("unknown key (known: {})", known.join(", "))));
            }
        }
        Ok(())
    }
}

fn as_map<'a>(config: &'a str, value: &'a Value) -> Result<Reader<'a>, ConfigError> {
    match value {
        Value::Map(map) => Ok(Reader { config, map }),
        other => Err(ConfigError {
            config: config.to_owned(),
            key: String::new(),
            reason: format!("expected a JSON object, found {other}"),
        }),
    }
}

const PUBLISH_KEYS: [&str; 4] = [
    "publish_depth_first_all",
    "publish_breadth_first_all",
    "publish_depth_first",
    "publish_breadth_first",
];

impl DriverSettings {
    /// Parses the agent's `config` entry.
    pub fn parse(value: &Value) -> Result<DriverSettings, ConfigError> {
        let r = as_map("config", value)?;
        let mut known = vec!["driver_scrape_interval", "group_offset_interval", "timeout"];
        known.extend(PUBLISH_KEYS);
        r.only(&known)?;
        let defaults = DriverSettings::default();
        let timeout = r.seconds("timeout")?.unwrap_or(defaults.timeout);
        if timeout.is_zero() {
            return Err(r.error("timeout", "must be more than 0"));
        }
        Ok(DriverSettings {
            stagger: r.seconds("driver_scrape_interval")?.unwrap_or(defaults.stagger),
            group_offset: r
                .seconds("group_offset_interval")?
                .unwrap_or(defaults.group_offset),
            publish: r.publish(defaults.publish)?,
            timeout,
        })
    }

    /// VOLTTRON keys present in `value` that have no effect here.
    pub fn ignored_keys(value: &Value) -> Vec<String> {
        match value {
            Value::Map(map) => map
                .keys()
                .filter(|k| IGNORED.contains(&k.as_str()))
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One device's configuration entry.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    /// The device's path: the entry's name without `devices/`.
    pub path: String,
    /// `driver_type`.
    pub driver_type: String,
    /// `driver_config`.
    pub driver_config: Value,
    /// `registry_config`, resolved by the configuration store.
    pub registry: Value,
    /// `interval`.
    pub interval: Duration,
    /// `timezone`, published in the metadata.
    pub timezone: String,
    /// `heart_beat_point`.
    pub heart_beat_point: Option<String>,
    /// `group`.
    pub group: u32,
    /// `timeout`.
    pub timeout: Duration,
    /// Where scrapes are published.
    pub publish: PublishSettings,
}

impl DeviceConfig {
    /// Parses entry `name` (`devices/<path>`).
    pub fn parse(name: &str, value: &Value, settings: &DriverSettings) -> Result<DeviceConfig, ConfigError> {
        let r = as_map(name, value)?;
        let mut known = vec![
            "driver_config",
            "driver_type",
            "registry_config",
            "interval",
            "timezone",
            "heart_beat_point",
            "group",
            "timeout",
            // VOLTTRON 4's split path, ignored when the entry's name gives the path.
            "campus",
            "building",
            "unit",
            "path",
        ];
        known.extend(PUBLISH_KEYS);
        r.only(&known)?;
        let path = crate::agents::device_path::device_path(name);
        if path.is_empty() || path.split('/').any(|p| p.is_empty() || p == "all") {
            return Err(r.error("", format!("{name:?} is not devices/<campus>/<building>/<unit>")));
        }
        let driver_type = r
            .text("driver_type")?
            .ok_or_else(|| r.error("driver_type", "required"))?
            .to_owned();
        let driver_config = match r.map.get("driver_config") {
            Some(v @ Value::Map(_)) => v.clone(),
            None | Some(Value::Null) => Value::Map(Map::new()),
            Some(v) => return Err(r.error("driver_config", format!("{v} is not an object"))),
        };
        let registry = match r.map.get("registry_config") {
            Some(v @ Value::List(_)) => v.clone(),
            None | Some(Value::Null) => return Err(r.error("registry_config", "required")),
            Some(Value::String(s)) => {
                return Err(r.error(
                    "registry_config",
                    format!("{s:?} is not a stored configuration (config://<name>)"),
                ));
            }
            Some(v) => return Err(r.error("registry_config", format!("{v} is not a registry"))),
        };
        let interval = r.seconds("interval")?.unwrap_or(Duration::from_secs(60));
        if interval < Duration::from_millis(10) {
            return Err(r.error("interval", "must be at least 0.01 s"));
        }
        let timeout = r.seconds("timeout")?.unwrap_or(settings.timeout);
        if timeout.is_zero() {
            return Err(r.error("timeout", "must be more than 0"));
        }
        let group = match r.map.get("group") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_i64()
                .and_then(|g| u32::try_from(g).ok())
                .ok_or_else(|| r.error("group", format!("{v} is not a group number ≥ 0")))?,
        };
        Ok(DeviceConfig {
            path: path.to_owned(),
            driver_type,
            driver_config,
            registry,
            interval,
            timezone: r.text("timezone")?.unwrap_or("UTC").to_owned(),
            heart_beat_point: r.text("heart_beat_point")?.map(str::to_owned),
            group,
            timeout,
            publish: r.publish(settings.publish)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Value {
        Value::from_json_str(s).unwrap()
    }

    #[test]
    fn settings_take_volttron_keys() {
        let s = DriverSettings::parse(&json(
            r#"{"driver_scrape_interval": 0.05, "publish_depth_first": true, "max_open_sockets": 5}"#,
        ))
        .unwrap();
        assert_eq!(s.stagger, Duration::from_millis(50));
        assert!(s.publish.depth_first && s.publish.depth_first_all);
        let e = DriverSettings::parse(&json(r#"{"publish_depth_first": "maybe"}"#)).unwrap_err();
        assert_eq!(e.key, "publish_depth_first");
        let e = DriverSettings::parse(&json(r#"{"scrape": 1}"#)).unwrap_err();
        assert!(e.to_string().contains("unknown key"), "{e}");
    }

    #[test]
    fn a_device_entry() {
        let settings = DriverSettings::default();
        let d = DeviceConfig::parse(
            "devices/campus/b/rtu1",
            &json(
                r#"{"driver_config": {}, "driver_type": "fake", "registry_config": [], "interval": 5,
                     "heart_beat_point": "Heartbeat", "publish_depth_first_all": false}"#,
            ),
            &settings,
        )
        .unwrap();
        assert_eq!(
            (d.path.as_str(), d.interval),
            ("campus/b/rtu1", Duration::from_secs(5))
        );
        assert!(!d.publish.depth_first_all);
        let e = DeviceConfig::parse("devices/x", &json(r#"{"driver_type": "fake"}"#), &settings).unwrap_err();
        assert_eq!(e.to_string(), "devices/x: \"registry_config\": required");
        let e = DeviceConfig::parse(
            "devices/x",
            &json(r#"{"driver_type": "fake", "registry_config": [], "interval": -1}"#),
            &settings,
        )
        .unwrap_err();
        assert_eq!(e.key, "interval");
        let e = DeviceConfig::parse("devices/a//b", &json(r#"{}"#), &settings).unwrap_err();
        assert!(e.reason.contains("devices/<campus>"), "{e}");
    }
}
