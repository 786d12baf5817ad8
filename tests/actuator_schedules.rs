//! The actuator with the platform driver (fake devices) on the virtual clock: schedules,
//! conflicts, preemption, writes only by the slot's holder, announcements, heart beats,
//! revert at the slot's end, the pub/sub interface, and schedules surviving a restart.
#![cfg(all(feature = "driver", feature = "actuator"))]

use std::time::Duration;

use volttron::agents::actuator::{self, Actuator};
use volttron::agents::driver::{self, PlatformDriver};
use volttron::prelude::*;
use volttron::testing::TestPlatform;

mod common;
use common::building::{Operator, ask, at, requests};
use common::settle::eventually;

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
        r#"{"schedule_publish_interval": 10, "heartbeat_interval": 20, "preempt_grace_time": 30,
            "allow_no_lock_write": false, "revert_on_slot_end": true}"#,
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

/// Publishes on request, for the actuator's pub/sub interface.
struct Publisher;

#[volttron::agent]
impl Publisher {
    #[rpc]
    fn send(&mut self, ctx: &AgentContext, topic: String, headers: Headers, message: Value) -> usize {
        ctx.publish_with(topic.as_str(), headers, message).unwrap()
    }
}

async fn schedule(tp: &TestPlatform, who: &str, task: &str, secs: i64) {
    let r = ask(
        tp,
        who,
        "request_new_schedule",
        vec![
            Value::from(""),
            Value::from(task),
            Value::from("LOW"),
            requests(DEVICE, at(tp, 0), at(tp, secs)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r["result"], Value::from("SUCCESS"), "{r}");
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
    let writes = tp.capture("devices/actuators/write/");
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

    // The holder writes (the attempt and the result are published); the other is refused,
    // and as in VOLTTRON an RPC's refusal is the caller's error, not a publication.
    assert_eq!(write("ops.a", 65.0).await.unwrap().as_f64(), Some(65.0));
    assert_eq!(setpoint(&tp).await, 65.0);
    tp.settle().await;
    assert_eq!(values.last().unwrap().message.as_f64(), Some(65.0));
    let attempt = writes.last().expect("devices/actuators/write/..");
    assert_eq!(
        attempt.topic.as_str(),
        format!("devices/actuators/write/{DEVICE}/Setpoint")
    );
    assert_eq!(attempt.message.as_f64(), Some(65.0));
    let e = write("ops.b", 80.0).await.unwrap_err();
    assert!(
        e.to_string().contains("caller (ops.b) does not have this lock"),
        "{e}"
    );
    tp.settle().await;
    assert!(errors.is_empty(), "{:?}", errors.topics());
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
    // ops.pub asks by publication: VOLTTRON's headers, the requests as the message.
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
    eventually(&tp, "the schedule's result", async || {
        (!results.is_empty()).then_some(())
    })
    .await;
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

#[volttron::test]
async fn reverts_are_published_and_the_lock_settings_change_who_may_read_and_write() {
    let tp = site().await;
    tp.spawn("ops.pub", Publisher).await.unwrap();
    let reverted = tp.capture("devices/actuators/reverted/");
    let values = tp.capture("devices/actuators/value/");
    let errors = tp.capture("devices/actuators/error/");
    let point = format!("{DEVICE}/Setpoint");
    let call = |who: &'static str, method: &'static str, args: Vec<Value>| {
        let tp = &tp;
        async move { ask(tp, who, method, args).await }
    };
    let write = |who: &'static str, v: f64| {
        call(
            who,
            "set_point",
            vec![Value::from(""), Value::from(point.as_str()), Value::from(v)],
        )
    };
    let read = |who: &'static str| call(who, "get_point", vec![Value::from(point.as_str())]);
    let read_by_publication = |who: &'static str| {
        let tp = &tp;
        async move {
            assert_eq!(who, "ops.pub", "only the publisher publishes");
            tp.call(
                "ops.pub",
                "send",
                (
                    format!("devices/actuators/get/{DEVICE}/Setpoint"),
                    Headers::new(),
                    Value::Null,
                ),
            )
            .await
            .unwrap();
            tp.settle().await;
        }
    };

    // VOLTTRON's defaults: reads need no slot, by RPC or by publication.
    assert_eq!(read("ops.b").await.unwrap().as_f64(), Some(72.0));
    read_by_publication("ops.pub").await;
    let got = values.last().expect("the read's value is published");
    assert_eq!(
        got.topic.as_str(),
        format!("devices/actuators/value/{DEVICE}/Setpoint")
    );
    assert_eq!(got.message.as_f64(), Some(72.0));
    assert_eq!(got.header("requesterID"), Some(&Value::from("ops.pub")));

    // The holder reverts a point, then the device; each is published; others may not.
    schedule(&tp, "ops.a", "hold", 600).await;
    write("ops.a", 65.0).await.unwrap();
    let revert_point = |who: &'static str| {
        call(
            who,
            "revert_point",
            vec![Value::from(""), Value::from(DEVICE), Value::from("Setpoint")],
        )
    };
    let e = revert_point("ops.b").await.unwrap_err();
    assert!(e.to_string().contains("does not have this lock"), "{e}");
    assert_eq!(setpoint(&tp).await, 65.0);
    revert_point("ops.a").await.unwrap();
    tp.settle().await;
    assert_eq!(setpoint(&tp).await, 72.0);
    let r = reverted.take();
    assert_eq!(
        r.len(),
        1,
        "{:?}",
        r.iter().map(|p| p.topic.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(
        r[0].topic.as_str(),
        format!("devices/actuators/reverted/point/{DEVICE}/Setpoint")
    );
    assert_eq!(r[0].header("requesterID"), Some(&Value::from("ops.a")));
    write("ops.a", 66.0).await.unwrap();
    call(
        "ops.a",
        "revert_device",
        vec![Value::from(""), Value::from(DEVICE)],
    )
    .await
    .unwrap();
    tp.settle().await;
    assert_eq!(setpoint(&tp).await, 72.0);
    let r = reverted.take();
    assert_eq!(
        r.last().unwrap().topic.as_str(),
        format!("devices/actuators/reverted/device/{DEVICE}")
    );
    let r = ask(
        &tp,
        "ops.a",
        "request_cancel_schedule",
        vec![Value::from(""), Value::from("hold")],
    )
    .await
    .unwrap();
    assert_eq!(r["result"], Value::from("SUCCESS"));

    // VOLTTRON 11's settings (allow_no_lock_write, no revert at the slot's end) with
    // require_schedule_for_reads: anyone writes to a device nobody holds, nobody else to a
    // held one; only the holder reads.
    tp.call(
        "config.store",
        "set_config",
        (
            actuator::IDENTITY,
            "config",
            r#"{"allow_no_lock_write": true, "revert_on_slot_end": false,
                "require_schedule_for_reads": true}"#,
            "json",
        ),
    )
    .await
    .unwrap();
    tp.settle().await;
    assert_eq!(write("ops.b", 67.0).await.unwrap().as_f64(), Some(67.0));
    assert_eq!(setpoint(&tp).await, 67.0);
    let e = read("ops.b").await.unwrap_err();
    assert!(e.to_string().contains("require_schedule_for_reads"), "{e}");
    schedule(&tp, "ops.a", "held-again", 600).await;
    let e = write("ops.b", 68.0).await.unwrap_err();
    assert!(e.to_string().contains("does not have this lock"), "{e}");
    let e = read("ops.b").await.unwrap_err();
    assert!(e.to_string().contains("does not have this lock"), "{e}");
    assert_eq!(read("ops.a").await.unwrap().as_f64(), Some(67.0));
    // Requests by publication that fail are published as errors.
    errors.take();
    read_by_publication("ops.pub").await;
    let e = errors.last().expect("the refused read is published as an error");
    assert_eq!(
        e.topic.as_str(),
        format!("devices/actuators/error/{DEVICE}/Setpoint")
    );
    assert_eq!(e.message["type"], Value::from("LockError"));
    for (topic, message) in [
        (
            format!("devices/actuators/set/{DEVICE}/Setpoint"),
            Value::from(1.0),
        ),
        (format!("devices/actuators/set/{DEVICE}/Setpoint"), Value::Null),
        (
            format!("devices/actuators/revert/point/{DEVICE}/Setpoint"),
            Value::Null,
        ),
        (format!("devices/actuators/revert/device/{DEVICE}"), Value::Null),
    ] {
        errors.take();
        tp.call(
            "ops.pub",
            "send",
            (topic.as_str(), Headers::new(), message.clone()),
        )
        .await
        .unwrap();
        tp.settle().await;
        let e = errors
            .last()
            .unwrap_or_else(|| panic!("{topic}: no error published"));
        let expected = if message == Value::Null && topic.contains("/set/") {
            "ValueError"
        } else {
            "LockError"
        };
        assert_eq!(e.message["type"], Value::from(expected), "{topic}: {}", e.message);
    }
    assert_eq!(setpoint(&tp).await, 67.0);
    // The slot ends: without revert_on_slot_end the device keeps what was written (VOLTTRON).
    write("ops.a", 69.0).await.unwrap();
    tp.advance(Duration::from_secs(601)).await;
    assert_eq!(setpoint(&tp).await, 69.0);
    tp.shutdown().await;
}

#[volttron::test]
async fn reverts_and_several_points_by_publication_as_volttron() {
    let tp = site().await;
    tp.spawn("ops.pub", Publisher).await.unwrap();
    let results = tp.capture("devices/actuators/schedule/result");
    let reverted = tp.capture("devices/actuators/reverted/");
    let send = |topic: String, headers: Headers, message: Value| {
        let tp = &tp;
        async move {
            tp.call("ops.pub", "send", (topic.as_str(), headers, message))
                .await
                .unwrap();
            tp.settle().await;
        }
    };
    // A schedule by publication, its requests wrapped in one more list (VOLTTRON takes that).
    let headers = Headers::from([
        ("type".to_owned(), Value::from("NEW_SCHEDULE")),
        ("taskID".to_owned(), Value::from("pub-task")),
        ("priority".to_owned(), Value::from("LOW")),
    ]);
    send(
        "devices/actuators/schedule/request".into(),
        headers,
        Value::List(vec![requests(DEVICE, at(&tp, 0), at(&tp, 600))]),
    )
    .await;
    eventually(&tp, "the schedule's result", async || {
        (!results.is_empty()).then_some(())
    })
    .await;
    assert_eq!(results.last().unwrap().message["result"], Value::from("SUCCESS"));
    let bad = Headers::from([("type".to_owned(), Value::from("RESCHEDULE"))]);
    send("devices/actuators/schedule/request".into(), bad, Value::Null).await;
    assert_eq!(
        results.last().unwrap().message["info"],
        Value::from("INVALID_REQUEST_TYPE")
    );

    send(
        format!("devices/actuators/set/{DEVICE}/Setpoint"),
        Headers::new(),
        Value::from(61.0),
    )
    .await;
    assert_eq!(setpoint(&tp).await, 61.0);
    send(
        format!("devices/actuators/revert/point/{DEVICE}/Setpoint"),
        Headers::new(),
        Value::Null,
    )
    .await;
    assert_eq!(setpoint(&tp).await, 72.0);
    send(
        format!("devices/actuators/set/{DEVICE}/Setpoint"),
        Headers::new(),
        Value::from(62.0),
    )
    .await;
    send(
        format!("devices/actuators/revert/device/{DEVICE}"),
        Headers::new(),
        Value::Null,
    )
    .await;
    assert_eq!(setpoint(&tp).await, 72.0);
    let topics = reverted.topics();
    assert_eq!(
        topics,
        [
            format!("devices/actuators/reverted/point/{DEVICE}/Setpoint"),
            format!("devices/actuators/reverted/device/{DEVICE}")
        ]
    );

    // Several points: topics or [device, point] pairs; set_multiple_points writes nothing
    // unless the caller holds every device.
    let pair = Value::List(vec![Value::from(DEVICE), Value::from("Temp")]);
    let got = ask(
        &tp,
        "ops.b",
        "get_multiple_points",
        vec![Value::List(vec![
            Value::from(format!("{DEVICE}/Setpoint")),
            pair,
            Value::from("nodevice"),
        ])],
    )
    .await
    .unwrap();
    assert_eq!(got[0][format!("{DEVICE}/Setpoint").as_str()].as_f64(), Some(72.0));
    assert_eq!(got[0][format!("{DEVICE}/Temp").as_str()].as_f64(), Some(70.0));
    assert!(got[1].as_map().unwrap().len() == 1, "{got}");
    let scraped = ask(&tp, "ops.b", "scrape_all", vec![Value::from(DEVICE)])
        .await
        .unwrap();
    assert_eq!(scraped["Temp"].as_f64(), Some(70.0));
    let e = ask(
        &tp,
        "ops.b",
        "set_multiple_points",
        vec![
            Value::from(""),
            Value::List(vec![Value::List(vec![
                Value::from(format!("{DEVICE}/Setpoint")),
                Value::from(50.0),
            ])]),
        ],
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("does not lock for device"), "{e}");
    assert_eq!(setpoint(&tp).await, 72.0);
    tp.shutdown().await;
}
