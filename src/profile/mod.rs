//! CPU profiles on demand (feature `profile`): of the running platform, or of one of its
//! agents' processes, fetched over the platform from anywhere it is reachable.
//!
//! ```text
//! vctl profile --seconds 10 -o platform.folded            # the platform's process
//! vctl profile --agent meter.1 --seconds 10 -o meter.folded   # a Rust agent process
//! vctl profile --agent listener --seconds 10 -o py.folded     # a Python agent (py-spy)
//! vctl profile --seconds 10 -o platform.svg               # a flame graph (feature `flamegraph`)
//! ```
//!
//! | what is profiled | who samples | how |
//! |------------------|-------------|-----|
//! | the platform | the [`ProfileService`] (`platform.profile.cpu`) | [`profile_process`]: pprof's `SIGPROF` sampler with its frame-pointer unwinder, on a thread of its own; the RPC handler only awaits it |
//! | a Rust agent process (`volttron::remote`) | the agent process itself, asked by the service for [`AGENT_METHOD`] (`profile.cpu`) | the same, in that process, off the agent's thread |
//! | an installed Python agent | the service, with `py-spy record` ([`python`]) | py-spy's folded output (`--format raw`) |
//! | an agent inside the platform | — | its stacks are in the platform's profile |
//!
//! | rule | what happens |
//! |------|--------------|
//! | nothing asked | no signal handler, no timer: the sampler is installed for a profile and removed after it ([`sampler`]) |
//! | caller without the `profile` capability | refused by the router: [`RpcError::Unauthorized`](crate::RpcError::Unauthorized) (`-32001`); `vctl` (`control.connection`) is the platform's own and may ([`crate::auth::authz::PROFILE`]) |
//! | an agent process asked by anyone but `platform.profile` | refused the same way: the capability is checked once, at the platform |
//! | a second profile of a process while one runs | [`ProfileError::Busy`] (the service answers its requests in turn) |
//! | `seconds` 0, above [`MAX_SECONDS`], or not whole | [`ProfileError::InvalidSeconds`], before anything starts |
//! | py-spy missing | [`ProfileError::PySpyMissing`], with the `pip install` line |
//! | `-o FILE.svg` | an SVG flame graph drawn from the folded stacks by vctl (`volttron::profile::flamegraph`, feature `flamegraph`: inferno is CDDL-1.0); without the feature [`ProfileError::FlamegraphDisabled`] |
//!
//! The output is [folded stacks](Profile): one line per stack, root first, with its
//! sample count, which every flame graph tool reads. The stacks are real only if the
//! code was built with frame pointers: this crate's `.cargo/config.toml` sets
//! `-C force-frame-pointers=yes`, and Rust's std for x86_64 Linux ships with them; an
//! application that embeds the platform sets the flag in its own build.
//!
//! An embedding application takes a profile of its own process with
//! [`profile_process`] (or [`profile_process_blocking`]), and plugs the service in with
//! `PlatformBuilder::service(ProfileService::new())`.

pub mod agent_process;
pub mod cli;
mod error;
#[cfg(feature = "flamegraph")]
pub mod flamegraph;
mod folded;
pub mod python;
pub mod sampler;
mod seconds;
mod service;

pub use agent_process::AGENT_METHOD;
pub use error::ProfileError;
pub use folded::Profile;
pub use sampler::{FREQUENCY, profile_process, profile_process_blocking};
pub use seconds::checked_seconds;
pub use service::{ANSWER_MARGIN, IDENTITY, METHOD, ProfileService};

/// The longest profile, in seconds (ten minutes).
pub const MAX_SECONDS: u64 = 600;

/// The py-spy release the error for a missing py-spy names (PyPI `py-spy`; the version
/// `.ci/python-requirements.txt` pins).
pub const PY_SPY_VERSION: &str = "0.4.3";
