//! Calculation services written in Rust: a [`Model`] is the calculation, and the
//! platform runs each model of a simulation as an agent that speaks the lifecycle
//! protocol for it.
//!
//! | lifecycle message received | what the model agent does |
//! |----------------------------|---------------------------|
//! | (its start) | subscribes to its inbox, sends `ReadyForProcessing` |
//! | `ModelParameters` | [`Model::parameterize`] with the [`ModelSetup`]; subscribes to the [`Input`]s it returns; sends `Parameterized` |
//! | `NewStep` (on `/lifecycle/dots-so/model/<sim>/NewStep`, one publication for every in-process model, or its own topic) | waits for one value of every input for that step, then [`Model::step`]; publishes the step's outputs as data, then `CalculationsDone` |
//! | `SimulationDone` | stops (a normal exit) |
//! | an error from the model, a bad message | sends `ErrorOccurred` with the reason: the simulation ends |
//!
//! A model that panics is an agent that crashed: its supervisor tells the orchestrator,
//! which fails the simulation at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use crate::agent::AgentContext;
use crate::core::{Publication, Topic};
use crate::simulation::esdl::Esdl;
use crate::simulation::lifecycle::{self, DataValue};
use crate::simulation::topics::{self, MODEL, MSO, SO};

/// Why a model could not go on; the simulation ends with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

impl ModelError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ModelError(message.into())
    }
}

/// A value the model waits for in every step: output `name` of ESDL object `esdl_id`,
/// calculated by service `service`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Input {
    /// The producing service's `calc_service_name`.
    pub service: String,
    /// The ESDL object.
    pub esdl_id: String,
    /// The output's name.
    pub name: String,
}

impl Input {
    /// Output `name` of `esdl_id` from `service`.
    pub fn new(service: impl Into<String>, esdl_id: impl Into<String>, name: impl Into<String>) -> Self {
        Input {
            service: service.into(),
            esdl_id: esdl_id.into(),
            name: name.into(),
        }
    }
}

/// What a model is told before the first step (DOTS's `ModelParameters`).
#[derive(Debug, Clone)]
pub struct ModelSetup {
    /// The simulation's id.
    pub simulation_id: String,
    /// The simulation's name.
    pub simulation_name: String,
    /// This model's id (`<service>-<i>`).
    pub model_id: String,
    /// Simulated start.
    pub start: DateTime<Utc>,
    /// Simulated seconds per step.
    pub time_step_seconds: u64,
    /// Number of steps.
    pub steps: u64,
    /// The ESDL objects this model calculates.
    pub esdl_ids: Vec<String>,
    /// The whole energy system.
    pub esdl: Esdl,
    /// The calculation services of the simulation, as the request gave them (JSON).
    pub calculation_services: serde_json::Value,
    /// The service's `additional_env_variable`s.
    pub environment: Vec<(String, String)>,
}

/// One step, as a model sees it.
pub struct Step<'a> {
    number: u64,
    time: DateTime<Utc>,
    inputs: &'a [Input],
    values: &'a [Option<f64>],
    outputs: &'a mut Vec<(Topic, f64)>,
    topics: &'a mut OutputTopics,
    ctx: &'a AgentContext,
}

/// The data topics of a model's outputs, made once each.
struct OutputTopics {
    service: String,
    simulation: String,
    /// ESDL id → output name → topic.
    by_object: HashMap<String, HashMap<String, Topic>>,
    /// The first output that is not a topic, this step.
    error: Option<ModelError>,
}

impl OutputTopics {
    fn topic(&mut self, esdl_id: &str, name: &str) -> Option<Topic> {
        if let Some(t) = self.by_object.get(esdl_id).and_then(|m| m.get(name)) {
            return Some(t.clone());
        }
        match Topic::new(topics::data(&self.service, &self.simulation, esdl_id, name)) {
            Ok(t) => {
                self.by_object
                    .entry(esdl_id.to_owned())
                    .or_default()
                    .insert(name.to_owned(), t.clone());
                Some(t)
            }
            Err(e) => {
                self.error
                    .get_or_insert_with(|| ModelError::new(format!("output {esdl_id}/{name}: {e}")));
                None
            }
        }
    }
}

