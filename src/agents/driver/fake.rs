//! VOLTTRON's fake driver (`driver_type: "fake"`): points held in memory.
//!
//! | registry column | meaning |
//! |-----------------|---------|
//! | `Volttron Point Name` | the point; names starting with `EKG` follow a waveform |
//! | `Type` | `boolean`/`bool`, `integer`/`int`, `float`, `string` (default `string`, as VOLTTRON) |
//! | `Starting Value` | the value at start, and what `revert_point` restores; for `EKG` points, the waveform: one of VOLTTRON's `acos`, `acosh`, `asin`, `asinh`, `atan`, `atan2`, `atanh`, `sin` (the default), `sinh`, `sqrt`, `tan`, `tanh` |
//! | `Writable` | whether `set_point` may write it |
//!
//! A point without a starting value starts at a value in 0..100 derived from its name
//! (VOLTTRON draws a random one; here the same registry always gives the same values), and
//! reverts to the last value read before it was written. An `EKG` point is
//! `amplitude × f(π × second / 30)` of the platform clock's current second (the virtual
//! clock in tests), amplitude 1 until written; writing sets the amplitude, reverting
//! restores 1. An unknown waveform is an error naming the registry row (VOLTTRON logs it
//! and falls back to `sin`).

use std::collections::BTreeMap;

use crate::Clock;
use crate::core::Value;

use super::interface::{DeviceSetup, Driver, DriverError, DriverFuture, PointKind, PointMeta};
use super::registry::RegistryRow;

/// The waveforms of `EKG` points.
const WAVEFORMS: [&str; 12] = [
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "sin", "sinh", "sqrt", "tan", "tanh",
];

enum Held {
    Value(Value),
    Ekg {
        amplitude: f64,
        waveform: fn(f64) -> f64,
    },
}

struct FakePoint {
    held: Held,
    starting: Option<Value>,
}

/// The fake interface of one device.
pub struct FakeDriver {
    meta: Vec<PointMeta>,
    points: BTreeMap<String, FakePoint>,
    clock: Clock,
}

impl std::fmt::Debug for FakeDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDriver")
            .field("points", &self.meta.len())
            .finish()
    }
}

fn waveform(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "acos" => f64::acos,
        "acosh" => f64::acosh,
        "asin" => f64::asin,
        "asinh" => f64::asinh,
        "atan" => f64::atan,
        "atan2" => |x: f64| x.atan2(1.0),
        "atanh" => f64::atanh,
        "sin" => f64::sin,
        "sinh" => f64::sinh,
        "sqrt" => f64::sqrt,
        "tan" => f64::tan,
        "tanh" => f64::tanh,
        _ => return None,
    })
}

fn kind_of(row: &RegistryRow) -> Result<PointKind, super::registry::RegistryError> {
    match row.get("Type").map(str::to_ascii_lowercase).as_deref() {
        None | Some("string" | "str") => Ok(PointKind::String),
        Some("int" | "integer") => Ok(PointKind::Integer),
        Some("float") => Ok(PointKind::Float),
        Some("bool" | "boolean") => Ok(PointKind::Boolean),
        Some(other) => Err(row.error(
            "Type",
            format!("{other:?} is not boolean, integer, float or string"),
        )),
    }
}

/// Converts `value` to a point's type, as VOLTTRON's `reg_type(value)` does.
fn coerce(kind: PointKind, value: &Value) -> Result<Value, String> {
    let text = match value {
        Value::String(s) => Some(s.trim()),
        _ => None,
    };
    Ok(match kind {
        PointKind::String => match value {
            Value::String(s) => Value::String(s.clone()),
            other => Value::String(other.to_json_string()),
        },
        PointKind::Float => match (value, text) {
            (_, Some(t)) => Value::Float(
                t.parse::<f64>()
                    .map_err(|e| format!("{t:?} is not a float: {e}"))?,
            ),
            (v, _) => Value::Float(v.as_f64().ok_or_else(|| format!("{v} is not a number"))?),
        },
        PointKind::Integer => match (value, text) {
            (_, Some(t)) => Value::Int(
                t.parse::<i64>()
                    .map_err(|e| format!("{t:?} is not an integer: {e}"))?,
            ),
            (Value::Float(f), _) if f.is_finite() => Value::Int(f.trunc() as i64),
            (Value::Bool(b), _) => Value::Int(i64::from(*b)),
            (v, _) => Value::Int(v.as_i64().ok_or_else(|| format!("{v} is not an integer"))?),
        },
        PointKind::Boolean => match (value, text) {
            (_, Some(t)) => Value::Bool(match t.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" | "" => false,
                _ => return Err(format!("{t:?} is not a boolean")),
            }),
            (Value::Bool(b), _) => Value::Bool(*b),
            (v, _) => Value::Bool(v.as_f64().ok_or_else(|| format!("{v} is not a boolean"))? != 0.0),
        },
    })
}

