//! `platform.simulation` on a test platform: 3 calculation services × 4 models × 96 steps
//! of in-process Rust models (PV, houses, grid connections summing what is connected to
//! them), DOTS's message order, data exchange through the bus, results stored and
//! exported as CSV, a companion agent on the simulation's clock, nothing left afterwards,
//! and the same results and message order twice in a row.

#![cfg(feature = "simulation")]

mod common;

use std::collections::BTreeMap;

use common::simulation::{call, house_load, leftovers, pv_power, request, service, start, wait_stopped};
use serde_json::json;
use volttron::prelude::*;
use volttron::simulation::{ResultRow, SimulationState, SimulationStatus};
use volttron::testing::TestPlatform;

/// A controller under test: wakes every 15 minutes of *its* clock and notes the time.
#[derive(Default)]
struct Thermostat {
    seen: Vec<String>,
}

#[volttron::agent]
impl Thermostat {
    #[periodic(secs = 900)]
    fn tick(&mut self, ctx: &AgentContext) {
        self.seen.push(ctx.now().to_rfc3339());
    }

    #[on_stop]
    fn stop(&mut self, ctx: &AgentContext) {
        let _ = ctx.publish("test/thermostat/seen", Value::from(self.seen.clone()));
    }
}

async fn platform() -> TestPlatform {
    TestPlatform::builder()
        .agent_threads(2)
        .service(service().companion("thermostat", Thermostat::default))
        .start()
        .await
}

/// Runs one simulation to its end; its status, results and the lifecycle topics the
/// orchestrator sent (simulation id replaced by `SIM`).
async fn run_once(
    tp: &TestPlatform,
    with_thermostat: bool,
) -> (SimulationStatus, Vec<ResultRow>, Vec<String>) {
    let mut r = request("Town run", 8, 4, 96);
    if with_thermostat {
        r["agents"] = json!(["thermostat"]);
    }
    let sent = tp.capture("/lifecycle/dots-so/");
    let s = start(tp.platform(), "start", r).await;
    let id = s.simulation_id.clone();
    let s = wait_stopped(tp.platform(), &id).await;
    let rows: Vec<ResultRow> = call(tp.platform(), "results", json!([id])).await.unwrap();
    let order = sent.topics().into_iter().map(|t| t.replace(&id, "SIM")).collect();
    (s, rows, order)
}

