//! Pub/sub semantics: VOLTTRON prefix matching, per-subscription callbacks, counts, buses,
//! patterns, run-time (un)subscription, headers and sender.

use std::sync::Arc;

use parking_lot::Mutex;
use volttron::prelude::*;
use volttron::testing::TestPlatform;

type Log = Arc<Mutex<Vec<String>>>;

/// Records which handler saw which topic.
#[derive(Default)]
struct Recorder {
    log: Log,
}

#[volttron::agent]
impl Recorder {
    #[subscribe("devices/")]
    fn devices(&mut self, msg: &Publication) {
        self.log.lock().push(format!("devices:{}", msg.topic));
    }

    #[subscribe("devices/campus/")]
    fn campus(&mut self, msg: &Publication) {
        self.log.lock().push(format!("campus:{}", msg.topic));
    }

    #[subscribe("devices/campus/b1/")]
    fn building(&mut self, msg: &Publication) {
        self.log.lock().push(format!("building:{}", msg.topic));
    }

    #[subscribe("alarms", bus = "ops")]
    fn ops(&mut self, msg: &Publication) {
        self.log.lock().push(format!("ops:{}:{}", msg.bus, msg.topic));
    }

    #[subscribe("devices/+/+/temp")]
    fn pattern(&mut self, msg: &Publication) {
        self.log.lock().push(format!("pattern:{}", msg.topic));
    }

    #[rpc]
    fn drop_campus(&mut self, ctx: &AgentContext) -> usize {
        ctx.unsubscribe("devices/campus/")
    }

    #[rpc]
    fn add_runtime(&mut self, ctx: &AgentContext, prefix: String) -> Result<(), String> {
        ctx.subscribe(&prefix, |me: &mut Recorder, _ctx, msg| {
            me.log.lock().push(format!("runtime:{}", msg.topic));
        })
        .map_err(|e| e.to_string())
    }

    #[rpc]
    fn drop_all(&mut self, ctx: &AgentContext) -> usize {
        ctx.unsubscribe_all()
    }

    #[rpc]
    fn mine(&mut self, ctx: &AgentContext) -> Vec<(String, String)> {
        ctx.subscriptions()
    }
}

fn take(log: &Log) -> Vec<String> {
    let mut v = std::mem::take(&mut *log.lock());
    v.sort();
    v
}

#[volttron::test]
async fn overlapping_prefixes_run_each_matching_callback_once_and_count_peers_once(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("recorder", Recorder { log: log.clone() }).await.unwrap();

    // Three of its prefixes match: one peer reached, three callbacks.
    assert_eq!(tp.publish("devices/campus/b1/ahu1", 1).unwrap(), 1);
    tp.settle().await;
    assert_eq!(
        take(&log),
        [
            "building:devices/campus/b1/ahu1",
            "campus:devices/campus/b1/ahu1",
            "devices:devices/campus/b1/ahu1"
        ]
    );

    // A topic shorter than a prefix does not match it.
    assert_eq!(tp.publish("devices/campus", 1).unwrap(), 1);
    tp.settle().await;
    assert_eq!(take(&log), ["devices:devices/campus"]);

    // Nobody listens: fine, count 0.
    assert_eq!(tp.publish("weather/today", 1).unwrap(), 0);
    tp.shutdown().await;
}

#[volttron::test]
async fn buses_are_separate_namespaces(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("recorder", Recorder { log: log.clone() }).await.unwrap();
    let headers = Headers::new();
    assert_eq!(
        tp.publish_on("ops", "alarms/fire", headers.clone(), 1).unwrap(),
        1
    );
    // Same topic on the default bus reaches nobody; `devices/` on `ops` neither.
    assert_eq!(tp.publish("alarms/fire", 1).unwrap(), 0);
    assert_eq!(tp.publish_on("ops", "devices/x", headers.clone(), 1).unwrap(), 0);
    // Prefix matching is plain starts_with, as VOLTTRON's (not segment-aware).
    assert_eq!(tp.publish_on("ops", "alarmsX", headers, 1).unwrap(), 1);
    tp.settle().await;
    assert_eq!(take(&log), ["ops:ops:alarms/fire", "ops:ops:alarmsX"]);
    tp.shutdown().await;
}

#[volttron::test]
async fn mqtt_patterns_match_whole_levels(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("recorder", Recorder { log: log.clone() }).await.unwrap();
    tp.publish("devices/a/b/temp", 1).unwrap();
    tp.publish("devices/a/temp", 1).unwrap();
    tp.publish("devices/a/b/temp/x", 1).unwrap();
    tp.settle().await;
    let seen: Vec<String> = take(&log)
        .into_iter()
        .filter(|l| l.starts_with("pattern:"))
        .collect();
    assert_eq!(seen, ["pattern:devices/a/b/temp"]);
    tp.shutdown().await;
}

#[volttron::test]
async fn unsubscribe_by_prefix_and_all_and_runtime_subscribe(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("recorder", Recorder { log: log.clone() }).await.unwrap();

    let removed: usize = tp.call("recorder", "drop_campus", ()).returning().await.unwrap();
    assert_eq!(removed, 1);
    tp.publish("devices/campus/b2", 1).unwrap();
    tp.settle().await;
    assert_eq!(take(&log), ["devices:devices/campus/b2"]);

    tp.call("recorder", "add_runtime", ("weather/",)).await.unwrap();
    assert_eq!(tp.publish("weather/now", 1).unwrap(), 1);
    tp.settle().await;
    assert_eq!(take(&log), ["runtime:weather/now"]);

    let mine: Vec<(String, String)> = tp.call("recorder", "mine", ()).returning().await.unwrap();
    assert!(mine.contains(&("".into(), "weather/".into())));
    assert!(mine.contains(&("ops".into(), "alarms".into())));
    assert!(!mine.iter().any(|(_, p)| p == "devices/campus/"));

    let all: usize = tp.call("recorder", "drop_all", ()).returning().await.unwrap();
    assert_eq!(all, 5);
    assert_eq!(tp.publish("devices/campus/b1/x", 1).unwrap(), 0);
    assert!(tp.subscriptions("").is_empty());
    tp.shutdown().await;
}

