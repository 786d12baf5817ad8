//! The profile an agent process takes of itself: [`AGENT_METHOD`], answered by the
//! remote runtime ([`crate::remote`]) of a Rust agent process built with the `profile`
//! feature, off the agent's thread.
//!
//! | caller | answer |
//! |--------|--------|
//! | `platform.profile` (on behalf of a caller it checked for the `profile` capability) | the process's [`Profile`](super::Profile) |
//! | anyone else | [`RpcError::Unauthorized`]: ask the platform (`vctl profile --agent ID`) |
//! | a profile of this process already running | an error naming [`ProfileError::Busy`]'s reason |

use crate::agent::{ArgReader, HandlerError};
use crate::auth::authz::PROFILE_SERVICE;
use crate::core::{Args, Identity, RpcError, Value};

use super::{ProfileError, profile_process, seconds::checked_value};

/// The method of an agent process that answers with its own profile: `seconds` (1 to
/// [`MAX_SECONDS`](super::MAX_SECONDS)) → a [`Profile`](super::Profile).
pub const AGENT_METHOD: &str = "profile.cpu";

/// Answers [`AGENT_METHOD`] for the agent process `identity`, asked by `caller`.
pub(crate) async fn answer(identity: Identity, caller: Identity, args: Args) -> Result<Value, RpcError> {
    let invalid = |message: String| RpcError::InvalidParams {
        method: AGENT_METHOD.to_owned(),
        message,
    };
    if caller.as_str() != PROFILE_SERVICE {
        return Err(RpcError::Unauthorized {
            method: AGENT_METHOD.to_owned(),
            message: format!(
                "an agent process profiles itself for {PROFILE_SERVICE} only, not for '{caller}': \
                 ask the platform (vctl profile --agent {identity})"
            ),
        });
    }
    let mut reader = ArgReader::new(AGENT_METHOD, &["seconds"], args).map_err(|e| match e {
        HandlerError::InvalidParams(m) | HandlerError::Failed(m) => invalid(m),
    })?;
    let seconds: Value = reader.next(0).map_err(|e| match e {
        HandlerError::InvalidParams(m) | HandlerError::Failed(m) => invalid(m),
    })?;
    let duration = checked_value(&seconds).map_err(|e| invalid(e.to_string()))?;
    let profile = profile_process(identity.as_str(), duration)
        .await
        .map_err(|e: ProfileError| RpcError::Remote {
            method: AGENT_METHOD.to_owned(),
            message: e.to_string(),
            kind: "error".into(),
        })?;
    crate::to_value(&profile).map_err(|e| RpcError::InvalidReply {
        message: e.to_string(),
    })
}
