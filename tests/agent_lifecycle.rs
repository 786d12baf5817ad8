//! Agent lifecycle: hook order, start/stop, duplicate and invalid identities, peerlist
//! add/drop, ping and query, shutdown in reverse start order, panic containment.

use std::sync::Arc;

use parking_lot::Mutex;
use volttron::prelude::*;
use volttron::testing::TestPlatform;
use volttron::{AgentStatus, ExitReason, SpawnError};

type Log = Arc<Mutex<Vec<String>>>;

struct Hooks {
    log: Log,
}

#[volttron::agent]
impl Hooks {
    #[on_setup]
    fn setup(&mut self, ctx: &AgentContext) {
        // Before joining the bus: not yet a peer.
        let me_visible = ctx.peers().contains(ctx.identity());
        self.log
            .lock()
            .push(format!("{} setup visible={me_visible}", ctx.identity()));
    }

    #[on_start]
    async fn start(&mut self, ctx: &AgentContext) {
        let me_visible = ctx.peers().contains(ctx.identity());
        self.log
            .lock()
            .push(format!("{} start visible={me_visible}", ctx.identity()));
    }

    #[on_stop]
    fn stop(&mut self, ctx: &AgentContext) {
        // Still on the bus while stopping: a last publication goes out.
        ctx.publish("bye", ctx.identity().as_str()).unwrap();
        self.log.lock().push(format!("{} stop", ctx.identity()));
    }

    #[rpc]
    fn quit(&mut self, ctx: &AgentContext) {
        ctx.stop();
    }

    #[rpc]
    fn boom(&mut self, why: String) -> u32 {
        panic!("boom: {why}")
    }

    #[rpc]
    async fn boom_later(&mut self, ctx: &AgentContext) -> u32 {
        ctx.ping("watcher").await.unwrap();
        panic!("async boom")
    }
}

fn hooks(log: &Log) -> Hooks {
    Hooks { log: log.clone() }
}

#[volttron::test]
async fn hooks_run_in_order_and_stop_runs_on_the_bus(tp: TestPlatform) {
    let log = Log::default();
    let bye = tp.capture("bye");
    let agent = tp.spawn("a1", hooks(&log)).await.unwrap();
    assert_eq!(*log.lock(), ["a1 setup visible=false", "a1 start visible=true"]);
    tp.assert_peers(&["a1"]);
    agent.stop().await;
    assert_eq!(log.lock().last().unwrap(), "a1 stop");
    assert_eq!(bye.len(), 1);
    tp.assert_peers(&[]);
    assert_eq!(
        tp.agent_status("a1").await,
        Some(AgentStatus::Exited(ExitReason::Normal))
    );
    // The identity is free again.
    tp.spawn("a1", hooks(&log)).await.unwrap();
    tp.shutdown().await;
}

#[volttron::test]
async fn agents_stop_themselves(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("a1", hooks(&log)).await.unwrap();
    tp.call("a1", "quit", ()).await.unwrap();
    tp.settle().await;
    tp.assert_peers(&[]);
    assert_eq!(log.lock().last().unwrap(), "a1 stop");
    tp.shutdown().await;
}

#[volttron::test]
async fn duplicate_and_invalid_identities_fail_at_once(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("dup", hooks(&log)).await.unwrap();
    let e = tp.spawn("dup", hooks(&log)).await.unwrap_err();
    assert_eq!(e, SpawnError::DuplicateIdentity(Identity::new("dup").unwrap()));
    assert_eq!(e.to_string(), "identity 'dup' is already in use on this platform");
    // The second instance never ran a hook.
    assert_eq!(log.lock().len(), 2);
    assert!(matches!(
        tp.spawn("bad id", hooks(&log)).await,
        Err(SpawnError::InvalidIdentity(_))
    ));
    assert!(matches!(
        tp.spawn("platform", hooks(&log)).await,
        Err(SpawnError::DuplicateIdentity(_))
    ));
    tp.shutdown().await;
}

#[volttron::test]
async fn shutdown_stops_agents_in_reverse_start_order(tp: TestPlatform) {
    let log = Log::default();
    for id in ["first", "second", "third"] {
        tp.spawn(id, hooks(&log)).await.unwrap();
    }
    log.lock().clear();
    tp.shutdown().await;
    assert_eq!(*log.lock(), ["third stop", "second stop", "first stop"]);
    assert!(matches!(
        tp.spawn("late", hooks(&log)).await,
        Err(SpawnError::PlatformStopped)
    ));
}

/// Records peerlist events.
struct Watcher {
    events: Arc<Mutex<Vec<PeerEvent>>>,
}

fn watcher(events: &Arc<Mutex<Vec<PeerEvent>>>) -> Watcher {
    Watcher {
        events: events.clone(),
    }
}

#[volttron::agent]
impl Watcher {
    #[on_peerlist]
    fn peers(&mut self, event: &PeerEvent) {
        self.events.lock().push(event.clone());
    }
}

#[volttron::test]
async fn peerlist_add_and_drop_reach_watchers(tp: TestPlatform) {
    let events = Arc::new(Mutex::new(Vec::new()));
    tp.spawn("watcher", watcher(&events)).await.unwrap();
    let log = Log::default();
    let a = tp.spawn("a1", hooks(&log)).await.unwrap();
    a.stop().await;
    tp.settle().await;
    let id = Identity::new("a1").unwrap();
    assert_eq!(
        *events.lock(),
        [PeerEvent::Added(id.clone()), PeerEvent::Dropped(id)]
    );
    tp.shutdown().await;
}

