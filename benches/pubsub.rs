//! Pub/sub benchmarks: a publish reaching one subscriber, reaching 100, reaching one
//! while 100,000 non-matching subscriptions are present, and reaching one while a slow
//! subscriber (1 ms per message, so its mailbox is full and drops) shares the prefix; plus
//! the actix `do_send` baseline (one actor to another on the same arbiter).
//!
//! Each measurement publishes `iters` messages from an async RPC handler of a publisher
//! agent (in chunks of [`workloads::CHUNK`], yielding between them) and times first
//! publish to last delivery (the slow subscriber is not waited for). Platforms run with `agent_threads(1)`: publisher and
//! subscribers share one agent thread, as the actix baseline shares one arbiter.
//!
//! ```text
//! cargo bench --bench pubsub
//! ```

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_main};

// The RPC workloads are for `benches/rpc.rs`; `examples/perf.rs` uses the whole module, so
// dead code in it is still reported there.
#[allow(dead_code)]
mod workloads;

use workloads::{Rig, actix_burst, runtime};

fn bench_rig(c: &mut Criterion, name: &str, deliveries_per_publish: u64, mut rig: Rig) {
    let rt = runtime();
    let mut group = c.benchmark_group("pubsub");
    group.throughput(Throughput::Elements(deliveries_per_publish));
    group.bench_function(name, |b| b.iter_custom(|iters| rt.block_on(rig.run(iters))));
    group.finish();
    rt.block_on(rig.shutdown());
}

fn one_subscriber(c: &mut Criterion) {
    let rig = runtime().block_on(Rig::start(1, 0, 0));
    bench_rig(c, "publish_1_subscriber", 1, rig);
}

fn hundred_subscribers(c: &mut Criterion) {
    let rig = runtime().block_on(Rig::start(100, 0, 0));
    bench_rig(c, "publish_100_subscribers", 100, rig);
}

fn with_100k_subscriptions(c: &mut Criterion) {
    let rig = runtime().block_on(Rig::start(1, 100, 1000));
    bench_rig(c, "publish_1_subscriber_100k_nonmatching", 1, rig);
}

fn with_slow_subscriber(c: &mut Criterion) {
    let rig = runtime().block_on(Rig::with_slow_subscriber(1));
    bench_rig(c, "publish_1_subscriber_plus_slow_subscriber", 1, rig);
}

fn actix_do_send(c: &mut Criterion) {
    let mut group = c.benchmark_group("pubsub");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_actix_do_send", |b| b.iter_custom(actix_burst));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// Runs every benchmark in this file (what `criterion_group!` would generate, documented).
fn benches() {
    let mut c = config().configure_from_args();
    one_subscriber(&mut c);
    hundred_subscribers(&mut c);
    with_100k_subscriptions(&mut c);
    with_slow_subscriber(&mut c);
    actix_do_send(&mut c);
}

criterion_main!(benches);