/// A value in 0..100 from the point's name (FNV-1a): stable across runs.
fn value_from_name(name: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % 10_000) as f64 / 100.0
}

impl FakeDriver {
    /// Builds the fake device from its registry; `clock` drives the `EKG` points.
    pub fn new(setup: &DeviceSetup<'_>, clock: Clock) -> Result<FakeDriver, DriverError> {
        let mut meta = Vec::new();
        let mut points = BTreeMap::new();
        for row in &setup.registry.rows {
            let kind = kind_of(row)?;
            let name = row.point_name()?.to_owned();
            let point_meta = row.point_meta(kind)?;
            let start = row.get("Starting Value");
            let point = if name.starts_with("EKG") {
                let wave = start.unwrap_or("sin");
                let waveform = waveform(wave).ok_or_else(|| {
                    row.error(
                        "Starting Value",
                        format!("{wave:?} is not one of {}", WAVEFORMS.join(", ")),
                    )
                })?;
                FakePoint {
                    held: Held::Ekg {
                        amplitude: 1.0,
                        waveform,
                    },
                    starting: None,
                }
            } else {
                let starting = start
                    .map(|s| coerce(kind, &Value::from(s)).map_err(|e| row.error("Starting Value", e)))
                    .transpose()?;
                let initial = match &starting {
                    Some(v) => v.clone(),
                    None => coerce(kind, &Value::Float(value_from_name(&name)))
                        .map_err(|e| row.error("Type", e))?,
                };
                FakePoint {
                    held: Held::Value(initial),
                    starting,
                }
            };
            meta.push(point_meta);
            points.insert(name, point);
        }
        Ok(FakeDriver { meta, points, clock })
    }

    fn read(&self, name: &str) -> Result<Value, DriverError> {
        let point = self
            .points
            .get(name)
            .ok_or_else(|| DriverError::UnknownPoint(name.to_owned()))?;
        Ok(match &point.held {
            Held::Value(v) => v.clone(),
            Held::Ekg { amplitude, waveform } => {
                let second = self.clock.now().timestamp().rem_euclid(60) as f64;
                Value::Float(amplitude * waveform(std::f64::consts::PI * second / 30.0))
            }
        })
    }

    fn write(&mut self, name: &str, value: Value) -> Result<Value, DriverError> {
        let meta = self
            .meta
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| DriverError::UnknownPoint(name.to_owned()))?;
        if !meta.writable {
            return Err(DriverError::NotWritable(name.to_owned()));
        }
        let kind = meta.kind;
        let point = self
            .points
            .get_mut(name)
            .expect("meta and points hold the same names");
        match &mut point.held {
            Held::Value(held) => {
                *held = coerce(kind, &value).map_err(|reason| DriverError::BadValue {
                    point: name.to_owned(),
                    reason,
                })?;
                Ok(held.clone())
            }
            Held::Ekg { amplitude, .. } => {
                *amplitude = value.as_f64().ok_or_else(|| DriverError::BadValue {
                    point: name.to_owned(),
                    reason: format!("{value} is not a number"),
                })?;
                Ok(Value::Float(*amplitude))
            }
        }
    }
}

impl Driver for FakeDriver {
    fn points(&self) -> &[PointMeta] {
        &self.meta
    }

