//! Performance harness: prints one figure per line as `name value unit`.
//!
//! ```text
//! cargo run --release --example perf -- --quick   # 5 runs per figure
//! cargo run --release --example perf              # 15 runs per figure, larger workloads
//! cargo run --release --example perf -- --quick --only pubsub.   # figures starting with `pubsub.`
//! cargo run --release --example perf -- --quick --with-subscriber # spans and events enabled
//! cargo run --release --example perf -- --only federation --only baseline.mqtt   # federation vs raw MQTT
//! cargo run --release --example perf -- --runs 3 --only driver.   # full sizes, 3 runs per figure
//! ```
//!
//! Every figure is the median of its runs (one discarded warm-up run first, except for
//! the spawn/RSS figures, which run each time in a fresh child process so the allocator
//! starts cold). Only figures go to stdout; progress goes to stderr (`PERF_SMAPS=1` also
//! prints the remote agent's resident memory per mapping).
//!
//! | figure | how it is measured |
//! |--------|--------------------|
//! | `baseline.actix_do_send` | actix actor `do_send`s N messages (chunks of [`CHUNK`](workloads::CHUNK), yielding between) to an actor on the same arbiter; first send to N counted |
//! | `baseline.tokio_mpsc` | tokio `mpsc::channel(1024)`, 2-worker runtime, one producer task, one consumer task |
//! | `pubsub.inproc.1to1` | one publisher agent publishes N (chunks of [`CHUNK`](workloads::CHUNK)) from an async RPC handler; one subscriber counts; first publish to N counted; `agent_threads(1)` |
//! | `pubsub.inproc.1to1_with_slow_subscriber` | ratio: 1to1 rate with one extra subscriber on the prefix whose async handler sleeps 1 ms per message (mailbox fills, `DropOldest` drops; the fast sink alone is timed), / plain 1to1 rate; runs interleaved with 1to1 |
//! | `pubsub.inproc.slow_subscriber_dropped` | publications the slow subscriber's mailbox dropped during the last measured run (`mailbox_stats("slow")`), to show drops happened |
//! | `pubsub.inproc.fanout100` | same, 100 subscribers on the prefix; deliveries/s until the last subscriber has counted |
//! | `pubsub.inproc.1to1_with_100k_subs` | as 1to1 on a platform that also holds 100 agents x 1000 run-time subscriptions `other/{i}/{j}` |
//! | `rpc.inproc.rtt_p50/p99` | async RPC handler of a caller agent awaits `ctx.call("callee", "echo", (i,))` N times in sequence, `agent_threads(1)` |
//! | `supervision.restart_us` / `restart_p99_us` | real clock, `agent_threads(1)`, supervisor with zero backoff: from `Instant::now()` before an RPC that panics the agent to the first `ping` the restarted agent answers (retried with `yield_now` while `UnknownPeer`/`PeerStopped`); median / p99 over 200 crashes (quick: 50) after 10 warm-up crashes |
//! | `agents.spawn_10k` | fresh process: `join_all` of 10,000 `platform.spawn` futures (default agent threads) |
//! | `agents.idle_bytes` | same process: RSS (`/proc/self/statm`) after minus before, / 10,000 |
//! | `config.set_get_rtt_p50/p99` | real clock, `agent_threads(1)`, platform with a home directory (services on): from the platform handle, `config.store.set_config("bench", "cfg", r#"{"n": i}"#, "json")` then `get_config("bench", "cfg", false)`, each set+get pair timed; p50/p99 of 500 pairs (quick: 200) per run. Every set is durable (temporary file, `fsync`, rename, `fsync` of the directory), which dominates |
//! | `config.get_rtt_p50` | same runs: the `get_config` call of each pair alone, p50 |
//! | `config.store_10k_entries_load_ms` | `AgentStore::open` of a VOLTTRON-format store file of 10,000 `json` entries (`{"name_i": {"type": "json", "modified": ..., "data": "{\"i\": i}"}}`, written directly with `serde_json`; file in the page cache) |
//! | `bridge.pubsub.remote_to_remote` | a platform on a Unix socket and two agents attached through it from this process (each with its own local runtime; 2-worker tokio runtime for their links): the publisher's async RPC publishes N 200-byte string payloads (yielding every [`CHUNK`](workloads::CHUNK) and when its link buffer is full), then an end marker; the sink counts until the marker. Delivered payloads / (RPC sent to marker received) |
//! | `bridge.pubsub.delivered_ratio` | payloads the sink counted / N in the last run (below 1 when a full mailbox dropped some) |
//! | `bridge.rpc.rtt_p50/p99` | the platform handle calls the remote sink's `echo(i)` N times in sequence (one socket round trip each way through the platform's bridge thread) |
//! | `bridge.rpc.rtt_p50_vs_uds` | ratio `bridge.rpc.rtt_p50` / `baseline.uds_pingpong_rtt` of the same run (target <= 3) |
//! | `bridge.connect_ms.uds` / `.tcp_noise` | from `connect()` to the `Welcome` frame on a fresh connection: Unix socket plain, or TCP with the Noise XX handshake first; median of 50 connections |
//! | `bridge.remote_agent_rss_kib` | the `remote_agent` example, built by this harness as an agent binary is meant to be (`--profile agent --no-default-features`: size-optimized, no multi-thread runtime linked), as a child process attached to a platform: `VmRSS` from `/proc/<pid>/status` 2 s after it joined (it ticks and heartbeats every second). Most of it is file-backed: the binary's code and libc, shared by every process that maps them |
//! | `bridge.remote_agent_private_kib` | same process: `RssAnon` (memory private to the agent process) |
//! | `resources.sample_100_agents_ms` | one round of the `/proc` sampler (`resources::monitor::Sampler::sample`) over 100 agent processes (`sleep` children, each its own agent): stat, statm and children of each |
//! | `resources.monitor_cpu_percent_at_1hz` | the same round's cost as a share of one core when sampling once a second (`round_ms / 1000 × 100`) |
//! | `resources.sample_100_agents_cgroup_ms` | the same round over 100 other `sleep` children, each moved into a cgroup of its own (`AgentCgroup`, default limits, under a platform group `volttron-perf-<pid>` from `CgroupSupport::detect` on `/sys/fs/cgroup`) and measured through it (`MonitoredAgent::cgroup`): per agent, the group's CPU, memory and `cgroup.procs` files and the root's stat; every agent of every round must report `Accounting::Cgroup` (the run panics otherwise). Compare with `resources.sample_100_agents_ms` of the same run. Where cgroups are unavailable, no figure: `skipped:` and the reason on stderr. The children are killed and reaped, then their groups and the platform group removed |
//! | `resources.monitor_cgroup_cpu_percent_at_1hz` | the cgroup round's cost as a share of one core at one round a second (`round_ms / 1000 × 100`); skipped with it |
//! | `vip.pubsub.rust_to_rust` | a platform with the VIP listener (auth on, CURVE over the home's abstract `ipc://@` socket) and two Rust VIP clients (`volttron::vip::client`, blocking, threads of their own): one publishes N 200-byte string payloads keeping at most 512 publishes unanswered, then an end marker; the other counts until the marker. Delivered / (first publish to marker received) |
//! | `vip.pubsub.rust_to_rust_vs_bridge` | ratio to `bridge.pubsub.remote_to_remote` of the same run (when it ran) |
//! | `vip.rpc.rust_to_rust_rtt_p50` | a Rust VIP client calls `echo(i)` of an in-process agent N times in sequence; median round trip; `_vs_bridge`: ratio to `bridge.rpc.rtt_p50` of the same run |
//! | `vip.pubsub.python_to_rust` | `benches/vip_client.py` (VOLTTRON 11's client library, in the venv of `bash .ci/test`) publishes N messages to an in-process Rust agent, each `.get()`-ed as VOLTTRON's agents do (with its `peerlist` before each); N / elapsed as the script measures it; median of up to 3 runs. VOLTTRON's own platform: 141 msgs/s on this machine kind |
//! | `vip.rpc.python_to_rust_rtt_p50` | the same script calls the Rust agent's `echo` N times in sequence; its median round trip. VOLTTRON's own platform: 3.8 ms |
//! | `vip.listener_start_to_heartbeat_ms` | VOLTTRON's listener agent (from the venv) installed under the control service: from the `start_agent` RPC (what `vctl start` sends) to its first `heartbeat/listener` publication at an in-process agent (Python's start-up and imports included); median of up to 5 starts |
//! | `baseline.http_hello_rtt_p50/p99` | a bare actix-web handler (`GET /hello` answers `hello`; one worker, its own `System` on a thread of its own) on loopback; a minimal blocking HTTP/1.1 client (`benches/workloads/web.rs`: one keep-alive `TcpStream`, `TCP_NODELAY`, a fixed request written, the `Content-Length`-delimited response read) on a client thread makes N round trips in sequence (each run on a new connection: actix-web closes connections idle for 5 s); median / p99. Runs interleaved with `web.jsonrpc` |
//! | `web.jsonrpc.rtt_p50/p99` | a platform with auth on, the web service (`WebService` on `http://127.0.0.1:0`), a web user with the `vui` capability only (the `rpc-allow-list` opens `echo: echo`) logged in with `POST /authenticate`, and an in-process `#[volttron::agent]` `echo`: the same client sends `POST /jsonrpc` `{"jsonrpc":"2.0","id":1,"method":"echo.echo","params":["x"]}` with `Authorization: Bearer <access token>` N times in sequence over one keep-alive connection (per run); median / p99 |
//! | (stderr) `web.jsonrpc breakdown` | same runs: `web.peers` over the same connection (answered by the web service: HTTP, token, JSON-RPC, no agent), and `platform.call("echo", "echo", ("x",))` from the driver thread (the hop to the agent thread and back, no HTTP), p50s |
//! | `web.jsonrpc.rtt_ratio` | `web.jsonrpc.rtt_p50` / `baseline.http_hello_rtt_p50` of the same run (target <= 2) |
//! | `web.ws.deliveries_per_s` | same platform: one tungstenite client (a thread of its own, reading as fast as it can) subscribed over `/ws` to `bench/ws/`; the platform handle `platform.publish`es N small messages (`i`, yielding every [`CHUNK`](workloads::CHUNK)), then an end marker; publications the client received (one JSON text frame each) / (first publish to the marker received). The socket's mailbox drops oldest when the client falls behind (the marker, newest, is kept) |
//! | `web.ws.delivered_ratio` / `web.ws.dropped` | received / N, and N - received (what the mailbox dropped: every publish reached it), in the last run |
//! | `metrics.scrape_1000_agents_ms` | a platform with 1000 connected agents (no core services): `Metrics::encode` (the snapshot of peers, mailboxes and restarts, and its OpenMetrics text) timed from the driver thread; median of the runs (target <= 20 ms) |
//! | `tracing.passed_on_ratio` / `tracing.exporter_ratio` | (feature `otel`, only with `--only tracing`) `rpc.inproc.rtt_p50` of the caller's `rtt` handler given a trace (`RpcCall::trace`): without an exporter (the context passed on) / untraced, and with the OTLP/HTTP exporter installed (a client span per call, a server span per handler run, batched to a loopback receiver that answers 200) / untraced, runs interleaved; `tracing.exported_rtt_p50` the traced round trip with the exporter |
//! | `metrics.overhead_ratio.pubsub_1to1` / `.rpc_rtt_p50` | `pubsub.inproc.1to1` and `rpc.inproc.rtt_p50` on a platform with `volttron::metrics::Metrics` attached (`PlatformBuilder::instrumentation`: sampled handler and RPC timings into histograms; the hot-path counters are kept either way) against one without, runs interleaved: time per message with / without, median of the runs |
//! | `metrics.overhead_ratio` | the larger of the two (target <= 1.05) |
//! | `baseline.mqtt_rtt_p50/p99` | (feature `mqtt`) a mosquitto of its own (`benches/workloads/mosquitto.rs`: Debian's 2.0.11 as a child process on a free loopback port, `set_tcp_nodelay true`) and two rumqttc 0.25 v5 clients on a current-thread runtime (`benches/workloads/mqtt.rs`): the requester publishes QoS 0 to `bench/req` with the `response_topic` and `correlation_data` properties, the responder (subscribed) answers on the response topic from its event loop, the requester waits for the answer; N round trips in sequence; median of the runs' p50 / p99. The raw MQTT 5 round trip the federation's RPC is compared with. Where mosquitto is not installed, no figure: `skipped:` and the reason on stderr |
//! | `baseline.mqtt_pubsub_msgs_per_s_qos0` / `_qos1` | same broker (`max_queued_messages 0`: mosquitto otherwise drops, QoS 0 included, past 1000 messages queued for a subscriber) and runtime: one rumqttc publisher publishes N 100-byte payloads to `bench/data` at QoS 0 / 1 as fast as its request channel (1024) takes them; one subscriber at the same QoS counts; N / (first publish to the last counted) |
//! | `federation.rpc.rtt_p50/p99` | (feature `mqtt`) the same broker; platforms `a` and `b` of this process (`benches/workloads/federation.rs`: `Platform::builder().instance_name(..).agent_threads(1).federation(FederationConfig::new(&broker.url())?.backlog_path(<tempdir>))`, `a` exporting `bench/`), started once, after `a` lists `b` online (`platform.federation`'s `list_platforms`) and one call succeeded: an async RPC handler of a caller agent on `a` awaits `ctx.call("echo", "echo", (i,)).on_platform("b")` N times in sequence, each timed in the handler; median of the runs' p50 / p99. Runs interleaved with `baseline.mqtt_rtt` |
//! | (stderr) `federation.rpc breakdown` | same runs: `b`'s platform handle calls `echo.echo` on `b` from the driver thread (no MQTT: the hop to an agent thread and back, which a federated call makes twice, on `a` and on `b`), p50 |
//! | `federation.rpc.rtt_ratio` | `federation.rpc.rtt_p50` / `baseline.mqtt_rtt_p50` of the same run (target <= 2) |
//! | `federation.pubsub.msgs_per_s_qos1` | same platforms: a publisher agent on `a` publishes N small messages (`bench/data`, the integer `i`; a yield every [`CHUNK`](workloads::CHUNK)), never more than 4,096 ahead of what the subscriber counted (the federation agent's export subscription is `DropOldest` at the default mailbox capacity, 10,000, and the link backlogs to SQLite beyond its client's queue of 10,000); a `#[subscribe("bench/", all_platforms = true)]` agent on `b` counts; N counted / (first publish to the last counted). The federation publishes with QoS 1 only: it has no QoS 0 mode (`baseline.mqtt_pubsub_msgs_per_s_qos0` is context). Runs interleaved with `baseline.mqtt_pubsub_msgs_per_s_qos1`; a run that loses messages ends when nothing arrived for 10 s and says on stderr how many arrived and what the mailbox and the backlog dropped |
//! | `federation.pubsub.ratio_to_raw` | `federation.pubsub.msgs_per_s_qos1` / `baseline.mqtt_pubsub_msgs_per_s_qos1` of the same run, median (target >= 0.5) |
//! | `federation.pubsub.delivered_ratio` | counted / N, the lowest of the runs (1 when nothing was lost) |
//! | `federation.fanout.p50` / `.p99` | ten federated platforms of this process through the same broker (`p0`..`p9`, `agent_threads(1)`, a backlog file each; `p0` exports `bench/`), a `#[subscribe("bench/", all_platforms = true)]` agent on each of `p1`..`p9` recording when each publication arrives: the driver publishes `bench/fan` = `i` on `p0`, then waits until all nine have it; latency = the last arrival - the publish; M publications one after the other; median of the runs' p50 / p99 (the process's thread count before and after starting them on stderr) |
//! | `historian.query_ms.1_topic_1_day` / `.100_topics_1_day`, `historian.insert_points_per_s`, `historian.store_points_per_s`, `baseline.sqlite_*`, `historian.*_ratio*` | (feature `historian`) see `benches/workloads/historian.rs`: VOLTTRON's `query` of one day of one-minute data for one topic and for 100, beside the same rows read with rusqlite directly; inserts end to end and of the writer alone, beside rusqlite's prepared inserts in the same run |
//! | `simulation.steps_per_s` / `simulation.start_to_first_step_ms` / `baseline.mpsc_barrier_steps_per_s` / `simulation.barrier_ratio` | (feature `simulation`) see `benches/workloads/simulation.rs`: 100 in-process models (50 sources, 50 sinks each waiting for its source's value) stepped by `platform.simulation`, against the same barrier over tokio mpsc channels |
//! | `driver.points_per_s` / `driver.historian_rss_kib` / `driver.points_per_s_vs_sqlite` | (features `driver`, `historian`) see `benches/workloads/building.rs`: 12,500 fake devices (quick: 6,250) × 20 points scraped every second on the real clock through the platform driver, the bus and the SQLite historian, the points committed per second; the process's RSS at the end; the rate over `baseline.sqlite_insert_points_per_s` when that ran (`--only driver. --only baseline.sqlite`) |
//! | `bacnet.scrape.rpm_p50_us` / `baseline.bacnet_client_rpm_p50_us` / `bacnet.scrape.ratio_to_raw` / `bacnet.scrape.rp_p50_us` | (feature `bacnet`) see `benches/workloads/bacnet.rs`: a bacpypes3 device on 127.0.0.2 (the tests' device), the driver's ReadPropertyMultiple scrape of its points beside the same request from a bare rusty-bacnet client, rounds interleaved; and the scrape by ReadProperty per point. Without bacpypes3 in the venv, no figure (`skipped:` on stderr) |
//! | `baseline.modbus_raw_1000_p50` | (feature `modbus`) a pymodbus 3.16.1 device (`benches/workloads/pymodbus.rs`: `tests/support/modbus_server.py` with the venv's Python, a child process on a free loopback port) with holding registers 0..=999; one tokio-modbus TCP client reads them as 8 requests of 125 in sequence; median of the runs' p50 per scrape. Without the venv or pymodbus, no figure: `skipped:` and the reason on stderr |
//! | `modbus.scrape_1000_p50` | same device, runs interleaved: `ModbusDriver::scrape_all` of a registry of 1,000 `>H` points at holding 0..=999 (the same 8 requests, planned by the driver, then 1,000 values decoded into a map by name; `benches/workloads/modbus.rs`) |
//! | `modbus.scrape_1000_ratio` | `modbus.scrape_1000_p50` / `baseline.modbus_raw_1000_p50` of the same run, median |
//! | `baseline.uds_pingpong_rtt` | `UnixStream::pair`, 8-byte ping-pong between two threads, median round trip (on a VM this swings with idle-vCPU wake-up latency) |

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use volttron::config_store::AgentStore;
use volttron::prelude::*;
use volttron::resources::cgroup::{AgentCgroup, CGROUP_ROOT, CgroupLimits, CgroupSupport};
use volttron::resources::monitor::{Accounting, MonitoredAgent, ProcessKey, Sampler, bogomips_per_core};
use volttron::supervision::{ChildSpec, Supervisor};

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use workloads::{Rig, SLOW_DELAY, actix_burst, rpc_platform, rpc_platform_on, runtime};

