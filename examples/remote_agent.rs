//! An agent in its own process, attached to a platform through the socket bridge.
//!
//! The agent is an ordinary `#[volttron::agent]` struct; `volttron::remote::run` reads the
//! environment a platform launches agents with and connects:
//!
//! ```text
//! AGENT_VIP_IDENTITY=meter.1 VOLTTRON_HOME=~/.volttron cargo run --example remote_agent
//! ```
//!
//! | variable | default |
//! |---|---|
//! | `AGENT_VIP_IDENTITY` | required |
//! | `VOLTTRON_HOME` | `~/.volttron` |
//! | `VOLTTRON_PLATFORM_ADDRESS` | `ipc://$VOLTTRON_HOME/run/vip.socket` |
//! | `AGENT_CREDENTIALS` | `$VOLTTRON_HOME/credentials_store/<identity>.json` |
//! | `AGENT_CONFIG` | none |
//! | `RUST_LOG` | `info` (a level only) |
//!
//! What it does: every `interval` seconds (from its `config`, default 1) it publishes a
//! reading on `devices/remote/<identity>/all`; it exports `echo(value)`, `readings()`,
//! `interval()`, `write_data(name, text)` (into its `data/` directory) and `stop_agent()`; it logs configuration changes and link events; it also heartbeats.

use std::time::Duration;

use tracing::info;
use volttron::prelude::*;

/// A meter living in another process.
#[derive(Default)]
struct RemoteMeter {
    readings: u64,
    /// Publish every `interval` ticks of one second.
    interval: u64,
    ticks: u64,
}

#[volttron::agent]
impl RemoteMeter {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) {
        self.interval = self.interval.max(1);
        ctx.heartbeat().start_with_period(Duration::from_secs(1));
        info!("{} started; peers: {:?}", ctx.identity(), ctx.peers());
    }

    #[periodic(secs = 1)]
    fn tick(&mut self, ctx: &AgentContext) {
        self.ticks += 1;
        if !self.ticks.is_multiple_of(self.interval.max(1)) {
            return;
        }
        self.readings += 1;
        let topic = format!("devices/remote/{}/all", ctx.identity());
        if let Err(e) = ctx.publish(topic.as_str(), self.readings) {
            info!("reading not published: {e}");
        }
    }

    /// Returns its argument: a round trip through the bridge.
    #[rpc]
    fn echo(&mut self, value: Value) -> Value {
        value
    }

    /// Its resource reservation and use, as the platform sees them.
    #[rpc]
    async fn resources(&mut self, ctx: &AgentContext) -> Result<Value, RpcError> {
        ctx.resource_usage().await
    }

    /// How many readings were published.
    #[rpc]
    fn readings(&mut self) -> u64 {
        self.readings
    }

    /// The publishing interval in seconds (from the `config`'s `interval`).
    #[rpc]
    fn interval(&mut self) -> u64 {
        self.interval
    }

    /// Writes `text` to `<data_dir>/<name>` (its own writable directory) and returns the path.
    #[rpc]
    fn write_data(&mut self, ctx: &AgentContext, name: String, text: String) -> Result<String, String> {
        if name.contains('/') || name.starts_with('.') {
            return Err(format!("{name:?} is not a plain file name"));
        }
        let dir = ctx
            .data_dir()
            .ok_or("no data directory: the platform has no home")?;
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Ok(path.display().to_string())
    }

    /// Stops the agent (the process then exits 0).
    #[rpc]
    fn stop_agent(&mut self, ctx: &AgentContext) -> bool {
        ctx.stop();
        true
    }

    #[on_config("config")]
    fn configure(&mut self, update: &ConfigUpdate) {
        if let Some(i) = update.contents.get("interval").and_then(Value::as_u64) {
            self.interval = i.max(1);
        }
        info!("config {:?} {}: {}", update.action, update.name, update.contents);
    }

    #[on_connected]
    fn connected(&mut self, ctx: &AgentContext) {
        info!("{} connected to the platform", ctx.identity());
    }

    #[on_disconnected]
    fn disconnected(&mut self, ctx: &AgentContext) {
        info!("{} lost its platform; reconnecting", ctx.identity());
    }
}

fn main() {
    // A level from RUST_LOG (`error`, `warn`, `info`, `debug`, `trace`; default `info`):
    // a plain level keeps the filter code, and the agent's memory, small.
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = volttron::remote::run(RemoteMeter::default()) {
        eprintln!("remote_agent: {e}");
        std::process::exit(1);
    }
}
