//! VOLTTRON's platform driver: scrapes devices and publishes their points.
//!
//! [`PlatformDriver`] reads VOLTTRON's driver configuration from its configuration store,
//! unchanged: `config` ([`DriverSettings`]), one `devices/<campus>/<building>/<unit>` entry
//! per device ([`DeviceConfig`]) and the registries they reference (`config://<name>.csv`,
//! [`Registry`]). Each device gets a [`Driver`] of its `driver_type` and a task of its own
//! (`worker.rs`); scrapes are published as VOLTTRON publishes them ([`publish`]).
//!
//! | driver type | feature | module |
//! |-------------|---------|--------|
//! | `fake` | `driver` | [`fake`] |
//! | `modbus` | `modbus` | `modbus` (tokio-modbus) |
//! | `bacnet` | `bacnet` | `bacnet` (rusty-bacnet's `bacnet-client`) |
//! | any other | — | registered with [`PlatformDriver::interface`] |
//!
//! RPCs, as VOLTTRON's platform driver exports them (`path` is the device's path; where
//! `point_name` is optional, `path` may end with the point):
//!
//! | method | returns |
//! |--------|---------|
//! | `get_point(path, point_name=None)` | the value |
//! | `set_point(path, point_name, value)` | the value the device now holds |
//! | `scrape_all(path)` | `{point: value}` |
//! | `get_multiple_points(path, point_names=None)` | `[{"<device>/<point>": value}, {"<device>/<point>": error}]`; `path` may be a list of topics or of `[device, point]` pairs |
//! | `set_multiple_points(path, point_names_values)` | `{point: error}` for the points that failed |
//! | `revert_point(path, point_name)` / `revert_device(path)` | `null` |
//! | `heart_beat(devices=None)` | toggles the heartbeat point of each device (or of these) |
//! | `device_status()` | `{"devices": [..], "bad": {device: reason}, "config_errors": {config: reason}}` (this project's) |
//!
//! Writes (`set_point`, `set_multiple_points`, `revert_*`) go only to `Writable` points, and
//! while an actuator (`platform.actuator`) is connected only the actuator may make them:
//! other callers get an error telling them to go through it.
//!
//! A configuration that cannot be used (the device's entry, its registry) is logged with
//! the entry, row and column, makes the driver's health BAD, and leaves the other devices
//! running. A device that fails to answer is BAD until it answers again. The health context
//! holds both: `{"bad_devices": {device: reason}, "config_errors": {entry: reason}}`.

#[cfg(feature = "bacnet")]
pub mod bacnet;
pub mod config;
pub mod fake;
pub mod interface;
#[cfg(feature = "modbus")]
pub mod modbus;
pub mod publish;
pub mod registry;
mod worker;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::agent::{AgentContext, ConfigAction, ConfigUpdate};
use crate::agents::device_path::{device_and_point, device_path};
use crate::core::{Caller, Map, Value};

pub use config::{ConfigError, DeviceConfig, DriverSettings, PublishSettings};
pub use interface::{
    ChangeFeed, DeviceSetup, Driver, DriverError, DriverFactory, DriverFuture, PointChange, PointKind,
    PointMeta,
};
pub use registry::{Registry, RegistryError, RegistryRow};

use worker::{Command, HealthBoard, Worker};

/// The platform driver's VIP identity.
pub const IDENTITY: &str = super::DRIVER_IDENTITY;

/// The actuator's identity: while it is connected, only it may write.
pub const ACTUATOR: &str = super::ACTUATOR_IDENTITY;

/// How many requests may wait for one device.
const QUEUE: usize = 64;

struct DeviceHandle {
    commands: mpsc::Sender<Command>,
    timeout: Duration,
}

