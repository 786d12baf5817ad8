//! The platform's hot-path counters, and the seam through which timings leave it.
//!
//! Counting is always on and costs one relaxed atomic add where it happens: each agent's
//! counters live beside its mailbox (no lookup: the path that counts already holds the
//! mailbox), the platform's in its routing table. Readers take copies at any time:
//! [`Platform::agent_counters`](crate::Platform::agent_counters) and
//! [`Platform::counters`](crate::Platform::counters) (the metrics module turns them into
//! Prometheus series at scrape time).
//!
//! Timings (handler run times, RPC round trips, config-store `fsync`s) need a clock read
//! on each side, which costs more than the work they measure on the fastest paths (a clock
//! read is ≈ 25 ns on the development VM; a publication delivered and handled ≈ 200–280 ns). So they are taken only
//! when an [`Instrumentation`] is attached ([`PlatformBuilder::instrumentation`]) and then
//! for one run in [`TIMING_SAMPLE`] of each agent's handlers of a kind and one call in
//! [`TIMING_SAMPLE`] to each callee (every `fsync`: they take milliseconds):
//!
//! | what | counted (always) | timed (with an `Instrumentation`) |
//! |------|------------------|-----------------------------------|
//! | handler runs, by [`HandlerKind`] | every run ([`AgentCounters::handler_runs`]) | 1 in [`TIMING_SAMPLE`] per agent and kind ([`Instrumentation::handler_run`]), async handlers to completion |
//! | handler panics | [`AgentCounters::panics`] | — |
//! | publications queued for the agent | [`AgentCounters::deliveries`] | — |
//! | RPC calls to the agent (from anywhere) | [`AgentCounters::rpc_calls`] | round trip of 1 in [`TIMING_SAMPLE`], at the caller ([`Instrumentation::rpc_round_trip`]) |
//! | … that failed, by JSON-RPC code; that timed out | [`AgentCounters::rpc_errors`], [`AgentCounters::rpc_timeouts`] | — |
//! | publishes, authorization refusals | [`PlatformCounters`] | — |
//! | bridge connections, handshake failures, frames, bytes, keepalive closes, full outboxes | [`PlatformCounters`] | — |
//! | config-store writes | [`PlatformCounters::config_writes`] | every `fsync` ([`Instrumentation::config_fsync`]) |
//! | supervisors giving up (restart limit) | [`PlatformCounters::supervisor_give_ups`] | — |
//!
//! [`PlatformBuilder::instrumentation`]: crate::PlatformBuilder::instrumentation

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// One run in this many of each agent's handlers of a kind (and one RPC call in this many
/// to each callee) is timed when an [`Instrumentation`] is attached.
pub const TIMING_SAMPLE: u64 = 16;

/// What a handler run was for (a label of bounded values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandlerKind {
    /// A `#[subscribe]` handler or a run-time subscription.
    Publication,
    /// An `#[rpc]` method.
    Rpc,
    /// A `#[periodic]` or `#[schedule]` handler, or a timer set at run time.
    Timer,
    /// An `#[on_config]` handler.
    Config,
    /// `#[on_peerlist]`, `#[on_health]`, `#[on_connected]`, `#[on_disconnected]`.
    Event,
    /// `#[on_setup]`, `#[on_start]`, `#[on_stop]`.
    Lifecycle,
}

impl HandlerKind {
    /// Every kind, in label order.
    pub const ALL: [HandlerKind; 6] = [
        HandlerKind::Publication,
        HandlerKind::Rpc,
        HandlerKind::Timer,
        HandlerKind::Config,
        HandlerKind::Event,
        HandlerKind::Lifecycle,
    ];

    /// The label value: `publication`, `rpc`, `timer`, `config`, `event`, `lifecycle`.
    pub fn as_str(self) -> &'static str {
        match self {
            HandlerKind::Publication => "publication",
            HandlerKind::Rpc => "rpc",
            HandlerKind::Timer => "timer",
            HandlerKind::Config => "config",
            HandlerKind::Event => "event",
            HandlerKind::Lifecycle => "lifecycle",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The JSON-RPC codes RPC failures are counted by (VOLTTRON's, see
/// [`RpcError::code`](crate::RpcError::code)).
pub const RPC_ERROR_CODES: [i64; 4] = [-32601, -32602, -32000, -32001];

/// Receives the platform's sampled timings (see the module docs). The metrics module
/// implements it; so may an embedding application, to feed its own telemetry.
///
/// Called on the thread that did the work (an agent's thread, a caller's): keep it short
/// and never block.
pub trait Instrumentation: Send + Sync + 'static {
    /// A handler of agent `identity` ran for `elapsed`.
    fn handler_run(&self, identity: &crate::core::Identity, kind: HandlerKind, elapsed: Duration);
    /// A call to `callee` was answered (reply or error) after `elapsed`.
    fn rpc_round_trip(&self, callee: &str, elapsed: Duration);
    /// A config-store write was made durable (its `fsync`s) in `elapsed`.
    fn config_fsync(&self, elapsed: Duration);
    /// The value itself, for a plug-in that looks for its own kind of instrumentation
    /// (`AgentContext::metrics`).
    fn as_any(&self) -> &dyn std::any::Any;
}

impl std::fmt::Debug for dyn Instrumentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Instrumentation")
    }
}

