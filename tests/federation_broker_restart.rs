//! The broker restarts mid-stream: calls in flight fail with a clear error, publications
//! made during the outage arrive after it, in order and once, and later calls succeed.
#![cfg(feature = "mqtt")]

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::mosquitto::{Broker, BrokerOptions};
use volttron::mqtt::{FederationConfig, FederationExt};
use volttron::prelude::*;

struct Listener {
    tx: mpsc::Sender<Publication>,
}

#[volttron::agent]
impl Listener {
    #[subscribe("devices/", all_platforms = true)]
    fn on_device(&mut self, _ctx: &AgentContext, p: &Publication) {
        if p.is_remote() {
            let _ = self.tx.send(p.clone());
        }
    }

    /// Answers after `ms` milliseconds.
    #[rpc]
    async fn slow(&mut self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

async fn start(broker: &Broker, dir: &std::path::Path, name: &str) -> Platform {
    Platform::builder()
        .instance_name(name)
        .rpc_timeout(Duration::from_secs(20))
        .federation(
            FederationConfig::new(&broker.url())
                .unwrap()
                .export(["devices/"])
                .backlog_path(dir.join(format!("{name}.sqlite"))),
        )
        .start()
        .await
        .unwrap()
}

async fn status(p: &Platform) -> Value {
    p.call("platform.federation", "status", ()).await.unwrap()
}

async fn until(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn topics_until(rx: &mpsc::Receiver<Publication>, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let p = rx.recv_timeout(Duration::from_secs(30)).expect("a publication");
        let t = p.topic.to_string();
        got.push(t.clone());
        if t == last {
            return got;
        }
    }
}

#[volttron::test]
async fn a_broker_restart_mid_stream() {
    let Some(mut broker) = Broker::require("federation_broker_restart", BrokerOptions::new()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let site1 = start(&broker, dir.path(), "site1").await;
    let site2 = start(&broker, dir.path(), "site2").await;
    let (tx, rx) = mpsc::channel();
    site2.spawn("listener", Listener { tx }).await.unwrap();
    let answers = async || {
        site1
            .call("listener", "slow", (0,))
            .on_platform("site2")
            .await
            .is_ok()
    };
    until("site1 sees site2", answers).await;
    // Before the outage: publications flow.
    until("a publication crosses", async || {
        site1.publish("devices/warmup", 0).unwrap();
        rx.recv_timeout(Duration::from_millis(200)).is_ok()
    })
    .await;
    site1.publish("devices/before", 1).unwrap();
    let before = topics_until(&rx, "devices/before");
    assert!(
        before
            .iter()
            .all(|t| t.starts_with("devices/warmup") || t == "devices/before")
    );

    // A call in flight when the broker goes fails at once with a clear error (the broker
    // lost, or, when mosquitto sends the other platform's last will as it stops, that
    // platform left).
    let in_flight = site1
        .call("listener", "slow", (6_000,))
        .on_platform("site2")
        .into_future();
    let in_flight = tokio::spawn(in_flight);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = Instant::now();
    broker.stop();
    let e = in_flight.await.unwrap().unwrap_err();
    assert!(
        matches!(&e, RpcError::Unreachable { reason, .. } if reason.contains("broker") || reason.contains("left")),
        "{e:?}"
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "not a timeout: {:?}",
        stopped.elapsed()
    );
    until("site1 notices", async || {
        status(&site1).await["connected"] == Value::from(false)
    })
    .await;
    let e = site1
        .call("listener", "slow", (0,))
        .on_platform("site2")
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Unreachable { .. }), "{e:?}");

    // Published during the outage: backlogged.
    for i in 0..50 {
        site1
            .publish(format!("devices/outage/{i:02}").as_str(), i)
            .unwrap();
    }
    let flushed = site1.call("platform.federation", "flush", ()).await.unwrap();
    assert_eq!(flushed["backlogged"], Value::from(50));

    broker.start_again();
    site1.publish("devices/after", 2).unwrap();
    let got = topics_until(&rx, "devices/after");
    let want: Vec<String> = (0..50)
        .map(|i| format!("devices/outage/{i:02}"))
        .chain(["devices/after".to_owned()])
        .collect();
    assert_eq!(
        got, want,
        "in order, each once, the backlog before what came after"
    );
    // Later calls succeed.
    until("calls succeed again", answers).await;
    assert_eq!(status(&site1).await["backlog"]["messages"], Value::from(0));
    site1.shutdown().await;
    site2.shutdown().await;
}
