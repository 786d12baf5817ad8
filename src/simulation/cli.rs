//! `vctl simulation`: the commands, and what they print, over `platform.simulation`'s RPCs.
//!
//! | command | RPC | prints |
//! |---------|-----|--------|
//! | `vctl simulation start FILE [--queue]` | `start` / `queue` | the id and the status |
//! | `vctl simulation list` | `list` | one line per simulation: id, state, step of N, name |
//! | `vctl simulation status ID` | `status` | the status, each model's state, the reason of a failure |
//! | `vctl simulation cancel ID` | `cancel` | the status |
//! | `vctl simulation results ID` | `results_csv` | the results as CSV |
//! | `vctl simulation logs ID` | `logs` | its programs' output, `== <model> ==` before each |
//!
//! `FILE` is DOTS's start request (JSON); `-` reads it from standard input.

use std::io::Read;
use std::path::PathBuf;

use crate::remote::Connection;
use crate::simulation::request::SimulationRequest;
use crate::simulation::service::IDENTITY;
use crate::simulation::status::SimulationStatus;

/// The `vctl simulation` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SimulationCommand {
    /// Start a simulation from DOTS's start request (a JSON file; `-` for stdin).
    Start {
        /// The request.
        file: PathBuf,
        /// Queue it (it runs when the queued ones before it have ended).
        #[arg(long)]
        queue: bool,
    },
    /// Every simulation, oldest first.
    List,
    /// One simulation's status and its models' states.
    Status {
        /// The simulation id.
        id: String,
    },
    /// Cancel a simulation (a queued one leaves the queue).
    Cancel {
        /// The simulation id.
        id: String,
    },
    /// A simulation's results as CSV.
    Results {
        /// The simulation id.
        id: String,
    },
    /// The output of a simulation's programs (kept for its keep_logs_hours).
    Logs {
        /// The simulation id.
        id: String,
    },
}

fn read_request(file: &PathBuf) -> Result<SimulationRequest, String> {
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("stdin: {e}"))?;
    } else {
        bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    SimulationRequest::from_json(&bytes).map_err(|e| format!("{}: {e}", file.display()))
}

/// Runs a command against the platform: its JSON answer and the text for people.
pub async fn run(
    conn: &Connection,
    command: SimulationCommand,
) -> Result<(serde_json::Value, String), String> {
    match command {
        SimulationCommand::Start { file, queue } => {
            let request = read_request(&file)?;
            let request = crate::core::to_value(&request).map_err(|e| e.to_string())?;
            let method = if queue { "queue" } else { "start" };
            let answer = conn.call_json(IDENTITY, method, (request,)).await?;
            let s = status(&answer)?;
            let verb = if queue { "queued" } else { "started" };
            Ok((
                answer,
                format!("{verb} {}: {}", s.simulation_id, s.simulation_status),
            ))
        }
        SimulationCommand::List => {
            let answer = conn.call_json(IDENTITY, "list", ()).await?;
            let list: Vec<SimulationStatus> =
                serde_json::from_value(answer.clone()).map_err(|e| e.to_string())?;
            let text = if list.is_empty() {
                "no simulations".to_owned()
            } else {
                list.iter()
                    .map(|s| {
                        format!(
                            "{:<32} {:<10} {:>8}/{:<8} {}",
                            s.simulation_id,
                            format!("{:?}", s.state),
                            s.current_step,
                            s.nr_of_steps,
                            s.request.name
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            Ok((answer, text))
        }
        SimulationCommand::Status { id } => {
            let answer = conn.call_json(IDENTITY, "status", (id.as_str(),)).await?;
            let text = status_text(&status(&answer)?);
            Ok((answer, text))
        }
        SimulationCommand::Cancel { id } => {
            let answer = conn.call_json(IDENTITY, "cancel", (id.as_str(),)).await?;
            let s = status(&answer)?;
            Ok((answer, format!("{}: {}", s.simulation_id, s.simulation_status)))
        }
        SimulationCommand::Results { id } => {
            let answer = conn.call_json(IDENTITY, "results_csv", (id.as_str(),)).await?;
            let csv = answer.as_str().unwrap_or_default().trim_end().to_owned();
            Ok((answer, csv))
        }
        SimulationCommand::Logs { id } => {
            let answer = conn.call_json(IDENTITY, "logs", (id.as_str(),)).await?;
            let text = match answer.as_object() {
                Some(logs) if !logs.is_empty() => logs
                    .iter()
                    .map(|(m, t)| format!("== {m} ==\n{}", t.as_str().unwrap_or_default().trim_end()))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => format!("{id}: no logs (no programs, or keep_logs_hours has passed)"),
            };
            Ok((answer, text))
        }
    }
}

fn status(v: &serde_json::Value) -> Result<SimulationStatus, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("{IDENTITY} answered something else: {e}"))
}

fn status_text(s: &SimulationStatus) -> String {
    let mut lines = vec![
        format!("{} ({})", s.simulation_id, s.request.name),
        format!("  {}", s.simulation_status),
        format!("  step {} of {}", s.current_step, s.nr_of_steps),
    ];
    if let Some(r) = &s.reason {
        lines.push(format!("  reason: {r}"));
    }
    for m in &s.models {
        lines.push(format!("  {:<24} {:?}", m.model_id, m.state));
    }
    if s.state.is_terminal() {
        lines.push(format!("  stopped: {}", s.stopped));
    }
    lines.join("\n")
}
