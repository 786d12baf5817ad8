//! The actor that hosts one agent: boots it, drains its mailbox into its handlers one at a
//! time, contains its panics, and stops it.
//!
//! | phase    | data mailbox                 | on entry                                             |
//! |----------|------------------------------|------------------------------------------------------|
//! | Booting  | queued, not handled          | `on_setup`, join the bus, subscriptions, timers, `on_start` |
//! | Running  | drained in batches           | spawn returns to the caller                          |
//! | Stopping | queued, not handled          | timers cancelled, `on_stop` runs (still on the bus)  |
//! | Stopped  | closed: requests refused     | left the bus (peers get `peerlist` drop)             |
//!
//! A panic in any handler ends the agent at once ("let it crash"): its state is dropped
//! without running `on_stop` (it may be inconsistent), pending RPC callers get
//! `PeerStopped`, the caller of the panicking RPC gets `Remote { kind: "panic" }`, and the
//! supervisor is told the reason.
//!
//! Each handler run (and each poll of an async handler) has the agent's identity as the
//! thread's current agent ([`super::log_scope`]): a log formatter puts it on what the
//! agent's code logs.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use futures::FutureExt;
use smallvec::SmallVec;
use tokio::sync::oneshot;

use crate::agent::context::{
    AgentContext, DynPublicationHandler, DynTimerHandler, SubscriptionHandler, TimerHandler,
};
use crate::agent::{Agent, Dispatch, HandlerError, Invocation, Outcome};
use crate::core::{Identity, RpcError, TraceContext, Value};
use crate::platform::clock::{Repeat, TimerId};
use crate::platform::counters::{HandlerKind, Stopwatch};
use crate::platform::mailbox::{Envelope, Request};
use crate::platform::router::PeerEntry;
use crate::platform::supervision::ExitReason;
use crate::platform::supervisor::AgentExited;

/// How many envelopes one drain handles before yielding to the arbiter.
const DRAIN_BATCH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Booting,
    Running,
    Stopping,
    Stopped,
}

/// What to do when a handler finishes.
enum Completion {
    /// Boot step finished (on_start).
    Boot,
    /// on_stop finished.
    Stop,
    /// A mailbox envelope finished; `reply` for RPC requests.
    Envelope(EnvelopeDone),
}

enum EnvelopeDone {
    Plain {
        handler: &'static str,
    },
    Rpc {
        method: String,
        sender: crate::core::Identity,
        reply: Option<oneshot::Sender<Result<Value, RpcError>>>,
    },
    Timer {
        busy: Arc<AtomicBool>,
        handler: &'static str,
    },
}

/// Why an agent did not finish booting.
#[derive(Debug)]
pub(crate) enum BootError {
    /// Another peer joined the bus with the same identity first.
    Duplicate,
    /// A hook failed or panicked, or a declaration was invalid.
    Failed(String),
}

/// Asks the host to drain its data mailbox.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Drain;

/// Asks the host to stop; `done` fires once it has left the bus.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopAgent {
    pub(crate) done: Option<oneshot::Sender<()>>,
    /// Counted as platform activity until the agent has left (an agent's own `stop()`,
    /// so that `settle` waits for it).
    pub(crate) counted: bool,
}

/// Ends the agent now, without `on_stop`, abandoning a running handler (OTP's
/// `brutal_kill`, used when a stop does not finish within its timeout).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct KillAgent {
    pub(crate) reason: String,
    pub(crate) done: Option<oneshot::Sender<()>>,
}

pub(crate) struct AgentHost<A: Agent> {
    agent: Option<Box<A>>,
    ctx: AgentContext,
    phase: Phase,
    /// The async handler running now (it owns the agent), and whether it handles a
    /// mailbox envelope.
    busy: Option<(SpawnHandle, bool)>,
    /// A stop asked for while an async handler was running.
    stop_pending: bool,
    /// Counted stop requests (see [`StopAgent::counted`]) to settle when leaving.
    counted_stops: usize,
    boot: Option<oneshot::Sender<Result<(), BootError>>>,
    supervisor: Recipient<AgentExited>,
    stop_waiters: Vec<oneshot::Sender<()>>,
    /// The agent's identity, moved into the thread's slot while its code runs (see
    /// [`super::log_scope`]).
    log_identity: Option<Identity>,
    /// The trace of the envelope about to be handled (see [`super::trace_scope`]).
    incoming_trace: Option<TraceContext>,
}

