//! The process side of the control service: agents launched as child processes (their
//! environment, working directory, process group, output in the platform log), stopped by
//! escalation (SIGINT, SIGTERM, SIGKILL to the process group, grandchildren included,
//! nothing left unreaped), their exits reported; the crash monitor's restart decisions;
//! and an orphaned agent noticing that the platform that launched it is gone.
//!
//! Children are `/bin/sh -c` scripts. Every wait is for an event (an exit report, a file a
//! child writes) with a deadline, never a sleep.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use volttron::control::parent::{
    ParentStatus, ParentWatch, launching_platform, parent_pid, parent_watch, pid_alive, watch_parent,
};
use volttron::control::process::{
    AgentProcess, Exit, ExitReport, LaunchError, LaunchSpec, StopOutcome, StopStep, process_start_time,
    process_state,
};
use volttron::control::restart::{CrashMonitor, Decision, MonitorState, RestartPolicy};

const DEADLINE: Duration = Duration::from_secs(20);
const GRACE: Duration = Duration::from_millis(300);

/// A shell loop that never ends on its own.
const LOOP: &str = "while :; do sleep 0.05; done";

// ---------------------------------------------------------------------------------------
// Helpers

/// The log lines that mention `needle`.
fn log_lines_with(needle: &str) -> Vec<String> {
    let text = common::log_text();
    text.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Launches `sh -c script` as agent `identity` in `dir`, reporting its exit.
fn launch_sh(
    identity: &str,
    dir: &Path,
    script: &str,
) -> (AgentProcess, mpsc::UnboundedReceiver<ExitReport>) {
    common::captured_log();
    let (tx, rx) = mpsc::unbounded_channel();
    let spec = LaunchSpec::new(identity, "/bin/sh", dir)
        .arg("-c")
        .arg(script)
        .report_exits(tx);
    (AgentProcess::launch(&spec).expect("launched"), rx)
}

/// The next exit report, within the deadline.
async fn next_report(rx: &mut mpsc::UnboundedReceiver<ExitReport>) -> ExitReport {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("an exit report within the deadline")
        .expect("the report channel open")
}

/// The contents of `path` once a child has written it completely (a final newline).
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} not written within the deadline",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pid a child wrote into `path`.
fn pid_in(path: &Path) -> u32 {
    wait_for_file(path).trim().parse().expect("a pid")
}

/// Our child is reaped: its `/proc` entry is gone (or names a newer process).
fn assert_reaped(process: &AgentProcess) {
    let start = process.start_time().expect("/proc is mounted");
    assert_ne!(
        process_start_time(process.pid()),
        Some(start),
        "pid {} not reaped",
        process.pid()
    );
}

