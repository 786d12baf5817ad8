//! A simulation as DOTS's `POST /api/v1/simulation/start` body describes it, and its
//! validation into a [`SimulationPlan`].
//!
//! | field | meaning | default |
//! |-------|---------|---------|
//! | `name` | shown in lists; the id is `<name[:20] lowercased, spaces as '-'>-<8 hex>` | required |
//! | `start_date` | simulated start, `"2023-01-25 00:00:00"` (UTC) or RFC 3339 | required |
//! | `time_step_seconds` | simulated length of one step | required |
//! | `nr_of_time_steps` | how many steps | or `simulation_duration_in_seconds` (DOTS's HELICS generation): `ceil(duration / step)` |
//! | `max_step_calc_time_minutes` | wall time one step may take | 10 |
//! | `keep_logs_hours` | how long the models' logs are kept after the run | 0 |
//! | `log_level` | `debug`, `info`, `warning`, `error` | `info` |
//! | `calculation_services[]` | `esdl_type`, `calc_service_name`, `service_image_url` (how it is started), `nr_of_models` (0: one per ESDL object) | required |
//! | `esdl_base64string` | the energy system, base64 ESDL (XML) | required |
//! | `deploy_timeout_seconds` | this project's: wall time for every model to become ready | 60 |
//! | `agents` | this project's: agents registered with the service, run under the simulation's clock beside the models | none |

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::simulation::esdl::{Esdl, EsdlError, EsdlObject};

/// DOTS's start (and queue) request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationRequest {
    /// A name for people.
    pub name: String,
    /// Simulated start time: `"YYYY-MM-DD HH:MM:SS"` (UTC) or RFC 3339.
    pub start_date: String,
    /// Simulated seconds per step.
    #[serde(default)]
    pub time_step_seconds: Option<u64>,
    /// Number of steps.
    #[serde(default)]
    pub nr_of_time_steps: Option<u64>,
    /// DOTS's HELICS generation: the simulated duration instead of a step count.
    #[serde(default)]
    pub simulation_duration_in_seconds: Option<u64>,
    /// Wall-clock minutes one step may take before the run fails.
    #[serde(default = "default_max_step_minutes")]
    pub max_step_calc_time_minutes: f64,
    /// Hours the models' logs are kept after the run.
    #[serde(default)]
    pub keep_logs_hours: f64,
    /// `debug`, `info`, `warning` or `error`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// The calculation services and how many models each runs.
    pub calculation_services: Vec<CalculationServiceRequest>,
    /// The ESDL document, base64.
    pub esdl_base64string: String,
    /// Wall-clock seconds for every model to become ready (this project's; DOTS has none
    /// and hangs).
    #[serde(default)]
    pub deploy_timeout_seconds: Option<f64>,
    /// Agents registered with the service by name, run beside the models under the
    /// simulation's clock (this project's).
    #[serde(default)]
    pub agents: Vec<String>,
}

fn default_max_step_minutes() -> f64 {
    10.0
}

fn default_log_level() -> String {
    "info".into()
}

/// One calculation service of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalculationServiceRequest {
    /// The ESDL type its models calculate (`PVInstallation`; `EnergySystem` is the root).
    pub esdl_type: String,
    /// The service's name: models are `<name>-<i>`, and its data topics carry it.
    pub calc_service_name: String,
    /// How its models start: the name of a service registered with
    /// [`SimulationService`](crate::simulation::SimulationService) (DOTS: a container image).
    pub service_image_url: String,
    /// How many models; 0 is one per ESDL object of the type.
    #[serde(default)]
    pub nr_of_models: u32,
    /// Extra environment for the models (DOTS's HELICS generation), given to them in
    /// their parameters.
    #[serde(default)]
    pub additional_env_variable: Vec<EnvironmentVariable>,
}

/// A name and value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// Why a request is not a simulation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// A field has a value that cannot be used.
    #[error("{field}: {message}")]
    Field {
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The ESDL document could not be read.
    #[error("esdl_base64string: {0}")]
    Esdl(#[from] EsdlError),
}

fn field(field: &'static str, message: impl Into<String>) -> RequestError {
    RequestError::Field {
        field,
        message: message.into(),
    }
}

/// The most steps a simulation may have.
pub const MAX_STEPS: u64 = 100_000_000;

/// A request checked and worked out: times, models and the ESDL objects of each.
#[derive(Debug, Clone)]
pub struct SimulationPlan {
    /// The request it came from.
    pub request: SimulationRequest,
    /// The simulated start.
    pub start: DateTime<Utc>,
    /// Simulated length of a step.
    pub time_step: Duration,
    /// Number of steps.
    pub steps: u64,
    /// Wall time one step may take.
    pub step_deadline: Duration,
    /// Wall time for every model to become ready.
    pub deploy_deadline: Duration,
    /// The models, ordered by service then number.
    pub models: Vec<ModelPlan>,
    /// The ESDL objects by id.
    pub esdl: Esdl,
}

/// One model of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPlan {
    /// `<calc_service_name>-<i>`, from 1.
    pub model_id: String,
    /// Its service's `calc_service_name`.
    pub service: String,
    /// Its service's `service_image_url`.
    pub start_with: String,
    /// Its service's `esdl_type`.
    pub esdl_type: String,
    /// The ESDL objects it calculates.
    pub esdl_ids: Vec<String>,
}

