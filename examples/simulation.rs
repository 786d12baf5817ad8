//! A co-simulation run by the platform: a day of a street, in 15-minute steps.
//!
//! ```text
//! cargo run --release --example simulation                 # prints the day, hour by hour
//! cargo run --release --example simulation -- --csv out.csv  # and writes every result
//! ```
//!
//! Three calculation services are registered with [`SimulationService`]: `pv` (solar
//! panels: a bell curve over the day), `house` (a load with an evening peak) and `grid`
//! (each grid connection waits for the PV and houses connected to it in the ESDL document
//! and outputs the net load). A companion agent, `meter`, runs beside them under the
//! simulation's clock: every 15 simulated minutes it wakes (`#[periodic(secs = 900)]`) and
//! reads the time — the simulated time, although the whole day takes a few milliseconds.
//!
//! The simulation is started as DOTS's REST API would start it (`platform.simulation`'s
//! `start` RPC takes the same body), followed on its progress topic, and its results read
//! back (`results`) and exported (`results_csv`).

use std::time::Duration;

use base64::Engine;
use serde_json::json;
use volttron::prelude::*;
use volttron::simulation::{
    IDENTITY, Input, Model, ModelError, ModelSetup, ResultRow, SimulationService, SimulationStatus, Step,
};

/// Solar panels: output `power` (W) of each installation the model calculates.
#[derive(Default)]
struct Pv {
    ids: Vec<String>,
}

impl Model for Pv {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        self.ids = setup.esdl_ids.clone();
        Ok(Vec::new())
    }

    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
        let hour = ((step.number() - 1) % 96) as f64 / 4.0;
        let sun = (std::f64::consts::PI * (hour - 6.0) / 12.0).sin().max(0.0);
        for id in self.ids.clone() {
            step.output(&id, "power", 3000.0 * sun);
        }
        Ok(())
    }
}

/// Houses: output `load` (W), higher in the evening.
#[derive(Default)]
struct House {
    ids: Vec<String>,
}

impl Model for House {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        self.ids = setup.esdl_ids.clone();
        Ok(Vec::new())
    }

    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
        let hour = ((step.number() - 1) % 96) as f64 / 4.0;
        let evening = (-(hour - 19.0).powi(2) / 8.0).exp();
        for id in self.ids.clone() {
            step.output(&id, "load", 400.0 + 1800.0 * evening);
        }
        Ok(())
    }
}

/// Grid connections: wait for what is connected to them, output `net` (W, positive =
/// taken from the grid).
#[derive(Default)]
struct Grid {
    ids: Vec<(String, Vec<Input>)>,
}

impl Model for Grid {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        let mut all = Vec::new();
        for id in &setup.esdl_ids {
            let object = setup
                .esdl
                .get(id)
                .ok_or_else(|| ModelError::new(format!("no object {id}")))?;
            let inputs: Vec<Input> = object
                .connected
                .iter()
                .filter_map(|c| match setup.esdl.get(c)?.esdl_type.as_str() {
                    "PVInstallation" => Some(Input::new("pv", c, "power")),
                    "EnergyConsumer" => Some(Input::new("house", c, "load")),
                    _ => None,
                })
                .collect();
            all.extend(inputs.iter().cloned());
            self.ids.push((id.clone(), inputs));
        }
        Ok(all)
    }

    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
        for (id, inputs) in &self.ids {
            let mut net = 0.0;
            for i in inputs {
                let v = step.input(&i.service, &i.esdl_id, &i.name).unwrap_or(0.0);
                net += if i.service == "pv" { -v } else { v };
            }
            step.output(id, "net", net);
        }
        Ok(())
    }
}

/// Beside the models, on the simulation's clock: notes each quarter hour it sees.
#[derive(Default)]
struct Meter {
    seen: u32,
}

#[volttron::agent]
impl Meter {
    #[periodic(secs = 900)]
    fn read(&mut self, ctx: &AgentContext) {
        self.seen += 1;
        if self.seen % 24 == 1 {
            println!("meter: the clock says {}", ctx.now().format("%Y-%m-%d %H:%M"));
        }
    }

    #[on_stop]
    fn stop(&mut self) {
        println!("meter: woke {} times in one simulated day", self.seen);
    }
}

