//! The actuator with the platform driver (fake devices) on the virtual clock: schedules,
//! conflicts, preemption, writes only by the slot's holder, announcements, heart beats,
//! revert at the slot's end, the pub/sub interface, and schedules surviving a restart.
#![cfg(all(feature = "driver", feature = "actuator"))]

use std::time::Duration;

use volttron::agents::actuator::{self, Actuator};
use volttron::agents::driver::{self, PlatformDriver};
use volttron::prelude::*;
use volttron::testing::TestPlatform;

/// An agent that calls the actuator on request, so calls carry its identity.
struct Operator;

#[volttron::agent]
impl Operator {
    #[rpc]
    async fn ask(&mut self, ctx: &AgentContext, method: String, args: Vec<Value>) -> Result<Value, RpcError> {
        let args = Args {
            positional: args,
            ..Args::new()
        };
        ctx.call(actuator::IDENTITY, &method, args).await
    }

    #[rpc]
    async fn ask_driver(
        &mut self,
        ctx: &AgentContext,
        method: String,
        args: Vec<Value>,
    ) -> Result<Value, RpcError> {
        let args = Args {
            positional: args,
            ..Args::new()
        };
        ctx.call(driver::IDENTITY, &method, args).await
    }
}

const DEVICE: &str = "campus/hq/rtu1";

async fn site() -> TestPlatform {
    let tp = TestPlatform::builder().services(true).start().await;
    let store = |id: &'static str, name: &'static str, raw: &'static str, kind: &'static str| {
        tp.call("config.store", "set_config", (id, name, raw, kind))
    };
    store(
        driver::IDENTITY,
        "rtu.csv",
        "Volttron Point Name,Units,Writable,Starting Value,Type\nSetpoint,degF,TRUE,72,float\nHeartbeat,,TRUE,0,integer\nTemp,degF,FALSE,70,float\n",
        "csv",
    )
    .await
    .unwrap();
    store(
        driver::IDENTITY,
        "devices/campus/hq/rtu1",
        r#"{"driver_type": "fake", "registry_config": "config://rtu.csv", "interval": 60, "heart_beat_point": "Heartbeat"}"#,
        "json",
    )
    .await
    .unwrap();
    store(
        actuator::IDENTITY,
        "config",
        r#"{"schedule_publish_interval": 10, "heartbeat_interval": 20, "preempt_grace_time": 30}"#,
        "json",
    )
    .await
    .unwrap();
    tp.spawn(driver::IDENTITY, PlatformDriver::new()).await.unwrap();
    tp.spawn("ops.a", Operator).await.unwrap();
    tp.spawn("ops.b", Operator).await.unwrap();
    tp.spawn(actuator::IDENTITY, Actuator::new()).await.unwrap();
    tp.settle().await;
    tp
}

/// Settles until `done`, for work that waits on a blocking thread (the store's fsync),
/// which `settle` does not see; at most 10 s of wall time.
async fn eventually(tp: &TestPlatform, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "not within 10 s");
        tp.settle().await;
        tokio::task::yield_now().await;
    }
}

