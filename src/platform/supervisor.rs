//! The supervisor actor behind [`supervision`](crate::platform::supervision): one node of
//! the supervision tree. The platform's root node is a dynamic `OneForOne` supervisor that
//! holds every agent started with `Platform::spawn` and every supervisor started with
//! `Platform::supervise`; see the `supervision` module docs for the semantics.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::core::{Headers, Health, Identity, Map, Status, Topic, Value};
use crate::platform::SpawnError;
use crate::platform::mailbox::Activity;
use crate::platform::runtime::{AgentControl, AgentRecord, Runtime};
use crate::platform::supervision::{
    AgentStatus, Backoff, ChildKind, ChildSpec, ExitReason, Restart, Shutdown as ShutdownPolicy, Strategy,
    SupervisorSpec,
};

use crate::platform::supervision::ExitReason as Reason;

/// Tells a supervisor that one of its children (an agent or a supervisor) has ended.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct AgentExited {
    /// The agent identity or the supervisor name.
    pub(crate) name: String,
    /// Which start of that child (an agent's peer number, a supervisor's instance).
    pub(crate) instance: u64,
    /// The agent type's name, for alert topics.
    pub(crate) kind: &'static str,
    pub(crate) reason: Reason,
}

impl AgentExited {
    /// Sends this to a supervisor, counted as platform activity until it is handled (so
    /// that `settle` waits for the supervisor's reaction).
    pub(crate) fn report(self, to: &Recipient<AgentExited>, activity: Option<&Arc<Activity>>) {
        if !to.connected() {
            return;
        }
        if let Some(a) = activity {
            a.begin();
        }
        to.do_send(self);
    }
}

/// Starts a child under this supervisor (dynamic supervisors: the root).
#[derive(Message)]
#[rtype(result = "Result<Option<SupervisorHandle>, SpawnError>")]
pub(crate) struct StartChild(pub(crate) ChildSpec);

/// The address of a started child supervisor.
pub(crate) type SupervisorHandle = Addr<SupervisorNode>;

/// Starts every child of a freshly made supervisor, in order.
#[derive(Message)]
#[rtype(result = "Result<(), SpawnError>")]
struct StartChildren;

/// Stops one child for good (not restarted); false if there is no such running child.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct StopChild(pub(crate) String);

/// The status and health of an agent, answered in order with the exits this supervisor
/// has seen.
#[derive(Message)]
#[rtype(result = "Option<(AgentStatus, Health)>")]
pub(crate) struct QueryStatus(pub(crate) Identity);

/// Stops every child in reverse start order, then the supervisor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Shutdown;

enum Running {
    Agent {
        identity: Identity,
        control: AgentControl,
    },
    Supervisor(Addr<SupervisorNode>),
}

enum ChildState {
    /// Being started; an exit seen meanwhile is kept for when the start finishes.
    Booting {
        instance: u64,
        exited: Option<Reason>,
    },
    Running {
        instance: u64,
        running: Running,
    },
    /// Being stopped (by its supervisor): its exit is expected, not a failure.
    Stopping,
    /// Not running and not to be restarted (until its group restarts).
    Down,
}

struct Child {
    spec: ChildSpec,
    state: ChildState,
}

/// One supervisor of the tree.
pub(crate) struct SupervisorNode {
    rt: Arc<Runtime>,
    name: String,
    strategy: Strategy,
    max_restarts: u32,
    period: Duration,
    backoff: Backoff,
    /// The top of the tree: gives up on single children instead of escalating.
    root: bool,
    /// In start order; `None` once a dynamic child is gone.
    children: Vec<Option<Child>>,
    by_name: HashMap<String, usize>,
    /// Clock times of recent restarts (the intensity window).
    restarts: VecDeque<Duration>,
    parent: Option<(Recipient<AgentExited>, u64)>,
    stopping: bool,
    /// The clock of the agents below (`None`: the platform's).
    clock: Option<crate::platform::clock::Clock>,
    on_child_exit: Option<crate::platform::supervision::ExitHook>,
}

impl Actor for SupervisorNode {
    type Context = Context<Self>;
}

/// One step of a start or restart sequence.
type Step = std::pin::Pin<Box<dyn ActorFuture<SupervisorNode, Output = Result<(), SpawnError>>>>;