impl<A: Agent> AgentHost<A> {
    pub(crate) fn new(
        agent: A,
        ctx: AgentContext,
        boot: oneshot::Sender<Result<(), BootError>>,
        supervisor: Recipient<AgentExited>,
    ) -> Self {
        AgentHost {
            log_identity: Some(ctx.identity().clone()),
            incoming_trace: None,
            agent: Some(Box::new(agent)),
            ctx,
            phase: Phase::Booting,
            busy: None,
            stop_pending: false,
            counted_stops: 0,
            boot: Some(boot),
            supervisor,
            stop_waiters: Vec::new(),
        }
    }

    /// Tells `settle` that something happened here.
    fn touch(&self) {
        if let Some(a) = &self.ctx.inner.endpoint.router.activity {
            a.touch();
        }
    }

    fn identity(&self) -> &str {
        self.ctx.identity().as_str()
    }

    /// Runs one handler. Returns true if the drain must pause (async handler running,
    /// or the agent crashed).
    fn run(&mut self, invocation: Invocation, completion: Completion, actx: &mut Context<Self>) -> bool {
        let Some(agent) = self.agent.as_deref_mut() else {
            self.complete(
                completion,
                Err(HandlerError::Failed("agent has stopped".into())),
                actx,
            );
            return false;
        };
        let ctx = &self.ctx;
        let kind = invocation.kind();
        let watch = stopwatch(ctx, kind);
        // Current already inside a drained batch; `leave` runs: a panic is caught here.
        let (trace, span) = super::trace_scope::continued(self.incoming_trace.take(), |f, t| {
            f.handler(ctx.identity(), kind, t)
        });
        let entered = super::log_scope::enter(&mut self.log_identity);
        let dispatched = super::trace_scope::with(trace.as_ref(), || {
            std::panic::catch_unwind(AssertUnwindSafe(|| agent.__dispatch(ctx, invocation)))
        });
        super::log_scope::leave(&mut self.log_identity, entered);
        match dispatched {
            Ok(Dispatch::Done(outcome)) => {
                timed(&self.ctx, kind, &watch);
                drop(span);
                self.complete(completion, outcome, actx);
                false
            }
            Ok(Dispatch::Async(start)) => {
                let agent = self.agent.take().expect("agent present");
                let counted = matches!(completion, Completion::Envelope(_));
                let fut = super::trace_scope::Traced::new(
                    trace,
                    span,
                    super::log_scope::InScope::new(
                        self.ctx.identity().clone(),
                        AssertUnwindSafe(start(*agent)).catch_unwind(),
                    ),
                );
                // Spawned, not `wait`ed: control messages (stop, kill) stay deliverable
                // while the handler awaits; data waits until it is done (see `Drain`).
                let handle = actx.spawn(fut.into_actor(self).map(move |result, act, actx| {
                    act.busy = None;
                    match result {
                        Ok((agent, outcome)) => {
                            timed(&act.ctx, kind, &watch);
                            act.agent = Some(Box::new(agent));
                            // A drain paused for this handler resumes (boot and stop
                            // completions see to their own follow-up).
                            let paused_drain = matches!(completion, Completion::Envelope(_));
                            act.complete(completion, outcome, actx);
                            if act.stop_pending && matches!(act.phase, Phase::Running) {
                                act.begin_stop(actx);
                            } else if act.phase == Phase::Running && paused_drain {
                                actx.notify(Drain);
                            }
                        }
                        Err(panic) => act.crash(panic_message(&*panic), completion, actx),
                    }
                }));
                self.busy = Some((handle, counted));
                true
            }
            Err(panic) => {
                self.crash(panic_message(&*panic), completion, actx);
                true
            }
        }
    }

