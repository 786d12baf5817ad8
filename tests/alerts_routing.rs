//! `platform.alerts` in a test platform (virtual clock, the config store running): agents
//! raise alerts with `send_alert` (VOLTTRON's shape), the rules come from the config store,
//! and notifications reach a real webhook receiver on loopback (tiny_http) and a bus topic.
//! Dedup, resolve, flapping, routing, silences and their expiry, acks and repeats,
//! heartbeat loss, refused rules.

use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value as Json, json};
use volttron::alerts::{AlertRules, AlertsService, IDENTITY, RulesError};
use volttron::prelude::*;
use volttron::testing::TestPlatform;

const DEADLINE: Duration = Duration::from_secs(20);

/// Raises and resolves alerts as VOLTTRON agents do (`health.send_alert`).
#[derive(Default)]
struct Raiser;

#[volttron::agent]
impl Raiser {
    #[rpc]
    fn raise(
        &mut self,
        ctx: &AgentContext,
        key: String,
        bad: bool,
        context: String,
    ) -> Result<usize, String> {
        let status = if bad {
            volttron::Status::Bad
        } else {
            volttron::Status::Good
        };
        ctx.send_alert(&key, status, Some(&context))
            .map_err(|e| e.to_string())
    }
}

/// A webhook receiver on loopback: every POSTed body, in order.
struct Webhook {
    url: String,
    bodies: mpsc::Receiver<Json>,
}

impl Webhook {
    fn start() -> Webhook {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", server.server_addr().to_ip().unwrap());
        let (tx, bodies) = mpsc::channel();
        std::thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let ok = request.method() == &tiny_http::Method::Post
                    && request.headers().iter().any(|h| {
                        h.field.equiv("Content-Type") && h.value.as_str().starts_with("application/json")
                    });
                let _ = request.respond(tiny_http::Response::empty(if ok { 200 } else { 400 }));
                if ok
                    && tx
                        .send(serde_json::from_str(&body).unwrap_or(Json::Null))
                        .is_err()
                {
                    return;
                }
            }
        });
        Webhook { url, bodies }
    }

    fn next(&self) -> Json {
        self.bodies
            .recv_timeout(DEADLINE)
            .expect("the webhook received nothing before the deadline")
    }

    /// Every body up to and including the notification of `id` (a marker sent last: the
    /// delivery thread sends in order, so nothing sent before it is still on the way).
    fn until(&self, id: &str) -> Vec<Json> {
        let mut got = Vec::new();
        loop {
            let body = self.next();
            let done = body["id"] == id;
            got.push(body);
            if done {
                return got;
            }
        }
    }
}

async fn platform(heartbeat: Option<Duration>) -> TestPlatform {
    let mut builder = TestPlatform::builder()
        .services(true)
        .service(AlertsService::new());
    if let Some(period) = heartbeat {
        builder = builder.heartbeat(period);
    }
    let tp = builder.start().await;
    for _ in 0..1000 {
        if tp.peers().iter().any(|p| p.as_str() == IDENTITY) {
            break;
        }
        tp.settle().await;
        tokio::task::yield_now().await;
    }
    assert!(
        tp.peers().iter().any(|p| p.as_str() == IDENTITY),
        "{IDENTITY} did not start"
    );
    tp.spawn("hvac.1", Raiser).await.unwrap();
    tp.spawn("meter.1", Raiser).await.unwrap();
    tp
}

/// Stores `rules` as `platform.alerts`'s `config` and checks they are in force.
async fn set_rules(tp: &TestPlatform, rules: Json) -> Json {
    tp.call(
        "config.store",
        "set_config",
        (IDENTITY, "config", rules.to_string(), "json", true),
    )
    .await
    .unwrap();
    tp.settle().await;
    list(tp).await
}

async fn list(tp: &TestPlatform) -> Json {
    Json::from(tp.call(IDENTITY, "list", ()).await.unwrap())
}

async fn raise(tp: &TestPlatform, agent: &str, key: &str, bad: bool) {
    tp.call(
        agent,
        "raise",
        (key, bad, format!("{key} is {}", if bad { "bad" } else { "good" })),
    )
    .await
    .unwrap();
    tp.settle().await;
}