impl SimulationRequest {
    /// Parses a JSON body.
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        serde_json::from_slice(body).map_err(|e| field("body", e.to_string()))
    }

    /// Checks the request and works out its plan.
    pub fn plan(&self) -> Result<SimulationPlan, RequestError> {
        if self.name.trim().is_empty() {
            return Err(field("name", "empty"));
        }
        let start = parse_start(&self.start_date)?;
        let step_s = self
            .time_step_seconds
            .ok_or_else(|| field("time_step_seconds", "missing"))?;
        if step_s == 0 {
            return Err(field("time_step_seconds", "must be at least 1"));
        }
        let steps = match (self.nr_of_time_steps, self.simulation_duration_in_seconds) {
            (Some(_), Some(_)) => {
                return Err(field(
                    "nr_of_time_steps",
                    "give either nr_of_time_steps or simulation_duration_in_seconds",
                ));
            }
            (Some(n), None) => n,
            (None, Some(d)) => d.div_ceil(step_s),
            (None, None) => return Err(field("nr_of_time_steps", "missing")),
        };
        if steps == 0 || steps > MAX_STEPS {
            return Err(field("nr_of_time_steps", format!("must be 1 to {MAX_STEPS}")));
        }
        let step_deadline = minutes(self.max_step_calc_time_minutes, "max_step_calc_time_minutes")?;
        let deploy_deadline = match self.deploy_timeout_seconds {
            Some(s) => seconds(s, "deploy_timeout_seconds")?,
            None => Duration::from_secs(60),
        };
        if !(self.keep_logs_hours.is_finite() && self.keep_logs_hours >= 0.0) {
            return Err(field("keep_logs_hours", "must be 0 or more"));
        }
        if !matches!(
            self.log_level.to_ascii_lowercase().as_str(),
            "debug" | "info" | "warning" | "error"
        ) {
            return Err(field(
                "log_level",
                format!("{:?} is not debug, info, warning or error", self.log_level),
            ));
        }
        if self.calculation_services.is_empty() {
            return Err(field("calculation_services", "empty"));
        }
        let esdl = Esdl::from_base64(&self.esdl_base64string)?;
        let mut models = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for svc in &self.calculation_services {
            check_name(&svc.calc_service_name, "calc_service_name")?;
            if !names.insert(svc.calc_service_name.as_str()) {
                return Err(field(
                    "calc_service_name",
                    format!("{:?} appears twice", svc.calc_service_name),
                ));
            }
            if svc.service_image_url.is_empty() {
                return Err(field("service_image_url", "empty"));
            }
            let objects: Vec<&EsdlObject> = esdl.of_type(&svc.esdl_type).collect();
            if objects.is_empty() {
                return Err(field(
                    "esdl_type",
                    format!("the ESDL document has no object of type {:?}", svc.esdl_type),
                ));
            }
            let n = if svc.nr_of_models == 0 {
                objects.len()
            } else {
                svc.nr_of_models as usize
            };
            if n > objects.len() {
                return Err(field(
                    "nr_of_models",
                    format!("{} models for {} {} objects", n, objects.len(), svc.esdl_type),
                ));
            }
            // Even split, in document order: the first `len % n` models get one more.
            let (each, extra) = (objects.len() / n, objects.len() % n);
            let mut next = 0;
            for i in 0..n {
                let take = each + usize::from(i < extra);
                models.push(ModelPlan {
                    model_id: format!("{}-{}", svc.calc_service_name, i + 1),
                    service: svc.calc_service_name.clone(),
                    start_with: svc.service_image_url.clone(),
                    esdl_type: svc.esdl_type.clone(),
                    esdl_ids: objects[next..next + take].iter().map(|o| o.id.clone()).collect(),
                });
                next += take;
            }
        }
        for a in &self.agents {
            check_name(a, "agents")?;
        }
        Ok(SimulationPlan {
            request: self.clone(),
            start,
            time_step: Duration::from_secs(step_s),
            steps,
            step_deadline,
            deploy_deadline,
            models,
            esdl,
        })
    }
}

/// A simulation id as DOTS makes them: the name's first 20 characters, lowercased, spaces
/// as `-`, then `-` and 8 hex digits of a random UUID. Characters that cannot appear in a
/// topic level or an agent identity become `-`.
pub fn simulation_id(name: &str) -> String {
    let stem: String = name
        .chars()
        .take(20)
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!("{stem}-{}", &uuid[..8])
}

fn check_name(s: &str, what: &'static str) -> Result<(), RequestError> {
    if s.is_empty() || s.len() > 64 {
        return Err(field(what, format!("{s:?} must be 1 to 64 characters")));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        return Err(field(
            what,
            format!("{s:?} has {c:?}: use letters, digits, '_' and '-'"),
        ));
    }
    Ok(())
}

