//! [`ProfileError`]: why a profile was not taken, or not written.

use std::path::PathBuf;

use crate::core::RpcError;

use super::{MAX_SECONDS, PY_SPY_VERSION};

/// Why a profile was not taken, fetched or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The duration is zero, too long, or not a whole number of seconds.
    #[error("the profile's duration must be a whole number of seconds from 1 to {MAX_SECONDS}, not {given}")]
    InvalidSeconds {
        /// The duration as given.
        given: String,
    },
    /// A profile of this process is being taken already (there is one sampler per process).
    #[error("a profile of {process} is being taken already; try again when it is done")]
    Busy {
        /// `the platform` or the agent's identity.
        process: String,
    },
    /// The caller lacks the `profile` capability (see [`crate::auth::authz::PROFILE`]).
    #[error("not allowed to take a profile: {0}")]
    Unauthorized(String),
    /// The agent runs in no process that can profile itself: an in-process agent, an agent
    /// that is not running, or a Rust agent process built without the `profile` feature.
    #[error("'{agent}' cannot be profiled: {reason}")]
    NotProfilable {
        /// The agent's identity.
        agent: String,
        /// Why not.
        reason: String,
    },
    /// The agent is a Python agent and `py-spy` is not installed on the platform's host.
    #[error(
        "'{agent}' is a Python agent, and its profile is taken with py-spy, which is not installed \
         (looked for {looked_for}); install it where the platform runs with: \
         pip install py-spy=={PY_SPY_VERSION} (it needs ptrace permission: run the platform as root, \
         or set kernel.yama.ptrace_scope=0)"
    )]
    PySpyMissing {
        /// The agent's identity.
        agent: String,
        /// Where py-spy was looked for.
        looked_for: String,
    },
    /// `py-spy record` ran and failed.
    #[error("py-spy could not profile '{agent}' (pid {pid}): {message}")]
    PySpy {
        /// The agent's identity.
        agent: String,
        /// Its process.
        pid: u32,
        /// py-spy's own words (its standard error), or why it could not run.
        message: String,
    },
    /// pprof's sampler could not start or report.
    #[error("the CPU sampler failed: {0}")]
    Sampler(String),
    /// The platform or the agent process could not be asked.
    #[error(transparent)]
    Rpc(RpcError),
    /// The answer is not a profile.
    #[error("the answer is not a profile: {0}")]
    Reply(String),
    /// The output file could not be written.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An SVG flame graph was asked for from a build without the `flamegraph` feature.
    #[error(
        "an SVG flame graph needs the `flamegraph` feature (inferno, CDDL-1.0), which this build \
         lacks: rebuild with `--features flamegraph`, or write the folded stacks (-o FILE.folded) \
         and render them with inferno-flamegraph or flamegraph.pl"
    )]
    FlamegraphDisabled,
    /// inferno could not render the folded stacks.
    #[error("the flame graph did not render: {0}")]
    Render(String),
}

impl From<RpcError> for ProfileError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Unauthorized { message, .. } => ProfileError::Unauthorized(message),
            other => ProfileError::Rpc(other),
        }
    }
}
