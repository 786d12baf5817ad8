//! The building data path end to end (features `driver`, `historian`): [`run`] returns
//! `(name, value, unit)` figures.
//!
//! | figure | how it is measured |
//! |--------|--------------------|
//! | `driver.points_per_s` | a platform on the real clock with its services (config store on a temporary home): `platform.driver` with [`DEVICES`] fake devices of [`POINTS`] float points each scraped every second (`interval` 1, the stagger spreading them over the second, `publish_depth_first_all` only), `platform.historian` (`SqliteHistorian` on a temporary file, WAL); after 3 s of warm-up, the points the historian committed (its `status.written`) over a window of 10 s (quick: half the devices, 5 s) / the window. A historian that falls behind drops (said on stderr), so the figure is what it sustains |
//! | `driver.points_per_s_offered` | devices × points: what the driver published per second |
//! | `driver.historian_rss_kib` | the process's `VmRSS` (`/proc/self/status`) at the end of the last run (driver, historian and the platform in this one process) |
//! | `driver.points_per_s_vs_sqlite` | `driver.points_per_s` / `baseline.sqlite_insert_points_per_s` of the same invocation (the raw SQLite insert ceiling, from the historian workload) when that ran |

use std::time::{Duration, Instant};

use volttron::agents::driver::{self, PlatformDriver};
use volttron::agents::historian::{IDENTITY as HISTORIAN, SqliteHistorian};

/// Devices of the site.
pub(crate) const DEVICES: usize = 12_500;
/// Points per device.
pub(crate) const POINTS: usize = 20;

fn registry() -> String {
    let mut csv = String::from("Volttron Point Name,Units,Writable,Starting Value,Type\n");
    for i in 0..POINTS {
        csv.push_str(&format!("Point{i},degF,FALSE,{}.25,float\n", 60 + i));
    }
    csv
}

/// One run: a fresh site of `devices` devices scraped every second on the real clock,
/// measured over `window` after a warm-up; returns (points/s committed, points/s offered,
/// RSS KiB at the end).
async fn one_run(devices: usize, window: Duration) -> (f64, f64, f64) {
    let home = tempfile::tempdir().expect("tempdir");
    let platform = volttron::Platform::builder()
        .home(home.path())
        .services(true)
        .start()
        .await
        .expect("platform");
    let store = |name: String, raw: String, kind: &'static str| {
        let platform = &platform;
        async move {
            platform
                .call(
                    "config.store",
                    "set_config",
                    (driver::IDENTITY, name.clone(), raw, kind),
                )
                .timeout(Duration::from_secs(60))
                .await
                .unwrap_or_else(|e| panic!("storing {name}: {e}"));
        }
    };
    // The stagger spreads the devices over the second.
    let stagger = 1.0 / devices as f64;
    store(
        "config".into(),
        format!(r#"{{"driver_scrape_interval": {stagger}}}"#),
        "json",
    )
    .await;
    store("bench.csv".into(), registry(), "csv").await;
    for d in 0..devices {
        let entry = r#"{"driver_type": "fake", "registry_config": "config://bench.csv", "interval": 1}"#;
        store(format!("devices/bench/site/dev{d:05}"), entry.into(), "json").await;
    }
    platform
        .spawn(
            HISTORIAN,
            SqliteHistorian::new(home.path().join("history.sqlite")),
        )
        .await
        .expect("spawn historian");
    platform
        .spawn(driver::IDENTITY, PlatformDriver::new())
        .await
        .expect("spawn driver");
    let written = || async {
        let status = platform.call(HISTORIAN, "status", ()).await.expect("status");
        (
            status["written"].as_i64().expect("written"),
            status["dropped"].as_i64().unwrap_or(0),
        )
    };
    // Warm-up: every device configured and scraping.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (before, dropped_before) = written().await;
    // A mark for a profiler attached to the process (`perf record -p`): the window starts.
    eprintln!("[perf] driver.points_per_s: window of {window:?} starts");
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let (after, dropped_after) = written().await;
    let elapsed = start.elapsed().as_secs_f64();
    let status = platform.call(HISTORIAN, "status", ()).await.expect("status");
    let backlog = platform
        .mailbox_stats(HISTORIAN)
        .map(|m| m.dropped())
        .unwrap_or(0);
    if dropped_after > dropped_before || backlog > 0 || status["cached"].as_i64().unwrap_or(0) > 0 {
        eprintln!(
            "[perf] driver.points_per_s: the historian fell behind (mailbox dropped {backlog}, {status})"
        );
    }
    let rss = rss_kib();
    platform.shutdown().await;
    let offered = (devices * POINTS) as f64;
    ((after - before) as f64 / elapsed, offered, rss)
}

fn rss_kib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// The figures of the module docs, `runs` runs.
pub(crate) fn run(runs: usize, quick: bool) -> Vec<(&'static str, f64, &'static str)> {
    let devices = if quick { DEVICES / 2 } else { DEVICES };
    let window = Duration::from_secs(if quick { 5 } else { 10 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    eprintln!(
        "[perf] driver.points_per_s: {devices} devices × {POINTS} points every second ({} points/s offered), {window:?} windows; {runs} runs",
        devices * POINTS
    );
    let mut rates = Vec::new();
    let mut rss = 0.0;
    let mut offered = 0.0;
    for _ in 0..runs {
        let (rate, o, r) = rt.block_on(one_run(devices, window));
        rates.push(rate);
        rss = r;
        offered = o;
    }
    eprintln!("[perf] driver.points_per_s per run: {rates:.0?} (offered {offered:.0})");
    rates.sort_by(f64::total_cmp);
    vec![
        ("driver.points_per_s", rates[rates.len() / 2], "points/s"),
        ("driver.points_per_s_offered", offered, "points/s"),
        ("driver.historian_rss_kib", rss, "KiB"),
    ]
}