/// Stopping some children.
type Stop = std::pin::Pin<Box<dyn ActorFuture<SupervisorNode, Output = ()>>>;

impl SupervisorNode {
    /// The platform's top supervisor.
    pub(crate) fn root(rt: Arc<Runtime>) -> Self {
        SupervisorNode {
            rt,
            name: "platform".into(),
            strategy: Strategy::OneForOne,
            max_restarts: crate::platform::supervision::DEFAULT_MAX_RESTARTS,
            period: crate::platform::supervision::DEFAULT_PERIOD,
            backoff: Backoff::default(),
            root: true,
            children: Vec::new(),
            by_name: HashMap::new(),
            restarts: VecDeque::new(),
            parent: None,
            stopping: false,
            clock: None,
            on_child_exit: None,
        }
    }

    fn from_spec(rt: Arc<Runtime>, spec: SupervisorSpec, parent: (Recipient<AgentExited>, u64)) -> Self {
        let mut node = SupervisorNode {
            rt,
            name: spec.name,
            strategy: spec.strategy,
            max_restarts: spec.max_restarts,
            period: spec.period,
            backoff: spec.backoff,
            root: false,
            children: Vec::new(),
            by_name: HashMap::new(),
            restarts: VecDeque::new(),
            parent: Some(parent),
            stopping: false,
            clock: spec.clock,
            on_child_exit: spec.on_child_exit,
        };
        for child in spec.children {
            node.add(child);
        }
        node
    }

    fn add(&mut self, spec: ChildSpec) -> usize {
        let index = self.children.len();
        self.by_name.insert(spec.name().to_owned(), index);
        self.children.push(Some(Child {
            spec,
            state: ChildState::Down,
        }));
        index
    }

    fn remove(&mut self, index: usize) {
        if let Some(child) = self.children[index].take() {
            self.by_name.remove(child.spec.name());
        }
    }

    fn child(&mut self, index: usize) -> Option<&mut Child> {
        self.children.get_mut(index).and_then(Option::as_mut)
    }

    fn shutdown_policy(&self, child: &ChildSpec) -> ShutdownPolicy {
        child
            .shutdown
            .unwrap_or(ShutdownPolicy::Timeout(self.rt.shutdown_timeout))
    }

    /// Starts child `index`; resolves when it has booted (agents: `on_start` done;
    /// supervisors: all their children started).
    fn start(&mut self, index: usize, ctx: &mut Context<Self>) -> Step {
        let me = ctx.address();
        let rt = self.rt.clone();
        let Some(child) = self.children.get_mut(index).and_then(Option::as_mut) else {
            return Box::pin(fut::ready(Ok(())));
        };
        match &child.spec.kind {
            ChildKind::Agent { identity, factory } => {
                let identity = match Identity::new(identity) {
                    Ok(id) => id,
                    Err(e) => return Box::pin(fut::ready(Err(SpawnError::InvalidIdentity(e)))),
                };
                let running_elsewhere = self
                    .rt
                    .registry
                    .get(&identity)
                    .is_some_and(|r| r.control.is_some());
                if running_elsewhere || rt.endpoint.router.is_connected(&identity) {
                    return Box::pin(fut::ready(Err(SpawnError::DuplicateIdentity(identity))));
                }
                // The record first: the agent's context shares its health cell.
                match rt.registry.entry(identity.clone()) {
                    dashmap::Entry::Occupied(mut e) => {
                        let r = e.get_mut();
                        r.status = AgentStatus::Running;
                        *r.health.lock() = Health::new(Status::Starting, None, rt.clock().now());
                        r.owner = Some(me.clone());
                    }
                    dashmap::Entry::Vacant(e) => {
                        e.insert(AgentRecord {
                            status: AgentStatus::Running,
                            health: Arc::new(parking_lot::Mutex::new(Health::new(
                                Status::Starting,
                                None,
                                rt.clock().now(),
                            ))),
                            restarts: 0,
                            control: None,
                            owner: Some(me.clone()),
                        });
                    }
                }
                let started = match factory(&rt, identity.clone(), me.recipient(), self.clock.as_ref()) {
                    Ok(s) => s,
                    Err(reason) => {
                        return Box::pin(fut::ready(Err(SpawnError::StartFailed { identity, reason })));
                    }
                };
                let instance = started.peer_id;
                child.state = ChildState::Booting {
                    instance,
                    exited: None,
                };
                if let Some(mut r) = rt.registry.get_mut(&identity) {
                    r.control = Some(started.control.clone());
                }
                let control = started.control;
                let busy = rt.busy();
                Box::pin(
                    fut::wrap_future(started.boot).map(move |boot, act: &mut Self, ctx| {
                        drop(busy);
                        use crate::agent::host::BootError;
                        let result = match boot {
                            Ok(Ok(())) => Ok(()),
                            Ok(Err(BootError::Duplicate)) => {
                                Err(SpawnError::DuplicateIdentity(identity.clone()))
                            }
                            Ok(Err(BootError::Failed(reason))) => Err(SpawnError::StartFailed {
                                identity: identity.clone(),
                                reason,
                            }),
                            Err(_) => Err(SpawnError::PlatformStopped),
                        };
                        act.booted(
                            index,
                            instance,
                            result.is_ok().then_some(Running::Agent { identity, control }),
                            ctx,
                        );
                        result
                    }),
                )
            }
            ChildKind::Supervisor(spec) => {
                // The spec stays for restarts; agents are rebuilt from shared factories.
                let mut spec = spec.clone();
                if spec.clock.is_none() {
                    spec.clock.clone_from(&self.clock);
                }
                let instance = rt.endpoint.router.next_peer_id();
                child.state = ChildState::Booting {
                    instance,
                    exited: None,
                };
                let node = SupervisorNode::from_spec(rt.clone(), spec, (me.recipient(), instance)).start();
                let busy = rt.busy();
                Box::pin(
                    fut::wrap_future(node.send(StartChildren)).map(move |r, act: &mut Self, ctx| {
                        drop(busy);
                        let result = r.unwrap_or(Err(SpawnError::PlatformStopped));
                        act.booted(
                            index,
                            instance,
                            result.is_ok().then_some(Running::Supervisor(node)),
                            ctx,
                        );
                        result
                    }),
                )
            }
        }
    }

