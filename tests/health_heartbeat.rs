//! Health and heartbeat: status with context, the heartbeat's topic, headers, period and
//! RPCs (VOLTTRON's `health.*` and `heartbeat.*`), alerts, and a heartbeat that goes ahead
//! of a flooded mailbox.

use std::time::Duration;

use volttron::prelude::*;
use volttron::testing::TestPlatform;
use volttron::{Health, Status};

/// Reports on demand and echoes floods.
struct Probe;

#[volttron::agent]
impl Probe {
    #[rpc]
    fn degrade(&mut self, ctx: &AgentContext, why: String) {
        ctx.set_health(Status::Bad, Some(&why));
    }

    #[rpc]
    fn alert(&mut self, ctx: &AgentContext) -> usize {
        ctx.send_alert("too_hot", Status::Bad, Some("zone 3 at 31 C"))
            .unwrap()
    }

    /// Keeps the agent busy for 5 virtual seconds.
    #[subscribe("slow/")]
    async fn slow(&mut self, ctx: &AgentContext, _msg: &Publication) {
        ctx.clock().sleep(Duration::from_secs(5)).await;
    }

    #[subscribe("flood/")]
    fn flood(&mut self, ctx: &AgentContext, msg: &Publication) {
        ctx.publish("echo/x", msg.message.clone()).unwrap();
    }
}

fn status_of(p: &Publication) -> String {
    p.message["status"].as_str().unwrap().to_owned()
}

#[volttron::test]
async fn heartbeat_is_off_by_default_and_controlled_by_rpc(tp: TestPlatform) {
    let beats = tp.capture("heartbeat/");
    tp.spawn("probe", Probe).await.unwrap();
    tp.advance(Duration::from_secs(600)).await;
    assert!(beats.is_empty());

    tp.call("probe", "heartbeat.start_with_period", (30,))
        .await
        .unwrap();
    tp.advance(Duration::from_secs(60)).await;
    // One at once, then every 30 s.
    let times: Vec<String> = beats
        .publications()
        .iter()
        .map(|p| p.header("TimeStamp").and_then(Value::as_str).unwrap().to_owned())
        .collect();
    assert_eq!(
        times,
        [
            "2024-01-01T00:10:00+00:00",
            "2024-01-01T00:10:30+00:00",
            "2024-01-01T00:11:00+00:00"
        ]
    );
    let first = &beats.publications()[0];
    assert_eq!(first.topic.as_str(), "heartbeat/probe");
    assert_eq!(status_of(first), "GOOD");
    assert_eq!(first.header("period"), Some(&Value::from(30.0)));

    tp.call("probe", "heartbeat.set_period", (10,)).await.unwrap();
    beats.take();
    tp.advance(Duration::from_secs(30)).await;
    assert_eq!(beats.take().len(), 4, "restarted at once, then every 10 s");

    // restart: one at once, then on the period again.
    tp.advance(Duration::from_secs(5)).await;
    beats.take();
    tp.call("probe", "heartbeat.restart", ()).await.unwrap();
    tp.advance(Duration::from_secs(10)).await;
    let times: Vec<String> = beats
        .take()
        .iter()
        .map(|p| p.header("TimeStamp").and_then(Value::as_str).unwrap().to_owned())
        .collect();
    assert_eq!(times, ["2024-01-01T00:11:35+00:00", "2024-01-01T00:11:45+00:00"]);

    tp.call("probe", "heartbeat.stop", ()).await.unwrap();
    tp.advance(Duration::from_secs(600)).await;
    assert!(beats.is_empty());
    let e = tp.call("probe", "heartbeat.set_period", (0,)).await.unwrap_err();
    assert!(matches!(e, RpcError::InvalidParams { .. }), "{e}");
    tp.shutdown().await;
}

#[volttron::test]
async fn a_health_change_is_stamped_and_sent_at_once() {
    let tp = TestPlatform::builder()
        .heartbeat(Duration::from_secs(60))
        .start()
        .await;
    let beats = tp.capture("heartbeat/probe");
    tp.spawn("probe", Probe).await.unwrap();
    tp.advance(Duration::from_secs(5)).await;
    assert_eq!(beats.len(), 1, "autostarted: one at once");

    tp.call("probe", "degrade", ("sensor offline",)).await.unwrap();
    let last = beats.last().unwrap();
    assert_eq!(beats.len(), 2, "the change went out at once");
    assert_eq!(status_of(&last), "BAD");
    assert_eq!(last.message["context"], Value::from("sensor offline"));

    let health: Health = tp.agent_health("probe").await.unwrap();
    assert_eq!(health.status, Status::Bad);
    assert_eq!(health.last_updated.to_rfc3339(), "2024-01-01T00:00:05+00:00");
    let via_rpc = tp.call("probe", "health.get_status", ()).await.unwrap();
    assert_eq!(via_rpc["status"], Value::from("BAD"));

    // Setting the same status again is not a change.
    tp.call("probe", "health.set_status", ("BAD", "sensor offline"))
        .await
        .unwrap();
    assert_eq!(beats.len(), 2);
    tp.call("probe", "health.set_status", ("GOOD",)).await.unwrap();
    assert_eq!(beats.len(), 3);
    let e = tp
        .call("probe", "health.set_status", ("FINE",))
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::InvalidParams { .. }), "{e}");
    tp.shutdown().await;
}

