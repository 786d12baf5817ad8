//! A Modbus device's `driver_config`, as VOLTTRON's Modbus drivers read it.
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `device_address` | required | the device's IP address or host name |
//! | `port` | `502` | its TCP port |
//! | `slave_id` (or `unit_id`) | `1` | the unit identifier of each request |
//! | `addressing` | `offset` | how `Point Address` counts: `offset` (or `exact`): the protocol's zero-based address; `offset_plus`: one-based; `address`: table-prefixed (`40001` is holding register 0, `30001` input 0, `10001` discrete input 0, `1` coil 0) |
//! | `byte_order` | `big` | a point's byte order when its row gives none |
//! | `word_order` (or `endian`) | `big` | a point's word order when its row gives none |
//! | `write_multiple_registers` | `true` | one-register writes as function 16 (write multiple registers, as VOLTTRON) or, `false`, function 6 |
//! | `max_read_registers` | `125` | registers per read request (`1..=125`); coils and discrete inputs: 16 times as many, at most 2000 |
//! | `max_gap` | `0` | unconfigured registers a read may span to join two runs into one request |

use std::net::SocketAddr;

use crate::core::Value;

use super::super::interface::DriverError;
use super::codec::{ByteOrder, WordOrder};
use super::point::Table;

/// The most registers one read may ask for (Modbus's limit for function 3 and 4).
pub const MAX_READ_REGISTERS: u16 = 125;

/// The most bits one read of coils or discrete inputs may ask for.
pub const MAX_READ_BITS: u16 = 2000;

/// How `Point Address` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Addressing {
    /// The protocol's zero-based address.
    #[default]
    Offset,
    /// One-based, as in many vendor manuals.
    OffsetPlus,
    /// Table-prefixed one-based (`40001` ...).
    Address,
}

/// The parsed `driver_config`; see the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusConfig {
    /// `device_address` and `port`, as given (resolved on every connect).
    pub host: String,
    /// `port`.
    pub port: u16,
    /// `slave_id`.
    pub slave: u8,
    /// `addressing`.
    pub addressing: Addressing,
    /// `byte_order`.
    pub byte_order: ByteOrder,
    /// `word_order`.
    pub word_order: WordOrder,
    /// `write_multiple_registers`.
    pub write_multiple_registers: bool,
    /// `max_read_registers`.
    pub max_read_registers: u16,
    /// `max_gap`.
    pub max_gap: u16,
}

fn config_error(reason: impl Into<String>) -> DriverError {
    DriverError::Config(reason.into())
}

impl ModbusConfig {
    /// Parses a `driver_config` object.
    pub fn parse(config: &Value) -> Result<ModbusConfig, DriverError> {
        let Value::Map(map) = config else {
            return Err(config_error(format!("expected an object, found {config}")));
        };
        let get = |keys: &[&str]| keys.iter().find_map(|k| map.get(*k).filter(|v| !v.is_null()));
        let host = match get(&["device_address"]) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(other) => return Err(config_error(format!("device_address: {other} is not an address"))),
            None => return Err(config_error("device_address is required")),
        };
        let integer = |key: &str, value: Option<&Value>, min: u64, max: u64, default: u64| {
            let Some(value) = value else { return Ok(default) };
            let n = match value {
                Value::String(s) => s.trim().parse::<u64>().ok(),
                other => other.as_u64(),
            };
            n.filter(|n| (min..=max).contains(n))
                .ok_or_else(|| config_error(format!("{key}: {value} is not an integer in {min}..={max}")))
        };
        let port = integer("port", get(&["port"]), 1, 65535, 502)? as u16;
        let slave = integer("slave_id", get(&["slave_id", "unit_id"]), 0, 255, 1)? as u8;
        let max_read_registers = integer(
            "max_read_registers",
            get(&["max_read_registers"]),
            1,
            MAX_READ_REGISTERS.into(),
            MAX_READ_REGISTERS.into(),
        )? as u16;
        let max_gap = integer("max_gap", get(&["max_gap"]), 0, MAX_READ_REGISTERS.into(), 0)? as u16;
        let word = |key: &str, value: Option<&Value>| -> Result<Option<String>, DriverError> {
            match value {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_ascii_lowercase())),
                Some(other) => Err(config_error(format!("{key}: {other} is not a string"))),
            }
        };
        let addressing = match word("addressing", get(&["addressing"]))?.as_deref() {
            None | Some("offset" | "exact" | "") => Addressing::Offset,
            Some("offset_plus") => Addressing::OffsetPlus,
            Some("address") => Addressing::Address,
            Some(other) => {
                return Err(config_error(format!(
                    "addressing: {other:?} is not offset, offset_plus or address"
                )));
            }
        };
        let byte_order = match word("byte_order", get(&["byte_order"]))?.as_deref() {
            None | Some("big" | "") => ByteOrder::Big,
            Some("little") => ByteOrder::Little,
            Some(other) => {
                return Err(config_error(format!(
                    "byte_order: {other:?} is not big or little"
                )));
            }
        };
        let word_order = match word("word_order", get(&["word_order", "endian"]))?.as_deref() {
            None | Some("big" | "") => WordOrder::Big,
            Some("little") => WordOrder::Little,
            Some(other) => {
                return Err(config_error(format!(
                    "word_order: {other:?} is not big or little"
                )));
            }
        };
        let write_multiple_registers = match get(&["write_multiple_registers"]) {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(other) => {
                return Err(config_error(format!(
                    "write_multiple_registers: {other} is not true or false"
                )));
            }
        };
        Ok(ModbusConfig {
            host,
            port,
            slave,
            addressing,
            byte_order,
            word_order,
            write_multiple_registers,
            max_read_registers,
            max_gap,
        })
    }

    /// The most registers (or bits) one read of `table` may ask for.
    pub fn max_read(&self, table: Table) -> u16 {
        if table.is_bits() {
            (self.max_read_registers * 16).min(MAX_READ_BITS)
        } else {
            self.max_read_registers
        }
    }

    /// The device's socket address: `device_address` resolved (without blocking the
    /// thread) with `port`.
    pub async fn socket_addr(&self) -> Result<SocketAddr, DriverError> {
        if let Ok(ip) = self.host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| DriverError::Connection(format!("resolve {}: {e}", self.host)))?
            .next()
            .ok_or_else(|| DriverError::Connection(format!("{} has no address", self.host)))
    }
}

