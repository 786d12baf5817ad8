//! The federation's figures: platforms of this process federated through a real mosquitto
//! ([`super::mosquitto`], the broker of [`super::mqtt::MqttRig`], `max_queued_messages 0`),
//! what `baseline.mqtt_*` of the same broker and run are compared with.
//!
//! | rig | platforms | what runs |
//! |-----|-----------|-----------|
//! | [`FederationRig`] | `a` (exports `bench/`) and `b`, `agent_threads(1)` each | [`FederationRig::rtts`]: the caller agent on `a` calls `echo.echo(i)` on `b` with `.on_platform("b")` N times in sequence, timing each inside its handler ([`RemoteCaller`]); [`FederationRig::pubsub`]: a publisher agent on `a` publishes N small messages (`bench/data`, the integer `i`) keeping at most [`WINDOW`] published and not yet counted, and an `all_platforms` subscriber on `b` counts them |
//! | [`FanoutRig`] | `p0` (exports `bench/`) to `p9`, `agent_threads(1)` each | [`FanoutRig::latencies`]: the driver publishes `bench/fan` = `i` on `p0`; an `all_platforms` subscriber on each of `p1`..`p9` records when `i` arrives; the time until the ninth has it, then the next |
//!
//! Before timing, each rig waits until the platforms see each other online
//! (`platform.federation`'s `list_platforms`), one call succeeded, and a warm-up
//! publication (`bench/warmup`) reached every subscriber: the broker subscription of an
//! `all_platforms` subscriber follows its start by a round trip.
//!
//! The publisher's window keeps the federation agent's mailbox (the platform's default
//! capacity, 10,000, `DropOldest`) and the link's MQTT client queue (10,000, beyond which the
//! link writes to its SQLite backlog) from filling: a publisher that ran ahead of the link
//! would measure the backlog's fsyncs, or drops. Nothing is dropped silently: a run waits
//! until every message is counted or nothing arrived for [`STALL`], and reports how many
//! arrived, the mailbox's drops, and the backlog's drops and what is left in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::timeout;
use volttron::mqtt::{FederationConfig, FederationExt};
use volttron::prelude::*;

use super::mosquitto::Broker;
use super::mqtt::STALL;

/// Publications the publisher may have published and the subscriber not yet counted.
pub(crate) const WINDOW: u64 = 4096;

/// How long the platforms may take to see each other, and a subscription to take effect.
const SETTLE: Duration = Duration::from_secs(30);

/// Platforms of [`FanoutRig`].
pub(crate) const FANOUT_PLATFORMS: usize = 10;

/// Answers `echo` (spawned as `echo` on `b`).
pub(crate) struct Echo;

#[volttron::agent]
impl Echo {
    /// Returns its argument.
    #[rpc]
    fn echo(&mut self, i: u64) -> u64 {
        i
    }
}

/// Calls `echo.echo` on another platform (spawned as `caller` on `a`).
pub(crate) struct RemoteCaller;

#[volttron::agent]
impl RemoteCaller {
    /// `n` sequential calls of `echo.echo(i)` on `platform`; each round trip in nanoseconds.
    #[rpc]
    async fn rtt(&mut self, ctx: &AgentContext, platform: String, n: u64) -> Result<Vec<u64>, String> {
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            let t = Instant::now();
            let got = ctx
                .call("echo", "echo", (i,))
                .on_platform(&platform)
                .await
                .map_err(|e| format!("call {i}: {e}"))?;
            out.push(t.elapsed().as_nanos() as u64);
            if got.as_u64() != Some(i) {
                return Err(format!("call {i} answered {got:?}"));
            }
        }
        Ok(out)
    }
}

/// What [`Publisher`] and [`RemoteCounter`] share.
#[derive(Default)]
pub(crate) struct Flow {
    /// Publications counted by the subscriber, over all runs.
    counted: AtomicU64,
    /// The count at which the subscriber wakes the publisher (`u64::MAX`: nobody waits).
    wake_at: AtomicU64,
    /// Where the publisher waits.
    wake: Notify,
    /// The count at which the subscriber reports the end of a run.
    target: AtomicU64,
    /// The instant of the first publish of the current run.
    started: Mutex<Option<Instant>>,
}

/// Publishes on `bench/data` when told to (spawned as `publisher` on `a`).
pub(crate) struct Publisher {
    flow: Arc<Flow>,
}

