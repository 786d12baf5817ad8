//! Supervision: restart types, strategies, restart intensity with escalation, backoff on
//! the virtual clock, ordered start and reverse stop, shutdown policies.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use volttron::prelude::*;
use volttron::supervision::{ChildSpec, Restart, Shutdown, Strategy, Supervisor};
use volttron::testing::TestPlatform;
use volttron::{AgentStatus, ExitReason};

type Log = Arc<Mutex<Vec<String>>>;

/// A worker that logs its lifecycle and can be told to crash or quit.
struct Worker {
    log: Log,
    calls: u32,
    start_delay: u64,
}

#[volttron::agent]
impl Worker {
    #[on_start]
    async fn start(&mut self, ctx: &AgentContext) {
        if self.start_delay > 0 {
            self.log.lock().push(format!("starting {}", ctx.identity()));
            ctx.clock().sleep(Duration::from_secs(self.start_delay)).await;
        }
        self.log.lock().push(format!("start {}", ctx.identity()));
    }

    #[on_stop]
    fn stop(&mut self, ctx: &AgentContext) {
        self.log.lock().push(format!("stop {}", ctx.identity()));
    }

    /// Counts calls to this instance (a fresh instance starts at 1).
    #[rpc]
    fn hit(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }

    #[rpc]
    fn boom(&mut self) {
        panic!("boom")
    }

    #[rpc]
    fn quit(&mut self, ctx: &AgentContext) {
        ctx.stop();
    }
}

fn worker(log: &Log) -> impl Fn() -> Worker + Send + Sync + 'static {
    let log = log.clone();
    move || Worker {
        log: log.clone(),
        calls: 0,
        start_delay: 0,
    }
}

fn three(log: &Log, strategy: Strategy) -> volttron::supervision::SupervisorSpec {
    Supervisor::builder("trio")
        .strategy(strategy)
        .restart_limit(10, Duration::from_secs(60))
        .backoff(Duration::ZERO, Duration::ZERO)
        .child(ChildSpec::agent("a", worker(log)))
        .child(ChildSpec::agent("b", worker(log)))
        .child(ChildSpec::agent("c", worker(log)))
        .build()
}

async fn crash(tp: &TestPlatform, who: &str) {
    let e = tp.call(who, "boom", ()).await.unwrap_err();
    assert!(
        matches!(e, RpcError::Remote { ref kind, .. } if kind == "panic"),
        "{e:?}"
    );
    tp.settle().await;
}

async fn hits(tp: &TestPlatform, who: &str) -> u32 {
    tp.call(who, "hit", ()).returning().await.unwrap()
}

#[volttron::test]
async fn one_for_one_restarts_only_the_failed_child(tp: TestPlatform) {
    let log = Log::default();
    tp.supervise(three(&log, Strategy::OneForOne)).await.unwrap();
    assert_eq!(*log.lock(), ["start a", "start b", "start c"]);
    for who in ["a", "b", "c"] {
        assert_eq!(hits(&tp, who).await, 1);
    }
    log.lock().clear();
    crash(&tp, "b").await;
    assert_eq!(*log.lock(), ["start b"]);
    // b is a fresh instance; a and c kept their state.
    assert_eq!(hits(&tp, "b").await, 1);
    assert_eq!(hits(&tp, "a").await, 2);
    assert_eq!(hits(&tp, "c").await, 2);
    assert_eq!(tp.restart_count("b"), 1);
    assert_eq!(tp.restart_count("a"), 0);
    tp.assert_peers(&["a", "b", "c"]);
    tp.shutdown().await;
}

#[volttron::test]
async fn one_for_all_restarts_every_child_in_order(tp: TestPlatform) {
    let log = Log::default();
    tp.supervise(three(&log, Strategy::OneForAll)).await.unwrap();
    log.lock().clear();
    crash(&tp, "b").await;
    // The others stop newest first, then all start in order.
    assert_eq!(*log.lock(), ["stop c", "stop a", "start a", "start b", "start c"]);
    for who in ["a", "b", "c"] {
        assert_eq!(hits(&tp, who).await, 1, "{who} is fresh");
        assert_eq!(tp.restart_count(who), 1);
    }
    tp.shutdown().await;
}

