//! # volttron
//!
//! An embeddable actor platform for distributed sensing and control, after Eclipse
//! VOLTTRON™: agents are plain structs, the platform routes pub/sub and RPC between them,
//! and a building-management application embeds the whole thing.
//!
//! ## An agent
//!
//! ```
//! use volttron::prelude::*;
//!
//! /// Turns zone temperatures into a cooling command.
//! #[derive(Default)]
//! struct Thermostat {
//!     setpoint: f64,
//!     last: Option<f64>,
//! }
//!
//! #[volttron::agent]
//! impl Thermostat {
//!     #[on_start]
//!     fn start(&mut self, ctx: &AgentContext) {
//!         self.setpoint = 22.0;
//!         ctx.publish("campus/hq/thermostat/status", "online").unwrap();
//!     }
//!
//!     /// Every reading of every zone.
//!     #[subscribe("devices/campus/hq/")]
//!     fn on_reading(&mut self, ctx: &AgentContext, msg: &Publication) {
//!         if let Some(t) = msg.message["temperature"].as_f64() {
//!             self.last = Some(t);
//!             let cooling = t > self.setpoint;
//!             ctx.publish("campus/hq/thermostat/cooling", cooling).unwrap();
//!         }
//!     }
//!
//!     /// Changes the setpoint; returns the previous one.
//!     #[rpc]
//!     fn set_point(&mut self, value: f64) -> Result<f64, String> {
//!         if !(10.0..=30.0).contains(&value) {
//!             return Err(format!("{value} is outside 10..=30"));
//!         }
//!         Ok(std::mem::replace(&mut self.setpoint, value))
//!     }
//!
//!     #[periodic(secs = 60)]
//!     fn report(&mut self, ctx: &AgentContext) {
//!         ctx.publish("campus/hq/thermostat/last", self.last).unwrap();
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Test it in-process with a virtual clock:
//! use std::time::Duration;
//! let tp = volttron::testing::TestPlatform::start().await;
//! let cooling = tp.capture("campus/hq/thermostat/cooling");
//! tp.spawn("thermostat", Thermostat::default()).await.unwrap();
//! tp.publish("devices/campus/hq/zone1/all", serde_json::json!({"temperature": 24.5})).unwrap();
//! tp.settle().await;
//! assert_eq!(cooling.last().unwrap().message, Value::from(true));
//! let old: f64 = tp.call("thermostat", "set_point", (25.0,)).returning().await.unwrap();
//! assert_eq!(old, 22.0);
//! let err = tp.call("thermostat", "set_point", (99.0,)).await.unwrap_err();
//! assert!(err.to_string().contains("outside"));
//! tp.advance(Duration::from_secs(60)).await;
//! tp.shutdown().await;
//! # }
//! ```
//!
//! ## Embedding
//!
//! ```
//! use std::time::Duration;
//! use volttron::prelude::*;
//!
//! #[derive(Default)]
//! struct Echo;
//!
//! #[volttron::agent]
//! impl Echo {
//!     #[rpc]
//!     fn echo(&mut self, text: String) -> String {
//!         text
//!     }
//! }
//!
//! #[volttron::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let platform = Platform::builder()
//!         .instance_name("bms1")
//!         .rpc_timeout(Duration::from_secs(5))
//!         .start()
//!         .await?;
//!     platform.spawn("echo", Echo).await?;
//!     let reply: String = platform.call("echo", "echo", ("hello",)).returning().await?;
//!     assert_eq!(reply, "hello");
//!     assert_eq!(platform.peers(), ["echo", "platform.health"]);
//!     platform.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! ## Layout
//!
//! | module | what |
//! |--------|------|
//! | [`core`] | vocabulary without a runtime: [`Value`], [`Topic`], [`Identity`], subscription index, RPC errors |
//! | [`agent`](mod@agent) | the [`Agent`] trait, [`AgentContext`], handler attributes, cron |
//! | [`platform`] | [`Platform`] and its builder, routing table, [`backpressure`](platform::backpressure), [`supervision`], [`Clock`], hot-path [`counters`](platform::counters) and the instrumentation seam, the [`service`](platform::service) seam |
//! | [`bridge`] | the socket bridge's wire protocol and platform-side server: framed, versioned frames, bincode bodies, Noise |
//! | [`remote`] | the agent side of the bridge: an agent in its own process |
//! | `vip` | VIP over ZeroMQ for VOLTTRON 11's Python agents (feature `vip`) |
//! | `web` | the web service: discovery, logins, VOLTTRON's REST API, JSON-RPC, WebSockets, agents' routes, the status page (feature `web`) |
//! | `metrics` | Prometheus metrics: a registry a host may own, the platform's series and hot-path counters at scrape time, sampled handler/RPC/fsync histograms, agents' own series through their context, `GET /metrics` (feature `metrics`) |
//! | `mqtt` | many platforms as one through an MQTT 5 broker: `all_platforms` subscriptions, calls `on_platform`, platforms joining and leaving, a crash-safe backlog while the broker is away, plain MQTT export/import rules, `vctl federation` (feature `mqtt`) |
//! | `otel` | OpenTelemetry export: handler runs and calls of traced work as spans, OTLP/HTTP configured by `OTEL_EXPORTER_OTLP_*` (feature `otel`) |
//! | [`auth`] | keys and key files, `authz.json` (this project's format and VOLTTRON 11's), the pending list |
//! | [`config_store`] | VOLTTRON's configuration store files: parsing, references, durable writes |
//! | [`home`] | `$VOLTTRON_HOME`: layout, config, installed agents, the Python environment |
//! | [`control`] | agent processes: launch, stop escalation, crash restarts, isolation |
//! | [`resources`] | resource contracts, `/proc` and cgroup monitoring, enforcement, the sandbox |
//! | `audit` | the security audit of a home: `vctl audit`, the `platform.audit` service and its schedule (feature `audit`) |
//! | `profile` | CPU profiles on demand of the platform and of agent processes: `vctl profile`, the `platform.profile` service, folded stacks and SVG flame graphs (features `profile`, `flamegraph`) |
//! | [`services`] | the platform's own agents (`config.store`, `platform.auth`, `platform.health`, `control`) under their supervisor |
//! | `logs` | structured, rotatable platform logs: JSON lines with the agent's identity, reopen on SIGHUP or size rotation, RFC 5424 syslog, `vctl log`'s reader (feature `logs`) |
//! | `alerts` | alert management: the `platform.alerts` service (dedup, flapping, silences, acks, heartbeat loss), routing rules in the config store, log / webhook / e-mail / bus sinks, `vctl alerts` (feature `alerts`) |
//! | `agents` | the building data path as agents: the platform driver and its interfaces (fake, Modbus TCP, BACnet/IP), the SQLite historian, the actuator (features `driver`, `modbus`, `bacnet`, `historian`, `actuator`) |
//! | `simulation` | co-simulations: DOTS's orchestrator as `platform.simulation`, models as agents stepped in lock-step under a virtual clock per simulation, lifecycle in protobuf on DOTS's topics, durable simulations and queue, results and CSV (feature `simulation`) |
//! | [`testing`] | [`TestPlatform`](testing::TestPlatform): virtual clock, capture, settle |
//!
//! actix runs underneath but never appears in this API.
//!
//! A handler panic is caught and ends only that agent instance; its supervisor decides
//! whether a fresh one starts (see [`supervision`]). Building with `panic = "abort"` turns
//! every panic into a process abort and disables this containment.

