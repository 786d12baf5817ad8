//! Embedding: a real-clock platform inside an existing tokio runtime, from a non-tokio
//! executor, real timers, bounded shutdown with a stuck agent, builder validation.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use volttron::prelude::*;
use volttron::{PlatformError, SpawnError};

struct Echo;

#[volttron::agent]
impl Echo {
    #[rpc]
    fn echo(&mut self, text: String) -> String {
        text
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_inside_an_existing_tokio_runtime() {
    let platform = Platform::builder().instance_name("bms1").start().await.unwrap();
    assert!(!platform.clock().is_virtual());
    platform.spawn("echo", Echo).await.unwrap();
    let reply: String = platform.call("echo", "echo", ("hi",)).returning().await.unwrap();
    assert_eq!(reply, "hi");
    // The platform's own services are peers too, as in VOLTTRON.
    assert_eq!(platform.peers(), ["echo", "platform.health"]);
    assert_eq!(platform.instance_name(), "bms1");
    platform.shutdown().await;
    platform.shutdown().await; // idempotent
    assert!(matches!(
        platform.spawn("late", Echo).await,
        Err(SpawnError::PlatformStopped)
    ));
}

#[test]
fn runs_from_a_non_tokio_executor() {
    futures::executor::block_on(async {
        let platform = Platform::builder().start().await.unwrap();
        platform.spawn("echo", Echo).await.unwrap();
        let reply = platform
            .call("echo", "echo", ("plain executor",))
            .timeout(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(reply, Value::from("plain executor"));
        platform.shutdown().await;
    });
}

struct Pulse {
    tx: mpsc::Sender<Instant>,
}

#[volttron::agent]
impl Pulse {
    #[periodic(secs = 0.02)]
    fn pulse(&mut self) {
        let _ = self.tx.send(Instant::now());
    }
}

#[tokio::test]
async fn real_clock_timers_fire() {
    let platform = Platform::builder().start().await.unwrap();
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    platform.spawn("pulse", Pulse { tx }).await.unwrap();
    let ticks: Vec<Instant> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("a tick"))
        .collect();
    // The first run is at start (no `wait`); never early after that: the third run's
    // deadline is two periods after the agent started, which was after `started`.
    assert!(
        ticks[2] - started >= Duration::from_millis(40),
        "{:?}",
        ticks[2] - started
    );
    platform.shutdown().await;
}

struct Stuck;

#[volttron::agent]
impl Stuck {
    #[on_stop]
    async fn stop(&mut self, ctx: &AgentContext) {
        ctx.clock().sleep(Duration::from_secs(3600)).await;
    }
}

#[tokio::test]
async fn shutdown_with_a_stuck_agent_is_bounded_by_the_timeout() {
    let platform = Platform::builder()
        .shutdown_timeout(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    platform.spawn("stuck", Stuck).await.unwrap();
    let t = Instant::now();
    platform.shutdown().await;
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(200), "waited the timeout: {took:?}");
    assert!(took < Duration::from_secs(5), "then killed it: {took:?}");
}

#[tokio::test]
async fn builder_validates_and_creates_home() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("nested/home");
    let platform = Platform::builder().home(&home).start().await.unwrap();
    assert!(home.is_dir());
    assert_eq!(platform.home(), Some(home.as_path()));
    platform.shutdown().await;

    let e = Platform::builder()
        .instance_name("no spaces")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(e, PlatformError::InstanceName(_)));

    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let e = Platform::builder()
        .home(file.join("sub"))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(e, PlatformError::Home { .. }), "{e}");
}

/// Blocks its thread until told to go on.
struct Hog {
    release: std::sync::Arc<parking_lot::Mutex<Option<mpsc::Receiver<()>>>>,
}

#[volttron::agent]
impl Hog {
    #[rpc]
    fn hog(&mut self) {
        if let Some(rx) = self.release.lock().take() {
            let _ = rx.recv_timeout(Duration::from_secs(30));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_run_on_their_own_thread() {
    let home = tempfile::tempdir().unwrap();
    let platform = Platform::builder()
        .home(home.path())
        .agent_threads(1)
        .rpc_timeout(Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let release = std::sync::Arc::new(parking_lot::Mutex::new(Some(rx)));
    platform.spawn("hog", Hog { release }).await.unwrap();
    // The only agent thread is now blocked...
    let hogging = tokio::spawn(platform.call("hog", "hog", ()).into_future());
    // ...yet the services answer.
    let health = platform.platform_health().await.unwrap();
    assert_eq!(health["hog"]["connected"], Value::Bool(true));
    platform
        .call("config.store", "set_config", ("hog", "config", "{}", "json"))
        .await
        .unwrap();
    tx.send(()).unwrap();
    hogging.await.unwrap().unwrap();
    platform.shutdown().await;
}

use std::future::IntoFuture;
