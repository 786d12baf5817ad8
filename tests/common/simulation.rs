//! The simulation tests' energy system and models: PV installations and houses feed
//! grid connections, each grid model sums what is connected to it.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value as Json, json};
use volttron::Platform;
use volttron::simulation::{IDENTITY, Input, Model, ModelError, ModelSetup, SimulationStatus, Step};

/// An ESDL document with `grids` grid connections, each with two PV installations and two
/// houses connected to it.
pub(crate) fn esdl(grids: usize) -> String {
    let mut assets = String::new();
    for g in 1..=grids {
        let mut grid_ports = String::new();
        for k in 1..=2 {
            let pv = (g - 1) * 2 + k;
            assets.push_str(&format!(
                r#"<asset xsi:type="esdl:PVInstallation" id="pv{pv}" name="PV {pv}"><port xsi:type="esdl:OutPort" id="pv{pv}-out" connectedTo="grid{g}-in"/></asset>"#
            ));
            assets.push_str(&format!(
                r#"<asset xsi:type="esdl:EnergyConsumer" id="house{pv}" name="House {pv}"><port xsi:type="esdl:InPort" id="house{pv}-in" connectedTo="grid{g}-out"/></asset>"#
            ));
            grid_ports.push_str(&format!(" pv{pv}-out"));
        }
        assets.push_str(&format!(
            r#"<asset xsi:type="esdl:EConnection" id="grid{g}" name="Grid {g}"><port xsi:type="esdl:InPort" id="grid{g}-in" connectedTo="{}"/><port xsi:type="esdl:OutPort" id="grid{g}-out" connectedTo="house{}-in house{}-in"/></asset>"#,
            grid_ports.trim(),
            (g - 1) * 2 + 1,
            (g - 1) * 2 + 2
        ));
    }
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><esdl:EnergySystem xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:esdl="http://www.tno.nl/esdl" id="town" name="Town"><instance xsi:type="esdl:Instance" id="now" name="now"><area xsi:type="esdl:Area" id="area" name="Area">{assets}</area></instance></esdl:EnergySystem>"#
    );
    base64::engine::general_purpose::STANDARD.encode(xml)
}

/// A request: PV, houses and grids, `models` models each, `steps` steps of 15 minutes.
pub(crate) fn request(name: &str, grids: usize, models: u32, steps: u64) -> Json {
    json!({
        "name": name,
        "start_date": "2024-06-01 00:00:00",
        "time_step_seconds": 900,
        "nr_of_time_steps": steps,
        "max_step_calc_time_minutes": 1,
        "keep_logs_hours": 0,
        "log_level": "info",
        "calculation_services": [
            {"esdl_type": "PVInstallation", "calc_service_name": "pv", "service_image_url": "pv", "nr_of_models": models},
            {"esdl_type": "EnergyConsumer", "calc_service_name": "house", "service_image_url": "house", "nr_of_models": models},
            {"esdl_type": "EConnection", "calc_service_name": "grid", "service_image_url": "grid", "nr_of_models": models},
        ],
        "esdl_base64string": esdl(grids),
    })
}

fn index(id: &str) -> f64 {
    id.trim_start_matches(|c: char| c.is_alphabetic())
        .parse()
        .unwrap_or(0.0)
}

/// PV output per step: a daily bell, different per installation.
pub(crate) fn pv_power(id: &str, step: u64) -> f64 {
    let hour = ((step - 1) % 96) as f64 / 4.0;
    let sun = (std::f64::consts::PI * (hour - 6.0) / 12.0).sin().max(0.0);
    (1000.0 + 10.0 * index(id)) * sun
}

/// A house's load per step.
pub(crate) fn house_load(id: &str, step: u64) -> f64 {
    300.0 + 5.0 * index(id) + (step % 7) as f64
}

/// Outputs `power` of each of its PV installations; checks its clock is the step's time.
#[derive(Default)]
pub(crate) struct Pv {
    ids: Vec<String>,
}

