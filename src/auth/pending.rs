//! Peers waiting for approval, and the back-off that slows down a source that keeps
//! failing to authenticate. Pure logic: the time is always passed in, so tests need no
//! sleeping.
//!
//! * [`PendingList`]: every unknown key that tried to connect (identity, key, source, first
//!   and last attempt, number of attempts), in memory only, as VOLTTRON's pending list; an
//!   administrator approves or denies them through the auth service. It holds at most
//!   [`PendingList::capacity`] peers; when full, the peer seen longest ago makes room.
//! * [`FailureTracker`]: per source (an address or a uid), the delay to impose before the
//!   next attempt is answered: none after no failure, then 100 ms after the first failure,
//!   doubling with each further failure up to 30 s. A success, or 10 minutes without a
//!   failure, starts the source afresh. (VOLTTRON's ZAP handler waits a random 0–1 s that
//!   doubles up to 100 s.) It tracks at most [`FailureTracker::capacity`] sources; when
//!   full, the source that failed longest ago is forgotten.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::entries::same_key;

/// A peer that tried to connect with a key nobody approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingPeer {
    /// The identity it claimed.
    pub identity: String,
    /// Its public key, base64 text.
    pub public_key: String,
    /// Where it came from at its last attempt (an address, or a local uid).
    pub source: String,
    /// Its first attempt.
    pub first_seen: DateTime<Utc>,
    /// Its last attempt.
    pub last_seen: DateTime<Utc>,
    /// How many times it tried.
    pub attempts: u64,
}

impl PendingPeer {
    /// Whether `identity_or_key` names this peer (its identity or its key).
    pub fn is_named_by(&self, identity_or_key: &str) -> bool {
        self.identity == identity_or_key || same_key(&self.public_key, identity_or_key)
    }
}

/// Peers waiting for approval, one per (identity, key), in order of first attempt.
#[derive(Debug, Clone)]
pub struct PendingList {
    peers: Vec<PendingPeer>,
    capacity: usize,
}

impl Default for PendingList {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl PendingList {
    /// How many peers [`PendingList::default`] holds.
    pub const DEFAULT_CAPACITY: usize = 1000;

    /// An empty list holding at most `capacity` peers (at least one).
    pub fn new(capacity: usize) -> Self {
        PendingList {
            peers: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// The most peers held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records an attempt by `identity` with `public_key` from `source` at `now`, and
    /// returns the peer's record.
    pub fn record(
        &mut self,
        identity: &str,
        public_key: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> &PendingPeer {
        let i = match self
            .peers
            .iter()
            .position(|p| p.identity == identity && same_key(&p.public_key, public_key))
        {
            Some(i) => {
                let p = &mut self.peers[i];
                p.last_seen = now;
                p.attempts += 1;
                p.source = source.to_owned();
                i
            }
            None => {
                if self.peers.len() >= self.capacity
                    && let Some(oldest) = self
                        .peers
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, p)| p.last_seen)
                        .map(|(i, _)| i)
                {
                    self.peers.remove(oldest);
                }
                self.peers.push(PendingPeer {
                    identity: identity.to_owned(),
                    public_key: public_key.to_owned(),
                    source: source.to_owned(),
                    first_seen: now,
                    last_seen: now,
                    attempts: 1,
                });
                self.peers.len() - 1
            }
        };
        &self.peers[i]
    }

    /// Every pending peer, in order of first attempt.
    pub fn peers(&self) -> &[PendingPeer] {
        &self.peers
    }

    /// The peers whose identity or key is `identity_or_key`.
    pub fn matching(&self, identity_or_key: &str) -> Vec<PendingPeer> {
        self.peers
            .iter()
            .filter(|p| p.is_named_by(identity_or_key))
            .cloned()
            .collect()
    }

    /// Removes and returns the peers whose identity or key is `identity_or_key`.
    pub fn remove(&mut self, identity_or_key: &str) -> Vec<PendingPeer> {
        let (gone, kept) = std::mem::take(&mut self.peers)
            .into_iter()
            .partition(|p| p.is_named_by(identity_or_key));
        self.peers = kept;
        gone
    }

    /// Removes the peer with exactly this identity and key; true if it was there.
    pub fn remove_exact(&mut self, identity: &str, public_key: &str) -> bool {
        let before = self.peers.len();
        self.peers
            .retain(|p| !(p.identity == identity && same_key(&p.public_key, public_key)));
        self.peers.len() != before
    }

    /// The number of pending peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when nobody is pending.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Per-source failure counts and the back-off delay they earn (see the module docs).
#[derive(Debug, Clone)]
pub struct FailureTracker {
    sources: HashMap<String, Failures>,
    first_delay: Duration,
    max_delay: Duration,
    forget_after: Duration,
    capacity: usize,
}

impl Default for FailureTracker {
    fn default() -> Self {
        FailureTracker {
            sources: HashMap::new(),
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            forget_after: Duration::from_secs(600),
            capacity: 10_000,
        }
    }
}

impl FailureTracker {
    /// The default policy: 100 ms doubling to 30 s, forgotten after 10 quiet minutes, at
    /// most 10 000 sources.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker with its own policy.
    pub fn with_policy(
        first_delay: Duration,
        max_delay: Duration,
        forget_after: Duration,
        capacity: usize,
    ) -> Self {
        FailureTracker {
            sources: HashMap::new(),
            first_delay,
            max_delay,
            forget_after,
            capacity: capacity.max(1),
        }
    }

    /// The most sources tracked.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn live(&self, source: &str, now: Instant) -> Option<&Failures> {
        self.sources
            .get(source)
            .filter(|f| now.saturating_duration_since(f.last) < self.forget_after)
    }

    /// The failures counted against `source` at `now`.
    pub fn failures(&self, source: &str, now: Instant) -> u32 {
        self.live(source, now).map_or(0, |f| f.count)
    }

    /// The delay to impose on `source`'s next attempt at `now`: zero without failures, else
    /// the first delay doubled per further failure, capped.
    pub fn delay(&self, source: &str, now: Instant) -> Duration {
        match self.failures(source, now) {
            0 => Duration::ZERO,
            n => {
                let factor = 1u32.checked_shl(n - 1).unwrap_or(u32::MAX);
                self.first_delay.saturating_mul(factor).min(self.max_delay)
            }
        }
    }

    /// Counts a failure of `source` at `now`; returns the delay its next attempt earns.
    pub fn record_failure(&mut self, source: &str, now: Instant) -> Duration {
        let count = self.failures(source, now).saturating_add(1);
        if !self.sources.contains_key(source) && self.sources.len() >= self.capacity {
            let forget_after = self.forget_after;
            self.sources
                .retain(|_, f| now.saturating_duration_since(f.last) < forget_after);
            if self.sources.len() >= self.capacity
                && let Some(oldest) = self
                    .sources
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(s, _)| s.clone())
            {
                self.sources.remove(&oldest);
            }
        }
        self.sources
            .insert(source.to_owned(), Failures { count, last: now });
        self.delay(source, now)
    }

