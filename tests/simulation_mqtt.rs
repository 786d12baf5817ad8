//! Calculation services in another language: a Python model (`tests/support/dots_model.py`,
//! paho-mqtt and protobuf from PyPI) started by the platform as a program, joins the
//! simulation through a real mosquitto broker — the federation's `payload=raw` rules carry
//! the lifecycle messages out and its messages and data in — is stepped beside Rust
//! models, and its results arrive; a Python model that exits mid-run fails the
//! simulation at once.

#![cfg(all(feature = "simulation", feature = "mqtt"))]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::mosquitto::{Broker, BrokerOptions};
use common::simulation::{Grid, House, call, house_load, pv_power, request, start, wait_stopped};
use serde_json::json;
use volttron::mqtt::{FederationConfig, FederationExt};
use volttron::prelude::*;
use volttron::simulation::{ResultRow, SimulationService, SimulationState};

async fn platform(
    broker: &Broker,
    python: &std::path::Path,
    home: &std::path::Path,
    fail_at: &str,
) -> Platform {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/dots_model.py");
    let port = broker.port().to_string();
    let service = SimulationService::new()
        .program(
            "python-pv",
            [python.display().to_string(), script.display().to_string()],
            &[
                ("MQTT_HOST", "127.0.0.1"),
                ("MQTT_PORT", &port),
                ("MODEL_FAIL_AT", fail_at),
            ],
        )
        .model("house", |_| House::default())
        .model("grid", |_| Grid::default());
    let federation = FederationConfig::new(&broker.url())
        .unwrap()
        .backlog_path(home.join("backlog.sqlite"))
        .mqtt_export(
            "/lifecycle/dots-so/ -> /lifecycle/dots-so qos=1 payload=raw"
                .parse()
                .unwrap(),
        )
        .mqtt_import(
            "/lifecycle/model/# -> /lifecycle/model qos=1 payload=raw"
                .parse()
                .unwrap(),
        )
        .mqtt_import("/data/# -> /data qos=1 payload=raw".parse().unwrap());
    let p = Platform::builder()
        .instance_name("sim")
        .home(home)
        .services(false)
        .unix_socket(false)
        .federation(federation)
        .service(service)
        .start()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while p.call("platform.federation", "status", ()).await.unwrap()["connected"] != Value::from(true) {
        assert!(Instant::now() < deadline, "the federation did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p
}

fn python_request(name: &str, steps: u64) -> serde_json::Value {
    let mut r = request(name, 2, 1, steps);
    r["calculation_services"][0]["service_image_url"] = json!("python-pv");
    r
}

#[volttron::test]
async fn a_python_model_joins_through_mosquitto_and_its_results_arrive() {
    let Some(broker) = Broker::require("simulation_mqtt", BrokerOptions::new()) else {
        return;
    };
    let Some(python) = common::require_python("simulation_mqtt") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let p = platform(&broker, &python, home.path(), "0").await;
    let mut r = python_request("python run", 12);
    r["keep_logs_hours"] = json!(1);
    let s = start(&p, "start", r).await;
    let s = wait_stopped(&p, &s.simulation_id).await;
    assert_eq!(s.state, SimulationState::Succeeded, "{s:#?}");
    let rows: Vec<ResultRow> = call(&p, "results", json!([s.simulation_id])).await.unwrap();
    assert_eq!(rows.len(), 12 * (4 + 4 + 2));
    for r in &rows {
        let want = match r.field.as_str() {
            "power" => pv_power(&r.esdl_id, r.step),
            "load" => house_load(&r.esdl_id, r.step),
            _ => continue,
        };
        assert!((r.value - want).abs() < 1e-9, "{r:?}");
    }
    // The grid summed the Python model's values: they crossed the broker in time.
    let net = rows
        .iter()
        .find(|r| r.esdl_id == "grid1" && r.step == 40 / 4)
        .unwrap();
    let want =
        house_load("house1", 10) + house_load("house2", 10) - pv_power("pv1", 10) - pv_power("pv2", 10);
    assert!((net.value - want).abs() < 1e-9, "{net:?} != {want}");
    let python_rows = rows.iter().filter(|r| r.model_id == "pv-1").count();
    assert_eq!(python_rows, 12 * 4);
    // Its output is kept (keep_logs_hours = 1).
    let logs: std::collections::BTreeMap<String, String> =
        call(&p, "logs", json!([s.simulation_id])).await.unwrap();
    assert_eq!(logs.keys().collect::<Vec<_>>(), ["pv-1"]);
    assert!(
        logs["pv-1"].contains("stdout: pv-1: done after 4 objects"),
        "{logs:?}"
    );
    p.shutdown().await;
}

#[volttron::test]
async fn a_python_model_that_exits_mid_run_fails_the_simulation_at_once() {
    let Some(broker) = Broker::require("simulation_mqtt", BrokerOptions::new()) else {
        return;
    };
    let Some(python) = common::require_python("simulation_mqtt") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let p = platform(&broker, &python, home.path(), "4").await;
    let mut r = python_request("python crash", 12);
    r["max_step_calc_time_minutes"] = json!(30);
    let began = Instant::now();
    let s = start(&p, "start", r).await;
    let s = wait_stopped(&p, &s.simulation_id).await;
    assert_eq!(s.state, SimulationState::Failed, "{s:#?}");
    assert_eq!(
        s.reason.as_deref(),
        Some("model pv-1 exited: Crashed(\"the process ended: exit code 3\")")
    );
    assert_eq!(s.current_step, 4);
    // keep_logs_hours = 0: its output went with it.
    let logs: std::collections::BTreeMap<String, String> =
        call(&p, "logs", json!([s.simulation_id])).await.unwrap();
    assert!(logs.is_empty(), "{logs:?}");
    assert!(began.elapsed() < Duration::from_secs(20));
    p.shutdown().await;
}