#[volttron::test]
async fn three_services_of_four_models_step_96_times_and_leave_nothing() {
    let tp = platform().await;
    let subscriptions = tp.platform().subscription_count();
    let seen = tp.capture("test/thermostat/seen");
    let progress = tp.capture("simulation/");
    let (s, rows, order) = run_once(&tp, true).await;
    assert_eq!(s.state, SimulationState::Succeeded, "{s:#?}");
    assert_eq!(s.simulation_status, "TERMINATED_SUCCESSFULL");
    assert_eq!((s.current_step, s.nr_of_steps), (96, 96));
    assert_eq!(s.models.len(), 12);
    assert!(s.reason.is_none());
    assert!(s.calculation_duration.is_some());

    // DOTS's order: deploy, parameters to each model, then each step to every model.
    assert_eq!(order[0], "/lifecycle/dots-so/mso/SIM/DeployModels");
    let models: Vec<String> = ["pv", "house", "grid"]
        .iter()
        .flat_map(|svc| (1..=4).map(move |i| format!("{svc}-{i}")))
        .collect();
    let mut expected = Vec::new();
    for m in &models {
        expected.push(format!("/lifecycle/dots-so/model/SIM/{m}/ModelParameters"));
    }
    for _step in 1..=96 {
        // One publication for all the in-process models.
        expected.push("/lifecycle/dots-so/model/SIM/NewStep".to_owned());
    }
    for m in &models {
        expected.push(format!("/lifecycle/dots-so/model/SIM/{m}/SimulationDone"));
    }
    assert_eq!(order[1..], expected[..]);

    // Every output of every object for every step, with the grid's sums right.
    assert_eq!(rows.len(), 96 * (16 + 16 + 8));
    let value: BTreeMap<(u64, String, String), f64> = rows
        .iter()
        .map(|r| ((r.step, r.esdl_id.clone(), r.field.clone()), r.value))
        .collect();
    for step in 1..=96u64 {
        for g in 1..=8usize {
            let mut net = 0.0;
            for k in 1..=2 {
                let n = (g - 1) * 2 + k;
                net += house_load(&format!("house{n}"), step) - pv_power(&format!("pv{n}"), step);
            }
            let got = value[&(step, format!("grid{g}"), "net".into())];
            assert!((got - net).abs() < 1e-9, "step {step} grid{g}: {got} != {net}");
        }
    }
    let first = rows.iter().find(|r| r.esdl_id == "pv5").unwrap();
    assert_eq!(
        (
            first.measurement.as_str(),
            first.model_id.as_str(),
            first.esdl_name.as_str()
        ),
        ("PVInstallation", "pv-2", "PV 5")
    );
    assert_eq!(first.time.to_rfc3339(), "2024-06-01T00:00:00+00:00");
    let last = rows.iter().rfind(|r| r.esdl_id == "grid8").unwrap();
    assert_eq!(
        (last.step, last.time.to_rfc3339().as_str()),
        (96, "2024-06-01T23:45:00+00:00")
    );

    // Exported as CSV, and kept in the home.
    let csv: String = call(tp.platform(), "results_csv", json!([s.simulation_id]))
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), rows.len() + 1);
    assert!(csv.starts_with("step,time,measurement,simulation_id,model_id,esdl_id,esdl_name,field,value\n"));
    let kept = tp
        .home_dir()
        .join("simulations")
        .join(format!("{}.results.csv", s.simulation_id));
    assert_eq!(std::fs::read_to_string(kept).unwrap(), csv);

    // The companion ran on simulated time: every 15 minutes from the start to the end.
    let seen: Vec<String> =
        volttron::core::value::from_value(seen.last().expect("the thermostat stopped").message.clone())
            .unwrap();
    let times: Vec<chrono::DateTime<chrono::Utc>> = seen.iter().map(|t| t.parse().unwrap()).collect();
    let start: chrono::DateTime<chrono::Utc> = "2024-06-01T00:00:00Z".parse().unwrap();
    assert!(times.len() >= 48, "{seen:?}");
    assert_eq!(times[0], start);
    for w in times.windows(2) {
        assert!(
            w[1] > w[0] && ((w[1] - start).num_seconds() % 900) == 0,
            "{seen:?}"
        );
    }
    assert!(*times.last().unwrap() <= start + chrono::Duration::seconds(96 * 900));

    // Progress went out on the bus, ending with the stopped state.
    let last = progress.last().unwrap();
    let last: serde_json::Value = volttron::core::value::from_value(last.message.clone()).unwrap();
    assert_eq!(
        (last["state"].as_str(), last["stopped"].as_bool()),
        (Some("Succeeded"), Some(true))
    );

    // Nothing left: no model or companion agent, no subscription of theirs.
    assert_eq!(leftovers(tp.platform()), Vec::<String>::new());
    tp.settle().await;
    assert_eq!(
        tp.platform().subscription_count(),
        subscriptions + 2,
        "only the test's two captures remain"
    );
}

#[volttron::test]
async fn the_same_simulation_twice_gives_the_same_results_and_message_order() {
    let tp = platform().await;
    let (a, mut rows_a, order_a) = run_once(&tp, false).await;
    let (b, mut rows_b, order_b) = run_once(&tp, false).await;
    assert_eq!(
        (a.state, b.state),
        (SimulationState::Succeeded, SimulationState::Succeeded)
    );
    assert_ne!(a.simulation_id, b.simulation_id);
    for r in rows_a.iter_mut().chain(rows_b.iter_mut()) {
        r.simulation_id.clear();
    }
    assert_eq!(rows_a, rows_b);
    assert_eq!(order_a, order_b);
}

#[volttron::test]
async fn bad_requests_and_unknown_ids_are_refused_with_their_reason() {
    let tp = platform().await;
    let mut r = request("bad", 2, 1, 4);
    r["calculation_services"][0]["service_image_url"] = json!("ghcr.io/dots/pv:latest");
    let e = call::<SimulationStatus>(tp.platform(), "start", json!([r]))
        .await
        .unwrap_err();
    assert!(
        e.contains("service_image_url") && e.contains("not a calculation service registered"),
        "{e}"
    );
    let mut r = request("bad", 2, 1, 4);
    r["time_step_seconds"] = json!(0);
    let e = call::<SimulationStatus>(tp.platform(), "start", json!([r]))
        .await
        .unwrap_err();
    assert!(e.contains("time_step_seconds"), "{e}");
    let mut r = request("bad", 2, 1, 4);
    r["agents"] = json!(["nobody"]);
    let e = call::<SimulationStatus>(tp.platform(), "queue", json!([r]))
        .await
        .unwrap_err();
    assert!(e.contains("agents"), "{e}");
    let e = call::<SimulationStatus>(tp.platform(), "status", json!(["nope-12345678"]))
        .await
        .unwrap_err();
    assert!(e.contains("no simulation"), "{e}");
    let e = call::<SimulationStatus>(tp.platform(), "cancel", json!(["nope-12345678"]))
        .await
        .unwrap_err();
    assert!(e.contains("no simulation"), "{e}");
    let list: Vec<SimulationStatus> = call(tp.platform(), "list", json!([])).await.unwrap();
    assert!(list.is_empty());
}
