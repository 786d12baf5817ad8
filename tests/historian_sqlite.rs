//! The SQLite historian in-process on a [`TestPlatform`] (virtual clock): what the bus
//! carries is stored as VOLTTRON stores it, and every RPC answers VOLTTRON's shapes —
//! single and list queries, time syntax, start/end bounds, skip/count/order, topics,
//! patterns, metadata, aggregates, the version — and bad arguments get typed errors.
//! Configuration from the store (relative path, table prefix, capture flags), a refused
//! configuration (health BAD), retention by `history_limit_days`.
//!
//! Every wait is on an RPC (`flush` answers once the writer thread has committed what was
//! received before), never on time.

#![cfg(feature = "historian")]

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde_json::json;
use volttron::agents::SqliteHistorian;
use volttron::agents::historian::IDENTITY;
use volttron::prelude::*;
use volttron::testing::TestPlatform;
use volttron::{Args, Headers, RpcError};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

fn j(v: serde_json::Value) -> Value {
    Value::from(v)
}

fn to_json(v: Value) -> serde_json::Value {
    serde_json::Value::from(v)
}

/// Publishes `devices/campus/b1/ahu/all` as the platform driver does, at `at`.
fn publish_ahu(tp: &TestPlatform, at: DateTime<Utc>, i: i64) {
    let mut h = Headers::new();
    h.insert("TimeStamp".into(), Value::from(at.to_rfc3339()));
    h.insert("Date".into(), Value::from(at.to_rfc3339()));
    let message = json!([
        {"zat": 70.0 + i as f64, "fan": i % 2 == 0},
        {"zat": {"units": "F", "type": "float", "tz": "UTC"}, "fan": {"units": "on/off", "type": "boolean", "tz": "UTC"}}
    ]);
    tp.platform()
        .publish_on("", "devices/campus/b1/ahu/all", h, j(message))
        .unwrap();
}

async fn call(tp: &TestPlatform, method: &str, args: Args) -> serde_json::Value {
    to_json(
        tp.call(IDENTITY, method, args)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}")),
    )
}

async fn flush(tp: &TestPlatform) -> serde_json::Value {
    tp.settle().await;
    call(tp, "flush", Args::new()).await
}

async fn start() -> TestPlatform {
    let tp = TestPlatform::builder()
        .services(true)
        .start_at(t0() + ChronoDuration::minutes(10))
        .start()
        .await;
    tp.spawn(IDENTITY, SqliteHistorian::new("historian.sqlite"))
        .await
        .unwrap();
    tp.settle().await;
    tp
}

const ZAT: &str = "campus/b1/ahu/zat";
const FAN: &str = "campus/b1/ahu/fan";

