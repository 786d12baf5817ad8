//! The orchestrator: the state of every simulation, owned by the `platform.simulation`
//! agent and changed only on its turn — its RPCs, the lifecycle and data publications it
//! subscribes to, and the events of its inbox (supervisor exit reports, deployments and
//! stops finished, a deadline tick every 50 ms of wall time), which a task on the edge
//! thread fills from a channel and wakes the agent for. Nothing else touches it, so
//! nothing is locked, and a model's message is handled on its arrival, with no hop
//! between threads beyond the bus's own.
//!
//! | event | effect |
//! |-------|--------|
//! | `start` | checked, kept, deployed at once |
//! | `queue` | checked, kept, deployed when the queued ones before it have ended |
//! | all models `ReadyForProcessing` and started | `ModelsReady`, then `ModelParameters` to each |
//! | all `Parameterized` | step 1 |
//! | all `CalculationsDone` | the next step, or `SimulationDone` and success |
//! | `ErrorOccurred` | failed with the model's message |
//! | a model or companion exits (supervisor report) | failed at once: `model pv-2 exited: Crashed(..)` |
//! | malformed protobuf | failed, naming the message and the model |
//! | deploy deadline passed | failed, naming the models not ready |
//! | step deadline passed (wall clock) | failed, naming the models not done |
//! | `cancel` | cancelled; a queued one leaves the queue |
//!
//! At every end the models get `SimulationDone` and the simulation's supervisor is
//! stopped (each agent's `on_stop` bounded by the platform's shutdown timeout); the
//! status says `stopped: true` once every agent is gone.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::core::{Headers, Publication, Topic, Value};
use crate::platform::Platform;
use crate::platform::endpoint::Endpoint;
use crate::platform::supervision::{ExitReason, Strategy, Supervisor, SupervisorRef};
use crate::simulation::influx::InfluxSink;
use crate::simulation::lifecycle::{self, DataValue};
use crate::simulation::model::ModelSpec;
use crate::simulation::registry::Registry;
use crate::simulation::request::{SimulationRequest, simulation_id};
use crate::simulation::results::{ResultKey, Results};
use crate::simulation::run::{Phase, Run};
use crate::simulation::status::{ModelState, SimulationFiles, SimulationState, SimulationStatus};
use crate::simulation::topics::{self, MODEL, MSO, SO};

/// How often deadlines are checked.
const DEADLINE_TICK: Duration = Duration::from_millis(50);
/// Progress is published at each change of phase and at most this often while stepping.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How often logs past their `keep_logs_hours` are looked for.
const LOG_SWEEP: Duration = Duration::from_secs(60);
/// The most of a model's log `logs` returns.
const LOG_TAIL: usize = 1 << 20;

/// `<dir>/<id>.logs`: the output of a simulation's programs, one file per model.
fn logs_dir(dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    dir.join(format!("{id}.logs"))
}

/// A program's model gets this long to exit after `SimulationDone`, then after SIGINT,
/// then after SIGTERM.
const PROGRAM_GRACE: Duration = Duration::from_secs(5);
/// Finished simulations whose results stay in memory.
const KEEP_RESULTS: usize = 8;

/// What reaches the orchestrator from outside its agent's turn: supervisors' exit
/// reports, deployments and stops finished, the deadline tick.
pub(crate) enum Event {
    Deployed {
        sim: String,
        result: Result<SupervisorRef, String>,
    },
    Exited {
        sim: String,
        name: String,
        reason: ExitReason,
    },
    Stopped {
        sim: String,
        /// What the results sink said, when there is one.
        sink: Option<String>,
    },
    /// Deadlines are checked.
    Tick,
}

/// Events queued for the agent, and whether a wake-up is on its way.
#[derive(Default)]
pub(crate) struct Inbox {
    pub(crate) events: parking_lot::Mutex<VecDeque<Event>>,
    pub(crate) woken: std::sync::atomic::AtomicBool,
}

/// Moves events from the channel into the agent's inbox and wakes the agent with a
/// notification of `wake`; adds a [`Event::Tick`] every [`DEADLINE_TICK`]. Runs on the
/// platform's edge thread until the channel closes.
pub(crate) async fn forward(
    mut rx: mpsc::UnboundedReceiver<Event>,
    inbox: Arc<Inbox>,
    platform: Platform,
    identity: &'static str,
) {
    use std::sync::atomic::Ordering;
    let mut tick = tokio::time::interval(DEADLINE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            event = rx.recv() => match event {
                Some(e) => e,
                None => break,
            },
            _ = tick.tick() => Event::Tick,
        };
        inbox.events.lock().push_back(event);
        if !inbox.woken.swap(true, Ordering::AcqRel) && platform.notify(identity, "wake", ()).is_err() {
            inbox.woken.store(false, Ordering::Release);
        }
    }
}

