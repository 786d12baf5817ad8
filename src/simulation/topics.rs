//! DOTS's topic layout, on the bus as on MQTT:
//!
//! | topic | carries |
//! |-------|---------|
//! | `/lifecycle/<sender>/<receiver>/<simulation>/<message>` | a lifecycle message about the whole simulation |
//! | `/lifecycle/<sender>/<receiver>/<simulation>/<model>/<message>` | one about one model |
//! | `/data/<service>/model/<simulation>/<esdl id>/<name>` | an output of an ESDL object ([`DataValue`](crate::simulation::lifecycle::DataValue)) |
//! | `/lifecycle/dots-so/model/<simulation>/NewStep` | a step, for every in-process model at once (programs' models get it on their own topic) |
//! | `simulation/<simulation>/progress` | this project's: the run's state, step and models (JSON) |
//!
//! Senders and receivers: [`SO`] (the orchestrator), [`MSO`] (the orchestrator
//! deploying), [`MODEL`].

/// The orchestrator's name in topics (DOTS's `dots-so`).
pub const SO: &str = "dots-so";
/// The deployer's name in topics.
pub const MSO: &str = "mso";
/// A model's name in topics.
pub const MODEL: &str = "model";

/// `/lifecycle/<from>/<to>/<sim>/<model>/<message>`.
pub fn to_model(from: &str, to: &str, sim: &str, model: &str, message: &str) -> String {
    format!("/lifecycle/{from}/{to}/{sim}/{model}/{message}")
}

/// `/lifecycle/<from>/<to>/<sim>/<message>`.
pub fn about_simulation(from: &str, to: &str, sim: &str, message: &str) -> String {
    format!("/lifecycle/{from}/{to}/{sim}/{message}")
}

/// The prefix of the lifecycle messages a model receives.
pub fn model_inbox(sim: &str, model: &str) -> String {
    format!("/lifecycle/{SO}/{MODEL}/{sim}/{model}/")
}

/// `/data/<service>/model/<sim>/<esdl id>/<name>`.
pub fn data(service: &str, sim: &str, esdl_id: &str, name: &str) -> String {
    format!("/data/{service}/{MODEL}/{sim}/{esdl_id}/{name}")
}

/// The prefix of the data of one ESDL object of a service.
pub fn data_of(service: &str, sim: &str, esdl_id: &str) -> String {
    format!("/data/{service}/{MODEL}/{sim}/{esdl_id}/")
}

/// `simulation/<sim>/progress`.
pub fn progress(sim: &str) -> String {
    format!("simulation/{sim}/progress")
}

/// A lifecycle topic taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleTopic<'a> {
    /// Who sent it.
    pub sender: &'a str,
    /// For whom.
    pub receiver: &'a str,
    /// The simulation.
    pub simulation: &'a str,
    /// The model, for messages about one.
    pub model: Option<&'a str>,
    /// The message's name.
    pub message: &'a str,
}

/// Takes a lifecycle topic apart; `None` if it is not one.
pub fn parse_lifecycle(topic: &str) -> Option<LifecycleTopic<'_>> {
    let rest = topic.strip_prefix("/lifecycle/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (model, message) = match parts.len() {
        4 => (None, parts[3]),
        5 => (Some(parts[3]), parts[4]),
        _ => return None,
    };
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(LifecycleTopic {
        sender: parts[0],
        receiver: parts[1],
        simulation: parts[2],
        model,
        message,
    })
}

/// A data topic taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTopic<'a> {
    /// The producing service.
    pub service: &'a str,
    /// The simulation.
    pub simulation: &'a str,
    /// The ESDL object.
    pub esdl_id: &'a str,
    /// The output's name.
    pub name: &'a str,
}

/// Takes a data topic apart; `None` if it is not one.
pub fn parse_data(topic: &str) -> Option<DataTopic<'_>> {
    let rest = topic.strip_prefix("/data/")?;
    let mut p = rest.split('/');
    let (service, receiver, simulation, esdl_id, name) =
        (p.next()?, p.next()?, p.next()?, p.next()?, p.next()?);
    if p.next().is_some()
        || receiver != MODEL
        || [service, simulation, esdl_id, name].iter().any(|s| s.is_empty())
    {
        return None;
    }
    Some(DataTopic {
        service,
        simulation,
        esdl_id,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = to_model(MODEL, SO, "sim-1", "pv-1", "CalculationsDone");
        assert_eq!(t, "/lifecycle/model/dots-so/sim-1/pv-1/CalculationsDone");
        let p = parse_lifecycle(&t).unwrap();
        assert_eq!(
            (p.sender, p.receiver, p.simulation, p.model, p.message),
            (MODEL, SO, "sim-1", Some("pv-1"), "CalculationsDone")
        );
        let t = about_simulation(MSO, SO, "s", "ModelsReady");
        assert_eq!(parse_lifecycle(&t).unwrap().model, None);
        assert!(parse_lifecycle("/lifecycle/a/b").is_none());
        assert!(parse_lifecycle("/lifecycle/a//c/d").is_none());
        let d = data("pv", "s", "pv1", "power");
        assert!(d.starts_with(&data_of("pv", "s", "pv1")));
        assert_eq!(parse_data(&d).unwrap().name, "power");
        assert!(parse_data("/data/pv/mso/s/pv1/power").is_none());
        assert!(parse_data("/data/pv/model/s/pv1/power/x").is_none());
    }
}
