//! The in-process testing harness: a platform with a temporary home and a virtual clock.
//!
//! ```
//! use std::time::Duration;
//! use volttron::prelude::*;
//! use volttron::testing::TestPlatform;
//!
//! #[derive(Default)]
//! struct Beacon { sent: u32 }
//!
//! #[volttron::agent]
//! impl Beacon {
//!     #[periodic(secs = 10)]
//!     fn beat(&mut self, ctx: &AgentContext) {
//!         self.sent += 1;
//!         ctx.publish("beacon/alive", self.sent).unwrap();
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let tp = TestPlatform::start().await;
//! let beats = tp.capture("beacon/");
//! tp.spawn("beacon", Beacon::default()).await.unwrap();
//! tp.advance(Duration::from_secs(35)).await;      // fires at 0, 10, 20, 30 s; no sleeping
//! assert_eq!(beats.len(), 4);
//! tp.assert_peers(&["beacon"]);
//! tp.shutdown().await;
//! # }
//! ```
//!
//! | method | what it does |
//! |--------|--------------|
//! | [`TestPlatform::start`] / [`TestPlatform::builder`] | platform on a temp home, virtual clock at 2024-01-01T00:00:00Z |
//! | `spawn`, `publish`, `call`, `peers`, ... | everything [`Platform`] offers (through `Deref`) |
//! | [`TestPlatform::capture`] | records every publication under a prefix |
//! | [`TestPlatform::advance`] | fires due timers in order; returns after their handlers ran |
//! | [`TestPlatform::settle`] | returns once every queued message has been handled |
//! | [`TestPlatform::assert_peers`] | asserts the exact peer list |

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::core::Publication;
use crate::platform::backpressure::OverflowPolicy;
use crate::platform::clock::Clock;
use crate::platform::mailbox::{Envelope, Mailbox};
use crate::platform::router::Router;
use crate::platform::{Platform, PlatformBuilder};

/// A platform for tests: temporary home, virtual clock, capture and settle helpers.
/// Derefs to [`Platform`].
pub struct TestPlatform {
    platform: Platform,
    home: tempfile::TempDir,
}

/// Configures a [`TestPlatform`].
#[derive(Debug)]
#[must_use = "call .start().await"]
pub struct TestPlatformBuilder {
    builder: PlatformBuilder,
    start_at: Option<DateTime<Utc>>,
    authz: Option<String>,
}

impl TestPlatformBuilder {
    /// The instance name.
    pub fn instance_name(mut self, name: impl Into<String>) -> Self {
        self.builder = self.builder.instance_name(name);
        self
    }

    /// Where the virtual clock starts (default 2024-01-01T00:00:00Z, a Monday).
    pub fn start_at(mut self, at: DateTime<Utc>) -> Self {
        self.start_at = Some(at);
        self
    }

    /// Agent threads (default 1: deterministic interleaving).
    pub fn agent_threads(mut self, n: usize) -> Self {
        self.builder = self.builder.agent_threads(n);
        self
    }

    /// Runs the platform's own services (`platform.health`, ...); off by default in tests,
    /// so that the peer list and subscriptions are the test's own.
    pub fn services(mut self, on: bool) -> Self {
        self.builder = self.builder.services(on);
        self
    }

    /// Starts every agent's heartbeat with this period (off by default).
    pub fn heartbeat(mut self, period: Duration) -> Self {
        self.builder = self.builder.heartbeat(period);
        self
    }

    /// Publications each agent's mailbox holds before overflow policies apply.
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.builder = self.builder.mailbox_capacity(capacity);
        self
    }

    /// The default RPC deadline, in virtual time.
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.builder = self.builder.rpc_timeout(timeout);
        self
    }

    /// Listens on the bridge's Unix socket in the temporary home (off by default), so
    /// out-of-process agents (or [`Remote`](crate::remote::Remote) ones in the test
    /// process) can attach; see [`Platform::addresses`].
    pub fn bridge(mut self, on: bool) -> Self {
        self.builder = self.builder.unix_socket(on);
        self
    }

    /// Also listens on a TCP address (Noise-encrypted links).
    pub fn listen(mut self, address: crate::bridge::BridgeAddress) -> Self {
        self.builder = self.builder.listen(address);
        self
    }

    /// Runs with authentication and `authz.json` authorization on (default off). The
    /// rules are read from `authz.json` in the temporary home; the `platform.auth`
    /// service runs when services are on.
    pub fn auth(mut self, on: bool) -> Self {
        self.builder = self.builder.auth(on);
        self
    }

    /// Writes `authz.json` (roles, groups, capabilities, protected topics) into the
    /// temporary home before the platform starts, and turns auth on.
    pub fn authz(mut self, json: impl Into<String>) -> Self {
        self.authz = Some(json.into());
        self.auth(true)
    }

    /// Plugs in a platform service (see [`PlatformBuilder::service`]); it runs in the test
    /// platform's temporary home.
    pub fn service(mut self, service: impl crate::platform::service::PlatformService) -> Self {
        self.builder = self.builder.service(service);
        self
    }

    /// Sends the platform's sampled timings to `instrumentation` (see
    /// [`PlatformBuilder::instrumentation`]).
    pub fn instrumentation(
        mut self,
        instrumentation: impl crate::platform::counters::Instrumentation,
    ) -> Self {
        self.builder = self.builder.instrumentation(instrumentation);
        self
    }

    /// Starts it. Panics if the platform cannot start (this is a test helper).
    pub async fn start(self) -> TestPlatform {
        let home = tempfile::tempdir().expect("create a temporary VOLTTRON_HOME");
        if let Some(json) = &self.authz {
            std::fs::write(home.path().join("authz.json"), json).expect("write authz.json");
        }
        let clock = match self.start_at {
            Some(at) => Clock::virtual_at(at),
            None => Clock::virtual_clock(),
        };
        let platform = self
            .builder
            .home(home.path())
            .clock(clock)
            .start()
            .await
            .expect("start the test platform");
        TestPlatform { platform, home }
    }
}