pub(crate) struct Orchestrator {
    platform: Platform,
    endpoint: Endpoint,
    registry: Registry,
    files: Option<SimulationFiles>,
    sink: Option<InfluxSink>,
    tx: mpsc::UnboundedSender<Event>,
    all: BTreeMap<String, SimulationStatus>,
    queue: VecDeque<String>,
    next_position: u64,
    runs: HashMap<String, Run>,
    finished: VecDeque<(String, Results)>,
    /// Data topics seen, and where their values go.
    data_routes: HashMap<Topic, DataRoute>,
    /// Lifecycle topics seen, and what they are about.
    lifecycle_routes: HashMap<Topic, LifecycleRoute>,
    /// When logs were last swept.
    last_sweep: Instant,
}

/// Which run and model a lifecycle topic is about.
#[derive(Clone)]
struct LifecycleRoute {
    sim: Arc<str>,
    model: usize,
    kind: Kind,
}

/// A lifecycle message from a model.
#[derive(Clone, Copy)]
enum Kind {
    Ready,
    Parameterized,
    Done,
    Error,
    Other,
}

/// Where a data topic's values go.
#[derive(Clone)]
struct DataRoute {
    sim: Arc<str>,
    /// The model index that may publish it.
    model: usize,
    /// Its result key.
    key: u32,
}

impl Orchestrator {
    pub(crate) fn new(
        platform: Platform,
        endpoint: Endpoint,
        registry: Registry,
        files: Option<SimulationFiles>,
        sink: Option<InfluxSink>,
        tx: mpsc::UnboundedSender<Event>,
    ) -> Self {
        let mut o = Orchestrator {
            platform,
            endpoint,
            registry,
            files,
            sink,
            tx,
            all: BTreeMap::new(),
            queue: VecDeque::new(),
            next_position: 0,
            runs: HashMap::new(),
            finished: VecDeque::new(),
            data_routes: HashMap::new(),
            lifecycle_routes: HashMap::new(),
            last_sweep: Instant::now(),
        };
        o.recover();
        o
    }

    /// Reads the kept simulations: the ones that were under way failed by the restart,
    /// the queue runs again in its order.
    fn recover(&mut self) {
        let Some(files) = &self.files else { return };
        let mut queued = Vec::new();
        for mut s in files.load() {
            if s.state == SimulationState::Queued {
                queued.push((s.queue_position.unwrap_or(0), s.simulation_id.clone()));
            } else if !s.state.is_terminal() || !s.stopped {
                if !s.state.is_terminal() {
                    s.state = SimulationState::Failed;
                    s.reason = Some("the platform restarted during the run".into());
                    s.calculation_end_datetime = Some(chrono::Utc::now());
                }
                s.stopped = true;
                s.describe();
                if let Err(e) = files.save(&s) {
                    tracing::warn!("simulation: {e}");
                }
            }
            self.all.insert(s.simulation_id.clone(), s);
        }
        queued.sort();
        self.next_position = queued.last().map_or(0, |(p, _)| p + 1);
        self.queue = queued.into_iter().map(|(_, id)| id).collect();
    }

    /// Handles an event of the inbox.
    pub(crate) fn handle(&mut self, e: Event) {
        match e {
            Event::Deployed { sim, result } => self.deployed(&sim, result),
            Event::Exited { sim, name, reason } => self.exited(&sim, &name, &reason),
            Event::Stopped { sim, sink } => self.stopped(&sim, sink),
            Event::Tick => self.check_deadlines(),
        }
    }

    /// Every simulation, oldest first.
    pub(crate) fn list(&self) -> Vec<SimulationStatus> {
        let mut all: Vec<&String> = self.all.keys().collect();
        all.sort_by(|a, b| self.all[*a].created.cmp(&self.all[*b].created).then(a.cmp(b)));
        all.into_iter().filter_map(|id| self.status(id)).collect()
    }

    /// One simulation.
    pub(crate) fn status_of(&self, id: &str) -> Result<SimulationStatus, String> {
        self.status(id).ok_or_else(|| format!("no simulation {id:?}"))
    }

    fn status(&self, id: &str) -> Option<SimulationStatus> {
        let mut s = self.all.get(id)?.clone();
        if let Some(run) = self.runs.get(id) {
            run.update(&mut s);
        }
        if s.state == SimulationState::Queued {
            s.queue_position = self.queue.iter().position(|q| q == id).map(|p| p as u64 + 1);
        }
        Some(s)
    }

