//! A Modbus registry row: where a point is and how its value is stored.
//!
//! Both VOLTTRON registry styles are read (the first of the listed columns that is not
//! empty counts):
//!
//! | column | VOLTTRON `modbus` | modbus_tk style | meaning |
//! |--------|-------------------|-----------------|---------|
//! | type | `Modbus Register` (`>f`, `>H`, `<i`, `BOOL`) | `Type` / `Data Type` (`bool`, `uint16`, `int16`, `uint32`, `int32`, `uint64`, `int64`, `float`, `double`) | the stored type; a struct format's `>`/`<` is the byte order |
//! | address | `Point Address` | `Point Address` / `Address` | decimal or `0x` hexadecimal, counted per the device's `addressing` |
//! | table | — (bools: coil if `Writable`, else discrete input; others: holding if `Writable`, else input register) | `Table`: `coil(s)`, `discrete_input(s)`, `holding` / `holding_register(s)`, `input` / `input_register(s)` (and modbus_tk's longer names) | which of the four tables |
//! | byte order | the struct format's `>`/`<` | `Byte Order`: `big` / `little` | order of the value's bytes |
//! | word order | `Mixed Endian`: `TRUE` is little | `Word Order`: `big` / `little` | order of its registers |
//! | scale | — | `Transform`: `scale(m)` / `scale_int(m)`, or `Scale`: `m` | read values are multiplied by `m`, writes divided (see [`codec`](super::codec)) |
//! | default | `Default Value` | `Default Value` | what `revert_point` writes (writable points) |
//!
//! Every mistake is a [`RegistryError`] naming the device, the row and the column.

use crate::core::Value;

use super::super::interface::{PointKind, PointMeta};
use super::super::registry::{RegistryError, RegistryRow};
use super::codec::{ByteOrder, DataType, Encoding, Scale, WordOrder};
use super::config::ModbusConfig;

/// One of Modbus's four data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Read/write bits (function 1, 5, 15).
    Coil,
    /// Read-only bits (function 2).
    DiscreteInput,
    /// Read/write registers (function 3, 6, 16).
    Holding,
    /// Read-only registers (function 4).
    Input,
}

impl Table {
    /// Whether the table holds bits rather than registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::DiscreteInput)
    }

    /// Whether the table can be written.
    pub fn is_writable(self) -> bool {
        matches!(self, Table::Coil | Table::Holding)
    }

    /// The first address of the table in table-prefixed addressing.
    pub fn base_address(self) -> u32 {
        match self {
            Table::Coil => 1,
            Table::DiscreteInput => 10001,
            Table::Input => 30001,
            Table::Holding => 40001,
        }
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::DiscreteInput => "discrete input",
            Table::Holding => "holding register",
            Table::Input => "input register",
        }
    }

    fn parse(text: &str) -> Option<Table> {
        let key = text.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        Some(match key.as_str() {
            "coil" | "coils" | "discrete_output" | "discrete_output_coils" => Table::Coil,
            "discrete_input" | "discrete_inputs" | "contact" | "contacts" | "discrete_input_contacts" => {
                Table::DiscreteInput
            }
            "holding"
            | "holding_register"
            | "holding_registers"
            | "analog_output"
            | "analog_output_holding_registers" => Table::Holding,
            "input" | "input_register" | "input_registers" | "analog_input" | "analog_input_registers" => {
                Table::Input
            }
            _ => return None,
        })
    }
}

/// One point of a Modbus device.
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusPoint {
    /// What every driver type says about a point.
    pub meta: PointMeta,
    /// Its table.
    pub table: Table,
    /// Its protocol (zero-based) address.
    pub address: u16,
    /// How its value is stored.
    pub encoding: Encoding,
    /// `Default Value`, checked against the encoding, for writable points.
    pub default: Option<Value>,
}

impl ModbusPoint {
    /// The registers (or bits) the point takes.
    pub fn width(&self) -> u16 {
        self.encoding.data_type.width()
    }

