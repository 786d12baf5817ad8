//! Two platforms in one process federated through a real mosquitto: `all_platforms`
//! subscriptions, origin, exported and unexported prefixes, calls with `on_platform`,
//! `Unreachable`, remote callers under `authz.json`-style names, and the link's limits.
#![cfg(feature = "mqtt")]

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::mosquitto::{Broker, BrokerOptions};
use volttron::mqtt::{FederationConfig, FederationExt};
use volttron::prelude::*;

/// Records what it receives from every platform; answers `whoami`.
struct Listener {
    tx: mpsc::Sender<Publication>,
}

#[volttron::agent]
impl Listener {
    #[subscribe("devices/", all_platforms = true)]
    fn on_device(&mut self, _ctx: &AgentContext, p: &Publication) {
        let _ = self.tx.send(p.clone());
    }

    /// The caller's identity as this platform sees it.
    #[rpc]
    fn whoami(&mut self, caller: Caller, text: String) -> String {
        format!("{} says {text}", caller.identity())
    }

    #[rpc]
    fn fail(&mut self) -> Result<(), String> {
        Err("refused on purpose".into())
    }
}

/// Subscribed without `all_platforms`: must never see another platform's publications.
struct LocalOnly {
    tx: mpsc::Sender<Publication>,
}

#[volttron::agent]
impl LocalOnly {
    #[subscribe("devices/")]
    fn on_device(&mut self, _ctx: &AgentContext, p: &Publication) {
        let _ = self.tx.send(p.clone());
    }
}

fn config(broker: &Broker, dir: &std::path::Path, name: &str) -> FederationConfig {
    FederationConfig::new(&broker.url())
        .unwrap()
        .export(["devices/"])
        .keepalive(Duration::from_secs(2))
        .backlog_path(dir.join(format!("{name}.sqlite")))
}

async fn start(name: &str, federation: FederationConfig) -> Platform {
    Platform::builder()
        .instance_name(name)
        .rpc_timeout(Duration::from_secs(10))
        .federation(federation)
        .start()
        .await
        .unwrap()
}

