//! `vctl simulation` against a `volttron` process: the `[simulation]` section registers a
//! Python model program (`tests/support/dots_model.py`), the `[federation]` section's
//! `payload=raw` rules carry its lifecycle over a real mosquitto; `start FILE`, `list`,
//! `status`, `results` (CSV), `cancel` of an ended one, and bad input.

#![cfg(all(feature = "simulation", feature = "mqtt", feature = "cli"))]

mod common;

use std::time::{Duration, Instant};

use common::Home;
use common::mosquitto::{Broker, BrokerOptions};
use serde_json::{Value, json};

#[test]
fn vctl_starts_follows_and_exports_a_simulation() {
    let Some(broker) = Broker::require("simulation_vctl", BrokerOptions::new()) else {
        return;
    };
    let Some(python) = common::require_python("simulation_vctl") else {
        return;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dots_model.py");
    let home = Home::with_config(&format!(
        "[volttron]\ninstance-name = simhost\n\
         [federation]\nbroker = {}\n\
         mqtt-export = /lifecycle/dots-so/ -> /lifecycle/dots-so qos=1 payload=raw\n\
         mqtt-import = /lifecycle/model/# -> /lifecycle/model qos=1 payload=raw, /data/# -> /data qos=1 payload=raw\n\
         [simulation]\nprogram.python-pv = {} {}\nprogram.python-pv.env = MQTT_HOST=127.0.0.1, MQTT_PORT={}\n",
        broker.url(),
        python.display(),
        script.display(),
        broker.port()
    ));
    let _platform = home.start_platform();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = home.vctl(&["--json", "federation", "status"]);
        if out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| v["connected"] == json!(true))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the federation did not connect: {}",
            home.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let request = json!({
        "name": "from vctl",
        "start_date": "2024-06-01 00:00:00",
        "time_step_seconds": 900,
        "nr_of_time_steps": 6,
        "calculation_services": [
            {"esdl_type": "PVInstallation", "calc_service_name": "pv", "service_image_url": "python-pv", "nr_of_models": 2},
        ],
        "esdl_base64string": common::simulation::esdl(2),
    });
    let file = home.write("sim.json", &request.to_string());
    let started: Value =
        serde_json::from_str(&home.ok(&["--json", "simulation", "start", file.to_str().unwrap()])).unwrap();
    let id = started["simulation_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s: Value = serde_json::from_str(&home.ok(&["--json", "simulation", "status", &id])).unwrap();
        if s["stopped"] == json!(true) {
            break s;
        }
        assert!(Instant::now() < deadline, "not done: {s}\n{}", home.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["simulation_status"], "TERMINATED_SUCCESSFULL", "{status}");
    let text = home.ok(&["simulation", "status", &id]);
    assert!(
        text.contains("TERMINATED_SUCCESSFULL") && text.contains("pv-2"),
        "{text}"
    );
    let list = home.ok(&["simulation", "list"]);
    assert!(list.contains(&id) && list.contains("from vctl"), "{list}");
    let csv = home.ok(&["simulation", "results", &id]);
    assert_eq!(csv.lines().count(), 1 + 6 * 4, "{csv}");
    assert!(csv.lines().nth(1).unwrap().contains(",PVInstallation,"), "{csv}");

    let logs = home.ok(&["simulation", "logs", &id]);
    assert!(logs.contains("no logs"), "keep_logs_hours 0: {logs}");
    let err = home.fails(&["simulation", "cancel", &id]);
    assert!(err.contains("already ended"), "{err}");
    let err = home.fails(&["simulation", "status", "nope-00000000"]);
    assert!(err.contains("no simulation"), "{err}");
    let bad = home.write("bad.json", "{\"name\": \"x\"}");
    let err = home.fails(&["simulation", "start", bad.to_str().unwrap()]);
    assert!(err.contains("bad.json") && err.contains("body"), "{err}");
    home.ok(&["shutdown", "--platform"]);
}