    fn complete(&mut self, completion: Completion, outcome: Outcome, actx: &mut Context<Self>) {
        match completion {
            Completion::Boot => match outcome {
                Ok(_) => {
                    self.touch();
                    self.phase = Phase::Running;
                    if !self.ctx.inner.descriptor.configs.is_empty() {
                        self.ctx.begin_initial_configs();
                    }
                    if let Some(b) = self.boot.take() {
                        let _ = b.send(Ok(()));
                    }
                    if self.stop_pending {
                        self.begin_stop(actx);
                    } else if self.ctx.inner.mailbox.drain_requested() {
                        // Deliveries arrived while booting; their drain was ignored then.
                        actx.notify(Drain);
                    }
                }
                Err(e) => self.abort_boot(error_text(e), actx),
            },
            Completion::Stop => {
                if let Err(e) = outcome {
                    tracing::warn!(agent = self.identity(), "on_stop failed: {}", error_text(e));
                }
                self.leave(ExitReason::Normal, actx);
            }
            Completion::Envelope(done) => {
                self.finish_envelope(done, outcome);
            }
        }
    }

    fn finish_envelope(&self, done: EnvelopeDone, outcome: Outcome) {
        match done {
            EnvelopeDone::Plain { handler } => {
                if let Err(e) = outcome {
                    tracing::warn!(
                        agent = self.identity(),
                        handler,
                        "handler failed: {}",
                        error_text(e)
                    );
                }
            }
            EnvelopeDone::Rpc {
                method,
                sender,
                reply,
            } => {
                let result = outcome.map_err(|e| rpc_error(&method, e));
                match reply {
                    Some(reply) => {
                        let _ = reply.send(result);
                    }
                    None => {
                        if let Err(e) = result {
                            tracing::warn!(
                                agent = self.identity(),
                                method,
                                from = sender.as_str(),
                                "notification failed: {e}"
                            );
                        }
                    }
                }
            }
            EnvelopeDone::Timer { busy, handler } => {
                busy.store(false, Ordering::Release);
                if let Err(e) = outcome {
                    tracing::warn!(
                        agent = self.identity(),
                        handler,
                        "timer handler failed: {}",
                        error_text(e)
                    );
                }
            }
        }
        self.ctx.inner.mailbox.handled();
    }

