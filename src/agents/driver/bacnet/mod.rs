//! The BACnet/IP interface of the platform driver (driver type `"bacnet"`): VOLTTRON's
//! BACnet driver, talking to the device itself rather than through a proxy agent.
//!
//! Its `driver_config` is VOLTTRON's ([`config`]); its registry has VOLTTRON's BACnet
//! columns ([`point`]). The device is reached by unicast on its `device_address` (no
//! Who-Is, no broadcast), with rusty-bacnet's client ([`session`]) on tokio.
//!
//! | [`Driver`] method | BACnet | VOLTTRON's `BACnet` interface |
//! |-------------------|--------|-------------------------------|
//! | `scrape_all` | ReadPropertyMultiple, `max_per_request` points a request; ReadProperty point by point once the device rejects it (`unrecognized-service`) or with `use_read_multiple: false`, and for one request the device answers with an Error PDU (none of its properties could be read); half as many points a request (of the batch that failed) after an abort for size (`segmentation-not-supported`, `buffer-overflow`) | `get_multiple_points` |
//! | `get_point` | ReadProperty | `get_point` |
//! | `set_point` | WriteProperty at the point's `Write Priority`, then ReadProperty: the value the device now holds | `set_point` |
//! | `revert_point` | WriteProperty of Null at the point's `Write Priority` (relinquish): `Ok(true)` | `revert_point` |
//! | `subscribe_changes` | SubscribeCOV (confirmed) of each object with a `COV Flag` point, for `cov_lifetime` seconds, renewed before it ends; each notification's values of registry points become changes | `establish_cov_subscription` through the proxy, `forward_bacnet_cov_value` |
//!
//! A point the device answers with an error inside a scrape is left out of that scrape
//! (logged with its BACnet error class and code); a scrape whose request fails as a whole
//! (timeout, reject, abort) fails. `get_point` of an object the device lacks is
//! [`DriverError::Refused`] naming the error (`BACnet error: object / unknown-object`); a
//! device that does not answer is [`DriverError::Timeout`].
//!
//! A COV notification is taken from the device's address only, for this driver's
//! subscriber process (the device instance); it is published as VOLTTRON publishes a COV
//! value (the point's topics, an `all` message with that point alone). An object the
//! device refuses SubscribeCOV for is logged and left out, the others still report; when it
//! refuses them all the feed fails, the device is still scraped, and the platform driver
//! tries again one interval later.
//!
//! Not done: routed addresses (a device behind a BACnet router), segmented requests larger
//! than one APDU.

pub mod config;
pub mod point;
pub mod session;
pub mod value;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bacnet_client::client::ReceivedCOVNotification;
use bacnet_types::constructed::{PropertyReference, ReadAccessSpecification};
use bacnet_types::primitives::ObjectIdentifier;
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::core::Value;

use super::interface::{ChangeFeed, DeviceSetup, Driver, DriverError, DriverFuture, PointChange, PointMeta};
use config::BacnetConfig;
use point::BacnetPoint;
use session::Session;

/// The `"bacnet"` driver type's factory: checks `driver_config` and the registry; the UDP
/// socket is bound on the first request.
pub fn factory(setup: &DeviceSetup<'_>) -> Result<Box<dyn Driver>, DriverError> {
    Ok(Box::new(BacnetDriver::new(setup)?))
}

/// One BACnet device; see the [module docs](self).
#[derive(Debug)]
pub struct BacnetDriver {
    device: String,
    points: Vec<BacnetPoint>,
    metas: Vec<PointMeta>,
    by_name: HashMap<String, usize>,
    max_per_request: usize,
    use_read_multiple: bool,
    session: Session,
    device_id: u32,
    cov_lifetime: u32,
}