fn statuses(captured: &volttron::testing::Capture, id: &str) -> Vec<String> {
    captured
        .take()
        .iter()
        .map(|p| Json::from(p.message.clone()))
        .filter(|n| n["id"] == id)
        .map(|n| n["status"].as_str().unwrap().to_owned())
        .collect()
}

fn bus_rules() -> Json {
    json!({
        "sinks": {"bus": {"type": "topic", "topic": "ops/alerts"}},
        "routes": [{"sinks": ["bus"]}],
        "repeat": "1h",
    })
}

#[tokio::test(flavor = "current_thread")]
async fn repeats_are_deduplicated_and_a_good_status_resolves() {
    let tp = platform(None).await;
    set_rules(&tp, bus_rules()).await;
    let out = tp.capture("ops/alerts");
    for _ in 0..5 {
        raise(&tp, "hvac.1", "low_pressure", true).await;
    }
    assert_eq!(
        statuses(&out, "hvac.1/low_pressure"),
        ["firing"],
        "five reports, one alert"
    );
    let listed = list(&tp).await;
    let alert = &listed["alerts"][0];
    assert_eq!(alert["id"], "hvac.1/low_pressure");
    assert_eq!(alert["count"], 5);
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["context"], "low_pressure is bad");
    raise(&tp, "hvac.1", "low_pressure", false).await;
    raise(&tp, "hvac.1", "low_pressure", false).await;
    assert_eq!(
        statuses(&out, "hvac.1/low_pressure"),
        ["resolved"],
        "resolved once"
    );
    assert_eq!(list(&tp).await["alerts"][0]["status"], "resolved");
    // The same key from another origin is another alert.
    raise(&tp, "meter.1", "low_pressure", true).await;
    assert_eq!(statuses(&out, "meter.1/low_pressure"), ["firing"]);
    tp.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_flapping_agent_gives_one_flapping_notification_not_hundreds() {
    let tp = platform(None).await;
    let hook = Webhook::start();
    set_rules(
        &tp,
        json!({
            "sinks": {"hook": {"type": "webhook", "url": hook.url}},
            "routes": [{"sinks": ["hook"]}],
            "flapping": {"changes": 4, "window": "10m"},
        }),
    )
    .await;
    for i in 0..200 {
        raise(&tp, "hvac.1", "valve", i % 2 == 0).await;
    }
    raise(&tp, "meter.1", "marker", true).await;
    let got: Vec<String> = hook
        .until("meter.1/marker")
        .iter()
        .filter(|n| n["id"] == "hvac.1/valve")
        .map(|n| n["status"].as_str().unwrap().to_owned())
        .collect();
    // The first report and four changes within the window are notified; the fifth change
    // makes it flapping, notified once; the other 194 reports are counted, not notified.
    assert_eq!(
        got,
        ["firing", "resolved", "firing", "resolved", "firing", "flapping"]
    );
    let listed = list(&tp).await;
    let valve = listed["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "hvac.1/valve")
        .unwrap();
    assert_eq!(valve["status"], "flapping");
    assert_eq!(valve["count"], 200);
    // Still for a whole window: the condition it settled on (resolved: the last report
    // was GOOD), once.
    tp.advance(Duration::from_secs(601)).await;
    raise(&tp, "meter.1", "marker2", true).await;
    let after: Vec<Json> = hook.until("meter.1/marker2");
    let settled: Vec<&Json> = after.iter().filter(|n| n["id"] == "hvac.1/valve").collect();
    assert_eq!(settled.len(), 1, "{after:?}");
    assert_eq!(settled[0]["status"], "resolved");
    assert_eq!(settled[0]["instance"], "test");
    tp.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn routes_match_severity_identity_and_topic() {
    let tp = platform(Some(Duration::from_secs(10))).await;
    let hook = Webhook::start();
    let listed = set_rules(
        &tp,
        json!({
            "sinks": {
                "hook": {"type": "webhook", "url": hook.url, "headers": {"X-Token": "t"}},
                "bus": {"type": "topic", "topic": "ops/alerts"},
            },
            "routes": [
                {"severity": "critical", "identity": "hvac.*", "sinks": ["hook"]},
                {"topic": "heartbeat/*", "sinks": ["bus"]},
                {"key": "info_*", "sinks": ["bus"]},
            ],
        }),
    )
    .await;
    assert_eq!(listed["rules"]["routes"], 3);
    let bus = tp.capture("ops/alerts");
    // hvac.1's critical alert: the webhook, not the bus.
    raise(&tp, "hvac.1", "low_pressure", true).await;
    // meter.1's critical alert: no route (the identity glob is hvac.*).
    raise(&tp, "meter.1", "low_pressure", true).await;
    // meter.1's key info_*: the bus.
    raise(&tp, "meter.1", "info_door", true).await;
    raise(&tp, "hvac.1", "marker", true).await;
    let hooked: Vec<Json> = hook.until("hvac.1/marker");
    let ids: Vec<&str> = hooked.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["hvac.1/low_pressure", "hvac.1/marker"]);
    assert_eq!(hooked[0]["severity"], "critical");
    assert_eq!(hooked[0]["topic"], "alerts/Raiser/hvac_1");
    let on_bus: Vec<String> = bus
        .take()
        .iter()
        .map(|p| Json::from(p.message.clone())["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(on_bus, ["meter.1/info_door"]);
    // A lost heartbeat's topic is heartbeat/<identity>: the bus route.
    tp.advance(Duration::from_secs(10)).await;
    tp.call("meter.1", "heartbeat.stop", ()).await.unwrap();
    tp.advance(Duration::from_secs(45)).await;
    assert_eq!(statuses(&bus, "meter.1/heartbeat"), ["firing"]);
    tp.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_lost_heartbeat_fires_and_its_return_resolves() {
    let tp = platform(Some(Duration::from_secs(10))).await;
    set_rules(&tp, bus_rules()).await;
    let out = tp.capture("ops/alerts");
    tp.advance(Duration::from_secs(25)).await;
    assert!(
        statuses(&out, "meter.1/heartbeat").is_empty(),
        "beating: no alert"
    );
    tp.call("meter.1", "heartbeat.stop", ()).await.unwrap();
    // Three periods (30 s) late is lost; the check runs every 5 s.
    tp.advance(Duration::from_secs(25)).await;
    assert!(
        statuses(&out, "meter.1/heartbeat").is_empty(),
        "not yet three periods late"
    );
    tp.advance(Duration::from_secs(15)).await;
    let fired: Vec<Json> = out
        .take()
        .iter()
        .map(|p| Json::from(p.message.clone()))
        .filter(|n| n["id"] == "meter.1/heartbeat")
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["status"], "firing");
    assert_eq!(fired[0]["severity"], "critical");
    assert!(
        fired[0]["context"].as_str().unwrap().contains("no heartbeat"),
        "{fired:?}"
    );
    // Other agents kept beating: no alert for them.
    assert!(list(&tp).await["alerts"].as_array().unwrap().len() == 1);
    tp.call("meter.1", "heartbeat.start", ()).await.unwrap();
    // Its first heartbeat is a timer due now: the virtual clock fires it when it moves.
    tp.advance(Duration::from_secs(1)).await;
    assert_eq!(statuses(&out, "meter.1/heartbeat"), ["resolved"]);
    tp.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_silence_holds_notifications_until_it_ends() {
    let tp = platform(None).await;
    set_rules(&tp, bus_rules()).await;
    let out = tp.capture("ops/alerts");
    let silence = Json::from(tp.call(IDENTITY, "silence", ("hvac.*/*", 600.0)).await.unwrap());
    assert_eq!(silence["pattern"], "hvac.*/*");
    raise(&tp, "hvac.1", "low_pressure", true).await;
    raise(&tp, "meter.1", "low_pressure", true).await;
    assert!(statuses(&out, "hvac.1/low_pressure").is_empty(), "silenced");
    let listed = list(&tp).await;
    assert_eq!(listed["silences"].as_array().unwrap().len(), 1);
    assert_eq!(listed["alerts"][0]["id"], "hvac.1/low_pressure");
    assert_eq!(listed["alerts"][0]["silenced"], true);
    assert_eq!(listed["alerts"][1]["silenced"], false);
    tp.advance(Duration::from_secs(590)).await;
    assert!(statuses(&out, "hvac.1/low_pressure").is_empty(), "still silenced");
    // The silence ends: the alert, still firing, is notified.
    tp.advance(Duration::from_secs(15)).await;
    assert_eq!(statuses(&out, "hvac.1/low_pressure"), ["firing"]);
    assert!(list(&tp).await["silences"].as_array().unwrap().is_empty());
    let refused = tp.call(IDENTITY, "silence", ("*", 0.0)).await.unwrap_err();
    assert!(refused.to_string().contains("positive"), "{refused}");
    tp.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_acknowledged_alert_is_not_repeated() {
    let tp = platform(None).await;
    set_rules(&tp, bus_rules()).await;
    let out = tp.capture("ops/alerts");
    raise(&tp, "hvac.1", "low_pressure", true).await;
    raise(&tp, "meter.1", "low_pressure", true).await;
    assert_eq!(statuses(&out, "hvac.1/low_pressure"), ["firing"]);
    tp.advance(Duration::from_secs(3605)).await;
    let repeated: Vec<Json> = out.take().iter().map(|p| Json::from(p.message.clone())).collect();
    assert_eq!(repeated.len(), 2, "both repeated after an hour: {repeated:?}");
    assert!(repeated.iter().all(|n| n["repeat"] == true));
    tp.call(IDENTITY, "ack", ("hvac.1/low_pressure",)).await.unwrap();
    let listed = list(&tp).await;
    assert_eq!(listed["alerts"][0]["ack"]["by"], "platform");
    tp.advance(Duration::from_secs(3605)).await;
    let ids: Vec<String> = out
        .take()
        .iter()
        .map(|p| Json::from(p.message.clone())["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        ["meter.1/low_pressure"],
        "only the unacknowledged one repeats"
    );
    let unknown = tp.call(IDENTITY, "ack", ("nobody/nothing",)).await.unwrap_err();
    assert!(unknown.to_string().contains("no alert"), "{unknown}");
    // Resolving clears the ack; a resolved alert cannot be acknowledged.
    raise(&tp, "hvac.1", "low_pressure", false).await;
    assert_eq!(list(&tp).await["alerts"][0]["ack"], Json::Null);
    let resolved = tp
        .call(IDENTITY, "ack", ("hvac.1/low_pressure",))
        .await
        .unwrap_err();
    assert!(resolved.to_string().contains("resolved"), "{resolved}");
    tp.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn bad_rules_are_refused_with_a_typed_error_and_the_old_ones_kept() {
    let bad = json!({"sinks": {}, "routes": [{"severity": "critical", "sinks": ["pager"]}]});
    let err = AlertRules::from_value(&Value::from(bad.clone())).unwrap_err();
    assert!(
        matches!(&err, RulesError::UnknownSink { route: 0, sink, .. } if sink == "pager"),
        "{err:?}"
    );
    let tp = platform(None).await;
    set_rules(&tp, bus_rules()).await;
    let out = tp.capture("ops/alerts");
    let listed = set_rules(&tp, bad).await;
    assert_eq!(listed["rules"]["error"], err.to_string());
    // The rules in force are the previous ones: still to the bus.
    raise(&tp, "hvac.1", "low_pressure", true).await;
    assert_eq!(statuses(&out, "hvac.1/low_pressure"), ["firing"]);
    let listed = set_rules(&tp, json!({"flapping": {"window": "a while"}})).await;
    assert!(
        listed["rules"]["error"]
            .as_str()
            .unwrap()
            .contains("flapping.window"),
        "{listed}"
    );
    let listed = set_rules(&tp, bus_rules()).await;
    assert_eq!(listed["rules"]["error"], Json::Null);
    tp.shutdown().await;
}
