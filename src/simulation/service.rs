//! [`SimulationService`]: the orchestrator as a [`PlatformService`], and its agent
//! `platform.simulation`.
//!
//! | method | answer |
//! |--------|--------|
//! | `start(request)` | the [`SimulationStatus`] of a simulation deployed at once |
//! | `queue(request)` | the same, run when the queued ones before it have ended |
//! | `list()` | every simulation kept, oldest first |
//! | `status(id)` | one simulation |
//! | `cancel(id)` | cancels it (a queued one leaves the queue); its status |
//! | `results(id)` | its result rows ([`ResultRow`]), sorted |
//! | `results_csv(id)` | the same as CSV text |
//! | `logs(id)` | the output of its programs, by model (`$VOLTTRON_HOME/simulations/<id>.logs/`, removed `keep_logs_hours` after the end) |
//!
//! Errors (a bad request, an unknown id) reach the caller as the RPC's error, with the
//! field or id they are about.
//!
//! The same through the platform's web service (feature `web`), on DOTS's paths (a
//! `POST` or `DELETE` needs a web user's token: from `POST /authenticate`, or from DOTS's
//! `POST /api/v1/simulation/token` where the web service is configured with
//! `WebConfig::oauth2_token_path`, as the `volttron` binary does):
//!
//! | request | answer |
//! |---------|--------|
//! | `GET /api/v1/simulation/` | `200`, every simulation |
//! | `POST /api/v1/simulation/start`, `.../queue` (the request as JSON) | `201`, its status; `400` `{"detail"}` for a bad request |
//! | `GET /api/v1/simulation/{id}` | `200`, its status; `404` |
//! | `DELETE /api/v1/simulation/{id}` | `200`, its status once cancelled; `404`; `409` if it has ended |
//! | `GET /api/v1/simulation/data/{id}` | `200`, its results as CSV (`text/csv`) |
//! | `GET /api/v1/simulation/results/{id}` | `200`, its result rows as JSON |
//! | `GET /api/v1/simulation/logs/{id}` | `200`, its programs' output (`text/plain`, `== <model> ==` before each) | Any peer may call these: protect them in `authz.json`
//! where agents you do not trust share the bus.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::agent::Agent;
use crate::agent::route::{WebRequest, WebResponse};
use crate::core::{Identity, Publication};
use crate::platform::service::{PlatformService, ServiceContext, ServiceError, ServiceStop};
use crate::simulation::Model;
use crate::simulation::model::ModelSpec;
use crate::simulation::orchestrator::{Inbox, Orchestrator, forward};
use crate::simulation::registry::Registry;
use crate::simulation::request::SimulationRequest;
use crate::simulation::results::ResultRow;
use crate::simulation::status::{SimulationFiles, SimulationStatus};

/// The service's identity.
pub const IDENTITY: &str = "platform.simulation";
const NAME: &str = "simulation";

/// The simulation orchestrator, given to [`PlatformBuilder::service`](crate::PlatformBuilder::service),
/// with the calculation services and companion agents it can start.
///
/// ```
/// use volttron::simulation::{Input, Model, ModelError, ModelSetup, SimulationService, Step};
///
/// struct Sun;
///
/// impl Model for Sun {
///     fn parameterize(&mut self, _: &ModelSetup) -> Result<Vec<Input>, ModelError> {
///         Ok(Vec::new())
///     }
///     fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
///         step.output("pv1", "power", 1.0);
///         Ok(())
///     }
/// }
///
/// let service = SimulationService::new().model("sun", |_| Sun);
/// # let _ = service;
/// // Platform::builder().home(home).service(service).start().await?;
/// ```
#[derive(Debug, Default)]
pub struct SimulationService {
    registry: Registry,
    sink: Option<crate::simulation::influx::InfluxSink>,
}

impl SimulationService {
    /// A service with nothing registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers calculation service `name` (a request's `service_image_url`): each model
    /// is `factory(spec)`.
    pub fn model<M: Model>(
        mut self,
        name: &str,
        factory: impl Fn(&ModelSpec) -> M + Send + Sync + 'static,
    ) -> Self {
        self.registry.model(name, factory);
        self
    }

    /// Registers calculation service `name` whose models are agents speaking the
    /// lifecycle protocol themselves.
    pub fn agent<A: Agent>(
        mut self,
        name: &str,
        factory: impl Fn(&ModelSpec) -> A + Send + Sync + 'static,
    ) -> Self {
        self.registry.agent(name, factory);
        self
    }

