//! The calculation services and companion agents an embedding application registers by
//! name: a request's `service_image_url` names one, its `agents` list names the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::agent::Agent;
use crate::core::Identity;
use crate::platform::supervision::{ChildSpec, Restart};
use crate::simulation::model::{Model, ModelAgent, ModelSpec};

type ChildFactory = Arc<dyn Fn(&ModelSpec, Identity) -> ChildSpec + Send + Sync>;

/// How the models of a registered service are made.
#[derive(Clone)]
pub(crate) enum ServiceEntry {
    /// Agents in this process.
    Agent(ChildFactory),
    /// A program per model, speaking the lifecycle protocol over MQTT (or any way that
    /// reaches the bus): its messages are taken from any sender.
    Program {
        command: Vec<String>,
        env: Vec<(String, String)>,
    },
}

/// Calculation services and companion agents by name.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    services: BTreeMap<String, ServiceEntry>,
    companions: BTreeMap<String, ChildFactory>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("companions", &self.companions.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn child<A: Agent>(identity: Identity, agent: A) -> ChildSpec {
    ChildSpec::instance(identity, agent).restart(Restart::Temporary)
}

impl Registry {
    /// Registers service `name`: each model is `factory(spec)`, run by the platform's
    /// model agent.
    pub(crate) fn model<M: Model>(
        &mut self,
        name: &str,
        factory: impl Fn(&ModelSpec) -> M + Send + Sync + 'static,
    ) {
        let f: ChildFactory =
            Arc::new(move |spec, id| child(id, ModelAgent::new(spec.clone(), Box::new(factory(spec)))));
        self.services.insert(name.to_owned(), ServiceEntry::Agent(f));
    }

    /// Registers service `name` whose models are processes running `command`.
    pub(crate) fn program(&mut self, name: &str, command: Vec<String>, env: Vec<(String, String)>) {
        self.services
            .insert(name.to_owned(), ServiceEntry::Program { command, env });
    }

    /// Registers service `name` whose models are agents speaking the lifecycle protocol
    /// themselves (see [`topics`](crate::simulation::topics) and
    /// [`lifecycle`](crate::simulation::lifecycle)).
    pub(crate) fn agent<A: Agent>(
        &mut self,
        name: &str,
        factory: impl Fn(&ModelSpec) -> A + Send + Sync + 'static,
    ) {
        let f: ChildFactory = Arc::new(move |spec, id| child(id, factory(spec)));
        self.services.insert(name.to_owned(), ServiceEntry::Agent(f));
    }

    /// Registers companion agent `name`: a request listing it in `agents` runs it, with
    /// identity `name`, under the simulation's clock for the length of the run.
    pub(crate) fn companion<A: Agent>(
        &mut self,
        name: &str,
        factory: impl Fn() -> A + Send + Sync + 'static,
    ) {
        let f: ChildFactory = Arc::new(move |_, id| child(id, factory()));
        self.companions.insert(name.to_owned(), f);
    }

    pub(crate) fn service(&self, name: &str) -> Option<&ServiceEntry> {
        self.services.get(name)
    }

    pub(crate) fn has_companion(&self, name: &str) -> bool {
        self.companions.contains_key(name)
    }

    /// The child for a model, `None` for a program's.
    pub(crate) fn model_child(entry: &ServiceEntry, spec: &ModelSpec) -> Result<Option<ChildSpec>, String> {
        let id = Identity::new(&spec.identity).map_err(|e| e.to_string())?;
        Ok(match entry {
            ServiceEntry::Agent(f) => Some(f(spec, id)),
            ServiceEntry::Program { .. } => None,
        })
    }

    /// The child for a companion, `None` if it is not registered.
    pub(crate) fn companion_child(&self, name: &str, simulation: &str) -> Option<Result<ChildSpec, String>> {
        let f = self.companions.get(name)?;
        let spec = ModelSpec {
            simulation_id: simulation.to_owned(),
            model_id: name.to_owned(),
            service: name.to_owned(),
            identity: name.to_owned(),
        };
        Some(
            Identity::new(name)
                .map_err(|e| e.to_string())
                .map(|id| f(&spec, id)),
        )
    }
}
