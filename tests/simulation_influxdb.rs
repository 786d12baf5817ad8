//! Results in a real InfluxDB 1.x (`influxd`, Debian's `influxdb`): DOTS's layout —
//! measurement the ESDL type, tags simulation, model, ESDL id and name, a field per
//! output, the step's simulated time — read back with InfluxQL; a sink that is down is
//! reported on the status, and the local results stay.

#![cfg(feature = "simulation")]

mod common;

use common::influxdb::Influx;
use common::simulation::{house_load, pv_power, request, service, start, wait_stopped};
use serde_json::json;
use volttron::simulation::SimulationState;
use volttron::testing::TestPlatform;

#[volttron::test]
async fn results_are_written_to_influxdb_as_dots_lays_them_out() {
    let Some(influx) = Influx::require("simulation_influxdb") else {
        return;
    };
    let tp = TestPlatform::builder()
        .agent_threads(2)
        .service(service().influxdb(&influx.url, "dots"))
        .start()
        .await;
    let s = start(tp.platform(), "start", request("to influx", 2, 2, 8)).await;
    let s = wait_stopped(tp.platform(), &s.simulation_id).await;
    assert_eq!(s.state, SimulationState::Succeeded);
    assert_eq!(
        s.results_sink.as_deref(),
        Some(format!("influxdb {} dots: 80 points written", influx.url).as_str()),
        "{s:#?}"
    );
    let id = &s.simulation_id;
    let q = influx.query(
        Some("dots"),
        &format!("SELECT \"power\" FROM \"PVInstallation\" WHERE \"simulation_id\" = '{id}' AND \"esdl_id\" = 'pv3'"),
    );
    let series = &q["results"][0]["series"][0];
    assert_eq!(series["columns"], json!(["time", "power"]), "{q}");
    let values = series["values"].as_array().unwrap();
    assert_eq!(values.len(), 8);
    for (i, v) in values.iter().enumerate() {
        let step = i as u64 + 1;
        let t = chrono::DateTime::parse_from_rfc3339(v[0].as_str().unwrap()).unwrap();
        assert_eq!(t.timestamp(), 1_717_200_000 + (step as i64 - 1) * 900, "{v}");
        assert!(
            (v[1].as_f64().unwrap() - pv_power("pv3", step)).abs() < 1e-9,
            "{v}"
        );
    }
    let tags = influx.query(
        Some("dots"),
        "SHOW TAG VALUES FROM \"EnergyConsumer\" WITH KEY IN (\"esdl_name\", \"model_id\")",
    );
    let pairs: Vec<(String, String)> = tags["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v[0].as_str().unwrap().to_owned(),
                v[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        pairs.contains(&("esdl_name".into(), "House 3".into())),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("model_id".into(), "house-2".into())),
        "{pairs:?}"
    );
    let load = influx.query(
        Some("dots"),
        &format!("SELECT \"load\" FROM \"EnergyConsumer\" WHERE \"esdl_id\" = 'house1' AND \"simulation_id\" = '{id}' ORDER BY time DESC LIMIT 1"),
    );
    let last = &load["results"][0]["series"][0]["values"][0];
    assert!(
        (last[1].as_f64().unwrap() - house_load("house1", 8)).abs() < 1e-9,
        "{load}"
    );
    let count = influx.query(
        Some("dots"),
        &format!("SELECT COUNT(\"net\") FROM \"EConnection\" WHERE \"simulation_id\" = '{id}'"),
    );
    assert_eq!(
        count["results"][0]["series"][0]["values"][0][1],
        json!(16),
        "{count}"
    );
}

#[volttron::test]
async fn a_sink_that_is_down_is_reported_and_the_local_results_stay() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let tp = TestPlatform::builder()
        .agent_threads(2)
        .service(service().influxdb(&url, "dots"))
        .start()
        .await;
    let s = start(tp.platform(), "start", request("no influx", 2, 1, 3)).await;
    let s = wait_stopped(tp.platform(), &s.simulation_id).await;
    assert_eq!(s.state, SimulationState::Succeeded);
    let said = s.results_sink.unwrap();
    assert!(
        said.starts_with(&format!("influxdb {url} dots: error: ")),
        "{said}"
    );
    let rows: Vec<volttron::simulation::ResultRow> =
        common::simulation::call(tp.platform(), "results", json!([s.simulation_id]))
            .await
            .unwrap();
    assert_eq!(rows.len(), 3 * 10);
}
