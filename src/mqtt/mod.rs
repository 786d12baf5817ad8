//! Many platforms as one: VOLTTRON's external discovery and routing through an MQTT 5
//! broker (feature `mqtt`), and plain MQTT for other systems.
//!
//! A platform joins a federation with a `[federation]` section in its config
//! ([`config`]) or [`FederationService`] given to
//! [`PlatformBuilder::service`](crate::PlatformBuilder::service). Then:
//!
//! | VOLTTRON | here |
//! |----------|------|
//! | `subscribe(peer, prefix, cb, all_platforms=True)` | `#[subscribe("devices/", all_platforms = true)]`, [`AgentContext::subscribe_all_platforms`](crate::AgentContext::subscribe_all_platforms): publications of every federated platform under the prefix, each with [`Publication::origin`](crate::Publication::origin) |
//! | `external_list` / `external_publish` | exported prefixes leave a platform as `volttron/<instance>/pubsub/<topic>`; the broker sends each where an `all_platforms` subscription wants it (the topic tree is in `topics.rs`) |
//! | `vip.rpc.call(peer, m, external_platform="site2")` | `ctx.call(peer, m, args).on_platform("site2")`: MQTT 5 request/response, the same deadlines and errors, [`RpcError::Unreachable`](crate::RpcError::Unreachable) when it is down |
//! | `external_platform_discovery.json`, routers' `hello` | retained status messages and last wills: `vctl federation status`, `platform.federation`'s `list_platforms` ([`agent`]) |
//! | — | a crash-safe, bounded backlog while the broker is away ([`backlog`]; what the link does with it is in `outbox.rs`) |
//! | — | `mqtt-export` / `mqtt-import` rules for systems that speak MQTT ([`bridging`]) |
//!
//! A remote caller or publisher is `<platform>.<identity>` to this platform, so
//! `authz.json` capabilities and protected topics apply to it. Scaling out is the
//! broker's: a platform keeps one connection, and a broker cluster (EMQX, HiveMQ,
//! mosquitto bridges) carries the fan-out.

pub mod agent;
pub mod backlog;
pub mod bridging;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub(crate) mod dedup;
pub(crate) mod directory;
pub(crate) mod link;
pub(crate) mod outbox;
pub mod service;
pub(crate) mod topics;
pub(crate) mod wire;

pub use agent::IDENTITY;
pub use bridging::{ExportRule, ImportRule};
pub use config::{BrokerAddress, FederationConfig, FederationConfigError};
pub use service::{FederationExt, FederationService};
