//! The building data path end to end (features `driver`, `historian`): [`run`] returns
//! `(name, value, unit)` figures.
//!
//! | figure | how it is measured |
//! |--------|--------------------|
//! | `driver.points_per_s` | a `TestPlatform` with its services (config store on a temporary home): `platform.driver` with [`DEVICES`] fake devices of [`POINTS`] float points each (`interval` 60 s, `driver_scrape_interval` 0.01 s, `publish_depth_first_all` only), `platform.historian` (`SqliteHistorian` on a temporary file, WAL); the virtual clock is advanced one round (60 s) at a time and after each the historian's `flush` is awaited (every point committed to SQLite, or in its backup cache, which must stay empty); points committed / wall time of [`ROUNDS`] rounds. No wall-clock pacing: the rate is what driver, bus and historian sustain |
//! | `driver.historian_rss_kib` | the process's `VmRSS` (`/proc/self/status`) at the end of the last run (driver, historian and the platform in this one process) |
//! | `driver.points_per_s_vs_sqlite` | `driver.points_per_s` / `baseline.sqlite_insert_points_per_s` of the same invocation (the raw SQLite insert ceiling, from the historian workload) when that ran |

use std::time::{Duration, Instant};

use volttron::agents::driver::{self, PlatformDriver};
use volttron::agents::historian::{IDENTITY as HISTORIAN, SqliteHistorian};
use volttron::testing::TestPlatform;

/// Devices of the site.
pub(crate) const DEVICES: usize = 1000;
/// Points per device.
pub(crate) const POINTS: usize = 20;
/// Scrape rounds per run.
pub(crate) const ROUNDS: usize = 10;

fn registry() -> String {
    let mut csv = String::from("Volttron Point Name,Units,Writable,Starting Value,Type\n");
    for i in 0..POINTS {
        csv.push_str(&format!("Point{i},degF,FALSE,{}.25,float\n", 60 + i));
    }
    csv
}

async fn store(tp: &TestPlatform, identity: &str, name: &str, raw: &str, kind: &str) {
    tp.call("config.store", "set_config", (identity, name, raw, kind))
        .timeout(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("storing {name}: {e}"));
}

/// One run: a fresh site, `rounds` rounds; returns (points/s, RSS KiB at the end).
async fn one_run(devices: usize, rounds: usize) -> (f64, f64) {
    let tp = TestPlatform::builder().services(true).start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    store(
        &tp,
        driver::IDENTITY,
        "config",
        r#"{"driver_scrape_interval": 0.01}"#,
        "json",
    )
    .await;
    store(&tp, driver::IDENTITY, "bench.csv", &registry(), "csv").await;
    for d in 0..devices {
        let entry = r#"{"driver_type": "fake", "registry_config": "config://bench.csv", "interval": 60}"#;
        store(
            &tp,
            driver::IDENTITY,
            &format!("devices/bench/site/dev{d:04}"),
            entry,
            "json",
        )
        .await;
    }
    tp.spawn(HISTORIAN, SqliteHistorian::new(dir.path().join("history.sqlite")))
        .await
        .expect("spawn historian");
    tp.spawn(driver::IDENTITY, PlatformDriver::new())
        .await
        .expect("spawn driver");
    tp.settle().await;
    let flush = || async {
        tp.call(HISTORIAN, "flush", ())
            .timeout(Duration::from_secs(600))
            .await
            .expect("flush")
    };
    // A warm-up round (devices whose slot of the first round had passed start here).
    tp.advance(Duration::from_secs(60)).await;
    flush().await;
    let before = written(&tp).await;
    let start = Instant::now();
    for _ in 0..rounds {
        tp.advance(Duration::from_secs(60)).await;
        flush().await;
    }
    let elapsed = start.elapsed();
    let points = written(&tp).await - before;
    let status = tp.call(HISTORIAN, "status", ()).await.expect("status");
    assert_eq!(
        status["cached"].as_i64(),
        Some(0),
        "nothing waits in the backup cache: {status}"
    );
    assert_eq!(status["dropped"].as_i64(), Some(0), "nothing dropped: {status}");
    assert_eq!(
        points,
        (devices * POINTS * rounds) as i64,
        "every point of every round committed"
    );
    let rss = rss_kib();
    tp.shutdown().await;
    (points as f64 / elapsed.as_secs_f64(), rss)
}

async fn written(tp: &TestPlatform) -> i64 {
    let status = tp.call(HISTORIAN, "status", ()).await.expect("status");
    status["written"].as_i64().expect("written")
}

fn rss_kib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// The figures of the module docs, `runs` runs (after one warm-up run).
pub(crate) fn run(runs: usize, quick: bool) -> Vec<(&'static str, f64, &'static str)> {
    let devices = if quick { DEVICES / 4 } else { DEVICES };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    eprintln!(
        "[perf] driver.points_per_s: {devices} devices × {POINTS} points, {ROUNDS} rounds; warm-up + {runs} runs"
    );
    rt.block_on(one_run(devices, 2));
    let mut rates = Vec::new();
    let mut rss = 0.0;
    for _ in 0..runs {
        let (rate, r) = rt.block_on(one_run(devices, ROUNDS));
        rates.push(rate);
        rss = r;
    }
    eprintln!("[perf] driver.points_per_s per run: {rates:.0?}");
    rates.sort_by(f64::total_cmp);
    vec![
        ("driver.points_per_s", rates[rates.len() / 2], "points/s"),
        ("driver.historian_rss_kib", rss, "KiB"),
    ]
}