    /// A start finished: the child runs, or (with `None`) it failed to start.
    fn booted(&mut self, index: usize, instance: u64, running: Option<Running>, ctx: &mut Context<Self>) {
        let Some(child) = self.child(index) else { return };
        let ChildState::Booting { instance: i, exited } = &mut child.state else {
            return;
        };
        if *i != instance {
            return;
        }
        let exited = exited.take();
        match running {
            Some(running) => {
                // Up: STARTING becomes GOOD (unless the agent set its health itself).
                if let Running::Agent { identity, .. } = &running
                    && let Some(r) = self.rt.registry.get(identity)
                {
                    let mut health = r.health.lock();
                    if health.status == Status::Starting {
                        *health = Health::new(Status::Good, None, self.rt.clock().now());
                    }
                }
                let Some(child) = self.child(index) else { return };
                child.state = ChildState::Running { instance, running };
                if let Some(reason) = exited {
                    self.exited(index, reason, "Agent", ctx);
                }
            }
            None => child.state = ChildState::Down,
        }
    }

    /// Starts children `indices` one after another, each after the previous booted.
    fn start_in_order(&mut self, indices: Vec<usize>) -> Step {
        let mut chain: Step = Box::pin(fut::ready(Ok(())));
        for index in indices {
            chain = Box::pin(chain.then(move |r, act: &mut Self, ctx| -> Step {
                match r {
                    Ok(()) => act.start(index, ctx),
                    Err(e) => Box::pin(fut::ready(Err(e))),
                }
            }));
        }
        chain
    }

    /// Stops children `indices` (in the order given) under their shutdown policies; their
    /// exits are expected and not restarted, and recorded here.
    fn stop_children(&mut self, indices: Vec<usize>) -> Stop {
        let mut stops = Vec::new();
        for index in indices {
            let Some(policy) = self.children[index]
                .as_ref()
                .map(|c| self.shutdown_policy(&c.spec))
            else {
                continue;
            };
            let Some(child) = self.child(index) else { continue };
            match std::mem::replace(&mut child.state, ChildState::Stopping) {
                ChildState::Running { running, .. } => stops.push((running, policy)),
                other => child.state = other,
            }
        }
        let rt = self.rt.clone();
        Box::pin(
            fut::wrap_future(async move {
                let mut ended = Vec::new();
                for (running, policy) in stops {
                    match running {
                        Running::Agent { identity, control } => {
                            let reason = rt.stop_agent(&identity, &control, policy).await;
                            ended.push((identity, reason));
                        }
                        Running::Supervisor(addr) => {
                            let _ = addr.send(Shutdown).await;
                        }
                    }
                }
                ended
            })
            .map(|ended, act: &mut Self, _| {
                for (identity, reason) in ended {
                    act.set_status_id(&identity, AgentStatus::Exited(reason));
                }
            }),
        )
    }