/// A street: `n` grid connections, each with two houses with PV on their roofs.
fn esdl(n: usize) -> String {
    let mut assets = String::new();
    for g in 1..=n {
        let mut pv_ports = Vec::new();
        let mut house_ports = Vec::new();
        for k in 1..=2 {
            let i = (g - 1) * 2 + k;
            assets.push_str(&format!(
                r#"<asset xsi:type="esdl:PVInstallation" id="pv{i}" name="Roof {i}"><port xsi:type="esdl:OutPort" id="pv{i}o" connectedTo="g{g}i"/></asset><asset xsi:type="esdl:EnergyConsumer" id="house{i}" name="House {i}"><port xsi:type="esdl:InPort" id="house{i}i" connectedTo="g{g}o"/></asset>"#
            ));
            pv_ports.push(format!("pv{i}o"));
            house_ports.push(format!("house{i}i"));
        }
        assets.push_str(&format!(
            r#"<asset xsi:type="esdl:EConnection" id="grid{g}" name="Connection {g}"><port xsi:type="esdl:InPort" id="g{g}i" connectedTo="{}"/><port xsi:type="esdl:OutPort" id="g{g}o" connectedTo="{}"/></asset>"#,
            pv_ports.join(" "),
            house_ports.join(" ")
        ));
    }
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><esdl:EnergySystem xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:esdl="http://www.tno.nl/esdl" id="street" name="Street"><instance xsi:type="esdl:Instance" id="i" name="today"><area xsi:type="esdl:Area" id="a" name="Street">{assets}</area></instance></esdl:EnergySystem>"#
    );
    base64::engine::general_purpose::STANDARD.encode(xml)
}

#[volttron::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let csv_path = std::env::args().skip_while(|a| a != "--csv").nth(1);
    let home = tempfile::tempdir()?;
    let service = SimulationService::new()
        .model("pv", |_| Pv::default())
        .model("house", |_| House::default())
        .model("grid", |_| Grid::default())
        .companion("meter", Meter::default);
    let platform = Platform::builder()
        .home(home.path())
        .services(false)
        .unix_socket(false)
        .service(service)
        .start()
        .await?;

    // DOTS's start request: 3 services, 4 models each, 96 steps of 15 minutes.
    let request = json!({
        "name": "A day of the street",
        "start_date": "2024-06-21 00:00:00",
        "time_step_seconds": 900,
        "nr_of_time_steps": 96,
        "max_step_calc_time_minutes": 1,
        "keep_logs_hours": 0,
        "log_level": "info",
        "calculation_services": [
            {"esdl_type": "PVInstallation", "calc_service_name": "pv", "service_image_url": "pv", "nr_of_models": 4},
            {"esdl_type": "EnergyConsumer", "calc_service_name": "house", "service_image_url": "house", "nr_of_models": 4},
            {"esdl_type": "EConnection", "calc_service_name": "grid", "service_image_url": "grid", "nr_of_models": 4},
        ],
        "esdl_base64string": esdl(8),
        "agents": ["meter"],
    });
    let started: SimulationStatus = platform
        .call(IDENTITY, "start", vec![Value::from(request)])
        .returning()
        .await?;
    let id = started.simulation_id;
    println!("started {id}: {} steps", started.nr_of_steps);
    let status = loop {
        let s: SimulationStatus = platform
            .call(IDENTITY, "status", vec![Value::from(id.as_str())])
            .returning()
            .await?;
        if s.state.is_terminal() && s.stopped {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    println!(
        "{}: {} steps in {:.1} ms of wall time",
        status.simulation_status,
        status.current_step,
        status.calculation_duration.unwrap_or_default() * 1e3
    );
    if let Some(reason) = &status.reason {
        return Err(reason.clone().into());
    }

    let rows: Vec<ResultRow> = platform
        .call(IDENTITY, "results", vec![Value::from(id.as_str())])
        .returning()
        .await?;
    println!("hour  net load of the street (kW)");
    for hour in (0..24).step_by(2) {
        let step = hour * 4 + 1;
        let net: f64 = rows
            .iter()
            .filter(|r| r.step == step && r.field == "net")
            .map(|r| r.value)
            .sum();
        let bar = "#".repeat((net.abs() / 1000.0).round() as usize);
        println!(
            "{hour:02}:00 {:>7.1} {}{bar}",
            net / 1000.0,
            if net < 0.0 { "-" } else { "+" }
        );
    }
    if let Some(path) = csv_path {
        let csv: String = platform
            .call(IDENTITY, "results_csv", vec![Value::from(id.as_str())])
            .returning()
            .await?;
        std::fs::write(&path, csv)?;
        println!("{} result rows written to {path}", rows.len());
    }
    platform.shutdown().await;
    Ok(())
}