    pub(crate) fn submit(
        &mut self,
        request: SimulationRequest,
        queue: bool,
    ) -> Result<SimulationStatus, String> {
        let plan = request.plan().map_err(|e| e.to_string())?;
        for m in &plan.models {
            if self.registry.service(&m.start_with).is_none() {
                return Err(format!(
                    "service_image_url: {:?} is not a calculation service registered with this platform",
                    m.start_with
                ));
            }
        }
        for a in &request.agents {
            if !self.registry.has_companion(a) {
                return Err(format!(
                    "agents: {a:?} is not an agent registered with this platform"
                ));
            }
        }
        let id = simulation_id(&request.name);
        let mut s = SimulationStatus {
            simulation_id: id.clone(),
            simulation_status: String::new(),
            created: chrono::Utc::now(),
            calculation_start_datetime: None,
            calculation_end_datetime: None,
            calculation_duration: None,
            state: SimulationState::Queued,
            reason: None,
            current_step: 0,
            nr_of_steps: plan.steps,
            models: Vec::new(),
            queue_position: None,
            stopped: false,
            results_sink: None,
            request,
        };
        if queue {
            s.queue_position = Some(self.next_position);
            self.next_position += 1;
        }
        s.describe();
        self.all.insert(id.clone(), s);
        self.save(&id);
        if queue {
            self.queue.push_back(id.clone());
            self.next_from_queue();
        } else {
            self.begin(&id, false);
        }
        self.status(&id).ok_or_else(|| "lost".into())
    }

    /// Starts the queue's head if no queued simulation runs.
    pub(crate) fn next_from_queue(&mut self) {
        if self.runs.values().any(|r| r.from_queue) {
            return;
        }
        if let Some(id) = self.queue.pop_front() {
            self.begin(&id, true);
        }
    }

    /// Deploys simulation `id`.
    fn begin(&mut self, id: &str, from_queue: bool) {
        let Some(s) = self.all.get_mut(id) else { return };
        s.queue_position = None;
        s.calculation_start_datetime = Some(chrono::Utc::now());
        let plan = match s.request.plan() {
            Ok(p) => p,
            Err(e) => return self.end_without_run(id, SimulationState::Failed, Some(e.to_string())),
        };
        let run = match Run::new(id.to_owned(), plan, from_queue) {
            Ok(r) => r,
            Err(e) => return self.end_without_run(id, SimulationState::Failed, Some(e)),
        };
        let spec = match self.supervisor_spec(&run) {
            Ok(spec) => spec,
            Err(e) => return self.end_without_run(id, SimulationState::Failed, Some(e)),
        };
        let deploy = lifecycle::DeployModels {
            simulator_id: SO.into(),
            model_configurations: run
                .plan
                .models
                .iter()
                .map(|m| lifecycle::ModelConfiguration {
                    model_id: m.model_id.clone(),
                    image_url: m.start_with.clone(),
                    environment_variables: Vec::new(),
                })
                .collect(),
            keep_logs_hours: run.plan.request.keep_logs_hours,
        };
        self.publish(
            &topics::about_simulation(SO, MSO, id, "DeployModels"),
            lifecycle::encode(&deploy),
        );
        let mut run = run;
        if let Err(e) = self.launch_programs(&mut run) {
            self.runs.insert(id.to_owned(), run);
            self.fail(id, format!("deployment failed: {e}"));
            if let Some(r) = self.runs.get_mut(id) {
                r.deployed = true;
            }
            self.stop_agents(id);
            return;
        }
        self.runs.insert(id.to_owned(), run);
        self.save(id);
        self.progress(id, true);
        let platform = self.platform.clone();
        let tx = self.tx.clone();
        let sim = id.to_owned();
        actix_rt::spawn(async move {
            let result = platform.supervise(spec).await.map_err(|e| e.to_string());
            let _ = tx.send(Event::Deployed { sim, result });
        });
    }

    fn supervisor_spec(&self, run: &Run) -> Result<crate::platform::supervision::SupervisorSpec, String> {
        let tx = self.tx.clone();
        let sim = run.id.clone();
        let mut b = Supervisor::builder(format!("simulation.{}", run.id))
            .strategy(Strategy::OneForOne)
            .clock(run.clock.clone())
            .on_child_exit(move |name, reason| {
                let _ = tx.send(Event::Exited {
                    sim: sim.clone(),
                    name: name.to_owned(),
                    reason: reason.clone(),
                });
            });
        for (m, plan) in run.models.iter().zip(&run.plan.models) {
            let entry = self
                .registry
                .service(&plan.start_with)
                .ok_or_else(|| format!("{:?} is not registered", plan.start_with))?;
            let spec = ModelSpec {
                simulation_id: run.id.clone(),
                model_id: m.model_id.clone(),
                service: plan.service.clone(),
                identity: m.identity.clone(),
            };
            if let Some(child) = Registry::model_child(entry, &spec)? {
                b = b.child(child);
            }
        }
        for a in &run.plan.request.agents {
            let child = self
                .registry
                .companion_child(a, &run.id)
                .ok_or_else(|| format!("agent {a:?} is not registered"))??;
            b = b.child(child);
        }
        Ok(b.build())
    }