#[volttron::agent]
impl Publisher {
    /// Publishes `n` (the integers `0..n`, each `bench/data`), never more than [`WINDOW`]
    /// ahead of what the subscriber counted; `base` is the count before the run. Returns
    /// how many it published: fewer when the subscriber counted nothing for [`STALL`].
    #[rpc]
    async fn blast(&mut self, ctx: &AgentContext, base: u64, n: u64) -> Result<u64, String> {
        let topic = Topic::new("bench/data").map_err(|e| e.to_string())?;
        let flow = &self.flow;
        *flow.started.lock() = Some(Instant::now());
        for i in 0..n {
            let sent = base + i;
            while sent >= flow.counted.load(Ordering::SeqCst) + WINDOW {
                // Woken when half the window has drained; the check after the store closes
                // the race (a notification before the wait leaves a permit).
                let before = flow.counted.load(Ordering::SeqCst);
                flow.wake_at.store(sent - WINDOW / 2, Ordering::SeqCst);
                let stalled = sent >= flow.counted.load(Ordering::SeqCst) + WINDOW
                    && timeout(STALL, flow.wake.notified()).await.is_err()
                    && flow.counted.load(Ordering::SeqCst) == before;
                flow.wake_at.store(u64::MAX, Ordering::SeqCst);
                if stalled {
                    return Ok(i);
                }
            }
            ctx.publish(&topic, i).map_err(|e| e.to_string())?;
            if i % super::CHUNK == super::CHUNK - 1 {
                // Lets the federation agent, on the same agent thread, hand them on.
                tokio::task::yield_now().await;
            }
        }
        Ok(n)
    }
}

/// Counts `bench/data` from every platform (spawned as `counter` on `b`); reports
/// `bench/warmup` arrivals apart.
pub(crate) struct RemoteCounter {
    flow: Arc<Flow>,
    done: UnboundedSender<Instant>,
    warm: UnboundedSender<()>,
}

#[volttron::agent]
impl RemoteCounter {
    /// Counts one publication.
    #[subscribe("bench/", all_platforms = true)]
    fn on_data(&mut self, _ctx: &AgentContext, p: &Publication) {
        if p.topic.as_str() != "bench/data" {
            let _ = self.warm.send(());
            return;
        }
        let seen = self.flow.counted.fetch_add(1, Ordering::SeqCst) + 1;
        if seen >= self.flow.wake_at.load(Ordering::SeqCst) {
            self.flow.wake.notify_one();
        }
        if seen == self.flow.target.load(Ordering::SeqCst) {
            let _ = self.done.send(Instant::now());
        }
    }
}

/// Records when each `bench/fan` publication arrives (spawned as `fan` on `p1`..`p9`).
pub(crate) struct FanSink {
    index: usize,
    arrived: UnboundedSender<(usize, u64, Instant)>,
}

#[volttron::agent]
impl FanSink {
    /// Reports `(this sink, i, now)`; `bench/warmup` as `u64::MAX`.
    #[subscribe("bench/", all_platforms = true)]
    fn on_fan(&mut self, _ctx: &AgentContext, p: &Publication) {
        let now = Instant::now();
        let i = match p.topic.as_str() {
            "bench/fan" => p.message.as_u64().unwrap_or(u64::MAX - 1),
            _ => u64::MAX,
        };
        let _ = self.arrived.send((self.index, i, now));
    }
}

/// A federated platform named `name`, one agent thread, its backlog in `dir`.
async fn federated(broker: &Broker, dir: &std::path::Path, name: &str, export: bool) -> Platform {
    let mut config = FederationConfig::new(&broker.url())
        .expect("the broker's URL")
        .backlog_path(dir.join(format!("{name}.sqlite")));
    if export {
        config = config.export(["bench/"]);
    }
    Platform::builder()
        .instance_name(name)
        .agent_threads(1)
        .federation(config)
        .start()
        .await
        .unwrap_or_else(|e| panic!("platform {name}: {e}"))
}

/// Waits until `platform` lists every one of `others` online.
async fn wait_online(platform: &Platform, others: &[String]) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let list = platform
            .call("platform.federation", "list_platforms", ())
            .await
            .expect("list_platforms");
        let online = |name: &String| {
            list.as_list()
                .into_iter()
                .flatten()
                .any(|p| p["name"].as_str() == Some(name.as_str()) && p["state"].as_str() == Some("online"))
        };
        if others.iter().all(online) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every one of {others:?} came online within {SETTLE:?}: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A field of `platform.federation`'s `status`: `status[group][key]`, 0 if absent.
async fn status_figure(platform: &Platform, group: &str, key: &str) -> u64 {
    let status = platform
        .call("platform.federation", "status", ())
        .await
        .expect("platform.federation status");
    status[group][key].as_u64().unwrap_or(0)
}

