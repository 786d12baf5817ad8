//! VOLTTRON's Listener agent: subscribes to every topic and logs each publication.
//!
//! ```text
//! cargo run --release --example listener                  # until Ctrl-C
//! cargo run --release --example listener -- --seconds 5   # exits by itself (CI smoke run)
//! RUST_LOG=warn cargo run --release --example listener    # quiet: only problems
//! ```
//!
//! As in VOLTTRON, the listener subscribes to the prefix `""` (everything), logs sender,
//! topic, headers and message of each publication on one line, and every 3 s publishes a
//! heartbeat (`heartbeat/listener`, header `TimeStamp`, message `"GOOD"`), which it hears
//! and logs too, as VOLTTRON's does. Logs go to stderr; `RUST_LOG` filters them.
//!
//! The host embeds a platform with `#[volttron::main]`, starts the listener and a tiny
//! meter that publishes a reading every second so something shows, then runs until
//! Ctrl-C (or `--seconds N`) and shuts down, which runs every agent's `on_stop`.

use std::io::IsTerminal;
use std::time::Duration;

use chrono::SecondsFormat;
use tracing::info;
use tracing_subscriber::EnvFilter;
use volttron::prelude::*;

/// Logs every publication on the platform, and publishes a heartbeat.
#[derive(Default)]
struct Listener {
    /// Publications heard so far.
    heard: u64,
}

#[volttron::agent]
impl Listener {
    /// Says hello, as VOLTTRON's listener does.
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) {
        let instance = ctx.query("instance-name").unwrap_or_default();
        let instance = instance.as_str().unwrap_or("?");
        info!(
            "{} started on instance {instance}; peers: {:?}",
            ctx.identity(),
            ctx.peers()
        );
    }

    /// Every publication on the default bus: `""` is a prefix of every topic. One line
    /// each, in the order of VOLTTRON's listener log: sender, topic, headers, message.
    #[subscribe("")]
    fn on_match(&mut self, msg: &Publication) {
        self.heard += 1;
        // `Headers` is a map of `Value`s; as a `Value` it displays as compact JSON.
        let headers = Value::from(msg.headers.clone());
        info!(
            "sender={} topic={} headers={headers} message={}",
            msg.sender, msg.topic, msg.message
        );
    }

    /// Every 3 s: publishes `heartbeat/<identity>` with a `TimeStamp` header, like
    /// VOLTTRON's heartbeat subsystem.
    #[periodic(secs = 3)]
    fn heartbeat(&mut self, ctx: &AgentContext) {
        let mut headers = Headers::new();
        headers.insert(
            "TimeStamp".into(),
            ctx.now().to_rfc3339_opts(SecondsFormat::Millis, true).into(),
        );
        let topic = format!("heartbeat/{}", ctx.identity());
        if let Err(e) = ctx.publish_with(topic, headers, "GOOD") {
            tracing::warn!("heartbeat not published: {e}");
        }
    }

    /// Peers joining and leaving (VOLTTRON's `peerlist` add/drop).
    #[on_peerlist]
    fn peers(&mut self, event: &PeerEvent) {
        match event {
            PeerEvent::Added(peer) => info!("peer joined: {peer}"),
            PeerEvent::Dropped(peer) => info!("peer left: {peer}"),
        }
    }

    /// Reports how much it heard.
    #[on_stop]
    fn stop(&mut self, ctx: &AgentContext) {
        info!("{} stopping after {} publications", ctx.identity(), self.heard);
    }
}

/// A tiny power meter, so the listener has something to hear.
#[derive(Default)]
struct Meter {
    /// Readings published so far.
    count: u64,
}

#[volttron::agent]
impl Meter {
    /// One reading a second, on a VOLTTRON-style device topic.
    #[periodic(secs = 1, wait = 0.2)]
    fn read(&mut self, ctx: &AgentContext) -> Result<(), PublishError> {
        self.count += 1;
        // A deterministic sawtooth: 40.0 kW .. 49.0 kW.
        let kw = 40.0 + (self.count % 10) as f64;
        let mut reading = volttron::Map::new();
        reading.insert("power_kw".into(), kw.into());
        reading.insert("count".into(), self.count.into());
        let mut headers = Headers::new();
        headers.insert(
            "TimeStamp".into(),
            ctx.now().to_rfc3339_opts(SecondsFormat::Millis, true).into(),
        );
        ctx.publish_with("devices/campus/lab/meter1/all", headers, reading)?;
        Ok(())
    }
}

/// `--seconds N` from the command line, if given.
fn seconds_arg() -> Result<Option<u64>, String> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(None),
        (Some("--seconds"), Some(n)) => n.parse().map(Some).map_err(|e| format!("--seconds {n}: {e}")),
        _ => Err("usage: listener [--seconds N]".into()),
    }
}

#[volttron::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let seconds = seconds_arg()?;

    let platform = Platform::builder().instance_name("volttron1").start().await?;
    platform.spawn("listener", Listener::default()).await?;
    platform.spawn("meter1", Meter::default()).await?;
    // The host can publish too; its sender is `platform`.
    platform.publish("platform/status", "listener example running")?;
    info!("running; Ctrl-C to stop");

    let deadline = async {
        match seconds {
            Some(n) => tokio::time::sleep(Duration::from_secs(n)).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        () = deadline => {}
    }
    info!("shutting down");
    platform.shutdown().await;
    Ok(())
}
