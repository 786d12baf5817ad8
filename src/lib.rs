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
//! | [`platform`] | [`Platform`] and its builder, routing table, [`backpressure`](platform::backpressure), [`supervision`], [`Clock`] |
//! | [`bridge`] | the socket bridge's wire protocol: framed, versioned frames, bincode bodies (the transport comes next) |
//! | [`config_store`] | VOLTTRON's configuration store files: parsing, references, durable writes |
//! | [`services`] | the platform's own agents (`platform.health`) under their supervisor |
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
pub mod auth;
pub mod bridge;
pub mod config_store;
pub mod control;
pub mod core;
pub(crate) mod durable;
pub mod home;
pub mod platform;
pub mod remote;
pub mod resources;
pub mod services;
pub mod testing;
#[cfg(feature = "vip")]
pub mod vip;

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