fn at(tp: &TestPlatform, secs: i64) -> String {
    (tp.now() + chrono::Duration::seconds(secs))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn requests(device: &str, start: String, end: String) -> Value {
    Value::List(vec![Value::List(vec![
        Value::from(device),
        Value::from(start),
        Value::from(end),
    ])])
}

async fn ask(tp: &TestPlatform, who: &str, method: &str, args: Vec<Value>) -> Result<Value, RpcError> {
    tp.call(who, "ask", (method, args)).await
}

async fn setpoint(tp: &TestPlatform) -> f64 {
    tp.call(driver::IDENTITY, "get_point", (DEVICE, "Setpoint"))
        .await
        .unwrap()
        .as_f64()
        .unwrap()
}

#[volttron::test]
async fn only_the_holder_of_the_slot_writes_and_the_device_reverts_when_it_ends() {
    let tp = site().await;
    let announce = tp.capture("devices/actuators/schedule/announce/");
    let values = tp.capture("devices/actuators/value/");
    let errors = tp.capture("devices/actuators/error/");
    let write = |who: &'static str, v: f64| {
        let tp = &tp;
        async move {
            ask(
                tp,
                who,
                "set_point",
                vec![
                    Value::from(who),
                    Value::from(format!("{DEVICE}/Setpoint")),
                    Value::from(v),
                ],
            )
            .await
        }
    };

    // Nobody holds the device: refused (allow_no_lock_write is false).
    let e = write("ops.a", 65.0).await.unwrap_err();
    assert!(
        e.to_string().contains("caller (ops.a) does not have this lock"),
        "{e}"
    );
    // While the actuator runs, the driver takes no writes from others.
    let e = tp
        .call(
            "ops.a",
            "ask_driver",
            (
                "set_point",
                vec![Value::from(DEVICE), Value::from("Setpoint"), Value::from(1.0)],
            ),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("write through it"), "{e}");

    // ops.a gets the next 60 s.
    let r = ask(
        &tp,
        "ops.a",
        "request_new_schedule",
        vec![
            Value::from("ops.a"),
            Value::from("task-a"),
            Value::from("LOW"),
            requests(DEVICE, at(&tp, 0), at(&tp, 60)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r["result"], Value::from("SUCCESS"), "{r}");
    tp.settle().await;
    // Announced at once, with the window left.
    let first = announce.last().expect("an announcement at the slot's start");
    assert_eq!(
        first.topic.as_str(),
        format!("devices/actuators/schedule/announce/{DEVICE}")
    );
    assert_eq!(first.header("requesterID"), Some(&Value::from("ops.a")));
    assert_eq!(first.header("taskID"), Some(&Value::from("task-a")));
    assert_eq!(first.header("window"), Some(&Value::Int(60)));

    // ops.b conflicts.
    let r = ask(
        &tp,
        "ops.b",
        "request_new_schedule",
        vec![
            Value::from("ops.b"),
            Value::from("task-b"),
            Value::from("HIGH"),
            requests(DEVICE, at(&tp, 30), at(&tp, 90)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r["result"], Value::from("FAILURE"));
    assert_eq!(r["info"], Value::from("CONFLICTS_WITH_EXISTING_SCHEDULES"));
    assert!(r["data"]["ops.a"]["task-a"].as_list().is_some(), "{r}");

    // The holder writes; the other is refused, and the refusal is published.
    assert_eq!(write("ops.a", 65.0).await.unwrap().as_f64(), Some(65.0));
    assert_eq!(setpoint(&tp).await, 65.0);
    assert_eq!(values.last().unwrap().message.as_f64(), Some(65.0));
    assert!(write("ops.b", 80.0).await.is_err());
    tp.settle().await;
    assert_eq!(errors.last().unwrap().message["type"], Value::from("LockError"));
    assert_eq!(setpoint(&tp).await, 65.0);

    // Announced every 10 s; the heartbeat point toggles every 20 s while held.
    announce.take();
    let beat0 = tp
        .call(driver::IDENTITY, "get_point", (DEVICE, "Heartbeat"))
        .await
        .unwrap();
    tp.advance(Duration::from_secs(20)).await;
    assert_eq!(announce.len(), 2, "{:?}", announce.topics());
    let beat1 = tp
        .call(driver::IDENTITY, "get_point", (DEVICE, "Heartbeat"))
        .await
        .unwrap();
    assert_ne!(beat0, beat1, "the heartbeat point toggled");

    // The slot ends: the device is reverted, and ops.a can no longer write.
    tp.advance(Duration::from_secs(41)).await;
    assert_eq!(
        setpoint(&tp).await,
        72.0,
        "reverted to its default at the slot's end"
    );
    assert!(write("ops.a", 66.0).await.is_err());
    announce.take();
    tp.advance(Duration::from_secs(30)).await;
    assert!(announce.is_empty(), "nothing announced without a slot");
    let book = tp.call(actuator::IDENTITY, "get_schedule", ()).await.unwrap();
    assert_eq!(book, Value::List(vec![]), "the ended task is gone");
    tp.shutdown().await;
}

#[volttron::test]
async fn high_preempts_low_preempt_after_the_grace_time_and_cancel_frees_the_device() {
    let tp = site().await;
    let results = tp.capture("devices/actuators/schedule/result");
    let r = ask(
        &tp,
        "ops.a",
        "request_new_schedule",
        vec![
            Value::from(""),
            Value::from("long"),
            Value::from("LOW_PREEMPT"),
            requests(DEVICE, at(&tp, 0), at(&tp, 3600)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r["result"], Value::from("SUCCESS"));
    tp.advance(Duration::from_secs(5)).await;
    let r = ask(
        &tp,
        "ops.b",
        "request_new_schedule",
        vec![
            Value::from(""),
            Value::from("urgent"),
            Value::from("HIGH"),
            requests(DEVICE, at(&tp, 0), at(&tp, 600)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r["result"], Value::from("SUCCESS"), "{r}");
    tp.settle().await;
    let preempted = results.last().unwrap();
    assert_eq!(preempted.message["result"], Value::from("PREEMPTED"));
    assert_eq!(preempted.header("taskID"), Some(&Value::from("long")));
    assert_eq!(preempted.message["data"]["agentID"], Value::from("ops.b"));
    // ops.a keeps the device for the 30 s grace time, then ops.b has it.
    let set = |who: &'static str, v: f64| {
        let tp = &tp;
        async move {
            ask(
                tp,
                who,
                "set_point",
                vec![
                    Value::from(who),
                    Value::from(DEVICE),
                    Value::from(v),
                    Value::from("Setpoint"),
                ],
            )
            .await
        }
    };
    assert!(set("ops.a", 60.0).await.is_ok());
    assert!(set("ops.b", 61.0).await.is_err());
    tp.advance(Duration::from_secs(31)).await;
    assert!(set("ops.a", 62.0).await.is_err());
    assert_eq!(set("ops.b", 63.0).await.unwrap().as_f64(), Some(63.0));
    // Cancel: not someone else's task; then ops.b's own, and the device is free.
    let r = ask(
        &tp,
        "ops.a",
        "request_cancel_schedule",
        vec![Value::from(""), Value::from("urgent")],
    )
    .await
    .unwrap();
    assert_eq!(r["info"], Value::from("AGENT_ID_TASK_ID_MISMATCH"));
    let r = ask(
        &tp,
        "ops.b",
        "request_cancel_schedule",
        vec![Value::from(""), Value::from("urgent")],
    )
    .await
    .unwrap();
    assert_eq!(r["result"], Value::from("SUCCESS"));
    tp.settle().await;
    assert_eq!(setpoint(&tp).await, 72.0, "reverted when the slot was released");
    assert!(set("ops.b", 64.0).await.is_err());
    tp.shutdown().await;
}

#[volttron::test]
async fn schedules_by_publication_and_across_a_restart() {
    let tp = site().await;
    let results = tp.capture("devices/actuators/schedule/result");
    let values = tp.capture("devices/actuators/value/");
    // ops.a asks by publication: VOLTTRON's headers, the requests as the message.
    struct Publisher;
    #[volttron::agent]
    impl Publisher {
        #[rpc]
        fn send(&mut self, ctx: &AgentContext, topic: String, headers: Headers, message: Value) -> usize {
            ctx.publish_with(topic.as_str(), headers, message).unwrap()
        }
    }
    tp.spawn("ops.pub", Publisher).await.unwrap();
    let headers = Headers::from([
        ("type".to_owned(), Value::from("NEW_SCHEDULE")),
        ("taskID".to_owned(), Value::from("by-pub")),
        ("priority".to_owned(), Value::from("LOW")),
    ]);
    let reached = tp
        .call(
            "ops.pub",
            "send",
            (
                "devices/actuators/schedule/request",
                headers,
                requests(DEVICE, at(&tp, 0), at(&tp, 600)),
            ),
        )
        .await
        .unwrap();
    assert_eq!(reached, Value::Int(1), "the actuator subscribes");
    // The actuator stores the book (a durable write on the store's own thread) before it
    // answers: wait for the answer itself.
    eventually(&tp, || !results.is_empty()).await;
    let r = results.last().unwrap();
    assert_eq!(r.message["result"], Value::from("SUCCESS"), "{}", r.message);
    assert_eq!(r.header("taskID"), Some(&Value::from("by-pub")));
    tp.call(
        "ops.pub",
        "send",
        (
            format!("devices/actuators/set/{DEVICE}/Setpoint"),
            Headers::new(),
            Value::from(68.5),
        ),
    )
    .await
    .unwrap();
    tp.settle().await;
    assert_eq!(values.last().unwrap().message.as_f64(), Some(68.5));
    assert_eq!(setpoint(&tp).await, 68.5);

    // The actuator restarts: the schedule is still there, still held by ops.pub.
    assert!(tp.stop_agent(actuator::IDENTITY).await);
    tp.spawn(actuator::IDENTITY, Actuator::new()).await.unwrap();
    tp.settle().await;
    let book = tp.call(actuator::IDENTITY, "get_schedule", ()).await.unwrap();
    assert_eq!(book[0]["task_id"], Value::from("by-pub"), "{book}");
    assert_eq!(book[0]["agent_id"], Value::from("ops.pub"));
    tp.call(
        "ops.pub",
        "send",
        (
            format!("devices/actuators/set/{DEVICE}/Setpoint"),
            Headers::new(),
            Value::from(69.5),
        ),
    )
    .await
    .unwrap();
    tp.settle().await;
    assert_eq!(setpoint(&tp).await, 69.5);
    // And it still ends on time.
    tp.advance(Duration::from_secs(601)).await;
    assert_eq!(setpoint(&tp).await, 72.0);
    tp.shutdown().await;
}
