//! Pub/sub benchmarks: a publish reaching one subscriber, reaching 100, and reaching one
//! while 100,000 non-matching subscriptions are present; plus the actix `do_send`
//! baseline (one actor to another on the same arbiter).
//!
//! Each measurement publishes `iters` messages from an async RPC handler of a publisher
//! agent (in chunks of [`CHUNK`], yielding between them) and times first publish to last
//! delivery. Platforms run with `agent_threads(1)`: publisher and subscribers share one
//! agent thread, as the actix baseline shares one arbiter.
//!
//! ```text
//! cargo bench --bench pubsub
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use criterion::{Criterion, Throughput, criterion_main};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use volttron::prelude::*;

/// Messages published (or sent) between two yields to the executor.
const CHUNK: u64 = 1024;

/// Publishes on `bench/data` when told to.
struct Source {
    topic: Topic,
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
struct Sink {
    seen: u64,
    target: Arc<AtomicU64>,
    done: UnboundedSender<Instant>,
}

#[volttron::agent]
impl Sink {
    #[subscribe("bench/")]
    fn on_data(&mut self, _ctx: &AgentContext, _msg: &Publication) {
        self.seen += 1;
        if self.seen == self.target.load(Ordering::Relaxed) {
            let _ = self.done.send(Instant::now());
        }
    }
}

/// Holds `per` run-time subscriptions that never match the benchmark topic.
struct Noise {
    index: usize,
    per: usize,
}

#[volttron::agent]
impl Noise {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) -> Result<(), volttron::ContextError> {
        for j in 0..self.per {
            ctx.subscribe::<Self>(&format!("other/{}/{j}", self.index), |_, _, _| {})?;
        }
        Ok(())
    }
}

/// A platform with one `source` and some sinks.
struct Rig {
    platform: Platform,
    started: Arc<Mutex<Option<Instant>>>,
    target: Arc<AtomicU64>,
    done: UnboundedReceiver<Instant>,
    subscribers: u64,
    total_per_sink: u64,
}

impl Rig {
    async fn start(subscribers: usize, noise_agents: usize, noise_per_agent: usize) -> Self {
        let platform = Platform::builder()
            .agent_threads(1)
            .start()
            .await
            .expect("start platform");
        let started = Arc::new(Mutex::new(None));
        let target = Arc::new(AtomicU64::new(0));
        let (tx, done) = unbounded_channel();
        for i in 0..noise_agents {
            let noise = Noise {
                index: i,
                per: noise_per_agent,
            };
            platform.spawn(format!("noise{i}"), noise).await.expect("spawn");
        }
        for i in 0..subscribers {
            let sink = Sink {
                seen: 0,
                target: target.clone(),
                done: tx.clone(),
            };
            platform.spawn(format!("sink{i}"), sink).await.expect("spawn");
        }
        let source = Source {
            topic: Topic::new("bench/data").expect("topic"),
            started: started.clone(),
        };
        platform.spawn("source", source).await.expect("spawn");
        Rig {
            platform,
            started,
            target,
            done,
            subscribers: subscribers as u64,
            total_per_sink: 0,
        }
    }

    /// Publishes `n`; returns the time from the first publish to the last delivery.
    async fn run(&mut self, n: u64) -> Duration {
        self.total_per_sink += n;
        self.target.store(self.total_per_sink, Ordering::Relaxed);
        let reached: u64 = self
            .platform
            .call("source", "blast", (n,))
            .timeout(Duration::from_secs(600))
            .returning()
            .await
            .expect("blast");
        assert_eq!(reached, n * self.subscribers);
        let mut last: Option<Instant> = None;
        for _ in 0..self.subscribers {
            let t = self.done.recv().await.expect("sink done");
            last = Some(last.map_or(t, |l| l.max(t)));
        }
        let start = self.started.lock().expect("start lock").take().expect("started");
        last.expect("a sink") - start
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn bench_rig(c: &mut Criterion, name: &str, deliveries_per_publish: u64, mut rig: Rig) {
    let rt = runtime();
    let mut group = c.benchmark_group("pubsub");
    group.throughput(Throughput::Elements(deliveries_per_publish));
    group.bench_function(name, |b| b.iter_custom(|iters| rt.block_on(rig.run(iters))));
    group.finish();
    rt.block_on(rig.platform.shutdown());
}

fn one_subscriber(c: &mut Criterion) {
    let rig = runtime().block_on(Rig::start(1, 0, 0));
    bench_rig(c, "publish_1_subscriber", 1, rig);
}

fn hundred_subscribers(c: &mut Criterion) {
    let rig = runtime().block_on(Rig::start(100, 0, 0));
    bench_rig(c, "publish_100_subscribers", 100, rig);
}

fn with_100k_subscriptions(c: &mut Criterion) {
    let rig = runtime().block_on(Rig::start(1, 100, 1000));
    bench_rig(c, "publish_1_subscriber_100k_nonmatching", 1, rig);
}

// ---------------------------------------------------------------------------------------
// actix baseline
// ---------------------------------------------------------------------------------------

#[derive(Message)]
#[rtype(result = "()")]
struct Ping;

struct Counter {
    seen: u64,
    target: u64,
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

/// Sends `n` pings in chunks from `started`, yielding between chunks.
struct Pinger {
    to: Addr<Counter>,
    n: u64,
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

fn actix_burst(n: u64) -> Duration {
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

fn actix_do_send(c: &mut Criterion) {
    let mut group = c.benchmark_group("pubsub");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_actix_do_send", |b| b.iter_custom(actix_burst));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// Runs every benchmark in this file (what `criterion_group!` would generate, documented).
fn benches() {
    let mut c = config().configure_from_args();
    one_subscriber(&mut c);
    hundred_subscribers(&mut c);
    with_100k_subscriptions(&mut c);
    actix_do_send(&mut c);
}

criterion_main!(benches);
