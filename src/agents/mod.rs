//! The building data path, as agents of this crate: what every VOLTTRON deployment runs.
//!
//! | agent | identity | feature | what it does |
//! |-------|----------|---------|--------------|
//! | [`PlatformDriver`] | `platform.driver` | `driver` (+ `modbus`, `bacnet`) | scrapes devices on VOLTTRON's configuration, publishes `devices/<path>/all`, exports `get_point` / `set_point` / `scrape_all` / ... |
//! | [`SqliteHistorian`] | `platform.historian` | `historian` | stores what is published under `devices/` (and `analysis/`, `record/`, `datalogger/`) in VOLTTRON's SQLite schema, answers `query` |
//! | `Actuator` | `platform.actuator` | `actuator` | schedules of devices, and writes only from the holder of the current slot |
//!
//! Each reads VOLTTRON's configuration formats from its configuration store, so existing
//! configurations, scripts and user interfaces keep working. Each runs in-process
//! (`platform.spawn(IDENTITY, agent)`) or as its own process (`vctl install` of its
//! binary; see the README's "A building").

#[cfg(feature = "driver")]
pub mod driver;

#[cfg(feature = "driver")]
pub use driver::PlatformDriver;

#[cfg(feature = "historian")]
pub mod historian;

#[cfg(feature = "historian")]
pub use historian::SqliteHistorian;