impl BacnetDriver {
    /// Reads the device's `driver_config` and registry.
    pub fn new(setup: &DeviceSetup<'_>) -> Result<BacnetDriver, DriverError> {
        let config = BacnetConfig::parse(setup.driver_config, setup.timeout)?;
        let mut points = Vec::with_capacity(setup.registry.rows.len());
        let mut by_name = HashMap::new();
        for row in &setup.registry.rows {
            let point = BacnetPoint::from_row(row, config.min_priority)?;
            if by_name.insert(point.meta.name.clone(), points.len()).is_some() {
                let column = row
                    .get("Volttron Point Name")
                    .map_or("Point Name", |_| "Volttron Point Name");
                return Err(row
                    .error(column, format!("{:?} names another row too", point.meta.name))
                    .into());
            }
            points.push(point);
        }
        Ok(BacnetDriver {
            device: setup.device.to_owned(),
            metas: points.iter().map(|p| p.meta.clone()).collect(),
            points,
            by_name,
            max_per_request: config.max_per_request,
            use_read_multiple: config.use_read_multiple,
            session: Session::new(config.device_address, config.local_address, config.timeout),
            device_id: config.device_id,
            cov_lifetime: config.cov_lifetime,
        })
    }

    /// SubscribeCOV of every object with a `COV Flag` point; the feed of their changes.
    async fn subscribe(&mut self) -> Result<Option<ChangeFeed>, DriverError> {
        let mut objects: Vec<ObjectIdentifier> = Vec::new();
        for point in self.points.iter().filter(|p| p.cov) {
            if !objects.contains(&point.object) {
                objects.push(point.object);
            }
        }
        if objects.is_empty() {
            return Ok(None);
        }
        let process = self.device_id;
        let (notifications, answers) = self
            .session
            .subscribe_cov(process, &objects, self.cov_lifetime)
            .await?;
        // An object the device refuses is logged and left out; the others still report.
        let mut first_error = None;
        let mut refused = 0;
        for (object, answer) in objects.iter().zip(answers) {
            if let Err(e) = answer {
                tracing::warn!(device = %self.device, ?object, "SubscribeCOV refused: {e}");
                refused += 1;
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error.filter(|_| refused == objects.len()) {
            return Err(e);
        }
        let lifetime = Duration::from_secs(u64::from(self.cov_lifetime));
        let renew_after = if lifetime > Duration::from_secs(6) {
            lifetime - Duration::from_secs(3)
        } else {
            lifetime / 2
        };
        let points = self.points.clone();
        let (device, mac) = (self.device.clone(), self.session.device_mac());
        let received = futures::stream::unfold(notifications, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(notification) => return Some((notification, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("{n} COV notifications dropped: the driver fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        let changes = received
            .flat_map(move |n| futures::stream::iter(changes_of(&device, &mac, process, &points, &n)));
        Ok(Some(ChangeFeed {
            changes: changes.boxed(),
            renew_after: Some(renew_after),
        }))
    }

    fn point(&self, name: &str) -> Result<&BacnetPoint, DriverError> {
        self.by_name
            .get(name)
            .map(|&i| &self.points[i])
            .ok_or_else(|| DriverError::UnknownPoint(name.to_owned()))
    }

    fn writable(&self, name: &str) -> Result<BacnetPoint, DriverError> {
        let point = self.point(name)?;
        if !point.meta.writable {
            return Err(DriverError::NotWritable(name.to_owned()));
        }
        Ok(point.clone())
    }

    async fn read_point(&mut self, point: &BacnetPoint) -> Result<Value, DriverError> {
        let bytes = self
            .session
            .read(point.object, point.property, point.array_index)
            .await?;
        value::decode(&bytes)
    }

    async fn scrape(&mut self) -> Result<BTreeMap<String, Value>, DriverError> {
        let mut values = BTreeMap::new();
        let mut next = 0;
        while self.use_read_multiple && next < self.points.len() {
            let end = (next + self.max_per_request).min(self.points.len());
            let specs = self.points[next..end]
                .iter()
                .map(|p| ReadAccessSpecification {
                    object_identifier: p.object,
                    list_of_property_references: vec![PropertyReference {
                        property_identifier: p.property,
                        property_array_index: p.array_index,
                    }],
                })
                .collect();
            match self.session.read_multiple(specs).await {
                Ok(results) => {
                    for (i, result) in (next..end).zip(results) {
                        self.keep(&mut values, i, result.and_then(|bytes| value::decode(&bytes)));
                    }
                    next = end;
                }
                Err(e) if session::is_unrecognized_service(&e) => {
                    tracing::info!(device = %self.device, "the device rejects ReadPropertyMultiple; reading point by point");
                    self.use_read_multiple = false;
                }
                Err(e) if session::is_error_pdu(&e) => {
                    // Nothing of the batch could be read (a device answers so when none of
                    // its objects exists): find out point by point which ones fail.
                    self.read_one_by_one(&mut values, next..end).await?;
                    next = end;
                }
                Err(e) if session::is_too_large(&e) && end - next > 1 => {
                    self.max_per_request = (end - next).div_ceil(2);
                    tracing::info!(device = %self.device, max_per_request = self.max_per_request, "answer too large for the device ({e}); fewer points a request");
                }
                Err(e) => return Err(e),
            }
        }
        self.read_one_by_one(&mut values, next..self.points.len()).await?;
        Ok(values)
    }

    /// ReadProperty of each point of `range` into a scrape; a point the device refuses is
    /// left out, a device that stops answering fails the scrape.
    async fn read_one_by_one(
        &mut self,
        values: &mut BTreeMap<String, Value>,
        range: std::ops::Range<usize>,
    ) -> Result<(), DriverError> {
        for i in range {
            let point = self.points[i].clone();
            match self.read_point(&point).await {
                Err(e @ (DriverError::Timeout(_) | DriverError::Connection(_))) => return Err(e),
                result => self.keep(values, i, result),
            }
        }
        Ok(())
    }

    /// Adds point `i`'s value to a scrape, or logs why it has none.
    fn keep(&self, values: &mut BTreeMap<String, Value>, i: usize, result: Result<Value, DriverError>) {
        let name = &self.points[i].meta.name;
        match result {
            Ok(value) => {
                values.insert(name.clone(), value);
            }
            Err(e) => tracing::warn!(device = %self.device, point = %name, "left out of the scrape: {e}"),
        }
    }
}

impl Driver for BacnetDriver {
    fn points(&self) -> &[PointMeta] {
        &self.metas
    }

    fn scrape_all(&mut self) -> DriverFuture<'_, BTreeMap<String, Value>> {
        Box::pin(self.scrape())
    }

    fn get_point<'a>(&'a mut self, point: &'a str) -> DriverFuture<'a, Value> {
        Box::pin(async move {
            let point = self.point(point)?.clone();
            self.read_point(&point).await
        })
    }

    fn set_point<'a>(&'a mut self, point: &'a str, value: Value) -> DriverFuture<'a, Value> {
        Box::pin(async move {
            let point = self.writable(point)?;
            let bytes = value::encode(&point, &value)?;
            self.session
                .write(
                    point.object,
                    point.property,
                    point.array_index,
                    bytes,
                    point.priority,
                )
                .await?;
            self.read_point(&point).await
        })
    }

    fn subscribe_changes(&mut self) -> DriverFuture<'_, Option<ChangeFeed>> {
        Box::pin(self.subscribe())
    }

    fn revert_point<'a>(&'a mut self, point: &'a str) -> DriverFuture<'a, bool> {
        Box::pin(async move {
            let point = self.writable(point)?;
            let null = value::encode(&point, &Value::Null)?;
            self.session
                .write(
                    point.object,
                    point.property,
                    point.array_index,
                    null,
                    point.priority,
                )
                .await?;
            Ok(true)
        })
    }
}

/// The changes a COV notification holds for this device's points: none when it comes from
/// another address or for another subscriber process.
fn changes_of(
    device: &str,
    mac: &[u8],
    process: u32,
    points: &[BacnetPoint],
    received: &ReceivedCOVNotification,
) -> Vec<PointChange> {
    let n = &received.notification;
    if received.source_mac.as_slice() != mac || n.subscriber_process_identifier != process {
        return Vec::new();
    }
    let mut changes = Vec::new();
    for element in &n.list_of_values {
        let matching = points.iter().filter(|p| {
            p.object == n.monitored_object_identifier
                && p.property == element.property_identifier
                && p.array_index == element.property_array_index
        });
        for point in matching {
            match value::decode(&element.value) {
                Ok(value) => changes.push(PointChange {
                    point: point.meta.name.clone(),
                    value,
                }),
                Err(e) => tracing::warn!(device, point = %point.meta.name, "undecodable COV value: {e}"),
            }
        }
    }
    changes
}