/// VOLTTRON's platform driver as an agent; see the [module docs](self).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use volttron::agents::driver::{self, PlatformDriver};
/// use volttron::testing::TestPlatform;
///
/// let tp = TestPlatform::builder().services(true).start().await;
/// let store = |name: &str, raw: &str, kind: &str| {
///     tp.call("config.store", "set_config", (driver::IDENTITY, name.to_owned(), raw.to_owned(), kind.to_owned()))
/// };
/// store("fake.csv", "Volttron Point Name,Units,Writable,Starting Value,Type\nTemp,degF,FALSE,70.5,float\n", "csv").await.unwrap();
/// store("devices/campus/hq/rtu1",
///       r#"{"driver_config": {}, "driver_type": "fake", "registry_config": "config://fake.csv", "interval": 60}"#,
///       "json").await.unwrap();
/// let all = tp.capture("devices/campus/hq/rtu1/all");
/// tp.spawn(driver::IDENTITY, PlatformDriver::new()).await.unwrap();
/// tp.advance(std::time::Duration::from_secs(60)).await;
/// assert_eq!(all.last().unwrap().message[0]["Temp"].as_f64(), Some(70.5));
/// tp.shutdown().await;
/// # }
/// ```
pub struct PlatformDriver {
    factories: BTreeMap<String, DriverFactory>,
    settings: DriverSettings,
    /// Device entries as last stored, by entry name (to rebuild them when `config` changes).
    entries: BTreeMap<String, Value>,
    devices: BTreeMap<String, DeviceHandle>,
    /// The stagger slot the next new device gets.
    next_slot: u32,
    health: Option<HealthBoard>,
}

