//! Link keepalive: noticing a silent link whose other end is gone without closing it (a
//! host powered off, a cable pulled, a NAT entry expired), as NATS does with its
//! PING/PONG.
//!
//! A process that dies is noticed at once: its kernel closes the socket. A *host* that
//! dies sends nothing; TCP alone would notice only when a write times out, after many
//! minutes. So each end of a bridge link checks, every keepalive interval, whether it has
//! received any frame since the last check:
//!
//! | ticks in a row without a frame | action |
//! |---|---|
//! | 0 (frames arrived) | nothing |
//! | 1, 2 | send a `Ping` to the other end (which answers `Pong`, a frame) |
//! | [`MISSED_BEFORE_DEAD`] (3) | the link is presumed dead: closed, and the agent side reconnects |
//!
//! So a dead link is noticed within three to four intervals; a busy link never pings.
//! Both ends answer a `Ping` at once, from the task that reads the link. The default
//! interval is [`DEFAULT_KEEPALIVE`] (10 s): a dead host is noticed in 30–40 s. An agent
//! whose thread is blocked for that long (a synchronous handler that never yields) cannot
//! answer and is disconnected, then reconnects.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

/// The default keepalive interval on both ends of a link.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(10);

/// Consecutive silent intervals after which a link is presumed dead.
pub const MISSED_BEFORE_DEAD: u32 = 3;

/// What to do at a keepalive tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepaliveAction {
    /// Frames arrived since the last tick.
    Nothing,
    /// Silent since the last tick: ask the other end.
    Ping,
    /// Silent for [`MISSED_BEFORE_DEAD`] ticks: close the link.
    Dead,
}

/// The keepalive state of one link: an interval timer and a count of silent ticks.
#[derive(Debug)]
pub(crate) struct Keepalive {
    interval: Interval,
    every: Duration,
    silent: u32,
    seen: u64,
}

impl Keepalive {
    /// A keepalive ticking every `every` (at least 1 ms), first one interval from now.
    pub(crate) fn new(every: Duration) -> Keepalive {
        let every = every.max(Duration::from_millis(1));
        let mut interval = tokio::time::interval_at(Instant::now() + every, every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Keepalive {
            interval,
            every,
            silent: 0,
            seen: 0,
        }
    }

    /// Waits for the next tick.
    pub(crate) async fn tick(&mut self) {
        self.interval.tick().await;
    }

    /// The action for a tick, given how many frames the link has received in all.
    pub(crate) fn on_tick(&mut self, received: u64) -> KeepaliveAction {
        if received != self.seen {
            self.seen = received;
            self.silent = 0;
            return KeepaliveAction::Nothing;
        }
        self.silent += 1;
        if self.silent >= MISSED_BEFORE_DEAD {
            KeepaliveAction::Dead
        } else {
            KeepaliveAction::Ping
        }
    }

    /// Why the link was closed, for the log.
    pub(crate) fn dead_reason(&self) -> String {
        format!(
            "no frame for {:?} (keepalive {:?}, {MISSED_BEFORE_DEAD} missed): the other end is presumed gone",
            self.every * MISSED_BEFORE_DEAD,
            self.every
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn silence_pings_twice_then_is_dead_and_any_frame_resets() {
        let mut k = Keepalive::new(Duration::from_secs(1));
        assert_eq!(k.on_tick(0), KeepaliveAction::Ping);
        assert_eq!(k.on_tick(0), KeepaliveAction::Ping);
        // A frame (the pong) arrived.
        assert_eq!(k.on_tick(1), KeepaliveAction::Nothing);
        assert_eq!(k.on_tick(1), KeepaliveAction::Ping);
        assert_eq!(k.on_tick(1), KeepaliveAction::Ping);
        assert_eq!(k.on_tick(1), KeepaliveAction::Dead);
        assert!(k.dead_reason().contains("3s"), "{}", k.dead_reason());
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_come_every_interval_starting_one_interval_from_now() {
        let start = Instant::now();
        let mut k = Keepalive::new(Duration::from_millis(250));
        k.tick().await;
        assert_eq!(start.elapsed(), Duration::from_millis(250));
        k.tick().await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }
}
