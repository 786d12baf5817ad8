//! The `"bacnet"` interface against a real BACnet/IP device: bacpypes3
//! (`.ci/python-requirements.txt`) running `tests/support/bacnet_device.py` on 127.0.0.2,
//! unicast from the driver (bound to 0.0.0.0, or 127.0.0.1, on a port of the system's).
//!
//! Each test starts its own device on its own UDP port (bacpypes3 binds with SO_REUSEPORT,
//! so two devices on one port would silently share its traffic): ports come from a counter
//! of this process, each checked free by binding it first.
//!
//! Without the venv or bacpypes3 a test skips with a `skipped:` line; with `CI=true` it
//! fails and says how to install them.
#![cfg(feature = "bacnet")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use volttron::agents::driver::bacnet::factory;
use volttron::agents::driver::{
    self, DeviceSetup, Driver, DriverError, PlatformDriver, PointChange, Registry,
};
use volttron::config_store::{ConfigType, parse};
use volttron::core::Value;
use volttron::testing::TestPlatform;

/// How long a device may take to start, or to answer one command.
const DEADLINE: Duration = Duration::from_secs(20);

const DEVICE_HOST: &str = "127.0.0.2";

const REGISTRY: &str = "\
Reference Point Name,Volttron Point Name,Units,Unit Details,BACnet Object Type,Property,Writable,Index,Write Priority,Notes
SP,Setpoint,degreesCelsius,,analogValue,presentValue,TRUE,1,8,commandable
T,Temperature,degreesCelsius,,analogInput,presentValue,FALSE,1,,
F,Fan,,,binaryValue,presentValue,TRUE,1,,commandable
M,Mode,,,multiStateValue,presentValue,FALSE,1,,
G,Ghost,,,analogValue,presentValue,TRUE,99,,no such object on the device
";

/// Temperature's changes are subscribed to (COV Flag); Setpoint's are not.
const COV_REGISTRY: &str = "\
Volttron Point Name,Units,BACnet Object Type,Property,Writable,Index,COV Flag
Temperature,degreesCelsius,analogInput,presentValue,FALSE,1,TRUE
Setpoint,degreesCelsius,analogValue,presentValue,TRUE,1,FALSE
";

/// The venv's Python, if it has bacpypes3 (see the module docs for what happens if not).
fn require_bacpypes3(test: &str) -> Option<PathBuf> {
    let python = common::require_python(test)?;
    let ok = Command::new(&python)
        .args(["-c", "import bacpypes3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    let why = format!(
        "{test}: {} has no bacpypes3 (the venv predates its pin in .ci/python-requirements.txt); rebuild it with: bash .ci/test --setup-only",
        python.display()
    );
    assert!(!common::in_ci(), "{why}");
    println!("skipped: {why}");
    None
}

/// A UDP port on `host` that no other test of this process is given and nothing holds now.
fn udp_port(host: &str) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 300) as u16 * 100;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 10_000;
        if UdpSocket::bind((host, port)).is_ok() {
            return port;
        }
    }
}

/// A bacpypes3 device; killed when dropped (its stdin closing also ends it).
struct BacnetDevice {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    port: u16,
}

impl BacnetDevice {
    fn start(python: &Path, extra: &[&str]) -> BacnetDevice {
        let port = udp_port(DEVICE_HOST);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/bacnet_device.py");
        let address = format!("{DEVICE_HOST}/32:{port}");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--address", &address, "--instance", "599"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the bacpypes3 device");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut device = BacnetDevice {
            stdin: child.stdin.take(),
            child,
            lines,
            port,
        };
        let first = device.line();
        assert_eq!(first, "ready", "the device's first line");
        device
    }

    fn line(&mut self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(e) => {
                let status = self.child.try_wait();
                panic!("no line from the device within {DEADLINE:?} ({e}); exit status {status:?}")
            }
        }
    }

    /// A device-side command (see the script's docs); the text after `value `.
    fn ask(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        let answer = self.line();
        answer
            .strip_prefix("value ")
            .unwrap_or_else(|| panic!("{command}: {answer}"))
            .to_owned()
    }

    fn address(&self) -> String {
        format!("{DEVICE_HOST}:{}", self.port)
    }
}

