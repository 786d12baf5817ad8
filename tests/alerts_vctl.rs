//! `vctl alerts list | ack | silence` against a `volttron` process: alerts published with
//! `vctl publish` (VOLTTRON's body as a JSON string, as `Status.as_json()` gives it), rules
//! stored with `vctl config store`, and the commands' tables, JSON and refusals.

mod common;

use std::time::Instant;

use common::{DEADLINE, Home, platform_wait};
use serde_json::{Value, json};

fn alerts(home: &Home) -> Value {
    serde_json::from_str(&home.ok(&["alerts", "list", "--json"])).unwrap()
}

/// Polls `vctl alerts list` until `f` holds (publications reach the service on their own
/// time); panics at the deadline.
fn wait_alerts(home: &Home, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let list = alerts(home);
        if f(&list) {
            return list;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: {list:#}\n{}",
            home.log_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn find<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list["alerts"].as_array().unwrap().iter().find(|a| a["id"] == id)
}

#[test]
fn vctl_lists_acknowledges_and_silences_alerts() {
    let home = Home::with_config("");
    let platform = home.start_platform();
    let empty = alerts(&home);
    assert_eq!(empty["alerts"], json!([]));
    assert_eq!(
        empty["rules"]["sinks"],
        json!(["log"]),
        "the default rules: the log"
    );

    // VOLTTRON's body: Status.as_json(), a JSON string.
    let body = json!({"status": "BAD", "context": "12 psi", "last_updated": "2024-01-01T00:00:00+00:00"});
    home.ok(&[
        "publish",
        "alerts/HvacAgent/hvac_1",
        &json!(body.to_string()).to_string(),
    ]);
    let list = wait_alerts(&home, "the alert is listed", |l| {
        !l["alerts"].as_array().unwrap().is_empty()
    });
    let alert = &list["alerts"][0];
    let id = alert["id"].as_str().unwrap().to_owned();
    assert!(
        id.ends_with("/HvacAgent/hvac_1"),
        "origin/key, the key from the topic: {id}"
    );
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["context"], "12 psi");

    let table = home.ok(&["alerts", "list"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATUS") && header.contains("SEVERITY"),
        "{table}"
    );
    assert!(
        table.contains(&id) && table.contains("firing") && table.contains("12 psi"),
        "{table}"
    );
    // The log sink logged it.
    let start = Instant::now();
    while !std::fs::read_to_string(home.log_path())
        .unwrap_or_default()
        .contains("[firing] critical")
    {
        assert!(
            start.elapsed() < DEADLINE,
            "no log record of the alert:\n{}",
            home.log_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    assert_eq!(
        home.ok(&["alerts", "ack", &id]).trim(),
        format!("acknowledged {id}")
    );
    let acked = alerts(&home);
    assert!(
        find(&acked, &id).unwrap()["ack"]["by"]
            .as_str()
            .unwrap()
            .starts_with("control.connection"),
        "{acked:#}"
    );
    let refused = home.fails(&["alerts", "ack", "nobody/nothing"]);
    assert!(refused.contains("no alert"), "{refused}");

    let said = home.ok(&["alerts", "silence", "control.*", "--for", "10m"]);
    assert!(said.starts_with("silenced control.* until "), "{said}");
    let silenced = alerts(&home);
    assert_eq!(silenced["silences"][0]["pattern"], "control.*");
    assert_eq!(find(&silenced, &id).unwrap()["silenced"], true);
    assert!(home.ok(&["alerts", "list"]).contains("silence control.* until"));
    // A bad duration is clap's usage error, before anything is asked of the platform.
    let bad = home.vctl(&["alerts", "silence", "*", "--for", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("'--for <DURATION>'") && said.contains("10m"),
        "{said}"
    );

    // Refused rules: shown by list, the old ones kept.
    let rules = home.write("rules.json", r#"{"routes": [{"sinks": ["pager"]}]}"#);
    home.ok(&[
        "config",
        "store",
        "platform.alerts",
        "config",
        rules.to_str().unwrap(),
    ]);
    let refused = wait_alerts(&home, "the refused rules are shown", |l| {
        l["rules"]["error"].is_string()
    });
    assert!(
        refused["rules"]["error"].as_str().unwrap().contains("\"pager\""),
        "{refused:#}"
    );
    assert!(home.ok(&["alerts", "list"]).contains("rules refused"));

    // A GOOD status resolves.
    let good = json!({"status": "GOOD", "context": null});
    home.ok(&[
        "publish",
        "alerts/HvacAgent/hvac_1",
        &json!(good.to_string()).to_string(),
    ]);
    let resolved = wait_alerts(&home, "the alert resolves", |l| {
        find(l, &id).is_some_and(|a| a["status"] == "resolved")
    });
    assert_eq!(find(&resolved, &id).unwrap()["ack"], Value::Null);

    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}
