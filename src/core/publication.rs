//! What a publish carries: sender, bus, topic, headers and message.

use crate::core::{Identity, Map, Topic, Value};

/// Publication headers: a string-keyed map of [`Value`]s, as VOLTTRON's `headers` dict.
///
/// The platform adds nothing to them implicitly; by convention VOLTTRON agents put a
/// `TimeStamp` (ISO-8601) and sometimes `Date`, `Content-Type` here.
pub type Headers = Map;

/// One message published on the bus, as delivered to every matching subscriber.
///
/// In-process subscribers share one `Arc<Publication>`: a publish never copies the
/// message per subscriber.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Publication {
    /// The identity of the publishing peer.
    pub sender: Identity,
    /// The bus (namespace) it was published on; `""` is VOLTTRON's default bus.
    pub bus: String,
    /// The topic.
    pub topic: Topic,
    /// Headers given by the publisher.
    pub headers: Headers,
    /// The message.
    pub message: Value,
    /// The instance name of the platform it was published on, when that is another
    /// platform of a federation (only `all_platforms` subscriptions receive those);
    /// `None` for a publication made on this platform.
    #[serde(default)]
    pub origin: Option<String>,
}

impl Publication {
    /// The header `name`, if the publisher set it.
    pub fn header(&self, name: &str) -> Option<&Value> {
        self.headers.get(name)
    }

    /// Whether it was published on another platform of a federation.
    pub fn is_remote(&self) -> bool {
        self.origin.is_some()
    }
}