// Lets the crate's own agents use `#[volttron::agent]`-generated paths.
extern crate self as volttron;

pub mod agent;
#[cfg(any(feature = "driver", feature = "historian", feature = "actuator"))]
pub mod agents;
#[cfg(feature = "alerts")]
pub mod alerts;
#[cfg(feature = "audit")]
pub mod audit;
pub mod auth;
pub mod bridge;
pub mod config_store;
pub mod control;
pub mod core;
pub(crate) mod durable;
pub mod home;
#[cfg(feature = "logs")]
pub mod logs;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "otel")]
pub mod otel;
pub mod platform;
#[cfg(feature = "profile")]
pub mod profile;
pub mod remote;
pub mod resources;
pub mod services;
#[cfg(feature = "simulation")]
pub mod simulation;
pub mod testing;
#[cfg(feature = "vip")]
pub mod vip;
#[cfg(feature = "web")]
pub mod web;

pub use crate::agent::{Agent, AgentContext, ContextError, CronSchedule, PublishError};
pub use crate::core::{
    Args, Caller, Headers, Health, Identity, IntoArgs, Map, Publication, RpcError, Status, Topic, Value,
    from_value, to_value,
};
pub use crate::platform::backpressure::{MailboxStats, OverflowPolicy};
pub use crate::platform::clock::{Clock, TimerId};
pub use crate::platform::supervision;
pub use crate::platform::supervision::{AgentStatus, ExitReason};
pub use crate::platform::{AgentRef, PeerEvent, Platform, PlatformBuilder, PlatformError, SpawnError};

pub use volttron_macros::{agent, main, test};

/// The names most agents need: `use volttron::prelude::*;`.
pub mod prelude {
    pub use crate::agent::{Agent, AgentContext, ConfigAction, ConfigUpdate, ContextError, PublishError};
    pub use crate::core::{Args, Caller, Headers, Identity, Publication, RpcError, Topic, Value};
    pub use crate::platform::{PeerEvent, Platform};
}