    /// Handles the end of a running child.
    fn exited(&mut self, index: usize, reason: Reason, kind: &'static str, ctx: &mut Context<Self>) {
        let root = self.root;
        let hook = self.on_child_exit.clone();
        let Some(child) = self.child(index) else { return };
        child.state = ChildState::Down;
        let name = child.spec.name().to_owned();
        let identity = agent_identity(&child.spec);
        if let Some(hook) = hook {
            (hook.0)(&name, &reason);
        }
        let restart = match child.spec.restart {
            Restart::Permanent => true,
            Restart::Transient => reason.is_abnormal(),
            Restart::Temporary => false,
        };
        if reason.is_abnormal() {
            if let Some(id) = &identity {
                self.set_health(id, Status::Bad, Some(format!("{reason:?}")));
            }
            tracing::warn!(supervisor = self.name, child = name, "child exited: {reason:?}");
            self.alert(kind, &name, "child_exited", &format!("{reason:?}"));
        }
        if !restart || self.stopping {
            self.set_status(&name, AgentStatus::Exited(reason));
            if root {
                self.remove(index);
            }
            return;
        }
        let now = self.rt.clock().elapsed();
        self.restarts.push_back(now);
        while self
            .restarts
            .front()
            .is_some_and(|t| now.saturating_sub(*t) > self.period)
        {
            self.restarts.pop_front();
        }
        let n = self.restarts.len() as u32;
        if n > self.max_restarts {
            let why = format!(
                "more than {} restarts within {:?}; giving up",
                self.max_restarts, self.period
            );
            tracing::error!(supervisor = self.name, child = name, "{why}");
            crate::platform::counters::add(&self.rt.endpoint.router.counters.supervisor_give_ups, 1);
            if root {
                // Give up on this child only; said once.
                self.restarts.pop_back();
                self.alert(kind, &name, "restart_limit", &why);
                if let Some(id) = &identity {
                    self.set_health(id, Status::Bad, Some(why.clone()));
                }
                self.set_status(&name, AgentStatus::Exited(ExitReason::RestartLimit));
                self.remove(index);
            } else {
                self.escalate(why, ctx);
            }
            return;
        }
        // The siblings that restart with it: those running in the strategy's range.
        let range = match self.strategy {
            Strategy::OneForOne => index..index + 1,
            Strategy::OneForAll => 0..self.children.len(),
            Strategy::RestForOne => index..self.children.len(),
        };
        let to_stop: Vec<usize> = range
            .rev()
            .filter(|&i| {
                i != index
                    && self
                        .child(i)
                        .is_some_and(|c| matches!(c.state, ChildState::Running { .. }))
            })
            .collect();
        let mut group: Vec<usize> = to_stop.iter().copied().chain([index]).collect();
        group.sort_unstable();
        for &i in &group {
            if let Some(id) = self.child(i).and_then(|c| agent_identity(&c.spec)) {
                self.set_status_id(&id, AgentStatus::Restarting);
                if let Some(mut r) = self.rt.registry.get_mut(&id) {
                    r.restarts += 1;
                }
            }
        }

        let delay = self.backoff.delay(n);
        let busy = self.rt.busy();
        let stop = self.stop_children(to_stop);
        let sleep = (!delay.is_zero()).then(|| self.rt.clock().sleep(delay));
        let restart = stop
            .then(move |_, _act: &mut Self, _| {
                fut::wrap_future(async move {
                    if let Some(sleep) = sleep {
                        sleep.await;
                    }
                })
            })
            .then(move |(), act: &mut Self, _| act.start_in_order(group))
            .map(move |r, act: &mut Self, ctx| {
                drop(busy);
                if let Err(e) = r {
                    // A failed restart counts as a crash of that child.
                    tracing::warn!(supervisor = act.name, "restart failed: {e}");
                    if let Some(i) = act.by_name.get(&failed_name(&e)).copied() {
                        act.exited(i, ExitReason::StartFailed(e.to_string()), "Agent", ctx);
                    }
                }
            });
        ctx.spawn(restart);
    }

