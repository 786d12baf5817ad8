//! How simulations fail: each ends promptly, with its reason in the API, and nothing it
//! started left running — a model that never becomes ready, one that crashes in step 5,
//! one that overruns the step deadline, one that sends malformed protobuf, a cancel
//! mid-run, and a platform restart mid-run (the run reported failed by the restart, the
//! queue run on after it).

#![cfg(feature = "simulation")]

mod common;

use std::time::{Duration, Instant};

use common::simulation::{House, Pv, leftovers, request, service, start, wait_for, wait_stopped};
use serde_json::json;
use volttron::prelude::*;
use volttron::simulation::lifecycle;
use volttron::simulation::topics::{self, MODEL, MSO, SO};
use volttron::simulation::{Input, Model, ModelError, ModelSetup, ModelSpec, SimulationState, Step};
use volttron::testing::TestPlatform;

/// A model agent that starts and never says it is ready.
struct Silent;

#[volttron::agent]
impl Silent {}

/// A model agent that says it is ready, then answers its parameters with bytes that are
/// not protobuf.
struct Garbler {
    spec: ModelSpec,
}

#[volttron::agent]
impl Garbler {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) -> Result<(), String> {
        let inbox = topics::model_inbox(&self.spec.simulation_id, &self.spec.model_id);
        ctx.subscribe(&inbox, Self::inbox).map_err(|e| e.to_string())?;
        let ready = topics::to_model(
            MODEL,
            MSO,
            &self.spec.simulation_id,
            &self.spec.model_id,
            "ReadyForProcessing",
        );
        ctx.publish(ready, lifecycle::encode(&lifecycle::ReadyForProcessing {}))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn inbox(&mut self, ctx: &AgentContext, msg: &Publication) {
        if msg.topic.as_str().ends_with("/ModelParameters") {
            let t = topics::to_model(
                MODEL,
                SO,
                &self.spec.simulation_id,
                &self.spec.model_id,
                "Parameterized",
            );
            ctx.publish(t, Value::Bytes(vec![0xff, 0xff, 0xff])).unwrap();
        }
    }
}

/// Houses whose model panics in step 5.
#[derive(Default)]
struct Crasher(House);

impl Model for Crasher {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        self.0.parameterize(setup)
    }

    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
        assert!(step.number() != 5, "the crasher's model broke in step 5");
        self.0.step(step)
    }
}

/// PV whose output for step 3 never comes: the grid waits past the deadline.
#[derive(Default)]
struct LatePv(Pv);

impl Model for LatePv {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        self.0.parameterize(setup)
    }

    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
        if step.number() == 3 {
            return Ok(());
        }
        self.0.step(step)
    }
}

/// PV whose model says what went wrong in step 2.
#[derive(Default)]
struct Failer(Pv);

impl Model for Failer {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        self.0.parameterize(setup)
    }

    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
        match step.number() {
            2 => Err(ModelError::new("no sun today")),
            _ => self.0.step(step),
        }
    }
}

async fn platform() -> TestPlatform {
    TestPlatform::builder()
        .agent_threads(2)
        .service(
            service()
                .agent("silent", |_| Silent)
                .agent("garbler", |spec| Garbler { spec: spec.clone() })
                .model("crasher", |_| Crasher::default())
                .model("late-pv", |_| LatePv::default())
                .model("failer", |_| Failer::default()),
        )
        .start()
        .await
}

/// The request of the tests with service `svc` started by `image`.
fn with(name: &str, svc: usize, image: &str) -> serde_json::Value {
    let mut r = request(name, 2, 1, 10);
    r["calculation_services"][svc]["service_image_url"] = json!(image);
    r
}

async fn ends_failed(
    tp: &TestPlatform,
    r: serde_json::Value,
    reason: &str,
) -> volttron::simulation::SimulationStatus {
    let began = Instant::now();
    let s = start(tp.platform(), "start", r).await;
    let s = wait_stopped(tp.platform(), &s.simulation_id).await;
    assert_eq!(s.state, SimulationState::Failed, "{s:#?}");
    let why = s.reason.clone().unwrap_or_default();
    assert!(why.contains(reason), "{why:?} does not say {reason:?}");
    assert!(
        s.simulation_status.starts_with("TERMINATED_FAILED: "),
        "{}",
        s.simulation_status
    );
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "took {:?}",
        began.elapsed()
    );
    assert_eq!(leftovers(tp.platform()), Vec::<String>::new());
    s
}

#[volttron::test]
async fn a_model_that_never_becomes_ready_fails_the_deployment_and_frees_the_queue() {
    let tp = platform().await;
    let mut r = with("never ready", 1, "silent");
    r["deploy_timeout_seconds"] = json!(0.3);
    let queued = start(tp.platform(), "queue", r).await;
    let behind = start(tp.platform(), "queue", request("behind it", 2, 1, 3)).await;
    assert_eq!(behind.state, SimulationState::Queued);
    assert_eq!(behind.queue_position, Some(1));
    let s = wait_stopped(tp.platform(), &queued.simulation_id).await;
    assert_eq!(s.state, SimulationState::Failed);
    assert_eq!(
        s.reason.as_deref(),
        Some("models not ready within 300ms: house-1")
    );
    let b = wait_stopped(tp.platform(), &behind.simulation_id).await;
    assert_eq!(b.state, SimulationState::Succeeded, "the queue went on: {b:#?}");
    assert_eq!(leftovers(tp.platform()), Vec::<String>::new());
}