/// Agents spawned for `agents.spawn_10k` / `agents.idle_bytes`.
const SPAWN_COUNT: usize = 10_000;

/// Entries in the store file loaded by `config.store_10k_entries_load_ms`.
const STORE_ENTRIES: usize = 10_000;

/// Workload sizes.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    runs: usize,
    actix: u64,
    mpsc: u64,
    one_to_one: u64,
    fanout_publishes: u64,
    rpc_calls: u64,
    restart_samples: usize,
    uds_round_trips: usize,
    config_pairs: usize,
    bridge_stream: u64,
    bridge_calls: usize,
    vip_stream: u64,
    vip_calls: usize,
    python_publishes: u64,
    python_calls: u64,
    http_calls: usize,
    ws_publishes: u64,
    mqtt_calls: usize,
    mqtt_publishes: u64,
    fanout_rounds: u64,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                runs: 5,
                actix: 1_000_000,
                mpsc: 1_000_000,
                one_to_one: 300_000,
                fanout_publishes: 10_000,
                rpc_calls: 20_000,
                restart_samples: 50,
                uds_round_trips: 20_000,
                config_pairs: 200,
                bridge_stream: 300_000,
                bridge_calls: 5_000,
                vip_stream: 100_000,
                vip_calls: 2_000,
                python_publishes: 1_000,
                python_calls: 1_000,
                http_calls: 5_000,
                ws_publishes: 200_000,
                mqtt_calls: 2_000,
                mqtt_publishes: 20_000,
                fanout_rounds: 200,
            }
        } else {
            Sizes {
                runs: 15,
                actix: 2_000_000,
                mpsc: 2_000_000,
                one_to_one: 1_000_000,
                fanout_publishes: 30_000,
                rpc_calls: 50_000,
                restart_samples: 200,
                uds_round_trips: 50_000,
                config_pairs: 500,
                bridge_stream: 1_000_000,
                bridge_calls: 20_000,
                vip_stream: 300_000,
                vip_calls: 5_000,
                python_publishes: 2_000,
                python_calls: 2_000,
                http_calls: 20_000,
                ws_publishes: 500_000,
                mqtt_calls: 10_000,
                mqtt_publishes: 100_000,
                fanout_rounds: 1_000,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------------------

/// Does nothing.
struct Idle;

#[volttron::agent]
impl Idle {
    #[rpc]
    fn noop(&mut self) {}
}

// ---------------------------------------------------------------------------------------
// Pub/sub
// ---------------------------------------------------------------------------------------

/// Deliveries per second of one `rig` run of `n` publishes (first publish to last
/// delivery).
async fn pubsub_run(rig: &mut Rig, n: u64) -> f64 {
    let elapsed = rig.run(n).await;
    (n * rig.subscribers) as f64 / elapsed.as_secs_f64()
}

// ---------------------------------------------------------------------------------------
// RPC
// ---------------------------------------------------------------------------------------

/// `tracing.*`: `rpc.inproc.rtt_p50` of a caller whose handler is untraced, traced without
/// an exporter (the context passed on), and traced with the OTLP exporter installed (a span
/// per call and per handler run, batched to a loopback receiver), runs interleaved.
#[cfg(feature = "otel")]
async fn tracing_exporter(figures: &mut Vec<(&'static str, f64, &'static str)>, s: &Sizes, runs: usize) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let receiver = tiny_http::Server::http("127.0.0.1:0").expect("bind the OTLP receiver");
    let url = format!(
        "http://{}",
        receiver.server_addr().to_ip().expect("an IP address")
    );
    std::thread::spawn(move || {
        for request in receiver.incoming_requests() {
            let _ = request.respond(tiny_http::Response::from_string("{}"));
        }
    });
    let root = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let traced_run = |platform: Platform, n: u64| async move {
        let mut v: Vec<u64> = platform
            .call("caller", "rtt", (n,))
            .trace(Some(
                volttron::core::TraceContext::parse(root, None).expect("root"),
            ))
            .timeout(Duration::from_secs(300))
            .returning()
            .await
            .expect("rtt");
        v.sort_unstable();
        v[v.len() / 2] as f64 / 1000.0
    };
    eprintln!("[perf] tracing.exporter_ratio: warm-up + {runs} runs, untraced / traced / exported");
    let platform = rpc_platform().await;
    let (mut plain, mut passed) = (Vec::new(), Vec::new());
    rpc_run(&platform, s.rpc_calls).await;
    for _ in 0..runs {
        plain.push(rpc_run(&platform, s.rpc_calls).await.0);
        passed.push(traced_run(platform.clone(), s.rpc_calls).await);
    }
    // The exporter, from here on for the whole process (OTLP/HTTP protobuf).
    let otel = volttron::otel::OtelTracing::with_endpoint(&format!("{url}/v1/traces"), "perf")
        .expect("the exporter");
    tracing_subscriber::registry().with(otel.layer()).init();
    otel.install();
    let mut exported = Vec::new();
    let mut plain2 = Vec::new();
    traced_run(platform.clone(), s.rpc_calls).await;
    for _ in 0..runs {
        plain2.push(rpc_run(&platform, s.rpc_calls).await.0);
        exported.push(traced_run(platform.clone(), s.rpc_calls).await);
    }
    platform.shutdown().await;
    otel.shutdown();
    eprintln!(
        "[perf] rpc p50 us per run: untraced {plain:.2?}, traced {passed:.2?}; untraced {plain2:.2?}, exported {exported:.2?}"
    );
    let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| y / x).collect());
    figures.push(("tracing.passed_on_ratio", ratio(&plain, &passed), "ratio"));
    figures.push(("tracing.exporter_ratio", ratio(&plain2, &exported), "ratio"));
    figures.push(("tracing.exported_rtt_p50", median(exported), "us"));
}