    /// Registers calculation service `name` whose models are programs: each model runs
    /// `command` (the executable, then its arguments) as a child process with DOTS's
    /// environment (`SIMULATOR_ID`, `SIMULATION_ID`, `MODEL_ID`, `LOG_LEVEL`; and
    /// `CALC_SERVICE_NAME`) and `env`
    /// (an MQTT broker's `MQTT_HOST` and `MQTT_PORT`, say). It speaks the lifecycle
    /// protocol by any route to the bus (MQTT through the federation's `payload=raw`
    /// rules, see [`simulation`](crate::simulation)); its exit fails the simulation at
    /// once; when the run ends it has 5 s to exit after `SimulationDone`, then it is
    /// stopped (SIGINT, SIGTERM, SIGKILL, 5 s apart). Its output is kept in
    /// `$VOLTTRON_HOME/simulations/<id>.logs/<model>.log` for `keep_logs_hours`.
    pub fn program<I, S>(mut self, name: &str, command: I, env: &[(&str, &str)]) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let command = command.into_iter().map(Into::into).collect();
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.registry.program(name, command, env);
        self
    }

    /// Also writes every simulation's results, when it ends, to InfluxDB 1.x at `url`
    /// (`http://127.0.0.1:8086`), database `database` (see
    /// [`influx`](crate::simulation::influx)). The local results stay.
    pub fn influxdb(mut self, url: &str, database: &str) -> Self {
        self.sink = Some(crate::simulation::influx::InfluxSink::new(url, database));
        self
    }

    /// Registers companion agent `name` (a request's `agents`), run under the
    /// simulation's clock.
    pub fn companion<A: Agent>(
        mut self,
        name: &str,
        factory: impl Fn() -> A + Send + Sync + 'static,
    ) -> Self {
        self.registry.companion(name, factory);
        self
    }
}

impl SimulationService {
    /// The programs of the `[simulation]` section of a platform configuration file
    /// (`$VOLTTRON_HOME/config`), for the `volttron` binary, which has no Rust models of
    /// its own:
    ///
    /// ```text
    /// [simulation]
    /// program.python-pv = /opt/models/venv/bin/python /opt/models/pv.py
    /// program.python-pv.env = MQTT_HOST=127.0.0.1, MQTT_PORT=1883
    /// influxdb-url = http://127.0.0.1:8086
    /// influxdb-database = dots
    /// ```
    ///
    /// A command line is split on whitespace (no quoting). Other keys are refused.
    pub fn from_platform_config(config: &crate::home::config::PlatformConfig) -> Result<Self, String> {
        let mut service = Self::new();
        let Some(section) = config.sections.get("simulation") else {
            return Ok(service);
        };
        type Program = (Vec<String>, Vec<(String, String)>);
        let mut programs: std::collections::BTreeMap<&str, Program> = Default::default();
        let (mut url, mut database) = (None, None);
        for (key, value) in section {
            let bad = |why: &str| format!("[simulation] {key} = {value}: {why}");
            match key.as_str() {
                "influxdb-url" => {
                    url = Some(value.trim());
                    continue;
                }
                "influxdb-database" => {
                    database = Some(value.trim());
                    continue;
                }
                _ => {}
            }
            let Some(rest) = key.strip_prefix("program.") else {
                return Err(bad(
                    "expected program.<name>, program.<name>.env, influxdb-url or influxdb-database",
                ));
            };
            if let Some(name) = rest.strip_suffix(".env") {
                let entry = programs.entry(name).or_default();
                for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let (k, v) = pair
                        .split_once('=')
                        .ok_or_else(|| bad("expected KEY=VALUE, ..."))?;
                    entry.1.push((k.trim().to_owned(), v.trim().to_owned()));
                }
            } else {
                let command: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
                if command.is_empty() {
                    return Err(bad("an empty command"));
                }
                programs.entry(rest).or_default().0 = command;
            }
        }
        for (name, (command, env)) in programs {
            if command.is_empty() {
                return Err(format!("[simulation] program.{name}.env without program.{name}"));
            }
            service.registry.program(name, command, env);
        }
        match (url, database) {
            (Some(u), Some(d))
                if (u.starts_with("http://") || u.starts_with("https://")) && !d.is_empty() =>
            {
                service = service.influxdb(u, d);
            }
            (None, None) => {}
            _ => {
                return Err(
                    "[simulation] influxdb-url (http://...) and influxdb-database go together".into(),
                );
            }
        }
        Ok(service)
    }
}