    fn crash(&mut self, reason: String, completion: Completion, actx: &mut Context<Self>) {
        self.ctx.inner.mailbox.cells.panicked();
        tracing::error!(agent = self.identity(), "agent panicked: {reason}");
        self.agent = None;
        if let Completion::Boot = completion {
            return self.abort_boot(format!("panicked: {reason}"), actx);
        }
        // Leave first: by the time the caller of the panicking RPC hears about it, the
        // agent is off the bus and its exit is recorded.
        self.leave(ExitReason::Crashed(reason.clone()), actx);
        match completion {
            Completion::Envelope(EnvelopeDone::Rpc { method, reply, .. }) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(RpcError::Remote {
                        method,
                        message: reason,
                        kind: "panic".into(),
                    }));
                }
                self.ctx.inner.mailbox.handled();
            }
            Completion::Envelope(done) => self.finish_envelope(done, Err(HandlerError::Failed(reason))),
            Completion::Boot | Completion::Stop => {}
        }
    }

    fn abort_boot(&mut self, reason: String, actx: &mut Context<Self>) {
        let boot = self.boot.take();
        self.agent = None;
        self.leave(ExitReason::StartFailed(reason.clone()), actx);
        if let Some(b) = boot {
            let _ = b.send(Err(BootError::Failed(reason)));
        }
    }

    /// Leaves the bus and ends the actor.
    fn leave(&mut self, reason: ExitReason, actx: &mut Context<Self>) {
        self.touch();
        if self.phase == Phase::Stopped {
            return;
        }
        self.phase = Phase::Stopped;
        let inner = &self.ctx.inner;
        let timers: Vec<TimerId> = {
            let mut reg = inner.registry.lock();
            reg.stopped = true;
            reg.subscriptions.clear();
            reg.timers.drain().map(|(id, _)| id).collect()
        };
        for id in timers {
            inner.endpoint.clock.cancel(id);
        }
        inner
            .endpoint
            .router
            .remove_peer(&inner.endpoint.identity, inner.peer_id);
        for envelope in inner.mailbox.close() {
            envelope.refuse(&inner.endpoint.identity);
        }
        // Tell the supervisor before the waiters: whoever waited for this stop and then
        // asks the supervisor finds the exit recorded (its mailbox is FIFO).
        AgentExited {
            name: inner.endpoint.identity.to_string(),
            instance: inner.peer_id,
            kind: inner.descriptor.name,
            reason,
        }
        .report(&self.supervisor, inner.endpoint.router.activity.as_ref());
        for w in self.stop_waiters.drain(..) {
            let _ = w.send(());
        }
        self.settle_counted_stops();
        actx.stop();
    }

    fn settle_counted_stops(&mut self) {
        if let Some(activity) = &self.ctx.inner.endpoint.router.activity {
            for _ in 0..std::mem::take(&mut self.counted_stops) {
                activity.end();
            }
        }
    }

    /// Stops taking data, cancels timers and runs `on_stop`.
    fn begin_stop(&mut self, actx: &mut Context<Self>) {
        self.phase = Phase::Stopping;
        self.stop_pending = false;
        let timers: Vec<TimerId> = {
            let mut reg = self.ctx.inner.registry.lock();
            reg.timers.drain().map(|(id, _)| id).collect()
        };
        for id in timers {
            self.ctx.inner.endpoint.clock.cancel(id);
        }
        self.run(Invocation::Stop, Completion::Stop, actx);
    }

    fn boot(&mut self, actx: &mut Context<Self>) {
        let inner = self.ctx.inner.clone();
        let descriptor = inner.descriptor;
        // on_setup: synchronous, before joining the bus.
        let ctx = &self.ctx;
        let agent = &mut **self.agent.as_mut().expect("agent present at boot");
        inner.mailbox.cells.run(HandlerKind::Lifecycle);
        let entered = super::log_scope::enter(&mut self.log_identity);
        let setup = std::panic::catch_unwind(AssertUnwindSafe(|| agent.__dispatch(ctx, Invocation::Setup)));
        super::log_scope::leave(&mut self.log_identity, entered);
        match setup {
            Ok(Dispatch::Done(Ok(_))) => {}
            Ok(Dispatch::Done(Err(e))) => {
                return self.abort_boot(format!("on_setup failed: {}", error_text(e)), actx);
            }
            Ok(Dispatch::Async(_)) => return self.abort_boot("on_setup must not be async".into(), actx),
            Err(panic) => {
                inner.mailbox.cells.panicked();
                return self.abort_boot(format!("on_setup panicked: {}", panic_message(&*panic)), actx);
            }
        }
        // hello/welcome: join the routing table.
        let entry = PeerEntry {
            id: inner.peer_id,
            mailbox: inner.mailbox.clone(),
            watches_peers: descriptor.on_peerlist,
            exports: crate::platform::router::Exports::Static(descriptor.rpcs),
        };
        if let Err(id) = inner
            .endpoint
            .router
            .add_peer(inner.endpoint.identity.clone(), entry)
        {
            self.phase = Phase::Stopped;
            AgentExited {
                name: id.to_string(),
                instance: inner.peer_id,
                kind: inner.descriptor.name,
                reason: ExitReason::StartFailed("duplicate identity".into()),
            }
            .report(&self.supervisor, inner.endpoint.router.activity.as_ref());
            if let Some(b) = self.boot.take() {
                let _ = b.send(Err(BootError::Duplicate));
            }
            return actx.stop();
        }
        for (i, s) in descriptor.subscriptions.iter().enumerate() {
            if let Err(e) = self.ctx.add_subscription(
                s.bus,
                s.prefix,
                s.overflow,
                s.all_platforms,
                SubscriptionHandler::Static(i),
            ) {
                return self.abort_boot(
                    format!("#[subscribe({:?})] on {}: {e}", s.prefix, s.handler),
                    actx,
                );
            }
        }
        for (i, p) in descriptor.periodics.iter().enumerate() {
            if let Err(e) = self
                .ctx
                .add_timer(p.wait, Repeat::Every(p.period), TimerHandler::Periodic(i))
            {
                return self.abort_boot(e.to_string(), actx);
            }
        }
        for (i, c) in descriptor.crons.iter().enumerate() {
            let schedule = match crate::agent::cron::CronSchedule::parse(c.expr) {
                Ok(s) => s,
                Err(e) => {
                    return self.abort_boot(
                        format!("#[schedule(cron = {:?})] on {}: {e}", c.expr, c.handler),
                        actx,
                    );
                }
            };
            if let Err(e) = self.ctx.add_timer(
                std::time::Duration::ZERO,
                Repeat::Cron(Arc::new(schedule)),
                TimerHandler::Cron(i),
            ) {
                return self.abort_boot(e.to_string(), actx);
            }
        }
        if inner.heartbeat.lock().autostart {
            self.ctx.heartbeat().start();
        }
        // Deliveries may start queueing now; they are handled once on_start is done.
        let addr = actx.address();
        inner.mailbox.set_waker(Box::new(move || addr.do_send(Drain)));
        self.run(Invocation::Start, Completion::Boot, actx);
    }

    /// Handles one envelope; returns true if the drain must pause.
    fn handle_envelope(&mut self, envelope: Envelope, actx: &mut Context<Self>) -> bool {
        let descriptor = self.ctx.inner.descriptor;
        match envelope {
            Envelope::Publication {
                publication,
                subscription,
            } => {
                self.incoming_trace = TraceContext::from_headers(&publication.headers);
                let handler = {
                    let mut reg = self.ctx.inner.registry.lock();
                    match reg.subscriptions.get_mut(subscription as usize) {
                        Some(Some(SubscriptionHandler::Static(i))) => Ok(*i),
                        Some(Some(SubscriptionHandler::Dynamic(h))) => Err(h.take()),
                        _ => Err(None),
                    }
                };
                match handler {
                    Ok(index) => self.run(
                        Invocation::Publication { index, publication },
                        Completion::Envelope(EnvelopeDone::Plain {
                            handler: descriptor.subscriptions[index].handler,
                        }),
                        actx,
                    ),
                    Err(Some(mut boxed)) => {
                        self.run_dynamic(
                            actx,
                            HandlerKind::Publication,
                            "run-time subscription",
                            |agent, ctx| {
                                if let Some(h) = boxed.downcast_mut::<DynPublicationHandler<A>>() {
                                    h(agent, ctx, &publication);
                                }
                                boxed
                            },
                            // Back in its slot before the publication counts as handled.
                            |this, boxed| {
                                let mut reg = this.ctx.inner.registry.lock();
                                if let Some(Some(SubscriptionHandler::Dynamic(slot @ None))) =
                                    reg.subscriptions.get_mut(subscription as usize)
                                {
                                    *slot = Some(boxed);
                                }
                            },
                        )
                    }
                    Err(None) => {
                        // Unsubscribed after the publication was queued.
                        self.incoming_trace = None;
                        self.ctx.inner.mailbox.handled();
                        false
                    }
                }
            }
            Envelope::Request(request) => self.handle_request(*request, actx),
            Envelope::Ping(reply) => {
                let _ = reply.send(());
                self.ctx.inner.mailbox.handled();
                false
            }
            Envelope::Peer(event) => {
                if descriptor.on_peerlist {
                    self.run(
                        Invocation::Peer(event),
                        Completion::Envelope(EnvelopeDone::Plain {
                            handler: "on_peerlist",
                        }),
                        actx,
                    )
                } else {
                    self.ctx.inner.mailbox.handled();
                    false
                }
            }
            Envelope::Timer { id } => self.handle_timer(id, actx),
            Envelope::Health(health) => {
                if descriptor.on_health {
                    self.run(
                        Invocation::Health(health),
                        Completion::Envelope(EnvelopeDone::Plain { handler: "on_health" }),
                        actx,
                    )
                } else {
                    self.ctx.inner.mailbox.handled();
                    false
                }
            }
            Envelope::Link(up) => {
                let (invocation, handler) = if up {
                    (Invocation::Connected, "on_connected")
                } else {
                    (Invocation::Disconnected, "on_disconnected")
                };
                self.run(
                    invocation,
                    Completion::Envelope(EnvelopeDone::Plain { handler }),
                    actx,
                )
            }
            Envelope::Config { index, update } => self.run(
                Invocation::Config { index, update },
                Completion::Envelope(EnvelopeDone::Plain {
                    handler: descriptor.configs[index].handler,
                }),
                actx,
            ),
        }
    }

    /// Runs a run-time (closure) handler, which is synchronous. Returns true on a crash.
    /// Runs a run-time handler; on success calls `after` and only then marks the envelope
    /// handled, so that whoever waits for the platform to settle (a virtual clock's
    /// `advance`) sees what `after` restores (a timer's handler and its busy flag).
    fn run_dynamic<T>(
        &mut self,
        actx: &mut Context<Self>,
        kind: HandlerKind,
        what: &'static str,
        f: impl FnOnce(&mut A, &AgentContext) -> T,
        after: impl FnOnce(&mut Self, T),
    ) -> bool {
        let Some(agent) = self.agent.as_deref_mut() else {
            self.ctx.inner.mailbox.handled();
            return false;
        };
        let ctx = &self.ctx;
        let watch = stopwatch(ctx, kind);
        let (trace, _span) = super::trace_scope::continued(self.incoming_trace.take(), |f, t| {
            f.handler(ctx.identity(), kind, t)
        });
        let ran = super::trace_scope::with(trace.as_ref(), || {
            std::panic::catch_unwind(AssertUnwindSafe(|| f(agent, ctx)))
        });
        match ran {
            Ok(value) => {
                timed(&self.ctx, kind, &watch);
                after(self, value);
                self.ctx.inner.mailbox.handled();
                false
            }
            Err(panic) => {
                self.crash(
                    panic_message(&*panic),
                    Completion::Envelope(EnvelopeDone::Plain { handler: what }),
                    actx,
                );
                true
            }
        }
    }

    fn handle_timer(&mut self, id: TimerId, actx: &mut Context<Self>) -> bool {
        let descriptor = self.ctx.inner.descriptor;
        let taken = {
            let mut reg = self.ctx.inner.registry.lock();
            match reg.timers.get_mut(&id) {
                None => None,
                Some(record) => {
                    let busy = record.busy.clone();
                    let handler = match &mut record.handler {
                        Some(TimerHandler::Periodic(i)) => Some(TimerHandler::Periodic(*i)),
                        Some(TimerHandler::Cron(i)) => Some(TimerHandler::Cron(*i)),
                        Some(TimerHandler::Heartbeat) => Some(TimerHandler::Heartbeat),
                        other => other.take(),
                    };
                    if record.once {
                        reg.timers.remove(&id);
                    }
                    handler.map(|h| (h, busy))
                }
            }
        };
        let Some((handler, busy)) = taken else {
            self.ctx.inner.mailbox.handled();
            return false;
        };
        match handler {
            TimerHandler::Heartbeat => {
                self.ctx.publish_heartbeat();
                busy.store(false, Ordering::Release);
                self.ctx.inner.mailbox.handled();
                false
            }
            TimerHandler::Periodic(index) => self.run(
                Invocation::Periodic { index },
                Completion::Envelope(EnvelopeDone::Timer {
                    busy,
                    handler: descriptor.periodics[index].handler,
                }),
                actx,
            ),
            TimerHandler::Cron(index) => self.run(
                Invocation::Cron { index },
                Completion::Envelope(EnvelopeDone::Timer {
                    busy,
                    handler: descriptor.crons[index].handler,
                }),
                actx,
            ),
            TimerHandler::Dynamic(mut boxed) => {
                let restore = busy.clone();
                let crashed = self.run_dynamic(
                    actx,
                    HandlerKind::Timer,
                    "run-time timer",
                    |agent, ctx| {
                        if let Some(h) = boxed.downcast_mut::<DynTimerHandler<A>>() {
                            h(agent, ctx);
                        }
                        boxed
                    },
                    // Back in place before the firing counts as handled: an `advance`
                    // firing the next deadline must find the handler and a clear flag.
                    |this, boxed| {
                        let mut reg = this.ctx.inner.registry.lock();
                        if let Some(record) = reg.timers.get_mut(&id) {
                            record.handler = Some(TimerHandler::Dynamic(boxed));
                        }
                        drop(reg);
                        restore.store(false, Ordering::Release);
                    },
                );
                busy.store(false, Ordering::Release);
                crashed
            }
        }
    }

    fn handle_request(&mut self, request: Request, actx: &mut Context<Self>) -> bool {
        let Request {
            sender,
            method,
            args,
            reply,
            trace,
        } = request;
        let descriptor = self.ctx.inner.descriptor;
        if method == crate::agent::config::UPDATE_METHOD {
            let result = self.config_update(args);
            if let Some(reply) = reply {
                let _ = reply.send(result);
            }
            self.ctx.inner.mailbox.handled();
            return false;
        }
        if let Some(index) = descriptor.rpcs.iter().position(|r| r.name == method) {
            self.incoming_trace = trace;
            return self.run(
                Invocation::Rpc {
                    index,
                    args,
                    caller: sender.clone(),
                },
                Completion::Envelope(EnvelopeDone::Rpc {
                    method,
                    sender,
                    reply,
                }),
                actx,
            );
        }
        let result = crate::agent::builtin::answer(&self.ctx, &method, args)
            .unwrap_or_else(|| crate::agent::inspect::answer(descriptor, &method));
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
        self.ctx.inner.mailbox.handled();
        false
    }
}

