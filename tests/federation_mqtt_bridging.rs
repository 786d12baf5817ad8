//! Plain MQTT for other systems: `mqtt-export` publishes bus topics as MQTT topics with
//! the message's JSON as payload, `mqtt-import` publishes MQTT messages on the bus;
//! `mosquitto_sub` / `mosquitto_pub` play the SCADA. Also: headers and trace context
//! cross between federated platforms unchanged.
#![cfg(feature = "mqtt")]

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::mosquitto::{Broker, BrokerOptions};
use volttron::mqtt::{FederationConfig, FederationExt};
use volttron::prelude::*;

struct Commands {
    tx: mpsc::Sender<Publication>,
}

#[volttron::agent]
impl Commands {
    #[subscribe("commands/")]
    fn on_command(&mut self, _ctx: &AgentContext, p: &Publication) {
        let _ = self.tx.send(p.clone());
    }
}

#[volttron::test]
async fn a_scada_reads_devices_and_writes_commands() {
    let Some(broker) = Broker::require("federation_mqtt_bridging", BrokerOptions::new()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let federation = FederationConfig::new(&broker.url())
        .unwrap()
        .backlog_path(dir.path().join("bms.sqlite"))
        .mqtt_export("devices/ -> bms/devices qos=1 retain=true".parse().unwrap())
        .mqtt_import("scada/commands/# -> commands/scada qos=1".parse().unwrap())
        // An import into an exported prefix must not come back out.
        .mqtt_import("scada/echo/# -> devices/echo qos=0".parse().unwrap());
    let platform = Platform::builder()
        .instance_name("bms")
        .federation(federation)
        .start()
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel();
    platform.spawn("commands", Commands { tx }).await.unwrap();
    let status = async || platform.call("platform.federation", "status", ()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while status().await["connected"] != Value::from(true) {
        assert!(Instant::now() < deadline, "not connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Export: the SCADA sees device data as JSON under its own topic tree, retained.
    let sub = broker.mosquitto_sub(&["-t", "bms/devices/#", "-C", "1", "-q", "1"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    // The federation agent subscribes as it starts: publish until the SCADA hears one.
    let sub_messages = tokio::task::spawn_blocking(move || sub.wait());
    while !sub_messages.is_finished() {
        n += 1;
        platform
            .publish(
                "devices/campus/ahu1/all",
                serde_json::json!({"temp": 21.5, "n": n}),
            )
            .unwrap();
        assert!(Instant::now() < deadline, "the SCADA heard nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = sub_messages.await.unwrap();
    assert_eq!(got[0].topic, "bms/devices/campus/ahu1/all");
    let payload: serde_json::Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(payload["temp"], 21.5);
    // Retained: a SCADA that connects later still reads the last value.
    let late = broker.mosquitto_sub(&["-t", "bms/devices/campus/ahu1/all", "-C", "1"]);
    let late = tokio::task::spawn_blocking(move || late.wait()).await.unwrap();
    assert!(late[0].retain, "{late:?}");

    // Import: the SCADA's command arrives on the bus as a value, with its MQTT topic.
    broker.mosquitto_pub(&["-t", "scada/commands/ahu1/setpoint", "-m", "22.5", "-q", "1"]);
    let p = rx.recv_timeout(Duration::from_secs(20)).expect("the command");
    assert_eq!(p.topic.as_str(), "commands/scada/ahu1/setpoint");
    assert_eq!(p.message, Value::from(22.5));
    assert_eq!(
        p.header("mqtt-topic"),
        Some(&Value::from("scada/commands/ahu1/setpoint"))
    );
    broker.mosquitto_pub(&["-t", "scada/commands/ahu1/mode", "-m", "cooling"]);
    let p = rx.recv_timeout(Duration::from_secs(20)).expect("the command");
    assert_eq!(p.message, Value::from("cooling"));
    // Not JSON, not UTF-8: dropped, counted, nothing breaks.
    let bad = dir.path().join("bad.bin");
    std::fs::write(&bad, [0xff, 0xfe, 0x00]).unwrap();
    broker.mosquitto_pub(&["-t", "scada/commands/ahu1/bad", "-f", bad.to_str().unwrap()]);

    // No loop: what an import published under an exported prefix is not exported back.
    let echo = broker.mosquitto_sub(&["-t", "bms/devices/echo/#", "-W", "3"]);
    broker.mosquitto_pub(&["-t", "scada/echo/x", "-m", "1"]);
    broker.mosquitto_pub(&["-t", "scada/commands/marker", "-m", "1", "-q", "1"]);
    let p = rx.recv_timeout(Duration::from_secs(20)).expect("the marker");
    assert_eq!(
        p.topic.as_str(),
        "commands/scada/marker",
        "the bad payload got through: {p:?}"
    );
    let echoed = tokio::task::spawn_blocking(move || echo.wait()).await.unwrap();
    assert!(echoed.is_empty(), "an import was exported back: {echoed:?}");
    assert!(status().await["counters"]["refused"].as_i64() >= Some(1));
    platform.shutdown().await;
}

/// Records remote publications and the trace a call arrives with.
struct Traced {
    tx: mpsc::Sender<Publication>,
}

#[volttron::agent]
impl Traced {
    #[subscribe("devices/", all_platforms = true)]
    fn on_device(&mut self, _ctx: &AgentContext, p: &Publication) {
        if p.is_remote() {
            let _ = self.tx.send(p.clone());
        }
    }

    /// The trace id this call is part of.
    #[rpc]
    fn trace_id(&mut self) -> Option<String> {
        volttron::agent::current_trace().map(|t| t.trace_id().to_owned())
    }
}

#[volttron::test]
async fn headers_and_trace_context_cross_unchanged() {
    let Some(broker) = Broker::require("federation_trace", BrokerOptions::new()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let start = async |name: &str| {
        Platform::builder()
            .instance_name(name)
            .federation(
                FederationConfig::new(&broker.url())
                    .unwrap()
                    .export(["devices/"])
                    .backlog_path(dir.path().join(format!("{name}.sqlite"))),
            )
            .start()
            .await
            .unwrap()
    };
    let a = start("a").await;
    let b = start("b").await;
    let (tx, rx) = mpsc::channel();
    b.spawn("traced", Traced { tx }).await.unwrap();
    let trace =
        volttron::core::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None)
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        match a
            .call("traced", "trace_id", ())
            .on_platform("b")
            .trace(Some(trace.clone()))
            .await
        {
            Ok(v) => break v,
            Err(e) => assert!(Instant::now() < deadline, "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reply, Value::from("4bf92f3577b34da6a3ce929d0e0e4736"));

    let mut headers = Headers::new();
    headers.insert("TimeStamp".into(), Value::from("2026-12-07T12:00:00+00:00"));
    trace.write_headers(&mut headers);
    let deadline = Instant::now() + Duration::from_secs(20);
    let p = loop {
        a.publish_on("", "devices/meter/1", headers.clone(), 5).unwrap();
        if let Ok(p) = rx.recv_timeout(Duration::from_millis(200)) {
            break p;
        }
        assert!(Instant::now() < deadline, "nothing crossed");
    };
    assert_eq!(p.headers, headers);
    a.shutdown().await;
    b.shutdown().await;
}
