//! The BACnet/IP client of one device: bound on first use, then ReadProperty,
//! ReadPropertyMultiple, WriteProperty and SubscribeCOV to the device's unicast address, and
//! the COV notifications it sends back (confirmed ones acknowledged by the client).
//!
//! | the device (or the network) answers | [`DriverError`] |
//! |-------------------------------------|-----------------|
//! | Error PDU | `Refused("BACnet error: object / unknown-object")` |
//! | Reject PDU | `Refused("BACnet reject: unrecognized-service")` |
//! | Abort PDU | `Refused("BACnet abort: segmentation-not-supported")` |
//! | nothing within `timeout` | `Timeout(timeout)` |
//! | an undecodable or mismatched acknowledgement | `Protocol(..)` |
//! | the local UDP socket fails | `Connection(..)` |
//!
//! One request at a time and no retries: `timeout` is the whole budget of a request, and
//! the platform driver's backoff does the retrying.

use std::net::SocketAddrV4;
use std::time::Duration;

use bacnet_client::client::{BACnetClient, ReceivedCOVNotification};
use bacnet_transport::bip::BipTransport;
use bacnet_types::constructed::ReadAccessSpecification;
use bacnet_types::enums::{AbortReason, PropertyIdentifier, RejectReason};
use bacnet_types::error::{Error as BacnetError, RemoteError};
use bacnet_types::primitives::ObjectIdentifier;

use super::super::interface::DriverError;

/// What one element of a ReadPropertyMultiple answer holds: the value's bytes, or the
/// device's error for that property.
pub type ReadResult = Result<Vec<u8>, DriverError>;

/// The client of one device.
pub struct Session {
    device: [u8; 6],
    local: SocketAddrV4,
    timeout: Duration,
    client: Option<BACnetClient<BipTransport>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("device", &self.device)
            .field("local", &self.local)
            .field("bound", &self.client.is_some())
            .finish()
    }
}

impl Session {
    /// A session to `device`, from `local`; nothing is bound until the first request.
    pub fn new(device: SocketAddrV4, local: SocketAddrV4, timeout: Duration) -> Session {
        let [a, b, c, d] = device.ip().octets();
        let [hi, lo] = device.port().to_be_bytes();
        Session {
            device: [a, b, c, d, hi, lo],
            local,
            timeout,
            client: None,
        }
    }

    async fn client(&mut self) -> Result<&BACnetClient<BipTransport>, DriverError> {
        if self.client.is_none() {
            let millis = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX).max(1);
            let client = BACnetClient::bip_builder()
                .interface(*self.local.ip())
                .port(self.local.port())
                .apdu_timeout_ms(millis)
                .apdu_retries(0)
                .build()
                .await
                .map_err(|e| {
                    DriverError::Connection(format!("cannot bind BACnet/IP on {}: {e}", self.local))
                })?;
            self.client = Some(client);
        }
        self.client
            .as_ref()
            .ok_or_else(|| DriverError::Connection("BACnet client not started".into()))
    }

    /// ReadProperty: the value's application-tagged bytes.
    pub async fn read(
        &mut self,
        object: ObjectIdentifier,
        property: PropertyIdentifier,
        array_index: Option<u32>,
    ) -> Result<Vec<u8>, DriverError> {
        let (device, timeout) = (self.device, self.timeout);
        let client = self.client().await?;
        let ack = bounded(
            timeout,
            client.read_property(&device, object, property, array_index),
        )
        .await?;
        Ok(ack.property_value)
    }

    /// ReadPropertyMultiple: one result per requested property, in request order. The
    /// device may answer out of order or leave one out; each element is matched by its
    /// object, property and array index, and one left out is a `Protocol` error.
    pub async fn read_multiple(
        &mut self,
        specs: Vec<ReadAccessSpecification>,
    ) -> Result<Vec<ReadResult>, DriverError> {
        let (device, timeout) = (self.device, self.timeout);
        let wanted: Vec<_> = specs
            .iter()
            .flat_map(|spec| {
                spec.list_of_property_references.iter().map(|r| {
                    (
                        spec.object_identifier,
                        r.property_identifier,
                        r.property_array_index,
                    )
                })
            })
            .collect();
        let client = self.client().await?;
        let ack = bounded(timeout, client.read_property_multiple(&device, specs)).await?;
        let mut answers: Vec<_> = ack
            .list_of_read_access_results
            .into_iter()
            .flat_map(|result| {
                let object = result.object_identifier;
                result
                    .list_of_results
                    .into_iter()
                    .map(move |element| (object, element))
            })
            .map(Some)
            .collect();
        let results = wanted
            .into_iter()
            .map(|(object, property, index)| {
                let found = answers.iter_mut().find(|answer| {
                    answer.as_ref().is_some_and(|(o, e)| {
                        *o == object && e.property_identifier == property && e.property_array_index == index
                    })
                });
                let Some((_, element)) = found.and_then(Option::take) else {
                    return Err(DriverError::Protocol(format!(
                        "ReadPropertyMultiple answer lacks {object:?} {property:?}"
                    )));
                };
                match (element.property_value, element.error) {
                    (Some(bytes), _) => Ok(bytes),
                    (None, Some((class, code))) => {
                        Err(refused(&BacnetError::Remote(RemoteError::Error { class, code })))
                    }
                    (None, None) => Err(DriverError::Protocol(format!(
                        "ReadPropertyMultiple answer for {object:?} {property:?} has neither value nor error"
                    ))),
                }
            })
            .collect();
        Ok(results)
    }

    /// The device's BACnet/IP address as a MAC (4 address bytes, 2 port bytes).
    pub fn device_mac(&self) -> [u8; 6] {
        self.device
    }

    /// SubscribeCOV (confirmed notifications, `lifetime` seconds) to each of `objects` as
    /// `process_id`: the receiver of every COV notification the client gets from then on
    /// (made before the first request, so that the device's first notification is not
    /// missed), and each object's answer.
    pub async fn subscribe_cov(
        &mut self,
        process_id: u32,
        objects: &[ObjectIdentifier],
        lifetime: u32,
    ) -> Result<
        (
            tokio::sync::broadcast::Receiver<ReceivedCOVNotification>,
            Vec<Result<(), DriverError>>,
        ),
        DriverError,
    > {
        let (device, timeout) = (self.device, self.timeout);
        let client = self.client().await?;
        let notifications = client.cov_notifications();
        let mut answers = Vec::with_capacity(objects.len());
        for object in objects {
            answers.push(
                bounded(
                    timeout,
                    client.subscribe_cov(&device, process_id, *object, true, Some(lifetime)),
                )
                .await,
            );
        }
        Ok((notifications, answers))
    }

    /// WriteProperty at `priority` (1 ..= 16).
    pub async fn write(
        &mut self,
        object: ObjectIdentifier,
        property: PropertyIdentifier,
        array_index: Option<u32>,
        value: Vec<u8>,
        priority: u8,
    ) -> Result<(), DriverError> {
        let (device, timeout) = (self.device, self.timeout);
        let client = self.client().await?;
        bounded(
            timeout,
            client.write_property(&device, object, property, array_index, value, Some(priority)),
        )
        .await
    }
}

