//! Agent mailboxes: the data path between peers.
//!
//! Every peer has one [`Mailbox`]: a queue of [`Envelope`]s plus a *waker* that tells the
//! peer's actor to drain it. The waker is sent only when the queue goes from idle to
//! busy, so a burst of a thousand publications costs one actor message, and control
//! messages (stop, supervisor signals) that travel on the actor's own mailbox are never
//! stuck behind data.
//!
//! A closed mailbox refuses delivery and hands the envelope back, so an RPC request to a
//! peer that just stopped can be answered with an error instead of vanishing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::agent::ConfigUpdate;
use crate::core::{Args, Identity, Publication, RpcError, TraceContext, Value};
use crate::platform::backpressure::{MailboxStats, OverflowPolicy};
use crate::platform::clock::TimerId;
use crate::platform::counters::{AgentCells, AgentCounters};

/// An RPC request in flight.
pub(crate) struct Request {
    pub(crate) sender: Identity,
    pub(crate) method: String,
    pub(crate) args: Args,
    /// `None` for a notification (no reply expected).
    pub(crate) reply: Option<oneshot::Sender<Result<Value, RpcError>>>,
    /// The caller's trace context, if it was traced.
    pub(crate) trace: Option<TraceContext>,
}

/// A peer joining or leaving the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// The peer connected (VOLTTRON's `peerlist` *add*).
    Added(Identity),
    /// The peer disconnected (VOLTTRON's `peerlist` *drop*).
    Dropped(Identity),
}

impl PeerEvent {
    /// The peer concerned.
    pub fn peer(&self) -> &Identity {
        match self {
            PeerEvent::Added(p) | PeerEvent::Dropped(p) => p,
        }
    }
}

/// One item in a mailbox.
pub(crate) enum Envelope {
    /// A publication matching the listed subscriptions of the receiver.
    Publication {
        publication: Arc<Publication>,
        subscription: u32,
    },
    /// An RPC request or notification (boxed: keeps every envelope small).
    Request(Box<Request>),
    /// A ping: answered by the peer's runtime, not by agent code.
    Ping(oneshot::Sender<()>),
    /// A peer joined or left.
    Peer(PeerEvent),
    /// A timer fired.
    Timer { id: TimerId },
    /// This agent's health changed.
    Health(crate::core::Health),
    /// A configuration change for the `index`th `#[on_config]` handler.
    Config { index: usize, update: Arc<ConfigUpdate> },
    /// The bridge connection of an out-of-process agent came up (`true`) or went down.
    Link(bool),
}

impl Envelope {
    /// Fails a request that can no longer be delivered.
    pub(crate) fn refuse(self, peer: &Identity) {
        if let Envelope::Request(request) = self
            && let Some(reply) = request.reply
        {
            let _ = reply.send(Err(RpcError::PeerStopped {
                peer: peer.to_string(),
            }));
        }
    }
}

/// Counts envelopes queued or being handled across the platform, and every step of
/// progress (a delivery, a finished handler), so a test can wait until everything it set
/// in motion has run or is blocked (see `TestPlatform::settle`). Only enabled for
/// platforms that ask for it (virtual-clock ones), so production pays nothing.
#[derive(Default)]
pub(crate) struct Activity {
    in_flight: AtomicUsize,
    progress: AtomicUsize,
}

impl Activity {
    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.progress.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn end(&self) {
        self.progress.fetch_add(1, Ordering::AcqRel);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn progress(&self) -> usize {
        self.progress.load(Ordering::Acquire)
    }

    /// Records a step of progress that is not a delivery (a control message handled).
    pub(crate) fn touch(&self) {
        self.progress.fetch_add(1, Ordering::AcqRel);
    }

    /// Begins a unit of work that ends when the guard is dropped.
    #[cfg_attr(
        not(feature = "driver"),
        allow(dead_code, reason = "the driver's device tasks use it")
    )]
    pub(crate) fn guard(self: &Arc<Self>) -> ActivityGuard {
        self.begin();
        ActivityGuard(self.clone())
    }
}

