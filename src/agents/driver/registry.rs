//! A device's registry: the CSV (or JSON list) of its points, as VOLTTRON's drivers read it.
//!
//! The configuration store has already turned the CSV into a list of maps (header → cell);
//! [`Registry::parse`] keeps each row with its line number in the file, and the accessors
//! of [`RegistryRow`] give every driver type the same precise errors: the device, the line
//! and the column.
//!
//! | column | read by | meaning |
//! |--------|---------|---------|
//! | `Volttron Point Name` (or `Point Name`) | every driver type | the point's name on the bus |
//! | `Units` | every driver type | published in the metadata |
//! | `Writable` | every driver type | `TRUE`/`FALSE` (also `yes`/`no`, `1`/`0`; empty is `FALSE`) |
//! | others | the driver type | `Type` and `Starting Value` (fake), `Point Address`, `Modbus Register`... |

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::core::Value;

use super::interface::{PointKind, PointMeta};

/// A malformed registry row: which device, which line of the CSV, which column, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device {device}: registry {config}, row {row}, column {column:?}: {reason}")]
pub struct RegistryError {
    /// The device's path.
    pub device: String,
    /// The registry's configuration name (`modbus.csv`).
    pub config: String,
    /// The line in the CSV file (the header is line 1), or the 1-based index in a JSON list.
    pub row: usize,
    /// The column.
    pub column: String,
    /// What is wrong.
    pub reason: String,
}

/// A device's registry, row by row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Registry {
    /// The device's path.
    pub device: String,
    /// The registry's configuration name.
    pub config: String,
    /// The rows, in file order.
    pub rows: Vec<RegistryRow>,
}

/// One row of a registry.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryRow {
    device: String,
    config: String,
    /// The line in the CSV file (header = 1).
    pub row: usize,
    cells: BTreeMap<String, String>,
}

impl Registry {
    /// Parses a registry as the configuration store returns it: a list of maps. `csv` says
    /// whether it came from a CSV file (rows are then numbered from line 2).
    pub fn parse(device: &str, config: &str, contents: &Value, csv: bool) -> Result<Registry, RegistryError> {
        let error = |row: usize, column: &str, reason: String| RegistryError {
            device: device.to_owned(),
            config: config.to_owned(),
            row,
            column: column.to_owned(),
            reason,
        };
        let Value::List(items) = contents else {
            return Err(error(
                0,
                "",
                "a registry is a CSV file or a JSON list of objects".into(),
            ));
        };
        let mut rows = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let row = if csv { i + 2 } else { i + 1 };
            let Value::Map(map) = item else {
                return Err(error(row, "", format!("expected an object, found {item}")));
            };
            let mut cells = BTreeMap::new();
            for (column, cell) in map {
                let text = match cell {
                    Value::Null => continue,
                    Value::String(s) => s.trim().to_owned(),
                    other => other.to_json_string(),
                };
                cells.insert(column.trim().to_owned(), text);
            }
            // Blank lines (every cell empty) are skipped, as DictReader-fed drivers do.
            if cells.values().all(String::is_empty) {
                continue;
            }
            rows.push(RegistryRow {
                device: device.to_owned(),
                config: config.to_owned(),
                row,
                cells,
            });
        }
        let registry = Registry {
            device: device.to_owned(),
            config: config.to_owned(),
            rows,
        };
        registry.check_unique_names()?;
        Ok(registry)
    }

    fn check_unique_names(&self) -> Result<(), RegistryError> {
        let mut seen = BTreeMap::new();
        for row in &self.rows {
            let name = row.point_name()?;
            if let Some(first) = seen.insert(name.to_owned(), row.row) {
                return Err(row.error(
                    row.name_column(),
                    format!("point {name:?} is already defined on row {first}"),
                ));
            }
        }
        Ok(())
    }
}