    fn scrape_all(&mut self) -> DriverFuture<'_, BTreeMap<String, Value>> {
        let all = self
            .meta
            .iter()
            .map(|m| self.read(&m.name).map(|v| (m.name.clone(), v)))
            .collect();
        Box::pin(async move { all })
    }

    fn get_point<'a>(&'a mut self, point: &'a str) -> DriverFuture<'a, Value> {
        let value = self.read(point);
        Box::pin(async move { value })
    }

    fn set_point<'a>(&'a mut self, point: &'a str, value: Value) -> DriverFuture<'a, Value> {
        let result = self.write(point, value);
        Box::pin(async move { result })
    }

    fn revert_point<'a>(&'a mut self, point: &'a str) -> DriverFuture<'a, bool> {
        let result = match self.points.get_mut(point) {
            None => Err(DriverError::UnknownPoint(point.to_owned())),
            Some(FakePoint {
                held: Held::Ekg { amplitude, .. },
                ..
            }) => {
                *amplitude = 1.0;
                Ok(true)
            }
            Some(FakePoint {
                held: Held::Value(held),
                starting: Some(start),
            }) => {
                *held = start.clone();
                Ok(true)
            }
            Some(_) => Ok(false),
        };
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::agents::driver::registry::Registry;
    use crate::core::Map;

    fn registry(rows: &[(&str, &str, &str, &str)]) -> Registry {
        let rows = rows
            .iter()
            .map(|(name, writable, start, kind)| {
                let mut row = Map::new();
                row.insert("Volttron Point Name".into(), Value::from(*name));
                row.insert("Writable".into(), Value::from(*writable));
                row.insert("Starting Value".into(), Value::from(*start));
                row.insert("Type".into(), Value::from(*kind));
                Value::Map(row)
            })
            .collect();
        Registry::parse("campus/hq/ekg", "ekg.csv", &Value::List(rows), true).unwrap()
    }

    fn fake(registry: &Registry, clock: &Clock) -> Result<FakeDriver, DriverError> {
        let config = Value::Map(Map::new());
        let setup = DeviceSetup {
            device: "campus/hq/ekg",
            driver_config: &config,
            registry,
            timeout: Duration::from_secs(5),
            clock,
        };
        FakeDriver::new(&setup, clock.clone())
    }

    fn float(v: Value) -> f64 {
        v.as_f64().unwrap()
    }

    #[test]
    fn ekg_points_follow_their_waveform_on_the_platform_clock() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = Clock::virtual_at(start);
        let registry = registry(&[
            ("EKG", "TRUE", "", "float"),
            ("EKG_Sqrt", "FALSE", "sqrt", "float"),
            ("Temp", "TRUE", "70", "float"),
        ]);
        let mut device = fake(&registry, &clock).unwrap();
        let at = |secs: u64| clock.set_elapsed(Duration::from_secs(secs));
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;

        // sin(π·s/30): 0 at :00, 1 at :15, -1 at :45; sqrt(π·15/30) at :15.
        assert!(near(float(device.read("EKG").unwrap()), 0.0));
        at(15);
        assert!(near(float(device.read("EKG").unwrap()), 1.0));
        assert!(near(
            float(device.read("EKG_Sqrt").unwrap()),
            std::f64::consts::FRAC_PI_2.sqrt()
        ));
        at(45);
        assert!(near(float(device.read("EKG").unwrap()), -1.0));
        // A minute later the wave repeats.
        at(75);
        assert!(near(float(device.read("EKG").unwrap()), 1.0));

        // Writing sets the amplitude; reverting restores 1.
        assert_eq!(device.write("EKG", Value::from(3.0)).unwrap(), Value::Float(3.0));
        assert!(near(float(device.read("EKG").unwrap()), 3.0));
        assert!(matches!(
            device.write("EKG", Value::from("loud")),
            Err(DriverError::BadValue { .. })
        ));
        assert!(matches!(
            device.write("EKG_Sqrt", Value::from(2.0)),
            Err(DriverError::NotWritable(_))
        ));
        assert!(futures::executor::block_on(device.revert_point("EKG")).unwrap());
        assert!(near(float(device.read("EKG").unwrap()), 1.0));
        // An ordinary point is not on the clock.
        assert_eq!(device.read("Temp").unwrap(), Value::Float(70.0));
    }

    #[test]
    fn an_unknown_waveform_names_its_row_and_column() {
        let clock = Clock::virtual_clock();
        let registry = registry(&[("Temp", "TRUE", "70", "float"), ("EKG", "TRUE", "cos", "float")]);
        let e = fake(&registry, &clock).unwrap_err().to_string();
        assert!(
            e.contains("row 3") && e.contains("Starting Value") && e.contains("\"cos\""),
            "{e}"
        );
    }

    #[test]
    fn a_point_without_a_starting_value_starts_from_its_name_and_leaves_revert_to_the_worker() {
        let clock = Clock::virtual_clock();
        let registry = registry(&[("Damper", "TRUE", "", "float")]);
        let mut a = fake(&registry, &clock).unwrap();
        let b = fake(&registry, &clock).unwrap();
        let first = a.read("Damper").unwrap();
        assert_eq!(
            first,
            b.read("Damper").unwrap(),
            "the same registry gives the same value"
        );
        assert!((0.0..100.0).contains(&float(first.clone())));
        a.write("Damper", Value::from(12.5)).unwrap();
        assert!(!futures::executor::block_on(a.revert_point("Damper")).unwrap());
    }
}
