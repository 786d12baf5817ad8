//! Workloads shared by the benchmarks (`benches/pubsub.rs`, `benches/rpc.rs`) and the
//! performance harness (`examples/perf.rs`), so each is written once.
//!
//! - pub/sub: a [`Source`] agent publishing in chunks, [`Sink`] agents counting, [`Noise`]
//!   agents holding non-matching subscriptions, a [`SlowSink`] far slower than the source,
//!   and the [`Rig`] platform tying them up;
//! - RPC: a [`Callee`] answering `echo` and a [`Caller`] calling it in a loop, on the
//!   platform from [`rpc_platform`];
//! - the actix baseline: [`Pinger`] `do_send`s [`Ping`]s to a [`Counter`], run by
//!   [`actix_burst`].
//!
//! - the bridge: [`bridge`], remote agents attached over a Unix socket;
//! - VIP: `vip`, VIP clients (Rust ones and VOLTTRON's Python library) through the listener;
//! - the web service: `web`, HTTP and WebSocket clients on loopback, and a bare actix-web
//!   server as the baseline;
//! - MQTT: `mosquitto`, a real broker as a child process (also the tests' broker:
//!   `tests/common/mod.rs` includes the same file), and `mqtt`, raw rumqttc v5 clients
//!   through it as the federation's baseline; `federation`, federated platforms of one
//!   process through the same broker.
//! - Modbus: `pymodbus`, a real pymodbus device as a child process (also the tests' device:
//!   `tests/driver_modbus.rs` includes the same file), and `modbus`, scrapes through the
//!   platform driver's Modbus interface against raw tokio-modbus reads of the same registers.
//!
//! - The building data path: `historian` (VOLTTRON's queries and inserts against rusqlite
//!   directly) and `building` (fake devices through the driver into the historian).
//!
//! Both platforms run with `agent_threads(1)`: every agent shares one agent thread, as the
//! actix baseline shares one arbiter.
//!
//! Benchmarks include it with `mod workloads;`, the example with
//! `#[path = "../benches/workloads/mod.rs"] mod workloads;` (a directory with a `mod.rs`
//! is not discovered as a benchmark target by cargo).

#[cfg(feature = "bacnet")]
pub(crate) mod bacnet;
pub(crate) mod bridge;
#[cfg(all(feature = "driver", feature = "historian"))]
pub(crate) mod building;
#[cfg(feature = "mqtt")]
pub(crate) mod federation;
#[cfg(feature = "historian")]
pub(crate) mod historian;
#[cfg(feature = "modbus")]
pub(crate) mod modbus;
pub(crate) mod mosquitto;
#[cfg(feature = "mqtt")]
pub(crate) mod mqtt;
#[cfg(feature = "modbus")]
pub(crate) mod pymodbus;
#[cfg(feature = "simulation")]
pub(crate) mod simulation;
#[cfg(feature = "vip")]
pub(crate) mod vip;
#[cfg(feature = "web")]
pub(crate) mod web;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use volttron::prelude::*;

/// Messages published (or sent) between two yields to the executor. Publishing in chunks
/// keeps the queues short (like a real stream) and lets subscribers on the same thread run.
pub(crate) const CHUNK: u64 = 1024;

/// A current-thread tokio runtime with all drivers enabled.
pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

// ---------------------------------------------------------------------------------------
// Pub/sub
// ---------------------------------------------------------------------------------------

/// Publishes on `bench/data` when told to.
pub(crate) struct Source {
    /// The topic published on (`bench/data`).
    topic: Topic,
    /// Set to the instant of the first publish of each `blast`.
    started: Arc<Mutex<Option<Instant>>>,
}

#[volttron::agent]
impl Source {
    /// Publishes `n` messages in chunks; returns how many deliveries were made.
    #[rpc]
    async fn blast(&mut self, ctx: &AgentContext, n: u64) -> u64 {
        *self.started.lock().expect("start lock") = Some(Instant::now());
        let mut reached = 0u64;
        let mut i = 0;
        while i < n {
            let end = (i + CHUNK).min(n);
            for k in i..end {
                reached += ctx.publish(&self.topic, k).expect("publish") as u64;
            }
            i = end;
            tokio::task::yield_now().await;
        }
        reached
    }
}

/// Counts publications under `bench/`; reports the instant it reaches `target`.
pub(crate) struct Sink {
    /// Publications counted so far.
    seen: u64,
    /// Count at which to report (cumulative over runs).
    target: Arc<AtomicU64>,
    /// Where the instant `target` is reached goes.
    done: UnboundedSender<Instant>,
}

#[volttron::agent]
impl Sink {
    /// Counts one publication.
    #[subscribe("bench/")]
    fn on_data(&mut self, _ctx: &AgentContext, _msg: &Publication) {
        self.seen += 1;
        if self.seen == self.target.load(Ordering::Relaxed) {
            let _ = self.done.send(Instant::now());
        }
    }
}

