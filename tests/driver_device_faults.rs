//! A device that stops answering: BAD in the driver's health, retried with backoff, the
//! other devices unaffected; GOOD again when it answers. An interface registered by the
//! embedding application (`PlatformDriver::interface`), on the virtual clock.
#![cfg(feature = "driver")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use volttron::agents::driver::{
    self, DeviceSetup, Driver, DriverError, DriverFuture, PlatformDriver, PointKind, PointMeta,
};
use volttron::prelude::*;
use volttron::testing::TestPlatform;

static DOWN: AtomicBool = AtomicBool::new(false);
static TRIES: AtomicUsize = AtomicUsize::new(0);

/// A meter whose connection can be refused; counts its scrapes.
struct Meter {
    points: Vec<PointMeta>,
    counted: bool,
}

impl Driver for Meter {
    fn points(&self) -> &[PointMeta] {
        &self.points
    }
    fn scrape_all(&mut self) -> DriverFuture<'_, BTreeMap<String, Value>> {
        if self.counted {
            TRIES.fetch_add(1, Ordering::SeqCst);
        }
        let down = self.counted && DOWN.load(Ordering::SeqCst);
        Box::pin(async move {
            if down {
                Err(DriverError::Connection("connection refused".into()))
            } else {
                Ok(BTreeMap::from([("kW".to_owned(), Value::Float(4.2))]))
            }
        })
    }
    fn get_point<'a>(&'a mut self, _point: &'a str) -> DriverFuture<'a, Value> {
        Box::pin(async { Ok(Value::Float(4.2)) })
    }
    fn set_point<'a>(&'a mut self, point: &'a str, _value: Value) -> DriverFuture<'a, Value> {
        Box::pin(async move { Err(DriverError::NotWritable(point.to_owned())) })
    }
}

fn meter(setup: &DeviceSetup<'_>) -> Result<Box<dyn Driver>, DriverError> {
    let points = setup
        .registry
        .rows
        .iter()
        .map(|r| r.point_meta(PointKind::Float))
        .collect::<Result<_, _>>()?;
    Ok(Box::new(Meter {
        points,
        counted: setup.device.ends_with("flaky"),
    }))
}

async fn store(tp: &TestPlatform, name: &str, raw: &str, kind: &str) {
    tp.call("config.store", "set_config", (driver::IDENTITY, name, raw, kind))
        .await
        .unwrap();
}

#[volttron::test]
async fn a_failing_device_is_bad_backs_off_and_does_not_hold_up_the_others() {
    let tp = TestPlatform::builder().services(true).start().await;
    store(
        &tp,
        "meter.csv",
        "Volttron Point Name,Units,Writable\nkW,kW,FALSE\n",
        "csv",
    )
    .await;
    for d in ["flaky", "steady1", "steady2"] {
        store(
            &tp,
            &format!("devices/campus/hq/{d}"),
            r#"{"driver_type": "meter", "registry_config": "config://meter.csv", "interval": 60}"#,
            "json",
        )
        .await;
    }
    let steady = tp.capture("devices/campus/hq/steady");
    let flaky = tp.capture("devices/campus/hq/flaky");
    DOWN.store(true, Ordering::SeqCst);
    tp.spawn(driver::IDENTITY, PlatformDriver::new().interface("meter", meter))
        .await
        .unwrap();
    tp.settle().await;
    // Ten minutes: the steady meters publish every minute, the flaky one never; it is tried
    // at its first slot, then after 1, 2 and 4 minutes (backoff), not every minute.
    for _ in 0..10 {
        tp.advance(Duration::from_secs(60)).await;
    }
    assert_eq!(steady.len(), 20);
    assert!(flaky.is_empty());
    assert_eq!(TRIES.load(Ordering::SeqCst), 4, "tries at 0, 1, 3 and 7 minutes");
    let health = tp.call(driver::IDENTITY, "health.get_status", ()).await.unwrap();
    assert_eq!(health["status"], Value::from("BAD"));
    let context = Value::from_json_str(health["context"].as_str().unwrap()).unwrap();
    let reason = context["bad_devices"]["campus/hq/flaky"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.starts_with("connection: connection refused (4 failed scrapes"),
        "{reason}"
    );
    let status = tp.call(driver::IDENTITY, "device_status", ()).await.unwrap();
    assert_eq!(status["bad"].as_map().unwrap().len(), 1);

    // It answers again: at its next try it publishes, is GOOD, and is scraped every minute.
    DOWN.store(false, Ordering::SeqCst);
    for _ in 0..10 {
        tp.advance(Duration::from_secs(60)).await;
    }
    assert!(!flaky.is_empty());
    let first = flaky.len();
    tp.advance(Duration::from_secs(120)).await;
    assert_eq!(flaky.len(), first + 2);
    let health = tp.call(driver::IDENTITY, "health.get_status", ()).await.unwrap();
    assert_eq!(health["status"], Value::from("GOOD"), "{health}");
    tp.shutdown().await;
}
