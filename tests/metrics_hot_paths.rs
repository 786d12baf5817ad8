//! The counters the platform keeps on its hot paths, and the sampled timings that reach a
//! `Metrics` attached as the platform's instrumentation: handler runs, panics (kept across
//! a restart), deliveries, RPC calls / errors by code / timeouts / round trips per callee,
//! publishes, authorization refusals, config-store writes and their fsync time, the bridge's
//! connections, frames and bytes, and an agent's own series through its context.
//!
//! Virtual clock for the in-process parts; the bridged part waits on replies with deadlines.

#![cfg(feature = "metrics")]

use std::time::Duration;

use volttron::bridge::BridgeAddress;
use volttron::metrics::Metrics;
use volttron::prelude::*;
use volttron::remote::Remote;
use volttron::supervision::ChildSpec;
use volttron::testing::TestPlatform;

#[derive(Default)]
struct Callee;

#[volttron::agent]
impl Callee {
    #[rpc]
    fn echo(&mut self, x: i64) -> i64 {
        x
    }

    #[rpc]
    fn fail(&mut self) -> Result<(), String> {
        Err("refused".into())
    }

    #[rpc]
    async fn stall(&mut self, ctx: &AgentContext) {
        ctx.clock().sleep(Duration::from_secs(600)).await;
    }
}

/// Counts readings in a series of its own, through its context.
#[derive(Default)]
struct Sink;

#[volttron::agent]
impl Sink {
    #[subscribe("readings/")]
    fn reading(&mut self, ctx: &AgentContext, _p: &Publication) {
        let m = ctx.metrics().expect("the platform has metrics attached");
        m.counter("readings", "Readings the sink took.").unwrap().inc();
    }
}

/// Panics when asked; restarted by its supervisor.
#[derive(Default)]
struct Fragile;

#[volttron::agent]
impl Fragile {
    #[rpc]
    fn boom(&mut self) {
        panic!("asked to");
    }
}

/// Publishes where `authz.json` lets only operators publish.
#[derive(Default)]
struct Pusher;

#[volttron::agent]
impl Pusher {
    #[rpc]
    fn push(&mut self, ctx: &AgentContext) -> bool {
        ctx.publish("devices/actuators/ahu1", 1).is_ok()
    }
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.trim().parse().ok())
}