impl Drop for BacnetDevice {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn driver(address: &str, extra_config: &str, timeout: Duration) -> Box<dyn Driver> {
    driver_with(address, extra_config, timeout, REGISTRY)
}

fn driver_with(address: &str, extra_config: &str, timeout: Duration, registry: &str) -> Box<dyn Driver> {
    let config = Value::from_json_str(&format!(
        r#"{{"device_address": "{address}", "device_id": 599{extra_config}}}"#
    ))
    .unwrap();
    let rows = parse(ConfigType::Csv, registry).unwrap();
    let registry = Registry::parse("campus/building/ahu1", "ahu1.csv", &rows, true).unwrap();
    factory(&DeviceSetup {
        device: "campus/building/ahu1",
        driver_config: &config,
        registry: &registry,
        timeout,
        clock: &volttron::Clock::real(),
    })
    .unwrap()
}

#[tokio::test]
async fn get_point_reads_each_object_type() {
    let Some(python) = require_bacpypes3("get_point_reads_each_object_type") else {
        return;
    };
    let device = BacnetDevice::start(&python, &[]);
    let mut driver = driver(&device.address(), "", Duration::from_secs(5));
    assert_eq!(
        driver.get_point("Temperature").await.unwrap(),
        Value::Float(19.25)
    );
    assert_eq!(driver.get_point("Setpoint").await.unwrap(), Value::Float(21.5));
    assert_eq!(driver.get_point("Fan").await.unwrap(), Value::Int(0));
    assert_eq!(driver.get_point("Mode").await.unwrap(), Value::Int(2));
    assert_eq!(
        driver.get_point("Nope").await.unwrap_err(),
        DriverError::UnknownPoint("Nope".into())
    );
}

#[tokio::test]
async fn scrape_all_batches_read_property_multiple_and_leaves_out_a_refused_point() {
    let Some(python) = require_bacpypes3("scrape_all_batches_read_property_multiple") else {
        return;
    };
    let mut device = BacnetDevice::start(&python, &[]);
    let mut driver = driver(
        &device.address(),
        r#", "max_per_request": 2"#,
        Duration::from_secs(5),
    );
    let values = driver.scrape_all().await.unwrap();
    let expected: Vec<(&str, Value)> = vec![
        ("Fan", Value::Int(0)),
        ("Mode", Value::Int(2)),
        ("Setpoint", Value::Float(21.5)),
        ("Temperature", Value::Float(19.25)),
    ];
    let got: Vec<(&str, Value)> = values.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    assert_eq!(got, expected, "Ghost (analog-value 99) is left out");
    // 5 points, 2 a request: 3 ReadPropertyMultiple. The last asks for Ghost alone, and a
    // device answers a request none of whose objects exists with an Error PDU: its points are
    // then read one by one, so one ReadProperty.
    assert_eq!(device.ask("count ReadPropertyMultipleRequest"), "3");
    assert_eq!(device.ask("count ReadPropertyRequest"), "1");
}

#[tokio::test]
async fn scrape_all_falls_back_to_read_property_when_the_device_rejects_rpm() {
    let Some(python) = require_bacpypes3("scrape_all_falls_back_to_read_property") else {
        return;
    };
    let mut device = BacnetDevice::start(&python, &["--no-rpm"]);
    let mut driver = driver(&device.address(), "", Duration::from_secs(5));
    let first = driver.scrape_all().await.unwrap();
    assert_eq!(first.len(), 4, "{first:?}");
    assert_eq!(first["Setpoint"], Value::Float(21.5));
    let second = driver.scrape_all().await.unwrap();
    assert_eq!(first, second);
    // One rejected ReadPropertyMultiple, then ReadProperty only: 5 points, two scrapes.
    assert_eq!(device.ask("count ReadPropertyMultipleRequest"), "1");
    assert_eq!(device.ask("count ReadPropertyRequest"), "10");
}

#[tokio::test]
async fn scrape_all_halves_its_batches_when_the_answer_is_too_large() {
    let Some(python) = require_bacpypes3("scrape_all_halves_its_batches") else {
        return;
    };
    let mut device = BacnetDevice::start(&python, &["--no-segmentation"]);
    // Eight reads of a 300-character name: about 2,450 bytes, over one APDU (1,476); four fit.
    let mut registry = String::from("Volttron Point Name,BACnet Object Type,Property,Index\n");
    for i in 0..8 {
        registry.push_str(&format!("Name{i},analogValue,objectName,2\n"));
    }
    let mut driver = driver_with(&device.address(), "", Duration::from_secs(5), &registry);
    let values = driver.scrape_all().await.unwrap();
    assert_eq!(values.len(), 8, "{values:?}");
    assert!(
        values
            .values()
            .all(|v| v.as_str().is_some_and(|s| s.len() == 300))
    );
    // One aborted request of 8, then two of 4; the next scrape goes straight to 4.
    assert_eq!(device.ask("count ReadPropertyMultipleRequest"), "3");
    assert_eq!(driver.scrape_all().await.unwrap(), values);
    assert_eq!(device.ask("count ReadPropertyMultipleRequest"), "5");
}

#[tokio::test]
async fn set_point_writes_at_the_write_priority_and_revert_relinquishes_it() {
    let Some(python) = require_bacpypes3("set_point_writes_at_the_write_priority") else {
        return;
    };
    let mut device = BacnetDevice::start(&python, &[]);
    let mut driver = driver(&device.address(), "", Duration::from_secs(5));

    assert_eq!(
        driver.set_point("Setpoint", Value::Float(23.75)).await.unwrap(),
        Value::Float(23.75)
    );
    assert_eq!(driver.get_point("Setpoint").await.unwrap(), Value::Float(23.75));
    // The device holds it at the registry's Write Priority (8), not at the default 16.
    assert_eq!(device.ask("get analog-value,1 priority-array 8"), "23.75");
    assert_eq!(device.ask("get analog-value,1 priority-array 16"), "null");
    assert_eq!(device.ask("get analog-value,1 present-value"), "23.75");

    assert_eq!(
        driver.set_point("Fan", Value::Bool(true)).await.unwrap(),
        Value::Int(1)
    );
    assert_eq!(device.ask("get binary-value,1 present-value"), "active");
    assert_eq!(device.ask("get binary-value,1 priority-array 16"), "active");

    assert!(driver.revert_point("Setpoint").await.unwrap());
    assert_eq!(device.ask("get analog-value,1 priority-array 8"), "null");
    assert_eq!(
        driver.get_point("Setpoint").await.unwrap(),
        Value::Float(21.5),
        "relinquish-default"
    );
    assert!(driver.revert_point("Fan").await.unwrap());
    assert_eq!(device.ask("get binary-value,1 present-value"), "inactive");

    assert_eq!(
        driver
            .set_point("Temperature", Value::Float(1.0))
            .await
            .unwrap_err(),
        DriverError::NotWritable("Temperature".into())
    );
    assert!(matches!(
        driver.set_point("Setpoint", Value::String("warm".into())).await,
        Err(DriverError::BadValue { .. })
    ));
    assert_eq!(device.ask("count WritePropertyRequest"), "4");
}

#[tokio::test]
async fn an_unknown_object_is_refused_with_the_bacnet_error() {
    let Some(python) = require_bacpypes3("an_unknown_object_is_refused") else {
        return;
    };
    let device = BacnetDevice::start(&python, &[]);
    // From 127.0.0.1 explicitly (the other tests bind the default, 0.0.0.0 and a port of
    // the system's).
    let mut driver = driver(
        &device.address(),
        r#", "local_address": "127.0.0.1:0""#,
        Duration::from_secs(5),
    );
    assert_eq!(
        driver.get_point("Ghost").await.unwrap_err(),
        DriverError::Refused("BACnet error: object / unknown-object".into())
    );
    let write = driver.set_point("Ghost", Value::Float(1.0)).await.unwrap_err();
    assert_eq!(
        write,
        DriverError::Refused("BACnet error: object / unknown-object".into())
    );
    // The device is fine: the next read works.
    assert_eq!(
        driver.get_point("Temperature").await.unwrap(),
        Value::Float(19.25)
    );
}

#[tokio::test]
async fn a_silent_address_times_out() {
    // Nothing listens there: no Python needed.
    let silent = format!("127.0.0.3:{}", udp_port("127.0.0.3"));
    let timeout = Duration::from_millis(300);
    let mut driver = driver(&silent, "", timeout);
    let started = Instant::now();
    assert_eq!(
        driver.get_point("Temperature").await.unwrap_err(),
        DriverError::Timeout(timeout)
    );
    assert_eq!(
        driver.scrape_all().await.unwrap_err(),
        DriverError::Timeout(timeout)
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= 2 * timeout && elapsed < 4 * timeout + Duration::from_secs(1),
        "{elapsed:?}"
    );
}

#[test]
fn bad_driver_config_is_a_config_error() {
    let rows = parse(ConfigType::Csv, REGISTRY).unwrap();
    let registry = Registry::parse("campus/building/ahu1", "ahu1.csv", &rows, true).unwrap();
    let config = Value::from_json_str(r#"{"device_address": "127.0.0.2"}"#).unwrap();
    let e = factory(&DeviceSetup {
        device: "campus/building/ahu1",
        driver_config: &config,
        registry: &registry,
        timeout: Duration::from_secs(1),
        clock: &volttron::Clock::real(),
    })
    .err()
    .unwrap();
    assert_eq!(e, DriverError::Config("device_id: required".into()));
    // min_priority 9 is above Setpoint's Write Priority 8: the row is named.
    let config =
        Value::from_json_str(r#"{"device_address": "127.0.0.2", "device_id": 1, "min_priority": 9}"#)
            .unwrap();
    let e = factory(&DeviceSetup {
        device: "campus/building/ahu1",
        driver_config: &config,
        registry: &registry,
        timeout: Duration::from_secs(1),
        clock: &volttron::Clock::real(),
    })
    .err()
    .unwrap();
    let DriverError::Registry(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!((e.row, e.column.as_str()), (2, "Write Priority"));
}

/// The next change of a feed, within the deadline.
async fn next_change(changes: &mut futures::stream::BoxStream<'static, PointChange>) -> PointChange {
    tokio::time::timeout(DEADLINE, changes.next())
        .await
        .expect("a COV notification within the deadline")
        .expect("the feed goes on")
}

#[tokio::test]
async fn cov_subscriptions_report_changes_of_the_flagged_objects() {
    let Some(python) = require_bacpypes3("cov_subscriptions_report_changes") else {
        return;
    };
    let mut device = BacnetDevice::start(&python, &[]);
    let mut flagged = driver_with(
        &device.address(),
        r#", "cov_lifetime": 60"#,
        Duration::from_secs(5),
        COV_REGISTRY,
    );
    let feed = flagged.subscribe_changes().await.unwrap().expect("a COV point");
    assert_eq!(feed.renew_after, Some(Duration::from_secs(57)));
    let mut changes = feed.changes;
    // The device notifies a new subscriber at once, then on each change of at least its
    // COV increment (0.5).
    let first = next_change(&mut changes).await;
    assert_eq!(
        (first.point.as_str(), first.value),
        ("Temperature", Value::Float(19.25))
    );
    assert_eq!(device.ask("set analog-input,1 present-value 23"), "23.0");
    assert_eq!(next_change(&mut changes).await.value, Value::Float(23.0));
    device.ask("set analog-input,1 present-value 23.2");
    device.ask("set analog-input,1 present-value 24");
    assert_eq!(
        next_change(&mut changes).await.value,
        Value::Float(24.0),
        "a change below the increment is not notified"
    );
    // Only the flagged object was subscribed to.
    assert_eq!(device.ask("count SubscribeCOVRequest"), "1");
    // No flagged point: nothing to subscribe to.
    let mut plain = driver(&device.address(), "", Duration::from_secs(5));
    assert!(plain.subscribe_changes().await.unwrap().is_none());
    // An object the device lacks is left out; the others still report. Only it: an error.
    let ghost = "Ghost,,analogValue,presentValue,TRUE,99,TRUE\n";
    let mut partly = driver_with(
        &device.address(),
        "",
        Duration::from_secs(5),
        &format!("{COV_REGISTRY}{ghost}"),
    );
    let mut changes = partly.subscribe_changes().await.unwrap().unwrap().changes;
    assert_eq!(next_change(&mut changes).await.point, "Temperature");
    assert_eq!(device.ask("count SubscribeCOVRequest"), "3");
    let mut only_ghost = driver_with(
        &device.address(),
        "",
        Duration::from_secs(5),
        &format!("Volttron Point Name,Units,BACnet Object Type,Property,Writable,Index,COV Flag\n{ghost}"),
    );
    let e = only_ghost.subscribe_changes().await.expect_err("refused");
    assert!(e.to_string().contains("unknown-object"), "{e}");
}

#[volttron::test]
async fn cov_changes_are_published_between_scrapes_and_the_subscription_renewed() {
    let Some(python) = require_bacpypes3("cov_changes_are_published_between_scrapes") else {
        return;
    };
    let mut device = BacnetDevice::start(&python, &[]);
    let tp = TestPlatform::builder().services(true).start().await;
    let entry = format!(
        r#"{{"driver_config": {{"device_address": "{}", "device_id": 599, "cov_lifetime": 60}},
            "driver_type": "bacnet", "registry_config": "config://ahu.csv", "interval": 3600}}"#,
        device.address()
    );
    for (name, raw, kind) in [
        ("ahu.csv", COV_REGISTRY.to_owned(), "csv"),
        ("devices/campus/hq/ahu1", entry, "json"),
    ] {
        tp.call("config.store", "set_config", (driver::IDENTITY, name, raw, kind))
            .await
            .unwrap();
    }
    let all = tp.capture("devices/campus/hq/ahu1/all");
    let point = tp.capture("devices/campus/hq/ahu1/Temperature");
    tp.spawn(driver::IDENTITY, PlatformDriver::new()).await.unwrap();
    // The first scrape is up to an hour away on the virtual clock: what is published now
    // comes from the device's notifications alone.
    let wait_for = |value: f64| {
        let all = &all;
        let tp = &tp;
        async move {
            let deadline = Instant::now() + DEADLINE;
            loop {
                tp.settle().await;
                if let Some(p) = all
                    .publications()
                    .into_iter()
                    .find(|p| p.message[0]["Temperature"].as_f64() == Some(value))
                {
                    return p;
                }
                assert!(Instant::now() < deadline, "no COV publication of {value}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let first = wait_for(19.25).await;
    assert_eq!(
        first.message.to_json_string(),
        r#"[{"Temperature":19.25},{"Temperature":{"type":"float","tz":"UTC","units":"degreesCelsius"}}]"#,
        "the point alone, as VOLTTRON's publish_cov_value"
    );
    assert!(first.header("TimeStamp").is_some() && first.header("Date").is_some());
    assert!(first.header("SynchronizedTimeStamp").is_none(), "not a scrape");
    device.ask("set analog-input,1 present-value 25.5");
    wait_for(25.5).await;
    assert!(
        point.is_empty(),
        "per-point topics only when publish_depth_first is on"
    );
    // Renewed 3 s before the 60 s lifetime ends.
    assert_eq!(device.ask("count SubscribeCOVRequest"), "1");
    tp.advance(Duration::from_secs(57)).await;
    let deadline = Instant::now() + DEADLINE;
    while device.ask("count SubscribeCOVRequest") != "2" {
        assert!(Instant::now() < deadline, "not renewed");
        tp.settle().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tp.shutdown().await;
}
