//! The example remote agent (`examples/remote_agent.rs`) as a real child process, launched
//! the way a platform launches agents: identity, home and config in the environment, no
//! arguments. It joins, publishes, answers RPC, gets its config from the store, stops on
//! request with exit status 0, and when killed with SIGKILL it is dropped from the peer
//! list within a second.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::mpsc;
use volttron::prelude::*;

const DEADLINE: Duration = Duration::from_secs(20);

/// The example binary, built by `cargo test` alongside this test (built here if not).
fn remote_agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("remote_agent");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "remote_agent"])
            .status()
            .unwrap();
        assert!(status.success(), "building the example failed");
    }
    path
}

/// Hears the remote agent's readings and peer events.
struct Collector {
    events: mpsc::UnboundedSender<String>,
}

#[volttron::agent]
impl Collector {
    #[subscribe("devices/remote/")]
    fn reading(&mut self, msg: &Publication) {
        let _ = self
            .events
            .send(format!("reading {} {}", msg.sender, msg.message));
    }

    #[on_peerlist]
    fn peer(&mut self, event: &PeerEvent) {
        let _ = self.events.send(format!("{event:?}"));
    }
}

/// A platform on a temporary home with a [`Collector`]; its events arrive on the receiver.
async fn platform_with_collector() -> (tempfile::TempDir, Platform, mpsc::UnboundedReceiver<String>) {
    let home = tempfile::tempdir().unwrap();
    let platform = Platform::builder().home(home.path()).start().await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    platform
        .spawn("collector", Collector { events: tx })
        .await
        .unwrap();
    (home, platform, rx)
}

async fn expect(rx: &mut mpsc::UnboundedReceiver<String>, limit: Duration, wanted: impl Fn(&str) -> bool) {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(limit, async {
        loop {
            let got = rx.recv().await.expect("collector alive");
            if wanted(&got) {
                return;
            }
            seen.push(got);
        }
    })
    .await;
    assert!(found.is_ok(), "not within {limit:?}; saw {seen:?}");
}

fn launch(home: &std::path::Path, identity: &str, config: Option<&std::path::Path>) -> Child {
    let mut cmd = tokio::process::Command::new(remote_agent_binary());
    cmd.env("AGENT_VIP_IDENTITY", identity)
        .env("VOLTTRON_HOME", home)
        .env("RUST_LOG", "warn")
        .env_remove("VOLTTRON_PLATFORM_ADDRESS")
        .env_remove("AGENT_CREDENTIALS")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    match config {
        Some(c) => cmd.env("AGENT_CONFIG", c),
        None => cmd.env_remove("AGENT_CONFIG"),
    };
    cmd.kill_on_drop(true)
        .spawn()
        .expect("launch the example remote agent")
}

async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("the child exits in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_runs_as_a_child_process_with_the_same_api() {
    let (home, platform, mut rx) = platform_with_collector().await;
    let config = home.path().join("meter.json");
    std::fs::write(&config, r#"{"interval": 1, "site": "campus"}"#).unwrap();

    let mut child = launch(home.path(), "meter.child", Some(&config));
    expect(&mut rx, DEADLINE, |e| e == "Added(\"meter.child\")").await;
    expect(&mut rx, DEADLINE, |e| e.starts_with("reading meter.child ")).await;

    let echoed = platform
        .call("meter.child", "echo", (Value::from("round trip"),))
        .await
        .unwrap();
    assert_eq!(echoed, Value::from("round trip"));
    // AGENT_CONFIG went into the store, as the agent's `config`.
    let stored = platform
        .call("config.store", "get_config", ("meter.child", "config", false))
        .await
        .unwrap();
    assert_eq!(stored.get("site"), Some(&Value::from("campus")));
    platform.ping("meter.child").await.unwrap();

    // Asked to stop, it leaves the platform and exits cleanly.
    let stopped: bool = platform
        .call("meter.child", "stop_agent", ())
        .returning()
        .await
        .unwrap();
    assert!(stopped);
    expect(&mut rx, DEADLINE, |e| e == "Dropped(\"meter.child\")").await;
    let status = wait_exit(&mut child).await;
    assert!(status.success(), "{status}");
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_child_is_dropped_within_a_second() {
    let (home, platform, mut rx) = platform_with_collector().await;
    let mut child = launch(home.path(), "meter.doomed", None);
    expect(&mut rx, DEADLINE, |e| e == "Added(\"meter.doomed\")").await;
    child.start_kill().unwrap();
    expect(&mut rx, Duration::from_secs(1), |e| {
        e == "Dropped(\"meter.doomed\")"
    })
    .await;
    assert!(!platform.peers().iter().any(|p| p.as_str() == "meter.doomed"));
    let _ = wait_exit(&mut child).await;
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_launching_platform_dies_stops_by_itself() {
    let (home, platform, mut rx) = platform_with_collector().await;
    // A shell stands in for the platform process that launched the agent: it names itself
    // in VOLTTRON_PARENT_PID, starts the agent in the background and exits at once, so the
    // agent is orphaned right after it joins.
    let script = format!(
        "VOLTTRON_PARENT_PID=$$ AGENT_VIP_IDENTITY=meter.orphan VOLTTRON_HOME={} RUST_LOG=warn {} & exit 0",
        home.path().display(),
        remote_agent_binary().display()
    );
    let status = Command::new("/bin/sh").args(["-c", &script]).status().unwrap();
    assert!(status.success());
    expect(&mut rx, DEADLINE, |e| e == "Added(\"meter.orphan\")").await;
    // It notices its parent is gone (polled every 500 ms) and stops cleanly.
    expect(&mut rx, Duration::from_secs(3), |e| {
        e == "Dropped(\"meter.orphan\")"
    })
    .await;
    platform.shutdown().await;
}