#[volttron::test]
async fn ping_and_query(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("a1", hooks(&log)).await.unwrap();
    tp.ping("a1").await.unwrap();
    assert!(matches!(
        tp.ping("nobody").await,
        Err(RpcError::UnknownPeer { .. })
    ));
    assert_eq!(tp.query("instance-name"), Some(Value::from("test")));
    assert_eq!(
        tp.query("platform-version"),
        Some(Value::from(env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(tp.query("no-such-thing"), None);
    tp.shutdown().await;
}

#[volttron::test]
async fn a_panicking_handler_ends_only_its_agent(tp: TestPlatform) {
    let log = Log::default();
    let events = Arc::new(Mutex::new(Vec::new()));
    tp.spawn("watcher", watcher(&events)).await.unwrap();
    tp.spawn("crashy", hooks(&log)).await.unwrap();
    tp.spawn("steady", hooks(&log)).await.unwrap();

    let e = tp.call("crashy", "boom", ("valve",)).await.unwrap_err();
    assert!(
        matches!(&e, RpcError::Remote { message, kind, .. } if message == "boom: valve" && kind == "panic"),
        "{e:?}"
    );
    tp.settle().await;
    // Dropped from the bus, on_stop not run on its poisoned state, reason recorded.
    tp.assert_peers(&["steady", "watcher"]);
    assert!(!log.lock().iter().any(|l| l == "crashy stop"));
    assert_eq!(
        tp.agent_status("crashy").await,
        Some(AgentStatus::Exited(ExitReason::Crashed("boom: valve".into())))
    );
    assert!(
        events
            .lock()
            .contains(&PeerEvent::Dropped(Identity::new("crashy").unwrap()))
    );
    assert!(matches!(
        tp.call("crashy", "quit", ()).await,
        Err(RpcError::UnknownPeer { .. })
    ));

    // An async handler panicking after an await is contained the same way.
    let e = tp.call("steady", "boom_later", ()).await.unwrap_err();
    assert!(
        matches!(&e, RpcError::Remote { kind, .. } if kind == "panic"),
        "{e:?}"
    );
    tp.assert_peers(&["watcher"]);

    // The platform keeps serving.
    tp.spawn("fresh", hooks(&log)).await.unwrap();
    tp.ping("fresh").await.unwrap();
    tp.shutdown().await;
}

/// Fails to start.
struct Grumpy;

#[volttron::agent]
impl Grumpy {
    #[on_start]
    fn start(&mut self) -> Result<(), String> {
        Err("no config".into())
    }
}

#[volttron::test]
async fn start_failures_are_reported_and_leave_nothing_behind(tp: TestPlatform) {
    let e = tp.spawn("grumpy", Grumpy).await.unwrap_err();
    assert_eq!(
        e,
        SpawnError::StartFailed {
            identity: Identity::new("grumpy").unwrap(),
            reason: "no config".into()
        }
    );
    tp.assert_peers(&[]);
    assert!(tp.subscriptions("").is_empty());
    tp.settle().await;
    assert!(matches!(
        tp.agent_status("grumpy").await,
        Some(AgentStatus::Exited(ExitReason::StartFailed(_)))
    ));
    tp.shutdown().await;
}

/// Blocks forever in on_stop (waits for virtual time nobody advances).
struct Stuck;

#[volttron::agent]
impl Stuck {
    #[on_stop]
    async fn stop(&mut self, ctx: &AgentContext) {
        ctx.clock().sleep(std::time::Duration::from_secs(3600)).await;
    }
}

#[volttron::test]
async fn a_stuck_agent_is_killed(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("first", hooks(&log)).await.unwrap();
    tp.spawn("stuck", Stuck).await.unwrap();
    assert!(tp.stop_agent("stuck").await);
    tp.settle().await;
    assert!(matches!(
        tp.agent_status("stuck").await,
        Some(AgentStatus::Exited(ExitReason::Killed(_)))
    ));
    tp.assert_peers(&["first"]);

    tp.spawn("stuck", Stuck).await.unwrap();
    tp.shutdown().await;
    // Killed at shutdown too; the agent started before it still got its on_stop.
    assert_eq!(log.lock().last().unwrap(), "first stop");
}

/// Writes into its data directory on request.
struct Archivist;

#[volttron::agent]
impl Archivist {
    #[rpc]
    fn archive(&mut self, ctx: &AgentContext, text: String) -> Result<String, String> {
        let dir = ctx.data_dir().ok_or("no data directory")?;
        std::fs::write(dir.join("archive.txt"), text).map_err(|e| e.to_string())?;
        Ok(dir.display().to_string())
    }
}

#[volttron::test]
async fn agents_have_a_data_directory_under_the_home(tp: TestPlatform) {
    tp.spawn("archivist", Archivist).await.unwrap();
    let dir: String = tp
        .call("archivist", "archive", ("kept",))
        .returning()
        .await
        .unwrap();
    let expected = tp.home_dir().join("agents").join("archivist").join("data");
    assert_eq!(std::path::PathBuf::from(dir), expected);
    assert_eq!(
        std::fs::read_to_string(expected.join("archive.txt")).unwrap(),
        "kept"
    );
}
