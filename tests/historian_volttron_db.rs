//! Databases of VOLTTRON's own sqlite historian code (`historian.sqlite.sqlitefuncts` of
//! volttron-lib-sql-historian, in the VOLTTRON 11 venv): Python creates and fills one (the
//! current schema, metadata in `topics`, and the older one with a separate `meta` table),
//! [`SqliteHistorian`] opens it, answers `query` as VOLTTRON's `query` answered on the
//! same rows, and appends to it; then VOLTTRON's code reads what the Rust historian wrote.

#![cfg(feature = "historian")]

mod common;

use std::path::Path;
use std::process::Command;

use chrono::{TimeZone, Utc};
use serde_json::json;
use volttron::agents::SqliteHistorian;
use volttron::agents::historian::IDENTITY;
use volttron::prelude::*;
use volttron::testing::TestPlatform;
use volttron::{Args, Headers};

/// Creates and fills a database with VOLTTRON's code; prints VOLTTRON's own answer to a
/// query (start 12:01, end 12:04, count 2, LAST_TO_FIRST) and the meta table it chose.
const FILL: &str = r#"
import sys, json
from datetime import datetime, timezone, timedelta
from historian.sqlite.sqlitefuncts import SqlLiteFuncts
from historian.base.base_historian import BaseHistorianAgent
db, old = sys.argv[1], sys.argv[2] == "old"
_, names = BaseHistorianAgent.parse_table_def(None, None)
f = SqlLiteFuncts({"database": db}, names)
if old:
    # The schema before SQLHistorian 4.0.0: metadata in its own table.
    f.execute_stmt("CREATE TABLE data (ts timestamp NOT NULL, topic_id INTEGER NOT NULL, value_string TEXT NOT NULL, UNIQUE(topic_id, ts))", commit=False)
    f.execute_stmt("CREATE TABLE topics (topic_id INTEGER PRIMARY KEY, topic_name TEXT NOT NULL, UNIQUE(topic_name))", commit=False)
    f.execute_stmt("CREATE TABLE meta (topic_id INTEGER PRIMARY KEY, metadata TEXT NOT NULL)", commit=True)
f.setup_historian_tables()
t0 = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
meta = {"units": "F", "type": "float", "tz": "UTC"}
ids = {}
for name in ["campus/b1/ahu/zat", "campus/b1/ahu/mode"]:
    if f.meta_table == f.topics_table:
        ids[name] = f.insert_topic(name, metadata=meta)
    else:
        ids[name] = f.insert_topic(name)
        f.insert_meta(ids[name], meta)
for i in range(5):
    f.insert_data(t0 + timedelta(minutes=i), ids["campus/b1/ahu/zat"], 70.0 + i)
    f.insert_data(t0 + timedelta(minutes=i), ids["campus/b1/ahu/mode"], "occupied" if i % 2 == 0 else {"a": [1, None]})
f.commit()
zat = ids["campus/b1/ahu/zat"]
vals = f.query([zat], {zat: "campus/b1/ahu/zat"}, start=t0 + timedelta(minutes=1), end=t0 + timedelta(minutes=4),
               count=2, order="LAST_TO_FIRST")
print(json.dumps({"zat": vals["campus/b1/ahu/zat"], "meta_table": f.meta_table}))
"#;

/// Reads a database with VOLTTRON's code: every topic's rows and metadata.
const READ: &str = r#"
import sys, json
from historian.sqlite.sqlitefuncts import SqlLiteFuncts
from historian.base.base_historian import BaseHistorianAgent
_, names = BaseHistorianAgent.parse_table_def(None, None)
f = SqlLiteFuncts({"database": sys.argv[1]}, names)
f.setup_historian_tables()
id_map, name_map = f.get_topic_map()
metas = f.get_topic_meta_map()
out = {}
for lower, tid in id_map.items():
    name = name_map[lower]
    out[name] = {"values": f.query([tid], {tid: name})[name], "metadata": metas.get(tid)}
