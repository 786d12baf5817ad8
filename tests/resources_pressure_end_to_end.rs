//! Resource contracts enforced on real processes, through `volttron` and `vctl`: a CPU hog
//! and a memory hog with small contracts, and a well-behaved agent.
//!
//! 1. With no pressure (the whole machine as the CPU budget, the default memory
//!    threshold) the hogs are measured over their contracts (the CPU figure checked
//!    against an independent read of the hog's `/proc/<pid>/stat`) and left alone for many
//!    monitor rounds.
//! 2. With a CPU budget of 5 % of the machine (`agent-cpu-budget`), the CPU hog puts the
//!    machine under CPU pressure: it is the worst offender and is terminated, with the
//!    reason, health BAD and no restart; with it gone the pressure ends, so the memory hog
//!    (an offender too, but a lesser one) is left running; the well-behaved agent keeps
//!    running with a GOOD heartbeat throughout.
//!
//! (Memory pressure is simulated in `cli_end_to_end.rs` with `memory-pressure-below`.)

mod common;

use std::time::{Duration, Instant};

use common::{Home, pid, platform_wait, remote_agent_binary};

const ROUND: f64 = 0.2;

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u64) -> u64 {
    let stat = procfs::process::Process::new(pid as i32).unwrap().stat().unwrap();
    stat.utime + stat.stime
}

/// The share of a core `pid` used over `window`, read independently of the platform.
fn independent_cpu_percent(pid: u64, window: Duration) -> f64 {
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(window);
    let (t1, c1) = (Instant::now(), cpu_ticks(pid));
    (c1 - c0) as f64 / procfs::ticks_per_second() as f64 / (t1 - t0).as_secs_f64() * 100.0
}

fn config(cpu_budget: f64) -> String {
    format!("[volttron]\nagent-monitor-frequency = {ROUND}\nagent-cpu-budget = {cpu_budget}\n")
}