impl PlatformService for SimulationService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(self: Box<Self>, ctx: ServiceContext) -> Result<ServiceStop, ServiceError> {
        let identity = Identity::new(IDENTITY).map_err(|e| ServiceError::new(NAME, e.to_string()))?;
        let files = ctx.platform().home().map(SimulationFiles::new);
        let (tx, rx) = mpsc::unbounded_channel();
        let orchestrator = Orchestrator::new(
            ctx.platform().clone(),
            ctx.trusted_endpoint(identity),
            self.registry,
            files,
            self.sink,
            tx,
        );
        let inbox = Arc::new(Inbox::default());
        if !ctx.spawn(forward(rx, inbox.clone(), ctx.platform().clone(), IDENTITY)) {
            return Err(ServiceError::new(NAME, "the platform is stopping"));
        }
        ctx.spawn_agent(IDENTITY, SimulationAgent { orchestrator, inbox })?;
        Ok(Box::new(|| {}))
    }
}

/// The agent behind [`IDENTITY`]: the orchestrator's only owner.
struct SimulationAgent {
    orchestrator: Orchestrator,
    inbox: Arc<Inbox>,
}

/// The path below `/api/v1/simulation/`.
const API: &str = "/api/v1/simulation/";

/// An API error as FastAPI writes them (DOTS): `{"detail": message}`.
fn problem(message: &str) -> WebResponse {
    let status = if message.starts_with("no simulation") {
        404
    } else if message.contains("has already ended") {
        409
    } else if message.contains("orchestrator has stopped") {
        503
    } else {
        400
    };
    WebResponse::json(status, &serde_json::json!({"detail": message}))
}

fn answer<T: serde::Serialize>(status: u16, r: Result<T, String>) -> WebResponse {
    match r {
        Ok(v) => WebResponse::json(status, &v),
        Err(e) => problem(&e),
    }
}

#[crate::agent]
impl SimulationAgent {
    /// The queue kept in the home runs on.
    #[on_start]
    fn start_queue(&mut self) {
        self.orchestrator.next_from_queue();
    }

    /// Models' lifecycle messages.
    #[subscribe("/lifecycle/model/")]
    fn lifecycle(&mut self, msg: &Publication) {
        self.orchestrator.lifecycle(msg);
    }

    /// Models' outputs.
    #[subscribe("/data/")]
    fn data(&mut self, msg: &Publication) {
        self.orchestrator.data(msg);
    }

    /// Handles the events queued for the orchestrator (sent by its own task; harmless
    /// from anyone else: it only drains the queue).
    #[rpc]
    fn wake(&mut self) {
        self.inbox
            .woken
            .store(false, std::sync::atomic::Ordering::Release);
        loop {
            let Some(event) = self.inbox.events.lock().pop_front() else {
                break;
            };
            self.orchestrator.handle(event);
        }
    }

    /// Starts a simulation now.
    #[rpc]
    fn start(&mut self, request: SimulationRequest) -> Result<SimulationStatus, String> {
        self.orchestrator.submit(request, false)
    }

    /// Queues a simulation.
    #[rpc]
    fn queue(&mut self, request: SimulationRequest) -> Result<SimulationStatus, String> {
        self.orchestrator.submit(request, true)
    }

    /// Every simulation.
    #[rpc]
    fn list(&mut self) -> Vec<SimulationStatus> {
        self.orchestrator.list()
    }

    /// One simulation.
    #[rpc]
    fn status(&mut self, id: String) -> Result<SimulationStatus, String> {
        self.orchestrator.status_of(&id)
    }

    /// Cancels a simulation.
    #[rpc]
    fn cancel(&mut self, id: String) -> Result<SimulationStatus, String> {
        self.orchestrator.cancel(&id)
    }

    /// A simulation's results.
    #[rpc]
    fn results(&mut self, id: String) -> Result<Vec<ResultRow>, String> {
        Ok(self.orchestrator.results(&id)?.rows())
    }

    /// The output of a simulation's programs, by model (empty once `keep_logs_hours`
    /// have passed).
    #[rpc]
    fn logs(&mut self, id: String) -> Result<std::collections::BTreeMap<String, String>, String> {
        self.orchestrator.logs(&id)
    }

