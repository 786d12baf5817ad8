//! Tests of [`AgentStore`] against the store file.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::core::value::Value;
use crate::durable::{FAIL_AT, FailAt};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 123_456_789).unwrap()
}

fn json(text: &str) -> Value {
    Value::from_json_str(text).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path(), "agent");
    Fixture { _dir: dir, path }
}

fn bytes(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

#[test]
fn missing_file_is_an_empty_store_and_open_creates_nothing() {
    let f = fixture();
    let store = AgentStore::open(&f.path).unwrap();
    assert!(store.is_empty());
    assert_eq!(store.len(), 0);
    assert!(!f.path.exists());
    assert!(matches!(store.get("config"), Err(StoreError::NotFound(n)) if n == "config"));
}

#[test]
fn each_type_is_stored_raw_and_read_parsed() {
    let f = fixture();
    let mut store = AgentStore::open(&f.path).unwrap();
    let json_text = "{\n  // the interval\n  \"interval\": 5\n}";
    assert_eq!(
        store.set("config", json_text, ConfigType::Json, t(0)).unwrap(),
        Change::New
    );
    store
        .set("points.csv", "a,b\n1,2\n", ConfigType::Csv, t(1))
        .unwrap();
    store.set("notes", "free text", ConfigType::Raw, t(2)).unwrap();
    assert_eq!(store.get("config").unwrap(), json(r#"{"interval": 5}"#));
    assert_eq!(
        store.get("points.csv").unwrap(),
        json(r#"[{"a": "1", "b": "2"}]"#)
    );
    assert_eq!(store.get("notes").unwrap(), Value::from("free text"));
    let entry = store.entry("config").unwrap();
    assert_eq!(entry.data, json_text, "data is the raw text, comments included");
    assert_eq!(
        entry.modified,
        Some(Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap())
    );
}

#[test]
fn bad_data_is_rejected_and_nothing_changes() {
    let f = fixture();
    let mut store = AgentStore::open(&f.path).unwrap();
    store.set("config", "[1]", ConfigType::Json, t(0)).unwrap();
    let before = bytes(&f.path);
    for (data, ty) in [
        ("{\"a\": }", ConfigType::Json),
        ("42", ConfigType::Json),
        ("a\n1,2\n", ConfigType::Csv),
    ] {
        let err = store.set("config", data, ty, t(1)).unwrap_err();
        assert!(
            matches!(err, StoreError::Parse { ref name, .. } if name == "config"),
            "{err}"
        );
        let err = store.set("other", data, ty, t(1)).unwrap_err();
        assert!(matches!(err, StoreError::Parse { .. }), "{err}");
    }
    let err = store.set("config", "42", ConfigType::Json, t(1)).unwrap_err();
    assert!(matches!(
        err,
        StoreError::Parse {
            source: ParseError::NotListOrMap { .. },
            ..
        }
    ));
    assert!(matches!(
        store.set(" / ", "[]", ConfigType::Json, t(1)),
        Err(StoreError::InvalidName { .. })
    ));
    assert!(matches!(store.delete("  "), Err(StoreError::InvalidName { .. })));
    assert!(matches!(store.delete("nope"), Err(StoreError::NotFound(n)) if n == "nope"));
    assert_eq!(store.names(), vec!["config"]);
    assert_eq!(store.get("config").unwrap(), json("[1]"));
    assert_eq!(bytes(&f.path), before);
}

#[test]
fn names_are_trimmed_case_insensitive_and_keep_the_last_writers_case() {
    let f = fixture();
    let mut store = AgentStore::open(&f.path).unwrap();
    assert_eq!(
        store.set("  Config ", "[1]", ConfigType::Json, t(0)).unwrap(),
        Change::New
    );
    assert_eq!(store.names(), vec!["Config"]);
    assert_eq!(
        store.set("/CONFIG/", "[2]", ConfigType::Json, t(1)).unwrap(),
        Change::Update
    );
    assert_eq!(store.names(), vec!["CONFIG"]);
    assert_eq!(store.len(), 1);
    assert_eq!(store.get("config").unwrap(), json("[2]"));
    assert_eq!(store.entry(" cOnFiG ").unwrap().name, "CONFIG");
    store.set("b", "[]", ConfigType::Json, t(2)).unwrap();
    store.set("A", "[]", ConfigType::Json, t(2)).unwrap();
    assert_eq!(store.names(), vec!["A", "b", "CONFIG"]);
    let reloaded = AgentStore::open(&f.path).unwrap();
    assert_eq!(reloaded.names(), vec!["A", "b", "CONFIG"]);
    let raw: serde_json::Value = serde_json::from_slice(&fs::read(&f.path).unwrap()).unwrap();
    assert_eq!(raw.as_object().unwrap().len(), 3, "one entry per name on disk");
    assert_eq!(store.delete("config").unwrap().name, "CONFIG");
    assert_eq!(store.names(), vec!["A", "b"]);
}

#[test]
fn references_resolve_recursively_and_missing_ones_stay_strings() {
    let f = fixture();
    let mut store = AgentStore::open(&f.path).unwrap();
    store
        .set(
            "config",
            r#"{"registry": "config://Registry", "list": ["config://registry", "config://nowhere"], "n": 1}"#,
            ConfigType::Json,
            t(0),
        )
        .unwrap();
    // A dangling reference until the target exists.
    assert_eq!(
        store.get("config").unwrap()["registry"],
        Value::from("config://Registry")
    );
    store
        .set(
            "registry",
            r#"{"points": "config:// points.csv "}"#,
            ConfigType::Json,
            t(1),
        )
        .unwrap();
    store
        .set(
            "points.csv",
            "name,ref\nzat,config://units\n",
            ConfigType::Csv,
            t(2),
        )
        .unwrap();
    store.set("units", "degF", ConfigType::Raw, t(3)).unwrap();
    let expected = json(
        r#"{"registry": {"points": [{"name": "zat", "ref": "degF"}]},
            "list": [{"points": [{"name": "zat", "ref": "degF"}]}, "config://nowhere"], "n": 1}"#,
    );
    assert_eq!(store.get("CONFIG").unwrap(), expected);
    assert_eq!(store.referrers("units"), vec!["config", "points.csv", "registry"]);
    assert_eq!(store.referrers("registry"), vec!["config"]);
    assert_eq!(store.referrers("nowhere"), vec!["config"]);
    assert!(store.referrers("config").is_empty());
    assert!(store.referrers("unknown").is_empty());
    // A raw configuration has no references.
    store.set("raw", "config://units", ConfigType::Raw, t(4)).unwrap();
    assert_eq!(store.get("raw").unwrap(), Value::from("config://units"));
}

#[test]
fn cycles_are_rejected_and_nothing_changes() {
    let f = fixture();
    let mut store = AgentStore::open(&f.path).unwrap();
    store
        .set("a", r#"{"b": "config://b"}"#, ConfigType::Json, t(0))
        .unwrap();
    store
        .set("b", r#"{"c": "config://c"}"#, ConfigType::Json, t(0))
        .unwrap();
    store.set("c", r#"{"leaf": 1}"#, ConfigType::Json, t(0)).unwrap();
    let names_before = store.names();
    let get_before = store.get("a").unwrap();
    let file_before = bytes(&f.path);
    let cases: [(&str, &str, &[&str]); 4] = [
        ("A", r#"{"me": "config://a"}"#, &["A", "A"]),
        ("d", r#"["config://D"]"#, &["d", "d"]),
        ("b", r#"{"back": "config://A"}"#, &["b", "a", "b"]),
        ("C", "x\nconfig://a\n", &["C", "a", "b", "C"]),
    ];
    for (name, data, path) in cases {
        let ty = if data.starts_with('x') {
            ConfigType::Csv
        } else {
            ConfigType::Json
        };
        match store.set(name, data, ty, t(1)) {
            Err(StoreError::Cycle { path: p }) => assert_eq!(p, path, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(store.names(), names_before);
        assert_eq!(store.get("a").unwrap(), get_before);
        assert_eq!(bytes(&f.path), file_before, "file bytes unchanged");
        assert_eq!(store.entry("c").unwrap().data, r#"{"leaf": 1}"#);
    }
    // Diamonds are not cycles.
    store
        .set("d", r#"["config://b", "config://c"]"#, ConfigType::Json, t(2))
        .unwrap();
    assert_eq!(
        store.get("d").unwrap(),
        json(r#"[{"c": {"leaf": 1}}, {"leaf": 1}]"#)
    );
}

#[test]
fn a_cycle_in_a_loaded_store_is_reported_by_get() {
    let f = fixture();
    fs::create_dir_all(f.path.parent().unwrap()).unwrap();
    fs::write(
        &f.path,
        r#"{"a":{"type":"json","data":"[\"config://b\"]"},"b":{"type":"json","data":"[\"config://a\"]"},"c":{"type":"json","data":"[1]"}}"#,
    )
    .unwrap();
    let store = AgentStore::open(&f.path).unwrap();
    assert!(matches!(store.get("a"), Err(StoreError::Cycle { path }) if path == ["a", "b", "a"]));
    assert_eq!(store.get("c").unwrap(), json("[1]"));
}

const VOLTTRON_STORE: &str = r#"{"config":{"type":"json","modified":"2023-05-04T10:11:12.345678+00:00","data":"{\n    # driver settings\n    \"driver_scrape_interval\": 0.05, // seconds\n    \"registry\": \"config://registry_configs/rtu.csv\"\n}"},"registry_configs/rtu.csv":{"type":"csv","modified":"2023-05-04T10:11:13.000001+00:00","data":"Volttron Point Name,Units,Writable\r\nZoneTemp,degF,FALSE\r\nSetPoint,degF,TRUE\r\n"},"notes":{"type":"raw","data":"caf\u00e9"}}"#;

#[test]
fn a_store_written_by_volttron_loads_and_resolves() {
    let f = fixture();
    fs::create_dir_all(f.path.parent().unwrap()).unwrap();
    fs::write(&f.path, VOLTTRON_STORE).unwrap();
    let store = AgentStore::open(&f.path).unwrap();
    assert_eq!(store.names(), vec!["config", "notes", "registry_configs/rtu.csv"]);
    let config = store.get("config").unwrap();
    assert_eq!(config["driver_scrape_interval"], Value::Float(0.05));
    assert_eq!(
        config["registry"][1]["Volttron Point Name"],
        Value::from("SetPoint")
    );
    assert_eq!(config["registry"][0]["Writable"], Value::from("FALSE"));
    assert_eq!(store.get("notes").unwrap(), Value::from("café"));
    let entry = store.entry("registry_configs/rtu.csv").unwrap();
    assert_eq!(entry.config_type, ConfigType::Csv);
    assert_eq!(
        entry.modified,
        Some(Utc.with_ymd_and_hms(2023, 5, 4, 10, 11, 13).unwrap() + chrono::Duration::microseconds(1))
    );
    assert!(entry.data.ends_with("TRUE\r\n"));
    assert_eq!(store.entry("notes").unwrap().modified, None);
    assert_eq!(store.referrers("REGISTRY_CONFIGS/rtu.csv"), vec!["config"]);
    // Writing it back keeps every entry as VOLTTRON wrote it.
    let mut store = store;
    store.set("extra", "[]", ConfigType::Json, t(0)).unwrap();
    let ours: serde_json::Value = serde_json::from_slice(&fs::read(&f.path).unwrap()).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(VOLTTRON_STORE).unwrap();
    for (name, entry) in theirs.as_object().unwrap() {
        assert_eq!(&ours[name], entry, "{name}");
    }
}

#[test]
fn duplicate_names_by_case_keep_the_last_modified() {
    // VOLTTRON keeps the old key on disk when a name is set again in another case.
    let f = fixture();
    fs::create_dir_all(f.path.parent().unwrap()).unwrap();
    fs::write(
        &f.path,
        r#"{"CONFIG":{"type":"json","modified":"2024-01-02T00:00:00.000000+00:00","data":"[2]"},"Config":{"type":"json","modified":"2024-01-01T00:00:00.000000+00:00","data":"[1]"}}"#,
    )
    .unwrap();
    let store = AgentStore::open(&f.path).unwrap();
    assert_eq!(store.names(), vec!["CONFIG"]);
    assert_eq!(store.get("config").unwrap(), json("[2]"));
}

#[test]
fn round_trip_in_volttrons_format() {
    let f = fixture();
    let mut store = AgentStore::open(&f.path).unwrap();
    store
        .set("Config", "{\"a\": \"config://pts\"} // c", ConfigType::Json, t(0))
        .unwrap();
    store
        .set("pts", "x,y\n\"1\",\"é\"\n", ConfigType::Csv, t(1))
        .unwrap();
    store
        .set(
            "raw",
            "line1\nline2 \"quoted\" \\ \u{1F600}",
            ConfigType::Raw,
            t(2),
        )
        .unwrap();
    let reloaded = AgentStore::open(&f.path).unwrap();
    assert_eq!(
        reloaded.entries().collect::<Vec<_>>(),
        store.entries().collect::<Vec<_>>()
    );
    for name in store.names() {
        assert_eq!(reloaded.get(&name).unwrap(), store.get(&name).unwrap());
    }
    let raw: serde_json::Value = serde_json::from_slice(&fs::read(&f.path).unwrap()).unwrap();
    let obj = raw.as_object().unwrap();
    assert_eq!(obj.len(), 3);
    assert_eq!(
        obj["Config"],
        serde_json::json!({"type": "json", "modified": "2023-11-14T22:13:20.123456+00:00", "data": "{\"a\": \"config://pts\"} // c"})
    );
    for entry in obj.values() {
        let e = entry.as_object().unwrap();
        assert_eq!(e.keys().collect::<Vec<_>>(), ["data", "modified", "type"]);
        assert!(["json", "csv", "raw"].contains(&e["type"].as_str().unwrap()));
    }
}

#[test]
fn a_corrupt_store_is_reported_and_left_alone() {
    let f = fixture();
    fs::create_dir_all(f.path.parent().unwrap()).unwrap();
    for garbage in [
        &b"{\"config\":{\"type\":\"json\",\"data\":\"[1]\"}"[..],
        b"{\"config\":{\"type\":\"json\",\"data\":\"not json\"}}",
        b"{\"config\":{\"type\":\"json\",\"data\":\"7\"}}",
        b"\x00\x01binary",
        b"[]",
    ] {
        fs::write(&f.path, garbage).unwrap();
        match AgentStore::open(&f.path) {
            Err(StoreError::Corrupt { path, message }) => {
                assert_eq!(path, f.path);
                assert!(!message.is_empty());
            }
            other => panic!("{}: {other:?}", String::from_utf8_lossy(garbage)),
        }
        assert_eq!(fs::read(&f.path).unwrap(), garbage);
    }
}

#[test]
fn deleting_the_last_entry_removes_the_file() {
    let f = fixture();
    let mut store = AgentStore::open(&f.path).unwrap();
    store.set("a", "[]", ConfigType::Json, t(0)).unwrap();
    store.set("b", "[]", ConfigType::Json, t(0)).unwrap();
    assert_eq!(store.delete("A").unwrap().name, "a");
    assert!(f.path.exists());
    assert_eq!(AgentStore::open(&f.path).unwrap().names(), vec!["b"]);
    store.delete("b").unwrap();
    assert!(!f.path.exists());
    assert!(store.is_empty());
    store.set("c", "[]", ConfigType::Json, t(0)).unwrap();
    store.delete_all().unwrap();
    assert!(!f.path.exists() && store.is_empty());
    store.delete_all().unwrap();
    let dir = f.path.parent().unwrap();
    assert!(list_stores(dir).unwrap().is_empty());
}

#[test]
fn a_failed_write_changes_nothing() {
    let f = fixture();
    let mut store = AgentStore::open(&f.path).unwrap();
    store.set("a", "[1]", ConfigType::Json, t(0)).unwrap();
    store.set("b", "[2]", ConfigType::Json, t(0)).unwrap();
    let file_before = bytes(&f.path);
    let entries_before: Vec<ConfigEntry> = store.entries().cloned().collect();
    let unchanged = |store: &AgentStore| {
        assert_eq!(store.entries().cloned().collect::<Vec<_>>(), entries_before);
        assert_eq!(bytes(&f.path), file_before);
    };
    FAIL_AT.with(|c| c.set(Some(FailAt::BeforeRename)));
    assert!(matches!(
        store.set("a", "[9]", ConfigType::Json, t(1)),
        Err(StoreError::Io { .. })
    ));
    unchanged(&store);
    FAIL_AT.with(|c| c.set(Some(FailAt::BeforeRename)));
    assert!(matches!(
        store.set("new", "[9]", ConfigType::Json, t(1)),
        Err(StoreError::Io { .. })
    ));
    unchanged(&store);
    FAIL_AT.with(|c| c.set(Some(FailAt::BeforeRename)));
    assert!(matches!(store.delete("a"), Err(StoreError::Io { .. })));
    unchanged(&store);
    FAIL_AT.with(|c| c.set(Some(FailAt::Remove)));
    assert!(matches!(store.delete_all(), Err(StoreError::Io { .. })));
    unchanged(&store);
    let names: Vec<_> = fs::read_dir(f.path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["agent.store"], "no temporary files left");
}

#[test]
fn an_unwritable_location_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    let mut store = AgentStore::open(sub.join("agent.store")).unwrap();
    fs::write(&sub, "x").unwrap(); // the store's directory cannot be created now
    assert!(matches!(
        store.set("a", "[]", ConfigType::Json, t(0)),
        Err(StoreError::Io { .. })
    ));
    assert!(store.is_empty());
    assert!(matches!(
        AgentStore::open(sub.join("agent.store")),
        Err(StoreError::Io { .. })
    ));
    assert!(
        matches!(AgentStore::open(dir.path()), Err(StoreError::Io { .. })),
        "a directory is not a store"
    );
}