impl TestPlatform {
    /// Starts a test platform with the defaults.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A builder.
    pub fn builder() -> TestPlatformBuilder {
        TestPlatformBuilder {
            builder: Platform::builder()
                .instance_name("test")
                .agent_threads(1)
                .services(false)
                .unix_socket(false),
            start_at: None,
            authz: None,
        }
    }

    /// The platform handle.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The temporary `VOLTTRON_HOME` (deleted when this is dropped).
    pub fn home_dir(&self) -> &std::path::Path {
        self.home.path()
    }

    /// Advances the virtual clock by `by`: fires every timer due in that window in
    /// deadline order (each sees the clock at its own deadline), and returns once their
    /// handlers, and everything those set in motion, have run.
    pub async fn advance(&self, by: Duration) {
        self.platform.advance(by).await;
    }

    /// Returns once no message is queued or being handled anywhere on the platform.
    pub async fn settle(&self) {
        self.platform.settle().await;
    }

    /// Records every publication on the default bus whose topic starts with `prefix`.
    pub fn capture(&self, prefix: &str) -> Capture {
        self.capture_on("", prefix)
    }

    /// Records every publication on `bus` matching `prefix` (or an MQTT-style pattern).
    /// Panics on an invalid prefix.
    pub fn capture_on(&self, bus: &str, prefix: &str) -> Capture {
        let router = self.platform.inner_router();
        let peer = router.next_peer_id();
        let mailbox = Arc::new(Mailbox::new(None, usize::MAX, Default::default()));
        router
            .subscribe(peer, &mailbox, bus, prefix, 0, OverflowPolicy::DropOldest, false)
            .expect("a valid capture prefix");
        Capture {
            router,
            peer,
            mailbox,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.platform.clock().now()
    }

    /// Asserts that exactly these peers are connected (any order).
    #[track_caller]
    pub fn assert_peers(&self, expected: &[&str]) {
        let mut expected: Vec<&str> = expected.to_vec();
        expected.sort_unstable();
        let peers = self.platform.peers();
        let actual: Vec<&str> = peers.iter().map(|p| p.as_str()).collect();
        assert_eq!(actual, expected, "connected peers");
    }
}

impl Deref for TestPlatform {
    type Target = Platform;
    fn deref(&self) -> &Platform {
        &self.platform
    }
}

impl std::fmt::Debug for TestPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPlatform")
            .field("platform", &self.platform)
            .finish()
    }
}

/// Publications recorded by [`TestPlatform::capture`]. Recording stops when dropped.
pub struct Capture {
    router: Arc<Router>,
    peer: u64,
    mailbox: Arc<Mailbox>,
    seen: Mutex<Vec<Arc<Publication>>>,
}

impl Capture {
    fn pull(&self) -> parking_lot::MutexGuard<'_, Vec<Arc<Publication>>> {
        let mut seen = self.seen.lock();
        loop {
            let mut batch: SmallVec<[Envelope; 32]> = SmallVec::new();
            self.mailbox.take_batch(usize::MAX, &mut batch);
            if batch.is_empty() {
                break;
            }
            seen.extend(batch.into_iter().filter_map(|e| match e {
                Envelope::Publication { publication, .. } => Some(publication),
                _ => None,
            }));
        }
        seen
    }

    /// Every publication recorded so far, oldest first.
    pub fn publications(&self) -> Vec<Arc<Publication>> {
        self.pull().clone()
    }

    /// The topics recorded so far, oldest first.
    pub fn topics(&self) -> Vec<String> {
        self.pull().iter().map(|p| p.topic.to_string()).collect()
    }

    /// How many publications were recorded.
    pub fn len(&self) -> usize {
        self.pull().len()
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most recent publication.
    pub fn last(&self) -> Option<Arc<Publication>> {
        self.pull().last().cloned()
    }

    /// Returns and forgets everything recorded so far.
    pub fn take(&self) -> Vec<Arc<Publication>> {
        std::mem::take(&mut *self.pull())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.router.unsubscribe(self.peer, None, None);
    }
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").field("len", &self.len()).finish()
    }
}
