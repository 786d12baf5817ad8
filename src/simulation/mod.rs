//! Co-simulations of energy systems run by the platform: DOTS's simulation orchestrator
//! (GO-e WP3) as the `platform.simulation` service (feature `simulation`).
//!
//! A simulation is what DOTS's start request describes ([`SimulationRequest`]): an
//! energy system (ESDL), calculation services and how many models each runs, a start, a
//! time step and a number of steps. Its models are agents started for it under a
//! supervisor of its own and stepped in lock-step: time moves only when every model has
//! finished the step, and the agents of the simulation see the simulated time on their
//! clock (`ctx.now()`, timers) — ordinary agents run beside the models
//! ([`SimulationService::companion`]) without knowing it is simulated.
//!
//! | DOTS failure | here |
//! |--------------|------|
//! | a model never ready hangs the simulation and the queue | a deploy deadline (`deploy_timeout_seconds`, 60 s) fails it, naming the models |
//! | a crash mid-step is seen only at the step timeout | the supervisor reports the exit: failed at once |
//! | errors never reach the API | every failure's reason is in the status (`reason`) and the progress topic |
//! | cleanup unbounded, pods left | the supervisor is stopped at every end, each agent's stop bounded; `stopped: true` once all are gone |
//! | all state lost on restart | simulations and the queue are files in `$VOLTTRON_HOME/simulations/`; a run under way is reported failed by the restart |
//!
//! | module | what |
//! |--------|------|
//! | [`request`] | the start request, its checks, ids, the plan (models and their ESDL objects) |
//! | [`esdl`] | the objects of an ESDL document and their connections |
//! | [`lifecycle`] | the protobuf lifecycle messages and the data value |
//! | [`topics`] | DOTS's topic layout |
//! | [`model`] | [`Model`]: calculation services in Rust, run as agents |
//! | [`status`] | what the API shows, and the files that survive a restart |
//! | [`results`] | result rows (DOTS's InfluxDB layout) and CSV |
//! | [`influx`] | the InfluxDB 1.x sink: line protocol over HTTP |
//! | `service` | [`SimulationService`], its agent's RPC methods and DOTS's REST paths |
//! | `cli` | `vctl simulation` (feature `cli`) |
//!
//! Within a step a model calculates once it has one value of each input it declared;
//! its outputs are published as data (`/data/<service>/model/<sim>/<esdl id>/<name>`)
//! and stored as the simulation's results.

#[cfg(feature = "cli")]
pub mod cli;
pub mod esdl;
pub mod influx;
pub mod lifecycle;
pub mod model;
mod orchestrator;
mod registry;
pub mod request;
pub mod results;
mod run;
mod service;
pub mod status;
pub mod topics;

pub use influx::InfluxSink;
pub use model::{Input, Model, ModelError, ModelSetup, ModelSpec, Step};
pub use request::{CalculationServiceRequest, SimulationRequest};
pub use results::ResultRow;
pub use service::{IDENTITY, SimulationService};
pub use status::{ModelState, SimulationState, SimulationStatus};
