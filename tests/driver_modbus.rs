//! The Modbus TCP interface of the platform driver against a real device: pymodbus
//! (`tests/support/modbus_server.py`, pymodbus pinned in `.ci/python-requirements.txt`, in
//! the venv `bash .ci/test` builds). The device's registers are laid out by Python's
//! `struct` (as VOLTTRON's own Modbus driver reads them), so the driver's decoding is
//! checked against an independent encoder. Without the venv or pymodbus the tests that
//! need the device skip (and fail under `CI=true`, saying how to install it).

#![cfg(feature = "modbus")]

mod common;
#[path = "../benches/workloads/pymodbus.rs"]
mod pymodbus;
// The perf example's workload, run small here so it keeps working.
#[path = "../benches/workloads/modbus.rs"]
mod workload;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use volttron::agents::driver::modbus::{ModbusDriver, factory};
use volttron::agents::driver::{DeviceSetup, Driver, DriverError, PointKind, Registry};
use volttron::config_store::{ConfigType, parse};
use volttron::core::Value;

use pymodbus::ModbusServer;

/// The venv's Python with pymodbus, or `None` (skipped; a panic under `CI=true`).
fn require_pymodbus(test: &str) -> Option<PathBuf> {
    let python = common::require_python(test)?;
    match pymodbus::probe(&python) {
        Ok(()) => Some(python),
        Err(why) => {
            assert!(!common::in_ci(), "{test}: {why}");
            println!("skipped: {test}: {why}");
            None
        }
    }
}

/// The device: the points of both registries below, as Python's struct lays them out.
fn device_spec() -> Json {
    json!({
        "unit": 1,
        "sizes": {"coil": 16, "discrete_input": 16, "holding": 120, "input": 20},
        "points": [
            // VOLTTRON-style registry.
            {"table": "input", "address": 0, "format": ">f", "value": 72.5},
            {"table": "input", "address": 2, "format": ">H", "value": 65000},
            {"table": "input", "address": 3, "format": ">h", "value": -12},
            {"table": "input", "address": 4, "format": ">I", "value": 4_000_000_000u64},
            {"table": "input", "address": 6, "format": "<i", "value": -123_456},
            {"table": "input", "address": 8, "format": ">q", "value": -9_000_000_000_000_000i64},
            {"table": "input", "address": 12, "format": ">Q", "value": u64::MAX},
            {"table": "holding", "address": 0, "format": ">f", "value": 68.25, "word_order": "little"},
            {"table": "holding", "address": 2, "format": ">d", "value": std::f64::consts::PI, "word_order": "little"},
            {"table": "coil", "address": 3, "value": true},
            {"table": "discrete_input", "address": 1, "value": true},
            // modbus_tk-style registry.
            {"table": "holding", "address": 100, "words": [725]},
            {"table": "holding", "address": 101, "format": ">f", "value": 12.5, "word_order": "little"},
            {"table": "holding", "address": 103, "format": "<i", "value": -70_000},
            {"table": "holding", "address": 105, "format": "<I", "value": 305_419_896, "word_order": "little"},
            {"table": "holding", "address": 107, "format": ">q", "value": 21},
            {"table": "holding", "address": 111, "words": [9]},
            {"table": "input", "address": 16, "format": ">h", "value": -5},
            {"table": "coil", "address": 0, "value": false},
            {"table": "discrete_input", "address": 0, "value": true}
        ]
    })
}

const VOLTTRON_REGISTRY: &str = "\
Volttron Point Name,Units,Modbus Register,Writable,Point Address,Mixed Endian,Default Value
ZoneTemp,degF,>f,FALSE,0,FALSE,
Count,,>H,FALSE,2,,
Offset,,>h,FALSE,3,,
Energy,Wh,>I,FALSE,4,,
Delta,,<i,FALSE,6,,
Big,,>q,FALSE,8,,
UBig,,>Q,FALSE,12,,
Setpoint,degF,>f,TRUE,0,TRUE,65
Precise,,>d,TRUE,2,TRUE,
Fan,,BOOL,TRUE,3,,
Alarm,,BOOL,FALSE,1,,
";

