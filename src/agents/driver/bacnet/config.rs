//! A BACnet device's `driver_config`, as VOLTTRON's BACnet driver reads it.
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `device_address` | required | the device's BACnet/IP address, `IP` or `IP:port` (port 47808) |
//! | `device_id` | required | the device object's instance (checked: 0 ..= 4194302) |
//! | `min_priority` | 8 | the lowest-numbered (highest) priority a point may write at |
//! | `max_per_request` | 24 | points per ReadPropertyMultiple |
//! | `use_read_multiple` | `true` | `false`: scrape with ReadProperty only |
//! | `timeout` | the device's timeout | seconds one request may take |
//! | `local_address` | `0.0.0.0:0` | this side's UDP address (an extension: VOLTTRON's proxy agent has it) |
//! | `cov_lifetime` | 180 | seconds a COV subscription lasts; renewed 3 s before it ends (VOLTTRON's `COV_UPDATE_BUFFER`), at half its lifetime when it is shorter than 6 s |
//! | `proxy_address`, `ping_retry_interval` | — | accepted and ignored: no proxy agent here |
//!
//! A routed address (`network:mac`, a device behind a BACnet router) is refused with a
//! [`DriverError::Config`] naming it.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use crate::core::Value;

use super::super::interface::DriverError;

/// The standard BACnet/IP UDP port (0xBAC0).
pub const BACNET_PORT: u16 = 47808;

/// The largest device instance (2^22 - 2; 4194303 is the wildcard).
const MAX_DEVICE_INSTANCE: u64 = 4_194_302;

/// One BACnet device's `driver_config`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BacnetConfig {
    /// `device_address`.
    pub device_address: SocketAddrV4,
    /// `device_id`.
    pub device_id: u32,
    /// `min_priority` (1 ..= 16).
    pub min_priority: u8,
    /// `max_per_request` (at least 1).
    pub max_per_request: usize,
    /// `use_read_multiple`.
    pub use_read_multiple: bool,
    /// `timeout`, or the device's timeout.
    pub timeout: Duration,
    /// `local_address`.
    pub local_address: SocketAddrV4,
    /// `cov_lifetime`, seconds (at least 1).
    pub cov_lifetime: u32,
}

impl BacnetConfig {
    /// Reads `driver_config`; `timeout` is the device's own (the platform driver's default)
    /// when `driver_config` has none.
    pub fn parse(config: &Value, timeout: Duration) -> Result<BacnetConfig, DriverError> {
        if config.as_map().is_none() {
            return Err(bad(format!("must be an object, not {}", config.type_name())));
        }
        let device_address = match config.get("device_address") {
            None | Some(Value::Null) => return Err(bad("device_address: required")),
            Some(Value::String(text)) => socket_address("device_address", text, BACNET_PORT)?,
            Some(other) => {
                return Err(bad(format!(
                    "device_address: a string, not {}",
                    other.type_name()
                )));
            }
        };
        let device_id = match integer(config, "device_id")? {
            None => return Err(bad("device_id: required")),
            Some(id) if id <= MAX_DEVICE_INSTANCE => id as u32,
            Some(id) => return Err(bad(format!("device_id: {id} is above {MAX_DEVICE_INSTANCE}"))),
        };
        let min_priority = match integer(config, "min_priority")? {
            None => 8,
            Some(p @ 1..=16) => p as u8,
            Some(p) => return Err(bad(format!("min_priority: {p} is not in 1..=16"))),
        };
        let max_per_request = match integer(config, "max_per_request")? {
            None => 24,
            Some(0) => return Err(bad("max_per_request: must be at least 1")),
            Some(n) => usize::try_from(n).map_err(|_| bad("max_per_request: too large"))?,
        };
        let use_read_multiple = match config.get("use_read_multiple") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(other) => return Err(bad(format!("use_read_multiple: a boolean, not {other:?}"))),
        };
        let timeout = match config.get("timeout") {
            None | Some(Value::Null) => timeout,
            Some(value) => match number(value) {
                Some(secs) if secs > 0.0 && secs.is_finite() => Duration::from_secs_f64(secs),
                _ => {
                    return Err(bad(format!(
                        "timeout: a positive number of seconds, not {value:?}"
                    )));
                }
            },
        };
        let local_address = match config.get("local_address") {
            None | Some(Value::Null) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            Some(Value::String(text)) => socket_address("local_address", text, 0)?,
            Some(other) => return Err(bad(format!("local_address: a string, not {}", other.type_name()))),
        };
        let cov_lifetime = match integer(config, "cov_lifetime")? {
            None => 180,
            Some(n @ 1..=0xFFFF_FFFF) => n as u32,
            Some(n) => return Err(bad(format!("cov_lifetime: {n} is not a number of seconds >= 1"))),
        };
        Ok(BacnetConfig {
            device_address,
            device_id,
            min_priority,
            max_per_request,
            use_read_multiple,
            timeout,
            local_address,
            cov_lifetime,
        })
    }
}