/// Returns (p50, p99) in microseconds for one run of `n` sequential calls.
async fn rpc_run(platform: &Platform, n: u64) -> (f64, f64) {
    let mut v: Vec<u64> = platform
        .call("caller", "rtt", (n,))
        .timeout(Duration::from_secs(300))
        .returning()
        .await
        .expect("rtt");
    v.sort_unstable();
    let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    (pct(0.50), pct(0.99))
}

// ---------------------------------------------------------------------------------------
// Configuration store
// ---------------------------------------------------------------------------------------

/// A real-clock platform with a home directory (so the `config.store` service runs, as
/// services are on by default) and one agent thread. Keep the directory alive as long as
/// the platform.
async fn config_platform() -> (Platform, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("tempdir");
    let platform = Platform::builder()
        .home(home.path())
        .agent_threads(1)
        .start()
        .await
        .expect("start platform");
    (platform, home)
}

/// One run of `n` set+get pairs against `config.store`, from the platform handle. Returns
/// the p50 and p99 of the pairs and the p50 of the gets alone, in microseconds.
///
/// Each `set_config` is durable: the store file is rewritten to a temporary file, `fsync`ed,
/// renamed over the old one and the directory `fsync`ed before the reply, so the pair time
/// is mostly the disk's flush latency; the get is an in-memory lookup plus an RPC.
async fn config_run(platform: &Platform, n: usize) -> (f64, f64, f64) {
    let mut pairs = Vec::with_capacity(n);
    let mut gets = Vec::with_capacity(n);
    for i in 0..n {
        let raw = format!(r#"{{"n": {i}}}"#);
        let start = Instant::now();
        platform
            .call("config.store", "set_config", ("bench", "cfg", raw, "json"))
            .await
            .expect("set_config");
        let get_start = Instant::now();
        let v = platform
            .call("config.store", "get_config", ("bench", "cfg", false))
            .await
            .expect("get_config");
        let end = Instant::now();
        assert_eq!(
            v["n"],
            Value::from(i as u64),
            "get_config returns the value just set"
        );
        pairs.push((end - start).as_nanos() as f64 / 1000.0);
        gets.push((end - get_start).as_nanos() as f64 / 1000.0);
    }
    pairs.sort_by(f64::total_cmp);
    let p99 = pairs[((pairs.len() - 1) as f64 * 0.99).round() as usize];
    (median(pairs), p99, median(gets))
}

/// Writes a VOLTTRON-format store file of `n` `json` entries (`name_i` -> `{"i": i}`)
/// directly with `serde_json` (`AgentStore::set` makes every write durable, which would
/// take `n` flushes).
fn write_store_file(path: &std::path::Path, n: usize) {
    let mut map = serde_json::Map::with_capacity(n);
    for i in 0..n {
        map.insert(
            format!("name_{i}"),
            serde_json::json!({
                "type": "json",
                "modified": "2024-01-01T00:00:00.000000+00:00",
                "data": format!(r#"{{"i": {i}}}"#),
            }),
        );
    }
    let bytes = serde_json::to_vec(&serde_json::Value::Object(map)).expect("encode store");
    std::fs::write(path, bytes).expect("write store file");
}

/// Milliseconds to open (read, decode, parse every entry) the store file at `path`.
fn store_load_run(path: &std::path::Path, n: usize) -> f64 {
    let start = Instant::now();
    let store = AgentStore::open(path).expect("open store");
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(store.len(), n);
    ms
}

// ---------------------------------------------------------------------------------------
// Supervision
// ---------------------------------------------------------------------------------------

/// Marks the deliberate panics of [`Victim::boom`], which the panic hook keeps quiet.
const BOOM: &str = "perf: deliberate crash";

/// Crashes on `boom`; answers `ping`.
struct Victim;

#[volttron::agent]
impl Victim {
    /// Panics (the caller gets `RpcError::Remote` of kind `"panic"`).
    #[rpc]
    fn boom(&mut self) {
        panic!("{BOOM}");
    }

    /// Answers at once.
    #[rpc]
    fn ping(&mut self) -> u64 {
        1
    }
}

/// Silences the default panic message for [`BOOM`] panics only.
fn quiet_boom_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied());
        if msg != Some(BOOM) {
            default(info);
        }
    }));
}

/// One crash-to-recovered sample in microseconds: `victim.boom`, then `victim.ping` until
/// the restarted victim answers.
async fn restart_sample(platform: &Platform) -> f64 {
    let start = Instant::now();
    match platform.call("victim", "boom", ()).await {
        Err(RpcError::Remote { kind, .. }) if kind == "panic" => {}
        other => panic!("victim.boom: expected a panic, got {other:?}"),
    }
    loop {
        match platform
            .call("victim", "ping", ())
            .timeout(Duration::from_secs(10))
            .await
        {
            Ok(_) => break,
            // Not back yet: the old instance is gone, the new one not yet registered.
            Err(RpcError::UnknownPeer { .. } | RpcError::PeerStopped { .. }) => {
                tokio::task::yield_now().await
            }
            Err(e) => panic!("victim.ping: {e}"),
        }
    }
    start.elapsed().as_nanos() as f64 / 1000.0
}