#[volttron::test]
async fn rest_for_one_restarts_the_failed_child_and_the_ones_after_it(tp: TestPlatform) {
    let log = Log::default();
    tp.supervise(three(&log, Strategy::RestForOne)).await.unwrap();
    hits(&tp, "a").await;
    log.lock().clear();
    crash(&tp, "b").await;
    assert_eq!(*log.lock(), ["stop c", "start b", "start c"]);
    assert_eq!(hits(&tp, "a").await, 2, "a kept its state");
    assert_eq!(tp.restart_count("a"), 0);
    assert_eq!(tp.restart_count("c"), 1);
    tp.shutdown().await;
}

#[volttron::test]
async fn restart_types(tp: TestPlatform) {
    let log = Log::default();
    let spec = Supervisor::builder("types")
        .restart_limit(10, Duration::from_secs(60))
        .backoff(Duration::ZERO, Duration::ZERO)
        .child(ChildSpec::agent("perm", worker(&log)).restart(Restart::Permanent))
        .child(ChildSpec::agent("trans", worker(&log)).restart(Restart::Transient))
        .child(ChildSpec::agent("temp", worker(&log)).restart(Restart::Temporary))
        .build();
    tp.supervise(spec).await.unwrap();

    // Abnormal exits: permanent and transient come back, temporary does not.
    for who in ["perm", "trans", "temp"] {
        crash(&tp, who).await;
    }
    tp.assert_peers(&["perm", "trans"]);
    assert_eq!(
        tp.agent_status("temp").await,
        Some(AgentStatus::Exited(ExitReason::Crashed("boom".into())))
    );

    // Normal exits: only permanent comes back.
    for who in ["perm", "trans"] {
        tp.call(who, "quit", ()).await.unwrap();
    }
    tp.settle().await;
    tp.assert_peers(&["perm"]);
    assert_eq!(tp.restart_count("perm"), 2);
    assert_eq!(tp.restart_count("trans"), 1);
    assert_eq!(
        tp.agent_status("trans").await,
        Some(AgentStatus::Exited(ExitReason::Normal))
    );
    tp.shutdown().await;
}

#[volttron::test]
async fn exceeding_the_restart_limit_escalates(tp: TestPlatform) {
    let log = Log::default();
    let alerts = tp.capture("alerts/");
    let spec = Supervisor::builder("fragile")
        .restart_limit(2, Duration::from_secs(60))
        .backoff(Duration::ZERO, Duration::ZERO)
        .child(ChildSpec::agent("x", worker(&log)))
        .child(ChildSpec::agent("y", worker(&log)))
        .build();
    // Temporary under the platform: once it gives up, it stays down.
    tp.start_child(ChildSpec::supervisor(spec).restart(Restart::Temporary))
        .await
        .unwrap();
    crash(&tp, "x").await;
    crash(&tp, "x").await;
    assert_eq!(tp.restart_count("x"), 2);
    tp.assert_peers(&["x", "y"]);
    log.lock().clear();
    // The third crash within the window is one too many: the supervisor stops its other
    // children and itself.
    crash(&tp, "x").await;
    assert_eq!(*log.lock(), ["stop y"]);
    tp.assert_peers(&[]);
    assert_eq!(tp.restart_count("x"), 2);
    assert_eq!(
        tp.agent_status("x").await,
        Some(AgentStatus::Exited(ExitReason::RestartLimit))
    );
    // Each crash of x was alerted, then the supervisor's own abnormal exit.
    let keys: Vec<String> = alerts
        .publications()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.topic,
                p.header("alert_key").and_then(Value::as_str).unwrap()
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            "alerts/Worker/x child_exited",
            "alerts/Worker/x child_exited",
            "alerts/Worker/x child_exited",
            "alerts/Supervisor/fragile child_exited"
        ]
    );
    tp.shutdown().await;
}