impl<A: Agent> AgentHost<A> {
    /// A change pushed by the store (or the initial round): queue it, next in line, for
    /// every `#[on_config]` handler whose pattern and actions match. A deleted entry
    /// with a default becomes an UPDATE with the default.
    fn config_update(&mut self, args: crate::core::Args) -> Result<crate::core::Value, RpcError> {
        use crate::agent::config::{ConfigAction, ConfigUpdate, fnmatch};
        let invalid = |message: String| RpcError::InvalidParams {
            method: crate::agent::config::UPDATE_METHOD.into(),
            message,
        };
        let mut reader =
            crate::agent::ArgReader::new("config.update", &["action", "name", "contents", "initial"], args)
                .map_err(|e| invalid(error_text(e)))?;
        let mut action: ConfigAction = reader.next(0).map_err(|e| invalid(error_text(e)))?;
        let name: String = reader.next(1).map_err(|e| invalid(error_text(e)))?;
        let mut contents: Value = reader.next(2).map_err(|e| invalid(error_text(e)))?;
        let initial: bool = reader
            .next::<Option<bool>>(3)
            .map_err(|e| invalid(error_text(e)))?
            .unwrap_or(false);
        if let Some(default) = self.ctx.config_default(&name) {
            match action {
                // After the initial round the agent already has it, from its default.
                ConfigAction::New if !initial => action = ConfigAction::Update,
                ConfigAction::New => {}
                ConfigAction::Delete => {
                    action = ConfigAction::Update;
                    contents = default;
                }
                ConfigAction::Update => {}
            }
        }
        let update = Arc::new(ConfigUpdate {
            action,
            name,
            contents,
        });
        let envelopes: Vec<Envelope> = self
            .ctx
            .inner
            .descriptor
            .configs
            .iter()
            .enumerate()
            .filter(|(_, spec)| spec.actions & action.bit() != 0 && fnmatch(spec.pattern, &update.name))
            .map(|(index, _)| Envelope::Config {
                index,
                update: update.clone(),
            })
            .collect();
        self.ctx.inner.mailbox.push_urgent(envelopes);
        Ok(Value::Null)
    }
}