/// Returns (median, p99) in microseconds of `n` crash-to-recovered samples, after 10
/// warm-up crashes, on a fresh real-clock platform.
async fn restart_run(n: usize) -> (f64, f64) {
    let platform = Platform::builder()
        .agent_threads(1)
        .start()
        .await
        .expect("start platform");
    let spec = Supervisor::builder("bench")
        .restart_limit(1_000_000, Duration::from_secs(1))
        .backoff(Duration::ZERO, Duration::ZERO)
        .child(ChildSpec::agent("victim", || Victim))
        .build();
    platform.supervise(spec).await.expect("supervise");
    const WARM_UP: usize = 10;
    for _ in 0..WARM_UP {
        restart_sample(&platform).await;
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(restart_sample(&platform).await);
    }
    assert_eq!(platform.restart_count("victim") as usize, WARM_UP + n);
    platform.shutdown().await;
    v.sort_by(f64::total_cmp);
    let p99 = v[((v.len() - 1) as f64 * 0.99).round() as usize];
    (median(v), p99)
}

// ---------------------------------------------------------------------------------------
// Baselines
// ---------------------------------------------------------------------------------------

/// Messages per second from one actix actor to another on the same arbiter.
fn actix_run(n: u64) -> f64 {
    n as f64 / actix_burst(n).as_secs_f64()
}

/// Messages per second through a tokio bounded channel.
fn mpsc_run(rt: &tokio::runtime::Runtime, n: u64) -> f64 {
    rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1024);
        let start = Instant::now();
        let consumer = tokio::spawn(async move {
            let mut seen = 0u64;
            while rx.recv().await.is_some() {
                seen += 1;
            }
            seen
        });
        let producer = tokio::spawn(async move {
            for i in 0..n {
                tx.send(i).await.expect("send");
            }
        });
        producer.await.expect("producer");
        let seen = consumer.await.expect("consumer");
        assert_eq!(seen, n);
        n as f64 / start.elapsed().as_secs_f64()
    })
}

/// Median round trip in microseconds of an 8-byte message over a Unix socket pair.
fn uds_run(n: usize) -> f64 {
    let (mut a, mut b) = UnixStream::pair().expect("socketpair");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        while b.read_exact(&mut buf).is_ok() {
            if b.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut rtts = Vec::with_capacity(n);
    let mut buf = [0u8; 8];
    for i in 0..n + 1000 {
        let t = Instant::now();
        a.write_all(&(i as u64).to_le_bytes()).expect("write");
        a.read_exact(&mut buf).expect("read");
        if i >= 1000 {
            rtts.push(t.elapsed().as_nanos() as f64 / 1000.0);
        }
    }
    drop(a);
    echo.join().expect("echo thread");
    median(rtts)
}

// ---------------------------------------------------------------------------------------
// Spawn and memory (child process)
// ---------------------------------------------------------------------------------------

/// Resident set size in bytes.
fn rss_bytes() -> u64 {
    // statm: size resident shared text lib data dt (in pages; 4 KiB on x86_64/aarch64 Linux).
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm resident field");
    pages * 4096
}

/// In a fresh process: spawns 10,000 idle agents; prints `ms bytes_per_agent`.
fn spawn_child() {
    let rt = runtime();
    rt.block_on(async {
        let platform = Platform::builder().start().await.expect("start platform");
        // Warm up the spawn path (supervisor, arbiters, thread-locals) before measuring.
        for i in 0..16 {
            platform.spawn(format!("warm{i}"), Idle).await.expect("spawn");
        }
        let names: Vec<String> = (0..SPAWN_COUNT).map(|i| format!("idle{i}")).collect();
        let before = rss_bytes();
        let start = Instant::now();
        // join_all measured as fast as buffer_unordered(16..1024) and 5x faster than
        // sequential spawning.
        let results =
            futures::future::join_all(names.iter().map(|name| platform.spawn(name.as_str(), Idle))).await;
        let elapsed = start.elapsed();
        let after = rss_bytes();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, SPAWN_COUNT, "all spawns succeed");
        // The platform's own services are peers too; count the agents spawned here.
        let spawned = platform
            .peers()
            .iter()
            .filter(|p| p.starts_with("idle") || p.starts_with("warm"))
            .count();
        assert_eq!(spawned, SPAWN_COUNT + 16);
        println!(
            "{} {}",
            elapsed.as_secs_f64() * 1000.0,
            after.saturating_sub(before) as f64 / SPAWN_COUNT as f64
        );
        platform.shutdown().await;
    });
}

/// Runs the spawn child and parses its `ms bytes` line.
fn spawn_run() -> (f64, f64) {
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .arg("--child-spawn")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run spawn child");
    assert!(out.status.success(), "spawn child failed");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut it = text.split_whitespace().map(|s| s.parse::<f64>().expect("number"));
    (it.next().expect("ms"), it.next().expect("bytes"))
}

// ---------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------

/// Agents in each `resources.*` round.
const RESOURCE_AGENTS: usize = 100;

/// The agents of a `resources.*` figure: `sleep 120` children, one agent (`agent{i}`)
/// each, each in a cgroup of its own when made with cgroup support. Drop (also when a run
/// panics) kills and reaps the children first, then removes their groups (a group that
/// still holds a process would be kept) and the platform group.
struct SleepAgents {
    children: Vec<std::process::Child>,
    /// `groups[i]` holds `children[i]`; empty when measured through procfs.
    groups: Vec<AgentCgroup>,
    support: Option<CgroupSupport>,
}

impl SleepAgents {
    /// `n` children; with `cgroups`, each written into every `cgroup.procs` of its own
    /// group under the platform group.
    fn spawn(n: usize, cgroups: Option<CgroupSupport>) -> SleepAgents {
        let children = (0..n)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("120")
                    .spawn()
                    .expect("spawn sleep")
            })
            .collect();
        let mut agents = SleepAgents {
            children,
            groups: Vec::new(),
            support: cgroups,
        };
        let Some(support) = &agents.support else {
            return agents;
        };
        for (i, child) in agents.children.iter().enumerate() {
            let group = AgentCgroup::create(support, &format!("agent{i}"), &CgroupLimits::default())
                .unwrap_or_else(|e| panic!("cgroup for agent{i}: {e}"));
            let files = group.procs_files();
            // Kept before the writes, so that drop removes it after the children are gone.
            agents.groups.push(group);
            for file in files {
                std::fs::write(&file, child.id().to_string())
                    .unwrap_or_else(|e| panic!("move agent{i} into {}: {e}", file.display()));
            }
        }
        agents
    }

    /// The agents as the sampler is told of them (with their groups' accounting, if any).
    fn monitored(&self) -> Vec<MonitoredAgent> {
        self.children
            .iter()
            .enumerate()
            .map(|(i, c)| MonitoredAgent {
                identity: format!("agent{i}"),
                key: ProcessKey::of(c.id()).expect("a live child"),
                cgroup: self.groups.get(i).map(AgentCgroup::accounting),
            })
            .collect()
    }
}

impl Drop for SleepAgents {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.groups.clear();
        if let Some(support) = &self.support {
            support.remove_platform_group();
        }
    }
}

/// Median milliseconds of one sampling round over [`RESOURCE_AGENTS`] agent processes,
/// measured through procfs, or through a cgroup each with `cgroups`. Panics, naming
/// `figure`, if a round measured an agent any other way.
fn resources_round_ms(figure: &str, runs: usize, cgroups: Option<CgroupSupport>) -> f64 {
    let expected = if cgroups.is_some() {
        Accounting::Cgroup
    } else {
        Accounting::Procfs
    };
    let processes = SleepAgents::spawn(RESOURCE_AGENTS, cgroups);
    let agents = processes.monitored();
    let mut sampler = Sampler::new(bogomips_per_core().unwrap_or(0.0));
    sampler.sample(&agents, Instant::now());
    let mut times = Vec::new();
    for _ in 0..runs.max(5) * 4 {
        let t = Instant::now();
        let usage = sampler.sample(&agents, Instant::now());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(usage.len(), RESOURCE_AGENTS);
        if let Some(u) = usage.iter().find(|u| u.accounting != expected) {
            panic!(
                "{figure}: {} was measured through {:?}, not {expected:?}, so the figure would not \
                 time what it names",
                u.identity, u.accounting
            );
        }
    }
    median(times)
}

// ---------------------------------------------------------------------------------------
// VIP
// ---------------------------------------------------------------------------------------

