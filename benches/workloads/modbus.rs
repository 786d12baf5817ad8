//! The Modbus driver's figures: scrapes of 1,000 holding registers from a real pymodbus
//! device ([`super::pymodbus`], a child process on loopback) through the driver, and the
//! same registers read by raw tokio-modbus requests in the same run, as the baseline.
//!
//! | figure | what is timed |
//! |--------|---------------|
//! | `baseline.modbus_raw_1000_p50` | one tokio-modbus `Context` reads holding registers 0..=999 as 8 requests of 125 (`read_holding_registers`), in sequence; median of the runs' p50 per scrape, µs |
//! | `modbus.scrape_1000_p50` | [`ModbusDriver::scrape_all`] of a registry of 1,000 `>H` points at holding 0..=999 (the same 8 requests, planned by the driver, then 1,000 values decoded into a map by name); median of the runs' p50, µs |
//! | `modbus.scrape_1000_ratio` | the driver's p50 / the raw p50 of the same run, median over runs |
//!
//! Runs interleave the two, so drift hits both alike. Both clients hold one connection for
//! the whole figure; the device answers from a Python event loop, which dominates both.
//! Without the venv or pymodbus, [`figures`] returns why (the perf example prints it as
//! `skipped:`).

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_modbus::client::{Context, Reader, tcp};
use volttron::agents::driver::modbus::ModbusDriver;
use volttron::agents::driver::{DeviceSetup, Driver, Registry};
use volttron::core::Value;

use super::pymodbus::{ModbusServer, python};

/// The figures' names, for `--only`.
pub(crate) const FIGURES: &[&str] = &[
    "baseline.modbus_raw_1000_p50",
    "modbus.scrape_1000_p50",
    "modbus.scrape_1000_ratio",
];

/// Registers per scrape.
pub(crate) const REGISTERS: u16 = 1000;

/// Registers per raw request: Modbus's limit, as the driver plans.
const PER_REQUEST: u16 = 125;

/// The device, the driver and the raw client of the figures.
pub(crate) struct ModbusRig {
    server: ModbusServer,
    driver: ModbusDriver,
    raw: Context,
}

impl ModbusRig {
    /// Starts the device with holding registers 0..=999 holding their own address, the
    /// driver of a 1,000-point registry on it, and a raw client; `Err` without pymodbus.
    pub(crate) async fn start() -> Result<ModbusRig, String> {
        let python = python()?;
        let words: Vec<u16> = (0..REGISTERS).collect();
        let spec = json!({
            "unit": 1,
            "sizes": {"holding": REGISTERS},
            "points": [{"table": "holding", "address": 0, "words": words}]
        });
        let server = ModbusServer::start(&python, &spec)?;
        let mut csv = String::from("Volttron Point Name,Units,Modbus Register,Writable,Point Address\n");
        for a in 0..REGISTERS {
            csv.push_str(&format!("r{a},,>H,TRUE,{a}\n"));
        }
        let rows = volttron::config_store::parse(volttron::config_store::ConfigType::Csv, &csv)
            .map_err(|e| e.to_string())?;
        let registry =
            Registry::parse("bench/modbus", "bench.csv", &rows, true).map_err(|e| e.to_string())?;
        let config = Value::from(json!({"device_address": "127.0.0.1", "port": server.port()}));
        let driver = ModbusDriver::new(&DeviceSetup {
            device: "bench/modbus",
            driver_config: &config,
            registry: &registry,
            timeout: Duration::from_secs(10),
            clock: &volttron::Clock::real(),
        })
        .map_err(|e| e.to_string())?;
        let addr = ([127, 0, 0, 1], server.port()).into();
        let raw = tcp::connect_slave(addr, tokio_modbus::Slave(1))
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        Ok(ModbusRig { server, driver, raw })
    }

    /// `n` scrapes through the driver, each checked, in microseconds, sorted.
    pub(crate) async fn driver_scrapes(&mut self, n: usize) -> Vec<f64> {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let values = self
                .driver
                .scrape_all()
                .await
                .expect("a scrape of the pymodbus device");
            times.push(t.elapsed().as_secs_f64() * 1e6);
            assert_eq!(values.len(), usize::from(REGISTERS));
            assert_eq!(values["r999"], Value::Int(999));
        }
        times.sort_by(f64::total_cmp);
        times
    }

    /// `n` raw scrapes of the same registers, each checked, in microseconds, sorted.
    pub(crate) async fn raw_scrapes(&mut self, n: usize) -> Vec<f64> {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let mut words = Vec::with_capacity(usize::from(REGISTERS));
            for start in (0..REGISTERS).step_by(usize::from(PER_REQUEST)) {
                let count = PER_REQUEST.min(REGISTERS - start);
                let got = self
                    .raw
                    .read_holding_registers(start, count)
                    .await
                    .expect("the device answers")
                    .expect("no exception");
                words.extend(got);
            }
            times.push(t.elapsed().as_secs_f64() * 1e6);
            assert_eq!(words.len(), usize::from(REGISTERS));
            assert_eq!(words[999], 999);
        }
        times.sort_by(f64::total_cmp);
        times
    }

    /// Stops the device.
    pub(crate) fn stop(self) {
        self.server.stop();
    }
}

/// The figures of the [module docs](self): a warm-up, then `runs` interleaved runs of
/// `scrapes` scrapes each way; `(name, value, unit)`. `Err` (why) without pymodbus.
pub(crate) async fn figures(
    runs: usize,
    scrapes: usize,
) -> Result<Vec<(&'static str, f64, &'static str)>, String> {
    let mut rig = ModbusRig::start().await?;
    rig.raw_scrapes(scrapes / 10 + 1).await;
    rig.driver_scrapes(scrapes / 10 + 1).await;
    let (mut raw, mut driver, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let r = p50(&rig.raw_scrapes(scrapes).await);
        let d = p50(&rig.driver_scrapes(scrapes).await);
        raw.push(r);
        driver.push(d);
        ratio.push(d / r);
    }
    eprintln!(
        "[perf] baseline.modbus_raw_1000_p50 per run (us): {raw:.0?}; modbus.scrape_1000_p50: {driver:.0?}; ratio: {ratio:.3?}"
    );
    rig.stop();
    Ok(vec![
        (FIGURES[0], median(raw), "us"),
        (FIGURES[1], median(driver), "us"),
        (FIGURES[2], median(ratio), "ratio"),
    ])
}

fn p50(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    p50(&v)
}