#[test]
fn a_cpu_hog_is_left_alone_while_idle_and_terminated_under_cpu_pressure() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bogomips_known = volttron::resources::monitor::bogomips_per_core().is_some_and(|b| b > 0.0);
    if !bogomips_known {
        println!("skipped: this machine reports no BogoMIPS, so CPU contracts cannot be measured");
        return;
    }
    let home = Home::with_config(&config(1.0));
    let dir = home.path().to_owned();
    let cpu_hog = home.write_script("cpu-hog.sh", "#!/bin/sh\nwhile :; do :; done\n");
    let memory_hog = home.write_script(
        "memory-hog.sh",
        "#!/bin/sh\nx=$(head -c 40000000 /dev/zero | tr '\\0' a)\nsleep 600\n",
    );
    let cpu_contract = home.write("cpu.json", r#"{"requirements": {"cpu.bogomips": 10}}"#);
    let memory_contract = home.write(
        "memory.json",
        r#"{"requirements": {"memory.soft_limit_in_bytes": 1000000}}"#,
    );
    let roomy = home.write(
        "roomy.json",
        r#"{"requirements": {"cpu.bogomips": 10, "memory.soft_limit_in_bytes": 500000000}}"#,
    );

    let platform = home.start_platform();
    let agent = remote_agent_binary();
    for (identity, program, contract) in [
        ("polite", agent.as_path(), &roomy),
        ("cpu-hog", cpu_hog.as_path(), &cpu_contract),
        ("memory-hog", memory_hog.as_path(), &memory_contract),
    ] {
        home.ok(&[
            "install",
            program.to_str().unwrap(),
            "--vip-identity",
            identity,
            "--exereqs",
            contract.to_str().unwrap(),
            "--start",
        ]);
    }

    // 1. No pressure. Measured over their contracts...
    let hog = home.wait_for("cpu-hog", "measured busy", |a| {
        a["usage"]["cpu_percent_of_core"].as_f64().unwrap_or(0.0) > 30.0
    });
    assert!(hog["usage"]["cpu_mips"].as_f64().unwrap() > 10.0, "{hog}");
    // The platform's figures over a second (the median of its rounds) against /proc's
    // over the same second.
    let hog_pid = pid(&hog).unwrap();
    let reader = std::thread::spawn(move || independent_cpu_percent(hog_pid, Duration::from_secs(1)));
    let mut reported = Vec::new();
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        let a = home.agent("cpu-hog").unwrap();
        reported.extend(a["usage"]["cpu_percent_of_core"].as_f64());
        std::thread::sleep(Duration::from_secs_f64(ROUND));
    }
    let independent = reader.join().unwrap();
    reported.sort_by(f64::total_cmp);
    let median = reported[reported.len() / 2];
    assert!(
        (median - independent).abs() < 25.0,
        "the platform says {reported:?}% of a core, /proc says {independent:.0}%"
    );
    home.wait_for("memory-hog", "measured over its contract", |a| {
        a["usage"]["rss_bytes"].as_u64().unwrap_or(0) > 30_000_000
    });
    // ...and left alone: still running after 15 monitor rounds in which a termination
    // (warned, then terminated two rounds later) would have happened.
    if cores >= 2 {
        let until = Instant::now() + Duration::from_secs_f64(15.0 * ROUND);
        while Instant::now() < until {
            for identity in ["cpu-hog", "memory-hog", "polite"] {
                let a = home.agent(identity).unwrap();
                assert_eq!(
                    a["state"], "running",
                    "{identity} was acted on without pressure: {a}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    } else {
        println!("one core: a busy loop is the whole CPU budget; the no-pressure check is skipped");
    }
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());

    // 2. CPU budget 5 % of the machine: the CPU hog alone is above it.
    std::fs::write(dir.join("config"), config(0.05)).unwrap();
    let platform = home.start_platform();
    // The memory hog spends CPU filling its memory: started first and left to settle, so
    // that the CPU pressure comes from the CPU hog alone.
    for identity in ["polite", "memory-hog"] {
        home.ok(&["start", identity]);
    }
    home.wait_for("memory-hog", "holding its memory, idle", |a| {
        a["usage"]["rss_bytes"].as_u64().unwrap_or(0) > 30_000_000
            && a["usage"]["cpu_percent_of_core"]
                .as_f64()
                .is_some_and(|p| p < 5.0)
    });
    home.ok(&["start", "cpu-hog"]);
    let hog = home.wait_for("cpu-hog", "terminated", |a| a["state"] == "terminated");
    assert_eq!(hog["health"], "BAD");
    let reason = hog["reason"].as_str().unwrap();
    assert!(
        reason.contains("CPU pressure") && reason.contains("'cpu-hog'") && reason.contains("MIPS"),
        "{reason}"
    );
    assert!(pid(&hog).is_none(), "not restarted: {hog}");
    // Counted: the warning and the termination (what `volttron_resources_enforcement_actions_total` reads).
    let budget: serde_json::Value =
        serde_json::from_str(home.ok(&["rpc", "call", "control", "resource_budget"]).trim()).unwrap();
    assert!(budget["actions"]["terminations"].as_u64() >= Some(1), "{budget}");
    assert!(budget["actions"]["warnings"].as_u64() >= Some(1), "{budget}");
    assert!(
        budget["budget"]["cpu_mips"].as_f64().is_some_and(|m| m > 0.0),
        "{budget}"
    );
    // The pressure ended with it: the memory hog (over its memory contract, but not the
    // worst) and the polite agent keep running, the polite one with a GOOD heartbeat.
    let polite = home.wait_for("polite", "running and GOOD", |a| {
        pid(a).is_some() && a["health"] == "GOOD"
    });
    assert_eq!(polite["state"], "running");
    let until = Instant::now() + Duration::from_secs_f64(10.0 * ROUND);
    while Instant::now() < until {
        let memory = home.agent("memory-hog").unwrap();
        assert_eq!(memory["state"], "running", "{memory}");
        assert_eq!(home.agent("cpu-hog").unwrap()["state"], "terminated");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Started again by hand, it runs (until the next pressure).
    home.ok(&["start", "cpu-hog"]);
    let again = home.wait_for("cpu-hog", "running", |a| pid(a).is_some());
    assert!(again["reason"].is_null(), "{again}");
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}