/// The `vip.*` figures (see the table in the module docs), with ratios to the bridge's
/// figures of the same run where there are some.
fn vip_figures(s: &Sizes, want: &dyn Fn(&str) -> bool, figures: &mut Figures) {
    let runs = s.runs;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let of = |figures: &Figures, name: &str| figures.iter().find(|f| f.0 == name).map(|f| f.1);
    rt.block_on(async {
        let mut rig = workloads::vip::VipRig::start().await;
        if want("vip.pubsub.rust_to_rust") {
            eprintln!(
                "[perf] vip.pubsub.rust_to_rust: warm-up + {runs} runs of {}",
                s.vip_stream
            );
            rig.rust_stream(s.vip_stream / 10).await;
            let mut rates = Vec::new();
            for _ in 0..runs {
                rates.push(rig.rust_stream(s.vip_stream).await);
            }
            eprintln!("[perf] vip.pubsub.rust_to_rust per run (msgs/s): {rates:.0?}");
            let rate = median(rates);
            figures.push(("vip.pubsub.rust_to_rust", rate, "msgs/s"));
            if let Some(bridge) = of(figures, "bridge.pubsub.remote_to_remote") {
                figures.push(("vip.pubsub.rust_to_rust_vs_bridge", rate / bridge, "ratio"));
            }
        }
        if want("vip.rpc.rust_to_rust") {
            eprintln!(
                "[perf] vip.rpc.rust_to_rust: warm-up + {runs} runs of {}",
                s.vip_calls
            );
            rig.rust_rpc(s.vip_calls / 10).await;
            let mut p50 = Vec::new();
            for _ in 0..runs {
                p50.push(rig.rust_rpc(s.vip_calls).await);
            }
            let p50 = median(p50);
            figures.push(("vip.rpc.rust_to_rust_rtt_p50", p50, "us"));
            if let Some(bridge) = of(figures, "bridge.rpc.rtt_p50") {
                figures.push(("vip.rpc.rust_to_rust_rtt_p50_vs_bridge", p50 / bridge, "ratio"));
            }
        }
        if want("vip.pubsub.python_to_rust") || want("vip.rpc.python_to_rust") {
            let python_runs = runs.min(3);
            eprintln!(
                "[perf] vip.*.python_to_rust: {python_runs} runs of vip_client.py ({} publishes, {} calls)",
                s.python_publishes, s.python_calls
            );
            let (mut rates, mut rtts) = (Vec::new(), Vec::new());
            for _ in 0..python_runs {
                let Some(f) = rig.python(s.python_publishes, s.python_calls).await else {
                    break;
                };
                rates.push(f.publish_msgs_per_s);
                rtts.push(f.rpc_rtt_p50_us);
            }
            if !rates.is_empty() {
                eprintln!(
                    "[perf] vip.pubsub.python_to_rust per run (msgs/s): {rates:.0?}; rpc p50 (us): {rtts:.0?}"
                );
                // Every publish was answered once queued for the sink; its handler may
                // still be counting the last ones.
                let expected = s.python_publishes * rates.len() as u64;
                let counted = rig.python_delivered(expected).await;
                assert_eq!(counted, expected, "the sink missed publications");
                figures.push(("vip.pubsub.python_to_rust", median(rates), "msgs/s"));
                figures.push(("vip.rpc.python_to_rust_rtt_p50", median(rtts), "us"));
            }
        }
        if want("vip.listener_start") && rig.install_listener().await {
            let starts = runs.min(5);
            eprintln!("[perf] vip.listener_start_to_heartbeat_ms: {starts} starts");
            let mut ms = Vec::new();
            for _ in 0..starts {
                ms.push(rig.listener_start_ms().await);
            }
            eprintln!("[perf] vip.listener_start_to_heartbeat_ms per start: {ms:.0?}");
            figures.push(("vip.listener_start_to_heartbeat_ms", median(ms), "ms"));
        }
        rig.shutdown().await;
    });
}

// ---------------------------------------------------------------------------------------
// Web
// ---------------------------------------------------------------------------------------

/// The figures of [`web_figures`], by the workload that makes them.
#[cfg(feature = "web")]
const WEB_BASELINE: &[&str] = &["baseline.http_hello_rtt_p50", "baseline.http_hello_rtt_p99"];
#[cfg(feature = "web")]
const WEB_JSONRPC: &[&str] = &[
    "web.jsonrpc.rtt_p50",
    "web.jsonrpc.rtt_p99",
    "web.jsonrpc.rtt_ratio",
];
#[cfg(feature = "web")]
const WEB_WS: &[&str] = &[
    "web.ws.deliveries_per_s",
    "web.ws.delivered_ratio",
    "web.ws.dropped",
];

/// The `baseline.http_hello_rtt` and `web.*` figures (see the table in the module docs).
#[cfg(feature = "web")]
fn web_figures(s: &Sizes, want: &dyn Fn(&str) -> bool, figures: &mut Figures) {
    use workloads::web::{HelloServer, WebRig, p50_p99};
    let runs = s.runs;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let jsonrpc = WEB_JSONRPC.iter().any(|f| want(f));
    let ws = WEB_WS.iter().any(|f| want(f));
    rt.block_on(async {
        let mut rig = match jsonrpc || ws {
            true => Some(WebRig::start().await),
            false => None,
        };
        if let Some(rig) = rig.as_mut().filter(|_| jsonrpc) {
            rig.jsonrpc_rtts(s.http_calls / 10).await;
        }
        if jsonrpc || WEB_BASELINE.iter().any(|f| want(f)) {
            // Interleaved, so drift hits both alike; the ratio divides by the same runs.
            eprintln!(
                "[perf] baseline.http_hello_rtt{}: warm-up + {runs} runs of {}",
                if jsonrpc { " + web.jsonrpc.rtt" } else { "" },
                s.http_calls
            );
            let mut hello = HelloServer::start();
            hello.rtts(s.http_calls / 10);
            let (mut h50, mut h99, mut j50, mut j99, mut ratio) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            // The breakdown of `web.jsonrpc` (stderr only): `web.peers` over the same
            // connection (HTTP, token, JSON-RPC, no agent), and the platform handle's
            // `echo` call (the hop to the agent thread and back, no HTTP).
            let (mut peers, mut hop) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let (a, b) = p50_p99(&hello.rtts(s.http_calls));
                h50.push(a);
                h99.push(b);
                if let Some(rig) = rig.as_mut().filter(|_| jsonrpc) {
                    let (c, d) = p50_p99(&rig.jsonrpc_rtts(s.http_calls).await);
                    j50.push(c);
                    j99.push(d);
                    ratio.push(c / a);
                    peers.push(p50_p99(&rig.jsonrpc_peers_rtts(s.http_calls).await).0);
                    hop.push(p50_p99(&rig.handle_call_rtts(s.http_calls).await).0);
                }
            }
            hello.shutdown();
            eprintln!("[perf] baseline.http_hello_rtt_p50 per run (us): {h50:.1?}");
            let base = median(h50);
            figures.push(("baseline.http_hello_rtt_p50", base, "us"));
            figures.push(("baseline.http_hello_rtt_p99", median(h99), "us"));
            if jsonrpc {
                eprintln!("[perf] web.jsonrpc.rtt_p50 per run (us): {j50:.1?}; ratio per run: {ratio:.2?}");
                eprintln!(
                    "[perf] web.jsonrpc breakdown, p50 per run (us): web.peers over /jsonrpc (no agent) {peers:.1?}; platform.call echo.echo from the driver thread (no HTTP) {hop:.1?}"
                );
                let p50 = median(j50);
                figures.push(("web.jsonrpc.rtt_p50", p50, "us"));
                figures.push(("web.jsonrpc.rtt_p99", median(j99), "us"));
                figures.push(("web.jsonrpc.rtt_ratio", p50 / base, "ratio"));
            }
        }
        if let Some(rig) = rig.as_mut().filter(|_| ws) {
            eprintln!(
                "[perf] web.ws.deliveries_per_s: warm-up + {runs} runs of {}",
                s.ws_publishes
            );
            rig.ws_run(s.ws_publishes / 10).await;
            let mut rates = Vec::new();
            let mut last = None;
            for _ in 0..runs {
                let run = rig.ws_run(s.ws_publishes).await;
                rates.push(run.received as f64 / run.elapsed.as_secs_f64());
                last = Some(run);
            }
            eprintln!("[perf] web.ws.deliveries_per_s per run: {rates:.0?}");
            let last = last.expect("a run");
            figures.push(("web.ws.deliveries_per_s", median(rates), "deliveries/s"));
            figures.push((
                "web.ws.delivered_ratio",
                last.received as f64 / last.published as f64,
                "ratio",
            ));
            figures.push(("web.ws.dropped", (last.published - last.received) as f64, "msgs"));
        }
        if let Some(rig) = rig {
            rig.shutdown().await;
        }
    });
}

// ---------------------------------------------------------------------------------------
// MQTT
// ---------------------------------------------------------------------------------------

/// The `baseline.mqtt_*` figures.
#[cfg(feature = "mqtt")]
const MQTT_BASELINE: &[&str] = &[
    "baseline.mqtt_rtt_p50",
    "baseline.mqtt_rtt_p99",
    "baseline.mqtt_pubsub_msgs_per_s_qos0",
    "baseline.mqtt_pubsub_msgs_per_s_qos1",
];

/// The `federation.*` figures, by the workload that makes them.
#[cfg(feature = "mqtt")]
const FEDERATION_RPC: &[&str] = &[
    "federation.rpc.rtt_p50",
    "federation.rpc.rtt_p99",
    "federation.rpc.rtt_ratio",
];
#[cfg(feature = "mqtt")]
const FEDERATION_PUBSUB: &[&str] = &[
    "federation.pubsub.msgs_per_s_qos1",
    "federation.pubsub.ratio_to_raw",
    "federation.pubsub.delivered_ratio",
];
#[cfg(feature = "mqtt")]
const FEDERATION_FANOUT: &[&str] = &["federation.fanout.p50", "federation.fanout.p99"];