impl Addressing {
    /// The protocol address of registry address `address` in `table`, or why there is none.
    pub fn resolve(self, address: u32, table: Table) -> Result<u16, String> {
        let base = match self {
            Addressing::Offset => 0,
            Addressing::OffsetPlus => 1,
            Addressing::Address => table.base_address(),
        };
        let resolved = address.checked_sub(base).ok_or_else(|| {
            format!(
                "{address} is below {base}, the first {} address with this addressing",
                table.name()
            )
        })?;
        u16::try_from(resolved)
            .map_err(|_| format!("{address} is beyond the {} table (65536 addresses)", table.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ModbusConfig, DriverError> {
        ModbusConfig::parse(&Value::from_json_str(json).unwrap())
    }

    #[test]
    fn defaults_and_keys() {
        let c = parse(r#"{"device_address": "127.0.0.1"}"#).unwrap();
        assert_eq!((c.port, c.slave, c.addressing), (502, 1, Addressing::Offset));
        assert!(c.write_multiple_registers);
        let c = parse(
            r#"{"device_address": "10.0.0.2", "port": "1502", "unit_id": 7, "addressing": "address", "endian": "little", "write_multiple_registers": false}"#,
        )
        .unwrap();
        assert_eq!(
            (c.port, c.slave, c.addressing, c.word_order),
            (1502, 7, Addressing::Address, WordOrder::Little)
        );
        assert!(!c.write_multiple_registers);
    }

    #[test]
    fn errors_name_the_key() {
        for (json, key) in [
            (r#"{}"#, "device_address"),
            (r#"{"device_address": "h", "port": 70000}"#, "port"),
            (r#"{"device_address": "h", "slave_id": -1}"#, "slave_id"),
            (r#"{"device_address": "h", "addressing": "x"}"#, "addressing"),
            (
                r#"{"device_address": "h", "max_read_registers": 126}"#,
                "max_read_registers",
            ),
        ] {
            let e = parse(json).unwrap_err().to_string();
            assert!(e.contains(key), "{json}: {e}");
        }
    }

    #[test]
    fn addressing_resolves_per_table() {
        assert_eq!(Addressing::Address.resolve(40001, Table::Holding), Ok(0));
        assert_eq!(Addressing::Address.resolve(30010, Table::Input), Ok(9));
        assert_eq!(Addressing::OffsetPlus.resolve(1, Table::Coil), Ok(0));
        assert!(Addressing::Address.resolve(100, Table::Holding).is_err());
        assert!(Addressing::Offset.resolve(65536, Table::Holding).is_err());
    }
}
