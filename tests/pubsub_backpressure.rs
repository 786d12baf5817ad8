//! Backpressure: a slow subscriber's mailbox is bounded; each subscription's overflow
//! policy decides what is dropped; the publisher never waits; counters match the drops.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use volttron::prelude::*;
use volttron::testing::TestPlatform;
use volttron::{MailboxStats, OverflowPolicy};

const CAPACITY: usize = 100;
const FLOOD: i64 = 1_000;

type Seen = Arc<Mutex<Vec<i64>>>;

/// Takes one virtual second per reading.
struct Slow {
    seen: Seen,
}

#[volttron::agent]
impl Slow {
    #[subscribe("oldest/")]
    async fn oldest(&mut self, ctx: &AgentContext, msg: &Publication) {
        self.take(ctx, msg).await;
    }

    #[subscribe("newest/", overflow = "drop_newest")]
    async fn newest(&mut self, ctx: &AgentContext, msg: &Publication) {
        self.take(ctx, msg).await;
    }

    #[subscribe("strict/", overflow = "disconnect")]
    async fn strict(&mut self, ctx: &AgentContext, msg: &Publication) {
        self.take(ctx, msg).await;
    }
}

impl Slow {
    async fn take(&mut self, ctx: &AgentContext, msg: &Publication) {
        self.seen.lock().push(msg.message.as_i64().unwrap());
        ctx.clock().sleep(Duration::from_secs(1)).await;
    }
}

/// Starts a platform with small mailboxes and a slow subscriber that is busy with
/// message 0 of `prefix`, so that the flood that follows meets a full mailbox.
async fn flooded(prefix: &str) -> (TestPlatform, Seen, Vec<usize>) {
    let tp = TestPlatform::builder().mailbox_capacity(CAPACITY).start().await;
    let seen = Seen::default();
    tp.spawn("slow", Slow { seen: seen.clone() }).await.unwrap();
    assert_eq!(tp.publish(format!("{prefix}x"), 0).unwrap(), 1);
    tp.settle().await; // now inside the handler for 0, waiting for virtual time
    let reached = (1..=FLOOD)
        .map(|n| tp.publish(format!("{prefix}x"), n).unwrap())
        .collect();
    (tp, seen, reached)
}

async fn drain(tp: &TestPlatform) {
    tp.advance(Duration::from_secs(FLOOD as u64 + 10)).await;
}

#[volttron::test]
async fn drop_oldest_keeps_the_latest_readings() {
    let (tp, seen, reached) = flooded("oldest/").await;
    // Every publish reached the subscriber (the new one is always queued).
    assert!(reached.iter().all(|&r| r == 1));
    let stats = tp.mailbox_stats("slow").unwrap();
    assert_eq!(
        stats,
        MailboxStats {
            queued: CAPACITY,
            queued_publications: CAPACITY,
            capacity: CAPACITY,
            dropped_oldest: (FLOOD as usize - CAPACITY) as u64,
            ..Default::default()
        }
    );
    drain(&tp).await;
    let expected: Vec<i64> = std::iter::once(0)
        .chain(FLOOD - CAPACITY as i64 + 1..=FLOOD)
        .collect();
    assert_eq!(*seen.lock(), expected);
    tp.shutdown().await;
}

#[volttron::test]
async fn drop_newest_keeps_the_first_readings() {
    let (tp, seen, reached) = flooded("newest/").await;
    assert_eq!(reached.iter().filter(|&&r| r == 1).count(), CAPACITY);
    assert_eq!(
        reached.iter().filter(|&&r| r == 0).count(),
        FLOOD as usize - CAPACITY
    );
    let stats = tp.mailbox_stats("slow").unwrap();
    assert_eq!(stats.dropped_newest, (FLOOD as usize - CAPACITY) as u64);
    assert_eq!(stats.dropped(), stats.dropped_newest);
    drain(&tp).await;
    let expected: Vec<i64> = (0..=CAPACITY as i64).collect();
    assert_eq!(*seen.lock(), expected);
    tp.shutdown().await;
}

#[volttron::test]
async fn disconnect_removes_a_slow_subscription() {
    let (tp, seen, reached) = flooded("strict/").await;
    assert_eq!(reached.iter().filter(|&&r| r == 1).count(), CAPACITY);
    let stats = tp.mailbox_stats("slow").unwrap();
    assert_eq!(stats.disconnected, 1);
    // Only the strict subscription went; the others stay.
    let subs: Vec<String> = tp.subscriptions("").into_iter().map(|s| s.subscription).collect();
    assert_eq!(subs, ["newest/", "oldest/"]);
    assert_eq!(tp.publish("strict/x", -1).unwrap(), 0);
    drain(&tp).await;
    assert_eq!(seen.lock().len(), CAPACITY + 1);
    tp.shutdown().await;
}

/// Publishes a burst from a handler and records how many it reached.
struct Burst {
    reached: Arc<Mutex<usize>>,
}

#[volttron::agent]
impl Burst {
    #[rpc]
    fn burst(&mut self, ctx: &AgentContext, n: i64) {
        let mut total = 0;
        for i in 0..n {
            total += ctx.publish("oldest/burst", i).unwrap();
        }
        *self.reached.lock() = total;
    }
}