/// The `baseline.mqtt_*` and `federation.*` figures (see the table in the module docs):
/// raw rumqttc v5 clients through a mosquitto of their own, on a current-thread runtime,
/// and federated platforms of this process through the same broker, runs interleaved with
/// the baselines they are divided by.
#[cfg(feature = "mqtt")]
fn mqtt_figures(s: &Sizes, want: &dyn Fn(&str) -> bool, figures: &mut Figures) {
    use rumqttc::v5::mqttbytes::QoS;
    use workloads::federation::{FanoutRig, FederationRig};
    use workloads::mqtt::{MqttRig, p50_p99};
    let rig = match MqttRig::start() {
        Ok(rig) => rig,
        Err(e) => {
            eprintln!("[perf] baseline.mqtt_*, federation.*: skipped: {e}");
            return;
        }
    };
    let runs = s.runs;
    let fed_rpc = FEDERATION_RPC.iter().any(|f| want(f));
    let fed_pubsub = FEDERATION_PUBSUB.iter().any(|f| want(f));
    let fanout = FEDERATION_FANOUT.iter().any(|f| want(f));
    runtime().block_on(async {
        let mut fed = match fed_rpc || fed_pubsub {
            true => Some(FederationRig::start(rig.broker()).await),
            false => None,
        };
        if fed_rpc || want("baseline.mqtt_rtt_p50") || want("baseline.mqtt_rtt_p99") {
            // Interleaved, so drift hits both alike; the ratio divides by the same runs.
            eprintln!(
                "[perf] baseline.mqtt_rtt{}: warm-up + {runs} runs of {}",
                if fed_rpc { " + federation.rpc.rtt" } else { "" },
                s.mqtt_calls
            );
            rig.rtts(s.mqtt_calls / 10).await;
            let n = s.mqtt_calls as u64;
            if let Some(fed) = fed.as_ref().filter(|_| fed_rpc) {
                fed.rtts(n / 10).await;
            }
            let (mut p50, mut p99, mut f50, mut f99, mut ratio, mut hop) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                let (a, b) = p50_p99(&rig.rtts(s.mqtt_calls).await);
                p50.push(a);
                p99.push(b);
                if let Some(fed) = fed.as_ref().filter(|_| fed_rpc) {
                    let (c, d) = p50_p99(&fed.rtts(n).await);
                    f50.push(c);
                    f99.push(d);
                    ratio.push(c / a);
                    hop.push(p50_p99(&fed.local_rtts(n / 10).await).0);
                }
            }
            eprintln!("[perf] baseline.mqtt_rtt_p50 per run (us): {p50:.1?}; p99: {p99:.1?}");
            let base = median(p50);
            figures.push(("baseline.mqtt_rtt_p50", base, "us"));
            figures.push(("baseline.mqtt_rtt_p99", median(p99), "us"));
            if fed_rpc {
                eprintln!(
                    "[perf] federation.rpc.rtt_p50 per run (us): {f50:.1?}; p99: {f99:.1?}; ratio per run: {ratio:.2?}"
                );
                eprintln!(
                    "[perf] federation.rpc breakdown, p50 per run (us): platform.call echo.echo on b from the driver thread (no MQTT: one hop to an agent thread and back) {hop:.1?}"
                );
                let fp50 = median(f50);
                figures.push(("federation.rpc.rtt_p50", fp50, "us"));
                figures.push(("federation.rpc.rtt_p99", median(f99), "us"));
                figures.push(("federation.rpc.rtt_ratio", fp50 / base, "ratio"));
            }
        }
        if want("baseline.mqtt_pubsub_msgs_per_s_qos0") {
            let name = "baseline.mqtt_pubsub_msgs_per_s_qos0";
            eprintln!("[perf] {name}: warm-up + {runs} runs of {}", s.mqtt_publishes);
            rig.pubsub(s.mqtt_publishes / 10, QoS::AtMostOnce).await;
            let mut rates = Vec::new();
            for _ in 0..runs {
                rates.push(rig.pubsub(s.mqtt_publishes, QoS::AtMostOnce).await);
            }
            eprintln!("[perf] {name} per run: {rates:.0?}");
            figures.push((name, median(rates), "msgs/s"));
        }
        if fed_pubsub || want("baseline.mqtt_pubsub_msgs_per_s_qos1") {
            let name = "baseline.mqtt_pubsub_msgs_per_s_qos1";
            eprintln!(
                "[perf] {name}{}: warm-up + {runs} runs of {}",
                if fed_pubsub { " + federation.pubsub.msgs_per_s_qos1" } else { "" },
                s.mqtt_publishes
            );
            rig.pubsub(s.mqtt_publishes / 10, QoS::AtLeastOnce).await;
            if let Some(fed) = fed.as_mut().filter(|_| fed_pubsub) {
                fed.pubsub(s.mqtt_publishes / 10).await;
            }
            let (mut rates, mut fed_rates, mut ratio, mut delivered) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                let raw = rig.pubsub(s.mqtt_publishes, QoS::AtLeastOnce).await;
                rates.push(raw);
                if let Some(fed) = fed.as_mut().filter(|_| fed_pubsub) {
                    let run = fed.pubsub(s.mqtt_publishes).await;
                    let rate = run.received as f64 / run.elapsed.as_secs_f64();
                    fed_rates.push(rate);
                    ratio.push(rate / raw);
                    delivered.push(run.received as f64 / s.mqtt_publishes as f64);
                    if run.received < s.mqtt_publishes
                        || run.mailbox_dropped + run.backlog_dropped + run.backlog_left + run.duplicates > 0
                    {
                        eprintln!(
                            "[perf] federation.pubsub run: {} published of {}, {} counted; platform.federation's mailbox dropped {}, the backlog dropped {} and holds {}; {} duplicates dropped at b",
                            run.published,
                            s.mqtt_publishes,
                            run.received,
                            run.mailbox_dropped,
                            run.backlog_dropped,
                            run.backlog_left,
                            run.duplicates
                        );
                    }
                }
            }
            eprintln!("[perf] {name} per run: {rates:.0?}");
            figures.push((name, median(rates.clone()), "msgs/s"));
            if fed_pubsub {
                eprintln!(
                    "[perf] federation.pubsub.msgs_per_s_qos1 per run: {fed_rates:.0?}; ratio per run: {ratio:.2?}; delivered per run: {delivered:.3?}"
                );
                figures.push(("federation.pubsub.msgs_per_s_qos1", median(fed_rates), "msgs/s"));
                figures.push(("federation.pubsub.ratio_to_raw", median(ratio), "ratio"));
                let lowest = delivered.into_iter().fold(f64::INFINITY, f64::min);
                figures.push(("federation.pubsub.delivered_ratio", lowest, "ratio"));
            }
        }
        if let Some(fed) = fed {
            fed.shutdown().await;
        }
        if fanout {
            let before = FanoutRig::threads();
            let mut fan = FanoutRig::start(rig.broker()).await;
            eprintln!(
                "[perf] federation.fanout: {} platforms, threads of this process {before} -> {}; warm-up + {runs} runs of {}",
                workloads::federation::FANOUT_PLATFORMS,
                FanoutRig::threads(),
                s.fanout_rounds
            );
            fan.latencies(s.fanout_rounds / 10).await;
            let (mut p50, mut p99) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let (a, b) = p50_p99(&fan.latencies(s.fanout_rounds).await);
                p50.push(a);
                p99.push(b);
            }
            eprintln!("[perf] federation.fanout.p50 per run (us): {p50:.1?}; p99: {p99:.1?}");
            figures.push(("federation.fanout.p50", median(p50), "us"));
            figures.push(("federation.fanout.p99", median(p99), "us"));
            fan.shutdown().await;
        }
    });
}

// ---------------------------------------------------------------------------------------
// Bridge
// ---------------------------------------------------------------------------------------

type Figures = Vec<(&'static str, f64, &'static str)>;

/// The `bridge.*` figures (see the table in the module docs).
fn bridge_figures(s: &Sizes, want: &dyn Fn(&str) -> bool, uds_rtt: Option<f64>, figures: &mut Figures) {
    use workloads::bridge::{BridgeRig, connect_tcp_noise, connect_uds};
    let runs = s.runs;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let rig = BridgeRig::start().await;
        if want("bridge.pubsub") {
            eprintln!(
                "[perf] bridge.pubsub.remote_to_remote: warm-up + {runs} runs of {}",
                s.bridge_stream
            );
            rig.pubsub_run(s.bridge_stream / 10).await;
            let mut rates = Vec::new();
            let mut delivered = 0;
            for _ in 0..runs {
                let (rate, d) = rig.pubsub_run(s.bridge_stream).await;
                rates.push(rate);
                delivered = d;
            }
            eprintln!("[perf] bridge.pubsub per run (msgs/s): {rates:.0?}");
            figures.push(("bridge.pubsub.remote_to_remote", median(rates), "msgs/s"));
            figures.push((
                "bridge.pubsub.delivered_ratio",
                delivered as f64 / s.bridge_stream as f64,
                "ratio",
            ));
        }
        if want("bridge.rpc") {
            eprintln!(
                "[perf] bridge.rpc.rtt: warm-up + {runs} runs of {}",
                s.bridge_calls
            );
            rig.rpc_run(s.bridge_calls / 10).await;
            let (mut p50, mut p99) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let (a, b) = rig.rpc_run(s.bridge_calls).await;
                p50.push(a);
                p99.push(b);
            }
            let p50 = median(p50);
            figures.push(("bridge.rpc.rtt_p50", p50, "us"));
            figures.push(("bridge.rpc.rtt_p99", median(p99), "us"));
            if let Some(uds) = uds_rtt {
                figures.push(("bridge.rpc.rtt_p50_vs_uds", p50 / uds, "ratio"));
            }
        }
        if want("bridge.connect_ms") {
            eprintln!("[perf] bridge.connect_ms: 50 connections each way");
            let keys = volttron::auth::keys::KeyPair::generate().expect("keys");
            let (unix, tcp) = (rig.unix_address(), rig.tcp_address());
            let (mut u, mut t) = (Vec::new(), Vec::new());
            for i in 0..51 {
                u.push(connect_uds(&unix, &format!("probe.u{i}")).await);
                t.push(connect_tcp_noise(&tcp, &keys, &format!("probe.t{i}")).await);
            }
            figures.push(("bridge.connect_ms.uds", median(u[1..].to_vec()), "ms"));
            figures.push(("bridge.connect_ms.tcp_noise", median(t[1..].to_vec()), "ms"));
        }
        rig.shutdown().await;
        if want("bridge.remote_agent_rss_kib") {
            eprintln!("[perf] bridge.remote_agent_rss_kib: the remote_agent example as a child");
            let (rss, private) = remote_agent_rss_kib().await;
            figures.push(("bridge.remote_agent_rss_kib", rss, "KiB"));
            figures.push(("bridge.remote_agent_private_kib", private, "KiB"));
        }
    });
}

