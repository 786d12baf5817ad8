//! RPC benchmarks: a round trip between two agents on one agent thread (an async RPC
//! handler of a caller agent awaiting `ctx.call` in a loop), and a round trip from the
//! [`Platform`](volttron::Platform) handle on the benchmark's own thread to an agent
//! (crosses threads).
//!
//! ```text
//! cargo bench --bench rpc
//! ```

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_main};

// The pub/sub and actix workloads are for `benches/pubsub.rs`; `examples/perf.rs` uses the
// whole module, so dead code in it is still reported there.
#[allow(dead_code)]
mod workloads;

use workloads::{rpc_platform, runtime};

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn rpc(c: &mut Criterion) {
    let rt = runtime();
    // One agent thread: caller and callee share it.
    let platform = rt.block_on(rpc_platform());
    let mut group = c.benchmark_group("rpc");
    group.bench_function("round_trip_agent_to_agent", |b| {
        b.iter_custom(|iters| {
            let nanos: u64 = rt
                .block_on(
                    platform
                        .call("caller", "calls", (iters,))
                        .timeout(Duration::from_secs(600))
                        .returning(),
                )
                .expect("calls");
            Duration::from_nanos(nanos)
        })
    });
    group.bench_function("round_trip_platform_handle", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    platform.call("callee", "echo", (i,)).await.expect("echo");
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    rt.block_on(platform.shutdown());
}

/// Runs every benchmark in this file (what `criterion_group!` would generate, documented).
fn benches() {
    let mut c = config().configure_from_args();
    rpc(&mut c);
}

criterion_main!(benches);
