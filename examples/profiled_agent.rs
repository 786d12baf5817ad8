//! An agent process whose CPU profile you can fetch over the platform: it spends most of
//! each second in a function of its own, `spin_checksum`, on its agent thread.
//!
//! ```text
//! cargo build --example profiled_agent
//! vctl install target/debug/examples/profiled_agent --vip-identity busy --start
//! vctl profile --agent busy --seconds 5 -o busy.folded
//! grep -c spin_checksum busy.folded
//! ```
//!
//! Built with the `profile` feature (in the default features), the remote runtime answers
//! `profile.cpu` for the platform's profile service; nothing samples until then.

use std::time::{Duration, Instant};

/// Works 600 ms of every second.
#[derive(Default)]
struct Busy {
    checksum: u64,
}

#[volttron::agent]
impl Busy {
    #[periodic(secs = 1)]
    fn work(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(600) {
            self.checksum = self
                .checksum
                .wrapping_add(spin_checksum(std::hint::black_box(20_000)));
        }
    }

    /// The checksum so far.
    #[rpc]
    fn checksum(&mut self) -> u64 {
        self.checksum
    }
}

/// The busy function a profile of this process shows.
#[inline(never)]
fn spin_checksum(n: u64) -> u64 {
    (0..n).fold(0xcbf2_9ce4_8422_2325_u64, |h, i| {
        (h ^ i).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    if let Err(e) = volttron::remote::run(Busy::default()) {
        eprintln!("profiled_agent: {e}");
        std::process::exit(1);
    }
}