/// The parent pid of process `pid` (field 4 of `/proc/<pid>/stat`).
fn ppid_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Process `pid` (a grandchild) has died, and if it lingers as a zombie, it is not ours
/// to reap (its parent died first and it was re-parented).
fn assert_dead(pid: u32) {
    let deadline = Instant::now() + DEADLINE;
    while pid_alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} still alive");
        std::thread::sleep(Duration::from_millis(10));
    }
    if process_state(pid).is_some() {
        assert_ne!(
            ppid_of(pid),
            Some(std::process::id()),
            "process {pid} left as our zombie"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Launch

#[tokio::test]
async fn launched_agent_sees_its_environment_working_dir_and_own_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let script = r#"{
        pwd
        echo "$AGENT_VIP_IDENTITY"
        echo "$VOLTTRON_HOME"
        echo "$VOLTTRON_PLATFORM_ADDRESS"
        echo "$AGENT_CREDENTIALS"
        echo "$AGENT_CONFIG"
        echo "$AGENT_UUID"
        echo "$AGENT_TAG"
        echo "$VOLTTRON_PARENT_PID"
        cut -d' ' -f5 /proc/$$/stat
        if read -r line; then echo stdin-has-data; else echo stdin-empty; fi
    } > seen.txt"#;
    let spec = LaunchSpec::from_command(
        "env.agent",
        vec!["/bin/sh".into(), "-c".into(), script.into()],
        dir.path(),
    )
    .unwrap()
    .env("AGENT_VIP_IDENTITY", "env.agent")
    .env("VOLTTRON_HOME", "/srv/volttron")
    .env("VOLTTRON_PLATFORM_ADDRESS", "ipc:///srv/volttron/run/vip.socket")
    .env(
        "AGENT_CREDENTIALS",
        "/srv/volttron/credentials_store/env.agent.json",
    )
    .env("AGENT_CONFIG", "/srv/volttron/agents/env/config")
    .env("AGENT_UUID", "0b5e7c3e-1111-2222-3333-444455556666")
    .env("AGENT_TAG", "hvac")
    // The launcher's own value wins.
    .env("VOLTTRON_PARENT_PID", "1")
    .report_exits(tx);
    let shown = format!("{spec:?}");
    assert!(
        shown.contains("AGENT_CREDENTIALS") && !shown.contains("credentials_store"),
        "{shown}"
    );
    common::captured_log();
    let process = AgentProcess::launch(&spec).unwrap();
    assert_eq!(process.identity(), "env.agent");
    assert!(process.start_time().is_some());

    let report = next_report(&mut rx).await;
    assert_eq!(
        report,
        ExitReport {
            identity: "env.agent".into(),
            pid: process.pid(),
            start_time: process.start_time(),
            exit: Exit::Code(0),
        }
    );
    assert_eq!(process.wait().await, Exit::Code(0));
    assert_eq!(process.try_exit(), Some(Exit::Code(0)));

    let seen = std::fs::read_to_string(dir.path().join("seen.txt")).unwrap();
    let seen: Vec<&str> = seen.lines().collect();
    let pid = process.pid().to_string();
    let our_pid = std::process::id().to_string();
    let working_dir = dir.path().canonicalize().unwrap();
    let expected = [
        working_dir.to_str().unwrap(),
        "env.agent",
        "/srv/volttron",
        "ipc:///srv/volttron/run/vip.socket",
        "/srv/volttron/credentials_store/env.agent.json",
        "/srv/volttron/agents/env/config",
        "0b5e7c3e-1111-2222-3333-444455556666",
        "hvac",
        &our_pid,
        // Its process group is its own.
        &pid,
        "stdin-empty",
    ];
    assert_eq!(seen, expected);
    assert_reaped(&process);
}

#[test]
fn a_launch_that_cannot_start_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = LaunchSpec::new("missing.agent", dir.path().join("no-such-program"), dir.path());
    match AgentProcess::launch(&missing) {
        Err(LaunchError::Spawn { identity, .. }) => assert_eq!(identity, "missing.agent"),
        other => panic!("expected a spawn error, got {other:?}"),
    }
    let nowhere = LaunchSpec::new("nowhere.agent", "/bin/sh", dir.path().join("no-such-dir"));
    assert!(matches!(
        AgentProcess::launch(&nowhere),
        Err(LaunchError::Spawn { .. })
    ));
    assert!(LaunchSpec::from_command("empty.agent", Vec::new(), dir.path()).is_none());
}