impl<A: Agent> Actor for AgentHost<A> {
    type Context = Context<Self>;

    fn started(&mut self, actx: &mut Self::Context) {
        self.touch();
        // Control messages (stop) are few; data goes through the agent's own mailbox.
        actx.set_mailbox_capacity(64);
        let weak = actx.address().downgrade();
        let activity = self.ctx.inner.endpoint.router.activity.clone();
        let _ = self.ctx.inner.stop.set(Box::new(move || {
            if let Some(addr) = weak.upgrade().filter(|a| a.connected()) {
                if let Some(activity) = &activity {
                    activity.begin();
                }
                addr.do_send(StopAgent {
                    done: None,
                    counted: activity.is_some(),
                });
            }
        }));
        self.boot(actx);
    }
}

impl<A: Agent> Handler<Drain> for AgentHost<A> {
    type Result = ();

    fn handle(&mut self, _: Drain, actx: &mut Context<Self>) {
        // One scope for the batch: `run` finds the identity already current.
        let entered = super::log_scope::enter(&mut self.log_identity);
        self.drain(actx);
        super::log_scope::leave(&mut self.log_identity, entered);
    }
}

impl<A: Agent> AgentHost<A> {
    /// Runs a batch of the mailbox's envelopes (see [`Drain`]).
    fn drain(&mut self, actx: &mut Context<Self>) {
        self.touch();
        if self.phase != Phase::Running || self.busy.is_some() {
            return;
        }
        let mailbox = self.ctx.inner.mailbox.clone();
        let mut batch: SmallVec<[Envelope; DRAIN_BATCH]> = SmallVec::new();
        mailbox.take_batch(DRAIN_BATCH, &mut batch);
        let mut pending = batch.into_iter();
        while let Some(envelope) = pending.next() {
            if self.handle_envelope(envelope, actx) {
                if self.phase == Phase::Running {
                    mailbox.put_back(pending);
                } else {
                    for e in pending {
                        e.refuse(self.ctx.identity());
                        mailbox.handled();
                    }
                }
                return;
            }
        }
        if mailbox.finish_drain() {
            actx.notify(Drain);
        }
    }
}

