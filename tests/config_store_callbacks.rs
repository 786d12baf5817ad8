//! `#[on_config]` callbacks: NEW for every configuration at start ("config" first),
//! UPDATE/DELETE on changes, UPDATE for referrers, defaults, action and name filters,
//! writes from inside a callback, and no waiting on agents that are not running.

use std::sync::Arc;

use parking_lot::Mutex;
use volttron::prelude::*;
use volttron::testing::TestPlatform;

type Log = Arc<Mutex<Vec<String>>>;

struct Configured {
    log: Log,
}

#[volttron::agent]
impl Configured {
    #[on_setup]
    fn setup(&mut self, ctx: &AgentContext) {
        ctx.config().set_default("limits", serde_json::json!({"max": 30}));
    }

    #[on_config("*")]
    fn any(&mut self, update: &ConfigUpdate) {
        self.log
            .lock()
            .push(format!("{:?} {} {}", update.action, update.name, update.contents));
    }

    #[on_config("points*", actions = ["DELETE"])]
    fn points_gone(&mut self, update: &ConfigUpdate) {
        self.log.lock().push(format!("points handler: {}", update.name));
    }

    /// Derives a configuration from another, from inside a callback.
    #[on_config("source")]
    async fn derive(&mut self, ctx: &AgentContext, update: &ConfigUpdate) {
        if update.action != ConfigAction::Delete {
            let doubled = Value::from(update.contents["n"].as_i64().unwrap_or(0) * 2);
            let mut m = volttron::Map::new();
            m.insert("n".into(), doubled);
            ctx.config().set("derived", &Value::Map(m)).await.unwrap();
        }
    }
}

async fn set(tp: &TestPlatform, name: &str, raw: &str) {
    tp.call("config.store", "set_config", ("agent", name, raw, "json"))
        .await
        .unwrap();
    tp.settle().await;
}

fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock())
}

#[volttron::test]
async fn callbacks_follow_the_store() {
    let tp = TestPlatform::builder().services(true).start().await;
    // Stored before the agent runs: no one to tell, no waiting (VOLTTRON waits 30 s).
    set(&tp, "points", r#"["zat", "dat"]"#).await;
    set(&tp, "config", r#"{"interval": 5, "points": "config://points"}"#).await;
    let log = Log::default();
    tp.spawn("agent", Configured { log: log.clone() }).await.unwrap();
    tp.settle().await;
    // At start: every configuration NEW, "config" first; the default too.
    assert_eq!(
        take(&log),
        [
            r#"New config {"interval":5,"points":["zat","dat"]}"#,
            r#"New limits {"max":30}"#,
            r#"New points ["zat","dat"]"#,
        ]
    );

    // A change to a referenced configuration is an UPDATE for it and for its referrer.
    set(&tp, "points", r#"["zat"]"#).await;
    assert_eq!(
        take(&log),
        [
            r#"Update points ["zat"]"#,
            r#"Update config {"interval":5,"points":["zat"]}"#
        ]
    );

    // A new one is NEW; a stored value overrides the default, deleting it brings the
    // default back as an UPDATE.
    set(&tp, "limits", r#"{"max": 26}"#).await;
    assert_eq!(take(&log), [r#"Update limits {"max":26}"#]);
    tp.call("config.store", "delete_config", ("agent", "limits"))
        .await
        .unwrap();
    tp.settle().await;
    assert_eq!(take(&log), [r#"Update limits {"max":30}"#]);

    // DELETE reaches the handlers that asked for it.
    tp.call("config.store", "delete_config", ("agent", "points"))
        .await
        .unwrap();
    tp.settle().await;
    let deleted = take(&log);
    assert!(deleted.contains(&"Delete points null".to_owned()), "{deleted:?}");
    assert!(
        deleted.contains(&"points handler: points".to_owned()),
        "{deleted:?}"
    );
    // The referrer now holds the plain string.
    assert!(deleted.contains(&r#"Update config {"interval":5,"points":"config://points"}"#.to_owned()));
    tp.shutdown().await;
}

#[volttron::test]
async fn a_callback_may_write_the_store() {
    let tp = TestPlatform::builder().services(true).start().await;
    let log = Log::default();
    tp.spawn("agent", Configured { log: log.clone() }).await.unwrap();
    tp.settle().await;
    take(&log);
    set(&tp, "source", r#"{"n": 21}"#).await;
    let derived = tp
        .call("config.store", "get_config", ("agent", "derived", false))
        .await
        .unwrap();
    assert_eq!(derived["n"], Value::from(42));
    // Its own write did not call its own handlers (no loop).
    assert_eq!(take(&log), [r#"New source {"n":21}"#]);
    tp.shutdown().await;
}
