//! Chaos: while pub/sub and RPC load flows across two agent threads, fragile agents panic
//! at pseudo-random points. Healthy agents lose no message, the platform keeps serving, and
//! afterwards the peer list and subscriptions are exactly the healthy set.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use volttron::prelude::*;
use volttron::supervision::{ChildSpec, Supervisor};
use volttron::testing::TestPlatform;

const HEALTHY: usize = 8;
const FRAGILE: usize = 8;
const MESSAGES: u64 = 3_000;

/// Counts every reading; answers RPCs.
struct Healthy {
    seen: Arc<AtomicU64>,
}

#[volttron::agent]
impl Healthy {
    #[subscribe("load/")]
    fn reading(&mut self, _msg: &Publication) {
        self.seen.fetch_add(1, Ordering::Relaxed);
    }

    #[rpc]
    fn seen(&mut self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}

/// Panics on the reading it was dealt.
struct Fragile {
    fatal: u64,
}

#[volttron::agent]
impl Fragile {
    #[subscribe("load/")]
    fn reading(&mut self, msg: &Publication) {
        if msg.message.as_u64() == Some(self.fatal) {
            panic!("chaos at {}", self.fatal);
        }
    }

    #[rpc]
    fn poke(&mut self, n: u64) -> u64 {
        if n == self.fatal {
            panic!("chaos on call {n}");
        }
        n
    }
}

/// Publishes the load and calls everyone while doing it.
struct Driver;

#[volttron::agent]
impl Driver {
    #[rpc]
    async fn run(&mut self, ctx: &AgentContext) -> Result<u64, String> {
        let topic = Topic::new("load/readings").unwrap();
        let mut answered = 0;
        for n in 0..MESSAGES {
            ctx.publish(&topic, n).map_err(|e| e.to_string())?;
            if n % 50 == 0 {
                let healthy = format!("healthy{}", n as usize % HEALTHY);
                ctx.call(&healthy, "seen", ()).await.map_err(|e| e.to_string())?;
                answered += 1;
                // Fragile ones may be gone or may panic: both are fine for the caller.
                let fragile = format!("fragile{}", n as usize % FRAGILE);
                let _ = ctx.call(&fragile, "poke", (n,)).await;
            }
        }
        Ok(answered)
    }
}

/// A small deterministic generator (no extra crates; reproducible failures).
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

#[volttron::test]
async fn healthy_agents_lose_nothing_while_others_crash() {
    let tp = TestPlatform::builder().agent_threads(2).start().await;
    let counters: Vec<Arc<AtomicU64>> = (0..HEALTHY).map(|_| Arc::new(AtomicU64::new(0))).collect();
    for (i, seen) in counters.iter().enumerate() {
        tp.spawn(format!("healthy{i}"), Healthy { seen: seen.clone() })
            .await
            .unwrap();
    }
    let mut seed = 0x5eed;
    for i in 0..FRAGILE {
        let fatal = lcg(&mut seed) % MESSAGES;
        tp.spawn(format!("fragile{i}"), Fragile { fatal }).await.unwrap();
    }
    // A supervised fragile group too: it restarts, then gives up; nothing leaks either way.
    let mut group = Supervisor::builder("fragile-group");
    for i in 0..4 {
        let fatal = lcg(&mut seed) % MESSAGES;
        group = group.child(ChildSpec::agent(format!("supervised{i}"), move || Fragile {
            fatal,
        }));
    }
    tp.start_child(ChildSpec::supervisor(group.build()).restart(volttron::supervision::Restart::Temporary))
        .await
        .unwrap();
    tp.spawn("driver", Driver).await.unwrap();

    let answered: u64 = tp.call("driver", "run", ()).returning().await.unwrap();
    assert_eq!(answered, MESSAGES / 50);
    tp.settle().await;

    for (i, seen) in counters.iter().enumerate() {
        assert_eq!(seen.load(Ordering::Relaxed), MESSAGES, "healthy{i} lost messages");
    }
    // Every fragile agent met its fatal reading; the supervised ones keep restarting
    // (fresh instances see only later readings) until their supervisor may give up.
    let peers: Vec<String> = tp.peers().iter().map(|p| p.to_string()).collect();
    let mut expected: Vec<String> = (0..HEALTHY).map(|i| format!("healthy{i}")).collect();
    expected.push("driver".into());
    let supervised: Vec<String> = peers
        .iter()
        .filter(|p| p.starts_with("supervised"))
        .cloned()
        .collect();
    expected.extend(supervised.iter().cloned());
    expected.sort();
    assert_eq!(peers, expected);
    assert!(!peers.iter().any(|p| p.starts_with("fragile")));
    // Subscriptions are exactly those of the agents still connected.
    let mut subscribers: Vec<String> = tp
        .subscriptions("")
        .into_iter()
        .map(|s| s.peer.to_string())
        .collect();
    subscribers.sort();
    let mut connected_subscribers: Vec<String> = peers.into_iter().filter(|p| p != "driver").collect();
    connected_subscribers.sort();
    assert_eq!(subscribers, connected_subscribers);

    // The platform keeps serving.
    tp.spawn("late", Healthy { seen: Arc::default() }).await.unwrap();
    assert_eq!(
        tp.publish("load/late", 0).unwrap(),
        HEALTHY + 1 + supervised.len()
    );
    tp.shutdown().await;
}