#[volttron::test]
async fn invalid_topics_and_subscriptions_are_errors(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("recorder", Recorder { log: log.clone() }).await.unwrap();
    assert!(matches!(tp.publish("", 1), Err(PublishError::InvalidTopic(_))));
    assert!(tp.publish("a/+/b", 1).is_err());
    assert!(tp.publish("bad\u{0}topic", 1).is_err());
    let err = tp.call("recorder", "add_runtime", ("a/#/b",)).await.unwrap_err();
    assert!(err.to_string().contains('#'), "{err}");
    // The agent keeps working.
    assert_eq!(tp.publish("devices/ok", 1).unwrap(), 1);
    tp.shutdown().await;
}

/// Publishes from its start hook with headers.
struct Announcer;

#[volttron::agent]
impl Announcer {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) {
        let mut headers = Headers::new();
        headers.insert("TimeStamp".into(), Value::from(ctx.now().to_rfc3339()));
        ctx.publish_with("announce/up", headers, serde_json::json!({"ok": true}))
            .unwrap();
    }
}

#[volttron::test]
async fn publications_carry_sender_headers_and_message(tp: TestPlatform) {
    let cap = tp.capture("announce/");
    tp.spawn("announcer", Announcer).await.unwrap();
    let p = cap.last().expect("published on start");
    assert_eq!(p.sender, "announcer");
    assert_eq!(p.bus, "");
    assert_eq!(p.topic.as_str(), "announce/up");
    assert_eq!(
        p.header("TimeStamp").and_then(Value::as_str),
        Some("2024-01-01T00:00:00+00:00")
    );
    assert_eq!(p.message["ok"], Value::Bool(true));

    let from_platform = tp.capture("x/");
    tp.publish("x/y", 1).unwrap();
    assert_eq!(from_platform.last().unwrap().sender, "platform");
    tp.shutdown().await;
}

#[volttron::test]
async fn subscription_listing_and_peer_drop_purges(tp: TestPlatform) {
    let log = Log::default();
    let r = tp.spawn("recorder", Recorder { log }).await.unwrap();
    let subs = tp.subscriptions("devices/");
    let texts: Vec<&str> = subs.iter().map(|s| s.subscription.as_str()).collect();
    assert_eq!(
        texts,
        [
            "devices/",
            "devices/+/+/temp",
            "devices/campus/",
            "devices/campus/b1/"
        ]
    );
    assert!(subs.iter().all(|s| s.peer == "recorder"));
    r.stop().await;
    assert!(tp.subscriptions("").is_empty());
    assert_eq!(tp.publish("devices/x", 1).unwrap(), 0);
    tp.shutdown().await;
}

/// Publishes with `publish_confirmed` and answers with the count.
struct ConfirmingPublisher;

#[volttron::agent]
impl ConfirmingPublisher {
    #[rpc]
    async fn emit(&mut self, ctx: &AgentContext, topic: String) -> Result<u64, String> {
        ctx.publish_confirmed(topic.as_str(), 1)
            .await
            .map(|n| n as u64)
            .map_err(|e| e.to_string())
    }
}

#[volttron::test]
async fn a_confirmed_publish_in_process_answers_at_once_with_the_count(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("recorder", Recorder { log: log.clone() }).await.unwrap();
    tp.spawn("publisher", ConfirmingPublisher).await.unwrap();
    let reached: u64 = tp
        .call("publisher", "emit", ("devices/campus/b1/ahu1",))
        .returning()
        .await
        .unwrap();
    assert_eq!(reached, 1);
    let nobody: u64 = tp
        .call("publisher", "emit", ("weather",))
        .returning()
        .await
        .unwrap();
    assert_eq!(nobody, 0);
    let bad = tp.call("publisher", "emit", ("",)).await.unwrap_err();
    assert!(bad.to_string().contains("cannot publish"), "{bad}");
    tp.shutdown().await;
}

/// Subscribes at run time with `subscribe_confirmed`.
#[derive(Default)]
struct ConfirmingSubscriber {
    log: Log,
}

#[volttron::agent]
impl ConfirmingSubscriber {
    #[rpc]
    async fn listen(&mut self, ctx: &AgentContext, prefix: String) -> Result<(), String> {
        let log = self.log.clone();
        ctx.subscribe_confirmed::<ConfirmingSubscriber>(&prefix, move |_, _, msg| {
            log.lock().push(msg.topic.to_string());
        })
        .await
        .map_err(|e| e.to_string())
    }
}

#[volttron::test]
async fn a_confirmed_subscription_in_process_answers_at_once(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("subscriber", ConfirmingSubscriber { log: log.clone() })
        .await
        .unwrap();
    tp.call("subscriber", "listen", ("devices/",)).await.unwrap();
    assert_eq!(tp.publish("devices/ahu1", 1).unwrap(), 1);
    tp.settle().await;
    assert_eq!(take(&log), ["devices/ahu1"]);
    let bad = tp.call("subscriber", "listen", ("a/#/b",)).await.unwrap_err();
    assert!(bad.to_string().contains("cannot subscribe"), "{bad}");
    tp.shutdown().await;
}