fn parse_start(s: &str) -> Result<DateTime<Utc>, RequestError> {
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Ok(t.and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            field(
                "start_date",
                format!("{s:?} is not \"YYYY-MM-DD HH:MM:SS\" or RFC 3339"),
            )
        })
}

fn minutes(m: f64, what: &'static str) -> Result<Duration, RequestError> {
    seconds(m * 60.0, what)
}

fn seconds(s: f64, what: &'static str) -> Result<Duration, RequestError> {
    if !(s.is_finite() && s > 0.0 && s <= 366.0 * 86400.0) {
        return Err(field(what, "must be more than 0 and at most a year"));
    }
    Ok(Duration::from_secs_f64(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    pub(crate) fn esdl_b64() -> String {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<esdl:EnergySystem xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:esdl="http://www.tno.nl/esdl" id="es1" name="Town">
  <instance xsi:type="esdl:Instance" id="i1" name="now">
    <area xsi:type="esdl:Area" id="a1" name="area">
      <asset xsi:type="esdl:PVInstallation" id="pv1" name="PV 1"/>
      <asset xsi:type="esdl:PVInstallation" id="pv2" name="PV 2"/>
      <asset xsi:type="esdl:PVInstallation" id="pv3" name="PV 3"/>
    </area>
  </instance>
</esdl:EnergySystem>"#;
        base64::engine::general_purpose::STANDARD.encode(xml)
    }

    fn request() -> SimulationRequest {
        SimulationRequest::from_json(
            serde_json::json!({
                "name": "My Town Simulation 2024 run",
                "start_date": "2023-01-25 00:00:00",
                "time_step_seconds": 3600,
                "nr_of_time_steps": 24,
                "max_step_calc_time_minutes": 10,
                "keep_logs_hours": 1,
                "log_level": "info",
                "calculation_services": [{
                    "esdl_type": "PVInstallation",
                    "calc_service_name": "pv",
                    "service_image_url": "pv",
                    "nr_of_models": 2
                }],
                "esdl_base64string": esdl_b64(),
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn dots_body_becomes_a_plan_with_an_even_split() {
        let plan = request().plan().unwrap();
        assert_eq!(plan.steps, 24);
        assert_eq!(plan.time_step, Duration::from_secs(3600));
        assert_eq!(plan.start.to_rfc3339(), "2023-01-25T00:00:00+00:00");
        let ids: Vec<_> = plan
            .models
            .iter()
            .map(|m| (m.model_id.as_str(), m.esdl_ids.clone()))
            .collect();
        assert_eq!(
            ids,
            [
                ("pv-1", vec!["pv1".to_owned(), "pv2".to_owned()]),
                ("pv-2", vec!["pv3".to_owned()])
            ]
        );
    }

    #[test]
    fn zero_models_is_one_per_object_and_duration_gives_the_steps() {
        let mut r = request();
        r.calculation_services[0].nr_of_models = 0;
        r.nr_of_time_steps = None;
        r.simulation_duration_in_seconds = Some(3600 * 5 + 1);
        let plan = r.plan().unwrap();
        assert_eq!(plan.models.len(), 3);
        assert_eq!(plan.steps, 6);
    }

    #[test]
    fn bad_requests_name_their_field() {
        type Change = Box<dyn Fn(&mut SimulationRequest)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|r| r.start_date = "yesterday".into()), "start_date"),
            (Box::new(|r| r.time_step_seconds = Some(0)), "time_step_seconds"),
            (Box::new(|r| r.nr_of_time_steps = None), "nr_of_time_steps"),
            (
                Box::new(|r| r.max_step_calc_time_minutes = -1.0),
                "max_step_calc_time_minutes",
            ),
            (
                Box::new(|r| r.calculation_services[0].nr_of_models = 4),
                "nr_of_models",
            ),
            (
                Box::new(|r| r.calculation_services[0].esdl_type = "Battery".into()),
                "esdl_type",
            ),
            (
                Box::new(|r| r.calculation_services[0].calc_service_name = "p v".into()),
                "calc_service_name",
            ),
            (Box::new(|r| r.log_level = "loud".into()), "log_level"),
            (
                Box::new(|r| r.esdl_base64string = "%%%".into()),
                "esdl_base64string",
            ),
        ];
        for (change, name) in cases {
            let mut r = request();
            change(&mut r);
            let e = r.plan().unwrap_err().to_string();
            assert!(e.starts_with(name), "{name}: {e}");
        }
        let e = SimulationRequest::from_json(br#"{"name": 1}"#).unwrap_err();
        assert!(e.to_string().starts_with("body"), "{e}");
    }

    #[test]
    fn ids_follow_dots() {
        let id = simulation_id("My Town Simulation 2024 run");
        assert!(id.starts_with("my-town-simulation-2-"), "{id}");
        assert_eq!(id.len(), 20 + 1 + 8);
        assert!(crate::core::Identity::new(&id).is_ok());
    }
}
