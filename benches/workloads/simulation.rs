//! The simulation orchestrator's figures (feature `simulation`), with a raw barrier in
//! the same run: [`run`] returns them as `(name, value, unit)`.
//!
//! | figure | how it is measured |
//! |--------|--------------------|
//! | `simulation.steps_per_s` | a platform (`agent_threads(2)`, no home) with `platform.simulation`; one simulation of 100 in-process models, one per ESDL object: 50 sources (each outputs one value per step) and 50 sinks (each waits for its source's value, outputs one); N steps; steps / (first `NewStep` to `SimulationDone`, seen by an observer subscribed to the models' lifecycle topics: 1 message a step); median of the runs |
//! | `simulation.start_to_first_step_ms` | the same runs: from the `start` call to the first `NewStep` (deploying 100 agents, `ReadyForProcessing`, `ModelParameters` with the ESDL, `Parameterized`); median |
//! | `baseline.mpsc_barrier_steps_per_s` | the same shape without the platform: 100 tokio tasks on a 2-thread runtime, a coordinator sends each its step over a tokio mpsc channel, each source sends its value to its sink's channel, every task answers on the coordinator's channel; steps / time; median |
//! | `simulation.barrier_ratio` | `baseline.mpsc_barrier_steps_per_s` / `simulation.steps_per_s` (what the bus, protobuf and the orchestrator cost per step) |

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use parking_lot::Mutex;
use volttron::prelude::*;

use super::median;
use volttron::simulation::{
    IDENTITY, Input, Model, ModelError, ModelSetup, SimulationService, SimulationStatus, Step,
};

/// Models of the figure: half sources, half sinks.
pub(crate) const MODELS: usize = 100;

/// Outputs one value per step.
struct Source(String);

impl Model for Source {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        self.0 = setup.esdl_ids[0].clone();
        Ok(Vec::new())
    }

    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
        let v = step.number() as f64;
        let id = std::mem::take(&mut self.0);
        step.output(&id, "v", v);
        self.0 = id;
        Ok(())
    }
}

/// Waits for its source's value; outputs twice it.
struct Sink(String, Vec<Input>);

impl Model for Sink {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        self.0 = setup.esdl_ids[0].clone();
        let o = setup
            .esdl
            .get(&self.0)
            .ok_or_else(|| ModelError::new("no object"))?;
        self.1 = o.connected.iter().map(|c| Input::new("source", c, "v")).collect();
        Ok(self.1.clone())
    }

    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
        let v: f64 = step.inputs().map(|(_, v)| v).sum();
        let id = std::mem::take(&mut self.0);
        step.output(&id, "v", 2.0 * v);
        self.0 = id;
        Ok(())
    }
}

fn esdl(pairs: usize) -> String {
    let mut assets = String::new();
    for i in 0..pairs {
        assets.push_str(&format!(
            r#"<asset xsi:type="esdl:Source" id="s{i}"><port xsi:type="esdl:OutPort" id="s{i}o" connectedTo="k{i}i"/></asset><asset xsi:type="esdl:Sink" id="k{i}"><port xsi:type="esdl:InPort" id="k{i}i" connectedTo="s{i}o"/></asset>"#
        ));
    }
    let xml = format!(
        r#"<esdl:EnergySystem xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:esdl="http://www.tno.nl/esdl" id="bench">{assets}</esdl:EnergySystem>"#
    );
    base64::engine::general_purpose::STANDARD.encode(xml)
}

/// Times seen by the observer.
#[derive(Default)]
struct Seen {
    first_step: Option<Instant>,
    done: Option<Instant>,
}

