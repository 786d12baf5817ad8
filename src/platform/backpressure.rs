//! Backpressure: each agent's data mailbox holds a bounded number of publications, and
//! each subscription names what happens when a publication arrives at a full mailbox.
//!
//! A publisher never waits: `publish` queues or drops and returns at once, so a slow
//! subscriber cannot slow down the publisher or anyone else.
//!
//! | policy | on a full mailbox | counted in |
//! |--------|-------------------|------------|
//! | [`OverflowPolicy::DropOldest`] (default) | the oldest queued publication is dropped, the new one queued (latest data wins, as a BMS wants for readings) | `dropped_oldest` |
//! | [`OverflowPolicy::DropNewest`] | the new publication is dropped | `dropped_newest` |
//! | [`OverflowPolicy::Disconnect`] | the new publication is dropped and the subscription removed (NATS's slow-consumer rule) | `disconnected` |
//!
//! RPC requests, timer firings and peer events are not bounded by the mailbox: an RPC
//! caller waits for its reply (it is its own backpressure), and replies travel on their own
//! channel, never dropped.

/// What happens to a publication that arrives at a full mailbox. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OverflowPolicy {
    /// Drop the oldest queued publication and queue the new one.
    #[default]
    DropOldest,
    /// Drop the new publication.
    DropNewest,
    /// Drop the new publication and remove the subscription.
    Disconnect,
}

/// An agent's mailbox counters, from [`Platform::mailbox_stats`](crate::Platform::mailbox_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailboxStats {
    /// Envelopes waiting (publications, requests, timer firings, peer events).
    pub queued: usize,
    /// Publications waiting.
    pub queued_publications: usize,
    /// The most publications that may wait.
    pub capacity: usize,
    /// Publications dropped under `DropOldest`.
    pub dropped_oldest: u64,
    /// Publications dropped under `DropNewest`.
    pub dropped_newest: u64,
    /// Subscriptions removed under `Disconnect` (each also dropped one publication).
    pub disconnected: u64,
}

impl MailboxStats {
    /// Every publication dropped, whatever the policy.
    pub fn dropped(&self) -> u64 {
        self.dropped_oldest + self.dropped_newest + self.disconnected
    }
}
