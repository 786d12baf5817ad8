//! VOLTTRON's platform driver: scrapes devices and publishes their points.
//!
//! Work in progress: the [`Driver`] seam and the registry.

#[cfg(feature = "bacnet")]
pub mod bacnet;
pub mod interface;
pub mod registry;

pub use interface::{DeviceSetup, Driver, DriverError, DriverFactory, DriverFuture, PointKind, PointMeta};
pub use registry::{Registry, RegistryError, RegistryRow};

/// The platform driver agent (being built).
#[derive(Debug, Default)]
pub struct PlatformDriver;