/// One run of [`FederationRig::pubsub`].
pub(crate) struct PubsubRun {
    /// Publications published.
    pub(crate) published: u64,
    /// Publications the subscriber counted.
    pub(crate) received: u64,
    /// First publish to the last counted.
    pub(crate) elapsed: Duration,
    /// Publications the federation agent's mailbox on `a` dropped during the run.
    pub(crate) mailbox_dropped: u64,
    /// Entries the link's backlog dropped during the run (at its bound).
    pub(crate) backlog_dropped: u64,
    /// Entries left in the link's backlog at the end (it replays them, in order, when its
    /// client's queue was full).
    pub(crate) backlog_left: u64,
    /// Duplicates `b` dropped during the run.
    pub(crate) duplicates: u64,
}

/// Platforms `a` and `b` (see the module docs).
pub(crate) struct FederationRig {
    a: Platform,
    b: Platform,
    flow: Arc<Flow>,
    done: UnboundedReceiver<Instant>,
    _dir: tempfile::TempDir,
}

impl FederationRig {
    /// Starts `a` and `b` on `broker` and waits until a call and a publication crossed.
    pub(crate) async fn start(broker: &Broker) -> FederationRig {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let a = federated(broker, dir.path(), "a", true).await;
        let b = federated(broker, dir.path(), "b", false).await;
        let flow = Arc::new(Flow {
            wake_at: AtomicU64::new(u64::MAX),
            target: AtomicU64::new(u64::MAX),
            ..Flow::default()
        });
        let (done_tx, done) = unbounded_channel();
        let (warm_tx, mut warm) = unbounded_channel();
        b.spawn("echo", Echo).await.expect("spawn echo");
        let counter = RemoteCounter {
            flow: flow.clone(),
            done: done_tx,
            warm: warm_tx,
        };
        b.spawn("counter", counter).await.expect("spawn counter");
        a.spawn("caller", RemoteCaller).await.expect("spawn caller");
        let publisher = Publisher { flow: flow.clone() };
        a.spawn("publisher", publisher).await.expect("spawn publisher");
        wait_online(&a, &["b".into()]).await;
        wait_online(&b, &["a".into()]).await;
        let rig = FederationRig {
            a,
            b,
            flow,
            done,
            _dir: dir,
        };
        rig.rtts(1).await;
        let deadline = Instant::now() + SETTLE;
        loop {
            rig.a.publish("bench/warmup", 0).expect("publish");
            if timeout(Duration::from_millis(200), warm.recv()).await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "no publication reached b");
        }
        rig
    }

    /// `n` sequential calls from `a` to `echo.echo` on `b`, in microseconds, sorted.
    pub(crate) async fn rtts(&self, n: u64) -> Vec<f64> {
        let times: Vec<u64> = self
            .a
            .call("caller", "rtt", ("b", n))
            .timeout(Duration::from_secs(600))
            .returning()
            .await
            .expect("the remote calls");
        let mut times: Vec<f64> = times.into_iter().map(|t| t as f64 / 1e3).collect();
        times.sort_by(f64::total_cmp);
        times
    }

    /// `n` local calls of `echo.echo` on `b` from its platform handle (the driver thread
    /// to `b`'s agent thread and back: the hops a remote call adds twice), in
    /// microseconds, sorted.
    pub(crate) async fn local_rtts(&self, n: u64) -> Vec<f64> {
        let mut times = Vec::with_capacity(n as usize);
        for i in 0..n {
            let t = Instant::now();
            self.b.call("echo", "echo", (i,)).await.expect("local echo");
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(f64::total_cmp);
        times
    }

    /// `n` publications from `a` to the `all_platforms` subscriber on `b` (see the module
    /// docs).
    pub(crate) async fn pubsub(&mut self, n: u64) -> PubsubRun {
        let base = self.flow.counted.load(Ordering::SeqCst);
        self.flow.target.store(base + n, Ordering::SeqCst);
        let dropped_before = self.federation_drops();
        let backlog_before = status_figure(&self.a, "backlog", "dropped").await;
        let dup_before = status_figure(&self.b, "counters", "duplicates").await;
        let published: u64 = self
            .a
            .call("publisher", "blast", (base, n))
            .timeout(Duration::from_secs(600))
            .returning()
            .await
            .expect("blast");
        if published < n {
            self.flow.target.store(base + published, Ordering::SeqCst);
        }
        // Wait for the last, or until nothing arrives for STALL.
        let mut last_count = self.flow.counted.load(Ordering::SeqCst);
        let end = loop {
            match timeout(STALL, self.done.recv()).await {
                Ok(Some(t)) => break Some(t),
                _ => {
                    let now = self.flow.counted.load(Ordering::SeqCst);
                    if now == last_count {
                        break None;
                    }
                    last_count = now;
                }
            }
        };
        let received = self.flow.counted.load(Ordering::SeqCst) - base;
        let started = self.flow.started.lock().take().expect("blast started");
        let elapsed = match end {
            Some(t) => t - started,
            None => {
                eprintln!(
                    "[perf] federation.pubsub: {received} of {published} published ({n} asked) counted, then nothing for {STALL:?}"
                );
                started.elapsed() - STALL
            }
        };
        // A run that ended short moves the next run's target from the count it reached.
        self.flow.target.store(u64::MAX, Ordering::SeqCst);
        PubsubRun {
            published,
            received,
            elapsed,
            mailbox_dropped: self.federation_drops() - dropped_before,
            backlog_dropped: status_figure(&self.a, "backlog", "dropped").await - backlog_before,
            backlog_left: status_figure(&self.a, "backlog", "messages").await,
            duplicates: status_figure(&self.b, "counters", "duplicates").await - dup_before,
        }
    }

    /// What the `platform.federation` agent's mailbox on `a` has dropped.
    fn federation_drops(&self) -> u64 {
        self.a
            .mailbox_stats(volttron::mqtt::IDENTITY)
            .map_or(0, |s| s.dropped_oldest + s.dropped_newest)
    }

    /// Shuts both platforms down.
    pub(crate) async fn shutdown(self) {
        self.a.shutdown().await;
        self.b.shutdown().await;
    }
}