print(json.dumps(out))
"#;

fn python(python: &Path, script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

async fn call(tp: &TestPlatform, method: &str, args: Args) -> serde_json::Value {
    serde_json::Value::from(tp.call(IDENTITY, method, args).await.unwrap())
}

async fn opens_and_queries(schema: &str) {
    let Some(py) = common::require_python("historian_volttron_db") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("volttron.sqlite");
    let volttron = python(&py, FILL, &[db.to_str().unwrap(), schema]);
    assert_eq!(
        volttron["meta_table"],
        if schema == "old" { "meta" } else { "topics" }
    );

    let tp = TestPlatform::builder()
        .services(true)
        .start_at(Utc.with_ymd_and_hms(2026, 12, 7, 13, 0, 0).unwrap())
        .start()
        .await;
    tp.spawn(IDENTITY, SqliteHistorian::new(&db)).await.unwrap();
    tp.settle().await;
    // The same query as VOLTTRON's, the same answer.
    let r = call(
        &tp,
        "query",
        Args::new()
            .arg("campus/b1/ahu/zat")
            .kwarg("start", "2026-12-07T12:01:00.000000+00:00")
            .kwarg("end", "2026-12-07T12:04:00")
            .kwarg("count", 2)
            .kwarg("order", "LAST_TO_FIRST"),
    )
    .await;
    assert_eq!(r["values"], volttron["zat"]);
    assert_eq!(r["metadata"], json!({"units": "F", "type": "float", "tz": "UTC"}));
    let r = call(
        &tp,
        "query",
        Args::new()
            .arg(json!(["campus/b1/ahu/zat", "campus/b1/ahu/mode"]))
            .kwarg("skip", 3),
    )
    .await;
    assert_eq!(
        r["values"]["campus/b1/ahu/mode"],
        json!([["2026-12-07T12:03:00.000000+00:00", {"a": [1, null]}], ["2026-12-07T12:04:00.000000+00:00", "occupied"]])
    );
    let mut topics: Vec<String> =
        serde_json::from_value(call(&tp, "get_topic_list", Args::new()).await).unwrap();
    topics.sort();
    assert_eq!(topics, ["campus/b1/ahu/mode", "campus/b1/ahu/zat"]);

    // Appends in the database's own schema: a new topic with new metadata, new readings.
    let mut h = Headers::new();
    h.insert("TimeStamp".into(), Value::from("2026-12-07T12:05:00+00:00"));
    let message = json!([{"zat": 75.5, "sat": 55.0}, {"zat": {"units": "F", "type": "float", "tz": "UTC"}, "sat": {"units": "C"}}]);
    tp.platform()
        .publish_on("", "devices/campus/b1/ahu/all", h, Value::from(message))
        .unwrap();
    tp.settle().await;
    let f = call(&tp, "flush", Args::new()).await;
    assert_eq!(f["written"], 2, "{f}");
    tp.shutdown().await;

    // VOLTTRON reads what the Rust historian wrote.
    let read = python(&py, READ, &[db.to_str().unwrap()]);
    assert_eq!(
        read["campus/b1/ahu/sat"]["values"],
        json!([["2026-12-07T12:05:00.000000+00:00", 55.0]])
    );
    assert_eq!(read["campus/b1/ahu/sat"]["metadata"], json!({"units": "C"}));
    assert_eq!(read["campus/b1/ahu/zat"]["values"].as_array().unwrap().len(), 6);
    assert_eq!(
        read["campus/b1/ahu/zat"]["values"][5],
        json!(["2026-12-07T12:05:00.000000+00:00", 75.5])
    );
}

#[volttron::test]
async fn a_volttron_database_opens_and_answers_as_volttron() {
    opens_and_queries("new").await;
}

#[volttron::test]
async fn an_older_volttron_database_with_a_meta_table_opens_and_answers_as_volttron() {
    opens_and_queries("old").await;
}