/// How long [`SlowSink`] takes per publication: over 1000x what the source needs to
/// publish one, so its mailbox fills up and `DropOldest` drops.
pub(crate) const SLOW_DELAY: Duration = Duration::from_millis(1);

/// Subscribes to `bench/` like a [`Sink`], but takes [`SLOW_DELAY`] (platform clock) per
/// publication. Spawned as `slow` by [`Rig::with_slow_subscriber`].
pub(crate) struct SlowSink;

#[volttron::agent]
impl SlowSink {
    /// Sleeps [`SLOW_DELAY`]; the default overflow policy (`DropOldest`) applies.
    #[subscribe("bench/")]
    async fn on_data(&mut self, ctx: &AgentContext, _msg: &Publication) {
        ctx.clock().sleep(SLOW_DELAY).await;
    }
}

/// Holds `per` run-time subscriptions that never match the benchmark topic.
pub(crate) struct Noise {
    /// This agent's number, part of its topics `other/{index}/{j}`.
    index: usize,
    /// How many subscriptions it holds.
    per: usize,
}

#[volttron::agent]
impl Noise {
    /// Subscribes to `other/{index}/{j}` for `j` in `0..per`.
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) -> Result<(), volttron::ContextError> {
        for j in 0..self.per {
            ctx.subscribe::<Self>(&format!("other/{}/{j}", self.index), |_, _, _| {})?;
        }
        Ok(())
    }
}

/// A platform with one `source` and `subscribers` sinks, ready to run bursts.
pub(crate) struct Rig {
    /// The platform the agents run on.
    pub(crate) platform: Platform,
    /// Shared with the source: instant of the first publish of the current run.
    started: Arc<Mutex<Option<Instant>>>,
    /// Shared with the sinks: the count each reports at.
    target: Arc<AtomicU64>,
    /// Instants the sinks reached `target`.
    done: UnboundedReceiver<Instant>,
    /// Number of sinks (the [`SlowSink`], if any, not counted).
    pub(crate) subscribers: u64,
    /// Subscribers each publish reaches: the sinks, plus the [`SlowSink`] if any (under
    /// `DropOldest` the new publication is always queued, so it counts).
    reach: u64,
    /// Publications each sink has been sent over all runs.
    total_per_sink: u64,
}

impl Rig {
    /// Starts a platform with `noise_agents` [`Noise`] agents holding `noise_per_agent`
    /// subscriptions each, `subscribers` [`Sink`]s and the `source`. One agent thread:
    /// publisher and subscribers share it, like the actix same-arbiter baseline.
    pub(crate) async fn start(subscribers: usize, noise_agents: usize, noise_per_agent: usize) -> Self {
        Self::build(
            Platform::builder(),
            subscribers,
            noise_agents,
            noise_per_agent,
            false,
        )
        .await
    }

    /// As [`Rig::start`] with one sink, on a platform `builder` made (e.g. with metrics).
    #[allow(dead_code, reason = "used by the perf example, not by every bench")]
    pub(crate) async fn start_on(builder: volttron::PlatformBuilder) -> Self {
        Self::build(builder, 1, 0, 0, false).await
    }

    /// As [`Rig::start`] with no noise, plus one [`SlowSink`] named `slow` on the same
    /// prefix (and the same agent thread). [`Rig::run`] still times the sinks only.
    pub(crate) async fn with_slow_subscriber(subscribers: usize) -> Self {
        Self::build(Platform::builder(), subscribers, 0, 0, true).await
    }

    async fn build(
        builder: volttron::PlatformBuilder,
        subscribers: usize,
        noise_agents: usize,
        noise_per_agent: usize,
        slow: bool,
    ) -> Self {
        let platform = builder.agent_threads(1).start().await.expect("start platform");
        let started = Arc::new(Mutex::new(None));
        let target = Arc::new(AtomicU64::new(0));
        let (tx, done) = unbounded_channel();
        for i in 0..noise_agents {
            let noise = Noise {
                index: i,
                per: noise_per_agent,
            };
            platform
                .spawn(format!("noise{i}"), noise)
                .await
                .expect("spawn noise");
        }
        for i in 0..subscribers {
            let sink = Sink {
                seen: 0,
                target: target.clone(),
                done: tx.clone(),
            };
            platform
                .spawn(format!("sink{i}"), sink)
                .await
                .expect("spawn sink");
        }
        if slow {
            platform.spawn("slow", SlowSink).await.expect("spawn slow sink");
        }
        let source = Source {
            topic: Topic::new("bench/data").expect("topic"),
            started: started.clone(),
        };
        platform.spawn("source", source).await.expect("spawn source");
        Rig {
            platform,
            started,
            target,
            done,
            subscribers: subscribers as u64,
            reach: subscribers as u64 + u64::from(slow),
            total_per_sink: 0,
        }
    }