/// Builds the `remote_agent` example with the size-optimized `agent` profile, launches it
/// against a fresh platform and reads its RSS.
async fn remote_agent_rss_kib() -> (f64, f64) {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/examples/perf -> target/
    let target = exe.ancestors().nth(3).expect("target directory");
    let binary = target.join("agent").join("examples").join("remote_agent");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--profile",
            "agent",
            "--no-default-features",
            "--example",
            "remote_agent",
        ])
        .status()
        .expect("cargo build");
    assert!(status.success(), "building the remote_agent example failed");
    let home = tempfile::tempdir().expect("tempdir");
    let platform = Platform::builder()
        .home(home.path())
        .start()
        .await
        .expect("platform");
    let mut child = std::process::Command::new(&binary)
        .env("AGENT_VIP_IDENTITY", "rss.meter")
        .env("VOLTTRON_HOME", home.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("launch remote_agent");
    let joined = Instant::now();
    while !platform.peers().iter().any(|p| p.as_str() == "rss.meter") {
        assert!(
            joined.elapsed() < Duration::from_secs(30),
            "the remote agent did not join"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
    let breakdown: Vec<&str> = status
        .lines()
        .filter(|l| {
            ["RssAnon", "RssFile", "RssShmem", "Threads"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .collect();
    if std::env::var_os("PERF_SMAPS").is_some() {
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", child.id())).unwrap_or_default();
        let mut name = String::new();
        for l in smaps.lines() {
            if l.contains('-') && !l.starts_with(|c: char| c.is_ascii_uppercase()) {
                name = l.split_whitespace().nth(5).unwrap_or("[anon]").to_owned();
            } else if let Some(v) = l.strip_prefix("Rss:") {
                let kb: u64 = v
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0);
                if kb > 0 {
                    eprintln!("[smaps] {kb:>6} kB {name}");
                }
            }
        }
    }
    eprintln!(
        "[perf] remote agent: {}",
        breakdown
            .join(", ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("a /proc status field")
    };
    let kib = (field("VmRSS:"), field("RssAnon:"));
    let _ = child.kill();
    let _ = child.wait();
    platform.shutdown().await;
    kib
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `f` once as warm-up, then `runs` times; returns the results.
fn repeat<T>(name: &str, runs: usize, mut f: impl FnMut() -> T) -> Vec<T> {
    eprintln!("[perf] {name}: warm-up + {runs} runs");
    let _ = f();
    (0..runs).map(|_| f()).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--child-spawn") {
        return spawn_child();
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--with-subscriber`: a global fmt subscriber at info level writing to nowhere, so
    // that spans and events on the hot paths are enabled and their cost measured.
    if args.iter().any(|a| a == "--with-subscriber") {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .init();
    }
    // `--only PREFIX` (repeatable) runs only the figures whose name starts with PREFIX.
    let only: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--only")
        .map(|w| w[1].as_str())
        .collect();
    let want = |name: &str| only.is_empty() || only.iter().any(|p| name.starts_with(p));
    let mut s = Sizes::new(quick);
    // `--runs N`: N runs per figure instead of the size's (5 quick, 15 full).
    if let Some(i) = args.iter().position(|a| a == "--runs") {
        match args.get(i + 1).and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n > 0 => s.runs = n,
            _ => {
                eprintln!("perf: --runs takes a number of runs >= 1");
                std::process::exit(2);
            }
        }
    }
    let runs = s.runs;
    let mut figures: Vec<(&str, f64, &str)> = Vec::new();

    if want("baseline.actix_do_send") {
        let v = median(repeat("baseline.actix_do_send", runs, || actix_run(s.actix)));
        figures.push(("baseline.actix_do_send", v, "msgs/s"));
    }

    if want("baseline.tokio_mpsc") {
        let mt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let v = median(repeat("baseline.tokio_mpsc", runs, || mpsc_run(&mt, s.mpsc)));
        figures.push(("baseline.tokio_mpsc", v, "msgs/s"));
    }

    let rt = runtime();
    rt.block_on(async {
        #[cfg(feature = "metrics")]
        if want("metrics.scrape_1000_agents_ms") {
            // 1000 connected agents (no subscriptions); the platform's series of each.
            let rig = Rig::start(1, 1000, 0).await;
            let metrics = volttron::metrics::Metrics::new();
            let text = metrics.encode(&rig.platform).await;
            assert!(
                text.matches("volttron_agent_up{").count() >= 1000,
                "{}",
                text.len()
            );
            eprintln!("[perf] metrics.scrape_1000_agents_ms: warm-up + {runs} runs");
            let mut ms = Vec::new();
            for _ in 0..runs {
                let start = Instant::now();
                let text = metrics.encode(&rig.platform).await;
                ms.push(start.elapsed().as_secs_f64() * 1e3);
                std::hint::black_box(text);
            }
            eprintln!("[perf] metrics.scrape_1000_agents_ms per run: {ms:.2?}");
            eprintln!("[perf] exposition of 1000 agents: {} bytes", text.len());
            figures.push(("metrics.scrape_1000_agents_ms", median(ms), "ms"));
        }
        let with_100k = want("pubsub.inproc.1to1_with_100k_subs") || want("pubsub.inproc.100k");
        let with_slow =
            want("pubsub.inproc.1to1_with_slow_subscriber") || want("pubsub.inproc.slow_subscriber");
        if want("pubsub.inproc.1to1") || with_100k || with_slow {
            // 1to1, 1to1 with 100k non-matching subscriptions, and 1to1 with a slow
            // subscriber: one platform each, runs interleaved so drift (thermal, other
            // load) hits all alike; the ratios divide by the plain 1to1 of the same runs.
            eprintln!("[perf] pubsub.inproc.1to1 (+ with_100k_subs, with_slow_subscriber): setting up");
            let mut plain = Rig::start(1, 0, 0).await;
            let mut noisy = None;
            if with_100k {
                let setup = Instant::now();
                let rig = Rig::start(1, 100, 1000).await;
                assert_eq!(rig.platform.subscriptions("other/").len(), 100_000);
                eprintln!(
                    "[perf] 100 agents with 1000 run-time subscriptions each: {:.0} ms",
                    setup.elapsed().as_secs_f64() * 1000.0
                );
                noisy = Some(rig);
            }
            // The slow subscriber (SLOW_DELAY per message, on the same agent thread)
            // cannot keep up: its mailbox fills and DropOldest drops. The rate is still
            // publications per second from the first publish to the fast sink having
            // counted all N; the slow subscriber's drops are counted by the platform and
            // printed as `pubsub.inproc.slow_subscriber_dropped` (last measured run).
            let mut slow = if with_slow {
                Some(Rig::with_slow_subscriber(1).await)
            } else {
                None
            };
            eprintln!("[perf] pubsub.inproc.1to1 (+ others): warm-up + {runs} runs");
            pubsub_run(&mut plain, s.one_to_one).await;
            for rig in noisy.iter_mut().chain(slow.iter_mut()) {
                pubsub_run(rig, s.one_to_one).await;
            }
            let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
            let mut dropped = 0;
            for _ in 0..runs {
                a.push(pubsub_run(&mut plain, s.one_to_one).await);
                if let Some(rig) = noisy.as_mut() {
                    b.push(pubsub_run(rig, s.one_to_one).await);
                }
                if let Some(rig) = slow.as_mut() {
                    let before = rig.platform.mailbox_stats("slow").expect("slow stats").dropped();
                    c.push(pubsub_run(rig, s.one_to_one).await);
                    let after = rig.platform.mailbox_stats("slow").expect("slow stats").dropped();
                    dropped = after - before;
                }
            }
            eprintln!("[perf] 1to1 msgs/s per run: plain {a:.0?}, with_100k_subs {b:.0?}, with_slow {c:.0?}");
            let one = median(a);
            figures.push(("pubsub.inproc.1to1", one, "msgs/s"));
            if let Some(rig) = noisy {
                rig.shutdown().await;
                let with = median(b);
                figures.push(("pubsub.inproc.1to1_with_100k_subs", with, "msgs/s"));
                figures.push(("pubsub.inproc.100k_subs_ratio", with / one, "ratio"));
            }
            if let Some(rig) = slow {
                let stop = Instant::now();
                rig.shutdown().await;
                eprintln!(
                    "[perf] slow subscriber ({SLOW_DELAY:?}/msg) platform shut down in {:.0} ms",
                    stop.elapsed().as_secs_f64() * 1000.0
                );
                figures.push((
                    "pubsub.inproc.1to1_with_slow_subscriber",
                    median(c) / one,
                    "ratio",
                ));
                figures.push(("pubsub.inproc.slow_subscriber_dropped", dropped as f64, "msgs"));
            }
            plain.shutdown().await;
        }

        if want("pubsub.inproc.fanout100") {
            eprintln!("[perf] pubsub.inproc.fanout100: warm-up + {runs} runs");
            let mut fan = Rig::start(100, 0, 0).await;
            pubsub_run(&mut fan, s.fanout_publishes).await;
            let mut f = Vec::new();
            for _ in 0..runs {
                f.push(pubsub_run(&mut fan, s.fanout_publishes).await);
            }
            fan.shutdown().await;
            figures.push(("pubsub.inproc.fanout100", median(f), "deliveries/s"));
        }

        // Only when asked for by name: it installs a `tracing` subscriber for the rest of
        // the process.
        #[cfg(feature = "otel")]
        if only.iter().any(|p| p.starts_with("tracing")) {
            tracing_exporter(&mut figures, &s, runs).await;
        }

        if want("metrics.overhead_ratio") {
            // The same workloads on a platform without and with `Metrics` attached as its
            // instrumentation (hot-path counters are always kept; attached, one handler
            // run in 16 per agent and kind and one call in 16 per callee are also timed
            // into histograms). Runs interleaved; ratio = time per message with / without.
            eprintln!(
                "[perf] metrics.overhead_ratio: warm-up + {runs} runs of 1to1 and rpc, without and with"
            );
            let mut plain = Rig::start(1, 0, 0).await;
            let metrics = volttron::metrics::Metrics::new();
            let mut measured = Rig::start_on(Platform::builder().instrumentation(metrics.clone())).await;
            let rpc_plain = rpc_platform().await;
            let rpc_measured = rpc_platform_on(Platform::builder().instrumentation(metrics.clone())).await;
            pubsub_run(&mut plain, s.one_to_one).await;
            pubsub_run(&mut measured, s.one_to_one).await;
            rpc_run(&rpc_plain, s.rpc_calls).await;
            rpc_run(&rpc_measured, s.rpc_calls).await;
            let (mut pub_ratio, mut rpc_ratio) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let without = pubsub_run(&mut plain, s.one_to_one).await;
                let with = pubsub_run(&mut measured, s.one_to_one).await;
                pub_ratio.push(without / with);
                let (without, _) = rpc_run(&rpc_plain, s.rpc_calls).await;
                let (with, _) = rpc_run(&rpc_measured, s.rpc_calls).await;
                rpc_ratio.push(with / without);
            }
            let text = metrics.encode(&measured.platform).await;
            assert!(
                text.contains(
                    "volttron_agent_handler_seconds_count{identity=\"sink0\",kind=\"publication\"}"
                ),
                "the measured platform timed its handlers"
            );
            eprintln!(
                "[perf] metrics.overhead_ratio per run: pubsub 1to1 {pub_ratio:.3?}, rpc p50 {rpc_ratio:.3?}"
            );
            let (p, r) = (median(pub_ratio), median(rpc_ratio));
            figures.push(("metrics.overhead_ratio.pubsub_1to1", p, "ratio"));
            figures.push(("metrics.overhead_ratio.rpc_rtt_p50", r, "ratio"));
            figures.push(("metrics.overhead_ratio", p.max(r), "ratio"));
            plain.shutdown().await;
            measured.shutdown().await;
            rpc_plain.shutdown().await;
            rpc_measured.shutdown().await;
        }

        if want("rpc.inproc") {
            eprintln!("[perf] rpc.inproc.rtt: warm-up + {runs} runs");
            // One agent thread: caller and callee share it.
            let platform = rpc_platform().await;
            rpc_run(&platform, s.rpc_calls).await;
            let mut p50 = Vec::new();
            let mut p99 = Vec::new();
            for _ in 0..runs {
                let (a, b) = rpc_run(&platform, s.rpc_calls).await;
                p50.push(a);
                p99.push(b);
            }
            platform.shutdown().await;
            figures.push(("rpc.inproc.rtt_p50", median(p50), "us"));
            figures.push(("rpc.inproc.rtt_p99", median(p99), "us"));
        }

        let set_get = want("config.set_get_rtt_p50") || want("config.set_get_rtt_p99");
        let get_only = want("config.get_rtt_p50");
        if set_get || get_only {
            eprintln!(
                "[perf] config.set_get_rtt: warm-up + {runs} runs of {} set+get pairs",
                s.config_pairs
            );
            let (platform, _home) = config_platform().await;
            config_run(&platform, s.config_pairs).await;
            let (mut p50, mut p99, mut get) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                let (a, b, c) = config_run(&platform, s.config_pairs).await;
                p50.push(a);
                p99.push(b);
                get.push(c);
            }
            platform.shutdown().await;
            eprintln!("[perf] config set+get p50 per run (us): {p50:.0?}");
            if set_get {
                figures.push(("config.set_get_rtt_p50", median(p50), "us"));
                figures.push(("config.set_get_rtt_p99", median(p99), "us"));
            }
            if get_only {
                figures.push(("config.get_rtt_p50", median(get), "us"));
            }
        }
    });
    drop(rt);

    if want("config.store_10k_entries_load_ms") {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bench.store");
        write_store_file(&path, STORE_ENTRIES);
        let v = median(repeat("config.store_10k_entries_load_ms", runs, || {
            store_load_run(&path, STORE_ENTRIES)
        }));
        figures.push(("config.store_10k_entries_load_ms", v, "ms"));
    }

    if want("supervision.") {
        eprintln!("[perf] supervision.restart_us: {} crashes", s.restart_samples);
        quiet_boom_panics();
        let (p50, p99) = runtime().block_on(restart_run(s.restart_samples));
        figures.push(("supervision.restart_us", p50, "us"));
        figures.push(("supervision.restart_p99_us", p99, "us"));
    }

    if want("agents.") {
        eprintln!("[perf] agents.spawn_10k / idle_bytes: {runs} fresh processes");
        let spawns: Vec<(f64, f64)> = (0..runs).map(|_| spawn_run()).collect();
        eprintln!("[perf] agents (ms, bytes) per run: {spawns:?}");
        figures.push((
            "agents.spawn_10k",
            median(spawns.iter().map(|s| s.0).collect()),
            "ms",
        ));
        figures.push((
            "agents.idle_bytes",
            median(spawns.iter().map(|s| s.1).collect()),
            "bytes",
        ));
    }

    // The procfs path, then the cgroup path, on fresh agents each (see the module docs).
    for (round, share, in_cgroups) in [
        (
            "resources.sample_100_agents_ms",
            "resources.monitor_cpu_percent_at_1hz",
            false,
        ),
        (
            "resources.sample_100_agents_cgroup_ms",
            "resources.monitor_cgroup_cpu_percent_at_1hz",
            true,
        ),
    ] {
        if !(want(round) || want(share)) {
            continue;
        }
        let mut cgroups = None;
        if in_cgroups {
            let name = format!("perf-{}", std::process::id());
            let support = CgroupSupport::detect(Path::new(CGROUP_ROOT), &name);
            if !support.is_available() {
                eprintln!("[perf] {round}: skipped: {}", support.describe());
                continue;
            }
            eprintln!("[perf] {round}: {}", support.describe());
            cgroups = Some(support);
        }
        eprintln!("[perf] {round}: {RESOURCE_AGENTS} processes, {runs} runs");
        let ms = resources_round_ms(round, runs, cgroups);
        figures.push((round, ms, "ms"));
        figures.push((share, ms / 1000.0 * 100.0, "percent"));
    }

    let mut uds_rtt = None;
    if want("baseline.uds_pingpong_rtt") || want("bridge.rpc") {
        let v = median(repeat("baseline.uds_pingpong_rtt", runs, || {
            uds_run(s.uds_round_trips)
        }));
        uds_rtt = Some(v);
        figures.push(("baseline.uds_pingpong_rtt", v, "us"));
    }

    let bridge = [
        "bridge.pubsub",
        "bridge.rpc",
        "bridge.connect_ms",
        "bridge.remote_agent_rss_kib",
    ];
    if bridge.iter().any(|b| want(b)) {
        bridge_figures(&s, &want, uds_rtt, &mut figures);
    }
    let vip = [
        "vip.pubsub.rust_to_rust",
        "vip.rpc.rust_to_rust",
        "vip.pubsub.python_to_rust",
        "vip.rpc.python_to_rust",
        "vip.listener_start",
    ];
    if vip.iter().any(|v| want(v)) {
        vip_figures(&s, &want, &mut figures);
    }
    #[cfg(feature = "web")]
    if [WEB_BASELINE, WEB_JSONRPC, WEB_WS]
        .iter()
        .flat_map(|f| f.iter())
        .any(|w| want(w))
    {
        web_figures(&s, &want, &mut figures);
    }
    #[cfg(feature = "mqtt")]
    if [
        MQTT_BASELINE,
        FEDERATION_RPC,
        FEDERATION_PUBSUB,
        FEDERATION_FANOUT,
    ]
    .iter()
    .flat_map(|f| f.iter())
    .any(|f| want(f))
    {
        mqtt_figures(&s, &want, &mut figures);
    }
    #[cfg(feature = "modbus")]
    if workloads::modbus::FIGURES.iter().any(|f| want(f)) {
        // A scrape is a few milliseconds against a Python device: fewer than the other loops.
        let scrapes = if quick { 20 } else { 100 };
        eprintln!("[perf] modbus.scrape_1000 + baseline.modbus_raw_1000: warm-up + {runs} runs of {scrapes}");
        match runtime().block_on(workloads::modbus::figures(runs, scrapes)) {
            Ok(f) => figures.extend(f),
            Err(e) => eprintln!("[perf] modbus.*, baseline.modbus_*: skipped: {e}"),
        }
    }

    #[cfg(feature = "bacnet")]
    if want("bacnet.") || want("baseline.bacnet") {
        // The venv of `bash .ci/test` (bacpypes3 pinned in .ci/python-requirements.txt).
        let python = std::env::var_os("VOLTTRON_TEST_PYTHON")
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/vip-venv/bin/python")
            });
        let has_bacpypes = std::process::Command::new(&python)
            .args(["-c", "import bacpypes3"])
            .output()
            .is_ok_and(|o| o.status.success());
        if has_bacpypes {
            let rounds = if quick { 50 } else { 200 };
            eprintln!("[perf] bacnet.scrape + baseline.bacnet_client: {rounds} interleaved rounds");
            let f = runtime().block_on(workloads::bacnet::scrape(&python, rounds));
            for (name, value) in f.report() {
                let unit = if name.ends_with("ratio_to_raw") {
                    "ratio"
                } else {
                    "us"
                };
                figures.push((name, value, unit));
            }
        } else {
            eprintln!(
                "[perf] bacnet.*: skipped: {} has no bacpypes3 (bash .ci/test --setup-only)",
                python.display()
            );
        }
    }
    #[cfg(feature = "historian")]
    if want("historian.") || want("baseline.sqlite") {
        eprintln!("[perf] historian.* + baseline.sqlite_*: warm-up + {runs} runs");
        figures.extend(workloads::historian::run(runs, quick));
    }
    #[cfg(all(feature = "driver", feature = "historian"))]
    if want("driver.") {
        let found = workloads::building::run(runs, quick);
        let raw = figures
            .iter()
            .find(|(n, ..)| *n == "baseline.sqlite_insert_points_per_s")
            .map(|(_, v, _)| *v);
        if let (Some(raw), Some((_, rate, _))) = (raw, found.first()) {
            figures.push(("driver.points_per_s_vs_sqlite", rate / raw, "ratio"));
        }
        figures.extend(found);
    }

    #[cfg(feature = "simulation")]
    if want("simulation.") || want("baseline.mpsc_barrier") {
        eprintln!("[perf] simulation.* + baseline.mpsc_barrier_steps_per_s: warm-up + {runs} runs");
        figures.extend(workloads::simulation::run(runs, quick));
    }

    for (name, value, unit) in figures {
        let text = match unit {
            "us" | "ms" => format!("{value:.2}"),
            "KiB" => format!("{value:.0}"),
            "ratio" => format!("{value:.3}"),
            "percent" => format!("{value:.2}"),
            _ => format!("{value:.0}"),
        };
        println!("{name} {text} {unit}");
    }
}

/// The building data path allocates per point: with mimalloc the in-process site sustains
/// 200–212 k points/s against glibc's malloc's 159–185 k (README, Performance).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