#[volttron::test]
async fn the_platform_gives_up_on_a_crash_looping_agent_once(tp: TestPlatform) {
    let log = Log::default();
    let alerts = tp.capture("alerts/");
    tp.start_child(ChildSpec::agent("looper", worker(&log)))
        .await
        .unwrap();
    tp.spawn("bystander", worker(&log)()).await.unwrap();
    // OTP's default intensity: one restart within 5 s; the second crash is one too many.
    for _ in 0..2 {
        crash(&tp, "looper").await;
        tp.advance(Duration::from_secs(1)).await; // backoff
    }
    assert_eq!(tp.restart_count("looper"), 1);
    assert_eq!(
        tp.agent_status("looper").await,
        Some(AgentStatus::Exited(ExitReason::RestartLimit))
    );
    let limits = alerts
        .publications()
        .iter()
        .filter(|p| p.header("alert_key") == Some(&Value::from("restart_limit")))
        .count();
    assert_eq!(limits, 1, "reported once");
    assert_eq!(tp.platform().counters().supervisor_give_ups, 1, "counted once");
    // Later time passing does not bring it back or report again.
    tp.advance(Duration::from_secs(600)).await;
    tp.assert_peers(&["bystander"]);
    assert_eq!(alerts.len(), 3);
    tp.shutdown().await;
}

#[volttron::test]
async fn restarts_back_off_exponentially_on_the_platform_clock(tp: TestPlatform) {
    let log = Log::default();
    let spec = Supervisor::builder("patient")
        .restart_limit(10, Duration::from_secs(600))
        .backoff(Duration::from_secs(1), Duration::from_secs(3))
        .child(ChildSpec::agent("x", worker(&log)))
        .build();
    tp.supervise(spec).await.unwrap();
    for (n, delay) in [(1, 1), (2, 2), (3, 3), (4, 3)] {
        crash(&tp, "x").await;
        tp.assert_peers(&[]);
        tp.advance(Duration::from_millis(delay * 1000 - 1)).await;
        tp.assert_peers(&[]);
        tp.advance(Duration::from_millis(1)).await;
        tp.assert_peers(&["x"]);
        assert_eq!(tp.restart_count("x"), n);
    }
    tp.shutdown().await;
}

#[volttron::test]
async fn children_start_in_order_and_stop_in_reverse(tp: TestPlatform) {
    let log = Log::default();
    let slow = {
        let log = log.clone();
        move || Worker {
            log: log.clone(),
            calls: 0,
            start_delay: 5,
        }
    };
    let spec = Supervisor::builder("ordered")
        .child(ChildSpec::agent("first", slow))
        .child(ChildSpec::agent("second", worker(&log)))
        .build();
    let platform = tp.platform().clone();
    let started = tokio::spawn(async move { platform.supervise(spec).await });
    tp.settle().await;
    // `second` waits for `first`'s on_start, which waits for 5 s of virtual time.
    assert_eq!(*log.lock(), ["starting first"]);
    tp.advance(Duration::from_secs(5)).await;
    let sup = started.await.unwrap().unwrap();
    assert_eq!(*log.lock(), ["starting first", "start first", "start second"]);
    log.lock().clear();
    sup.stop().await;
    assert_eq!(*log.lock(), ["stop second", "stop first"]);
    tp.assert_peers(&[]);
    // Stopped on purpose: not restarted.
    tp.advance(Duration::from_secs(60)).await;
    tp.assert_peers(&[]);
    tp.shutdown().await;
}

#[volttron::test]
async fn a_child_that_cannot_start_fails_the_supervisor_start(tp: TestPlatform) {
    let log = Log::default();
    let spec = Supervisor::builder("broken")
        .child(ChildSpec::agent("good", worker(&log)))
        .child(ChildSpec::agent("bad id", worker(&log)))
        .build();
    let e = tp.supervise(spec).await.unwrap_err();
    assert!(matches!(e, volttron::SpawnError::InvalidIdentity(_)), "{e}");
    // The child started before it was stopped again.
    assert_eq!(*log.lock(), ["start good", "stop good"]);
    tp.assert_peers(&[]);
    tp.shutdown().await;
}

/// Never finishes on_stop.
struct Stuck {
    log: Log,
}

#[volttron::agent]
impl Stuck {
    #[on_stop]
    async fn stop(&mut self, ctx: &AgentContext) {
        self.log.lock().push("stopping".into());
        ctx.clock().sleep(Duration::from_secs(3600)).await;
        self.log.lock().push("stopped".into());
    }
}