#[tokio::test]
async fn output_lines_reach_the_log_tagged_with_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
        echo "hello from stdout"
        echo "ERROR: the compressor is on fire" >&2
        echo "plain note on stderr" >&2
        printf 'a last line without a newline'
    "#;
    let (_process, mut rx) = launch_sh("output.agent", dir.path(), script);
    assert_eq!(next_report(&mut rx).await.exit, Exit::Code(0));

    let lines = log_lines_with("output.agent");
    let find = |text: &str| {
        lines
            .iter()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{text:?} not logged; agent lines: {lines:#?}"))
            .clone()
    };
    let out = find("hello from stdout");
    assert!(out.contains("INFO") && out.contains("volttron::agent_output") && out.contains("stdout"));
    let error = find("the compressor is on fire");
    assert!(error.contains("WARN") && error.contains("stderr"), "{error}");
    let note = find("plain note on stderr");
    assert!(note.contains("INFO") && note.contains("stderr"), "{note}");
    find("a last line without a newline");
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for (name, script, exit) in [
        ("code.agent", "exit 7", Exit::Code(7)),
        ("clean.agent", "exit 0", Exit::Code(0)),
        ("signal.agent", "kill -TERM $$", Exit::Signal(15)),
    ] {
        let (process, mut rx) = launch_sh(name, dir.path(), script);
        let report = next_report(&mut rx).await;
        assert_eq!(
            (report.identity.as_str(), report.pid, report.exit),
            (name, process.pid(), exit)
        );
        assert_eq!(process.wait().await, exit);
        assert_reaped(&process);
        // Stopping what has already ended sends nothing.
        assert_eq!(
            process.stop(GRACE).await,
            StopOutcome {
                exit,
                step: StopStep::AlreadyExited
            }
        );
        assert_eq!(
            process.stop_blocking(GRACE),
            StopOutcome {
                exit,
                step: StopStep::AlreadyExited
            }
        );
    }
}

// ---------------------------------------------------------------------------------------
// Stop

#[tokio::test]
async fn stop_ends_an_agent_that_handles_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!("trap 'exit 3' INT; echo > ready; {LOOP}");
    let (process, mut rx) = launch_sh("sigint.agent", dir.path(), &script);
    wait_for_file(&dir.path().join("ready"));
    let outcome = process.stop(DEADLINE).await;
    assert_eq!(
        outcome,
        StopOutcome {
            exit: Exit::Code(3),
            step: StopStep::Interrupt
        }
    );
    assert_eq!(next_report(&mut rx).await.exit, Exit::Code(3));
    assert_reaped(&process);
}

#[tokio::test]
async fn stop_ends_a_plain_agent_with_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let (process, mut rx) = launch_sh("plain.agent", dir.path(), &format!("echo > ready; {LOOP}"));
    wait_for_file(&dir.path().join("ready"));
    let outcome = process.stop(DEADLINE).await;
    assert_eq!(
        outcome,
        StopOutcome {
            exit: Exit::Signal(2),
            step: StopStep::Interrupt
        }
    );
    assert_eq!(next_report(&mut rx).await.exit, Exit::Signal(2));
    assert_reaped(&process);
}

#[tokio::test]
async fn stop_escalates_to_sigterm_when_sigint_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!("trap '' INT; echo > ready; {LOOP}");
    let (process, mut rx) = launch_sh("sigterm.agent", dir.path(), &script);
    wait_for_file(&dir.path().join("ready"));
    let outcome = process.stop(GRACE).await;
    assert_eq!(
        outcome,
        StopOutcome {
            exit: Exit::Signal(15),
            step: StopStep::Terminate
        }
    );
    assert_eq!(next_report(&mut rx).await.exit, Exit::Signal(15));
    assert_reaped(&process);
}

#[tokio::test]
async fn terminate_starts_with_sigterm_then_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // Notes a SIGINT (stop's first step) if it ever gets one; terminate must not send it.
    let script = format!("trap 'echo > got-int' INT; echo > ready; {LOOP}");
    let (process, mut rx) = launch_sh("terminate.agent", dir.path(), &script);
    wait_for_file(&dir.path().join("ready"));
    let outcome = process.terminate(GRACE).await;
    assert_eq!(
        outcome,
        StopOutcome {
            exit: Exit::Signal(15),
            step: StopStep::Terminate
        }
    );
    assert!(!dir.path().join("got-int").exists(), "no SIGINT");
    assert_eq!(next_report(&mut rx).await.exit, Exit::Signal(15));

    // One that ignores SIGTERM gets SIGKILL after one grace period.
    let script = format!("trap '' TERM; echo > ready2; {LOOP}");
    let (process, mut rx) = launch_sh("terminate.stubborn", dir.path(), &script);
    wait_for_file(&dir.path().join("ready2"));
    let started = Instant::now();
    let outcome = process.terminate(GRACE).await;
    assert_eq!(
        outcome,
        StopOutcome {
            exit: Exit::Signal(9),
            step: StopStep::Kill
        }
    );
    assert!(started.elapsed() >= GRACE && started.elapsed() < 2 * GRACE + GRACE / 2);
    assert_eq!(next_report(&mut rx).await.exit, Exit::Signal(9));
    assert_reaped(&process);
}

