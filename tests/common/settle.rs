//! A wait for work `TestPlatform::settle` does not see: a device's real socket, a store's
//! fsync on its own thread.

use std::time::{Duration, Instant};

use volttron::testing::TestPlatform;

/// Settles until `probe` answers, for work `settle` does not see (a device's real socket,
/// the store's fsync on its own thread); at most 20 s of wall time.
pub(crate) async fn eventually<T>(
    tp: &TestPlatform,
    what: &str,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tp.settle().await;
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