    /// Parses one registry row.
    pub fn parse(row: &RegistryRow, config: &ModbusConfig) -> Result<ModbusPoint, RegistryError> {
        let first = |columns: &[&'static str]| columns.iter().find_map(|c| row.get(c).map(|v| (*c, v)));

        let type_columns = ["Modbus Register", "Type", "Data Type"];
        let (type_column, type_text) = first(&type_columns)
            .ok_or_else(|| row.error("Modbus Register", "required (or Type), but empty or missing"))?;
        let (data_type, struct_order) = DataType::parse(type_text).map_err(|e| row.error(type_column, e))?;

        let writable = row.boolean("Writable", false)?;
        let table = match first(&["Table"]) {
            Some((column, text)) => Table::parse(text).ok_or_else(|| {
                row.error(
                    column,
                    format!("{text:?} is not a table: coil, discrete_input, holding or input"),
                )
            })?,
            None => match (data_type == DataType::Bool, writable) {
                (true, true) => Table::Coil,
                (true, false) => Table::DiscreteInput,
                (false, true) => Table::Holding,
                (false, false) => Table::Input,
            },
        };
        if table.is_bits() != (data_type == DataType::Bool) {
            let column = if first(&["Table"]).is_some() {
                "Table"
            } else {
                type_column
            };
            let reason = if table.is_bits() {
                format!(
                    "a {} holds one bit: its type must be bool, not {}",
                    table.name(),
                    data_type.name()
                )
            } else {
                format!("a bool is a coil or a discrete input, not a {}", table.name())
            };
            return Err(row.error(column, reason));
        }
        if writable && !table.is_writable() {
            return Err(row.error(
                "Writable",
                format!(
                    "TRUE, but a {} is read-only (use a coil or a holding register)",
                    table.name()
                ),
            ));
        }

        let (address_column, address_text) = first(&["Point Address", "Address"])
            .ok_or_else(|| row.error("Point Address", "required, but empty or missing"))?;
        let registry_address = parse_address(address_text).map_err(|e| row.error(address_column, e))?;
        let address = config
            .addressing
            .resolve(registry_address, table)
            .map_err(|e| row.error(address_column, e))?;
        if u32::from(address) + u32::from(data_type.width()) > 65536 {
            return Err(row.error(
                address_column,
                format!(
                    "a {} at {address} runs past the last address, 65535",
                    data_type.name()
                ),
            ));
        }

        let byte_order = match (struct_order, first(&["Byte Order"])) {
            (order, None) => order.unwrap_or(config.byte_order),
            (order, Some((column, text))) => {
                let given = match text.to_ascii_lowercase().as_str() {
                    "big" => ByteOrder::Big,
                    "little" => ByteOrder::Little,
                    _ => return Err(row.error(column, format!("{text:?} is not big or little"))),
                };
                if order.is_some_and(|o| o != given) {
                    return Err(row.error(
                        column,
                        format!("{text} contradicts the byte order of {type_column} {type_text:?}"),
                    ));
                }
                given
            }
        };
        // `Mixed Endian`, when given (TRUE or FALSE), is the word order too.
        let mixed = match row.get("Mixed Endian") {
            None => None,
            Some(_) => Some(match row.boolean("Mixed Endian", false)? {
                true => WordOrder::Little,
                false => WordOrder::Big,
            }),
        };
        let word_order = match first(&["Word Order"]) {
            None => mixed.unwrap_or(config.word_order),
            Some((column, text)) => {
                let given = match text.to_ascii_lowercase().as_str() {
                    "big" => WordOrder::Big,
                    "little" => WordOrder::Little,
                    _ => return Err(row.error(column, format!("{text:?} is not big or little"))),
                };
                if mixed.is_some_and(|m| m != given) {
                    return Err(row.error(column, format!("{text} contradicts Mixed Endian")));
                }
                given
            }
        };

        let scale = parse_scale(row, data_type)?;
        let encoding = Encoding {
            data_type,
            byte_order,
            word_order,
            scale,
        };
        let kind = match (data_type, scale) {
            (DataType::Bool, _) => PointKind::Boolean,
            (_, Some(Scale { integer: true, .. })) => PointKind::Integer,
            (DataType::F32 | DataType::F64, _) | (_, Some(_)) => PointKind::Float,
            _ => PointKind::Integer,
        };
        let meta = row.point_meta(kind)?;

        let default = match row.get("Default Value") {
            Some(text) if meta.writable => {
                let value = Value::String(text.to_owned());
                encoding
                    .encode(&value)
                    .map_err(|e| row.error("Default Value", e))?;
                Some(value)
            }
            _ => None,
        };
        Ok(ModbusPoint {
            meta,
            table,
            address,
            encoding,
            default,
        })
    }
}

fn parse_address(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse::<u32>(),
    };
    parsed.map_err(|_| {
        format!("{text:?} is not an address (a non-negative integer, decimal or 0x hexadecimal)")
    })
}

fn parse_scale(row: &RegistryRow, data_type: DataType) -> Result<Option<Scale>, RegistryError> {
    let (column, multiplier, integer) = if let Some(text) = row.get("Transform") {
        let parsed = [("scale(", false), ("scale_int(", true)]
            .iter()
            .find_map(|(f, integer)| text.strip_prefix(f).map(|rest| (rest, *integer)))
            .and_then(|(rest, integer)| rest.strip_suffix(')').map(|inner| (inner, integer)));
        let Some((inner, integer)) = parsed else {
            return Err(row.error(
                "Transform",
                format!("{text:?} is not supported: use scale(m) or scale_int(m)"),
            ));
        };
        match inner.trim().parse::<f64>() {
            Ok(m) => ("Transform", m, integer),
            Err(_) => return Err(row.error("Transform", format!("{text:?}: {inner:?} is not a number"))),
        }
    } else if let Some(m) = row.parse::<f64>("Scale")? {
        ("Scale", m, false)
    } else {
        return Ok(None);
    };
    if !multiplier.is_finite() || multiplier == 0.0 {
        return Err(row.error(
            column,
            format!("the multiplier must be a non-zero number, not {multiplier}"),
        ));
    }
    if data_type == DataType::Bool {
        return Err(row.error(column, "a bool cannot be scaled"));
    }
    Ok(Some(Scale { multiplier, integer }))
}