#[volttron::test]
async fn alerts_name_the_agent_and_carry_the_key(tp: TestPlatform) {
    let alerts = tp.capture("alerts/");
    tp.spawn("hq.probe", Probe).await.unwrap();
    assert_eq!(tp.call("hq.probe", "alert", ()).await.unwrap(), Value::from(1));
    let a = alerts.last().unwrap();
    assert_eq!(a.topic.as_str(), "alerts/Probe/hq_probe");
    assert_eq!(a.header("alert_key"), Some(&Value::from("too_hot")));
    assert_eq!(a.message["status"], Value::from("BAD"));
    assert_eq!(a.message["context"], Value::from("zone 3 at 31 C"));
    let reached = tp
        .call(
            "hq.probe",
            "health.send_alert",
            (
                "manual",
                serde_json::json!({"status": "UNKNOWN", "context": "check"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(reached, Value::from(1));
    assert_eq!(alerts.last().unwrap().message["status"], Value::from("UNKNOWN"));
    tp.shutdown().await;
}

#[volttron::test]
async fn the_heartbeat_goes_ahead_of_a_flooded_mailbox() {
    let tp = TestPlatform::builder()
        .heartbeat(Duration::from_secs(3))
        .start()
        .await;
    let all = tp.capture("");
    tp.spawn("probe", Probe).await.unwrap();
    tp.advance(Duration::ZERO).await;
    // Busy until 5 s; a thousand readings queue up behind, and the heartbeat falls due
    // at 3 s...
    tp.publish("slow/x", 0).unwrap();
    tp.settle().await;
    for n in 0..1000 {
        tp.publish("flood/x", n).unwrap();
    }
    all.take();
    tp.advance(Duration::from_secs(5)).await;
    let topics: Vec<String> = all
        .topics()
        .into_iter()
        .filter(|t| t.starts_with("heartbeat/") || t.starts_with("echo/"))
        .collect();
    // ...and it goes out as soon as the busy handler is done, ahead of the readings.
    assert_eq!(topics.len(), 1001);
    assert_eq!(topics[0], "heartbeat/probe", "{:?}", &topics[..3]);
    tp.shutdown().await;
}

#[volttron::test]
async fn the_platform_health_service_follows_peers_and_heartbeats() {
    let tp = TestPlatform::builder()
        .services(true)
        .heartbeat(Duration::from_secs(10))
        .start()
        .await;
    tp.spawn("probe", Probe).await.unwrap();
    tp.spawn("quiet", Probe).await.unwrap();
    tp.advance(Duration::from_secs(1)).await;
    tp.call("quiet", "heartbeat.stop", ()).await.unwrap();
    tp.call("probe", "degrade", ("valve stuck",)).await.unwrap();
    tp.advance(Duration::from_secs(30)).await;

    let health = tp.platform_health().await.unwrap();
    let probe = &health["probe"];
    assert_eq!(probe["connected"], Value::Bool(true));
    assert_eq!(probe["status"], Value::from("BAD"));
    assert_eq!(probe["context"], Value::from("valve stuck"));
    assert_eq!(probe["last_heartbeat"], Value::from("2024-01-01T00:00:30+00:00"));
    assert_eq!(probe["missed_heartbeats"], Value::from(0u64));
    // `quiet` stopped its heartbeat at 1 s: three periods have passed since its last one.
    let quiet = &health["quiet"];
    assert_eq!(quiet["last_heartbeat"], Value::from("2024-01-01T00:00:00+00:00"));
    assert_eq!(quiet["missed_heartbeats"], Value::from(3u64));

    tp.stop_agent("quiet").await;
    tp.settle().await;
    let health = tp.platform_health().await.unwrap();
    assert_eq!(health["quiet"]["connected"], Value::Bool(false));
    tp.shutdown().await;
}

/// Reacts to its own health changes.
struct Watchful {
    seen: std::sync::Arc<parking_lot::Mutex<Vec<String>>>,
}

#[volttron::agent]
impl Watchful {
    #[on_health]
    fn changed(&mut self, ctx: &AgentContext, health: &Health) {
        self.seen
            .lock()
            .push(format!("{} {:?}", health.status, health.context));
        if health.status == Status::Bad {
            ctx.send_alert("self_check", Status::Bad, health.context.as_deref())
                .unwrap();
        }
    }

    #[rpc]
    fn set(&mut self, ctx: &AgentContext, status: Status, context: Option<String>) {
        ctx.set_health(status, context.as_deref());
    }
}

#[volttron::test]
async fn a_health_change_calls_on_health(tp: TestPlatform) {
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let alerts = tp.capture("alerts/");
    tp.spawn("watchful", Watchful { seen: seen.clone() })
        .await
        .unwrap();
    tp.call("watchful", "set", ("BAD", "fan stuck")).await.unwrap();
    tp.call("watchful", "set", ("BAD", "fan stuck")).await.unwrap(); // no change
    tp.call("watchful", "health.set_status", ("GOOD",)).await.unwrap();
    tp.settle().await;
    assert_eq!(*seen.lock(), ["BAD Some(\"fan stuck\")", "GOOD None"]);
    assert_eq!(alerts.len(), 1);
    tp.shutdown().await;
}