impl Model for Pv {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        self.ids = setup.esdl_ids.clone();
        Ok(Vec::new())
    }

    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
        if step.ctx().now() != step.time() {
            return Err(ModelError::new(format!(
                "clock at {} in step at {}",
                step.ctx().now(),
                step.time()
            )));
        }
        for id in self.ids.clone() {
            step.output(&id, "power", pv_power(&id, step.number()));
        }
        Ok(())
    }
}

/// Outputs `load` of each of its houses.
#[derive(Default)]
pub(crate) struct House {
    ids: Vec<String>,
}

impl Model for House {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        self.ids = setup.esdl_ids.clone();
        Ok(Vec::new())
    }

    fn step(&mut self, step: &mut Step<'_>) -> Result<(), ModelError> {
        for id in self.ids.clone() {
            step.output(&id, "load", house_load(&id, step.number()));
        }
        Ok(())
    }
}

/// Waits for the PV and house values connected to each of its grid connections and
/// outputs `net` = loads − PV.
#[derive(Default)]
pub(crate) struct Grid {
    ids: Vec<(String, Vec<Input>)>,
}

impl Model for Grid {
    fn parameterize(&mut self, setup: &ModelSetup) -> Result<Vec<Input>, ModelError> {
        let mut all = Vec::new();
        for id in &setup.esdl_ids {
            let o = setup
                .esdl
                .get(id)
                .ok_or_else(|| ModelError::new(format!("no {id}")))?;
            let inputs: Vec<Input> = o
                .connected
                .iter()
                .map(|c| match setup.esdl.get(c).map(|x| x.esdl_type.as_str()) {
                    Some("PVInstallation") => Input::new("pv", c, "power"),
                    _ => Input::new("house", c, "load"),
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
                let v = step
                    .input(&i.service, &i.esdl_id, &i.name)
                    .ok_or_else(|| ModelError::new("input missing"))?;
                net += if i.service == "pv" { -v } else { v };
            }
            step.output(id, "net", net);
        }
        Ok(())
    }
}

/// The registered services of the tests.
pub(crate) fn service() -> volttron::simulation::SimulationService {
    volttron::simulation::SimulationService::new()
        .model("pv", |_| Pv::default())
        .model("house", |_| House::default())
        .model("grid", |_| Grid::default())
}

/// Calls `platform.simulation`.
pub(crate) async fn call<T: serde::de::DeserializeOwned>(
    p: &Platform,
    method: &str,
    args: Json,
) -> Result<T, String> {
    let args: Vec<volttron::Value> = match args {
        Json::Array(a) => a.into_iter().map(volttron::Value::from).collect(),
        one => vec![volttron::Value::from(one)],
    };
    p.call(IDENTITY, method, args)
        .timeout(Duration::from_secs(30))
        .returning()
        .await
        .map_err(|e| e.to_string())
}

/// Starts (or queues) `request`; its status.
pub(crate) async fn start(p: &Platform, method: &str, request: Json) -> SimulationStatus {
    call(p, method, json!([request]))
        .await
        .expect("the request is accepted")
}

/// Waits (at most 60 s of wall time) until `id` satisfies `done`; its status.
pub(crate) async fn wait_for(
    p: &Platform,
    id: &str,
    what: &str,
    done: impl Fn(&SimulationStatus) -> bool,
) -> SimulationStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s: SimulationStatus = call(p, "status", json!([id])).await.expect("status");
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{id}: not {what} within 60 s: {s:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `id` has ended and every agent it started has stopped.
pub(crate) async fn wait_stopped(p: &Platform, id: &str) -> SimulationStatus {
    wait_for(p, id, "stopped", |s| s.state.is_terminal() && s.stopped).await
}

/// The peers a simulation left behind.
pub(crate) fn leftovers(p: &Platform) -> Vec<String> {
    p.peers()
        .iter()
        .map(|i| i.to_string())
        .filter(|i| i.starts_with("simulation.") || i == "thermostat")
        .collect()
}