/// A copy of one agent's counters ([`Platform::agent_counters`](crate::Platform::agent_counters)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentCounters {
    /// Handler runs, indexed as [`HandlerKind::ALL`].
    pub handler_runs: [u64; 6],
    /// Handlers that panicked.
    pub panics: u64,
    /// Publications queued for it (before any overflow drop).
    pub deliveries: u64,
    /// RPC requests sent to it (notifications included).
    pub rpc_calls: u64,
    /// Calls to it that failed, indexed as [`RPC_ERROR_CODES`].
    pub rpc_errors: [u64; 4],
    /// Calls to it whose deadline passed.
    pub rpc_timeouts: u64,
}

impl AgentCounters {
    /// Runs of `kind`.
    pub fn runs(&self, kind: HandlerKind) -> u64 {
        self.handler_runs[kind.index()]
    }
}

/// An agent's counter cells (beside its mailbox).
#[derive(Default)]
pub(crate) struct AgentCells {
    runs: [AtomicU64; 6],
    panics: AtomicU64,
    rpc_calls: AtomicU64,
    rpc_errors: [AtomicU64; 4],
    rpc_timeouts: AtomicU64,
}

impl AgentCells {
    /// Counts a run of `kind`; true if this run is one to time. Only the agent's host
    /// counts runs, on the agent's thread, one host per identity at a time: a plain load
    /// and store (no locked read-modify-write) is exact.
    #[inline]
    pub(crate) fn run(&self, kind: HandlerKind) -> bool {
        let cell = &self.runs[kind.index()];
        let n = cell.load(Relaxed);
        cell.store(n + 1, Relaxed);
        n.is_multiple_of(TIMING_SAMPLE)
    }

    pub(crate) fn panicked(&self) {
        self.panics.fetch_add(1, Relaxed);
    }

    /// Counts a call to this agent; true if this call is one to time.
    #[inline]
    pub(crate) fn called(&self) -> bool {
        self.rpc_calls.fetch_add(1, Relaxed).is_multiple_of(TIMING_SAMPLE)
    }

    /// Counts a failed call to this agent by its outcome.
    pub(crate) fn failed(&self, error: &crate::core::RpcError) {
        if matches!(error, crate::core::RpcError::Timeout { .. }) {
            self.rpc_timeouts.fetch_add(1, Relaxed);
        } else if let Some(i) = error
            .code()
            .and_then(|c| RPC_ERROR_CODES.iter().position(|&k| k == c))
        {
            self.rpc_errors[i].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn read(&self) -> AgentCounters {
        AgentCounters {
            handler_runs: std::array::from_fn(|i| self.runs[i].load(Relaxed)),
            panics: self.panics.load(Relaxed),
            // Kept by the mailbox, under its lock.
            deliveries: 0,
            rpc_calls: self.rpc_calls.load(Relaxed),
            rpc_errors: std::array::from_fn(|i| self.rpc_errors[i].load(Relaxed)),
            rpc_timeouts: self.rpc_timeouts.load(Relaxed),
        }
    }
}

/// A copy of the platform's counters ([`Platform::counters`](crate::Platform::counters)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlatformCounters {
    /// Publishes through the routing table, from anyone.
    pub publishes: u64,
    /// Publishes, subscriptions and calls refused by `authz.json`.
    pub authz_refusals: u64,
    /// Bridge connections accepted (before their handshake).
    pub bridge_connections: u64,
    /// Bridge handshakes that failed (bad key, bad hello, refused identity, timeout).
    pub bridge_handshake_failures: u64,
    /// Bridge frames received.
    pub bridge_frames_in: u64,
    /// Bridge frames sent.
    pub bridge_frames_out: u64,
    /// Bridge bytes received (on the socket, encrypted).
    pub bridge_bytes_in: u64,
    /// Bridge bytes sent (on the socket, encrypted).
    pub bridge_bytes_out: u64,
    /// Bridge links closed because the peer stopped answering keepalives.
    pub bridge_keepalive_closes: u64,
    /// Frames dropped because a bridged agent's outbox was full (it stopped reading).
    pub bridge_outbox_full: u64,
    /// Config-store writes made durable (set, delete, edit).
    pub config_writes: u64,
    /// Times a supervisor gave up: a child over its restart limit, removed or escalated.
    pub supervisor_give_ups: u64,
}

/// A counter many threads add to: one cache line per shard, each thread adding to its own
/// shard, so that publishers on different cores do not contend for one line.
pub(crate) struct ShardedCounter([Shard; SHARDS]);

const SHARDS: usize = 16;

#[repr(align(64))]
#[derive(Default)]
struct Shard(AtomicU64);

impl Default for ShardedCounter {
    fn default() -> Self {
        ShardedCounter(std::array::from_fn(|_| Shard::default()))
    }
}

impl ShardedCounter {
    /// Adds one, to this thread's shard.
    #[inline]
    pub(crate) fn inc(&self) {
        thread_local! {
            static SHARD: usize = {
                static NEXT: AtomicU64 = AtomicU64::new(0);
                NEXT.fetch_add(1, Relaxed) as usize % SHARDS
            };
        }
        let i = SHARD.with(|i| *i);
        self.0[i].0.fetch_add(1, Relaxed);
    }

