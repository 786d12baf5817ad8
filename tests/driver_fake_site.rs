//! The platform driver with VOLTTRON's fake interface, on the virtual clock: a whole site
//! configured in the config store as VOLTTRON configures it, scraped for an hour in
//! milliseconds and stored by the SQLite historian, every point queryable; the driver's
//! RPCs; bad configurations that stop only their own device.
#![cfg(all(feature = "driver", feature = "historian"))]

use std::time::Duration;

use volttron::agents::SqliteHistorian;
use volttron::agents::driver::{self, PlatformDriver};
use volttron::agents::historian;
use volttron::prelude::*;
use volttron::testing::TestPlatform;

const DEVICES: usize = 50;
const POINTS: usize = 20;

/// A registry of `POINTS` points: the first writable, every type VOLTTRON's fake driver has.
fn site_registry() -> String {
    let mut csv = String::from(
        "Point Name,Volttron Point Name,Units,Units Details,Writable,Starting Value,Type,Notes\n",
    );
    for i in 0..POINTS {
        let (kind, start) = match i % 4 {
            0 => ("float", format!("{}.5", 60 + i)),
            1 => ("integer", format!("{i}")),
            2 => ("boolean", "TRUE".to_owned()),
            _ => ("string", format!("mode{i}")),
        };
        let writable = if i < 2 { "TRUE" } else { "FALSE" };
        csv.push_str(&format!(
            "p{i},Point{i},units{i},,{writable},{start},{kind},note\n"
        ));
    }
    csv
}

async fn store(tp: &TestPlatform, name: &str, raw: &str, kind: &str) {
    tp.call(
        "config.store",
        "set_config",
        (driver::IDENTITY, name.to_owned(), raw.to_owned(), kind.to_owned()),
    )
    .await
    .unwrap_or_else(|e| panic!("storing {name}: {e}"));
}

fn device_entry(interval: u32, registry: &str) -> String {
    format!(
        r#"{{"driver_config": {{}}, "driver_type": "fake", "registry_config": "config://{registry}",
            "interval": {interval}, "timezone": "UTC", "heart_beat_point": "Point1"}}"#
    )
}

async fn site() -> TestPlatform {
    let tp = TestPlatform::builder().services(true).start().await;
    store(
        &tp,
        "config",
        r#"{"driver_scrape_interval": 0.1, "publish_depth_first": false}"#,
        "json",
    )
    .await;
    store(&tp, "site.csv", &site_registry(), "csv").await;
    for d in 0..DEVICES {
        store(
            &tp,
            &format!("devices/campus/hq/unit{d:02}"),
            &device_entry(60, "site.csv"),
            "json",
        )
        .await;
    }
    tp
}