impl<A: Agent> Handler<StopAgent> for AgentHost<A> {
    type Result = ();

    fn handle(&mut self, msg: StopAgent, actx: &mut Context<Self>) {
        self.touch();
        if msg.counted {
            self.counted_stops += 1;
        }
        if self.phase == Phase::Stopped {
            self.settle_counted_stops();
            if let Some(done) = msg.done {
                let _ = done.send(());
            }
            return;
        }
        self.stop_waiters.extend(msg.done);
        match self.phase {
            Phase::Stopping | Phase::Stopped => {}
            // Let the running handler (or boot) finish first.
            _ if self.busy.is_some() => self.stop_pending = true,
            Phase::Booting => self.stop_pending = true,
            Phase::Running => self.begin_stop(actx),
        }
    }
}

impl<A: Agent> Handler<KillAgent> for AgentHost<A> {
    type Result = ();

    fn handle(&mut self, msg: KillAgent, actx: &mut Context<Self>) {
        self.touch();
        if self.phase == Phase::Stopped {
            if let Some(done) = msg.done {
                let _ = done.send(());
            }
            return;
        }
        if let Some((handle, counted)) = self.busy.take() {
            // Dropping the handler's future drops the agent it owns.
            actx.cancel_future(handle);
            if counted {
                self.ctx.inner.mailbox.handled();
            }
        }
        self.stop_waiters.extend(msg.done);
        let boot = self.boot.take();
        self.agent = None;
        self.leave(ExitReason::Killed(msg.reason), actx);
        if let Some(b) = boot {
            let _ = b.send(Err(BootError::Failed("killed while starting".into())));
        }
    }
}

