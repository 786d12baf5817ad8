//! Drops publications received twice: QoS 1 is at-least-once, and a broker or platform
//! restart resends what was not acknowledged. Every publication carries its platform's
//! boot number and a sequence number; per platform, the last [`WINDOW`] numbers are
//! remembered.
//!
//! | received | verdict |
//! |----------|---------|
//! | a new boot of the platform | fresh; the window restarts |
//! | a number above any seen | fresh |
//! | a number within the window, not seen | fresh (publications of one platform may arrive out of order across topics) |
//! | a number within the window, seen | duplicate |
//! | a number below the window | duplicate (too old to tell; delivered at most once past the window) |

use std::collections::HashMap;

/// How many recent numbers of each platform are remembered.
pub(crate) const WINDOW: u64 = 4096;

#[derive(Default)]
struct Seen {
    boot: u64,
    highest: u64,
    /// Bit `i` of word `i / 64`: number `highest - i` was seen.
    bits: Vec<u64>,
}

impl Seen {
    fn bit(&self, back: u64) -> bool {
        let (w, b) = ((back / 64) as usize, back % 64);
        self.bits.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    fn set(&mut self, back: u64) {
        let (w, b) = ((back / 64) as usize, back % 64);
        self.bits[w] |= 1 << b;
    }

    /// Moves the window up by `by` numbers.
    fn shift(&mut self, by: u64) {
        let words = self.bits.len();
        if by >= WINDOW {
            self.bits.iter_mut().for_each(|w| *w = 0);
            return;
        }
        let (wshift, bshift) = ((by / 64) as usize, by % 64);
        for i in (0..words).rev() {
            let src = i.checked_sub(wshift);
            let hi = src.map_or(0, |s| self.bits[s] << bshift);
            let lo = match (src, bshift) {
                (Some(s), b) if b > 0 && s > 0 => self.bits[s - 1] >> (64 - b),
                _ => 0,
            };
            self.bits[i] = hi | lo;
        }
    }
}

/// The numbers seen, per platform.
#[derive(Default)]
pub(crate) struct Dedup {
    platforms: HashMap<String, Seen>,
}

impl Dedup {
    /// True if `(boot, seq)` of `platform` was not seen before.
    pub(crate) fn fresh(&mut self, platform: &str, boot: u64, seq: u64) -> bool {
        let seen = self.platforms.entry(platform.to_owned()).or_default();
        if seen.bits.is_empty() || seen.boot != boot {
            *seen = Seen {
                boot,
                highest: seq,
                bits: vec![0; (WINDOW / 64) as usize],
            };
            seen.set(0);
            return true;
        }
        if seq > seen.highest {
            seen.shift(seq - seen.highest);
            seen.highest = seq;
            seen.set(0);
            return true;
        }
        let back = seen.highest - seq;
        if back >= WINDOW || seen.bit(back) {
            return false;
        }
        seen.set(back);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_dropped_and_gaps_are_not() {
        let mut d = Dedup::default();
        assert!(d.fresh("a", 1, 10));
        assert!(!d.fresh("a", 1, 10));
        assert!(d.fresh("a", 1, 12));
        assert!(d.fresh("a", 1, 11), "a gap filled later is fresh");
        assert!(!d.fresh("a", 1, 11));
        assert!(d.fresh("b", 1, 10), "platforms are apart");
        assert!(d.fresh("a", 2, 1), "a new boot starts over");
        assert!(!d.fresh("a", 2, 1));
    }

    #[test]
    fn the_window_slides() {
        let mut d = Dedup::default();
        for s in 0..10_000u64 {
            assert!(d.fresh("a", 1, s));
        }
        for s in (10_000 - WINDOW)..10_000 {
            assert!(!d.fresh("a", 1, s), "{s}");
        }
        assert!(!d.fresh("a", 1, 10_000 - WINDOW - 1), "below the window");
        assert!(d.fresh("a", 1, 10_000 + 70));
        assert!(d.fresh("a", 1, 10_000 + 3), "a gap after a jump");
        assert!(!d.fresh("a", 1, 9_999));
        assert!(d.fresh("a", 1, 50_000));
        assert!(!d.fresh("a", 1, 50_000));
    }
}
