//! The vocabulary of the bus, with no actor runtime in sight: payloads ([`Value`]),
//! peer names ([`Identity`]), topics and the subscription index, publications and RPC
//! arguments and errors.
//!
//! Everything here is plain data that both the in-process platform and (later) the
//! socket bridge speak.

pub mod caller;
pub(crate) mod glob;
pub mod health;
pub mod identity;
#[cfg(any(feature = "vip", feature = "web"))]
#[cfg_attr(
    not(feature = "vip"),
    allow(dead_code, reason = "the VIP listener uses all of it")
)]
pub(crate) mod json;
#[cfg(any(feature = "vip", feature = "web"))]
#[cfg_attr(
    not(feature = "vip"),
    allow(dead_code, reason = "the VIP listener uses all of it")
)]
pub(crate) mod jsonrpc;
pub mod publication;
pub mod rpc;
pub mod subscription;
pub mod topic;
pub mod trace;
pub mod value;

pub use caller::Caller;
pub use health::{Health, Status};
pub use identity::{Identity, IdentityError};
pub use publication::{Headers, Publication};
pub use rpc::{Args, IntoArgs, RpcError};
pub use subscription::SubscriptionIndex;
pub use topic::{SubscriptionKind, Topic, TopicError};
pub use trace::{TraceContext, TraceContextError};
pub use value::{Map, Value, ValueError, from_value, to_value};
