//! What agent authors see: the [`Agent`] trait (implemented by `#[volttron::agent]`), the
//! [`AgentContext`] handed to every handler, and scheduling.
//!
//! # Handler attributes
//!
//! | attribute                          | runs                                                   | signature (`ctx` optional, `async` allowed unless noted) |
//! |------------------------------------|--------------------------------------------------------|-----------------------------------|
//! | `#[on_setup]`                      | once, before the agent joins the bus (sync only)       | `fn(&mut self, &AgentContext)` |
//! | `#[on_start]`                      | once connected, before any message is handled          | `fn(&mut self, &AgentContext)` |
//! | `#[on_stop]`                       | on stop or platform shutdown, still connected          | `fn(&mut self, &AgentContext)` |
//! | `#[subscribe("prefix")]`           | once per matching subscription per publication         | `fn(&mut self, &AgentContext, &Publication)` |
//! | `#[subscribe("a/+/c", bus = "b")]` | MQTT-style pattern, on bus `b`                         | same |
//! | `#[subscribe("x/", overflow = "drop_newest")]` | on a full mailbox: `drop_oldest` (default), `drop_newest` or `disconnect` (see [`backpressure`](crate::platform::backpressure)) | same |
//! | `#[rpc]`, `#[rpc(name = "alias")]` | on each call; arguments by position or name            | `fn(&mut self, &AgentContext, a: A, b: B) -> R` |
//! | `#[periodic(secs = 5, wait = 1)]`  | every 5 s, first after `wait` s (default 0: right after `on_start`, as VOLTTRON); no catch-up | `fn(&mut self, &AgentContext)` |
//! | `#[schedule(cron = "*/5 * * * *")]`| at each matching minute (UTC)                          | `fn(&mut self, &AgentContext)` |
//! | `#[on_peerlist]`                   | when a peer joins or leaves                            | `fn(&mut self, &AgentContext, &PeerEvent)` |
//! | `#[on_health]`                     | when this agent's health changes (`ctx.set_health`, `health.set_status`) | `fn(&mut self, &AgentContext, &Health)` |
//! | `#[route(GET, "/hvac/summary")]` | on each HTTP request for the route, served by the platform's web service ([`route`]) | `fn(&mut self, &AgentContext, request: WebRequest) -> R` (the request is optional) |
//! | `#[on_config("pat*", actions = ["NEW", "UPDATE", "DELETE"])]` | at start (NEW for each stored config, "config" first) and on each change of a matching configuration | `fn(&mut self, &AgentContext, &ConfigUpdate)` |
//!
//! Hooks and subscription/periodic handlers return `()` or `Result<(), E: Display>` (an
//! error is logged). RPC handlers return any `Serialize` value or `Result<T, E: Display>`
//! (an error reaches the caller as [`RpcError::Remote`](crate::RpcError::Remote)).
//!
//! Handlers run one at a time per agent, each to completion, `async` ones included (the
//! agent's struct is its state, like a kameo actor): an `async` handler may await RPC calls
//! to *other* agents, but an agent that awaits a call back into itself waits for the
//! deadline. A handler that panics is contained: the agent instance exits abnormally, the
//! platform and the other agents keep running, and its supervisor decides whether a fresh
//! instance starts (see [`supervision`](crate::supervision)).

pub(crate) mod builtin;
pub mod config;
pub(crate) mod context;
pub mod cron;
mod descriptor;
mod dispatch;
pub mod heartbeat;
pub(crate) mod host;
pub(crate) mod inspect;
pub mod log_scope;
pub mod route;
pub mod trace_scope;

pub use config::{ConfigAction, ConfigUpdate};
pub use context::{AgentContext, ContextError, IntoTopic, PublishError};
pub use cron::{CronError, CronSchedule};
#[doc(hidden)]
pub use descriptor::{
    AgentDescriptor, ConfigSpec, CronSpec, ParamSpec, PeriodicSpec, RpcSpec, SubscriptionSpec,
};
#[doc(hidden)]
pub use dispatch::{
    ArgReader, AsyncHandler, Dispatch, HandlerError, HandlerReturn, Invocation, Outcome, RpcReturn,
};
pub use heartbeat::Heartbeat;
pub use trace_scope::current_trace;

/// An agent: a plain struct whose `impl` block carries `#[volttron::agent]`.
///
/// Do not implement this trait by hand; the macro generates the implementation from the
/// handler attributes (see the [module docs](self)).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a volttron agent",
    label = "not an agent",
    note = "add `#[volttron::agent]` to an `impl {Self} {{ ... }}` block"
)]
pub trait Agent: Send + Sized + 'static {
    /// Static facts about the agent: subscriptions, RPC exports, schedules, hooks.
    #[doc(hidden)]
    fn __descriptor() -> &'static AgentDescriptor;

    /// Runs one handler.
    #[doc(hidden)]
    fn __dispatch(&mut self, ctx: &AgentContext, invocation: Invocation) -> Dispatch<Self>;
}