/// Work in flight for [`Activity`] until dropped (see `Clock::sleep_as_work`).
pub(crate) struct ActivityGuard(Arc<Activity>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.0.end();
    }
}

struct MailboxState {
    /// Timer firings, pings, peer events and health changes: handled before `queue`, so that a flooded
    /// agent still keeps its schedule and answers pings.
    urgent: VecDeque<Envelope>,
    queue: VecDeque<Envelope>,
    /// A drain is requested or running.
    scheduled: bool,
    closed: bool,
    /// Publications in `queue` (the bounded kind of envelope).
    publications: usize,
    capacity: usize,
    dropped_oldest: u64,
    dropped_newest: u64,
    disconnected: u64,
    /// Publications queued.
    delivered: u64,
}

/// What a publication delivery did.
pub(crate) enum Delivered {
    /// Queued (possibly after dropping the oldest queued publication).
    Queued,
    /// Dropped under [`OverflowPolicy::DropNewest`].
    Dropped,
    /// The mailbox was full under [`OverflowPolicy::Disconnect`]: the subscription must go.
    Disconnect,
    /// The mailbox is closed.
    Closed,
}

fn is_publication(e: &Envelope) -> bool {
    matches!(e, Envelope::Publication { .. })
}

/// A peer's data mailbox.
pub(crate) struct Mailbox {
    state: Mutex<MailboxState>,
    waker: OnceLock<Box<dyn Fn() + Send + Sync>>,
    activity: Option<Arc<Activity>>,
    /// The owner's counters (handler runs, calls to it...).
    pub(crate) cells: Arc<AgentCells>,
}

impl Mailbox {
    /// A mailbox holding at most `capacity` publications (other envelopes are not
    /// bounded: RPC requests are bounded by their callers, who wait for the reply).
    pub(crate) fn new(activity: Option<Arc<Activity>>, capacity: usize, cells: Arc<AgentCells>) -> Self {
        Mailbox {
            state: Mutex::new(MailboxState {
                urgent: VecDeque::new(),
                queue: VecDeque::new(),
                scheduled: false,
                closed: false,
                publications: 0,
                capacity: capacity.max(1),
                dropped_oldest: 0,
                dropped_newest: 0,
                disconnected: 0,
                delivered: 0,
            }),
            waker: OnceLock::new(),
            activity,
            cells,
        }
    }