#[tokio::test]
async fn stop_escalates_to_sigkill_and_takes_the_grandchildren() {
    let dir = tempfile::tempdir().unwrap();
    // A background job of a non-interactive shell ignores SIGINT, and inherits the
    // ignored SIGTERM: only SIGKILL ends the grandchild.
    let script = format!("trap '' INT TERM; sleep 1000 & echo $! > grandchild; {LOOP}");
    let (process, mut rx) = launch_sh("sigkill.agent", dir.path(), &script);
    let grandchild = pid_in(&dir.path().join("grandchild"));
    assert!(pid_alive(grandchild));
    let started = Instant::now();
    let outcome = process.stop(GRACE).await;
    assert_eq!(
        outcome,
        StopOutcome {
            exit: Exit::Signal(9),
            step: StopStep::Kill
        }
    );
    assert!(started.elapsed() >= 2 * GRACE, "both grace periods were given");
    assert_eq!(next_report(&mut rx).await.exit, Exit::Signal(9));
    assert_reaped(&process);
    assert_dead(grandchild);
}

#[tokio::test]
async fn stop_signals_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    // The helper notes the SIGTERM it gets; the agent waits for it before exiting. Were
    // only the agent signalled, the helper would never hear, and the agent would wait on
    // until SIGKILL.
    let script = format!(
        r#"trap '' INT
        sh -c 'trap "echo term > helper-got-term; exit 0" TERM; echo > helper-ready; {LOOP}' &
        helper=$!
        trap 'wait $helper; exit 4' TERM
        {LOOP}"#
    );
    let (process, mut rx) = launch_sh("group.agent", dir.path(), &script);
    wait_for_file(&dir.path().join("helper-ready"));
    let outcome = process.stop(GRACE).await;
    assert_eq!(
        outcome,
        StopOutcome {
            exit: Exit::Code(4),
            step: StopStep::Terminate
        }
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("helper-got-term")).unwrap(),
        "term\n"
    );
    assert_eq!(next_report(&mut rx).await.exit, Exit::Code(4));
    assert_reaped(&process);
}

#[tokio::test]
async fn what_an_agent_leaves_in_its_group_dies_with_it() {
    let dir = tempfile::tempdir().unwrap();
    // The grandchild holds the output pipes open, and ignores SIGINT (a background job).
    let (process, mut rx) = launch_sh(
        "leftover.agent",
        dir.path(),
        "sleep 1000 & echo $! > grandchild; exit 5",
    );
    let report = next_report(&mut rx).await;
    assert_eq!(report.exit, Exit::Code(5));
    assert_reaped(&process);
    assert_dead(pid_in(&dir.path().join("grandchild")));
}

#[test]
fn stop_blocking_escalates_like_stop() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!("trap '' INT; echo > ready; {LOOP}");
    let (process, _rx) = launch_sh("blocking.agent", dir.path(), &script);
    wait_for_file(&dir.path().join("ready"));
    assert_eq!(process.wait_timeout(Duration::ZERO), None);
    let outcome = process.stop_blocking(GRACE);
    assert_eq!(
        outcome,
        StopOutcome {
            exit: Exit::Signal(15),
            step: StopStep::Terminate
        }
    );
    assert_eq!(process.wait_timeout(Duration::ZERO), Some(Exit::Signal(15)));
    assert_reaped(&process);
}