fn get(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[volttron::test]
async fn handlers_calls_and_deliveries_are_counted_and_a_sample_is_timed() {
    let metrics = Metrics::new();
    let tp = TestPlatform::builder()
        .services(true)
        .instrumentation(metrics.clone())
        .start()
        .await;
    tp.spawn("callee", Callee).await.unwrap();
    tp.spawn("sink", Sink).await.unwrap();
    tp.start_child(ChildSpec::agent("fragile", Fragile::default))
        .await
        .unwrap();

    for i in 0..32 {
        assert_eq!(tp.call("callee", "echo", (i,)).await.unwrap(), Value::from(i));
    }
    let err = tp.call("callee", "fail", ()).await.unwrap_err();
    assert_eq!(err.code(), Some(-32000), "{err:?}");
    let err = tp.call("callee", "nope", ()).await.unwrap_err();
    assert_eq!(err.code(), Some(-32601), "{err:?}");
    let stalled = {
        let p = tp.platform().clone();
        tokio::spawn(async move {
            p.call("callee", "stall", ())
                .timeout(Duration::from_secs(5))
                .await
        })
    };
    tp.settle().await;
    tp.advance(Duration::from_secs(6)).await;
    let err = stalled.await.unwrap().unwrap_err();
    assert!(matches!(err, RpcError::Timeout { .. }), "{err:?}");

    for n in 0..20 {
        tp.publish("readings/t", n).unwrap();
    }
    tp.settle().await;

    let err = tp.call("fragile", "boom", ()).await.unwrap_err();
    assert!(matches!(err, RpcError::Remote { .. }), "{err:?}");
    // Restarted (no backoff on the first restart): its counters carry on.
    tp.advance(Duration::from_secs(5)).await;
    assert_eq!(tp.platform().restart_count("fragile"), 1);

    tp.platform()
        .call(
            "config.store",
            "set_config",
            ("callee", "setpoints", r#"{"zone1": 21.5}"#, "json"),
        )
        .await
        .unwrap();

    // Counted without listing them.
    assert_eq!(
        tp.platform().subscription_count(),
        tp.platform().subscriptions("").len()
    );
    assert!(tp.platform().subscription_count() >= 1);

    let text = metrics.encode(tp.platform()).await;
    // Every RPC run counted (echo x32, fail, stall), one in 16 timed per callee and kind.
    assert_eq!(
        get(
            &text,
            r#"volttron_agent_handler_runs_total{identity="callee",kind="rpc"}"#
        ),
        34.0
    );
    assert_eq!(
        get(
            &text,
            r#"volttron_agent_handler_seconds_count{identity="callee",kind="rpc"}"#
        ),
        3.0,
        "runs 0, 16 and 32 of 34 are timed"
    );
    // Calls: the 32 echoes, fail, nope, stall, and the store's notification of the change.
    assert_eq!(get(&text, r#"volttron_rpc_calls_total{callee="callee"}"#), 36.0);
    assert_eq!(
        get(&text, r#"volttron_rpc_round_trip_seconds_count{callee="callee"}"#),
        3.0
    );
    assert_eq!(
        get(
            &text,
            r#"volttron_rpc_errors_total{callee="callee",code="-32000"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &text,
            r#"volttron_rpc_errors_total{callee="callee",code="-32601"}"#
        ),
        1.0
    );
    assert_eq!(get(&text, r#"volttron_rpc_timeouts_total{callee="callee"}"#), 1.0);
    // Deliveries and the agent's own counter.
    assert_eq!(
        get(&text, r#"volttron_agent_deliveries_total{identity="sink"}"#),
        20.0
    );
    assert_eq!(
        get(
            &text,
            r#"volttron_agent_handler_runs_total{identity="sink",kind="publication"}"#
        ),
        20.0
    );
    assert_eq!(
        get(&text, r#"volttron_app_readings_total{identity="sink"}"#),
        20.0
    );
    assert!(get(&text, "volttron_pubsub_publishes_total") >= 20.0);
    // The panic survived the restart.
    assert_eq!(
        get(
            &text,
            r#"volttron_agent_handler_panics_total{identity="fragile"}"#
        ),
        1.0
    );
    assert_eq!(
        get(&text, r#"volttron_agent_handler_panics_total{identity="callee"}"#),
        0.0
    );
    // The config-store write and its fsync time.
    assert_eq!(get(&text, "volttron_config_store_writes_total"), 1.0);
    assert_eq!(get(&text, "volttron_config_store_fsync_seconds_count"), 1.0);
    assert!(get(&text, "volttron_config_store_fsync_seconds_sum") > 0.0);
}

#[volttron::test]
async fn without_an_instrumentation_runs_are_counted_and_nothing_is_timed() {
    let metrics = Metrics::new();
    let tp = TestPlatform::start().await;
    tp.spawn("callee", Callee).await.unwrap();
    for i in 0..20 {
        tp.call("callee", "echo", (i,)).await.unwrap();
    }
    let text = metrics.encode(tp.platform()).await;
    assert_eq!(
        get(
            &text,
            r#"volttron_agent_handler_runs_total{identity="callee",kind="rpc"}"#
        ),
        20.0
    );
    assert_eq!(
        value(
            &text,
            r#"volttron_agent_handler_seconds_count{identity="callee",kind="rpc"}"#
        ),
        None,
        "{text}"
    );
    assert_eq!(
        value(&text, r#"volttron_rpc_round_trip_seconds_count{callee="callee"}"#),
        None
    );
}

const AUTHZ: &str = r#"{
  "roles": { "operator": ["actuate"] },
  "protected_topics": { "publish": { "devices/actuators": ["actuate"] } }
}"#;

#[volttron::test]
async fn authorization_refusals_are_counted() {
    let metrics = Metrics::new();
    let tp = TestPlatform::builder()
        .authz(AUTHZ)
        .instrumentation(metrics.clone())
        .start()
        .await;
    tp.spawn("pusher", Pusher).await.unwrap();
    assert_eq!(tp.call("pusher", "push", ()).await.unwrap(), Value::from(false));
    assert_eq!(tp.call("pusher", "push", ()).await.unwrap(), Value::from(false));
    let text = metrics.encode(tp.platform()).await;
    assert_eq!(get(&text, "volttron_authz_refusals_total"), 2.0);
}

#[volttron::test]
async fn the_bridge_counts_connections_frames_and_bytes() {
    let home = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let p = Platform::builder()
        .home(home.path())
        .agent_threads(1)
        .instrumentation(metrics.clone())
        .start()
        .await
        .unwrap();
    let socket: BridgeAddress = p.addresses().into_iter().next().expect("the default socket");
    let remote = Remote::new(socket)
        .identity("remote.callee")
        .start(Callee)
        .await
        .expect("the remote agent attaches");
    for i in 0..5 {
        let v: i64 = tokio::time::timeout(
            Duration::from_secs(10),
            p.call("remote.callee", "echo", (i,)).returning(),
        )
        .await
        .expect("a reply within 10 s")
        .unwrap();
        assert_eq!(v, i);
    }
    let before = p.counters();
    assert_eq!(before.bridge_connections, 1);
    assert_eq!(before.bridge_handshake_failures, 0);
    // A connection that never says hello fails its handshake when the platform refuses it.
    let path = p
        .addresses()
        .into_iter()
        .find_map(|a| match a {
            BridgeAddress::Unix(path) => Some(path),
            _ => None,
        })
        .expect("a Unix socket");
    {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        s.write_all(b"not a frame at all, not even close to one").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest); // the platform answers an error frame and closes
    }
    let text = metrics.encode(&p).await;
    assert_eq!(get(&text, "volttron_bridge_connections_total"), 2.0, "{text}");
    assert_eq!(get(&text, "volttron_bridge_handshake_failures_total"), 1.0);
    // Hello + 5 replies (at least) in; welcome + 5 requests (at least) out.
    assert!(
        get(&text, r#"volttron_bridge_frames_total{direction="in"}"#) >= 6.0,
        "{text}"
    );
    assert!(
        get(&text, r#"volttron_bridge_frames_total{direction="out"}"#) >= 6.0,
        "{text}"
    );
    assert!(get(&text, r#"volttron_bridge_bytes_total{direction="in"}"#) > 0.0);
    assert!(get(&text, r#"volttron_bridge_bytes_total{direction="out"}"#) > 0.0);
    assert_eq!(
        get(&text, r#"volttron_rpc_calls_total{callee="remote.callee"}"#),
        5.0
    );
    drop(remote);
    p.shutdown().await;
}

#[volttron::test]
async fn a_metrics_service_attaches_its_metrics_as_the_instrumentation() {
    let metrics = Metrics::new();
    let tp = TestPlatform::builder()
        .service(volttron::metrics::MetricsService::new(
            "127.0.0.1:0".parse().unwrap(),
            metrics.clone(),
        ))
        .start()
        .await;
    tp.spawn("callee", Callee).await.unwrap();
    tp.call("callee", "echo", (1,)).await.unwrap();
    let text = metrics.encode(tp.platform()).await;
    assert_eq!(
        get(
            &text,
            r#"volttron_agent_handler_seconds_count{identity="callee",kind="rpc"}"#
        ),
        1.0,
        "the first run is timed: {text}"
    );
}