impl std::fmt::Debug for PlatformDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformDriver")
            .field("interfaces", &self.factories.keys().collect::<Vec<_>>())
            .field("devices", &self.devices.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for PlatformDriver {
    fn default() -> Self {
        PlatformDriver::new()
    }
}

fn fake_factory(setup: &DeviceSetup<'_>) -> Result<Box<dyn Driver>, DriverError> {
    Ok(Box::new(fake::FakeDriver::new(setup, setup.clock.clone())?))
}

impl PlatformDriver {
    /// A driver with the interfaces this build has (`fake`, and `modbus` / `bacnet` with their features).
    pub fn new() -> PlatformDriver {
        let mut factories: BTreeMap<String, DriverFactory> = BTreeMap::new();
        factories.insert("fake".into(), fake_factory);
        #[cfg(feature = "modbus")]
        factories.insert("modbus".into(), modbus::factory);
        #[cfg(feature = "bacnet")]
        factories.insert("bacnet".into(), bacnet::factory);
        PlatformDriver {
            factories,
            settings: DriverSettings::default(),
            entries: BTreeMap::new(),
            devices: BTreeMap::new(),
            next_slot: 0,
            health: None,
        }
    }

    /// Registers (or replaces) the interface of `driver_type`.
    pub fn interface(mut self, driver_type: &str, factory: DriverFactory) -> PlatformDriver {
        self.factories.insert(driver_type.to_owned(), factory);
        self
    }

    fn board(&mut self, ctx: &AgentContext) -> HealthBoard {
        self.health
            .get_or_insert_with(|| HealthBoard::new(ctx.clone()))
            .clone()
    }

    fn config_error(&mut self, ctx: &AgentContext, entry: &str, reason: String) {
        tracing::error!(config = entry, "{reason}");
        self.board(ctx).mark_config(entry, Some(reason));
    }

    fn config_ok(&mut self, ctx: &AgentContext, entry: &str) {
        self.board(ctx).mark_config(entry, None);
    }

    /// Starts (or restarts) the device of entry `name`.
    async fn configure(&mut self, ctx: &AgentContext, name: &str, contents: &Value) {
        let config = match DeviceConfig::parse(name, contents, &self.settings) {
            Ok(c) => c,
            Err(e) => return self.config_error(ctx, name, e.to_string()),
        };
        self.devices.remove(&config.path);
        // The registry's own name and form, for errors that point into the file.
        let registry_name = match ctx
            .config()
            .get_raw(name)
            .await
            .ok()
            .and_then(|raw| Value::from_json_str(&raw).ok())
        {
            Some(raw) => raw.get("registry_config").and_then(Value::as_str).map(|r| {
                r.strip_prefix(crate::config_store::LINK_PREFIX)
                    .unwrap_or(r)
                    .to_owned()
            }),
            None => None,
        }
        .unwrap_or_else(|| "registry_config".to_owned());
        let csv = registry_name.to_ascii_lowercase().ends_with(".csv");
        let registry = match Registry::parse(&config.path, &registry_name, &config.registry, csv) {
            Ok(r) => r,
            Err(e) => return self.config_error(ctx, name, e.to_string()),
        };
        let Some(factory) = self.factories.get(&config.driver_type).copied() else {
            let known: Vec<&str> = self.factories.keys().map(String::as_str).collect();
            let reason = format!(
                "{name}: \"driver_type\": {:?} is not an interface of this build (known: {})",
                config.driver_type,
                known.join(", ")
            );
            return self.config_error(ctx, name, reason);
        };
        let setup = DeviceSetup {
            device: &config.path,
            driver_config: &config.driver_config,
            registry: &registry,
            timeout: config.timeout,
            clock: ctx.clock(),
        };
        let driver = match factory(&setup) {
            Ok(d) => d,
            Err(e @ DriverError::Registry(_)) => return self.config_error(ctx, name, e.to_string()),
            Err(e) => return self.config_error(ctx, name, format!("device {}: {e}", config.path)),
        };
        self.config_ok(ctx, name);
        let slot = self.next_slot;
        self.next_slot += 1;
        let offset = (self.settings.stagger * slot + self.settings.group_offset * config.group)
            .as_micros()
            .checked_rem(config.interval.as_micros().max(1))
            .unwrap_or(0);
        let publisher =
            publish::DevicePublisher::new(&config.path, driver.points(), &config.timezone, config.publish);
        let worker = Worker {
            path: config.path.clone(),
            driver,
            publisher,
            ctx: ctx.clone(),
            health: self.board(ctx),
            interval: config.interval,
            offset: Duration::from_micros(offset as u64),
            timeout: config.timeout,
            heart_beat_point: config.heart_beat_point.clone(),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(worker.run(rx));
        self.devices.insert(
            config.path,
            DeviceHandle {
                commands: tx,
                timeout: config.timeout,
            },
        );
    }

    fn remove(&mut self, ctx: &AgentContext, name: &str) {
        self.entries.remove(name);
        self.config_ok(ctx, name);
        let path = device_path(name);
        if self.devices.remove(path).is_some() {
            self.board(ctx).mark(path, None);
        }
    }

    /// Splits `path` (+ `point`) into a device and a point: `point`, or `path`'s last part.
    fn split<'a>(&self, path: &'a str, point: Option<&'a str>) -> Result<(&'a str, &'a str), String> {
        device_and_point(path, point)
            .filter(|(d, _)| point.is_some() || self.devices.contains_key(*d))
            .ok_or_else(|| {
                format!(
                    "no device for {path:?} (devices: {})",
                    self.device_list().join(", ")
                )
            })
    }

    fn device_list(&self) -> Vec<String> {
        self.devices.keys().cloned().collect()
    }

    async fn ask<T>(
        &self,
        device: &str,
        command: impl FnOnce(oneshot::Sender<Result<T, DriverError>>) -> Command,
    ) -> Result<T, String> {
        let device = device_path(device);
        let handle = self.devices.get(device).ok_or_else(|| {
            format!(
                "no device {device:?} (devices: {})",
                self.device_list().join(", ")
            )
        })?;
        let (tx, rx) = oneshot::channel();
        handle
            .commands
            .try_send(command(tx))
            .map_err(|_| format!("device {device}: too many requests waiting"))?;
        // Bounded: the device's own timeout applies inside; this covers a get-before-set.
        match tokio::time::timeout(handle.timeout * 3 + Duration::from_secs(1), rx).await {
            Ok(Ok(result)) => result.map_err(|e| format!("device {device}: {e}")),
            Ok(Err(_)) => Err(format!("device {device} was reconfigured or removed")),
            Err(_) => Err(format!("device {device}: no answer")),
        }
    }

    fn may_write(&self, ctx: &AgentContext, caller: &Caller) -> Result<(), String> {
        if caller.identity().as_str() == ACTUATOR || caller.identity() == ctx.identity() {
            return Ok(());
        }
        if ctx.peers().iter().any(|p| p.as_str() == ACTUATOR) {
            return Err(format!(
                "{ACTUATOR} is running: write through it (request_new_schedule, then {ACTUATOR}.set_point)"
            ));
        }
        Ok(())
    }
}

#[crate::agent]
impl PlatformDriver {
    /// The agent's `config`: every device restarts with the new settings.
    #[on_config("config")]
    async fn on_settings(&mut self, ctx: &AgentContext, update: &ConfigUpdate) {
        let settings = match update.action {
            ConfigAction::Delete => Ok(DriverSettings::default()),
            _ => DriverSettings::parse(&update.contents),
        };
        match settings {
            Ok(s) => {
                let ignored = DriverSettings::ignored_keys(&update.contents);
                if !ignored.is_empty() {
                    tracing::info!(
                        "config: VOLTTRON keys without effect here: {}",
                        ignored.join(", ")
                    );
                }
                self.config_ok(ctx, "config");
                self.settings = s;
            }
            Err(e) => return self.config_error(ctx, "config", e.to_string()),
        }
        let entries = self.entries.clone();
        self.devices.clear();
        self.next_slot = 0;
        for (name, contents) in entries {
            self.configure(ctx, &name, &contents).await;
        }
    }

    /// A device's entry: added, changed or deleted.
    #[on_config("devices/*")]
    async fn on_device(&mut self, ctx: &AgentContext, update: &ConfigUpdate) {
        if update.action == ConfigAction::Delete {
            return self.remove(ctx, &update.name);
        }
        self.entries.insert(update.name.clone(), update.contents.clone());
        self.configure(ctx, &update.name, &update.contents).await;
    }

    #[on_stop]
    fn stop(&mut self) {
        self.devices.clear();
    }

    /// Reads one point now.
    #[rpc]
    async fn get_point(&mut self, path: String, point_name: Option<String>) -> Result<Value, String> {
        let (device, point) = self.split(&path, point_name.as_deref())?;
        let point = point.to_owned();
        self.ask(device, |r| Command::Get(point, r)).await
    }

    /// Writes one point; returns what the device now holds.
    #[rpc]
    async fn set_point(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        path: String,
        point_name: Option<String>,
        value: Value,
    ) -> Result<Value, String> {
        self.may_write(ctx, &caller)?;
        let (device, point) = self.split(&path, point_name.as_deref())?;
        let point = point.to_owned();
        self.ask(device, |r| Command::Set(point, value, r)).await
    }

    /// Every point of a device, read now.
    #[rpc]
    async fn scrape_all(&mut self, path: String) -> Result<Map, String> {
        let values = self.ask(&path, Command::ScrapeAll).await?;
        Ok(values.into_iter().collect())
    }

    /// Several points of one or more devices: `[values, errors]`, keyed `<device>/<point>`.
    #[rpc]
    async fn get_multiple_points(
        &mut self,
        path: Value,
        point_names: Option<Vec<String>>,
    ) -> Result<Value, String> {
        let mut wanted: Vec<(String, Option<String>)> = Vec::new();
        let mut errors = Map::new();
        match (&path, point_names) {
            (Value::String(device), None) => wanted.push((device.clone(), None)),
            (Value::String(device), Some(points)) => {
                wanted.extend(points.into_iter().map(|p| (device.clone(), Some(p))));
            }
            (Value::List(items), _) => {
                for item in items {
                    match item {
                        Value::String(topic) => match self.split(topic, None) {
                            Ok((d, p)) => wanted.push((d.to_owned(), Some(p.to_owned()))),
                            Err(e) => {
                                errors.insert(topic.clone(), Value::from(e));
                            }
                        },
                        Value::List(pair) if pair.len() == 2 && pair.iter().all(|v| v.as_str().is_some()) => {
                            let d = pair[0].as_str().unwrap_or_default();
                            wanted.push((d.to_owned(), pair[1].as_str().map(str::to_owned)));
                        }
                        other => {
                            errors.insert(
                                other.to_json_string(),
                                Value::from(format!("invalid topic: {other}")),
                            );
                        }
                    }
                }
            }
            (other, _) => return Err(format!("path {other} is not a topic or a list of topics")),
        }
        let mut values = Map::new();
        for (device, point) in wanted {
            let device = device_path(&device).to_owned();
            match point {
                None => match self.ask(&device, Command::ScrapeAll).await {
                    Ok(all) => values.extend(all.into_iter().map(|(p, v)| (format!("{device}/{p}"), v))),
                    Err(e) => {
                        errors.insert(device, Value::from(e));
                    }
                },
                Some(point) => {
                    let key = format!("{device}/{point}");
                    match self.ask(&device, |r| Command::Get(point, r)).await {
                        Ok(v) => {
                            values.insert(key, v);
                        }
                        Err(e) => {
                            errors.insert(key, Value::from(e));
                        }
                    }
                }
            }
        }
        Ok(Value::List(vec![Value::Map(values), Value::Map(errors)]))
    }

    /// Writes several points of one device; returns `{point: error}` for those that failed.
    #[rpc]
    async fn set_multiple_points(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        path: String,
        point_names_values: Vec<(String, Value)>,
    ) -> Result<Map, String> {
        self.may_write(ctx, &caller)?;
        let mut errors = Map::new();
        for (point, value) in point_names_values {
            let p = point.clone();
            if let Err(e) = self.ask(&path, |r| Command::Set(p, value, r)).await {
                errors.insert(point, Value::from(e));
            }
        }
        Ok(errors)
    }

    /// Restores a point's default (or the value it had before it was first written).
    #[rpc]
    async fn revert_point(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        path: String,
        point_name: Option<String>,
    ) -> Result<(), String> {
        self.may_write(ctx, &caller)?;
        let (device, point) = self.split(&path, point_name.as_deref())?;
        let point = point.to_owned();
        self.ask(device, |r| Command::Revert(Some(point), r)).await
    }

    /// Restores every written point of a device.
    #[rpc]
    async fn revert_device(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        path: String,
    ) -> Result<(), String> {
        self.may_write(ctx, &caller)?;
        self.ask(&path, |r| Command::Revert(None, r)).await
    }

    /// Toggles the heartbeat point of every device that has one (or of `devices`).
    #[rpc]
    fn heart_beat(&mut self, devices: Option<Vec<String>>) {
        for (path, handle) in &self.devices {
            if devices
                .as_ref()
                .is_none_or(|d| d.iter().any(|x| device_path(x) == path))
            {
                let _ = handle.commands.try_send(Command::HeartBeat);
            }
        }
    }

    /// The devices, the BAD ones and why, and the entries that could not be used.
    #[rpc]
    fn device_status(&mut self) -> Value {
        let faults = self.health.as_ref().map(HealthBoard::faults).unwrap_or_default();
        let as_map = |m: BTreeMap<String, String>| {
            Value::Map(m.into_iter().map(|(k, r)| (k, Value::from(r))).collect())
        };
        Value::Map(Map::from([
            ("devices".to_owned(), Value::from(self.device_list())),
            ("bad".to_owned(), as_map(faults.bad_devices)),
            ("config_errors".to_owned(), as_map(faults.config_errors)),
        ]))
    }
}
