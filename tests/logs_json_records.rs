//! `volttron --log-format json --log FILE`: every line of the file is one JSON object with
//! `timestamp`, `level`, `target` and `message`; what an in-process agent (the `control`
//! service) logs carries `agent: "control"`; each stdout/stderr line of an installed
//! agent process is a record with `agent` (its identity) and `stream`.

mod common;

use common::logs::{TALKER, message_is, records, wait_for_record};
use common::{Home, platform_wait};

#[test]
fn every_line_is_a_json_record_with_the_agents_identity() {
    let home = Home::with_config("");
    let platform = home.start_platform_with(&["--log-format", "json"]);
    let talker = home.write_script("talker", TALKER);
    home.install_started(&talker, "talker.1");
    let log = home.log_path();
    let out = wait_for_record(&log, "of talker.1's stdout", |r| {
        r["message"].as_str().is_some_and(|m| m.starts_with("hello from"))
    });
    assert_eq!(out["agent"], "talker.1", "{out}");
    assert_eq!(out["stream"], "stdout", "{out}");
    assert_eq!(out["level"], "INFO", "{out}");
    let err = wait_for_record(&log, "of talker.1's stderr", |r| {
        r["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("ERROR: trouble"))
    });
    assert_eq!(err["agent"], "talker.1", "{err}");
    assert_eq!(err["stream"], "stderr", "{err}");
    assert_eq!(err["level"], "WARN", "{err}");

    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
    let all = records(&log);
    for r in &all {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(r[field].is_string(), "no {field}: {r}");
        }
        let ts = r["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "not RFC 3339 UTC: {ts}");
        // An agent's identity is a plain string wherever it appears.
        assert!(r.get("agent").is_none_or(|a| a.is_string()), "{r}");
    }
    // The control service runs in-process: its handler's records name it.
    let control = all
        .iter()
        .find(|r| message_is(r, "shutdown requested through the control service"))
        .unwrap_or_else(|| panic!("no shutdown record in {all:?}"));
    assert_eq!(control["agent"], "control", "{control}");
    assert_eq!(control["target"], "volttron::services::control");
    // The platform's own records (outside any agent) name none.
    let running = all.iter().find(|r| message_is(r, "platform running")).unwrap();
    assert!(running.get("agent").is_none(), "{running}");
    // Every line of the agent's output is tagged.
    let ticks: Vec<_> = all
        .iter()
        .filter(|r| r["message"].as_str().is_some_and(|m| m.starts_with("tick ")))
        .collect();
    assert!(!ticks.is_empty());
    assert!(
        ticks
            .iter()
            .all(|r| r["agent"] == "talker.1" && r["stream"] == "stdout")
    );
}

#[test]
fn log_format_json_in_the_config_file() {
    let home = Home::with_config("[volttron]\nlog-format = json\n");
    let platform = home.start_platform();
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
    let all = records(&home.log_path());
    assert!(all.iter().any(|r| message_is(r, "platform stopped")), "{all:?}");
}