    /// The sum of the shards.
    pub(crate) fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Relaxed)).sum()
    }
}

/// The platform's counter cells (in its routing table).
#[derive(Default)]
pub(crate) struct PlatformCells {
    pub(crate) publishes: ShardedCounter,
    pub(crate) authz_refusals: AtomicU64,
    pub(crate) bridge_connections: AtomicU64,
    pub(crate) bridge_handshake_failures: AtomicU64,
    pub(crate) bridge_frames_in: AtomicU64,
    pub(crate) bridge_frames_out: AtomicU64,
    pub(crate) bridge_bytes_in: AtomicU64,
    pub(crate) bridge_bytes_out: AtomicU64,
    pub(crate) bridge_keepalive_closes: AtomicU64,
    pub(crate) bridge_outbox_full: AtomicU64,
    pub(crate) config_writes: AtomicU64,
    pub(crate) supervisor_give_ups: AtomicU64,
}

/// Adds `n` to a counter cell.
#[inline]
pub(crate) fn add(cell: &AtomicU64, n: u64) {
    cell.fetch_add(n, Relaxed);
}

impl PlatformCells {
    pub(crate) fn read(&self) -> PlatformCounters {
        let r = |c: &AtomicU64| c.load(Relaxed);
        PlatformCounters {
            publishes: self.publishes.get(),
            authz_refusals: r(&self.authz_refusals),
            bridge_connections: r(&self.bridge_connections),
            bridge_handshake_failures: r(&self.bridge_handshake_failures),
            bridge_frames_in: r(&self.bridge_frames_in),
            bridge_frames_out: r(&self.bridge_frames_out),
            bridge_bytes_in: r(&self.bridge_bytes_in),
            bridge_bytes_out: r(&self.bridge_bytes_out),
            bridge_keepalive_closes: r(&self.bridge_keepalive_closes),
            bridge_outbox_full: r(&self.bridge_outbox_full),
            config_writes: r(&self.config_writes),
            supervisor_give_ups: r(&self.supervisor_give_ups),
        }
    }
}

/// A sampled timing in progress: started only when it will be reported.
pub(crate) struct Stopwatch(Option<Instant>);

impl Stopwatch {
    /// Starts if `sampled` and an instrumentation is attached.
    #[inline]
    pub(crate) fn start(sampled: bool, attached: bool) -> Stopwatch {
        Stopwatch((sampled && attached).then(Instant::now))
    }

    /// The time since the start, if it was started.
    #[inline]
    pub(crate) fn elapsed(&self) -> Option<Duration> {
        self.0.map(|t| t.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_in_the_sample_is_timed() {
        let cells = AgentCells::default();
        let timed = (0..TIMING_SAMPLE * 3)
            .filter(|_| cells.run(HandlerKind::Rpc))
            .count();
        assert_eq!(timed, 3);
        assert_eq!(cells.read().runs(HandlerKind::Rpc), TIMING_SAMPLE * 3);
        assert_eq!(cells.read().runs(HandlerKind::Publication), 0);
    }

    #[test]
    fn a_sharded_counter_sums_every_threads_adds() {
        let c = std::sync::Arc::new(ShardedCounter::default());
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.inc()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.get(), 20_000);
    }

    #[test]
    fn failures_are_counted_by_code_and_timeouts_apart() {
        use crate::core::RpcError;
        let cells = AgentCells::default();
        cells.failed(&RpcError::MethodNotFound { method: "m".into() });
        cells.failed(&RpcError::Timeout {
            peer: "p".into(),
            method: "m".into(),
            timeout: Duration::from_secs(1),
        });
        cells.failed(&RpcError::NotConnected);
        let c = cells.read();
        assert_eq!(c.rpc_errors, [1, 0, 0, 0]);
        assert_eq!(c.rpc_timeouts, 1);
    }
}