// ---------------------------------------------------------------------------------------
// Crash monitor

fn policy(limit: u32, period_secs: u64) -> RestartPolicy {
    RestartPolicy {
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(8),
        limit,
        period: Duration::from_secs(period_secs),
    }
}

/// Crashes the agent at `now` and, if a restart is decided, restarts it when due.
fn crash_and_restart(monitor: &mut CrashMonitor, now: &mut Duration) -> Decision {
    let decision = monitor.exited(Exit::Code(1), *now);
    if let Decision::Restart { after, .. } = decision {
        *now += after;
        assert!(monitor.restart_due(*now));
    }
    decision
}

#[test]
fn crash_backoff_doubles_up_to_the_maximum() {
    let mut monitor = CrashMonitor::new(policy(10, 3600));
    let mut now = Duration::from_secs(100);
    monitor.started();
    let delays: Vec<u64> = (0..6)
        .map(|_| match crash_and_restart(&mut monitor, &mut now) {
            Decision::Restart { after, .. } => after.as_secs(),
            other => panic!("expected a restart, got {other:?}"),
        })
        .collect();
    assert_eq!(delays, [1, 2, 4, 8, 8, 8]);
}

#[test]
fn restart_waits_for_the_backoff() {
    let mut monitor = CrashMonitor::new(policy(3, 3600));
    let now = Duration::from_secs(100);
    monitor.started();
    assert_eq!(
        monitor.exited(Exit::Signal(11), now),
        Decision::Restart {
            after: Duration::from_secs(1),
            attempt: 1
        }
    );
    assert_eq!(
        monitor.state(),
        MonitorState::BackingOff {
            until: now + Duration::from_secs(1),
            attempt: 1
        }
    );
    assert!(!monitor.restart_due(now + Duration::from_millis(999)));
    assert!(monitor.restart_due(now + Duration::from_secs(1)));
    assert_eq!(monitor.state(), MonitorState::Running);
    assert!(
        !monitor.restart_due(now + Duration::from_secs(2)),
        "one restart per decision"
    );
}

#[test]
fn a_crash_loop_gives_up_once_after_the_limit_within_the_period() {
    let mut monitor = CrashMonitor::new(policy(3, 3600));
    let mut now = Duration::from_secs(100);
    monitor.started();
    for attempt in 1..=3 {
        assert!(matches!(
            crash_and_restart(&mut monitor, &mut now),
            Decision::Restart { attempt: a, .. } if a == attempt
        ));
    }
    assert_eq!(monitor.restarts_within_period(now), 3);
    assert_eq!(
        monitor.exited(Exit::Signal(9), now),
        Decision::GaveUp {
            restarts: 3,
            last_exit: Exit::Signal(9)
        }
    );
    assert_eq!(monitor.state(), MonitorState::GaveUp);
    // Reported once; nothing restarts it on its own.
    assert_eq!(monitor.exited(Exit::Code(1), now), Decision::Ignored);
    assert!(!monitor.restart_due(now + Duration::from_secs(3600 * 24)));
    assert!(!monitor.stop_requested());
    assert_eq!(monitor.state(), MonitorState::GaveUp);
}

#[test]
fn crashes_further_apart_than_the_period_keep_restarting() {
    let mut monitor = CrashMonitor::new(policy(2, 60));
    let mut now = Duration::from_secs(100);
    monitor.started();
    for _ in 0..10 {
        now += Duration::from_secs(61);
        assert_eq!(
            crash_and_restart(&mut monitor, &mut now),
            Decision::Restart {
                after: Duration::from_secs(1),
                attempt: 1
            }
        );
    }
    // Two quick crashes reach the limit; the third gives up.
    now += Duration::from_secs(61);
    crash_and_restart(&mut monitor, &mut now);
    crash_and_restart(&mut monitor, &mut now);
    assert!(matches!(
        monitor.exited(Exit::Code(1), now),
        Decision::GaveUp { restarts: 2, .. }
    ));
}

