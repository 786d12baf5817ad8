//! Concurrency on two agent threads: every publication and every call is delivered
//! exactly once, in per-publisher order, while publishers, subscribers and callers run on
//! different threads at the same time.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use volttron::prelude::*;
use volttron::testing::TestPlatform;

const PUBLISHERS: usize = 4;
const MESSAGES: u64 = 2_000;

/// Publishes `MESSAGES` numbered readings when asked.
struct Publisher {
    unit: usize,
}

#[volttron::agent]
impl Publisher {
    #[rpc]
    fn go(&mut self, ctx: &AgentContext) -> usize {
        let topic = Topic::new(format!("devices/campus/rtu{}/all", self.unit)).unwrap();
        let mut reached = 0;
        for n in 0..MESSAGES {
            reached += ctx.publish(&topic, n).unwrap();
        }
        reached
    }
}

/// Counts per (subscription, publisher) and checks per-publisher order.
#[derive(Default)]
struct Counter {
    seen: Arc<Mutex<HashMap<(String, String), u64>>>,
    out_of_order: Arc<Mutex<u64>>,
}

#[volttron::agent]
impl Counter {
    #[subscribe("devices/")]
    fn all(&mut self, msg: &Publication) {
        self.count("all", msg);
    }

    #[subscribe("devices/campus/rtu1")]
    fn one(&mut self, msg: &Publication) {
        self.count("rtu1", msg);
    }

    #[rpc]
    fn bump(&mut self) -> u64 {
        let mut seen = self.seen.lock();
        let n = seen.entry(("rpc".into(), String::new())).or_default();
        *n += 1;
        *n
    }
}

impl Counter {
    fn count(&mut self, which: &str, msg: &Publication) {
        let mut seen = self.seen.lock();
        let n = seen.entry((which.to_owned(), msg.topic.to_string())).or_default();
        if msg.message != Value::from(*n) {
            *self.out_of_order.lock() += 1;
        }
        *n += 1;
    }
}

#[volttron::test]
async fn publications_are_delivered_exactly_once_in_order_across_threads() {
    let tp = TestPlatform::builder().agent_threads(2).start().await;
    let counters: Vec<Counter> = (0..3).map(|_| Counter::default()).collect();
    let views: Vec<_> = counters
        .iter()
        .map(|c| (c.seen.clone(), c.out_of_order.clone()))
        .collect();
    for (i, c) in counters.into_iter().enumerate() {
        tp.spawn(format!("counter{i}"), c).await.unwrap();
    }
    for unit in 0..PUBLISHERS {
        tp.spawn(format!("rtu{unit}"), Publisher { unit }).await.unwrap();
    }
    // All publishers at once, from the handle (another thread) and the two agent threads.
    let runs = (0..PUBLISHERS).map(|unit| tp.call(&format!("rtu{unit}"), "go", ()).returning::<usize>());
    let reached: Vec<usize> = futures::future::try_join_all(runs).await.unwrap();
    // Each publish reached the three counters once, however many of their subscriptions matched.
    assert!(reached.iter().all(|&r| r == 3 * MESSAGES as usize), "{reached:?}");
    tp.settle().await;
    for (seen, out_of_order) in &views {
        let seen = seen.lock();
        for unit in 0..PUBLISHERS {
            let topic = format!("devices/campus/rtu{unit}/all");
            assert_eq!(seen.get(&("all".into(), topic.clone())), Some(&MESSAGES));
            let expected_one = (unit == 1).then_some(&MESSAGES);
            assert_eq!(seen.get(&("rtu1".into(), topic)), expected_one);
        }
        assert_eq!(*out_of_order.lock(), 0);
    }
    tp.shutdown().await;
}

/// Calls `counter0.bump` `n` times.
struct Caller;

#[volttron::agent]
impl Caller {
    #[rpc]
    async fn hammer(&mut self, ctx: &AgentContext, n: u64) -> Result<u64, RpcError> {
        let mut last = 0;
        for _ in 0..n {
            last = ctx.call("counter0", "bump", ()).returning().await?;
        }
        Ok(last)
    }
}

#[volttron::test]
async fn concurrent_calls_are_each_answered_once() {
    let tp = TestPlatform::builder().agent_threads(2).start().await;
    let counter = Counter::default();
    let seen = counter.seen.clone();
    tp.spawn("counter0", counter).await.unwrap();
    for i in 0..4 {
        tp.spawn(format!("caller{i}"), Caller).await.unwrap();
    }
    let runs = (0..4).map(|i| {
        tp.call(&format!("caller{i}"), "hammer", (500,))
            .returning::<u64>()
    });
    let lasts = futures::future::try_join_all(runs).await.unwrap();
    assert_eq!(lasts.iter().max(), Some(&2000));
    assert_eq!(seen.lock().get(&("rpc".into(), String::new())), Some(&2000));
    tp.shutdown().await;
}