/// Waits (polling `platform.federation`) until `platform` sees `other` in `state`.
async fn wait_for_state(platform: &Platform, other: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = platform
            .call("platform.federation", "list_platforms", ())
            .await
            .unwrap();
        let seen = list
            .as_list()
            .into_iter()
            .flatten()
            .any(|p| p["name"].as_str() == Some(other) && p["state"].as_str() == Some(state));
        if seen {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{other} never became {state}: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn recv(rx: &mpsc::Receiver<Publication>) -> Publication {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("a publication within 20 s")
}

#[volttron::test]
async fn publications_calls_and_limits_cross_platforms() {
    let Some(broker) = Broker::require("federation_inprocess", BrokerOptions::new()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let site1 = start(
        "site1",
        config(&broker, dir.path(), "site1").export(["devices/", "alerts/"]),
    )
    .await;
    let site2 = start("site2", config(&broker, dir.path(), "site2")).await;
    let (tx, rx) = mpsc::channel();
    site2.spawn("listener", Listener { tx }).await.unwrap();
    let (local_tx, local_rx) = mpsc::channel();
    site2.spawn("local", LocalOnly { tx: local_tx }).await.unwrap();
    wait_for_state(&site1, "site2", "online").await;
    wait_for_state(&site2, "site1", "online").await;

    // A publication under an exported prefix arrives once, with its origin; its sender
    // is `<platform>.<identity>`. The broker subscription may lag the agent's start:
    // publish until the first arrives.
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        site1.publish("devices/warmup", 0).unwrap();
        if let Ok(p) = rx.recv_timeout(Duration::from_millis(200)) {
            break p;
        }
        assert!(Instant::now() < deadline, "no publication crossed");
    };
    assert_eq!(first.origin.as_deref(), Some("site1"));
    assert_eq!(first.sender.as_str(), "site1.platform");
    while rx.try_recv().is_ok() {}

    site1.publish("secret/x", "must not leave").unwrap();
    site1.publish("devices/campus/ahu1", 21.5).unwrap();
    let p = recv(&rx);
    assert_eq!(
        p.topic.as_str(),
        "devices/campus/ahu1",
        "the unexported prefix leaked: {p:?}"
    );
    assert_eq!(p.message, Value::from(21.5));
    assert!(p.is_remote());
    // Delivered once per subscription, never twice.
    site1.publish("devices/campus/ahu2", 1).unwrap();
    assert_eq!(recv(&rx).topic.as_str(), "devices/campus/ahu2");
    // site2's own publication reaches its all_platforms subscriber locally, never back
    // from the broker.
    site2.publish("devices/local/1", "here").unwrap();
    let own = recv(&rx);
    assert_eq!(own.origin, None);
    site1.publish("devices/campus/ahu3", 3).unwrap();
    assert_eq!(recv(&rx).topic.as_str(), "devices/campus/ahu3");
    // The plain subscriber saw only site2's own publication.
    assert_eq!(
        local_rx
            .try_iter()
            .map(|p| p.topic.to_string())
            .collect::<Vec<_>>(),
        ["devices/local/1"]
    );

    // Calls: answered, with the caller named `<platform>.<identity>`.
    let reply: String = site1
        .call("listener", "whoami", ("hello",))
        .on_platform("site2")
        .returning()
        .await
        .unwrap();
    assert_eq!(reply, "site1.platform says hello");
    // This platform's own name is a local call.
    let local = site2
        .call("listener", "whoami", ("me",))
        .on_platform("site2")
        .returning::<String>()
        .await;
    assert_eq!(local.unwrap(), "platform says me");
    // Errors cross as they are.
    let e = site1
        .call("listener", "fail", ())
        .on_platform("site2")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RpcError::Remote { message, .. } if message.contains("refused on purpose")),
        "{e:?}"
    );
    let e = site1
        .call("nobody", "x", ())
        .on_platform("site2")
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::UnknownPeer { .. }), "{e:?}");
    // A platform nobody has seen is unreachable at once, not a timeout.
    let started = Instant::now();
    let e = site1
        .call("listener", "whoami", ("x",))
        .on_platform("site9")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RpcError::Unreachable { platform, .. } if platform == "site9"),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    // site2 leaves: site1 sees it go, and calls to it are unreachable.
    site2.shutdown().await;
    wait_for_state(&site1, "site2", "offline").await;
    let e = site1
        .call("listener", "whoami", ("x",))
        .on_platform("site2")
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Unreachable { .. }), "{e:?}");
    let status = site1.call("platform.federation", "status", ()).await.unwrap();
    assert_eq!(status["connected"], Value::from(true));
    assert_eq!(status["instance"], Value::from("site1"));
    site1.shutdown().await;
}

#[volttron::test]
async fn without_a_federation_other_platforms_are_unreachable() {
    let platform = Platform::builder().instance_name("alone").start().await.unwrap();
    let e = platform
        .call("x", "y", ())
        .on_platform("elsewhere")
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Unreachable { .. }), "{e:?}");
    platform.shutdown().await;
}

/// With the broker away, publications wait in the backlog, and its size and age are
/// Prometheus series of `platform.federation` (refreshed every 5 s).
#[cfg(feature = "metrics")]
#[volttron::test]
async fn the_backlog_is_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = common::free_port(); // no broker listens there
    let metrics = volttron::metrics::Metrics::new();
    let platform = Platform::builder()
        .instance_name("island")
        .instrumentation(metrics.clone())
        .federation(
            FederationConfig::new(&format!("mqtt://127.0.0.1:{nobody}"))
                .unwrap()
                .export(["devices/"])
                .backlog_path(dir.path().join("island.sqlite")),
        )
        .start()
        .await
        .unwrap();
    // The federation agent subscribes as it starts: publish until the backlog counts.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        platform.publish("devices/meter/1", 1).unwrap();
        let flushed = platform.call("platform.federation", "flush", ()).await.unwrap();
        if flushed["backlogged"].as_i64() >= Some(3) {
            break;
        }
        assert!(Instant::now() < deadline, "nothing backlogged: {flushed:?}");
    }
    let status = platform.call("platform.federation", "status", ()).await.unwrap();
    assert_eq!(status["connected"], Value::from(false));
    let series = |text: &str, name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("identity=\"platform.federation\""))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = metrics.encode(&platform).await;
        if let (Some(n), Some(age)) = (
            series(&text, "volttron_app_federation_backlog_messages"),
            series(&text, "volttron_app_federation_backlog_oldest_age_seconds"),
        ) && n >= 3.0
            && age > 0.0
        {
            assert_eq!(series(&text, "volttron_app_federation_connected"), Some(0.0));
            break;
        }
        assert!(Instant::now() < deadline, "no backlog series: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    platform.shutdown().await;
}