#[test]
fn a_clean_exit_is_not_restarted() {
    let mut monitor = CrashMonitor::new(RestartPolicy::default());
    let now = Duration::from_secs(100);
    monitor.started();
    assert_eq!(monitor.exited(Exit::Code(0), now), Decision::Exited);
    assert_eq!(monitor.state(), MonitorState::Down);
    assert!(!monitor.restart_due(now + Duration::from_secs(3600)));
    assert_eq!(monitor.exited(Exit::Code(1), now), Decision::Ignored);
}

#[test]
fn an_explicit_start_resets_after_giving_up() {
    let mut monitor = CrashMonitor::new(policy(1, 3600));
    let mut now = Duration::from_secs(100);
    monitor.started();
    crash_and_restart(&mut monitor, &mut now);
    assert!(matches!(
        monitor.exited(Exit::Code(2), now),
        Decision::GaveUp { restarts: 1, .. }
    ));
    monitor.started();
    assert_eq!(monitor.state(), MonitorState::Running);
    assert_eq!(monitor.restarts_within_period(now), 0);
    assert_eq!(
        monitor.exited(Exit::Code(2), now),
        Decision::Restart {
            after: Duration::from_secs(1),
            attempt: 1
        }
    );
}

#[test]
fn a_stop_is_not_a_crash_and_cancels_a_pending_restart() {
    let mut monitor = CrashMonitor::new(RestartPolicy::default());
    let now = Duration::from_secs(100);
    monitor.started();
    assert!(!monitor.stop_requested());
    assert_eq!(monitor.state(), MonitorState::Stopping);
    assert_eq!(monitor.exited(Exit::Signal(9), now), Decision::Stopped);
    assert_eq!(monitor.state(), MonitorState::Down);

    monitor.started();
    assert!(matches!(
        monitor.exited(Exit::Code(1), now),
        Decision::Restart { .. }
    ));
    assert!(monitor.stop_requested(), "the pending restart is cancelled");
    assert_eq!(monitor.state(), MonitorState::Down);
    assert!(!monitor.restart_due(now + Duration::from_secs(3600)));
}

#[test]
fn a_zero_limit_never_restarts() {
    let mut monitor = CrashMonitor::new(RestartPolicy::never());
    monitor.started();
    assert_eq!(
        monitor.exited(Exit::Code(1), Duration::from_secs(100)),
        Decision::GaveUp {
            restarts: 0,
            last_exit: Exit::Code(1)
        }
    );
}

// ---------------------------------------------------------------------------------------
// Orphan safety

#[test]
fn the_parent_comparison() {
    // The platform seen as parent, then gone: re-parented.
    let mut watch = ParentWatch::new(500);
    assert_eq!(
        watch.check(Some(500), || panic!("not asked")),
        ParentStatus::Present
    );
    assert_eq!(
        watch.check(Some(500), || panic!("not asked")),
        ParentStatus::Present
    );
    assert_eq!(watch.check(Some(1), || panic!("not asked")), ParentStatus::Gone);
    // A parent outside our pid namespace is not the platform either.
    let mut watch = ParentWatch::new(500);
    watch.check(Some(500), || true);
    assert_eq!(watch.check(None, || true), ParentStatus::Gone);
    // Never seen as parent: gone if the platform is dead, not ours if it lives.
    assert_eq!(ParentWatch::new(500).check(Some(1), || false), ParentStatus::Gone);
    assert_eq!(
        ParentWatch::new(500).check(Some(77), || true),
        ParentStatus::NotOurParent
    );
}