#[volttron::test]
async fn publications_are_stored_and_queries_answer_volttron_shapes() {
    let tp = start().await;
    for i in 0..10 {
        publish_ahu(&tp, t0() + ChronoDuration::minutes(i), i);
    }
    // Not an `all` publication: VOLTTRON does not store it.
    tp.platform()
        .publish("devices/campus/b1/ahu/zat", Value::from(1.0))
        .unwrap();
    let f = flush(&tp).await;
    assert_eq!(f["written"], 20, "{f}");
    assert_eq!(f["cached"], 0, "{f}");

    // One topic: [[ts, value], ...] in time order, and its metadata.
    let r = call(&tp, "query", Args::new().arg(ZAT)).await;
    let values = r["values"].as_array().unwrap();
    assert_eq!(values.len(), 10);
    assert_eq!(values[0], json!([ts(t0()), 70.0]));
    assert_eq!(values[9], json!([ts(t0() + ChronoDuration::minutes(9)), 79.0]));
    assert_eq!(r["metadata"], json!({"units": "F", "type": "float", "tz": "UTC"}));
    let r = call(&tp, "query", Args::new().arg(FAN).kwarg("count", 2)).await;
    assert_eq!(
        r["values"],
        json!([[ts(t0()), true], [ts(t0() + ChronoDuration::minutes(1)), false]])
    );

    // start inclusive, end exclusive; start == end is that instant.
    let start = ts(t0() + ChronoDuration::minutes(2));
    let end = ts(t0() + ChronoDuration::minutes(5));
    let r = call(
        &tp,
        "query",
        Args::new()
            .arg(ZAT)
            .kwarg("start", start.as_str())
            .kwarg("end", end.as_str()),
    )
    .await;
    let got: Vec<f64> = r["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_f64().unwrap())
        .collect();
    assert_eq!(got, [72.0, 73.0, 74.0]);
    let r = call(
        &tp,
        "query",
        Args::new()
            .arg(ZAT)
            .kwarg("start", start.as_str())
            .kwarg("end", start.as_str()),
    )
    .await;
    assert_eq!(r["values"], json!([[start, 72.0]]));
    // Other spellings of the same instant.
    let r = call(
        &tp,
        "query",
        Args::new().arg(ZAT).kwarg("start", "2026-12-07T12:08:00Z"),
    )
    .await;
    assert_eq!(r["values"].as_array().unwrap().len(), 2);
    let r = call(
        &tp,
        "query",
        Args::new().arg(ZAT).kwarg("start", "2026-12-07 12:08:00"),
    )
    .await;
    assert_eq!(r["values"].as_array().unwrap().len(), 2);

    // Relative to the platform clock (12:10): the last three minutes are 12:07, 12:08, 12:09.
    let r = call(
        &tp,
        "query",
        Args::new().arg(ZAT).kwarg("start", "now -3m").kwarg("end", "now"),
    )
    .await;
    let got: Vec<f64> = r["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_f64().unwrap())
        .collect();
    assert_eq!(got, [77.0, 78.0, 79.0]);
    let r = call(
        &tp,
        "query",
        Args::new()
            .arg(ZAT)
            .kwarg("start", "now -1h -5m")
            .kwarg("end", "now -9m"),
    )
    .await;
    assert_eq!(r["values"], json!([[ts(t0()), 70.0]]));

    // skip / count / order, positional as VOLTTRON's signature.
    let r = call(
        &tp,
        "query",
        Args::new()
            .arg(ZAT)
            .arg(Value::Null)
            .arg(Value::Null)
            .arg(Value::Null)
            .arg(Value::Null)
            .arg(2)
            .arg(3)
            .arg("LAST_TO_FIRST"),
    )
    .await;
    let got: Vec<f64> = r["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_f64().unwrap())
        .collect();
    assert_eq!(got, [77.0, 76.0, 75.0]);
    let r = call(&tp, "query", Args::new().arg(ZAT).kwarg("skip", 8)).await;
    assert_eq!(r["values"].as_array().unwrap().len(), 2);

    // A list of topics: values by topic, count per topic, empty metadata.
    let r = call(
        &tp,
        "query",
        Args::new()
            .arg(json!([ZAT, FAN]))
            .kwarg("count", 3)
            .kwarg("order", "LAST_TO_FIRST"),
    )
    .await;
    assert_eq!(r["metadata"], json!({}));
    assert_eq!(r["values"][ZAT].as_array().unwrap().len(), 3);
    assert_eq!(r["values"][FAN].as_array().unwrap().len(), 3);
    assert_eq!(
        r["values"][ZAT][0],
        json!([ts(t0() + ChronoDuration::minutes(9)), 79.0])
    );
    // A list of one topic answers as a single topic (VOLTTRON's `multi_topic_query`).
    let r = call(&tp, "query", Args::new().arg(json!([ZAT])).kwarg("count", 1)).await;
    assert_eq!(r["values"], json!([[ts(t0()), 70.0]]));
    // Names match case-insensitively; unknown topics and empty ranges answer {}.
    let r = call(
        &tp,
        "query",
        Args::new().arg("CAMPUS/B1/AHU/ZAT").kwarg("count", 1),
    )
    .await;
    assert_eq!(r["values"], json!([[ts(t0()), 70.0]]));
    assert_eq!(
        call(&tp, "query", Args::new().arg("campus/b1/ahu/nothing")).await,
        json!({})
    );
    assert_eq!(
        call(&tp, "query", Args::new().arg(ZAT).kwarg("start", "now")).await,
        json!({})
    );
    // A list with one unknown topic: only the known one.
    let r = call(
        &tp,
        "query",
        Args::new().arg(json!([ZAT, "nope"])).kwarg("count", 1),
    )
    .await;
    assert_eq!(r["values"], json!({ZAT: [[ts(t0()), 70.0]]}));

    // Topics, patterns, metadata, version.
    let mut topics: Vec<String> =
        serde_json::from_value(call(&tp, "get_topic_list", Args::new()).await).unwrap();
    topics.sort();
    assert_eq!(topics, [FAN, ZAT]);
    let p = call(&tp, "get_topics_by_pattern", Args::new().arg("AHU/Z")).await;
    assert_eq!(p.as_object().unwrap().keys().collect::<Vec<_>>(), [ZAT]);
    assert!(p[ZAT].is_i64());
    let m = call(&tp, "get_topics_metadata", Args::new().arg(ZAT)).await;
    assert_eq!(m, json!({ZAT: {"units": "F", "type": "float", "tz": "UTC"}}));
    let m = call(
        &tp,
        "get_topics_metadata",
        Args::new().kwarg("topics", json!([FAN, "nope"])),
    )
    .await;
    assert_eq!(
        m,
        json!({FAN: {"units": "on/off", "type": "boolean", "tz": "UTC"}})
    );
    assert_eq!(call(&tp, "get_version", Args::new()).await, json!("4.0.0"));
    assert_eq!(call(&tp, "get_aggregate_topics", Args::new()).await, json!([]));
    tp.shutdown().await;
}

#[volttron::test]
async fn record_analysis_and_datalogger_are_stored_as_volttron_does() {
    let tp = start().await;
    let now = tp.now();
    tp.platform()
        .publish("record/notes/shift", j(json!({"who": "ops", "n": 2})))
        .unwrap();
    tp.platform()
        .publish("analysis/eco/ahu1", j(json!({"score": 0.75})))
        .unwrap();
    tp.platform()
        .publish(
            "datalogger/site/meter",
            j(json!({"kw": {"Readings": ["2026-12-07T11:00:00", 4.5], "Units": "kW", "data_type": "double"}})),
        )
        .unwrap();
    flush(&tp).await;
    let r = call(&tp, "query", Args::new().arg("record/notes/shift")).await;
    assert_eq!(r["values"], json!([[ts(now), {"who": "ops", "n": 2}]]));
    let r = call(&tp, "query", Args::new().arg("eco/ahu1/score")).await;
    assert_eq!(r["values"], json!([[ts(now), 0.75]]));
    let r = call(&tp, "query", Args::new().arg("datalogger/site/meter/kw")).await;
    assert_eq!(r["values"], json!([["2026-12-07T11:00:00.000000+00:00", 4.5]]));
    assert_eq!(r["metadata"], json!({"units": "kW", "type": "float"}));
    tp.shutdown().await;
}

#[volttron::test]
async fn aggregate_tables_are_listed_and_queried() {
    let tp = start().await;
    publish_ahu(&tp, t0(), 0);
    flush(&tp).await;
    // The tables VOLTTRON's aggregate historian writes, beside the historian's.
    let status = call(&tp, "status", Args::new()).await;
    let db = rusqlite::Connection::open(status["database"].as_str().unwrap()).unwrap();
    db.execute_batch(
        "CREATE TABLE aggregate_topics (agg_topic_id INTEGER PRIMARY KEY, agg_topic_name TEXT NOT NULL,
             agg_type TEXT NOT NULL, agg_time_period TEXT NOT NULL, UNIQUE(agg_topic_name, agg_type, agg_time_period));
         CREATE TABLE aggregate_meta (agg_topic_id INTEGER NOT NULL PRIMARY KEY, metadata TEXT NOT NULL);
         INSERT INTO aggregate_topics VALUES (1, 'campus/b1/ahu/zat', 'avg', '1h');
         INSERT INTO aggregate_meta VALUES (1, '{''configured_topics'': ''campus/b1/ahu/zat''}');
         CREATE TABLE avg_1h (ts timestamp NOT NULL, topic_id INTEGER NOT NULL, agg_value REAL NOT NULL, topics TEXT,
             UNIQUE(topic_id, ts));
         INSERT INTO avg_1h VALUES ('2026-12-07T12:00:00.000000+00:00', 1, 71.25, NULL);",
    )
    .unwrap();
    let a = call(&tp, "get_aggregate_topics", Args::new()).await;
    assert_eq!(a, json!([[ZAT, "avg", "1h", ZAT]]));
    let r = call(
        &tp,
        "query",
        Args::new()
            .arg(ZAT)
            .kwarg("agg_type", "AVG")
            .kwarg("agg_period", "1h"),
    )
    .await;
    assert_eq!(r["values"], json!([[ts(t0()), 71.25]]));
    // The metadata of an aggregate query is the raw topic's.
    assert_eq!(r["metadata"]["units"], "F");
    tp.shutdown().await;
}

#[volttron::test]
async fn bad_arguments_get_typed_errors() {
    let tp = start().await;
    publish_ahu(&tp, t0(), 0);
    flush(&tp).await;
    let remote = |e: RpcError| match e {
        RpcError::Remote { message, .. } => message,
        other => panic!("expected a remote error, got {other:?}"),
    };
    let q = |args: Args| tp.call(IDENTITY, "query", args);
    let e = remote(q(Args::new()).await.unwrap_err());
    assert!(e.contains("\"Topic\" required"), "{e}");
    let e = remote(
        q(Args::new().arg(ZAT).kwarg("agg_type", "avg"))
            .await
            .unwrap_err(),
    );
    assert!(e.contains("agg_period"), "{e}");
    let e = remote(
        q(Args::new().arg(ZAT).kwarg("order", "SIDEWAYS"))
            .await
            .unwrap_err(),
    );
    assert!(e.contains("FIRST_TO_LAST"), "{e}");
    let e = remote(
        q(Args::new().arg(ZAT).kwarg("start", "yesterday"))
            .await
            .unwrap_err(),
    );
    assert!(e.contains("start") && e.contains("yesterday"), "{e}");
    let e = remote(q(Args::new().arg(json!([ZAT, 5]))).await.unwrap_err());
    assert!(e.contains("strings"), "{e}");
    let e = remote(
        q(Args::new()
            .arg(ZAT)
            .kwarg("agg_type", "avg; drop")
            .kwarg("agg_period", "1h"))
        .await
        .unwrap_err(),
    );
    assert!(e.contains("invalid aggregation"), "{e}");
    // Arguments of the wrong type never reach the handler.
    let e = q(Args::new().arg(ZAT).kwarg("count", "ten")).await.unwrap_err();
    assert!(matches!(e, RpcError::InvalidParams { .. }), "{e:?}");
    let e = q(Args::new().arg(ZAT).kwarg("colour", "red")).await.unwrap_err();
    assert!(matches!(e, RpcError::InvalidParams { .. }), "{e:?}");
    let e = remote(tp.call(IDENTITY, "get_topics_metadata", (5,)).await.unwrap_err());
    assert!(e.contains("valid topic name"), "{e}");
    let e = remote(
        tp.call(IDENTITY, "get_topics_by_pattern", ("(",))
            .await
            .unwrap_err(),
    );
    assert!(e.contains("invalid topic pattern"), "{e}");
    // The agent keeps answering.
    assert_eq!(
        call(&tp, "query", Args::new().arg(ZAT)).await["values"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    tp.shutdown().await;
}

async fn set_config(tp: &TestPlatform, raw: serde_json::Value) {
    tp.call(
        "config.store",
        "set_config",
        (IDENTITY, "config", raw.to_string(), "json"),
    )
    .await
    .unwrap();
    tp.settle().await;
}

async fn health(tp: &TestPlatform) -> serde_json::Value {
    to_json(tp.call(IDENTITY, "health.get_status", ()).await.unwrap())
}

#[volttron::test]
async fn configuration_comes_from_the_store() {
    let tp = TestPlatform::builder()
        .services(true)
        .start_at(t0())
        .start()
        .await;
    set_config(
        &tp,
        json!({"connection": {"type": "sqlite", "params": {"database": "db/h.sqlite"}},
               "tables_def": {"table_prefix": "bldg", "data_table": "d", "topics_table": "t", "meta_table": "m"},
               "capture_device_data": false}),
    )
    .await;
    tp.spawn(IDENTITY, SqliteHistorian::from_config_store())
        .await
        .unwrap();
    tp.settle().await;
    publish_ahu(&tp, t0(), 0);
    tp.platform().publish("record/x", Value::from(1)).unwrap();
    let f = flush(&tp).await;
    assert_eq!(f["written"], 1, "devices/ is not captured: {f}");
    let status = call(&tp, "status", Args::new()).await;
    let path = std::path::PathBuf::from(status["database"].as_str().unwrap());
    assert!(
        path.ends_with("agents/platform.historian/data/db/h.sqlite"),
        "{path:?}"
    );
    let db = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM bldg_d", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let name: String = db
        .query_row("SELECT topic_name FROM bldg_t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "record/x");
    assert_eq!(health(&tp).await["status"], "GOOD");

    // A refused configuration: BAD with the reason; the database in use stays.
    set_config(
        &tp,
        json!({"connection": {"type": "mysql", "params": {"database": "x"}}}),
    )
    .await;
    let h = health(&tp).await;
    assert_eq!(h["status"], "BAD", "{h}");
    assert!(h["context"].as_str().unwrap().contains("mysql"), "{h}");
    assert_eq!(
        call(&tp, "query", Args::new().arg("record/x")).await["values"][0][1],
        1
    );
    set_config(
        &tp,
        json!({"connection": {"params": {"database": "h2.sqlite"}}, "history_limit_days": "a week"}),
    )
    .await;
    let h = health(&tp).await;
    assert!(
        h["context"].as_str().unwrap().contains("history_limit_days"),
        "{h}"
    );

    // A good one again: GOOD, and devices/ captured (the default).
    set_config(&tp, json!({"connection": {"params": {"database": "h2.sqlite"}}})).await;
    assert_eq!(health(&tp).await["status"], "GOOD");
    publish_ahu(&tp, t0(), 0);
    let f = flush(&tp).await;
    assert_eq!(f["written"], 2, "{f}");
    tp.shutdown().await;
}

#[volttron::test]
async fn history_limit_days_deletes_old_rows() {
    let tp = TestPlatform::builder()
        .services(true)
        .start_at(t0())
        .start()
        .await;
    tp.spawn(
        IDENTITY,
        SqliteHistorian::new("historian.sqlite").history_limit_days(1.0),
    )
    .await
    .unwrap();
    tp.settle().await;
    publish_ahu(&tp, t0() - ChronoDuration::days(3), 0);
    publish_ahu(&tp, t0() - ChronoDuration::hours(2), 1);
    flush(&tp).await;
    assert_eq!(
        call(&tp, "query", Args::new().arg(ZAT)).await["values"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The retention timer (every 60 s of the platform clock).
    tp.advance(std::time::Duration::from_secs(61)).await;
    flush(&tp).await;
    let r = call(&tp, "query", Args::new().arg(ZAT)).await;
    assert_eq!(r["values"], json!([[ts(t0() - ChronoDuration::hours(2)), 71.0]]));
    assert_eq!(call(&tp, "status", Args::new()).await["expired"], 2);
    tp.shutdown().await;
}