    /// Too many restarts: stop everything, then tell the parent.
    fn escalate(&mut self, why: String, ctx: &mut Context<Self>) {
        self.stopping = true;
        let all: Vec<usize> = (0..self.children.len()).rev().collect();
        let stop = self.stop_children(all);
        ctx.wait(stop.map(move |_, act: &mut Self, ctx| {
            act.mark_all_down(ExitReason::RestartLimit);
            if let Some((parent, instance)) = act.parent.take() {
                AgentExited {
                    name: act.name.clone(),
                    instance,
                    kind: "Supervisor",
                    reason: ExitReason::Crashed(format!("supervisor '{}': {why}", act.name)),
                }
                .report(&parent, act.rt.endpoint.router.activity.as_ref());
            }
            ctx.stop();
        }));
    }

    fn mark_all_down(&mut self, reason: ExitReason) {
        let ids: Vec<Identity> = self
            .children
            .iter()
            .flatten()
            .filter_map(|c| agent_identity(&c.spec))
            .collect();
        for id in ids {
            self.set_status_id(&id, AgentStatus::Exited(reason.clone()));
        }
        for c in self.children.iter_mut().flatten() {
            c.state = ChildState::Down;
        }
    }

    fn set_health(&self, id: &Identity, status: Status, context: Option<String>) {
        if let Some(r) = self.rt.registry.get(id) {
            *r.health.lock() = Health::new(status, context, self.rt.clock().now());
        }
    }

    fn set_status(&self, name: &str, status: AgentStatus) {
        if let Ok(id) = Identity::new(name) {
            self.set_status_id(&id, status);
        }
    }

    fn set_status_id(&self, id: &Identity, status: AgentStatus) {
        if let Some(mut r) = self.rt.registry.get_mut(id) {
            if !matches!(status, AgentStatus::Running) {
                r.control = None;
            }
            r.status = status;
        }
    }

    /// Publishes a VOLTTRON-style alert on `alerts/<kind>/<name with . as _>`.
    fn alert(&self, kind: &str, name: &str, key: &str, context: &str) {
        let Ok(topic) = Topic::new(format!("alerts/{kind}/{}", name.replace('.', "_"))) else {
            return;
        };
        let mut headers = Headers::new();
        headers.insert("alert_key".into(), Value::from(key));
        let mut message = Map::new();
        message.insert("status".into(), Value::from("BAD"));
        message.insert("context".into(), Value::from(context));
        let _ = self.rt.endpoint.publish("", topic, headers, Value::Map(message));
    }
}

/// The name of the child a start error is about.
fn failed_name(e: &SpawnError) -> String {
    match e {
        SpawnError::DuplicateIdentity(id) | SpawnError::StartFailed { identity: id, .. } => id.to_string(),
        _ => String::new(),
    }
}

fn agent_identity(spec: &ChildSpec) -> Option<Identity> {
    match &spec.kind {
        ChildKind::Agent { identity, .. } => Identity::new(identity).ok(),
        ChildKind::Supervisor(_) => None,
    }
}

impl Handler<StartChild> for SupervisorNode {
    type Result = ResponseActFuture<Self, Result<Option<SupervisorHandle>, SpawnError>>;

    fn handle(&mut self, msg: StartChild, ctx: &mut Context<Self>) -> Self::Result {
        self.rt.touch();
        if self.stopping {
            return Box::pin(fut::ready(Err(SpawnError::PlatformStopped)));
        }
        let name = msg.0.name().to_owned();
        if let Some(&i) = self.by_name.get(&name)
            && self
                .child(i)
                .is_some_and(|c| !matches!(c.state, ChildState::Down))
        {
            return Box::pin(fut::ready(Err(match Identity::new(&name) {
                Ok(id) => SpawnError::DuplicateIdentity(id),
                Err(e) => SpawnError::InvalidIdentity(e),
            })));
        }
        if let Some(&i) = self.by_name.get(&name) {
            self.remove(i);
        }
        let index = self.add(msg.0);
        Box::pin(self.start(index, ctx).map(move |r, act: &mut Self, _| match r {
            Ok(()) => Ok(match act.child(index).map(|c| &c.state) {
                Some(ChildState::Running {
                    running: Running::Supervisor(addr),
                    ..
                }) => Some(addr.clone()),
                _ => None,
            }),
            Err(e) => {
                if let SpawnError::StartFailed { identity, reason } = &e {
                    act.set_status_id(
                        identity,
                        AgentStatus::Exited(ExitReason::StartFailed(reason.clone())),
                    );
                    act.set_health(identity, Status::Bad, Some(reason.clone()));
                }
                act.remove(index);
                Err(e)
            }
        }))
    }
}