    /// Sets the function that asks the owner to drain. Set once, before any delivery
    /// can need it; deliveries before then wait in the queue.
    pub(crate) fn set_waker(&self, waker: Box<dyn Fn() + Send + Sync>) {
        let _ = self.waker.set(waker);
        let wake = {
            let mut st = self.state.lock();
            let pending = !st.queue.is_empty() || !st.urgent.is_empty();
            if pending && !st.scheduled {
                st.scheduled = true;
                true
            } else {
                false
            }
        };
        if wake {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(w) = self.waker.get() {
            w();
        }
    }

    /// Queues an envelope; hands it back if the mailbox is closed. Timer firings, pings,
    /// peer and health events and the owner's config follow-ups go ahead of queued data.
    pub(crate) fn deliver(&self, envelope: Envelope) -> Result<(), Envelope> {
        let st = self.state.lock();
        if st.closed {
            return Err(envelope);
        }
        self.enqueue(st, envelope);
        Ok(())
    }

    /// Queues a publication under the subscription's overflow policy.
    pub(crate) fn deliver_publication(&self, envelope: Envelope, policy: OverflowPolicy) -> Delivered {
        let mut st = self.state.lock();
        if st.closed {
            return Delivered::Closed;
        }
        if st.publications >= st.capacity {
            match policy {
                OverflowPolicy::DropNewest => {
                    st.dropped_newest += 1;
                    return Delivered::Dropped;
                }
                OverflowPolicy::Disconnect => {
                    st.disconnected += 1;
                    return Delivered::Disconnect;
                }
                OverflowPolicy::DropOldest => {
                    if let Some(pos) = st.queue.iter().position(is_publication) {
                        st.queue.remove(pos);
                        st.publications -= 1;
                        st.dropped_oldest += 1;
                        if let Some(a) = &self.activity {
                            a.end();
                        }
                    }
                }
            }
        }
        self.enqueue(st, envelope);
        Delivered::Queued
    }

    /// Queues the owner's own follow-up work, in order, ahead of queued data.
    pub(crate) fn push_urgent(&self, envelopes: Vec<Envelope>) {
        for e in envelopes {
            // Refused only once closed, when the follow-up no longer matters.
            let _ = self.deliver(e);
        }
    }

    /// Pushes onto the right queue, counts it, and wakes the owner if it was idle.
    fn enqueue(&self, mut st: parking_lot::MutexGuard<'_, MailboxState>, envelope: Envelope) {
        match envelope {
            Envelope::Timer { .. }
            | Envelope::Ping(_)
            | Envelope::Peer(_)
            | Envelope::Health(_)
            | Envelope::Link(_)
            | Envelope::Config { .. } => st.urgent.push_back(envelope),
            Envelope::Publication { .. } => {
                st.queue.push_back(envelope);
                st.publications += 1;
                st.delivered += 1;
            }
            _ => st.queue.push_back(envelope),
        }
        if let Some(a) = &self.activity {
            a.begin();
        }
        let wake = !std::mem::replace(&mut st.scheduled, true);
        drop(st);
        if wake {
            self.wake();
        }
    }

    /// Moves up to `max` envelopes into `out`.
    pub(crate) fn take_batch(&self, max: usize, out: &mut impl Extend<Envelope>) {
        let mut st = self.state.lock();
        let urgent = st.urgent.len().min(max);
        out.extend(st.urgent.drain(..urgent));
        let n = st.queue.len().min(max - urgent);
        let publications = st.queue.iter().take(n).filter(|e| is_publication(e)).count();
        st.publications -= publications;
        out.extend(st.queue.drain(..n));
    }

    /// Puts envelopes back at the front, in order (a drain that was suspended).
    pub(crate) fn put_back(&self, envelopes: impl DoubleEndedIterator<Item = Envelope>) {
        let mut st = self.state.lock();
        for e in envelopes.rev() {
            if is_publication(&e) {
                st.publications += 1;
            }
            st.queue.push_front(e);
        }
    }

    /// Counters for the platform handle.
    pub(crate) fn stats(&self) -> MailboxStats {
        let st = self.state.lock();
        MailboxStats {
            queued: st.queue.len() + st.urgent.len(),
            queued_publications: st.publications,
            capacity: st.capacity,
            dropped_oldest: st.dropped_oldest,
            dropped_newest: st.dropped_newest,
            disconnected: st.disconnected,
        }
    }

    /// The owner's counters.
    pub(crate) fn counters(&self) -> AgentCounters {
        let delivered = self.state.lock().delivered;
        AgentCounters {
            deliveries: delivered,
            ..self.cells.read()
        }
    }

    /// Whether deliveries are waiting for a drain (one was requested).
    pub(crate) fn drain_requested(&self) -> bool {
        self.state.lock().scheduled
    }

    /// Ends a drain: returns true if more envelopes arrived and the owner must drain again
    /// (the drain stays scheduled), false if the mailbox went idle.
    pub(crate) fn finish_drain(&self) -> bool {
        let mut st = self.state.lock();
        if st.queue.is_empty() && st.urgent.is_empty() {
            st.scheduled = false;
            false
        } else {
            true
        }
    }

    /// Marks one envelope as handled (for [`Activity`]).
    pub(crate) fn handled(&self) {
        if let Some(a) = &self.activity {
            a.end();
        }
    }

    /// Closes the mailbox and returns what was still queued.
    pub(crate) fn close(&self) -> Vec<Envelope> {
        let mut st = self.state.lock();
        st.closed = true;
        st.publications = 0;
        let mut rest: Vec<Envelope> = st.urgent.drain(..).collect();
        rest.extend(st.queue.drain(..));
        if let Some(a) = &self.activity {
            for _ in &rest {
                a.end();
            }
        }
        rest
    }
}