/// Paths used by macro-generated code. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::agent::route::RouteReturn;
    pub use crate::agent::{
        Agent, AgentContext, AgentDescriptor, ArgReader, ConfigSpec, ConfigUpdate, CronSpec, Dispatch,
        HandlerError, HandlerReturn, Invocation, Outcome, ParamSpec, PeriodicSpec, RpcReturn, RpcSpec,
        SubscriptionSpec,
    };
    pub use crate::core::{Caller, Identity, Publication, Value};
    pub use crate::platform::PeerEvent;
    pub use crate::platform::backpressure::OverflowPolicy;
    pub use crate::testing::TestPlatform;
    pub use std::boxed::Box;
    pub use std::time::Duration;
    pub use tokio;

    /// Builds the runtime for `#[volttron::main]` and `#[volttron::test]`: multi-thread
    /// when asked and the `multi-thread` feature is on, else current-thread.
    pub fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
        #[cfg(feature = "multi-thread")]
        let mut b = if multi_thread {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        #[cfg(not(feature = "multi-thread"))]
        let mut b = {
            let _ = multi_thread;
            tokio::runtime::Builder::new_current_thread()
        };
        b.enable_all().build().expect("build the tokio runtime")
    }
}

/// Entry points for the fuzz targets in `fuzz/` into crate-private code. Not public API.
#[cfg(feature = "vip")]
#[doc(hidden)]
pub mod __fuzz {
    use crate::core::Value;
    use crate::core::{json, jsonrpc};
    use crate::vip::frame;

    /// `value` written, parsed back and written again: the two texts must be equal (texts,
    /// not values, so that NaN compares equal). Returns the text.
    fn json_again(value: &Value) -> Vec<u8> {
        let text = json::to_vec(value);
        assert!(text.is_ascii(), "non-ASCII output for {value:?}");
        let back = json::parse(&text).unwrap_or_else(|e| panic!("own output does not parse: {e}\n{value:?}"));
        assert_eq!(json::to_vec(&back), text, "the round trip changed {value:?}");
        text
    }

    /// Runs the VIP codec over one multipart message: `frame::parse` (a parsed message must
    /// give its frames back), and on every frame `json::decode_frame`, `json::parse` (what
    /// parses must round-trip) and `jsonrpc::parse` (what parses must re-encode to text that
    /// parses to the same elements; an invalid element's error response must parse as a
    /// response). Panics only when one of these breaks.
    pub fn vip_frames(frames: Vec<Vec<u8>>) {
        for f in &frames {
            vip_frame(f);
        }
        let input = frames.clone();
        if let Ok(frame::Parsed::Message(m)) = frame::parse(frames) {
            assert_eq!(m.into_frames(), input, "frame::parse lost frames");
        }
    }

    /// The per-frame part of [`vip_frames`].
    pub fn vip_frame(bytes: &[u8]) {
        let _ = json::decode_frame(bytes);
        if let Ok(v) = json::parse(bytes) {
            json_again(&v);
        }
        let Ok((items, _)) = jsonrpc::parse(bytes) else {
            return;
        };
        for item in items {
            let encoded = match item {
                Ok(jsonrpc::RpcMessage::Request { id, method, args }) => match id {
                    Some(id) => jsonrpc::request(&id, &method, &args),
                    None => jsonrpc::notification(&method, &args),
                },
                Ok(jsonrpc::RpcMessage::Response { id, result }) => match result {
                    Ok(v) => jsonrpc::response_ok(&id, v),
                    Err(fault) => jsonrpc::response_err(&id, &fault),
                },
                Err(invalid) => match invalid.response() {
                    Some(r) => {
                        let text = json_again(&r);
                        let again = jsonrpc::parse(&text).map(|(items, _)| items);
                        assert!(
                            matches!(
                                again.as_deref(),
                                Ok([Ok(jsonrpc::RpcMessage::Response { result: Err(_), .. })])
                            ),
                            "an error response does not parse as one: {again:?}"
                        );
                        continue;
                    }
                    None => continue,
                },
            };
            // Encoded, parsed and encoded again: the same text.
            let text = json_again(&encoded);
            let reparsed =
                jsonrpc::parse(&text).unwrap_or_else(|e| panic!("own JSON-RPC does not parse: {e}"));
            let [Ok(element)] = &reparsed.0[..] else {
                panic!("own JSON-RPC is not one valid element: {reparsed:?}");
            };
            let again = match element {
                jsonrpc::RpcMessage::Request {
                    id: Some(id),
                    method,
                    args,
                } => jsonrpc::request(id, method, args),
                jsonrpc::RpcMessage::Request {
                    id: None,
                    method,
                    args,
                } => jsonrpc::notification(method, args),
                jsonrpc::RpcMessage::Response { id, result: Ok(v) } => jsonrpc::response_ok(id, v.clone()),
                jsonrpc::RpcMessage::Response { id, result: Err(f) } => jsonrpc::response_err(id, f),
            };
            assert_eq!(
                json::to_vec(&again),
                text,
                "JSON-RPC round trip changed the message"
            );
        }
    }
}