const MODBUS_TK_REGISTRY: &str = "\
Volttron Point Name,Register Name,Point Address,Type,Table,Units,Writable,Transform,Byte Order,Word Order
SupplyTemp,supply_temp,40101,uint16,holding,degF,TRUE,scale(0.1),,
Power,power,40102,float,holding,kW,FALSE,,big,little
Flow,flow,40104,int32,analog_output_holding_registers,,FALSE,,little,big
Volume,volume,40106,uint32,holding_registers,,FALSE,,little,little
Runtime,runtime,0x9CAC,int64,holding,h,FALSE,scale(2),,
Level,level,40112,uint16,holding,%,FALSE,scale_int(0.5),,
Status,status,30017,int16,input_registers,,FALSE,,,
Enable,enable,1,bool,coils,,TRUE,,,
Door,door,10001,bool,discrete_inputs,,FALSE,,,
";

fn registry(csv: &str) -> Registry {
    let rows = parse(ConfigType::Csv, csv).expect("a CSV registry");
    Registry::parse("campus/building/rtu", "registry.csv", &rows, true).expect("a registry")
}

fn driver_config(port: u16, extra: Json) -> Value {
    let mut config = json!({"device_address": "127.0.0.1", "port": port, "slave_id": 1});
    if let (Json::Object(c), Json::Object(e)) = (&mut config, extra) {
        c.extend(e);
    }
    Value::from(config)
}

fn make(registry: &Registry, config: &Value, timeout: Duration) -> Result<ModbusDriver, DriverError> {
    ModbusDriver::new(&DeviceSetup {
        device: "campus/building/rtu",
        driver_config: config,
        registry,
        timeout,
        clock: &volttron::Clock::real(),
    })
}

#[tokio::test]
async fn scrape_reads_every_type_order_and_scale_in_batched_requests() {
    let Some(python) = require_pymodbus("scrape_reads_every_type_order_and_scale_in_batched_requests") else {
        return;
    };
    let server = ModbusServer::start(&python, &device_spec()).unwrap();

    let config = driver_config(server.port(), json!({}));
    let reg = registry(VOLTTRON_REGISTRY);
    let mut d = make(&reg, &config, Duration::from_secs(5)).unwrap();
    // Input 0..=15, holding 0..=5, coil 3, discrete input 1: one request each.
    assert_eq!(d.read_runs().len(), 4, "{:?}", d.read_runs());
    let v = d.scrape_all().await.unwrap();
    assert_eq!(v["ZoneTemp"], Value::Float(72.5));
    assert_eq!(v["Count"], Value::Int(65000));
    assert_eq!(v["Offset"], Value::Int(-12));
    assert_eq!(v["Energy"], Value::Int(4_000_000_000));
    assert_eq!(v["Delta"], Value::Int(-123_456));
    assert_eq!(v["Big"], Value::Int(-9_000_000_000_000_000));
    assert_eq!(v["UBig"], Value::UInt(u64::MAX));
    assert_eq!(v["Setpoint"], Value::Float(68.25));
    assert_eq!(v["Precise"], Value::Float(std::f64::consts::PI));
    assert_eq!(v["Fan"], Value::Bool(true));
    assert_eq!(v["Alarm"], Value::Bool(true));
    assert_eq!(v.len(), 11);
    let kinds: Vec<_> = d
        .points()
        .iter()
        .map(|p| (p.name.as_str(), p.kind, p.writable))
        .collect();
    assert!(kinds.contains(&("Fan", PointKind::Boolean, true)));
    assert!(kinds.contains(&("Count", PointKind::Integer, false)));
    assert_eq!(
        d.get_point("Precise").await.unwrap(),
        Value::Float(std::f64::consts::PI)
    );

    let config = driver_config(server.port(), json!({"addressing": "address"}));
    let reg = registry(MODBUS_TK_REGISTRY);
    let mut d = make(&reg, &config, Duration::from_secs(5)).unwrap();
    assert_eq!(d.read_runs().len(), 4, "{:?}", d.read_runs());
    let v = d.scrape_all().await.unwrap();
    assert_eq!(v["SupplyTemp"], Value::Float(72.5));
    assert_eq!(v["Power"], Value::Float(12.5));
    assert_eq!(v["Flow"], Value::Int(-70_000));
    assert_eq!(v["Volume"], Value::Int(305_419_896));
    assert_eq!(v["Runtime"], Value::Float(42.0));
    // scale_int truncates: 9 × 0.5 is 4.
    assert_eq!(v["Level"], Value::Int(4));
    assert_eq!(v["Status"], Value::Int(-5));
    assert_eq!(v["Enable"], Value::Bool(false));
    assert_eq!(v["Door"], Value::Bool(true));
    let supply = d.points().iter().find(|p| p.name == "SupplyTemp").unwrap();
    assert_eq!((supply.kind, supply.units.as_str()), (PointKind::Float, "degF"));
    server.stop();
}