impl RegistryRow {
    /// An error about `column` of this row.
    pub fn error(&self, column: &str, reason: impl Into<String>) -> RegistryError {
        RegistryError {
            device: self.device.clone(),
            config: self.config.clone(),
            row: self.row,
            column: column.to_owned(),
            reason: reason.into(),
        }
    }

    /// The trimmed cell of `column`; `None` when missing or empty.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.cells
            .get(column)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The cell of `column`, or an error saying it is required.
    pub fn required(&self, column: &str) -> Result<&str, RegistryError> {
        self.get(column)
            .ok_or_else(|| self.error(column, "required, but empty or missing"))
    }

    /// The cell of `column` parsed as `T`; `None` when empty.
    pub fn parse<T: FromStr>(&self, column: &str) -> Result<Option<T>, RegistryError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(column) {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|e| self.error(column, format!("{text:?}: {e}"))),
        }
    }

    /// The cell of `column` as a boolean (`true`/`false`, `yes`/`no`, `1`/`0`, any case); `default`
    /// when empty.
    pub fn boolean(&self, column: &str, default: bool) -> Result<bool, RegistryError> {
        match self.get(column).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "yes" | "1") => Ok(true),
            Some("false" | "no" | "0") => Ok(false),
            Some(other) => Err(self.error(column, format!("{other:?} is not TRUE or FALSE"))),
        }
    }

    fn name_column(&self) -> &'static str {
        if self.get("Volttron Point Name").is_some() || self.get("Point Name").is_none() {
            "Volttron Point Name"
        } else {
            "Point Name"
        }
    }

    /// `Volttron Point Name`, or `Point Name` when that column is absent.
    pub fn point_name(&self) -> Result<&str, RegistryError> {
        match self.get("Volttron Point Name").or_else(|| self.get("Point Name")) {
            Some(name) if name.contains('/') => {
                Err(self.error(self.name_column(), format!("{name:?} contains '/'")))
            }
            Some(name) => Ok(name),
            None => Err(self.error("Volttron Point Name", "required, but empty or missing")),
        }
    }

    /// The columns every driver type reads, as a [`PointMeta`] of the given kind.
    pub fn point_meta(&self, kind: PointKind) -> Result<PointMeta, RegistryError> {
        Ok(PointMeta {
            name: self.point_name()?.to_owned(),
            units: self.get("Units").unwrap_or("").to_owned(),
            kind,
            writable: self.boolean("Writable", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_store::{ConfigType, parse};

    fn registry(csv: &str) -> Result<Registry, RegistryError> {
        let value = parse(ConfigType::Csv, csv).unwrap();
        Registry::parse("campus/b/rtu1", "rtu.csv", &value, true)
    }

    #[test]
    fn rows_keep_their_line_numbers_and_names() {
        let r = registry("Volttron Point Name,Units,Writable\nTemp,degF,FALSE\n,,\nSet,degF,TRUE\n").unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[1].row, 4);
        let meta = r.rows[1].point_meta(PointKind::Float).unwrap();
        assert_eq!((meta.name.as_str(), meta.writable), ("Set", true));
    }

    #[test]
    fn errors_name_the_device_the_row_and_the_column() {
        let e = registry("Volttron Point Name,Units,Writable\nTemp,degF,maybe\n")
            .unwrap()
            .rows[0]
            .point_meta(PointKind::Float)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "device campus/b/rtu1: registry rtu.csv, row 2, column \"Writable\": \"maybe\" is not TRUE or FALSE"
        );
        let e = registry("Volttron Point Name,Units\nTemp,F\nTemp,F\n").unwrap_err();
        assert_eq!((e.row, e.column.as_str()), (3, "Volttron Point Name"));
        assert!(e.reason.contains("row 2"), "{e}");
        let e = registry("Volttron Point Name,Units\na/b,F\n").unwrap_err();
        assert_eq!(e.row, 2);
        let e = Registry::parse("d", "r", &Value::from("x"), false).unwrap_err();
        assert_eq!(e.row, 0);
    }
}