#[volttron::test]
async fn an_infinity_shutdown_waits_for_on_stop(tp: TestPlatform) {
    let log = Log::default();
    let stuck = {
        let log = log.clone();
        move || Stuck { log: log.clone() }
    };
    let spec = Supervisor::builder("patient-stop")
        .child(ChildSpec::agent("slow", stuck).shutdown(Shutdown::Infinity))
        .build();
    let sup = tp.supervise(spec).await.unwrap();
    let stopping = tokio::spawn(async move { sup.stop().await });
    tp.settle().await;
    assert_eq!(*log.lock(), ["stopping"]);
    // An hour of virtual time later, on_stop finishes: no kill in between.
    tp.advance(Duration::from_secs(3600)).await;
    stopping.await.unwrap();
    assert_eq!(*log.lock(), ["stopping", "stopped"]);
    assert_eq!(
        tp.agent_status("slow").await,
        Some(AgentStatus::Exited(ExitReason::Normal))
    );
    tp.shutdown().await;
}

#[volttron::test]
async fn shutdown_policies(tp: TestPlatform) {
    let log = Log::default();
    let stuck = {
        let log = log.clone();
        move || Stuck { log: log.clone() }
    };
    let spec = Supervisor::builder("policies")
        .child(ChildSpec::agent("brutal", worker(&log)).shutdown(Shutdown::BrutalKill))
        .child(ChildSpec::agent("stuck", stuck).shutdown(Shutdown::Timeout(Duration::from_secs(1))))
        .build();
    let sup = tp.supervise(spec).await.unwrap();
    log.lock().clear();
    sup.stop().await;
    // The stuck one got its on_stop, then was killed; the brutal one got no on_stop.
    assert_eq!(*log.lock(), ["stopping"]);
    assert!(matches!(
        tp.agent_status("stuck").await,
        Some(AgentStatus::Exited(ExitReason::Killed(_)))
    ));
    assert!(matches!(
        tp.agent_status("brutal").await,
        Some(AgentStatus::Exited(ExitReason::Killed(_)))
    ));
    tp.shutdown().await;
}

/// Records peerlist events.
struct Watcher {
    events: Arc<Mutex<Vec<String>>>,
}

#[volttron::agent]
impl Watcher {
    #[on_peerlist]
    fn peers(&mut self, event: &PeerEvent) {
        let what = match event {
            PeerEvent::Added(p) => format!("+{p}"),
            PeerEvent::Dropped(p) => format!("-{p}"),
        };
        self.events.lock().push(what);
    }
}

#[volttron::test]
async fn a_restarted_agent_rejoins_with_its_subscriptions(tp: TestPlatform) {
    let log = Log::default();
    let events = Arc::new(Mutex::new(Vec::new()));
    tp.spawn(
        "watcher",
        Watcher {
            events: events.clone(),
        },
    )
    .await
    .unwrap();
    tp.start_child(ChildSpec::agent("a", worker(&log))).await.unwrap();
    crash(&tp, "a").await;
    tp.advance(Duration::from_secs(1)).await;
    tp.settle().await;
    assert_eq!(*events.lock(), ["+a", "-a", "+a"]);
    assert_eq!(hits(&tp, "a").await, 1);
    tp.shutdown().await;
}

#[volttron::test]
async fn a_crash_sets_health_bad_until_the_fresh_instance_is_up(tp: TestPlatform) {
    use volttron::Status;
    let log = Log::default();
    let spec = Supervisor::builder("healthy")
        .backoff(Duration::from_secs(2), Duration::from_secs(2))
        .child(ChildSpec::agent("x", worker(&log)))
        .build();
    tp.supervise(spec).await.unwrap();
    assert_eq!(tp.agent_health("x").await.unwrap().status, Status::Good);
    crash(&tp, "x").await;
    let health = tp.agent_health("x").await.unwrap();
    assert_eq!(health.status, Status::Bad);
    assert!(health.context.as_deref().unwrap().contains("boom"), "{health:?}");
    assert_eq!(health.last_updated, tp.now());
    assert_eq!(tp.agent_status("x").await, Some(AgentStatus::Restarting));
    tp.advance(Duration::from_secs(2)).await;
    let health = tp.agent_health("x").await.unwrap();
    assert_eq!(health.status, Status::Good);
    assert_eq!(tp.agent_status("x").await, Some(AgentStatus::Running));
    tp.shutdown().await;
}