    /// Starts the models that are programs, with DOTS's environment; their exits come
    /// back as [`Event::Exited`].
    fn launch_programs(&self, run: &mut Run) -> Result<(), String> {
        use crate::control::process::{AgentProcess, LaunchSpec};
        let (exits_tx, mut exits) = mpsc::unbounded_channel::<crate::control::process::ExitReport>();
        let dir = self.logs_root();
        let mut any = false;
        for (i, plan) in run.plan.models.iter().enumerate() {
            let Some(crate::simulation::registry::ServiceEntry::Program { command, env }) =
                self.registry.service(&plan.start_with)
            else {
                continue;
            };
            any = true;
            run.models[i].external = true;
            let m = &run.models[i];
            let logs = logs_dir(&dir, &run.id);
            std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
            let mut spec = LaunchSpec::from_command(m.identity.clone(), command.clone(), &dir)
                .ok_or_else(|| format!("service {:?} has an empty command", plan.start_with))?
                .output_file(logs.join(format!("{}.log", m.model_id)))
                .env("SIMULATOR_ID", SO)
                .env("SIMULATION_ID", run.id.clone())
                .env("MODEL_ID", m.model_id.clone())
                .env("CALC_SERVICE_NAME", plan.service.clone())
                .env("LOG_LEVEL", run.plan.request.log_level.to_ascii_uppercase())
                .report_exits(exits_tx.clone());
            for (k, v) in env {
                spec = spec.env(k.clone(), v.clone());
            }
            for v in run
                .plan
                .request
                .calculation_services
                .iter()
                .filter(|s| s.calc_service_name == plan.service)
                .flat_map(|s| &s.additional_env_variable)
            {
                spec = spec.env(v.name.clone(), v.value.clone());
            }
            let process = AgentProcess::launch(&spec).map_err(|e| format!("model {}: {e}", m.model_id))?;
            run.processes.push(std::sync::Arc::new(process));
        }
        if any {
            let tx = self.tx.clone();
            let sim = run.id.clone();
            actix_rt::spawn(async move {
                while let Some(report) = exits.recv().await {
                    let reason = if report.exit.is_clean() {
                        ExitReason::Normal
                    } else {
                        ExitReason::Crashed(format!("the process ended: {}", report.exit))
                    };
                    let _ = tx.send(Event::Exited {
                        sim: sim.clone(),
                        name: report.identity,
                        reason,
                    });
                }
            });
        }
        Ok(())
    }

    fn deployed(&mut self, sim: &str, result: Result<SupervisorRef, String>) {
        let Some(run) = self.runs.get_mut(sim) else {
            // Ended while deploying: stop what started.
            if let Ok(sup) = result {
                actix_rt::spawn(async move { sup.stop().await });
            }
            return;
        };
        match result {
            Ok(sup) => {
                run.supervisor = Some(sup);
                run.deployed = true;
                if run.phase == Phase::Ending {
                    self.stop_agents(sim);
                } else {
                    self.maybe_models_ready(sim);
                }
            }
            Err(e) => {
                run.deployed = true;
                self.fail(sim, format!("deployment failed: {e}"));
            }
        }
    }

    pub(crate) fn lifecycle(&mut self, p: &Publication) {
        let route = match self.lifecycle_routes.get(&p.topic) {
            Some(r) => r.clone(),
            None => match self.lifecycle_route(p) {
                Some(r) => r,
                None => return,
            },
        };
        let sim = &*route.sim;
        let i = route.model;
        let Some(run) = self.runs.get_mut(sim) else { return };
        if !run.models[i].external && p.sender.as_str() != run.models[i].identity {
            tracing::warn!(
                "simulation {sim}: {} sent by {}, not by the model: ignored",
                p.topic,
                p.sender
            );
            return;
        }
        if run.phase == Phase::Ending {
            return;
        }
        macro_rules! decode {
            ($ty:ty, $name:literal) => {
                match lifecycle::decode::<$ty>($name, &p.message) {
                    Ok(m) => m,
                    Err(e) => {
                        let reason = format!("model {}: {e}", run.models[i].model_id);
                        return self.fail(sim, reason);
                    }
                }
            };
        }
        match route.kind {
            Kind::Ready => {
                decode!(lifecycle::ReadyForProcessing, "ReadyForProcessing");
                if run.phase == Phase::Deploying
                    && run.arrive(i, ModelState::Registered, ModelState::Deployed)
                {
                    self.maybe_models_ready(sim);
                }
            }
            Kind::Parameterized => {
                decode!(lifecycle::Parameterized, "Parameterized");
                if run.phase == Phase::Parameterizing
                    && run.arrive(i, ModelState::Deployed, ModelState::Parameterized)
                    && run.pending == 0
                {
                    self.new_step(sim, 1);
                }
            }
            Kind::Done => {
                decode!(lifecycle::CalculationsDone, "CalculationsDone");
                if run.phase == Phase::Stepping
                    && run.arrive(i, ModelState::StepStarted, ModelState::StepFinished)
                    && run.pending == 0
                {
                    let next = run.step + 1;
                    if next > run.plan.steps {
                        self.succeed(sim);
                    } else {
                        self.new_step(sim, next);
                    }
                }
            }
            Kind::Error => {
                let m = decode!(lifecycle::ErrorOccurred, "ErrorOccurred");
                run.models[i].state = ModelState::TerminatedFailed;
                let reason = format!("model {}: {}", run.models[i].model_id, m.error_message);
                self.fail(sim, reason);
            }
            Kind::Other => tracing::debug!("simulation {sim}: {} ignored", p.topic),
        }
    }