    /// Publishes `n`; returns the time from the first publish to the last delivery to a
    /// sink (`n * subscribers` deliveries; a [`SlowSink`] is not waited for).
    pub(crate) async fn run(&mut self, n: u64) -> Duration {
        self.total_per_sink += n;
        self.target.store(self.total_per_sink, Ordering::Relaxed);
        let reached: u64 = self
            .platform
            .call("source", "blast", (n,))
            .timeout(Duration::from_secs(600))
            .returning()
            .await
            .expect("blast");
        assert_eq!(reached, n * self.reach, "every publish reaches every subscriber");
        let mut last: Option<Instant> = None;
        for _ in 0..self.subscribers {
            let t = self.done.recv().await.expect("sink done");
            last = Some(last.map_or(t, |l| l.max(t)));
        }
        let start = self.started.lock().expect("start lock").take().expect("started");
        last.expect("at least one sink") - start
    }

    /// Shuts the platform down.
    pub(crate) async fn shutdown(self) {
        self.platform.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------
// RPC
// ---------------------------------------------------------------------------------------

/// Answers `echo`.
pub(crate) struct Callee;

#[volttron::agent]
impl Callee {
    /// Returns its argument.
    #[rpc]
    fn echo(&mut self, i: u64) -> u64 {
        i
    }
}

/// Calls `callee.echo` in a loop.
pub(crate) struct Caller;

#[volttron::agent]
impl Caller {
    /// `n` sequential calls to `callee.echo`; returns the total time in nanoseconds.
    #[rpc]
    async fn calls(&mut self, ctx: &AgentContext, n: u64) -> Result<u64, String> {
        let start = Instant::now();
        for i in 0..n {
            ctx.call("callee", "echo", (i,))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(start.elapsed().as_nanos() as u64)
    }

    /// `n` sequential calls to `callee.echo`; returns each round trip in nanoseconds.
    #[rpc]
    async fn rtt(&mut self, ctx: &AgentContext, n: u64) -> Result<Vec<u64>, String> {
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            let t = Instant::now();
            ctx.call("callee", "echo", (i,))
                .await
                .map_err(|e| e.to_string())?;
            out.push(t.elapsed().as_nanos() as u64);
        }
        Ok(out)
    }
}

/// Starts a platform with `callee` ([`Callee`]) and `caller` ([`Caller`]). One agent
/// thread: caller and callee share it.
pub(crate) async fn rpc_platform() -> Platform {
    rpc_platform_on(Platform::builder()).await
}

/// As [`rpc_platform`], on a platform `builder` made (e.g. with metrics).
pub(crate) async fn rpc_platform_on(builder: volttron::PlatformBuilder) -> Platform {
    let platform = builder.agent_threads(1).start().await.expect("start platform");
    platform.spawn("callee", Callee).await.expect("spawn callee");
    platform.spawn("caller", Caller).await.expect("spawn caller");
    platform
}

// ---------------------------------------------------------------------------------------
// actix baseline
// ---------------------------------------------------------------------------------------

/// The message of the actix baseline.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Ping;

/// Counts `Ping`s and reports when it has `target`.
pub(crate) struct Counter {
    /// `Ping`s counted so far.
    seen: u64,
    /// Count at which to report.
    target: u64,
    /// Where the instant `target` is reached goes (once).
    done: Option<std::sync::mpsc::Sender<Instant>>,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<Ping> for Counter {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {
        self.seen += 1;
        if self.seen == self.target
            && let Some(done) = self.done.take()
        {
            let _ = done.send(Instant::now());
        }
    }
}

/// Sends `n` pings to `to` in chunks from its `started`, yielding between chunks.
pub(crate) struct Pinger {
    /// The counter pinged.
    to: Addr<Counter>,
    /// How many pings to send.
    n: u64,
    /// Where the instant sending starts goes.
    started: std::sync::mpsc::Sender<Instant>,
}

impl Actor for Pinger {
    type Context = Context<Self>;

    fn started(&mut self, actx: &mut Context<Self>) {
        let to = self.to.clone();
        let n = self.n;
        let _ = self.started.send(Instant::now());
        actx.wait(
            async move {
                let mut i = 0;
                while i < n {
                    let end = (i + CHUNK).min(n);
                    for _ in i..end {
                        to.do_send(Ping);
                    }
                    i = end;
                    tokio::task::yield_now().await;
                }
            }
            .into_actor(self),
        );
    }
}

/// One actix actor `do_send`s `n` messages to another on the same arbiter (a fresh
/// `System`); returns the time from the first send to the `n`th counted.
pub(crate) fn actix_burst(n: u64) -> Duration {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (start_tx, start_rx) = std::sync::mpsc::channel();
    actix_rt::System::new().block_on(async move {
        let to = Counter {
            seen: 0,
            target: n,
            done: Some(done_tx),
        }
        .start();
        Pinger {
            to,
            n,
            started: start_tx,
        }
        .start();
        loop {
            tokio::task::yield_now().await;
            if let Ok(end) = done_rx.try_recv() {
                return end - start_rx.recv().expect("start");
            }
        }
    })
}

/// The median of `v` (the upper one of an even count), for the figures of several runs.
#[cfg(any(feature = "historian", feature = "simulation"))]
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
