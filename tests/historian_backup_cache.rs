//! The historian's backup cache: while the database refuses writes (another connection
//! holds its write lock: `BEGIN EXCLUSIVE`), publications are acknowledged into the cache
//! (`flush` says how many wait there), health is BAD with the reason, queries still
//! answer; once the lock goes, the cache is written and emptied, in order, health GOOD.
//!
//! And nothing acknowledged is lost across SIGKILL: this test binary re-executes itself as
//! a child historian that caches rows against a locked database, says so once `flush`
//! acknowledged them, and is SIGKILLed; a new historian on the same database writes them.
//!
//! Waits are on RPC answers and on the child's output, each with a deadline.

#![cfg(feature = "historian")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde_json::json;
use volttron::agents::SqliteHistorian;
use volttron::agents::historian::IDENTITY;
use volttron::prelude::*;
use volttron::testing::TestPlatform;
use volttron::{Args, Headers};

/// The variable telling this test binary it runs as the child; its value is the database.
const CHILD: &str = "VOLTTRON_TEST_HISTORIAN_CHILD";
const KILL_TEST: &str = "acknowledged_rows_survive_sigkill";
/// Publications the child caches (two rows each).
const CHILD_PUBLICATIONS: i64 = 200;
const DEADLINE: Duration = Duration::from_secs(30);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
}

fn publish_ahu(tp: &TestPlatform, i: i64) {
    let at = t0() + ChronoDuration::minutes(i);
    let mut h = Headers::new();
    h.insert("TimeStamp".into(), Value::from(at.to_rfc3339()));
    let message =
        json!([{"zat": 70.0 + i as f64, "sat": 55.0}, {"zat": {"units": "F"}, "sat": {"units": "F"}}]);
    tp.platform()
        .publish_on("", "devices/campus/b1/ahu/all", h, Value::from(message))
        .unwrap();
}

async fn call(tp: &TestPlatform, method: &str, args: Args) -> serde_json::Value {
    serde_json::Value::from(tp.call(IDENTITY, method, args).await.unwrap())
}

async fn flush(tp: &TestPlatform) -> serde_json::Value {
    tp.settle().await;
    call(tp, "flush", Args::new()).await
}

async fn historian(db: &Path, retry: Duration) -> TestPlatform {
    let tp = TestPlatform::builder()
        .services(true)
        .start_at(t0())
        .start()
        .await;
    tp.spawn(IDENTITY, SqliteHistorian::new(db).retry_period(retry))
        .await
        .unwrap();
    tp.settle().await;
    tp
}

/// Holds the database's write lock while it lives.
fn lock(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("BEGIN EXCLUSIVE").unwrap();
    c
}

async fn zat_count(tp: &TestPlatform) -> usize {
    let r = call(tp, "query", Args::new().arg("campus/b1/ahu/zat")).await;
    r["values"].as_array().map_or(0, Vec::len)
}

#[volttron::test]
async fn an_unwritable_database_caches_then_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    let tp = historian(&db, Duration::from_millis(200)).await;
    publish_ahu(&tp, 0);
    assert_eq!(flush(&tp).await["written"], 2);

    let locked = lock(&db);
    for i in 1..=5 {
        publish_ahu(&tp, i);
    }
    let f = flush(&tp).await;
    assert_eq!(
        (f["written"].as_u64(), f["cached"].as_u64()),
        (Some(2), Some(10)),
        "{f}"
    );
    assert_eq!(f["unacknowledged"], 0, "{f}");
    let s = call(&tp, "status", Args::new()).await;
    assert_eq!(s["failing"], true, "{s}");
    assert!(s["error"].as_str().unwrap().contains("locked"), "{s}");
    // Health follows (its check runs every 5 s of the platform clock).
    tp.advance(Duration::from_secs(5)).await;
    let h = serde_json::Value::from(tp.call(IDENTITY, "health.get_status", ()).await.unwrap());
    assert_eq!(h["status"], "BAD", "{h}");
    // Readers are not blocked by the writer's lock (WAL).
    assert_eq!(zat_count(&tp).await, 1);
    // More arrives behind the cached rows.
    publish_ahu(&tp, 6);
    assert_eq!(flush(&tp).await["cached"], 12);

    drop(locked);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let f = flush(&tp).await;
        if f["cached"] == 0 {
            assert_eq!(f["written"], 14, "{f}");
            break;
        }
        assert!(Instant::now() < deadline, "the cache was never written: {f}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = call(&tp, "query", Args::new().arg("campus/b1/ahu/zat")).await;
    let got: Vec<f64> = r["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_f64().unwrap())
        .collect();
    assert_eq!(got, [70.0, 71.0, 72.0, 73.0, 74.0, 75.0, 76.0]);
    tp.advance(Duration::from_secs(5)).await;
    let h = serde_json::Value::from(tp.call(IDENTITY, "health.get_status", ()).await.unwrap());
    assert_eq!(h["status"], "GOOD", "{h}");
    // New rows go straight to the database again.
    publish_ahu(&tp, 7);
    let f = flush(&tp).await;
    assert_eq!(
        (f["written"].as_u64(), f["cached"].as_u64()),
        (Some(16), Some(0)),
        "{f}"
    );
    tp.shutdown().await;
}

/// The child: caches rows against the parent's lock, prints `ACKED <n>`, waits to be killed.
async fn child(db: PathBuf) {
    // Never retried before the kill: the rows stay in the cache.
    let tp = historian(&db, Duration::from_secs(3600)).await;
    for i in 1..=CHILD_PUBLICATIONS {
        publish_ahu(&tp, i);
    }
    let f = flush(&tp).await;
    assert_eq!(f["written"], 0, "{f}");
    println!("ACKED {}", f["cached"]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    panic!("the parent never killed this child");
}

#[volttron::test]
async fn acknowledged_rows_survive_sigkill() {
    if let Some(db) = std::env::var_os(CHILD) {
        return child(PathBuf::from(db)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    // The database exists (one row), then its write lock is taken for the child's life.
    let tp = historian(&db, Duration::from_secs(3600)).await;
    publish_ahu(&tp, 0);
    assert_eq!(flush(&tp).await["written"], 2);
    tp.shutdown().await;
    let locked = lock(&db);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([KILL_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints `test <name> ... ` before the test's own output, on its line.
            if let Some((_, n)) = line.split_once("ACKED ") {
                let _ = tx.send(n.trim().parse::<u64>().unwrap());
            }
        }
    });
    let acked = match rx.recv_timeout(DEADLINE) {
        Ok(n) => n,
        Err(e) => {
            let _ = child.kill();
            panic!("the child never acknowledged its rows: {e}");
        }
    };
    assert_eq!(acked, 2 * CHILD_PUBLICATIONS as u64);
    child.kill().expect("SIGKILL the child");
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed: {status}");
    drop(locked);

    // A new historian finds the cache and writes it before anything else.
    let tp = historian(&db, Duration::from_secs(3600)).await;
    let f = flush(&tp).await;
    assert_eq!(
        (f["written"].as_u64(), f["cached"].as_u64()),
        (Some(acked), Some(0)),
        "{f}"
    );
    assert_eq!(zat_count(&tp).await, 1 + CHILD_PUBLICATIONS as usize);
    let r = call(
        &tp,
        "query",
        Args::new()
            .arg("campus/b1/ahu/zat")
            .kwarg("order", "LAST_TO_FIRST")
            .kwarg("count", 1),
    )
    .await;
    assert_eq!(r["values"][0][1], 70.0 + CHILD_PUBLICATIONS as f64);
    tp.shutdown().await;
}