    /// Works out which run and model a lifecycle topic is about, the first time it is seen.
    fn lifecycle_route(&mut self, p: &Publication) -> Option<LifecycleRoute> {
        let t = topics::parse_lifecycle(p.topic.as_str())?;
        if t.sender != MODEL || !(t.receiver == SO || t.receiver == MSO) {
            return None;
        }
        let run = self.runs.get(t.simulation)?;
        let model = t.model?;
        let Some(&i) = run.by_model.get(model) else {
            tracing::warn!(
                "simulation {}: {} from unknown model {model:?}",
                t.simulation,
                t.message
            );
            return None;
        };
        let kind = match t.message {
            "ReadyForProcessing" => Kind::Ready,
            "Parameterized" => Kind::Parameterized,
            "CalculationsDone" => Kind::Done,
            "ErrorOccurred" => Kind::Error,
            _ => Kind::Other,
        };
        let route = LifecycleRoute {
            sim: Arc::from(t.simulation),
            model: i,
            kind,
        };
        self.lifecycle_routes.insert(p.topic.clone(), route.clone());
        Some(route)
    }

    fn maybe_models_ready(&mut self, sim: &str) {
        let Some(run) = self.runs.get_mut(sim) else { return };
        if run.phase != Phase::Deploying || run.pending > 0 || !run.deployed {
            return;
        }
        let deadline = run.plan.step_deadline;
        run.enter(Phase::Parameterizing, ModelState::Deployed, deadline);
        let run = &self.runs[sim];
        let calculation_services =
            serde_json::to_value(&run.plan.request.calculation_services).unwrap_or_default();
        let mut messages = Vec::with_capacity(run.models.len());
        for (m, plan) in run.models.iter().zip(&run.plan.models) {
            let environment: Vec<(String, String)> = run
                .plan
                .request
                .calculation_services
                .iter()
                .filter(|s| s.calc_service_name == plan.service)
                .flat_map(|s| {
                    s.additional_env_variable
                        .iter()
                        .map(|v| (v.name.clone(), v.value.clone()))
                })
                .collect();
            let dict = serde_json::json!({
                "simulation_id": sim,
                "simulation_name": run.plan.request.name,
                "model_id": m.model_id,
                "start_timestamp": run.plan.start.timestamp(),
                "time_step_seconds": run.plan.time_step.as_secs(),
                "nr_of_time_steps": run.plan.steps,
                "calculation_services": calculation_services,
                "esdl_base64string": run.plan.esdl.base64(),
                "esdl_ids": plan.esdl_ids,
                "environment": environment,
            });
            messages.push((
                topics::to_model(SO, MODEL, sim, &m.model_id, "ModelParameters"),
                lifecycle::ModelParameters {
                    parameters_dict: dict.to_string(),
                },
            ));
        }
        self.publish(
            &topics::about_simulation(MSO, SO, sim, "ModelsReady"),
            lifecycle::encode(&lifecycle::ModelsReady {}),
        );
        for (topic, m) in messages {
            self.publish(&topic, lifecycle::encode(&m));
        }
        self.save(sim);
        self.progress(sim, true);
    }

    fn new_step(&mut self, sim: &str, n: u64) {
        let Some(run) = self.runs.get_mut(sim) else { return };
        let first = run.phase != Phase::Stepping;
        run.step = n;
        let deadline = run.plan.step_deadline;
        run.enter(Phase::Stepping, ModelState::StepStarted, deadline);
        run.advance_clock(run.plan.time_step * (n - 1) as u32);
        let dict = format!(
            r#"{{"time_step_nr":"{n}","start_time_stamp":{}}}"#,
            run.step_time(n).timestamp()
        );
        let body = lifecycle::encode(&lifecycle::NewStep {
            parameters_dict: dict,
        });
        // One publication reaches every in-process model (they subscribe to it); a
        // program's model gets its own, on DOTS's per-model topic.
        if run.models.iter().any(|m| !m.external)
            && let Err(e) = self
                .endpoint
                .publish("", run.new_step.clone(), Headers::new(), body.clone())
        {
            tracing::warn!("simulation {sim}: NewStep not sent: {e}");
        }
        for m in run.models.iter().filter(|m| m.external) {
            if let Err(e) = self
                .endpoint
                .publish("", m.new_step.clone(), Headers::new(), body.clone())
            {
                tracing::warn!("simulation {sim}: NewStep not sent to {}: {e}", m.model_id);
            }
        }
        if first {
            self.save(sim);
        }
        self.progress(sim, first);
    }