#[volttron::test]
async fn rpc_requests_are_not_dropped_by_a_full_mailbox() {
    let (tp, _seen, _) = flooded("oldest/").await;
    // The slow agent's mailbox is full of publications; a call queues behind them anyway
    // and is answered once they are handled.
    let reply = tp.call("slow", "inspect", ()).timeout(Duration::from_secs(3600));
    let (reply, ()) = futures::join!(reply.into_future(), drain(&tp));
    assert!(reply.is_ok(), "{reply:?}");
    assert_eq!(
        tp.mailbox_stats("slow").unwrap().dropped_oldest,
        (FLOOD as usize - CAPACITY) as u64
    );
    tp.shutdown().await;
}

#[volttron::test]
async fn the_default_policy_is_drop_oldest() {
    let tp = TestPlatform::builder().mailbox_capacity(1).start().await;
    let seen = Seen::default();
    tp.spawn("slow", Slow { seen: seen.clone() }).await.unwrap();
    let reached = Arc::new(Mutex::new(0));
    tp.spawn(
        "burst",
        Burst {
            reached: reached.clone(),
        },
    )
    .await
    .unwrap();
    // Default for #[subscribe] is DropOldest: every publish reaches `slow`.
    tp.call("burst", "burst", (10,)).await.unwrap();
    assert_eq!(*reached.lock(), 10);
    // One agent thread: the burst runs to its end before `slow` takes anything.
    assert_eq!(tp.mailbox_stats("slow").unwrap().dropped_oldest, 9);
    assert_eq!(OverflowPolicy::default(), OverflowPolicy::DropOldest);
    tp.shutdown().await;
}

/// Subscribes at run time with an explicit policy.
struct Picky;

#[volttron::agent]
impl Picky {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) {
        ctx.subscribe_with::<Picky>("", "oldest/", OverflowPolicy::DropNewest, |_, _, _| {})
            .unwrap();
    }
}

#[volttron::test]
async fn a_runtime_subscription_takes_a_policy() {
    let tp = TestPlatform::builder().mailbox_capacity(1).start().await;
    tp.spawn("picky", Picky).await.unwrap();
    let reached = Arc::new(Mutex::new(0));
    tp.spawn(
        "burst",
        Burst {
            reached: reached.clone(),
        },
    )
    .await
    .unwrap();
    tp.call("burst", "burst", (10,)).await.unwrap();
    // The first publication was queued, the nine after it found the mailbox full.
    assert_eq!(*reached.lock(), 1);
    assert_eq!(tp.mailbox_stats("picky").unwrap().dropped_newest, 9);
    tp.shutdown().await;
}

/// Logs readings (the first one takes 5 virtual seconds) and a periodic tick.
struct Busy {
    log: Arc<Mutex<Vec<String>>>,
}

#[volttron::agent]
impl Busy {
    #[subscribe("readings/")]
    async fn reading(&mut self, ctx: &AgentContext, msg: &Publication) {
        let n = msg.message.as_i64().unwrap();
        self.log.lock().push(format!("reading {n}"));
        if n == 0 {
            ctx.clock().sleep(Duration::from_secs(5)).await;
        }
    }

    #[periodic(secs = 3, wait = 3)]
    fn tick(&mut self, ctx: &AgentContext) {
        self.log
            .lock()
            .push(format!("tick at {}s", ctx.now().timestamp() % 60));
    }

    #[on_stop]
    fn stop(&mut self) {
        self.log.lock().push("stop".into());
    }
}

#[volttron::test]
async fn timers_go_ahead_of_a_flooded_mailbox(tp: TestPlatform) {
    let log = Arc::new(Mutex::new(Vec::new()));
    tp.spawn("busy", Busy { log: log.clone() }).await.unwrap();
    for n in 0..=100 {
        tp.publish("readings/x", n).unwrap();
    }
    tp.advance(Duration::from_secs(5)).await;
    let log = log.lock();
    // The tick due at 3 s waited only for the handler that was running (until 5 s), not
    // for the hundred readings queued before it.
    assert_eq!(&log[..3], ["reading 0", "tick at 5s", "reading 1"]);
    assert_eq!(log.len(), 102);
}

#[volttron::test]
async fn a_flooded_agent_stops_without_handling_its_backlog(tp: TestPlatform) {
    let log = Arc::new(Mutex::new(Vec::new()));
    tp.spawn("busy", Busy { log: log.clone() }).await.unwrap();
    for n in 0..=1000 {
        tp.publish("readings/x", n).unwrap();
    }
    tp.settle().await;
    let platform = tp.platform().clone();
    let stopping = tokio::spawn(async move { platform.stop_agent("busy").await });
    // The stop waits for the running handler (5 s, within the shutdown timeout), not for
    // the thousand queued readings.
    tp.advance(Duration::from_secs(5)).await;
    assert!(stopping.await.unwrap());
    assert_eq!(*log.lock(), ["reading 0", "stop"]);
    tp.assert_peers(&[]);
}
