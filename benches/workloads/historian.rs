//! The SQLite historian's figures (feature `historian`), each with its raw-SQLite baseline
//! in the same run: [`run`] returns them as `(name, value, unit)`.
//!
//! | figure | how it is measured |
//! |--------|--------------------|
//! | `historian.query_ms.1_topic_1_day` | a database of 100 topics × one day of one-minute readings (144,000 rows, written with the historian's own `Store`); a `platform.historian` on it (`agent_threads(1)`); the platform handle calls `query("bench/dev/p0", start, end)` for that day (1,440 values); median of the runs |
//! | `historian.query_ms.100_topics_1_day` | the same, `query([100 topics], start, end)` (144,000 values) |
//! | `baseline.sqlite_query_ms.1_topic_1_day` | the same rows read with rusqlite directly (`SELECT ts, value_string ... WHERE topic_id = ? AND ts >= ? AND ts < ?`, strings collected, nothing parsed) |
//! | `historian.query_ratio.1_topic_1_day` | `historian.query_ms.1_topic_1_day` / `baseline.sqlite_query_ms.1_topic_1_day` |
//! | `historian.insert_points_per_s` | [`insert_points_per_s`]: `devices/bench/dev<i>/all` publications of 100 points each (floats, with metadata) from the platform handle, in windows of 200 publications each followed by the historian's `flush` (so that its mailbox, 10,000 by default, never drops); points committed to the database / (first publish to the last `flush`) |
//! | `historian.store_points_per_s` | the writer's `Store::write` alone: batches of 10,000 records (100 topics) in one transaction each |
//! | `baseline.sqlite_insert_points_per_s` | rusqlite directly on the same schema: one prepared `INSERT OR REPLACE` per row, one transaction per 10,000 rows, values already JSON text |
//! | `historian.insert_ratio_to_raw` | `historian.store_points_per_s` / `baseline.sqlite_insert_points_per_s` |

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, params};
use volttron::agents::SqliteHistorian;
use volttron::agents::historian::IDENTITY;
use volttron::agents::historian::config::TableNames;
use volttron::agents::historian::record::Record;
use volttron::agents::historian::store::Store;
use volttron::config_store::format_timestamp;
use volttron::prelude::*;

use super::median;
use volttron::{Args, Headers};

/// Topics of the query database.
pub(crate) const TOPICS: usize = 100;
/// One day of one-minute readings.
pub(crate) const MINUTES: i64 = 1440;
/// Points per publication of the insert figures.
pub(crate) const POINTS: usize = 100;
/// Publications between two `flush`es of [`insert_points_per_s`].
const WINDOW: usize = 200;

fn day() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Records of `topics` topics × `minutes` minutes.
fn records(topics: usize, minutes: i64, from_minute: i64) -> Vec<Record> {
    let mut v = Vec::with_capacity(topics * minutes as usize);
    for m in from_minute..from_minute + minutes {
        let ts: std::sync::Arc<str> = format_timestamp(&(day() + chrono::Duration::minutes(m))).into();
        for t in 0..topics {
            v.push(Record {
                ts: ts.clone(),
                topic: format!("bench/dev/p{t}").into(),
                value: format!("{}", 70.0 + (m % 60) as f64 / 4.0),
                meta: r#"{"units":"F","type":"float","tz":"UTC"}"#.into(),
            });
        }
    }
    v
}

/// The figures of the module docs, `runs` runs each (after one warm-up).
pub(crate) fn run(runs: usize, quick: bool) -> Vec<(&'static str, f64, &'static str)> {
    let mut figures = Vec::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("query.sqlite");
    {
        let mut store = Store::open(&db, &TableNames::default()).expect("open the bench database");
        store
            .write(&records(TOPICS, MINUTES, 0))
            .expect("fill the bench database");
    }
    let (one, hundred) = query_ms(&db, runs);
    let raw = raw_query_ms(&db, runs);
    figures.push(("historian.query_ms.1_topic_1_day", one, "ms"));
    figures.push(("historian.query_ms.100_topics_1_day", hundred, "ms"));
    figures.push(("baseline.sqlite_query_ms.1_topic_1_day", raw, "ms"));
    figures.push(("historian.query_ratio.1_topic_1_day", one / raw, "x"));

    let publications = if quick { 1_000 } else { 5_000 };
    let mut end_to_end: Vec<f64> = (0..=runs)
        .map(|_| insert_points_per_s(POINTS, publications))
        .collect();
    end_to_end.remove(0);
    figures.push(("historian.insert_points_per_s", median(end_to_end), "points/s"));
    let rows = if quick { 100_000 } else { 500_000 };
    let store = median((0..runs).map(|_| store_points_per_s(rows)).collect());
    let raw = median((0..runs).map(|_| raw_insert_points_per_s(rows)).collect());
    figures.push(("historian.store_points_per_s", store, "points/s"));
    figures.push(("baseline.sqlite_insert_points_per_s", raw, "points/s"));
    figures.push(("historian.insert_ratio_to_raw", store / raw, "x"));
    figures
}