fn bad(reason: impl Into<String>) -> DriverError {
    DriverError::Config(reason.into())
}

/// `IP` or `IP:port`.
fn socket_address(key: &str, text: &str, default_port: u16) -> Result<SocketAddrV4, DriverError> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Ok(SocketAddrV4::new(ip, default_port));
    }
    if let Ok(address) = text.parse::<SocketAddrV4>() {
        return Ok(address);
    }
    let routed = text
        .split_once(':')
        .is_some_and(|(net, _)| net.parse::<u16>().is_ok());
    let why = if routed {
        "a routed address (network:mac) is not supported; give the device's own IPv4 address"
    } else {
        "not an IPv4 address or IPv4:port"
    };
    Err(bad(format!("{key}: {text:?}: {why}")))
}

/// An integer given as a number or a numeric string.
fn integer(config: &Value, key: &str) -> Result<Option<u64>, DriverError> {
    let value = match config.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let parsed = match value {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::UInt(u) => Some(*u),
        Value::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64 => Some(*f as u64),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed
        .map(Some)
        .ok_or_else(|| bad(format!("{key}: a non-negative integer, not {value:?}")))
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) => s.trim().parse().ok(),
        other => other.as_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BacnetConfig, DriverError> {
        BacnetConfig::parse(&Value::from_json_str(json).unwrap(), Duration::from_secs(5))
    }

    #[test]
    fn defaults_are_volttrons() {
        let c = parse(r#"{"device_address": "10.0.0.5", "device_id": 500}"#).unwrap();
        assert_eq!(c.device_address, "10.0.0.5:47808".parse().unwrap());
        assert_eq!((c.device_id, c.min_priority, c.max_per_request), (500, 8, 24));
        assert!(c.use_read_multiple);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.cov_lifetime, 180);
    }

    #[test]
    fn keys_as_strings_and_a_port() {
        let c = parse(r#"{"device_address": "127.0.0.2:47809", "device_id": "7", "timeout": "1.5", "max_per_request": 2}"#)
            .unwrap();
        assert_eq!(c.device_address.port(), 47809);
        assert_eq!((c.device_id, c.max_per_request), (7, 2));
        assert_eq!(c.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn bad_keys_are_named() {
        for (json, needle) in [
            (r#"{"device_id": 1}"#, "device_address: required"),
            (
                r#"{"device_address": "1000:12", "device_id": 1}"#,
                "routed address",
            ),
            (r#"{"device_address": "host", "device_id": 1}"#, "not an IPv4"),
            (r#"{"device_address": "10.0.0.1"}"#, "device_id: required"),
            (
                r#"{"device_address": "10.0.0.1", "device_id": -1}"#,
                "device_id: a non-negative",
            ),
            (r#"{"device_address": "10.0.0.1", "device_id": 4194303}"#, "above"),
            (
                r#"{"device_address": "10.0.0.1", "device_id": 1, "min_priority": 17}"#,
                "min_priority",
            ),
            (
                r#"{"device_address": "10.0.0.1", "device_id": 1, "max_per_request": 0}"#,
                "at least 1",
            ),
            (
                r#"{"device_address": "10.0.0.1", "device_id": 1, "timeout": 0}"#,
                "timeout",
            ),
            (
                r#"{"device_address": "10.0.0.1", "device_id": 1, "cov_lifetime": 0}"#,
                "cov_lifetime: 0 is not",
            ),
            (r#"[1]"#, "must be an object"),
        ] {
            let e = parse(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