fn error_text(e: HandlerError) -> String {
    match e {
        HandlerError::Failed(m) | HandlerError::InvalidParams(m) => m,
    }
}

fn rpc_error(method: &str, e: HandlerError) -> RpcError {
    match e {
        HandlerError::Failed(message) => RpcError::Remote {
            method: method.to_owned(),
            message,
            kind: "error".into(),
        },
        HandlerError::InvalidParams(message) => RpcError::InvalidParams {
            method: method.to_owned(),
            message,
        },
    }
}

/// Counts a handler run of `kind`; times it if it is one of the sample and the platform
/// has an instrumentation (see [`crate::platform::counters`]).
#[inline]
fn stopwatch(ctx: &AgentContext, kind: HandlerKind) -> Stopwatch {
    let inner = &ctx.inner;
    Stopwatch::start(
        inner.mailbox.cells.run(kind),
        inner.endpoint.router.instrumentation.get().is_some(),
    )
}

/// Reports a timed run.
#[inline]
fn timed(ctx: &AgentContext, kind: HandlerKind, watch: &Stopwatch) {
    if let (Some(elapsed), Some(i)) = (watch.elapsed(), ctx.inner.endpoint.router.instrumentation()) {
        i.handler_run(ctx.identity(), kind, elapsed);
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
