//! The agent supervisor: owns the registry of running agents, places new agents on the
//! agent arbiters, and hands shutdown the agents in reverse start order.
//!
//! | event                     | effect                                                    |
//! |---------------------------|-----------------------------------------------------------|
//! | spawn, identity free      | host started on the next agent arbiter (round robin)      |
//! | spawn, identity taken     | refused at once with `SpawnError::DuplicateIdentity`      |
//! | agent stops (asked)       | removed; status `Stopped`                                 |
//! | agent panics              | removed; status `Crashed(reason)`; platform unaffected    |
//! | `on_setup`/`on_start` fails | removed; status `StartFailed(reason)`; spawn returns the error |
//! | shutdown                  | no new spawns; agents listed newest first for stopping    |
//!
//! Restart policies (OTP's permanent/transient/temporary, intensity, escalation) build on
//! this registry; in this version an exited agent stays down.

use std::collections::{BTreeMap, HashMap};

use actix::prelude::*;

use crate::agent::host::{KillAgent, StopAgent};
use crate::core::Identity;

/// Why an agent left the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// It was stopped (by itself, the handle, or shutdown) and ran `on_stop`.
    Normal,
    /// A handler panicked; the message is the panic's.
    Crashed(String),
    /// `on_setup` or `on_start` failed or panicked.
    StartFailed(String),
    /// It did not stop in time and was ended without `on_stop`.
    Killed(String),
}

/// An agent's state as the supervisor knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentStatus {
    /// Running (or booting).
    Running,
    /// Exited for the given reason.
    Exited(ExitReason),
}

/// Tells the supervisor an agent has left.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct AgentExited {
    pub(crate) identity: Identity,
    pub(crate) peer_id: u64,
    pub(crate) reason: ExitReason,
}

/// The control channels of one running agent (they bypass its data mailbox).
#[derive(Clone)]
pub(crate) struct AgentControl {
    pub(crate) stop: Recipient<StopAgent>,
    pub(crate) kill: Recipient<KillAgent>,
}

/// Starts an agent host on the given arbiter and returns its control channels.
pub(crate) type Starter = Box<dyn FnOnce(&ArbiterHandle, Recipient<AgentExited>) -> AgentControl + Send>;

/// Asks to start an agent.
#[derive(Message)]
#[rtype(result = "Result<AgentControl, SpawnRefusal>")]
pub(crate) struct Spawn {
    pub(crate) identity: Identity,
    pub(crate) peer_id: u64,
    pub(crate) starter: Starter,
}

/// Why the supervisor refused a spawn.
#[derive(Debug)]
pub(crate) enum SpawnRefusal {
    Duplicate,
    ShuttingDown,
}

/// Looks up an agent's control channels.
#[derive(Message)]
#[rtype(result = "Option<AgentControl>")]
pub(crate) struct Lookup(pub(crate) Identity);

/// Looks up an agent's status.
#[derive(Message)]
#[rtype(result = "Option<AgentStatus>")]
pub(crate) struct Status(pub(crate) Identity);

/// Begins shutdown: returns the running agents, newest first.
#[derive(Message)]
#[rtype(result = "Vec<(Identity, AgentControl)>")]
pub(crate) struct BeginShutdown;

struct AgentRecord {
    peer_id: u64,
    /// Start order.
    sequence: u64,
    control: AgentControl,
}

pub(crate) struct Supervisor {
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: usize,
    running: HashMap<Identity, AgentRecord>,
    /// Start sequence -> identity, for reverse-order shutdown.
    order: BTreeMap<u64, Identity>,
    next_sequence: u64,
    exited: HashMap<Identity, ExitReason>,
    shutting_down: bool,
}

impl Supervisor {
    pub(crate) fn new(arbiters: Vec<ArbiterHandle>) -> Self {
        Supervisor {
            arbiters,
            next_arbiter: 0,
            running: HashMap::new(),
            order: BTreeMap::new(),
            next_sequence: 0,
            exited: HashMap::new(),
            shutting_down: false,
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<Spawn> for Supervisor {
    type Result = Result<AgentControl, SpawnRefusal>;

    fn handle(&mut self, msg: Spawn, ctx: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Err(SpawnRefusal::ShuttingDown);
        }
        if self.running.contains_key(&msg.identity) {
            return Err(SpawnRefusal::Duplicate);
        }
        let arbiter = &self.arbiters[self.next_arbiter % self.arbiters.len()];
        self.next_arbiter = self.next_arbiter.wrapping_add(1);
        let control = (msg.starter)(arbiter, ctx.address().recipient());
        self.exited.remove(&msg.identity);
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.order.insert(sequence, msg.identity.clone());
        self.running.insert(
            msg.identity,
            AgentRecord {
                peer_id: msg.peer_id,
                sequence,
                control: control.clone(),
            },
        );
        Ok(control)
    }
}

impl Handler<AgentExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: AgentExited, _: &mut Context<Self>) {
        let matches = self
            .running
            .get(&msg.identity)
            .is_some_and(|r| r.peer_id == msg.peer_id);
        if matches && let Some(record) = self.running.remove(&msg.identity) {
            self.order.remove(&record.sequence);
            self.exited.insert(msg.identity, msg.reason);
        }
    }
}

impl Handler<Lookup> for Supervisor {
    type Result = Option<AgentControl>;

    fn handle(&mut self, msg: Lookup, _: &mut Context<Self>) -> Self::Result {
        self.running.get(&msg.0).map(|r| r.control.clone())
    }
}

impl Handler<Status> for Supervisor {
    type Result = Option<AgentStatus>;

    fn handle(&mut self, msg: Status, _: &mut Context<Self>) -> Self::Result {
        if self.running.contains_key(&msg.0) {
            return Some(AgentStatus::Running);
        }
        self.exited.get(&msg.0).cloned().map(AgentStatus::Exited)
    }
}

impl Handler<BeginShutdown> for Supervisor {
    type Result = Vec<(Identity, AgentControl)>;

    fn handle(&mut self, _: BeginShutdown, _: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        self.order
            .values()
            .rev()
            .filter_map(|id| Some((id.clone(), self.running.get(id)?.control.clone())))
            .collect()
    }
}