impl<'a> Step<'a> {
    /// The step's number, from 1.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The simulated time at the step's start (also `ctx().now()`).
    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }

    /// The value of an input declared by [`Model::parameterize`].
    pub fn input(&self, service: &str, esdl_id: &str, name: &str) -> Option<f64> {
        let i = self
            .inputs
            .iter()
            .position(|x| x.service == service && x.esdl_id == esdl_id && x.name == name)?;
        self.values[i]
    }

    /// Every input with its value, in the order `parameterize` declared them.
    pub fn inputs(&self) -> impl Iterator<Item = (&'a Input, f64)> + 'a {
        let values = self.values;
        self.inputs
            .iter()
            .zip(values)
            .map(|(i, v)| (i, v.unwrap_or(f64::NAN)))
    }

    /// Sets output `name` of `esdl_id` for this step: published as data when the step
    /// ends, and stored as the simulation's result.
    pub fn output(&mut self, esdl_id: &str, name: &str, value: f64) {
        if let Some(topic) = self.topics.topic(esdl_id, name) {
            self.outputs.push((topic, value));
        }
    }

    /// The model agent's context: its clock is the simulation's.
    pub fn ctx(&self) -> &'a AgentContext {
        self.ctx
    }
}

/// A calculation: one model of a calculation service.
///
/// ```
/// use volttron::simulation::{Input, Model, ModelError, ModelSetup, Step};
///
/// /// Net power of a grid connection: the sum of the PV output connected to it.
/// #[derive(Default)]
/// struct Grid {
///     ids: Vec<String>,
///     pv: Vec<Input>,
/// }
///
/// impl Model for Grid {
///     fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
///         self.ids = setup.esdl_ids.clone();
///         for id in &self.ids {
///             let o = setup.esdl.get(id).ok_or_else(|| ModelError::new("unknown id"))?;
///             self.pv.extend(o.connected.iter().map(|pv| Input::new("pv", pv, "power")));
///         }
///         Ok(self.pv.clone())
///     }
///
///     fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
///         let total: f64 = step.inputs().map(|(_, v)| v).sum();
///         for id in &self.ids {
///             step.output(id, "net_power", -total);
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Model: Send + 'static {
    /// Reads the simulation's parameters; returns the inputs every step waits for.
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError>;

    /// Calculates one step from its inputs, setting outputs with [`Step::output`].
    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError>;
}

/// What a registered service's factory is told about the model it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// The simulation.
    pub simulation_id: String,
    /// The model's id.
    pub model_id: String,
    /// Its service's name.
    pub service: String,
    /// Its agent identity (`simulation.<simulation>.<model>`).
    pub identity: String,
}

/// The agent identity of a model.
pub fn model_identity(simulation: &str, model: &str) -> String {
    format!("simulation.{simulation}.{model}")
}

#[derive(Deserialize)]
struct Parameters {
    simulation_id: String,
    simulation_name: String,
    model_id: String,
    start_timestamp: i64,
    time_step_seconds: u64,
    nr_of_time_steps: u64,
    esdl_base64string: String,
    esdl_ids: Vec<String>,
    #[serde(default)]
    calculation_services: serde_json::Value,
    #[serde(default)]
    environment: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct StepParameters {
    time_step_nr: String,
    start_time_stamp: i64,
}

/// Runs a [`Model`] as an agent (see the module docs).
pub(crate) struct ModelAgent {
    spec: ModelSpec,
    model: Box<dyn Model>,
    inputs: Arc<[Input]>,
    /// Data topic → input index.
    input_topics: HashMap<String, usize>,
    /// The step under way: number and simulated start.
    current: Option<(u64, DateTime<Utc>)>,
    /// Values received per step (the next step's may arrive first) and how many.
    received: BTreeMap<u64, (Vec<Option<f64>>, usize)>,
    out_topics: OutputTopics,
    /// The step's outputs (kept between steps for its capacity).
    outputs: Vec<(Topic, f64)>,
    done: Topic,
}

impl ModelAgent {
    pub(crate) fn new(spec: ModelSpec, model: Box<dyn Model>) -> Self {
        let done = Topic::new(topics::to_model(
            MODEL,
            SO,
            &spec.simulation_id,
            &spec.model_id,
            "CalculationsDone",
        ))
        .expect("ids are checked topic levels");
        let out_topics = OutputTopics {
            service: spec.service.clone(),
            simulation: spec.simulation_id.clone(),
            by_object: HashMap::new(),
            error: None,
        };
        ModelAgent {
            spec,
            model,
            inputs: Arc::from(Vec::new()),
            input_topics: HashMap::new(),
            current: None,
            received: BTreeMap::new(),
            out_topics,
            outputs: Vec::new(),
            done,
        }
    }