/// Platforms `p0`..`p9` (see the module docs).
pub(crate) struct FanoutRig {
    platforms: Vec<Platform>,
    arrived: UnboundedReceiver<(usize, u64, Instant)>,
    next: u64,
    _dir: tempfile::TempDir,
}

impl FanoutRig {
    /// Starts the platforms on `broker` and waits until `p0` sees the others and a
    /// publication of `p0` reached every subscriber.
    pub(crate) async fn start(broker: &Broker) -> FanoutRig {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (tx, mut arrived) = unbounded_channel();
        let mut platforms = Vec::with_capacity(FANOUT_PLATFORMS);
        for k in 0..FANOUT_PLATFORMS {
            let p = federated(broker, dir.path(), &format!("p{k}"), k == 0).await;
            if k > 0 {
                let sink = FanSink {
                    index: k,
                    arrived: tx.clone(),
                };
                p.spawn("fan", sink).await.expect("spawn fan");
            }
            platforms.push(p);
        }
        let others: Vec<String> = (1..FANOUT_PLATFORMS).map(|k| format!("p{k}")).collect();
        wait_online(&platforms[0], &others).await;
        let mut warm = vec![false; FANOUT_PLATFORMS];
        warm[0] = true;
        let deadline = Instant::now() + SETTLE;
        while !warm.iter().all(|w| *w) {
            platforms[0].publish("bench/warmup", 0).expect("publish");
            let until = Instant::now() + Duration::from_millis(200);
            while let Ok(Some((k, _, _))) =
                timeout(until.saturating_duration_since(Instant::now()), arrived.recv()).await
            {
                warm[k] = true;
            }
            assert!(Instant::now() < deadline, "warm-up did not reach {warm:?}");
        }
        // Late warm-ups.
        while timeout(Duration::from_millis(200), arrived.recv()).await.is_ok() {}
        FanoutRig {
            platforms,
            arrived,
            next: 0,
            _dir: dir,
        }
    }

    /// Threads of this process now (`/proc/self/status`).
    pub(crate) fn threads() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().ok()))
                    .flatten()
            })
            .unwrap_or(0)
    }

    /// `m` publications of `p0`, one at a time: for each, publish to its arrival at the
    /// last of the nine subscribers, in microseconds, sorted.
    pub(crate) async fn latencies(&mut self, m: u64) -> Vec<f64> {
        let subscribers = FANOUT_PLATFORMS - 1;
        let mut out = Vec::with_capacity(m as usize);
        for _ in 0..m {
            let i = self.next;
            self.next += 1;
            let mut got = [false; FANOUT_PLATFORMS];
            let mut count = 0;
            let t = Instant::now();
            let mut last = t;
            self.platforms[0].publish("bench/fan", i).expect("publish");
            while count < subscribers {
                match timeout(STALL, self.arrived.recv()).await {
                    Ok(Some((k, j, at))) if j == i && !got[k] => {
                        got[k] = true;
                        count += 1;
                        last = last.max(at);
                    }
                    Ok(Some(_)) => {}
                    _ => panic!("publication {i} reached {count} of {subscribers} within {STALL:?}"),
                }
            }
            out.push((last - t).as_secs_f64() * 1e6);
        }
        out.sort_by(f64::total_cmp);
        out
    }

    /// Shuts every platform down.
    pub(crate) async fn shutdown(self) {
        for p in self.platforms {
            p.shutdown().await;
        }
    }
}