    /// Forgets `source`'s failures.
    pub fn record_success(&mut self, source: &str) {
        self.sources.remove(source);
    }

    /// The number of sources tracked (including ones about to be forgotten).
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// True when no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn pending_records_attempts_per_identity_and_key() {
        let mut p = PendingList::default();
        p.record("a", "3q2+7w==", "tcp://1", t0());
        let later = t0() + chrono::Duration::seconds(5);
        let rec = p.record("a", "3q2-7w", "tcp://2", later).clone();
        assert_eq!(
            rec.attempts, 2,
            "the same key in another alphabet is the same peer"
        );
        assert_eq!((rec.first_seen, rec.last_seen), (t0(), later));
        assert_eq!(rec.source, "tcp://2");
        p.record("a", "AAAA", "tcp://3", later);
        assert_eq!(p.len(), 2, "another key for the same identity is another peer");
        assert_eq!(p.matching("a").len(), 2);
        assert_eq!(p.matching("AAAA").len(), 1);
        assert!(p.remove_exact("a", "AAAA"));
        assert!(!p.remove_exact("a", "AAAA"));
        assert_eq!(p.remove("3q2+7w==").len(), 1);
        assert!(p.is_empty());
    }

    #[test]
    fn pending_is_bounded() {
        let mut p = PendingList::new(2);
        p.record("a", "AAAA", "s", t0());
        p.record("b", "BBBB", "s", t0() + chrono::Duration::seconds(1));
        p.record("a", "AAAA", "s", t0() + chrono::Duration::seconds(2));
        p.record("c", "CCCC", "s", t0() + chrono::Duration::seconds(3));
        let ids: Vec<_> = p.peers().iter().map(|p| p.identity.as_str()).collect();
        assert_eq!(ids, ["a", "c"], "b was seen longest ago");
    }

    #[test]
    fn failure_delays_double_up_to_the_cap_and_reset_on_success() {
        let mut f = FailureTracker::new();
        let now = Instant::now();
        assert_eq!(f.delay("ip", now), Duration::ZERO);
        let delays: Vec<u128> = (0..12).map(|_| f.record_failure("ip", now).as_millis()).collect();
        assert_eq!(
            delays,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
        assert_eq!(f.delay("other", now), Duration::ZERO, "per source");
        for _ in 0..100 {
            f.record_failure("ip", now);
        }
        assert_eq!(f.delay("ip", now), Duration::from_secs(30), "no overflow");
        f.record_success("ip");
        assert_eq!(f.delay("ip", now), Duration::ZERO);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_period() {
        let mut f = FailureTracker::with_policy(
            Duration::from_millis(100),
            Duration::from_secs(30),
            Duration::from_secs(60),
            2,
        );
        let now = Instant::now();
        f.record_failure("a", now);
        f.record_failure("a", now);
        assert_eq!(f.failures("a", now + Duration::from_secs(59)), 2);
        assert_eq!(f.delay("a", now + Duration::from_secs(60)), Duration::ZERO);
        assert_eq!(
            f.record_failure("a", now + Duration::from_secs(61)),
            Duration::from_millis(100),
            "counting starts afresh"
        );
        f.record_failure("b", now + Duration::from_secs(62));
        f.record_failure("c", now + Duration::from_secs(63));
        assert_eq!(
            f.len(),
            2,
            "bounded: the source that failed longest ago is forgotten"
        );
        assert_eq!(f.failures("a", now + Duration::from_secs(63)), 0);
    }
}
