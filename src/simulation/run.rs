//! One simulation under way: its models, its clock, the step barrier and its deadline.
//!
//! The barrier counts the models that still owe the message the phase waits for
//! (`ReadyForProcessing`, `Parameterized`, `CalculationsDone`); the phase moves on when
//! the count reaches zero, and the simulated time with it. Messages to the models go out
//! in model order (service, then number) — `NewStep` to the in-process models as one
//! publication on `/lifecycle/dots-so/model/<sim>/NewStep` — so two runs of the same simulation send the
//! same messages in the same order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::core::Topic;
use crate::platform::clock::Clock;
use crate::platform::supervision::SupervisorRef;
use crate::simulation::model::model_identity;
use crate::simulation::request::SimulationPlan;
use crate::simulation::results::Results;
use crate::simulation::status::{ModelState, ModelStatus, SimulationState, SimulationStatus};
use crate::simulation::topics::{self, MODEL, SO};

/// What the run waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Models starting and sending `ReadyForProcessing`.
    Deploying,
    /// Models sending `Parameterized`.
    Parameterizing,
    /// Models sending `CalculationsDone` for `step`.
    Stepping,
    /// Over: its agents are being stopped.
    Ending,
}

pub(crate) struct ModelRun {
    pub(crate) model_id: String,
    pub(crate) identity: String,
    pub(crate) state: ModelState,
    pub(crate) new_step: Topic,
    pub(crate) done: Topic,
    /// A program's model: its messages are taken from any sender.
    pub(crate) external: bool,
}

pub(crate) struct Run {
    pub(crate) id: String,
    pub(crate) plan: SimulationPlan,
    pub(crate) clock: Clock,
    pub(crate) phase: Phase,
    pub(crate) models: Vec<ModelRun>,
    pub(crate) by_model: HashMap<String, usize>,
    /// ESDL id → the model that calculates it.
    pub(crate) by_esdl: HashMap<String, usize>,
    /// Models that still owe this phase's message.
    pub(crate) pending: usize,
    /// Whether `supervise` has returned (all agents started).
    pub(crate) deployed: bool,
    pub(crate) step: u64,
    pub(crate) deadline: Instant,
    pub(crate) supervisor: Option<SupervisorRef>,
    pub(crate) results: Results,
    pub(crate) started: Instant,
    pub(crate) last_progress: Instant,
    /// `/lifecycle/dots-so/model/<sim>/NewStep`: the step for every in-process model.
    pub(crate) new_step: Topic,
    /// Started from the queue (the next queued one waits for it).
    pub(crate) from_queue: bool,
    /// The models that are programs.
    pub(crate) processes: Vec<std::sync::Arc<crate::control::process::AgentProcess>>,
}

impl Run {
    pub(crate) fn new(id: String, plan: SimulationPlan, from_queue: bool) -> Result<Self, String> {
        let now = Instant::now();
        let mut models = Vec::with_capacity(plan.models.len());
        let mut by_model = HashMap::new();
        let mut by_esdl = HashMap::new();
        for (i, m) in plan.models.iter().enumerate() {
            let topic = |msg: &str| {
                Topic::new(topics::to_model(SO, MODEL, &id, &m.model_id, msg)).map_err(|e| e.to_string())
            };
            models.push(ModelRun {
                model_id: m.model_id.clone(),
                identity: model_identity(&id, &m.model_id),
                state: ModelState::Registered,
                new_step: topic("NewStep")?,
                done: topic("SimulationDone")?,
                external: false,
            });
            by_model.insert(m.model_id.clone(), i);
            for e in &m.esdl_ids {
                by_esdl.insert(e.clone(), i);
            }
        }
        let new_step =
            Topic::new(topics::about_simulation(SO, MODEL, &id, "NewStep")).map_err(|e| e.to_string())?;
        Ok(Run {
            new_step,
            clock: Clock::virtual_at(plan.start),
            pending: models.len(),
            deadline: now + plan.deploy_deadline,
            id,
            plan,
            phase: Phase::Deploying,
            models,
            by_model,
            by_esdl,
            deployed: false,
            step: 0,
            supervisor: None,
            results: Results::default(),
            started: now,
            last_progress: now,
            from_queue,
            processes: Vec::new(),
        })
    }

    /// The simulated start of step `n` (from 1): `start + (n - 1) × time step`.
    pub(crate) fn step_time(&self, n: u64) -> DateTime<Utc> {
        let dt = self.plan.time_step.as_secs() as i64;
        self.plan.start + chrono::Duration::seconds(dt.saturating_mul(n.saturating_sub(1) as i64))
    }

    /// Moves the simulation's clock to `elapsed` since the start, firing its agents'
    /// timers due by then in deadline order.
    pub(crate) fn advance_clock(&self, elapsed: Duration) {
        while self.clock.fire_one_due(elapsed) {}
        self.clock.set_elapsed(elapsed);
    }

    /// Every model enters `state`; the barrier waits for all of them again.
    pub(crate) fn enter(&mut self, phase: Phase, state: ModelState, deadline: Duration) {
        self.phase = phase;
        for m in &mut self.models {
            m.state = state;
        }
        self.pending = self.models.len();
        self.deadline = Instant::now() + deadline;
    }

    /// Marks model `i` as having sent what the phase waits for (`from` is the state it
    /// must be in, `to` the state it goes to); true if it counted.
    pub(crate) fn arrive(&mut self, i: usize, from: ModelState, to: ModelState) -> bool {
        let m = &mut self.models[i];
        if m.state != from {
            return false;
        }
        m.state = to;
        self.pending -= 1;
        true
    }

    /// The models still owed, by id.
    pub(crate) fn waiting_for(&self, state: ModelState) -> Vec<&str> {
        self.models
            .iter()
            .filter(|m| m.state == state)
            .map(|m| m.model_id.as_str())
            .collect()
    }

    /// Writes the run's state into its status.
    pub(crate) fn update(&self, s: &mut SimulationStatus) {
        s.current_step = self.step;
        s.models = self
            .models
            .iter()
            .zip(&self.plan.models)
            .map(|(m, p)| ModelStatus {
                model_id: m.model_id.clone(),
                service: p.service.clone(),
                state: m.state,
            })
            .collect();
        if !s.state.is_terminal() {
            s.state = match self.phase {
                Phase::Deploying => SimulationState::Deploying,
                Phase::Parameterizing => SimulationState::Parameterizing,
                Phase::Stepping | Phase::Ending => SimulationState::Running,
            };
        }
        s.describe();
    }
}