#[volttron::test]
async fn a_model_that_crashes_in_step_5_fails_the_simulation_at_once() {
    let tp = platform().await;
    let mut r = with("crash", 1, "crasher");
    // A step deadline far away: the crash, not a timeout, ends it.
    r["max_step_calc_time_minutes"] = json!(60);
    let s = ends_failed(&tp, r, "model house-1 exited: Crashed(").await;
    assert!(s.reason.unwrap().contains("broke in step 5"));
    assert_eq!(s.current_step, 5);
    let house = s.models.iter().find(|m| m.model_id == "house-1").unwrap();
    assert_eq!(house.state, volttron::simulation::ModelState::TerminatedFailed);
}

#[volttron::test]
async fn a_step_that_overruns_its_deadline_fails_naming_the_model() {
    let tp = platform().await;
    let mut r = with("overrun", 0, "late-pv");
    r["max_step_calc_time_minutes"] = json!(0.005);
    let s = ends_failed(&tp, r, "step 3 not done within 300ms: grid-1").await;
    assert_eq!(s.current_step, 3);
}

#[volttron::test]
async fn malformed_protobuf_from_a_model_fails_the_simulation() {
    let tp = platform().await;
    ends_failed(
        &tp,
        with("garbage", 2, "garbler"),
        "model grid-1: malformed Parameterized",
    )
    .await;
}

#[volttron::test]
async fn a_model_error_reaches_the_api() {
    let tp = platform().await;
    let s = ends_failed(&tp, with("error", 0, "failer"), "model pv-1: no sun today").await;
    assert_eq!(s.current_step, 2);
}

#[volttron::test]
async fn a_cancel_mid_run_stops_everything() {
    let tp = platform().await;
    let s = start(tp.platform(), "start", request("long", 2, 1, 10_000_000)).await;
    let id = s.simulation_id.clone();
    wait_for(tp.platform(), &id, "running", |s| s.current_step >= 2).await;
    let c: volttron::simulation::SimulationStatus =
        common::simulation::call(tp.platform(), "cancel", json!([id]))
            .await
            .unwrap();
    assert_eq!(c.state, SimulationState::Cancelled);
    let s = wait_stopped(tp.platform(), &id).await;
    assert_eq!(s.simulation_status, "TERMINATED_CANCELLED");
    assert!(s.current_step >= 2 && s.current_step < 10_000_000);
    assert_eq!(leftovers(tp.platform()), Vec::<String>::new());
    let again = common::simulation::call::<volttron::simulation::SimulationStatus>(
        tp.platform(),
        "cancel",
        json!([id]),
    )
    .await
    .unwrap_err();
    assert!(again.contains("already ended"), "{again}");
}

async fn real_platform(home: &std::path::Path) -> Platform {
    Platform::builder()
        .instance_name("simtest")
        .home(home)
        .services(false)
        .unix_socket(false)
        .service(service())
        .start()
        .await
        .expect("the platform starts")
}

#[volttron::test]
async fn a_restart_mid_run_reports_the_run_failed_and_runs_the_queue() {
    let home = tempfile::tempdir().unwrap();
    let p = real_platform(home.path()).await;
    let running = start(&p, "queue", request("before restart", 2, 1, 10_000_000)).await;
    let queued = start(&p, "queue", request("queued", 2, 1, 10_000_000)).await;
    wait_for(&p, &running.simulation_id, "running", |s| s.current_step >= 2).await;
    p.shutdown().await;
    drop(p);

    let p = real_platform(home.path()).await;
    let s: volttron::simulation::SimulationStatus =
        common::simulation::call(&p, "status", json!([running.simulation_id]))
            .await
            .unwrap();
    assert_eq!(s.state, SimulationState::Failed);
    assert_eq!(s.reason.as_deref(), Some("the platform restarted during the run"));
    assert!(s.stopped);
    wait_for(&p, &queued.simulation_id, "running after the restart", |s| {
        s.current_step >= 2
    })
    .await;
    let list: Vec<volttron::simulation::SimulationStatus> =
        common::simulation::call(&p, "list", json!([])).await.unwrap();
    let ids: Vec<&str> = list.iter().map(|s| s.simulation_id.as_str()).collect();
    assert_eq!(
        ids,
        [running.simulation_id.as_str(), queued.simulation_id.as_str()]
    );
    common::simulation::call::<volttron::simulation::SimulationStatus>(
        &p,
        "cancel",
        json!([queued.simulation_id]),
    )
    .await
    .unwrap();
    wait_stopped(&p, &queued.simulation_id).await;
    assert_eq!(leftovers(&p), Vec::<String>::new());
    p.shutdown().await;
}
