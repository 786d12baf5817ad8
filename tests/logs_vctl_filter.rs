//! `vctl log` reads the platform's log (the file `volttron -l FILE` named in
//! `run/log-path`): `--agent ID --level warn` keeps that agent's records at warn or above,
//! `--follow` goes on printing records as they are written, a bad level is refused, and
//! the human format is read too.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use common::logs::{TALKER, records, wait_for_record};
use common::{DEADLINE, Home, platform_wait};
use serde_json::Value;

#[test]
fn vctl_log_filters_by_agent_and_level_and_follows() {
    let home = Home::with_config("");
    let platform = home.start_platform_with(&["--log-format", "json"]);
    let talker = home.write_script("talker", TALKER);
    for identity in ["noisy.1", "other.1"] {
        home.install_started(&talker, identity);
    }
    let log = home.log_path();
    for identity in ["noisy.1", "other.1"] {
        wait_for_record(&log, "of the agent's stderr", |r| {
            r["agent"] == identity && r["stream"] == "stderr"
        });
    }

    let out = home.ok(&["log", "--agent", "noisy.1", "--level", "warn"]);
    let picked: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!picked.is_empty(), "nothing printed");
    for r in &picked {
        assert_eq!(r["agent"], "noisy.1", "{r}");
        assert!(r["level"] == "WARN" || r["level"] == "ERROR", "{r}");
    }
    assert!(picked.iter().any(|r| r["stream"] == "stderr"), "{out}");
    // What the filter left out is in the file.
    let all = records(&log);
    assert!(
        all.iter()
            .any(|r| r["agent"] == "noisy.1" && r["level"] == "INFO")
    );
    assert!(
        all.iter()
            .any(|r| r["agent"] == "other.1" && r["level"] == "WARN")
    );
    // Without filters: every record (up to what was written meanwhile).
    let everything = home.ok(&["log"]);
    assert!(
        everything.lines().count() >= all.len(),
        "vctl log dropped records"
    );

    // --follow: a tick written after vctl started arrives.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_vctl"))
        .arg("--volttron-home")
        .arg(home.path())
        .args(["log", "--follow", "--agent", "noisy.1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let tick = |r: &Value| {
        r["message"]
            .as_str()
            .and_then(|m| m.strip_prefix("tick "))
            .and_then(|n| n.parse::<u64>().ok())
    };
    let last_written = records(&log)
        .iter()
        .filter(|r| r["agent"] == "noisy.1")
        .filter_map(tick)
        .max()
        .unwrap_or(0);
    let start = Instant::now();
    loop {
        let left = DEADLINE.saturating_sub(start.elapsed());
        let line = received
            .recv_timeout(left)
            .expect("no new record from vctl log --follow");
        let r: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(r["agent"], "noisy.1", "{r}");
        if tick(&r).is_some_and(|n| n > last_written) {
            break;
        }
    }
    follow.kill().unwrap();
    follow.wait().unwrap();

    let err = home.fails(&["log", "--level", "loud"]);
    assert!(err.contains("--level") && err.contains("warn"), "{err}");
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}

#[test]
fn vctl_log_without_a_log_file_says_how_to_get_one() {
    let home = Home::with_config("");
    let err = home.fails(&["log"]);
    assert!(err.contains("volttron -l FILE"), "{err}");
}

#[test]
fn vctl_log_reads_the_human_format_too() {
    let home = Home::with_config("");
    let platform = home.start_platform();
    let talker = home.write_script("talker", TALKER);
    home.install_started(&talker, "plain.1");
    let start = Instant::now();
    let out = loop {
        let out = home.ok(&["log", "--agent", "plain.1", "--level", "warn"]);
        if out.contains("ERROR: trouble") {
            break out;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no warning of plain.1 in:\n{}",
            home.log_tail()
        );
    };
    for line in out.lines() {
        assert!(line.contains(" WARN ") || line.contains(" ERROR "), "{line}");
        assert!(line.contains("agent=plain.1"), "{line}");
    }
    assert!(!out.contains("tick "), "an info line passed --level warn:\n{out}");
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
    // The in-process control service's handler logged the shutdown: tagged in text too.
    let control = home.ok(&["log", "--agent", "control"]);
    assert!(
        control
            .lines()
            .any(|l| l.contains("shutdown requested through the control service")),
        "{control}\nlog:\n{}",
        home.log_tail()
    );
}