/// Median `query` times for one topic and for all [`TOPICS`], one day each.
fn query_ms(db: &Path, runs: usize) -> (f64, f64) {
    runtime().block_on(async {
        let platform = Platform::builder()
            .agent_threads(1)
            .start()
            .await
            .expect("platform");
        platform
            .spawn(IDENTITY, SqliteHistorian::new(db))
            .await
            .expect("spawn the historian");
        let start = format_timestamp(&day());
        let end = format_timestamp(&(day() + chrono::Duration::minutes(MINUTES)));
        let all: Vec<Value> = (0..TOPICS)
            .map(|t| Value::from(format!("bench/dev/p{t}")))
            .collect();
        let time = |topic: Value, expect: usize| {
            let (platform, start, end) = (&platform, start.clone(), end.clone());
            async move {
                let t = Instant::now();
                let r = platform
                    .call(
                        IDENTITY,
                        "query",
                        Args::new().arg(topic).kwarg("start", start).kwarg("end", end),
                    )
                    .await
                    .expect("query");
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let got = match r.get("values") {
                    Some(Value::List(l)) => l.len(),
                    Some(Value::Map(m)) => m.values().map(|v| v.as_list().map_or(0, <[Value]>::len)).sum(),
                    _ => 0,
                };
                assert_eq!(got, expect, "the query's values");
                ms
            }
        };
        let mut one = Vec::new();
        let mut hundred = Vec::new();
        for i in 0..=runs {
            let a = time(Value::from("bench/dev/p0"), MINUTES as usize).await;
            let b = time(Value::List(all.clone()), TOPICS * MINUTES as usize).await;
            if i > 0 {
                one.push(a);
                hundred.push(b);
            }
        }
        platform.shutdown().await;
        (median(one), median(hundred))
    })
}

fn raw_query_ms(db: &Path, runs: usize) -> f64 {
    let c = Connection::open(db).expect("open");
    let start = format_timestamp(&day());
    let end = format_timestamp(&(day() + chrono::Duration::minutes(MINUTES)));
    let mut v = Vec::new();
    for i in 0..=runs {
        let t = Instant::now();
        let mut stmt = c
            .prepare("SELECT ts, value_string FROM data WHERE topic_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts ASC")
            .expect("prepare");
        let rows: Vec<(String, String)> = stmt
            .query_map(params![1, start, end], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(rows.len(), MINUTES as usize);
        if i > 0 {
            v.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    median(v)
}

/// Points per second committed by a `platform.historian` fed `publications` publications
/// of `points` points each through the bus (a fresh database each call). What a driver
/// figure can be compared with.
pub(crate) fn insert_points_per_s(points: usize, publications: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("insert.sqlite");
    runtime().block_on(async {
        let platform = Platform::builder()
            .agent_threads(1)
            .start()
            .await
            .expect("platform");
        platform
            .spawn(IDENTITY, SqliteHistorian::new(&db))
            .await
            .expect("spawn the historian");
        let mut values = volttron::Map::new();
        let mut meta = volttron::Map::new();
        for p in 0..points {
            values.insert(format!("p{p}"), Value::from(70.0 + p as f64));
            let mut m = volttron::Map::new();
            m.insert("units".into(), Value::from("F"));
            m.insert("type".into(), Value::from("float"));
            meta.insert(format!("p{p}"), Value::Map(m));
        }
        let message = Value::List(vec![Value::Map(values), Value::Map(meta)]);
        let flush = || async {
            let r = platform.call(IDENTITY, "flush", ()).await.expect("flush");
            r.get("written").and_then(Value::as_u64).unwrap_or(0)
        };
        flush().await;
        let t = Instant::now();
        for i in 0..publications {
            let mut h = Headers::new();
            let at = day() + chrono::Duration::seconds(i as i64);
            h.insert("TimeStamp".into(), Value::from(format_timestamp(&at)));
            platform
                .publish_on(
                    "",
                    format!("devices/bench/dev{}/all", i % 10).as_str(),
                    h,
                    message.clone(),
                )
                .expect("publish");
            if (i + 1) % WINDOW == 0 {
                flush().await;
            }
        }
        let written = flush().await;
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(
            written as usize,
            points * publications,
            "points committed (a mailbox dropped some?)"
        );
        platform.shutdown().await;
        written as f64 / secs
    })
}

/// Points per second of `Store::write` alone (batches of 10,000).
pub(crate) fn store_points_per_s(rows: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("store.sqlite"), &TableNames::default()).expect("open");
    let minutes = (rows / TOPICS) as i64;
    let all = records(TOPICS, minutes, 0);
    let t = Instant::now();
    for batch in all.chunks(10_000) {
        store.write(batch).expect("write");
    }
    all.len() as f64 / t.elapsed().as_secs_f64()
}

/// Points per second of bare rusqlite on the same schema (one transaction per 10,000).
pub(crate) fn raw_insert_points_per_s(rows: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // The schema, as the historian creates it.
        Store::open(&dir.path().join("raw.sqlite"), &TableNames::default()).expect("open");
    }
    let mut c = Connection::open(dir.path().join("raw.sqlite")).expect("open");
    c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
        .expect("pragmas");
    let minutes = (rows / TOPICS) as i64;
    let all = records(TOPICS, minutes, 0);
    let t = Instant::now();
    for (b, batch) in all.chunks(10_000).enumerate() {
        let tx = c.transaction().expect("transaction");
        {
            let mut stmt = tx
                .prepare("INSERT OR REPLACE INTO data VALUES (?1, ?2, ?3)")
                .expect("prepare");
            for (i, r) in batch.iter().enumerate() {
                stmt.execute(params![r.ts, ((b * 10_000 + i) % TOPICS) as i64 + 1, r.value])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    all.len() as f64 / t.elapsed().as_secs_f64()
}