    pub(crate) fn data(&mut self, p: &Publication) {
        let route = match self.data_routes.get(&p.topic) {
            Some(r) => r.clone(),
            None => match self.data_route(p) {
                Some(r) => r,
                None => return,
            },
        };
        let Some(run) = self.runs.get_mut(&*route.sim) else {
            return;
        };
        if run.phase == Phase::Ending {
            return;
        }
        let model = &run.models[route.model];
        if !model.external && p.sender.as_str() != model.identity {
            tracing::warn!(
                "simulation {}: {} from {} ignored (not its model)",
                route.sim,
                p.topic,
                p.sender
            );
            return;
        }
        let v: DataValue = match lifecycle::decode("DataValue", &p.message) {
            Ok(v) => v,
            Err(e) => {
                let reason = format!("model {}: {} ({})", model.model_id, e, p.topic);
                return self.fail(&route.sim, reason);
            }
        };
        if v.time_step_nr != run.step {
            let reason = format!(
                "model {}: data for step {} during step {} ({})",
                model.model_id, v.time_step_nr, run.step, p.topic
            );
            return self.fail(&route.sim, reason);
        }
        let time = run.step_time(v.time_step_nr);
        run.results.push_point(v.time_step_nr, time, route.key, v.value);
    }

    /// Works out where a data topic's values go, the first time it is seen.
    fn data_route(&mut self, p: &Publication) -> Option<DataRoute> {
        let t = topics::parse_data(p.topic.as_str())?;
        let sim = t.simulation.to_owned();
        let run = self.runs.get_mut(&sim)?;
        if run.phase == Phase::Ending {
            return None;
        }
        let Some(&i) = run.by_esdl.get(t.esdl_id) else {
            self.fail(
                &sim,
                format!("data for unknown ESDL object {:?} ({})", t.esdl_id, p.topic),
            );
            return None;
        };
        let sender_ok = run.models[i].external || p.sender.as_str() == run.models[i].identity;
        if !sender_ok || run.plan.models[i].service != t.service {
            tracing::warn!(
                "simulation {sim}: {} from {} ignored (not its model)",
                p.topic,
                p.sender
            );
            return None;
        }
        let object = run.plan.esdl.get(t.esdl_id);
        let key = run.results.key(ResultKey {
            measurement: object.map(|o| o.esdl_type.clone()).unwrap_or_default(),
            simulation_id: sim.clone(),
            model_id: run.models[i].model_id.clone(),
            esdl_id: t.esdl_id.to_owned(),
            esdl_name: object.map(|o| o.name.clone()).unwrap_or_default(),
            field: t.name.to_owned(),
        });
        let route = DataRoute {
            sim: Arc::from(sim.as_str()),
            model: i,
            key,
        };
        self.data_routes.insert(p.topic.clone(), route.clone());
        Some(route)
    }

    fn exited(&mut self, sim: &str, name: &str, reason: &ExitReason) {
        let Some(run) = self.runs.get_mut(sim) else { return };
        let model = run.models.iter_mut().find(|m| m.identity == name);
        if run.phase == Phase::Ending {
            if let Some(m) = model {
                m.state = if reason.is_abnormal() {
                    ModelState::TerminatedFailed
                } else {
                    ModelState::TerminatedSuccessfull
                };
            }
            return;
        }
        let what = match model {
            Some(m) => {
                m.state = ModelState::TerminatedFailed;
                format!("model {}", m.model_id)
            }
            None => format!("agent {name}"),
        };
        let how = match reason {
            ExitReason::Normal => "stopped before the simulation ended".to_owned(),
            other => format!("exited: {other:?}"),
        };
        self.fail(sim, format!("{what} {how}"));
    }

    fn check_deadlines(&mut self) {
        if self.last_sweep.elapsed() >= LOG_SWEEP {
            self.last_sweep = Instant::now();
            self.sweep_logs();
        }
        let now = Instant::now();
        let late: Vec<String> = self
            .runs
            .values()
            .filter(|r| r.phase != Phase::Ending && r.deadline <= now)
            .map(|r| r.id.clone())
            .collect();
        for sim in late {
            let run = &self.runs[&sim];
            let reason = match run.phase {
                Phase::Deploying => {
                    let mut missing: Vec<&str> = run.waiting_for(ModelState::Registered);
                    if !run.deployed {
                        missing.push("(agents still starting)");
                    }
                    format!(
                        "models not ready within {:?}: {}",
                        run.plan.deploy_deadline,
                        missing.join(", ")
                    )
                }
                Phase::Parameterizing => format!(
                    "models not parameterized within {:?}: {}",
                    run.plan.step_deadline,
                    run.waiting_for(ModelState::Deployed).join(", ")
                ),
                Phase::Stepping => format!(
                    "step {} not done within {:?}: {}",
                    run.step,
                    run.plan.step_deadline,
                    run.waiting_for(ModelState::StepStarted).join(", ")
                ),
                Phase::Ending => continue,
            };
            self.fail(&sim, reason);
        }
    }

