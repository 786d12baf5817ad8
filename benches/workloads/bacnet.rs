//! The BACnet workload: the `"bacnet"` driver scraping a real bacpypes3 device
//! (`tests/support/bacnet_device.py` on 127.0.0.2, the tests' device), against rusty-bacnet's
//! client sending the same ReadPropertyMultiple itself as the raw baseline.
//!
//! | figure | what |
//! |--------|------|
//! | `bacnet.scrape.rpm_p50_us` | one `scrape_all` of [`POINTS`] points (4 objects × `presentValue`, `objectName`, `objectType`, `objectIdentifier`: what every bacpypes3 object has) in one ReadPropertyMultiple, decoded to `Value`s |
//! | `baseline.bacnet_client_rpm_p50_us` | the same ReadPropertyMultiple from a bare `BACnetClient`, bytes not decoded |
//! | `bacnet.scrape.ratio_to_raw` | the first / the second: what the driver adds |
//! | `bacnet.scrape.rp_p50_us` | the same scrape with `use_read_multiple: false` (one ReadProperty a point) |
//!
//! The three run interleaved, round by round, against one device, so they share one
//! machine phase. The device is Python: its time dominates all three.
//!
//! Wiring (the `perf` example): `#[cfg(feature = "bacnet")] pub(crate) mod bacnet;` in
//! `workloads/mod.rs`, then `workloads::bacnet::scrape(&python, rounds).await` with the VOLTTRON
//! venv's Python (it must have bacpypes3), and [`BacnetFigures::report`].

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bacnet_client::client::BACnetClient;
use bacnet_types::constructed::{PropertyReference, ReadAccessSpecification};
use bacnet_types::enums::{ObjectType, PropertyIdentifier};
use bacnet_types::primitives::ObjectIdentifier;
use volttron::agents::driver::bacnet::factory;
use volttron::agents::driver::{DeviceSetup, Driver, Registry};
use volttron::config_store::{ConfigType, parse};
use volttron::core::Value;

/// Points a scrape reads.
pub(crate) const POINTS: usize = 16;

const OBJECTS: [(&str, ObjectType); 4] = [
    ("analogValue", ObjectType::ANALOG_VALUE),
    ("analogInput", ObjectType::ANALOG_INPUT),
    ("binaryValue", ObjectType::BINARY_VALUE),
    ("multiStateValue", ObjectType::MULTI_STATE_VALUE),
];

const PROPERTIES: [(&str, PropertyIdentifier); 4] = [
    ("presentValue", PropertyIdentifier::PRESENT_VALUE),
    ("objectName", PropertyIdentifier::OBJECT_NAME),
    ("objectType", PropertyIdentifier::OBJECT_TYPE),
    ("objectIdentifier", PropertyIdentifier::OBJECT_IDENTIFIER),
];

/// The figures of one run, in microseconds (p50 over the rounds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BacnetFigures {
    /// `bacnet.scrape.rpm_p50_us`.
    pub(crate) rpm_p50_us: f64,
    /// `baseline.bacnet_client_rpm_p50_us`.
    pub(crate) raw_rpm_p50_us: f64,
    /// `bacnet.scrape.rp_p50_us`.
    pub(crate) rp_p50_us: f64,
}

impl BacnetFigures {
    /// The figures as `(name, value)`, the ratio included.
    pub(crate) fn report(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("bacnet.scrape.rpm_p50_us", self.rpm_p50_us),
            ("baseline.bacnet_client_rpm_p50_us", self.raw_rpm_p50_us),
            (
                "bacnet.scrape.ratio_to_raw",
                self.rpm_p50_us / self.raw_rpm_p50_us,
            ),
            ("bacnet.scrape.rp_p50_us", self.rp_p50_us),
        ]
    }
}

