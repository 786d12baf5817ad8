//! The platform driver, the SQLite historian and the actuator as installed processes (`vctl install` of their
//! binaries), configured with `vctl config store` as for VOLTTRON's, driven with `vctl rpc`.
#![cfg(all(
    feature = "cli",
    feature = "driver",
    feature = "actuator",
    feature = "historian"
))]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Home;

fn rpc(home: &Home, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["rpc", "call"];
    all.extend_from_slice(args);
    let out = home.ok(&all);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out:?}: {e}"))
}

/// Retries `vctl rpc call` until it answers (the agent is still connecting) or 30 s pass.
fn rpc_when_ready(home: &Home, args: &[&str]) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let mut all = vec!["rpc", "call"];
        all.extend_from_slice(args);
        let out = home.vctl(&all);
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).unwrap();
        }
        assert!(
            start.elapsed() < common::DEADLINE,
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            home.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn driver_and_actuator_processes_scrape_schedule_and_write() {
    let home = Home::with_config("[volttron]\ninstance-name = bdp\n");
    let _platform = home.start_platform();
    let csv = home.write(
        "rtu.csv",
        "Volttron Point Name,Units,Writable,Starting Value,Type\nSetpoint,degF,TRUE,72,float\nTemp,degF,FALSE,70.5,float\n",
    );
    let device = home.write(
        "rtu1.json",
        r#"{"driver_config": {}, "driver_type": "fake", "registry_config": "config://rtu.csv", "interval": 1}"#,
    );
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    home.ok(&["config", "store", "platform.driver", "rtu.csv", &p(&csv), "--csv"]);
    home.ok(&[
        "config",
        "store",
        "platform.driver",
        "devices/campus/hq/rtu1",
        &p(&device),
        "--json",
    ]);
    let driver = Path::new(env!("CARGO_BIN_EXE_volttron-platform-driver"));
    let actuator = Path::new(env!("CARGO_BIN_EXE_volttron-actuator"));
    let historian_config = home.write(
        "historian.json",
        r#"{"connection": {"type": "sqlite", "params": {"database": "history.sqlite"}}}"#,
    );
    home.ok(&[
        "config",
        "store",
        "platform.historian",
        "config",
        &p(&historian_config),
        "--json",
    ]);
    let historian = Path::new(env!("CARGO_BIN_EXE_volttron-sqlite-historian"));
    home.install_started(historian, "platform.historian");
    rpc_when_ready(&home, &["platform.historian", "get_version"]);
    home.install_started(driver, "platform.driver");

    let v = rpc_when_ready(
        &home,
        &["platform.driver", "get_point", "\"campus/hq/rtu1\"", "\"Temp\""],
    );
    assert_eq!(v, serde_json::json!(70.5));
    // Without an actuator the driver takes writes directly.
    let v = rpc(
        &home,
        &[
            "platform.driver",
            "set_point",
            "\"campus/hq/rtu1\"",
            "\"Setpoint\"",
            "68",
        ],
    );
    assert_eq!(v, serde_json::json!(68.0));

    home.install_started(actuator, "platform.actuator");
    rpc_when_ready(&home, &["platform.actuator", "get_schedule"]);
    // Now the driver refuses vctl; the actuator wants a slot.
    let e = home.fails(&[
        "rpc",
        "call",
        "platform.driver",
        "set_point",
        "\"campus/hq/rtu1\"",
        "\"Setpoint\"",
        "66",
    ]);
    assert!(e.contains("write through it"), "{e}");
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S+00:00").to_string();
    let requests = serde_json::json!([[
        "campus/hq/rtu1",
        fmt(now - chrono::Duration::seconds(1)),
        fmt(now + chrono::Duration::seconds(600))
    ]]);
    let r = rpc(
        &home,
        &[
            "platform.actuator",
            "request_new_schedule",
            "\"\"",
            "\"ops\"",
            "\"HIGH\"",
            &requests.to_string(),
        ],
    );
    assert_eq!(r["result"], "SUCCESS", "{r}");
    let v = rpc(
        &home,
        &[
            "platform.actuator",
            "set_point",
            "\"\"",
            "\"campus/hq/rtu1/Setpoint\"",
            "64.5",
        ],
    );
    assert_eq!(v, serde_json::json!(64.5));
    assert_eq!(
        rpc(
            &home,
            &["platform.driver", "get_point", "\"campus/hq/rtu1/Setpoint\""]
        ),
        serde_json::json!(64.5)
    );
    let r = rpc(
        &home,
        &["platform.actuator", "request_cancel_schedule", "\"\"", "\"ops\""],
    );
    assert_eq!(r["result"], "SUCCESS", "{r}");
    // Released: reverted to the registry's starting value.
    assert_eq!(
        rpc(
            &home,
            &[
                "platform.driver",
                "get_point",
                "\"campus/hq/rtu1\"",
                "\"Setpoint\""
            ]
        ),
        serde_json::json!(72.0)
    );
    // The historian has stored the scrapes (every second) in its data directory.
    let start = Instant::now();
    let values = loop {
        let q = rpc(
            &home,
            &[
                "platform.historian",
                "query",
                "\"campus/hq/rtu1/Temp\"",
                "\"now -1h\"",
            ],
        );
        let values = q["values"].as_array().cloned().unwrap_or_default();
        if values.len() >= 2 {
            break values;
        }
        assert!(start.elapsed() < common::DEADLINE, "{q}\n{}", home.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(values[0][1], serde_json::json!(70.5));
    assert!(
        home.path()
            .join("agents/platform.historian/data/history.sqlite")
            .exists()
    );
    let status = rpc(&home, &["platform.driver", "device_status"]);
    assert_eq!(status["devices"], serde_json::json!(["campus/hq/rtu1"]));
    home.ok(&[
        "stop",
        "platform.actuator",
        "platform.driver",
        "platform.historian",
    ]);
}