#[volttron::test]
async fn an_hour_of_a_fifty_device_site_on_the_virtual_clock() {
    let tp = site().await;
    let all = tp.capture("devices/campus/hq/");
    let start = tp.now();
    let db = tempfile::tempdir().unwrap();
    tp.spawn(
        historian::IDENTITY,
        SqliteHistorian::new(db.path().join("site.sqlite")),
    )
    .await
    .unwrap();
    tp.spawn(driver::IDENTITY, PlatformDriver::new()).await.unwrap();
    tp.settle().await;
    let wall = std::time::Instant::now();
    tp.advance(Duration::from_secs(3600)).await;
    let elapsed = wall.elapsed();

    let pubs = all.publications();
    // Every device once per minute: 60 rounds (the first boundary after the start, ..).
    assert_eq!(pubs.len(), DEVICES * 60, "one `all` per device per minute");
    let mut rounds = std::collections::BTreeMap::<String, usize>::new();
    for p in &pubs {
        assert!(p.topic.as_str().ends_with("/all"), "{}", p.topic);
        let values = p.message[0].as_map().unwrap();
        assert_eq!(values.len(), POINTS);
        assert_eq!(p.message[0]["Point0"].as_f64(), Some(60.5));
        assert_eq!(p.message[0]["Point2"], Value::Bool(true));
        assert_eq!(p.message[1]["Point0"]["units"], Value::from("units0"));
        assert_eq!(p.message[1]["Point0"]["type"], Value::from("float"));
        assert_eq!(p.message[1]["Point3"]["type"], Value::from("string"));
        let sync = p
            .header("SynchronizedTimeStamp")
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        *rounds.entry(sync).or_default() += 1;
    }
    // The first round is partial when the hour starts inside it (the devices whose slot had
    // already passed wait for the next one), and so is the last; every other is complete.
    let complete: Vec<&String> = rounds
        .iter()
        .filter(|(_, n)| **n == DEVICES)
        .map(|(r, _)| r)
        .collect();
    assert!(complete.len() >= 59, "{rounds:?}");
    assert!(rounds.values().all(|n| *n <= DEVICES));
    let mut per_device = std::collections::BTreeMap::<String, usize>::new();
    for p in &pubs {
        *per_device.entry(p.topic.to_string()).or_default() += 1;
    }
    assert!(per_device.values().all(|n| *n == 60), "{per_device:?}");
    // Staggered: in a round, device 49 is read 4.9 s after device 0.
    let t = |p: &Publication| {
        chrono::DateTime::parse_from_rfc3339(p.header("TimeStamp").unwrap().as_str().unwrap()).unwrap()
    };
    let round = complete[1].as_str();
    let of = |unit: &str| {
        pubs.iter()
            .find(|p| {
                p.topic.as_str().contains(unit)
                    && p.header("SynchronizedTimeStamp").unwrap().as_str() == Some(round)
            })
            .unwrap()
            .clone()
    };
    let (first, last) = (of("unit00"), of("unit49"));
    assert_eq!(
        (t(&last) - t(&first)).num_milliseconds(),
        4900,
        "{} {} round {round}",
        t(&first),
        t(&last)
    );
    assert_eq!(
        t(&first).to_rfc3339(),
        chrono::DateTime::parse_from_rfc3339(round).unwrap().to_rfc3339()
    );
    assert!(tp.now() - start >= chrono::Duration::seconds(3600));

    // All stored: 1,000 topics, 60 readings each, as VOLTTRON's historian answers.
    tp.call(historian::IDENTITY, "flush", ()).await.unwrap();
    let topics = tp.call(historian::IDENTITY, "get_topic_list", ()).await.unwrap();
    assert_eq!(topics.as_list().unwrap().len(), DEVICES * POINTS);
    let q = tp
        .call(
            historian::IDENTITY,
            "query",
            (
                "campus/hq/unit07/Point0",
                "2000-01-01T00:00:00Z",
                "2100-01-01T00:00:00Z",
            ),
        )
        .await
        .unwrap();
    let values = q["values"].as_list().unwrap();
    assert_eq!(values.len(), 60, "{q}");
    assert_eq!(values[0][1].as_f64(), Some(60.5));
    assert_eq!(q["metadata"]["units"], Value::from("units0"));
    // Every reading of an hour, for a list of topics (VOLTTRON's default count is 1000).
    let list: Vec<String> = (0..DEVICES)
        .map(|d| format!("campus/hq/unit{d:02}/Point3"))
        .collect();
    let q = tp
        .call(
            historian::IDENTITY,
            "query",
            (list, "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"),
        )
        .await
        .unwrap();
    let by_topic = q["values"].as_map().unwrap();
    assert_eq!(by_topic.len(), DEVICES);
    assert!(by_topic.values().all(|v| v.as_list().unwrap().len() == 60), "{q}");
    let status = tp.call(historian::IDENTITY, "status", ()).await.unwrap();
    assert_eq!(
        status["written"].as_i64(),
        Some((DEVICES * POINTS * 60) as i64),
        "{status}"
    );
    eprintln!("an hour of {DEVICES} × {POINTS} points: {elapsed:?} of wall time");
    assert_eq!(
        tp.call(driver::IDENTITY, "health.get_status", ()).await.unwrap()["status"],
        Value::from("GOOD")
    );
    tp.shutdown().await;
}