/// Starts the device, runs `rounds` interleaved rounds, stops the device.
pub(crate) async fn scrape(python: &Path, rounds: usize) -> BacnetFigures {
    let (mut child, port) = start_device(python);
    let address = format!("127.0.0.2:{port}");
    let mut rpm = driver(&address, true);
    let mut rp = driver(&address, false);
    let raw = BACnetClient::bip_builder()
        .interface(Ipv4Addr::LOCALHOST)
        .port(0)
        .apdu_timeout_ms(5000)
        .apdu_retries(0)
        .build()
        .await
        .expect("bind the raw client");
    let [a, b, c, d] = [127u8, 0, 0, 2];
    let [hi, lo] = port.to_be_bytes();
    let mac = [a, b, c, d, hi, lo];
    let (mut t_rpm, mut t_raw, mut t_rp) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds + 1 {
        let started = Instant::now();
        let values = rpm.scrape_all().await.expect("RPM scrape");
        let rpm_time = started.elapsed();
        assert_eq!(values.len(), POINTS, "{values:?}");

        let started = Instant::now();
        let ack = raw.read_property_multiple(&mac, specs()).await.expect("raw RPM");
        let raw_time = started.elapsed();
        assert_eq!(ack.list_of_read_access_results.len(), POINTS);

        let started = Instant::now();
        let values = rp.scrape_all().await.expect("RP scrape");
        let rp_time = started.elapsed();
        assert_eq!(values.len(), POINTS);
        // Round 0 warms up (binds the drivers' sockets).
        if round > 0 {
            t_rpm.push(rpm_time);
            t_raw.push(raw_time);
            t_rp.push(rp_time);
        }
    }
    drop(raw);
    let _ = child.kill();
    let _ = child.wait();
    BacnetFigures {
        rpm_p50_us: p50_us(&mut t_rpm),
        raw_rpm_p50_us: p50_us(&mut t_raw),
        rp_p50_us: p50_us(&mut t_rp),
    }
}

fn specs() -> Vec<ReadAccessSpecification> {
    OBJECTS
        .iter()
        .flat_map(|(_, object_type)| {
            PROPERTIES
                .iter()
                .map(move |(_, property)| ReadAccessSpecification {
                    object_identifier: ObjectIdentifier::new(*object_type, 1).expect("object id"),
                    list_of_property_references: vec![PropertyReference {
                        property_identifier: *property,
                        property_array_index: None,
                    }],
                })
        })
        .collect()
}

fn driver(address: &str, use_read_multiple: bool) -> Box<dyn Driver> {
    let mut csv = String::from("Volttron Point Name,BACnet Object Type,Property,Index,Writable\n");
    for (object, _) in OBJECTS {
        for (property, _) in PROPERTIES {
            csv.push_str(&format!("{object}_{property},{object},{property},1,FALSE\n"));
        }
    }
    let rows = parse(ConfigType::Csv, &csv).expect("registry CSV");
    let registry = Registry::parse("bench/bacnet", "bench.csv", &rows, true).expect("registry");
    let config = Value::from_json_str(&format!(
        r#"{{"device_address": "{address}", "device_id": 599, "local_address": "127.0.0.1:0", "use_read_multiple": {use_read_multiple}}}"#
    ))
    .expect("driver_config");
    factory(&DeviceSetup {
        device: "bench/bacnet",
        driver_config: &config,
        registry: &registry,
        timeout: Duration::from_secs(5),
        clock: &volttron::Clock::real(),
    })
    .expect("the bacnet driver")
}

/// The tests' device on a free UDP port of 127.0.0.2, once it says `ready`.
fn start_device(python: &Path) -> (Child, u16) {
    let port = UdpSocket::bind("127.0.0.2:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/bacnet_device.py");
    let mut child = Command::new(python)
        .arg(script)
        .args(["--address", &format!("127.0.0.2/32:{port}"), "--instance", "599"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the bacpypes3 device");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the device's first line");
    assert_eq!(line.trim(), "ready", "the bacpypes3 device did not start");
    (child, port)
}

fn p50_us(times: &mut [Duration]) -> f64 {
    times.sort();
    times
        .get(times.len() / 2)
        .map_or(f64::NAN, |t| t.as_secs_f64() * 1e6)
}