    /// A simulation's results as CSV.
    #[rpc]
    fn results_csv(&mut self, id: String) -> Result<String, String> {
        let csv = self.orchestrator.results(&id)?.to_csv()?;
        String::from_utf8(csv).map_err(|e| e.to_string())
    }

    /// `GET /api/v1/simulation`.
    #[route(GET, "/api/v1/simulation")]
    fn web_list_bare(&mut self) -> WebResponse {
        answer(200, Ok::<_, String>(self.list()))
    }

    /// `GET /api/v1/simulation/`.
    #[route(GET, "/api/v1/simulation/")]
    fn web_list(&mut self) -> WebResponse {
        answer(200, Ok::<_, String>(self.list()))
    }

    /// `GET /api/v1/simulation/{id}`, `.../data/{id}`, `.../results/{id}`.
    #[route(GET, "/api/v1/simulation/*")]
    fn web_get(&mut self, request: WebRequest) -> WebResponse {
        let rest = request.path.strip_prefix(API).unwrap_or_default().to_owned();
        match rest.split_once('/') {
            None => answer(200, self.status(rest)),
            Some(("data", id)) => match self.results_csv(id.to_owned()) {
                Ok(csv) => WebResponse {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), "text/csv; charset=utf-8".into()),
                        (
                            "content-disposition".into(),
                            format!("attachment; filename=\"{id}.csv\""),
                        ),
                    ],
                    body: csv.into_bytes(),
                },
                Err(e) => problem(&e),
            },
            Some(("results", id)) => answer(200, self.results(id.to_owned())),
            Some(("logs", id)) => match self.logs(id.to_owned()) {
                Ok(logs) => {
                    let text: String = logs.iter().map(|(m, t)| format!("== {m} ==\n{t}")).collect();
                    WebResponse {
                        status: 200,
                        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
                        body: text.into_bytes(),
                    }
                }
                Err(e) => problem(&e),
            },
            Some(_) => problem(&format!("no simulation resource {rest:?}")),
        }
    }

    /// `POST /api/v1/simulation/start` and `.../queue`.
    #[route(POST, "/api/v1/simulation/*")]
    fn web_post(&mut self, request: WebRequest) -> WebResponse {
        let queue = match request.path.strip_prefix(API) {
            Some("start") => false,
            Some("queue") => true,
            _ => return WebResponse::json(404, &serde_json::json!({"detail": "POST start or queue"})),
        };
        let body = match SimulationRequest::from_json(request.body.as_bytes()) {
            Ok(b) => b,
            Err(e) => return problem(&e.to_string()),
        };
        let r = if queue { self.queue(body) } else { self.start(body) };
        answer(201, r)
    }

    /// `DELETE /api/v1/simulation/{id}`.
    #[route(DELETE, "/api/v1/simulation/*")]
    fn web_delete(&mut self, request: WebRequest) -> WebResponse {
        let id = request.path.strip_prefix(API).unwrap_or_default().to_owned();
        answer(200, self.cancel(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::config::PlatformConfig;

    fn from(text: &str) -> Result<SimulationService, String> {
        SimulationService::from_platform_config(&PlatformConfig::parse(text, "config").unwrap())
    }

    #[test]
    fn programs_come_from_the_simulation_section() {
        let s = from("[simulation]\nprogram.pv = /usr/bin/python3 pv.py\nprogram.pv.env = A=1, B = two\n")
            .unwrap();
        let dbg = format!("{:?}", s.registry);
        assert!(dbg.contains("\"pv\""), "{dbg}");
        assert!(from("").is_ok());
        let e = from("[simulation]\nmodel.pv = x\n").unwrap_err();
        assert!(e.contains("expected program.<name>"), "{e}");
        let e = from("[simulation]\nprogram.pv.env = A=1\n").unwrap_err();
        assert!(e.contains("without program.pv"), "{e}");
        let e = from("[simulation]\nprogram.pv = x\nprogram.pv.env = novalue\n").unwrap_err();
        assert!(e.contains("KEY=VALUE"), "{e}");
        let e = from("[simulation]\ninfluxdb-url = http://127.0.0.1:8086\n").unwrap_err();
        assert!(e.contains("go together"), "{e}");
        let s =
            from("[simulation]\ninfluxdb-url = http://127.0.0.1:8086\ninfluxdb-database = dots\n").unwrap();
        assert!(s.sink.is_some());
    }
}