#[tokio::test]
async fn watch_parent_resolves_when_getppid_changes() {
    let mut polls = 0;
    let status = tokio::time::timeout(
        DEADLINE,
        watch_parent(
            4242,
            Duration::from_millis(1),
            || {
                polls += 1;
                Some(if polls <= 3 { 4242 } else { 1 })
            },
            |_| true,
        ),
    )
    .await
    .expect("resolved");
    assert_eq!(status, ParentStatus::Gone);
    assert_eq!(polls, 4);

    let inherited = watch_parent(4242, Duration::from_millis(1), || Some(77), |_| true).await;
    assert_eq!(inherited, ParentStatus::NotOurParent);
}

/// Which part of [`an_orphaned_agent_notices_that_its_platform_is_gone`] this process
/// plays.
const ROLE: &str = "CONTROL_PROCESSES_TEST_ROLE";
const READY: &str = "CONTROL_PROCESSES_TEST_READY";
const ORPHAN_TEST: &str = "an_orphaned_agent_notices_that_its_platform_is_gone";

/// This test binary, running only [`ORPHAN_TEST`] as `role`.
fn this_test(role: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", ORPHAN_TEST, "--test-threads=1", "--nocapture"])
        .env(ROLE, role);
    command
}

/// The test process runs this binary again as a "middle" process, a child subreaper,
/// which runs a shell (the platform) that launches this binary once more as the agent
/// with `VOLTTRON_PARENT_PID` set. The middle kills the shell; the agent, re-parented to
/// the middle, must see it in `parent_watch` and exit 0; the middle reaps it.
#[test]
fn an_orphaned_agent_notices_that_its_platform_is_gone() {
    match std::env::var(ROLE).as_deref() {
        Ok("middle") => return orphan_middle(),
        Ok("agent") => return orphan_agent(),
        _ => {}
    }
    assert_eq!(launching_platform(), None, "this test is not run by a platform");
    let output = this_test("middle").output().unwrap();
    assert!(
        output.status.success(),
        "the middle process failed: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn orphan_middle() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = this_test("agent");
    // The shell stands for the platform: it launches the agent, then waits (as `sleep`,
    // keeping its pid) to be killed.
    let script = r#"VOLTTRON_PARENT_PID=$$ "$0" "$@" & echo $! > "$AGENT_PID_FILE"; exec sleep 1000"#;
    let mut platform = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(agent.get_program())
        .args(agent.get_args())
        .env(ROLE, "agent")
        .env(READY, dir.path().join("ready"))
        .env("AGENT_PID_FILE", dir.path().join("agent"))
        .spawn()
        .unwrap();
    let agent_pid = pid_in(&dir.path().join("agent"));
    assert_eq!(
        wait_for_file(&dir.path().join("ready")).trim(),
        platform.id().to_string()
    );

    platform.kill().unwrap();
    platform.wait().unwrap();

    // The agent is ours now: reap it, within the deadline.
    let pid = rustix::process::Pid::from_raw(agent_pid as i32).unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG).unwrap() {
            Some((_, status)) => {
                assert_eq!(status.exit_status(), Some(0), "the agent failed: {status:?}");
                return;
            }
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            None => {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
                panic!("the orphaned agent did not notice that its platform is gone");
            }
        }
    }
}

fn orphan_agent() {
    let platform = launching_platform().expect("launched with VOLTTRON_PARENT_PID");
    assert_eq!(parent_pid(), Some(platform));
    std::fs::write(std::env::var(READY).unwrap(), format!("{platform}\n")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime
        .block_on(async { tokio::time::timeout(DEADLINE, parent_watch(Duration::from_millis(20))).await })
        .expect("parent_watch resolved once the platform was gone");
    assert_ne!(parent_pid(), Some(platform));
}

#[test]
fn no_platform_no_watch() {
    // This test binary was not launched by a platform: the watch would never resolve.
    assert_eq!(launching_platform(), None);
    assert!(pid_alive(std::process::id()));
    assert!(!pid_alive(u32::MAX >> 2), "no such pid");
}