    pub(crate) fn cancel(&mut self, id: &str) -> Result<SimulationStatus, String> {
        let state = self
            .all
            .get(id)
            .map(|s| s.state)
            .ok_or_else(|| format!("no simulation {id:?}"))?;
        if state.is_terminal() {
            return Err(format!("simulation {id} has already ended ({state:?})"));
        }
        if self.runs.contains_key(id) {
            self.end(id, SimulationState::Cancelled, None);
        } else {
            self.queue.retain(|q| q != id);
            self.end_without_run(id, SimulationState::Cancelled, None);
        }
        self.status(id).ok_or_else(|| "lost".into())
    }

    pub(crate) fn results(&mut self, id: &str) -> Result<Results, String> {
        if let Some(run) = self.runs.get(id) {
            return Ok(run.results.clone());
        }
        if let Some((_, r)) = self.finished.iter().find(|(f, _)| f == id) {
            return Ok(r.clone());
        }
        if !self.all.contains_key(id) {
            return Err(format!("no simulation {id:?}"));
        }
        let Some(files) = &self.files else {
            return Ok(Results::default());
        };
        let path = files.results_path(id);
        match std::fs::read(&path) {
            Ok(b) => Results::from_csv(&b).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Results::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    fn succeed(&mut self, sim: &str) {
        if let Some(run) = self.runs.get(sim) {
            run.advance_clock(run.plan.time_step * run.plan.steps as u32);
        }
        self.end(sim, SimulationState::Succeeded, None);
    }

    fn fail(&mut self, sim: &str, reason: String) {
        tracing::warn!("simulation {sim} failed: {reason}");
        self.end(sim, SimulationState::Failed, Some(reason));
    }

    /// Ends a run: `SimulationDone` to the models, its agents stopped.
    fn end(&mut self, sim: &str, state: SimulationState, reason: Option<String>) {
        let Some(run) = self.runs.get_mut(sim) else { return };
        if run.phase == Phase::Ending {
            return;
        }
        run.phase = Phase::Ending;
        if let Some(s) = self.all.get_mut(sim) {
            run.update(s);
            s.state = state;
            s.reason = reason;
            s.calculation_end_datetime = Some(chrono::Utc::now());
            s.calculation_duration = Some(run.started.elapsed().as_secs_f64());
            s.describe();
        }
        let body = lifecycle::encode(&lifecycle::SimulationDone {});
        let topics: Vec<Topic> = run.models.iter().map(|m| m.done.clone()).collect();
        for t in topics {
            let _ = self.endpoint.publish("", t, Headers::new(), body.clone());
        }
        self.write_results(sim);
        self.save(sim);
        self.progress(sim, true);
        if self.runs.get(sim).is_some_and(|r| r.deployed) {
            self.stop_agents(sim);
        }
    }

    fn stop_agents(&mut self, sim: &str) {
        let Some(run) = self.runs.get_mut(sim) else { return };
        let sup = run.supervisor.take();
        let processes = std::mem::take(&mut run.processes);
        // Results go to the sink once the run has ended: a copy, written off this thread.
        let sink = self.sink.clone().map(|s| (s, run.results.clone()));
        let tx = self.tx.clone();
        let sim = sim.to_owned();
        actix_rt::spawn(async move {
            // A program stops by itself after SimulationDone, as DOTS's models do; one
            // that has not within the grace is signalled.
            let programs = futures::future::join_all(processes.iter().map(|p| async move {
                if tokio::time::timeout(PROGRAM_GRACE, p.wait()).await.is_err() {
                    p.stop(PROGRAM_GRACE).await;
                }
            }));
            let agents = async {
                if let Some(sup) = sup {
                    sup.stop().await;
                }
            };
            futures::future::join(programs, agents).await;
            let sink = match sink {
                Some((sink, results)) => {
                    let (done, written) = oneshot::channel();
                    let name = sink.describe();
                    let spawned =
                        std::thread::Builder::new()
                            .name("simulation-sink".into())
                            .spawn(move || {
                                let _ = done.send(sink.write(&results));
                            });
                    Some(match spawned {
                        Err(e) => format!("{name}: error: no thread: {e}"),
                        Ok(_) => match written.await {
                            Ok(Ok(n)) => format!("{name}: {n} points written"),
                            Ok(Err(e)) => format!("{name}: error: {e}"),
                            Err(_) => format!("{name}: error: the writer stopped"),
                        },
                    })
                }
                None => None,
            };
            let _ = tx.send(Event::Stopped { sim, sink });
        });
    }

    fn stopped(&mut self, sim: &str, sink: Option<String>) {
        let Some(mut run) = self.runs.remove(sim) else {
            return;
        };
        if let Some(s) = self.all.get_mut(sim) {
            run.update(s);
            s.stopped = true;
            if let Some(text) = sink {
                if text.contains(": error: ") {
                    tracing::warn!("simulation {sim}: results not stored: {text}");
                }
                s.results_sink = Some(text);
            }
            s.describe();
        }
        self.finished
            .push_back((sim.to_owned(), std::mem::take(&mut run.results)));
        while self.finished.len() > KEEP_RESULTS {
            self.finished.pop_front();
        }
        self.save(sim);
        self.progress(sim, true);
        if self
            .all
            .get(sim)
            .is_some_and(|s| s.request.keep_logs_hours <= 0.0)
        {
            self.remove_logs(sim);
        }
        self.next_from_queue();
    }

    /// The directory of the programs' logs.
    fn logs_root(&self) -> std::path::PathBuf {
        match &self.files {
            Some(f) => f.dir().to_owned(),
            None => std::env::temp_dir(),
        }
    }

    /// Removes the logs of `sim`.
    fn remove_logs(&mut self, sim: &str) {
        let dir = logs_dir(&self.logs_root(), sim);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::debug!("simulation {sim}: logs removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("simulation {sim}: {}: {e}", dir.display()),
        }
    }

    /// Removes the logs of the simulations that ended more than `keep_logs_hours` ago.
    fn sweep_logs(&mut self) {
        let now = chrono::Utc::now();
        let old: Vec<String> = self
            .all
            .values()
            .filter(|s| s.stopped)
            .filter(|s| {
                s.calculation_end_datetime.is_some_and(|end| {
                    let keep = chrono::Duration::seconds((s.request.keep_logs_hours * 3600.0) as i64);
                    end + keep <= now
                })
            })
            .map(|s| s.simulation_id.clone())
            .filter(|id| logs_dir(&self.logs_root(), id).exists())
            .collect();
        for id in old {
            self.remove_logs(&id);
        }
    }

    /// The programs' logs of `id`, by model (the last [`LOG_TAIL`] bytes of each); empty
    /// once `keep_logs_hours` have passed.
    pub(crate) fn logs(&self, id: &str) -> Result<BTreeMap<String, String>, String> {
        if !self.all.contains_key(id) {
            return Err(format!("no simulation {id:?}"));
        }
        let dir = logs_dir(&self.logs_root(), id);
        let mut logs = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(logs);
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(model) = name.strip_suffix(".log") else {
                continue;
            };
            let bytes = std::fs::read(e.path()).map_err(|e| format!("{}: {e}", dir.display()))?;
            let tail = &bytes[bytes.len().saturating_sub(LOG_TAIL)..];
            logs.insert(model.to_owned(), String::from_utf8_lossy(tail).into_owned());
        }
        Ok(logs)
    }

    /// Ends a simulation that has no run (queued, or refused at deployment).
    fn end_without_run(&mut self, id: &str, state: SimulationState, reason: Option<String>) {
        if let Some(s) = self.all.get_mut(id) {
            s.state = state;
            s.reason = reason;
            s.queue_position = None;
            s.stopped = true;
            s.calculation_end_datetime = Some(chrono::Utc::now());
            s.describe();
        }
        self.save(id);
        self.progress(id, true);
    }

    fn write_results(&mut self, sim: &str) {
        let (Some(files), Some(run)) = (&self.files, self.runs.get_mut(sim)) else {
            return;
        };
        let path = files.results_path(sim);
        match run.results.to_csv() {
            Ok(csv) => {
                if let Err(e) = files.write(&path, &csv) {
                    tracing::warn!("simulation {sim}: results not written: {e}");
                }
            }
            Err(e) => tracing::warn!("simulation {sim}: results not written: {e}"),
        }
    }

    fn save(&mut self, id: &str) {
        let (Some(files), Some(s)) = (&self.files, self.status(id)) else {
            return;
        };
        if let Err(e) = files.save(&s) {
            tracing::warn!("simulation: {e}");
        }
    }

    /// Publishes `simulation/<id>/progress` (always when `now`, else at most every
    /// [`PROGRESS_EVERY`]).
    fn progress(&mut self, id: &str, now: bool) {
        if let Some(run) = self.runs.get_mut(id) {
            if !now && run.last_progress.elapsed() < PROGRESS_EVERY {
                return;
            }
            run.last_progress = Instant::now();
        }
        let Some(s) = self.status(id) else { return };
        let message = serde_json::json!({
            "simulation_id": s.simulation_id,
            "state": s.state,
            "simulation_status": s.simulation_status,
            "current_step": s.current_step,
            "nr_of_steps": s.nr_of_steps,
            "reason": s.reason,
            "stopped": s.stopped,
            "models": s.models,
        });
        self.publish(&topics::progress(id), Value::from(message));
    }

    fn publish(&self, topic: &str, message: Value) {
        match Topic::new(topic) {
            Ok(t) => {
                if let Err(e) = self.endpoint.publish("", t, Headers::new(), message) {
                    tracing::warn!("simulation: {topic} not published: {e}");
                }
            }
            Err(e) => tracing::warn!("simulation: {topic}: {e}"),
        }
    }
}
