//! What the API says of a simulation, and how simulations and the queue are kept in
//! `$VOLTTRON_HOME/simulations/` across restarts.
//!
//! | state | DOTS's `simulation_status` | terminal |
//! |-------|----------------------------|----------|
//! | `Queued` | `Queued (position n)` | no |
//! | `Deploying` | `Deploying models` | no |
//! | `Parameterizing` | `All models registered` | no |
//! | `Running` | `Calculating time step n (of N)` | no |
//! | `Succeeded` | `TERMINATED_SUCCESSFULL` | yes |
//! | `Failed` | `TERMINATED_FAILED: <reason>` | yes |
//! | `Cancelled` | `TERMINATED_CANCELLED` | yes |
//!
//! Each simulation is one file, `<id>.json` (its request and status), replaced atomically
//! (written aside, fsynced, renamed over) at each change of state; its results, once it ends,
//! `<id>.results.csv`. A platform that starts finds the simulations that were running
//! and marks them failed ("the platform restarted during the run"), and runs the queue
//! in its order.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::simulation::request::SimulationRequest;

/// Where a simulation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimulationState {
    /// Waiting in the queue.
    Queued,
    /// Its models are starting.
    Deploying,
    /// Its models are being given their parameters.
    Parameterizing,
    /// Stepping.
    Running,
    /// Every step done.
    Succeeded,
    /// Ended by a failure (see the reason).
    Failed,
    /// Cancelled through the API.
    Cancelled,
}

impl SimulationState {
    /// Whether the simulation is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Where one model is (DOTS's model states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ModelState {
    /// Started, not yet ready.
    Registered,
    /// Sent `ReadyForProcessing`.
    Deployed,
    /// Sent `Parameterized`.
    Parameterized,
    /// Calculating the current step.
    StepStarted,
    /// Done with the current step.
    StepFinished,
    /// Ended normally.
    TerminatedSuccessfull,
    /// Failed.
    TerminatedFailed,
}

/// One model in a status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStatus {
    /// Its id.
    pub model_id: String,
    /// Its service.
    pub service: String,
    /// Its state.
    pub state: ModelState,
}

/// A simulation as the API shows it: DOTS's fields, then this project's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationStatus {
    /// The id.
    pub simulation_id: String,
    /// The request.
    #[serde(flatten)]
    pub request: SimulationRequest,
    /// DOTS's status text.
    pub simulation_status: String,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When its models started.
    pub calculation_start_datetime: Option<DateTime<Utc>>,
    /// When it ended.
    pub calculation_end_datetime: Option<DateTime<Utc>>,
    /// Wall seconds from start to end.
    pub calculation_duration: Option<f64>,
    /// The state.
    pub state: SimulationState,
    /// Why it failed.
    pub reason: Option<String>,
    /// The step under way (or last done), from 1.
    pub current_step: u64,
    /// Steps in all.
    pub nr_of_steps: u64,
    /// Its models.
    pub models: Vec<ModelStatus>,
    /// Its place in the queue's order (queued simulations).
    pub queue_position: Option<u64>,
    /// Whether everything it started has stopped.
    pub stopped: bool,
    /// What the results sink said (`influxdb <url> <db>: N points written`, or its error).
    #[serde(default)]
    pub results_sink: Option<String>,
}

impl SimulationStatus {
    /// Recomputes DOTS's status text.
    pub(crate) fn describe(&mut self) {
        self.simulation_status = match self.state {
            SimulationState::Queued => "Queued".into(),
            SimulationState::Deploying => "Deploying models".into(),
            SimulationState::Parameterizing => "All models registered".into(),
            SimulationState::Running => {
                format!(
                    "Calculating time step {} (of {})",
                    self.current_step, self.nr_of_steps
                )
            }
            SimulationState::Succeeded => "TERMINATED_SUCCESSFULL".into(),
            SimulationState::Failed => format!("TERMINATED_FAILED: {}", self.reason.as_deref().unwrap_or("")),
            SimulationState::Cancelled => "TERMINATED_CANCELLED".into(),
        };
    }
}

/// Why a simulation's file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct StoreError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The simulations' directory.
#[derive(Debug, Clone)]
pub(crate) struct SimulationFiles {
    dir: PathBuf,
}

impl SimulationFiles {
    pub(crate) fn new(home: &Path) -> Self {
        SimulationFiles {
            dir: home.join("simulations"),
        }
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn status_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub(crate) fn results_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.results.csv"))
    }

    pub(crate) fn save(&self, s: &SimulationStatus) -> Result<(), StoreError> {
        let path = self.status_path(&s.simulation_id);
        let bytes = serde_json::to_vec_pretty(s).map_err(|e| StoreError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        self.write(&path, &bytes)
    }

    pub(crate) fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        crate::durable::write(
            path,
            bytes,
            crate::durable::Perms::OwnerOnly,
            crate::durable::IfExists::Replace,
        )
        .map(|_| ())
        .map_err(|e| StoreError {
            path: e.path,
            message: e.source.to_string(),
        })
    }

    /// Every simulation kept, oldest first; unreadable files are skipped with a warning.
    pub(crate) fn load(&self) -> Vec<SimulationStatus> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<SimulationStatus>(&b).map_err(|e| e.to_string()))
            {
                Ok(s) => all.push(s),
                Err(e) => tracing::warn!("simulation: {} skipped: {e}", path.display()),
            }
        }
        all.sort_by(|a, b| (a.created, &a.simulation_id).cmp(&(b.created, &b.simulation_id)));
        all
    }
}