#[volttron::test]
async fn rpcs_as_volttrons_platform_driver() {
    let tp = site().await;
    tp.spawn(driver::IDENTITY, PlatformDriver::new()).await.unwrap();
    tp.settle().await;
    let d = "campus/hq/unit03";
    let v = tp
        .call(driver::IDENTITY, "get_point", (d, "Point0"))
        .await
        .unwrap();
    assert_eq!(v.as_f64(), Some(60.5));
    // The point in the path, VOLTTRON's other spelling.
    let v = tp
        .call(driver::IDENTITY, "get_point", (format!("{d}/Point1"),))
        .await
        .unwrap();
    assert_eq!(v, Value::Int(1));
    let v = tp
        .call(driver::IDENTITY, "set_point", (d, "Point0", 72.25))
        .await
        .unwrap();
    assert_eq!(v.as_f64(), Some(72.25));
    let all = tp.call(driver::IDENTITY, "scrape_all", (d,)).await.unwrap();
    assert_eq!(all["Point0"].as_f64(), Some(72.25));
    assert_eq!(all.as_map().unwrap().len(), POINTS);
    // Read-only points are refused, with the point named.
    let e = tp
        .call(driver::IDENTITY, "set_point", (d, "Point5", 1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("\"Point5\" is not writable"), "{e}");
    let e = tp
        .call(driver::IDENTITY, "get_point", (d, "Nope"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no point \"Nope\""), "{e}");
    let e = tp
        .call(driver::IDENTITY, "get_point", ("campus/hq/none", "Point0"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no device"), "{e}");
    let e = tp
        .call(driver::IDENTITY, "set_point", (d, "Point1", "eleven"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not an integer"), "{e}");

    // get_multiple_points: a device, a list of topics, pairs; errors beside values.
    let r = tp
        .call(
            driver::IDENTITY,
            "get_multiple_points",
            (d, vec!["Point0", "Point9", "Missing"]),
        )
        .await
        .unwrap();
    assert_eq!(r[0][format!("{d}/Point0").as_str()].as_f64(), Some(72.25));
    assert!(r[0][format!("{d}/Point9").as_str()] != Value::Null);
    assert!(
        r[1][format!("{d}/Missing").as_str()]
            .as_str()
            .unwrap()
            .contains("no point")
    );
    let topics = Value::List(vec![
        Value::from(format!("{d}/Point0")),
        Value::List(vec![Value::from("campus/hq/unit04"), Value::from("Point1")]),
    ]);
    let r = tp
        .call(driver::IDENTITY, "get_multiple_points", (topics,))
        .await
        .unwrap();
    assert_eq!(r[0].as_map().unwrap().len(), 2, "{r}");

    let errors = tp
        .call(
            driver::IDENTITY,
            "set_multiple_points",
            (d, vec![("Point1", Value::Int(7)), ("Point4", Value::Int(1))]),
        )
        .await
        .unwrap();
    assert_eq!(errors.as_map().unwrap().keys().collect::<Vec<_>>(), ["Point4"]);
    assert_eq!(
        tp.call(driver::IDENTITY, "get_point", (d, "Point1"))
            .await
            .unwrap(),
        Value::Int(7)
    );

    // Reverts: to the registry's starting values.
    tp.call(driver::IDENTITY, "revert_point", (d, "Point0"))
        .await
        .unwrap();
    assert_eq!(
        tp.call(driver::IDENTITY, "get_point", (d, "Point0"))
            .await
            .unwrap()
            .as_f64(),
        Some(60.5)
    );
    tp.call(driver::IDENTITY, "set_point", (d, "Point0", 1.0))
        .await
        .unwrap();
    tp.call(driver::IDENTITY, "revert_device", (d,)).await.unwrap();
    let all = tp.call(driver::IDENTITY, "scrape_all", (d,)).await.unwrap();
    assert_eq!(
        (all["Point0"].as_f64(), all["Point1"].clone()),
        (Some(60.5), Value::Int(1))
    );

    // heart_beat toggles each device's heartbeat point (Point1 here): 0, 1, 0...
    tp.call(driver::IDENTITY, "heart_beat", ()).await.unwrap();
    tp.settle().await;
    let first = tp
        .call(driver::IDENTITY, "get_point", (d, "Point1"))
        .await
        .unwrap();
    tp.call(driver::IDENTITY, "heart_beat", (vec![d],)).await.unwrap();
    tp.settle().await;
    let second = tp
        .call(driver::IDENTITY, "get_point", (d, "Point1"))
        .await
        .unwrap();
    assert_eq!((first, second), (Value::Int(1), Value::Int(0)));
    tp.shutdown().await;
}

#[volttron::test]
async fn a_bad_registry_or_entry_stops_only_its_device_and_says_where() {
    let tp = site().await;
    // Row 3 of this registry has a Writable that is not a boolean.
    store(
        &tp,
        "broken.csv",
        "Volttron Point Name,Units,Writable,Starting Value,Type\nTemp,degF,FALSE,70,float\nSet,degF,perhaps,70,float\n",
        "csv",
    )
    .await;
    store(
        &tp,
        "devices/campus/hq/broken",
        &device_entry(60, "broken.csv"),
        "json",
    )
    .await;
    store(
        &tp,
        "devices/campus/hq/wrongtype",
        r#"{"driver_type": "modbusx", "registry_config": "config://site.csv"}"#,
        "json",
    )
    .await;
    store(
        &tp,
        "devices/campus/hq/badinterval",
        r#"{"driver_type": "fake", "registry_config": "config://site.csv", "interval": "soon"}"#,
        "json",
    )
    .await;
    let all = tp.capture("devices/campus/hq/");
    tp.spawn(driver::IDENTITY, PlatformDriver::new()).await.unwrap();
    tp.settle().await;
    tp.advance(Duration::from_secs(60)).await;
    assert_eq!(all.len(), DEVICES, "the good devices publish");
    let status = tp.call(driver::IDENTITY, "device_status", ()).await.unwrap();
    let errors = status["config_errors"].as_map().unwrap();
    assert_eq!(
        errors["devices/campus/hq/broken"].as_str().unwrap(),
        "device campus/hq/broken: registry broken.csv, row 3, column \"Writable\": \"perhaps\" is not TRUE or FALSE"
    );
    assert!(
        errors["devices/campus/hq/wrongtype"]
            .as_str()
            .unwrap()
            .contains("\"modbusx\" is not an interface")
    );
    assert!(
        errors["devices/campus/hq/badinterval"]
            .as_str()
            .unwrap()
            .contains("\"interval\"")
    );
    let health = tp.call(driver::IDENTITY, "health.get_status", ()).await.unwrap();
    assert_eq!(health["status"], Value::from("BAD"));
    let context = Value::from_json_str(health["context"].as_str().unwrap()).unwrap();
    assert_eq!(
        context["config_errors"], status["config_errors"],
        "the health says what device_status says"
    );
    // Fixing the entry brings the device up and clears its error.
    store(
        &tp,
        "broken.csv",
        "Volttron Point Name,Units,Writable,Starting Value,Type\nTemp,degF,FALSE,70,float\nSet,degF,TRUE,70,float\n",
        "csv",
    )
    .await;
    tp.settle().await;
    let status = tp.call(driver::IDENTITY, "device_status", ()).await.unwrap();
    assert!(
        !status["config_errors"]
            .as_map()
            .unwrap()
            .contains_key("devices/campus/hq/broken"),
        "{status}"
    );
    assert!(
        status["devices"]
            .as_list()
            .unwrap()
            .contains(&Value::from("campus/hq/broken"))
    );
    // Deleting the others leaves the driver GOOD.
    for name in ["devices/campus/hq/wrongtype", "devices/campus/hq/badinterval"] {
        tp.call("config.store", "delete_config", (driver::IDENTITY, name))
            .await
            .unwrap();
    }
    tp.settle().await;
    let health = tp.call(driver::IDENTITY, "health.get_status", ()).await.unwrap();
    assert_eq!(health["status"], Value::from("GOOD"), "{health}");
    tp.shutdown().await;
}