#[tokio::test]
async fn writes_reach_the_device_scaled_back_and_range_checked() {
    let Some(python) = require_pymodbus("writes_reach_the_device_scaled_back_and_range_checked") else {
        return;
    };
    let server = ModbusServer::start(&python, &device_spec()).unwrap();
    let config = driver_config(server.port(), json!({}));
    let reg = registry(VOLTTRON_REGISTRY);
    let mut d = make(&reg, &config, Duration::from_secs(5)).unwrap();

    // A float in two registers, least significant first (Mixed Endian).
    let now = d.set_point("Setpoint", Value::Float(70.5)).await.unwrap();
    assert_eq!(now, Value::Float(70.5));
    let bits = 70.5f32.to_bits();
    assert_eq!(
        server.next_write(),
        json!({"function": 16, "address": 0, "values": [bits & 0xffff, bits >> 16]})
    );
    assert_eq!(d.get_point("Setpoint").await.unwrap(), Value::Float(70.5));

    // A coil.
    assert_eq!(
        d.set_point("Fan", Value::Bool(false)).await.unwrap(),
        Value::Bool(false)
    );
    assert_eq!(
        server.next_write(),
        json!({"function": 5, "address": 3, "values": [0]})
    );
    assert_eq!(d.scrape_all().await.unwrap()["Fan"], Value::Bool(false));

    // Refused before anything is sent.
    for (point, value, expect) in [
        ("Setpoint", Value::from("warm"), "BadValue"),
        ("Setpoint", Value::Float(1e39), "BadValue"),
        ("Fan", Value::Int(2), "BadValue"),
        ("Count", Value::Int(1), "NotWritable"),
        ("Nope", Value::Int(1), "UnknownPoint"),
    ] {
        let e = d.set_point(point, value.clone()).await.unwrap_err();
        let got = match &e {
            DriverError::BadValue { point: p, .. } if p == point => "BadValue",
            DriverError::NotWritable(p) if p == point => "NotWritable",
            DriverError::UnknownPoint(p) if p == point => "UnknownPoint",
            _ => "other",
        };
        assert_eq!(got, expect, "{point} = {value}: {e}");
    }

    // Revert writes the registry's Default Value.
    assert!(d.revert_point("Setpoint").await.unwrap());
    let bits = 65f32.to_bits();
    assert_eq!(
        server.next_write(),
        json!({"function": 16, "address": 0, "values": [bits & 0xffff, bits >> 16]})
    );
    assert!(!d.revert_point("Precise").await.unwrap());

    // A scaled register: 73.4 is written as 734; function 6 when configured so.
    let config = driver_config(
        server.port(),
        json!({"addressing": "address", "write_multiple_registers": false}),
    );
    let reg = registry(MODBUS_TK_REGISTRY);
    let mut d = make(&reg, &config, Duration::from_secs(5)).unwrap();
    let now = d.set_point("SupplyTemp", Value::Float(73.4)).await.unwrap();
    assert_eq!(now, Value::Float(73.4));
    assert_eq!(
        server.next_write(),
        json!({"function": 6, "address": 100, "values": [734]})
    );
    let e = d.set_point("SupplyTemp", Value::Float(7000.0)).await.unwrap_err();
    assert!(
        matches!(&e, DriverError::BadValue { reason, .. } if reason.contains("out of range")),
        "{e}"
    );
    assert_eq!(
        d.set_point("Enable", Value::Bool(true)).await.unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        server.next_write(),
        json!({"function": 5, "address": 0, "values": [1]})
    );
    // Nothing else reached the device: the refused writes were never sent.
    assert_eq!(server.pending_writes(), Vec::<Json>::new());
    server.stop();
}