impl Handler<StartChildren> for SupervisorNode {
    type Result = ResponseActFuture<Self, Result<(), SpawnError>>;

    fn handle(&mut self, _: StartChildren, _: &mut Context<Self>) -> Self::Result {
        self.rt.touch();
        let all: Vec<usize> = (0..self.children.len()).collect();
        Box::pin(self.start_in_order(all).then(|r, act: &mut Self, _| -> Step {
            match r {
                Ok(()) => Box::pin(fut::ready(Ok(()))),
                Err(e) => {
                    // Like OTP's start_link: a child that cannot start fails the whole
                    // supervisor; the ones already started are stopped again.
                    act.stopping = true;
                    let started: Vec<usize> = (0..act.children.len()).rev().collect();
                    Box::pin(act.stop_children(started).map(move |(), act: &mut Self, ctx| {
                        act.mark_all_down(ExitReason::StartFailed(e.to_string()));
                        act.parent = None;
                        ctx.stop();
                        Err(e)
                    }))
                }
            }
        }))
    }
}

impl Handler<AgentExited> for SupervisorNode {
    type Result = ();

    fn handle(&mut self, msg: AgentExited, ctx: &mut Context<Self>) {
        // Counted since `report`; `end` also records progress.
        if let Some(a) = &self.rt.endpoint.router.activity {
            a.end();
        }
        let Some(&index) = self.by_name.get(&msg.name) else {
            return;
        };
        let Some(child) = self.child(index) else { return };
        match &mut child.state {
            ChildState::Booting { instance, exited } if *instance == msg.instance => {
                *exited = Some(msg.reason);
            }
            ChildState::Running { instance, .. } if *instance == msg.instance => {
                self.exited(index, msg.reason, msg.kind, ctx);
            }
            ChildState::Stopping => {
                child.state = ChildState::Down;
                let name = msg.name.clone();
                self.set_status(&name, AgentStatus::Exited(msg.reason));
            }
            _ => {}
        }
    }
}

impl Handler<StopChild> for SupervisorNode {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, msg: StopChild, _: &mut Context<Self>) -> Self::Result {
        self.rt.touch();
        let Some(&index) = self.by_name.get(&msg.0) else {
            return Box::pin(fut::ready(false));
        };
        if !matches!(
            self.child(index).map(|c| &c.state),
            Some(ChildState::Running { .. })
        ) {
            return Box::pin(fut::ready(false));
        }
        Box::pin(self.stop_children(vec![index]).map(move |_, act: &mut Self, _| {
            if act.root {
                act.remove(index);
            } else if let Some(c) = act.child(index) {
                c.state = ChildState::Down;
            }
            true
        }))
    }
}

impl Handler<Shutdown> for SupervisorNode {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.rt.touch();
        self.stopping = true;
        let all: Vec<usize> = (0..self.children.len()).rev().collect();
        Box::pin(self.stop_children(all).map(|_, act: &mut Self, ctx| {
            for c in act.children.iter_mut().flatten() {
                c.state = ChildState::Down;
            }
            if let Some((parent, instance)) = act.parent.take() {
                AgentExited {
                    name: act.name.clone(),
                    instance,
                    kind: "Supervisor",
                    reason: ExitReason::Normal,
                }
                .report(&parent, act.rt.endpoint.router.activity.as_ref());
            }
            ctx.stop();
        }))
    }
}

impl Handler<QueryStatus> for SupervisorNode {
    type Result = Option<(AgentStatus, Health)>;

    fn handle(&mut self, msg: QueryStatus, _: &mut Context<Self>) -> Self::Result {
        self.rt
            .registry
            .get(&msg.0)
            .map(|r| (r.status.clone(), r.health.lock().clone()))
    }
}
