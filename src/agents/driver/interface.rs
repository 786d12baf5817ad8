//! The seam between the platform driver and one kind of device: the [`Driver`] trait.
//!
//! The platform driver owns one [`Driver`] per configured device, in a task of its own:
//! calls to one device are serialised (a Modbus connection, a BACnet peer), devices never
//! wait for each other. A driver type (`"fake"`, `"modbus"`, `"bacnet"`, or one an
//! embedding application registers with `PlatformDriver::interface`)
//! is a [`DriverFactory`]: it gets the device's `driver_config` and its parsed registry
//! and returns the driver, or a [`DriverError`] naming what is wrong.
//!
//! | method | VOLTTRON's `BaseInterface` | default |
//! |--------|----------------------------|---------|
//! | [`Driver::points`] | `get_registers_by_type` | — |
//! | [`Driver::scrape_all`] | `_scrape_all` | — |
//! | [`Driver::get_point`] | `get_point` | — |
//! | [`Driver::set_point`] | `_set_point` | — |
//! | [`Driver::revert_point`] | `revert_point` | not handled: the platform driver writes back the last value it read before the first write (VOLTTRON's `BasicRevert`) |
//! | [`Driver::subscribe_changes`] | the BACnet interface's `establish_cov_subscription` | none: the device is only scraped |

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::Clock;
use crate::core::Value;

use super::registry::{Registry, RegistryError};

/// What a [`Driver`] method returns: a boxed future, `Send` so devices can run anywhere.
pub type DriverFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DriverError>> + Send + 'a>>;

/// The type of a point's value, as published in the `all` topic's metadata (`"type"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    /// `"integer"`.
    Integer,
    /// `"float"`.
    Float,
    /// `"boolean"`.
    Boolean,
    /// `"string"`.
    String,
}

impl PointKind {
    /// VOLTTRON's name of the type, as it appears in published metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            PointKind::Integer => "integer",
            PointKind::Float => "float",
            PointKind::Boolean => "boolean",
            PointKind::String => "string",
        }
    }
}

/// One point of a device: what the registry says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct PointMeta {
    /// `Volttron Point Name`: the name on the bus and in RPCs.
    pub name: String,
    /// `Units`.
    pub units: String,
    /// The value's type.
    pub kind: PointKind,
    /// `Writable`: whether `set_point` may write it.
    pub writable: bool,
}

/// One device's interface; see the [module docs](self).
pub trait Driver: Send + 'static {
    /// The device's points, in registry order.
    fn points(&self) -> &[PointMeta];

    /// Reads every point.
    fn scrape_all(&mut self) -> DriverFuture<'_, BTreeMap<String, Value>>;

    /// Reads one point.
    fn get_point<'a>(&'a mut self, point: &'a str) -> DriverFuture<'a, Value>;

    /// Writes one (writable) point; returns the value the device now holds (a device may
    /// round or clamp it, as VOLTTRON's Modbus driver reports).
    fn set_point<'a>(&'a mut self, point: &'a str, value: Value) -> DriverFuture<'a, Value>;

    /// Restores a point's default if the interface knows one (`Ok(true)`); `Ok(false)`
    /// leaves it to the platform driver.
    fn revert_point<'a>(&'a mut self, point: &'a str) -> DriverFuture<'a, bool> {
        let _ = point;
        Box::pin(async { Ok(false) })
    }

    /// Asks the device to report changes of its points on its own (BACnet COV, for the
    /// points its registry flags). The platform driver calls it when the device starts and
    /// again after the feed's `renew_after`; a new feed replaces the previous one. Each
    /// change is published as VOLTTRON's `publish_cov_value` does, between scrapes.
    /// `Ok(None)` (the default): the device has nothing to report, it is only scraped.
    fn subscribe_changes(&mut self) -> DriverFuture<'_, Option<ChangeFeed>> {
        Box::pin(async { Ok(None) })
    }
}

/// A value a device reported on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct PointChange {
    /// The point (`Volttron Point Name`).
    pub point: String,
    /// Its new value.
    pub value: Value,
}

/// What [`Driver::subscribe_changes`] returns: the changes as they come, and when to
/// subscribe again.
pub struct ChangeFeed {
    /// The changes; the feed ends when the stream does.
    pub changes: futures::stream::BoxStream<'static, PointChange>,
    /// When to call [`Driver::subscribe_changes`] again (a subscription's lifetime less a
    /// margin); `None`: the subscription does not expire.
    pub renew_after: Option<Duration>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("renew_after", &self.renew_after)
            .finish_non_exhaustive()
    }
}

/// What a driver type's factory is given for one device.
#[derive(Debug)]
pub struct DeviceSetup<'a> {
    /// The device's path (`campus/building/unit`).
    pub device: &'a str,
    /// Its `driver_config` object.
    pub driver_config: &'a Value,
    /// Its registry, parsed.
    pub registry: &'a Registry,
    /// How long one request to the device may take (`timeout` in the device's
    /// configuration, default 5 s).
    pub timeout: Duration,
    /// The platform's clock (virtual in tests), for drivers whose values follow time.
    pub clock: &'a Clock,
}

/// Makes a driver for one device; registered by driver type.
pub type DriverFactory = fn(&DeviceSetup<'_>) -> Result<Box<dyn Driver>, DriverError>;

/// Why a device, or one of its points, could not be read, written or configured.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriverError {
    /// The device did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or broke.
    #[error("connection: {0}")]
    Connection(String),
    /// The device answered with an error (a Modbus exception, a BACnet error/reject/abort).
    #[error("device refused: {0}")]
    Refused(String),
    /// The device's answer could not be understood.
    #[error("protocol: {0}")]
    Protocol(String),
    /// No such point on the device.
    #[error("no point {0:?} on this device")]
    UnknownPoint(String),
    /// The point is not `Writable` in the registry.
    #[error("point {0:?} is not writable")]
    NotWritable(String),
    /// The value cannot be written to the point.
    #[error("point {point:?}: {reason}")]
    BadValue {
        /// The point.
        point: String,
        /// Why.
        reason: String,
    },
    /// The device's `driver_config` is wrong.
    #[error("driver_config: {0}")]
    Config(String),
    /// A row of its registry is wrong.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl DriverError {
    /// Whether the device itself is unreachable or misbehaving (it is marked BAD and retried
    /// with backoff), as opposed to a caller's mistake about one point.
    pub fn is_device_fault(&self) -> bool {
        matches!(
            self,
            DriverError::Timeout(_)
                | DriverError::Connection(_)
                | DriverError::Protocol(_)
                | DriverError::Refused(_)
        )
    }
}