    fn send(&self, ctx: &AgentContext, to: &str, message: &str, body: crate::core::Value) {
        let topic = topics::to_model(MODEL, to, &self.spec.simulation_id, &self.spec.model_id, message);
        if let Err(e) = ctx.publish(topic, body) {
            tracing::warn!("{}: {message} not sent: {e}", self.spec.identity);
        }
    }

    fn fail(&self, ctx: &AgentContext, reason: impl std::fmt::Display) {
        let m = lifecycle::ErrorOccurred {
            error_message: reason.to_string(),
        };
        self.send(ctx, SO, "ErrorOccurred", lifecycle::encode(&m));
    }

    fn inbox(&mut self, ctx: &AgentContext, msg: &Publication) {
        let Some(t) = topics::parse_lifecycle(msg.topic.as_str()) else {
            return;
        };
        let result = match t.message {
            "ModelParameters" => self.parameterize(ctx, msg),
            "NewStep" => self.new_step(ctx, msg),
            "SimulationDone" => {
                ctx.stop();
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.fail(ctx, e);
        }
    }

    fn parameterize(&mut self, ctx: &AgentContext, msg: &Publication) -> Result<(), ModelError> {
        let m: lifecycle::ModelParameters =
            lifecycle::decode("ModelParameters", &msg.message).map_err(|e| ModelError::new(e.to_string()))?;
        let p: Parameters = serde_json::from_str(&m.parameters_dict)
            .map_err(|e| ModelError::new(format!("ModelParameters: {e}")))?;
        let setup = ModelSetup {
            start: Utc
                .timestamp_opt(p.start_timestamp, 0)
                .single()
                .ok_or_else(|| ModelError::new("ModelParameters: start_timestamp out of range"))?,
            esdl: Esdl::from_base64(&p.esdl_base64string).map_err(|e| ModelError::new(e.to_string()))?,
            simulation_id: p.simulation_id,
            simulation_name: p.simulation_name,
            model_id: p.model_id,
            time_step_seconds: p.time_step_seconds,
            steps: p.nr_of_time_steps,
            esdl_ids: p.esdl_ids,
            calculation_services: p.calculation_services,
            environment: p.environment,
        };
        let inputs = self.model.parameterize(&setup)?;
        let mut prefixes = std::collections::BTreeSet::new();
        self.input_topics.clear();
        for (i, input) in inputs.iter().enumerate() {
            let topic = topics::data(
                &input.service,
                &self.spec.simulation_id,
                &input.esdl_id,
                &input.name,
            );
            if Topic::new(&topic).is_err() {
                return Err(ModelError::new(format!("input {input:?} is not a topic")));
            }
            if self.input_topics.insert(topic, i).is_some() {
                return Err(ModelError::new(format!("input {input:?} declared twice")));
            }
            prefixes.insert(topics::data_of(
                &input.service,
                &self.spec.simulation_id,
                &input.esdl_id,
            ));
        }
        for prefix in prefixes {
            ctx.subscribe(&prefix, Self::data)
                .map_err(|e| ModelError::new(format!("subscribing to {prefix}: {e}")))?;
        }
        self.inputs = Arc::from(inputs);
        self.send(
            ctx,
            SO,
            "Parameterized",
            lifecycle::encode(&lifecycle::Parameterized {}),
        );
        Ok(())
    }

    fn new_step(&mut self, ctx: &AgentContext, msg: &Publication) -> Result<(), ModelError> {
        let m: lifecycle::NewStep =
            lifecycle::decode("NewStep", &msg.message).map_err(|e| ModelError::new(e.to_string()))?;
        let p: StepParameters =
            serde_json::from_str(&m.parameters_dict).map_err(|e| ModelError::new(format!("NewStep: {e}")))?;
        let n: u64 = p
            .time_step_nr
            .parse()
            .map_err(|_| ModelError::new(format!("NewStep: time_step_nr {:?}", p.time_step_nr)))?;
        let time = Utc
            .timestamp_opt(p.start_time_stamp, 0)
            .single()
            .ok_or_else(|| ModelError::new("NewStep: start_time_stamp out of range"))?;
        self.current = Some((n, time));
        self.calculate(ctx)
    }

    fn data(&mut self, ctx: &AgentContext, msg: &Publication) {
        let Some(&i) = self.input_topics.get(msg.topic.as_str()) else {
            return;
        };
        let v: DataValue = match lifecycle::decode("DataValue", &msg.message) {
            Ok(v) => v,
            Err(e) => return self.fail(ctx, format!("{}: {e}", msg.topic)),
        };
        let n = self.inputs.len();
        let (values, count) = self
            .received
            .entry(v.time_step_nr)
            .or_insert_with(|| (vec![None; n], 0));
        if values[i].replace(v.value).is_none() {
            *count += 1;
        }
        if self.current.is_some_and(|(s, _)| s == v.time_step_nr)
            && let Err(e) = self.calculate(ctx)
        {
            self.fail(ctx, e);
        }
    }

    /// Calculates the current step once every input has its value.
    fn calculate(&mut self, ctx: &AgentContext) -> Result<(), ModelError> {
        let Some((number, time)) = self.current else {
            return Ok(());
        };
        let n = self.inputs.len();
        let complete = n == 0 || self.received.get(&number).is_some_and(|(_, c)| *c == n);
        if !complete {
            return Ok(());
        }
        let values = self.received.remove(&number).map(|(v, _)| v).unwrap_or_default();
        self.current = None;
        let inputs = self.inputs.clone();
        let mut outputs = std::mem::take(&mut self.outputs);
        outputs.clear();
        let mut step = Step {
            number,
            time,
            inputs: &inputs,
            values: &values,
            outputs: &mut outputs,
            topics: &mut self.out_topics,
            ctx,
        };
        let stepped = self.model.step(&mut step);
        let bad = self.out_topics.error.take();
        let result = stepped.and_then(|()| bad.map_or(Ok(()), Err)).and_then(|()| {
            for (topic, value) in outputs.drain(..) {
                let body = lifecycle::encode(&DataValue {
                    time_step_nr: number,
                    value,
                });
                ctx.publish(topic, body)
                    .map_err(|e| ModelError::new(format!("output not published: {e}")))?;
            }
            Ok(())
        });
        self.outputs = outputs;
        result?;
        ctx.publish(
            self.done.clone(),
            lifecycle::encode(&lifecycle::CalculationsDone {}),
        )
        .map_err(|e| ModelError::new(format!("CalculationsDone not published: {e}")))?;
        Ok(())
    }
}

#[crate::agent]
impl ModelAgent {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) -> Result<(), String> {
        let inbox = topics::model_inbox(&self.spec.simulation_id, &self.spec.model_id);
        ctx.subscribe(&inbox, Self::inbox).map_err(|e| e.to_string())?;
        // Steps come to every in-process model as one publication.
        let steps = topics::about_simulation(SO, MODEL, &self.spec.simulation_id, "NewStep");
        ctx.subscribe(&steps, Self::inbox).map_err(|e| e.to_string())?;
        self.send(
            ctx,
            MSO,
            "ReadyForProcessing",
            lifecycle::encode(&lifecycle::ReadyForProcessing {}),
        );
        Ok(())
    }
}