/// A platform not on the allow list is neither heard nor answered.
#[volttron::test]
async fn the_allow_list_keeps_other_platforms_out() {
    let Some(broker) = Broker::require("federation_allow_list", BrokerOptions::new()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let friend = start("friend", config(&broker, dir.path(), "friend")).await;
    let stranger = start("stranger", config(&broker, dir.path(), "stranger")).await;
    let picky = start("picky", config(&broker, dir.path(), "picky").allow(["friend"])).await;
    let (tx, rx) = mpsc::channel();
    picky.spawn("listener", Listener { tx }).await.unwrap();
    wait_for_state(&stranger, "picky", "online").await;
    wait_for_state(&friend, "picky", "online").await;
    // The stranger's call is refused at once on its own side: picky is online, but the
    // stranger is not on picky's list, so picky drops the call and it times out...
    let e = stranger
        .call("listener", "whoami", ("hi",))
        .on_platform("picky")
        .timeout(Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Timeout { .. }), "{e:?}");
    // ...while picky will not call it at all.
    let e = picky
        .call("x", "y", ())
        .on_platform("stranger")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RpcError::Unreachable { reason, .. } if reason.contains("allow")),
        "{e:?}"
    );
    // Publications: the stranger's are dropped, the friend's arrive.
    let deadline = Instant::now() + Duration::from_secs(20);
    let p = loop {
        stranger.publish("devices/stranger", 1).unwrap();
        friend.publish("devices/friend", 2).unwrap();
        if let Ok(p) = rx.recv_timeout(Duration::from_millis(200)) {
            break p;
        }
        assert!(Instant::now() < deadline, "nothing from the friend");
    };
    assert_eq!(p.origin.as_deref(), Some("friend"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_iter().all(|p| p.origin.as_deref() == Some("friend")));
    let refused = picky.call("platform.federation", "status", ()).await.unwrap()["counters"]["refused"]
        .as_i64()
        .unwrap();
    assert!(refused >= 1, "{refused}");
    for p in [friend, stranger, picky] {
        p.shutdown().await;
    }
}

/// `mqtts://` with `ca-file`: the platforms check the broker's certificate (rustls on
/// ring); one given another CA never connects.
#[volttron::test]
async fn tls_to_the_broker_checks_its_certificate() {
    let server = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (server.cert.pem(), server.signing_key.serialize_pem());
    let Some(broker) = Broker::require("federation_tls", BrokerOptions::new().tls(&cert, &key)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("broker-ca.pem");
    std::fs::write(&ca, &cert).unwrap();
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let wrong_ca = dir.path().join("other-ca.pem");
    std::fs::write(&wrong_ca, stranger.cert.pem()).unwrap();
    let url = format!("mqtts://127.0.0.1:{}", broker.port());
    let tls = |name: &str, ca: &std::path::Path| {
        let mut c = FederationConfig::new(&url)
            .unwrap()
            .export(["devices/"])
            .backlog_path(dir.path().join(format!("{name}.sqlite")));
        c.ca_file = Some(ca.to_owned());
        c
    };
    let a = start("tls-a", tls("tls-a", &ca)).await;
    let b = start("tls-b", tls("tls-b", &ca)).await;
    let fooled = start("tls-c", tls("tls-c", &wrong_ca)).await;
    let (tx, _rx) = mpsc::channel();
    b.spawn("listener", Listener { tx }).await.unwrap();
    wait_for_state(&a, "tls-b", "online").await;
    let reply: String = a
        .call("listener", "whoami", ("over TLS",))
        .on_platform("tls-b")
        .returning()
        .await
        .unwrap();
    assert_eq!(reply, "tls-a.platform says over TLS");
    // By now the third platform has tried (and failed) as long as the others took.
    let status = fooled.call("platform.federation", "status", ()).await.unwrap();
    assert_eq!(status["connected"], Value::from(false), "{status:?}");
    let list = a.call("platform.federation", "list_platforms", ()).await.unwrap();
    assert!(!format!("{list:?}").contains("tls-c"), "{list:?}");
    for p in [a, b, fooled] {
        p.shutdown().await;
    }
}
