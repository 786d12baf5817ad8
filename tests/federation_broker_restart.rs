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

/// The backlog's policies end to end: while the broker is away, `alerts/` (priority 10)
/// replays before `devices/` (keep the latest value per topic), each in order.
#[volttron::test]
async fn the_backlog_replays_by_priority() {
    let Some(mut broker) = Broker::require("federation_backlog_priority", BrokerOptions::new()) else {
        return;
    };
    // A persistent session for the other system, so the broker queues the replay for it.
    drop(broker.mosquitto_sub(&[
        "-t",
        "volttron/site1/pubsub/#",
        "-q",
        "1",
        "-i",
        "scada",
        "-c",
        "-C",
        "1",
        "-W",
        "1",
    ]));
    broker.stop();
    let dir = tempfile::tempdir().unwrap();
    let site1 = Platform::builder()
        .instance_name("site1")
        .federation(
            FederationConfig::new(&broker.url())
                .unwrap()
                .export(["devices/", "alerts/"])
                .backlog_path(dir.path().join("site1.sqlite"))
                .backlog_policy("alerts/", volttron::mqtt::backlog::KeepPolicy::DropNewest, 10)
                .backlog_policy(
                    "devices/",
                    volttron::mqtt::backlog::KeepPolicy::KeepLatestPerTopic,
                    0,
                ),
        )
        .start()
        .await
        .unwrap();
    // The federation agent subscribes as it starts: publish until the backlog counts one.
    until("the first publication is backlogged", async || {
        site1.publish("devices/warmup", 0).unwrap();
        let f = site1.call("platform.federation", "flush", ()).await.unwrap();
        f["backlogged"].as_i64() >= Some(1)
    })
    .await;
    for (topic, v) in [
        ("devices/ahu1", 1),
        ("alerts/fire", 2),
        ("devices/ahu1", 3),
        ("devices/ahu2", 4),
        ("alerts/smoke", 5),
    ] {
        site1.publish(topic, v).unwrap();
    }
    let flushed = site1.call("platform.federation", "flush", ()).await.unwrap();
    // devices/warmup, devices/ahu1 (latest only), devices/ahu2, two alerts.
    assert_eq!(flushed["backlogged"], Value::from(5), "{flushed:?}");
    broker.start_again();
    until("the replay is done", async || {
        status(&site1).await["backlog"]["messages"] == Value::from(0)
    })
    .await;
    // The session resumes with the queued replay before its SUBACK: read it plainly.
    let port = broker.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("mosquitto_sub")
            .args([
                "-V",
                "mqttv5",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "volttron/site1/pubsub/#",
            ])
            .args([
                "-q", "1", "-i", "scada", "-c", "-C", "5", "-W", "20", "-F", "%t %p",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let got: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (topic, payload) = l.split_once(' ').unwrap();
            let payload: serde_json::Value = serde_json::from_str(payload).unwrap();
            (
                topic.trim_start_matches("volttron/site1/pubsub/").to_owned(),
                payload["message"].to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("alerts/fire", "2"),
        ("alerts/smoke", "5"),
        ("devices/warmup", "0"),
        ("devices/ahu1", "3"),
        ("devices/ahu2", "4"),
    ]
    .iter()
    .map(|(t, v)| (t.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want);
    site1.shutdown().await;
}