/// Subscribed to the models' lifecycle: notes the first `NewStep` and one model's
/// `SimulationDone`.
struct Observer {
    seen: Arc<Mutex<Seen>>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

#[volttron::agent]
impl Observer {
    #[subscribe("/lifecycle/dots-so/model/")]
    fn heard(&mut self, msg: &Publication) {
        let t = msg.topic.as_str();
        let mut s = self.seen.lock();
        // NewStep: one publication for every in-process model.
        if t.ends_with("/NewStep") && s.first_step.is_none() {
            s.first_step = Some(Instant::now());
        } else if t.ends_with("/source-1/SimulationDone") {
            s.done = Some(Instant::now());
            if let Some(tx) = self.done.take() {
                let _ = tx.send(());
            }
        }
    }
}

/// One simulation of `steps` steps: (steps/s, ms from `start` to the first step).
fn one_run(steps: u64) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let service = SimulationService::new()
            .model("source", |_| Source(String::new()))
            .model("sink", |_| Sink(String::new(), Vec::new()));
        let platform = Platform::builder()
            .agent_threads(2)
            .services(false)
            .unix_socket(false)
            .service(service)
            .start()
            .await
            .expect("platform");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        platform
            .spawn(
                "bench.observer",
                Observer {
                    seen: seen.clone(),
                    done: Some(tx),
                },
            )
            .await
            .expect("observer");
        let request = serde_json::json!({
            "name": "bench",
            "start_date": "2024-01-01 00:00:00",
            "time_step_seconds": 60,
            "nr_of_time_steps": steps,
            "max_step_calc_time_minutes": 1,
            "calculation_services": [
                {"esdl_type": "Source", "calc_service_name": "source", "service_image_url": "source"},
                {"esdl_type": "Sink", "calc_service_name": "sink", "service_image_url": "sink"},
            ],
            "esdl_base64string": esdl(MODELS / 2),
        });
        let began = Instant::now();
        let s: SimulationStatus = platform
            .call(IDENTITY, "start", vec![Value::from(request)])
            .returning()
            .await
            .expect("start");
        tokio::time::timeout(Duration::from_secs(600), rx)
            .await
            .expect("the simulation ends")
            .expect("observer");
        let s: SimulationStatus = platform
            .call(IDENTITY, "status", vec![Value::from(s.simulation_id)])
            .returning()
            .await
            .expect("status");
        assert_eq!(s.reason, None, "the bench simulation failed");
        let (first, done) = {
            let seen = seen.lock();
            (seen.first_step.expect("a first step"), seen.done.expect("done"))
        };
        platform.shutdown().await;
        (
            steps as f64 / (done - first).as_secs_f64(),
            (first - began).as_secs_f64() * 1e3,
        )
    })
}

/// The raw barrier: steps/s of `steps` steps over [`MODELS`] tokio tasks.
fn mpsc_barrier(steps: u64) -> f64 {
    use tokio::sync::mpsc;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pairs = MODELS / 2;
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, f64)>();
        let mut step_txs = Vec::new();
        let mut sink_txs = Vec::new();
        let mut sink_rxs = Vec::new();
        for _ in 0..pairs {
            let (tx, rx) = mpsc::unbounded_channel::<(u64, f64)>();
            sink_txs.push(tx);
            sink_rxs.push(rx);
        }
        for (i, sink_tx) in sink_txs.into_iter().enumerate() {
            let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
            step_txs.push(tx);
            let done = done_tx.clone();
            tokio::spawn(async move {
                while let Some(n) = rx.recv().await {
                    let _ = sink_tx.send((n, n as f64));
                    let _ = done.send((i, n as f64));
                }
            });
        }
        for (i, mut values) in sink_rxs.into_iter().enumerate() {
            let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
            step_txs.push(tx);
            let done = done_tx.clone();
            tokio::spawn(async move {
                while let Some(n) = rx.recv().await {
                    let (m, v) = values.recv().await.expect("a value");
                    assert_eq!(m, n);
                    let _ = done.send((pairs + i, 2.0 * v));
                }
            });
        }
        let began = Instant::now();
        for n in 1..=steps {
            for tx in &step_txs {
                let _ = tx.send(n);
            }
            for _ in 0..MODELS {
                done_rx.recv().await.expect("done");
            }
        }
        steps as f64 / began.elapsed().as_secs_f64()
    })
}

/// The figures of the module docs.
pub(crate) fn run(runs: usize, quick: bool) -> Vec<(&'static str, f64, &'static str)> {
    let steps = if quick { 1_000 } else { 5_000 };
    let mut rates = Vec::new();
    let mut firsts = Vec::new();
    let mut raws = Vec::new();
    // A warm-up run of each, then the runs interleaved.
    let _ = one_run(steps / 10);
    let _ = mpsc_barrier(steps / 10);
    for _ in 0..runs {
        let (rate, first) = one_run(steps);
        eprintln!("[perf] simulation run: {rate:.0} steps/s, first step after {first:.1} ms");
        rates.push(rate);
        firsts.push(first);
        raws.push(mpsc_barrier(steps));
    }
    let (rate, raw) = (median(rates), median(raws));
    vec![
        ("simulation.steps_per_s", rate, "steps/s"),
        ("simulation.start_to_first_step_ms", median(firsts), "ms"),
        ("baseline.mpsc_barrier_steps_per_s", raw, "steps/s"),
        ("simulation.barrier_ratio", raw / rate, "ratio"),
    ]
}
