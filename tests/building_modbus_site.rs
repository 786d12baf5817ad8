//! The building data path against a real Modbus device (pymodbus, pinned in
//! `.ci/python-requirements.txt`): the platform driver scrapes it, the historian stores it
//! and `query` returns it; a `set_point` through the actuator by the holder of the slot
//! changes the register (pymodbus sees the write), and releasing the slot reverts it.
#![cfg(all(feature = "modbus", feature = "historian", feature = "actuator"))]

mod common;
#[path = "../benches/workloads/pymodbus.rs"]
mod pymodbus;

use std::time::Duration;

use serde_json::json;
use volttron::agents::actuator::{self, Actuator};
use volttron::agents::driver::{self, PlatformDriver};
use volttron::agents::historian::{self, SqliteHistorian};
use volttron::prelude::*;
use volttron::testing::TestPlatform;

use common::building::{Operator, ask, at, requests};
use common::settle::eventually;

#[volttron::test]
async fn pymodbus_scraped_stored_queried_and_written_through_the_actuator() {
    let test = "pymodbus_scraped_stored_queried_and_written_through_the_actuator";
    let Some(python) = common::require_python(test) else {
        return;
    };
    if let Err(why) = pymodbus::probe(&python) {
        assert!(!common::in_ci(), "{test}: {why}");
        println!("skipped: {test}: {why}");
        return;
    }
    let spec = json!({
        "unit": 1,
        "sizes": {"holding": 16, "input": 4, "coil": 4, "discrete_input": 4},
        "points": [
            // Read-only points are input registers, writable ones holding registers (VOLTTRON).
            {"table": "input", "address": 0, "format": ">f", "value": 71.5},
            {"table": "holding", "address": 2, "format": ">H", "value": 74},
        ]
    });
    let device = pymodbus::ModbusServer::start(&python, &spec).expect("pymodbus device");

    let tp = TestPlatform::builder().services(true).start().await;
    let store = |id: &'static str, name: &'static str, raw: String, kind: &'static str| {
        let tp = &tp;
        async move {
            tp.call("config.store", "set_config", (id, name, raw, kind))
                .await
                .unwrap()
        }
    };
    store(
        driver::IDENTITY,
        "rtu.csv",
        "Volttron Point Name,Units,Modbus Register,Writable,Point Address,Default Value\n\
         ZoneTemperature,degF,>f,FALSE,0,\n\
         CoolingSetpoint,degF,>H,TRUE,2,74\n"
            .to_owned(),
        "csv",
    )
    .await;
    let entry = json!({
        "driver_config": {"device_address": "127.0.0.1", "port": device.port(), "slave_id": 1},
        "driver_type": "modbus",
        "registry_config": "config://rtu.csv",
        "interval": 60,
        "timeout": 5
    });
    store(
        driver::IDENTITY,
        "devices/campus/hq/rtu1",
        entry.to_string(),
        "json",
    )
    .await;
    let db = tempfile::tempdir().unwrap();
    tp.spawn(
        historian::IDENTITY,
        SqliteHistorian::new(db.path().join("h.sqlite")),
    )
    .await
    .unwrap();
    tp.spawn(driver::IDENTITY, PlatformDriver::new()).await.unwrap();
    tp.spawn(actuator::IDENTITY, Actuator::new()).await.unwrap();
    tp.spawn("ops", Operator).await.unwrap();
    tp.settle().await;

    // Two scrapes: stored, and queryable as VOLTTRON's historian answers.
    tp.advance(Duration::from_secs(120)).await;
    let values = eventually(&tp, "two readings stored", async || {
        tp.call(historian::IDENTITY, "flush", ()).await.ok()?;
        let q = tp
            .call(
                historian::IDENTITY,
                "query",
                ("campus/hq/rtu1/ZoneTemperature", "2000-01-01T00:00:00Z"),
            )
            .await
            .ok()?;
        let v = q["values"].as_list()?.to_vec();
        (v.len() >= 2).then_some(v)
    })
    .await;
    assert_eq!(values[0][1].as_f64(), Some(71.5));
    let meta = tp
        .call(
            historian::IDENTITY,
            "get_topics_metadata",
            (vec!["campus/hq/rtu1/CoolingSetpoint"],),
        )
        .await
        .unwrap();
    assert_eq!(
        meta["campus/hq/rtu1/CoolingSetpoint"]["units"],
        Value::from("degF")
    );

    // The holder of a slot writes through the actuator: the register changes at the device.
    let r = ask(
        &tp,
        "ops",
        "request_new_schedule",
        vec![
            Value::from("ops"),
            Value::from("t1"),
            Value::from("LOW"),
            requests("campus/hq/rtu1", at(&tp, 0), at(&tp, 600)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r["result"], Value::from("SUCCESS"), "{r}");
    let written = ask(
        &tp,
        "ops",
        "set_point",
        vec![
            Value::from("ops"),
            Value::from("campus/hq/rtu1/CoolingSetpoint"),
            Value::from(70),
        ],
    )
    .await
    .unwrap();
    assert_eq!(written.as_f64(), Some(70.0));
    let write = device.next_write();
    assert_eq!(
        (write["address"].clone(), write["values"].clone()),
        (json!(2), json!([70])),
        "{write}"
    );
    let v = tp
        .call(
            driver::IDENTITY,
            "get_point",
            ("campus/hq/rtu1", "CoolingSetpoint"),
        )
        .await
        .unwrap();
    assert_eq!(v.as_f64(), Some(70.0));

    // Released: the driver writes the registry's default back.
    let r = ask(
        &tp,
        "ops",
        "request_cancel_schedule",
        vec![Value::from("ops"), Value::from("t1")],
    )
    .await
    .unwrap();
    assert_eq!(r["result"], Value::from("SUCCESS"));
    let revert = device.next_write();
    assert_eq!(
        (revert["address"].clone(), revert["values"].clone()),
        (json!(2), json!([74])),
        "{revert}"
    );
    let v = tp
        .call(
            driver::IDENTITY,
            "get_point",
            ("campus/hq/rtu1", "CoolingSetpoint"),
        )
        .await
        .unwrap();
    assert_eq!(v.as_f64(), Some(74.0));
    tp.shutdown().await;
    device.stop();
}
