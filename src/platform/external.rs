//! The seam through which calls reach agents on other platforms: a federation service
//! attaches an [`ExternalPlatforms`] to the routing table, and
//! [`RpcCall::on_platform`](crate::platform::endpoint::RpcCall::on_platform) hands it the
//! calls addressed to another instance.
//!
//! | call | without a federation | with one |
//! |------|----------------------|----------|
//! | `.on_platform(<this instance>)` | a local call | a local call |
//! | `.on_platform(<another>)` | [`RpcError::Unreachable`] at once | sent to that platform; its reply, an error it answers, [`RpcError::Unreachable`] if it is down or leaves before replying, or the caller's deadline |

use std::time::Duration;

use tokio::sync::oneshot;

use crate::core::{Args, Identity, RpcError, TraceContext, Value};

/// One call to an agent on another platform.
#[cfg_attr(
    not(feature = "mqtt"),
    allow(dead_code, reason = "read by the federation service")
)]
pub(crate) struct ExternalCall {
    /// The calling peer, on this platform.
    pub(crate) sender: Identity,
    /// The agent called, on the other platform.
    pub(crate) peer: String,
    pub(crate) method: String,
    pub(crate) args: Args,
    pub(crate) trace: Option<TraceContext>,
    /// The caller's deadline (the other platform gives up on it too).
    pub(crate) timeout: Duration,
}

/// Sends calls to other platforms (see the module docs).
pub(crate) trait ExternalPlatforms: Send + Sync + 'static {
    /// Sends `call` to `platform`; the receiver gets its reply. Fails at once with
    /// [`RpcError::Unreachable`] when that platform is not reachable now.
    fn call(
        &self,
        platform: &str,
        call: ExternalCall,
    ) -> Result<oneshot::Receiver<Result<Value, RpcError>>, RpcError>;
}
