//! A supervisor's own clock (its agents' `ctx.now()` and timers follow it, nested
//! supervisors inherit it, the platform never moves it) and its exit hook (every exit it
//! did not cause, with the reason, before the restart policy applies).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use volttron::prelude::*;
use volttron::supervision::{ChildSpec, Restart, Supervisor};
use volttron::testing::TestPlatform;
use volttron::{Clock, ExitReason};

/// Says the time of its clock, can crash or quit.
#[derive(Default)]
struct Teller;

#[volttron::agent]
impl Teller {
    #[rpc]
    fn now(&mut self, ctx: &AgentContext) -> String {
        ctx.now().to_rfc3339()
    }

    #[rpc]
    fn crash(&mut self) {
        panic!("told to crash");
    }

    #[rpc]
    fn quit(&mut self, ctx: &AgentContext) {
        ctx.stop();
    }
}

async fn now(tp: &TestPlatform, who: &str) -> String {
    tp.platform().call(who, "now", ()).returning().await.unwrap()
}

#[volttron::test]
async fn agents_under_a_supervisor_with_a_clock_see_that_clock() {
    let tp = TestPlatform::builder()
        .start_at("2024-01-01T00:00:00Z".parse().unwrap())
        .start()
        .await;
    let own = Clock::virtual_at("2030-06-01T12:00:00Z".parse().unwrap());
    let inner = Supervisor::builder("inner")
        .child(ChildSpec::agent("nested", Teller::default))
        .build();
    tp.platform()
        .supervise(
            Supervisor::builder("sim")
                .clock(own.clone())
                .child(ChildSpec::agent("teller", Teller::default))
                .child(ChildSpec::supervisor(inner))
                .build(),
        )
        .await
        .unwrap();
    tp.platform().spawn("outside", Teller).await.unwrap();
    assert_eq!(now(&tp, "teller").await, "2030-06-01T12:00:00+00:00");
    assert_eq!(
        now(&tp, "nested").await,
        "2030-06-01T12:00:00+00:00",
        "nested supervisors inherit it"
    );
    assert_eq!(now(&tp, "outside").await, "2024-01-01T00:00:00+00:00");
    // The platform's time moves; the supervisor's clock does not.
    tp.advance(Duration::from_secs(3600)).await;
    assert_eq!(now(&tp, "outside").await, "2024-01-01T01:00:00+00:00");
    assert_eq!(now(&tp, "teller").await, "2030-06-01T12:00:00+00:00");
}

#[volttron::test]
async fn the_exit_hook_reports_crashes_and_quits_but_not_stops() {
    let tp = TestPlatform::start().await;
    let seen: Arc<Mutex<Vec<(String, ExitReason)>>> = Arc::default();
    let log = seen.clone();
    let sup = tp
        .platform()
        .supervise(
            Supervisor::builder("watched")
                .on_child_exit(move |name, reason| log.lock().push((name.to_owned(), reason.clone())))
                .child(ChildSpec::agent("crasher", Teller::default).restart(Restart::Temporary))
                .child(ChildSpec::agent("quitter", Teller::default).restart(Restart::Temporary))
                .child(ChildSpec::agent("stopped", Teller::default))
                .build(),
        )
        .await
        .unwrap();
    let _ = tp.platform().call("crasher", "crash", ()).returning::<()>().await;
    let _ = tp.platform().call("quitter", "quit", ()).returning::<()>().await;
    tp.settle().await;
    sup.stop().await;
    tp.settle().await;
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, "crasher");
    assert!(
        matches!(&seen[0].1, ExitReason::Crashed(m) if m.contains("told to crash")),
        "{seen:?}"
    );
    assert_eq!(seen[1], ("quitter".to_owned(), ExitReason::Normal));
}