/// Runs one request with the whole budget as a backstop over the client's own APDU timer.
async fn bounded<T>(
    timeout: Duration,
    request: impl std::future::Future<Output = Result<T, BacnetError>>,
) -> Result<T, DriverError> {
    match tokio::time::timeout(timeout + Duration::from_millis(500), request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(classify(&e, timeout)),
        Err(_) => Err(DriverError::Timeout(timeout)),
    }
}

/// Which [`DriverError`] a client error is; see the [module docs](self).
fn classify(error: &BacnetError, timeout: Duration) -> DriverError {
    match error {
        BacnetError::Timeout(_)
        | BacnetError::Remote(RemoteError::Abort {
            reason: AbortReason::TSM_TIMEOUT,
        }) => DriverError::Timeout(timeout),
        BacnetError::Remote(_) | BacnetError::Structured { .. } => refused(error),
        BacnetError::Transport(e) => DriverError::Connection(e.to_string()),
        other => DriverError::Protocol(other.to_string()),
    }
}

/// The device's Error, Reject or Abort, by name.
fn refused(error: &BacnetError) -> DriverError {
    let text = match error {
        BacnetError::Remote(RemoteError::Reject { reason }) => reject_text(*reason),
        BacnetError::Remote(RemoteError::Abort { reason }) => abort_text(*reason),
        other => other.to_string(),
    };
    DriverError::Refused(text)
}

/// Whether the device turned ReadPropertyMultiple down as a service it lacks.
pub fn is_unrecognized_service(error: &DriverError) -> bool {
    matches!(error, DriverError::Refused(text) if text == &reject_text(RejectReason::UNRECOGNIZED_SERVICE))
}

/// Whether the device answered with an Error PDU (not a Reject or an Abort).
pub fn is_error_pdu(error: &DriverError) -> bool {
    matches!(error, DriverError::Refused(text) if text.starts_with("BACnet error: "))
}

/// Whether the device could not send an answer that large (fewer points per request may do).
pub fn is_too_large(error: &DriverError) -> bool {
    [
        AbortReason::SEGMENTATION_NOT_SUPPORTED,
        AbortReason::BUFFER_OVERFLOW,
    ]
    .iter()
    .any(|reason| matches!(error, DriverError::Refused(text) if text == &abort_text(*reason)))
}

fn reject_text(reason: RejectReason) -> String {
    format!("BACnet reject: {}", name(reason.name(), reason.to_raw()))
}

fn abort_text(reason: AbortReason) -> String {
    format!("BACnet abort: {}", name(reason.name(), reason.to_raw()))
}

/// `UNRECOGNIZED_SERVICE` → `unrecognized-service`; the number when it has no name.
fn name(named: Option<&str>, raw: u8) -> String {
    match named {
        Some(named) => named.to_ascii_lowercase().replace('_', "-"),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bacnet_types::enums::{ErrorClass, ErrorCode};

    #[test]
    fn errors_are_classified_by_name() {
        let t = Duration::from_secs(1);
        let e = classify(
            &BacnetError::Remote(RemoteError::Error {
                class: ErrorClass::OBJECT,
                code: ErrorCode::UNKNOWN_OBJECT,
            }),
            t,
        );
        assert_eq!(
            e,
            DriverError::Refused("BACnet error: object / unknown-object".into())
        );
        let reject = classify(
            &BacnetError::Remote(RemoteError::Reject {
                reason: RejectReason::UNRECOGNIZED_SERVICE,
            }),
            t,
        );
        assert!(is_error_pdu(&e) && !is_error_pdu(&reject));
        assert!(is_unrecognized_service(&reject), "{reject:?}");
        let abort = classify(
            &BacnetError::Remote(RemoteError::Abort {
                reason: AbortReason::SEGMENTATION_NOT_SUPPORTED,
            }),
            t,
        );
        assert!(
            is_too_large(&abort) && !is_unrecognized_service(&abort),
            "{abort:?}"
        );
        let timeout = classify(
            &BacnetError::Remote(RemoteError::Abort {
                reason: AbortReason::TSM_TIMEOUT,
            }),
            t,
        );
        assert_eq!(timeout, DriverError::Timeout(t));
    }
}
