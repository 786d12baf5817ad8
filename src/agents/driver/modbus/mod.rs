//! The platform driver's Modbus TCP interface (driver type `"modbus"`), on tokio-modbus.
//!
//! [`factory`] reads a device's `driver_config` ([`config`]: `device_address`, `port`,
//! `slave_id`, `addressing`, byte and word order, `write_multiple_registers`) and its
//! registry ([`point`]: VOLTTRON's `Modbus Register` struct formats and the modbus_tk
//! style's `Type` / `Table` / `Transform` columns), and plans its reads ([`batch`]). The
//! [`ModbusDriver`] then talks to the device over one TCP connection ([`link`]), each
//! request bounded by the device's `timeout`; values are decoded and encoded by [`codec`].
//!
//! | call | requests | returns |
//! |------|----------|---------|
//! | [`scrape_all`](Driver::scrape_all) | one read per run of contiguous addresses of a table (at most 125 registers / 2000 bits each) | every point; the first failing request fails the scrape (as VOLTTRON's) |
//! | [`get_point`](Driver::get_point) | one read of the point's registers (or bit) | its value |
//! | [`set_point`](Driver::set_point) | coil: function 5; one register: function 16 (6 when `write_multiple_registers` is false); more: function 16; then a read back | the value the device now holds |
//! | [`revert_point`](Driver::revert_point) | `set_point` of its `Default Value`, if the registry gives one | `true`; `false` (the platform driver's own revert) otherwise |
//!
//! | failure | error |
//! |---------|-------|
//! | unknown point | [`DriverError::UnknownPoint`] |
//! | writing a point that is not `Writable` | [`DriverError::NotWritable`] |
//! | a value that is not a number (boolean) of the point's type, not an integer for an integer type, or out of range once divided by its scale | [`DriverError::BadValue`] |
//! | a Modbus exception (`Illegal data address` ...) | [`DriverError::Refused`], naming the exception and the request |
//! | no answer within `timeout` | [`DriverError::Timeout`] |
//! | connection refused, reset or closed | [`DriverError::Connection`]; the next call connects again |
//! | a bad `driver_config` / registry row (from [`factory`]) | [`DriverError::Config`] / [`DriverError::Registry`] naming the row and column |

pub mod batch;
pub mod codec;
pub mod config;
pub mod link;
pub mod point;

use std::collections::{BTreeMap, HashMap};

use crate::core::Value;

use super::interface::{DeviceSetup, Driver, DriverError, DriverFuture, PointMeta};
use batch::ReadRun;
use config::ModbusConfig;
use link::Link;
use point::ModbusPoint;

/// The [`DriverFactory`](super::DriverFactory) of driver type `"modbus"`: parses the
/// device's `driver_config` and registry; connects on the first request.
pub fn factory(setup: &DeviceSetup<'_>) -> Result<Box<dyn Driver>, DriverError> {
    Ok(Box::new(ModbusDriver::new(setup)?))
}

/// One Modbus TCP device; see the [module docs](self).
#[derive(Debug)]
pub struct ModbusDriver {
    points: Vec<ModbusPoint>,
    metas: Vec<PointMeta>,
    by_name: HashMap<String, usize>,
    runs: Vec<ReadRun>,
    link: Link,
}

impl ModbusDriver {
    /// The driver of the device of `setup` (see [`factory`]).
    pub fn new(setup: &DeviceSetup<'_>) -> Result<ModbusDriver, DriverError> {
        let config = ModbusConfig::parse(setup.driver_config)?;
        let points = setup
            .registry
            .rows
            .iter()
            .map(|row| ModbusPoint::parse(row, &config))
            .collect::<Result<Vec<_>, _>>()?;
        let runs = batch::plan(&points, |table| config.max_read(table), config.max_gap);
        let metas = points.iter().map(|p| p.meta.clone()).collect();
        let by_name = points
            .iter()
            .enumerate()
            .map(|(i, p)| (p.meta.name.clone(), i))
            .collect();
        Ok(ModbusDriver {
            points,
            metas,
            by_name,
            runs,
            link: Link::new(config, setup.timeout),
        })
    }

    /// The read requests a scrape makes.
    pub fn read_runs(&self) -> &[ReadRun] {
        &self.runs
    }

    fn index(&self, name: &str) -> Result<usize, DriverError> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| DriverError::UnknownPoint(name.to_owned()))
    }

    /// Reads `count` registers (or bits, as 0 and 1) of `table` from `start`.
    async fn read_run(
        &mut self,
        table: point::Table,
        start: u16,
        count: u16,
    ) -> Result<Vec<u16>, DriverError> {
        if table.is_bits() {
            let bits = self.link.read_bits(table, start, count).await?;
            Ok(bits.into_iter().map(u16::from).collect())
        } else {
            self.link.read_registers(table, start, count).await
        }
    }

    async fn read_point(&mut self, i: usize) -> Result<Value, DriverError> {
        let (table, address, width) = {
            let p = &self.points[i];
            (p.table, p.address, p.width())
        };
        let words = self.read_run(table, address, width).await?;
        Ok(self.points[i].encoding.decode(&words))
    }

    async fn write_point(&mut self, i: usize, value: Value) -> Result<Value, DriverError> {
        let p = &self.points[i];
        if !p.meta.writable {
            return Err(DriverError::NotWritable(p.meta.name.clone()));
        }
        let words = p
            .encoding
            .encode(&value)
            .map_err(|reason| DriverError::BadValue {
                point: p.meta.name.clone(),
                reason,
            })?;
        let (table, address) = (p.table, p.address);
        match table {
            point::Table::Coil => self.link.write_coil(address, words[0] != 0).await?,
            _ => self.link.write_registers(address, &words).await?,
        }
        self.read_point(i).await
    }
}

impl Driver for ModbusDriver {
    fn points(&self) -> &[PointMeta] {
        &self.metas
    }

    fn scrape_all(&mut self) -> DriverFuture<'_, BTreeMap<String, Value>> {
        Box::pin(async move {
            let mut values = BTreeMap::new();
            for r in 0..self.runs.len() {
                let (table, start, count) = (self.runs[r].table, self.runs[r].start, self.runs[r].count);
                let words = self.read_run(table, start, count).await?;
                for &i in &self.runs[r].points {
                    let p = &self.points[i];
                    let offset = usize::from(p.address - start);
                    let value = p.encoding.decode(&words[offset..offset + usize::from(p.width())]);
                    values.insert(p.meta.name.clone(), value);
                }
            }
            Ok(values)
        })
    }

    fn get_point<'a>(&'a mut self, point: &'a str) -> DriverFuture<'a, Value> {
        Box::pin(async move {
            let i = self.index(point)?;
            self.read_point(i).await
        })
    }

    fn set_point<'a>(&'a mut self, point: &'a str, value: Value) -> DriverFuture<'a, Value> {
        Box::pin(async move {
            let i = self.index(point)?;
            self.write_point(i, value).await
        })
    }

    fn revert_point<'a>(&'a mut self, point: &'a str) -> DriverFuture<'a, bool> {
        Box::pin(async move {
            let i = self.index(point)?;
            match self.points[i].default.clone() {
                Some(default) => self.write_point(i, default).await.map(|_| true),
                None => Ok(false),
            }
        })
    }
}