#[tokio::test]
async fn an_exception_response_is_refused_and_the_connection_kept() {
    let Some(python) = require_pymodbus("an_exception_response_is_refused_and_the_connection_kept") else {
        return;
    };
    let server = ModbusServer::start(&python, &device_spec()).unwrap();
    let config = driver_config(server.port(), json!({}));
    let reg = registry(
        "Volttron Point Name,Units,Modbus Register,Writable,Point Address\n\
         Count,,>H,FALSE,2\n\
         Missing,,>H,FALSE,500\n\
         Gone,,>H,TRUE,500\n",
    );
    let mut d = make(&reg, &config, Duration::from_secs(5)).unwrap();
    let e = d.scrape_all().await.unwrap_err();
    assert!(
        matches!(&e, DriverError::Refused(m) if m.contains("Illegal data address") && m.contains("register 500")),
        "{e}"
    );
    assert!(e.is_device_fault());
    let e = d.set_point("Gone", Value::Int(1)).await.unwrap_err();
    assert!(
        matches!(&e, DriverError::Refused(m) if m.contains("Illegal data address") && m.contains("write holding register 500")),
        "{e}"
    );
    assert_eq!(d.get_point("Count").await.unwrap(), Value::Int(65000));
    server.stop();
}

#[tokio::test]
async fn a_silent_device_times_out_and_a_stopped_one_fails_to_connect_until_it_is_back() {
    // No pymodbus needed: a listening socket that never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = driver_config(silent.local_addr().unwrap().port(), json!({}));
    let reg =
        registry("Volttron Point Name,Units,Modbus Register,Writable,Point Address\nCount,,>H,FALSE,2\n");
    let timeout = Duration::from_millis(300);
    let mut d = make(&reg, &config, timeout).unwrap();
    let started = Instant::now();
    assert_eq!(d.scrape_all().await.unwrap_err(), DriverError::Timeout(timeout));
    let took = started.elapsed();
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(2),
        "{took:?}"
    );
    drop(silent);

    let Some(python) =
        require_pymodbus("a_silent_device_times_out_and_a_stopped_one_fails_to_connect_until_it_is_back")
    else {
        return;
    };
    let server = ModbusServer::start(&python, &device_spec()).unwrap();
    let port = server.port();
    let config = driver_config(port, json!({}));
    let mut d = make(&reg, &config, Duration::from_secs(2)).unwrap();
    assert_eq!(d.get_point("Count").await.unwrap(), Value::Int(65000));
    server.stop();
    // The open connection breaks, then nothing listens: both are connection errors.
    for _ in 0..2 {
        let started = Instant::now();
        let e = d.get_point("Count").await.unwrap_err();
        assert!(matches!(e, DriverError::Connection(_)), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // Back on the same port: the next call connects again.
    let server = ModbusServer::start_on(&python, &device_spec(), port).unwrap();
    assert_eq!(d.get_point("Count").await.unwrap(), Value::Int(65000));
    server.stop();
}

#[test]
fn bad_driver_configs_and_registry_rows_are_precise_errors() {
    let config = driver_config(1502, json!({"addressing": "address"}));
    let header = "Volttron Point Name,Units,Modbus Register,Type,Table,Writable,Point Address,Transform,Byte Order,Default Value,Mixed Endian,Word Order";
    for (row, column, says) in [
        ("A,,H,,,FALSE,40001,,,", "Modbus Register", ">H"),
        ("A,,>B,,,FALSE,40001,,,", "Modbus Register", "one byte"),
        ("A,,,float32x,,FALSE,40001,,,", "Type", "not a type"),
        ("A,,,,,FALSE,40001,,,", "Modbus Register", "required"),
        ("A,,,uint16,holdings,FALSE,40001,,,", "Table", "not a table"),
        ("A,,,uint16,input,TRUE,30001,,,", "Writable", "read-only"),
        (
            "A,,,bool,holding,FALSE,40001,,,",
            "Table",
            "coil or a discrete input",
        ),
        ("A,,,uint16,coil,FALSE,1,,,", "Table", "one bit"),
        (
            "A,,,uint16,holding,FALSE,abc,,,",
            "Point Address",
            "not an address",
        ),
        (
            "A,,,uint16,holding,FALSE,40000,,,",
            "Point Address",
            "below 40001",
        ),
        ("A,,,uint16,holding,FALSE,105537,,,", "Point Address", "beyond"),
        (
            "A,,,uint32,holding,FALSE,105536,,,",
            "Point Address",
            "past the last address",
        ),
        ("A,,,uint16,holding,FALSE,40001,log(2),,", "Transform", "scale(m)"),
        (
            "A,,,uint16,holding,FALSE,40001,scale(0),,",
            "Transform",
            "non-zero",
        ),
        ("A,,<f,,holding,FALSE,40001,,big,", "Byte Order", "contradicts"),
        (
            "A,,>f,,holding,FALSE,40001,,,,FALSE,little",
            "Word Order",
            "contradicts Mixed Endian",
        ),
        ("A,,>f,,holding,TRUE,40001,,,hot", "Default Value", "not a number"),
        (
            "A,,>H,,holding,TRUE,40001,,,70000",
            "Default Value",
            "out of range",
        ),
        ("A,,>H,,holding,maybe,40001,,,", "Writable", "TRUE or FALSE"),
    ] {
        let reg = registry(&format!("{header}\nOk,,>H,,,FALSE,30001,,,\n{row}\n"));
        let e = make(&reg, &config, Duration::from_secs(1)).unwrap_err();
        let DriverError::Registry(e) = &e else {
            panic!("{row}: {e}")
        };
        assert_eq!((e.row, e.column.as_str()), (3, column), "{row}: {e}");
        assert!(e.reason.contains(says), "{row}: {e}");
        assert_eq!(e.device, "campus/building/rtu");
    }

    let reg =
        registry("Volttron Point Name,Units,Modbus Register,Writable,Point Address\nCount,,>H,FALSE,2\n");
    for (config, says) in [
        (json!({"port": 502}), "device_address"),
        (json!({"device_address": "127.0.0.1", "port": 0}), "port"),
        (
            json!({"device_address": "127.0.0.1", "slave_id": 256}),
            "slave_id",
        ),
        (
            json!({"device_address": "127.0.0.1", "word_order": "middle"}),
            "word_order",
        ),
    ] {
        let e = make(&reg, &Value::from(config.clone()), Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(&e, DriverError::Config(m) if m.contains(says)),
            "{config}: {e}"
        );
    }
    // The factory the platform driver registers is the same constructor.
    let config = driver_config(1502, json!({}));
    let clock = volttron::Clock::real();
    let setup = DeviceSetup {
        device: "campus/building/rtu",
        driver_config: &config,
        registry: &reg,
        timeout: Duration::from_secs(1),
        clock: &clock,
    };
    assert_eq!(factory(&setup).unwrap().points()[0].name, "Count");
}

#[tokio::test]
async fn the_perf_workload_scrapes_through_the_driver_and_raw() {
    if require_pymodbus("the_perf_workload_scrapes_through_the_driver_and_raw").is_none() {
        return;
    }
    let figures = workload::figures(1, 2).await.unwrap();
    let names: Vec<_> = figures.iter().map(|f| f.0).collect();
    assert_eq!(
        names,
        [
            "baseline.modbus_raw_1000_p50",
            "modbus.scrape_1000_p50",
            "modbus.scrape_1000_ratio"
        ]
    );
    assert!(figures.iter().all(|f| f.1 > 0.0), "{figures:?}");
}
