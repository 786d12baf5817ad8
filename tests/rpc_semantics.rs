//! RPC semantics: VOLTTRON's JSON-RPC behaviour (errors, params by position and name,
//! notify, inspect), typed calls, deadlines on the virtual clock, async handlers that call
//! other agents.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use volttron::prelude::*;
use volttron::testing::TestPlatform;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    point: String,
    value: f64,
}

#[derive(Default)]
struct Meter {
    notes: Arc<Mutex<Vec<String>>>,
}

#[volttron::agent]
impl Meter {
    /// Adds two numbers.
    #[rpc]
    fn add(&mut self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Scales a reading.
    #[rpc(name = "scale")]
    fn scale_reading(&mut self, reading: Reading, factor: Option<f64>) -> Reading {
        Reading {
            value: reading.value * factor.unwrap_or(1.0),
            ..reading
        }
    }

    #[rpc]
    fn fail(&mut self, why: String) -> Result<(), String> {
        Err(why)
    }

    #[rpc]
    fn note(&mut self, ctx: &AgentContext, text: String) {
        self.notes.lock().push(format!("{text} from {}", ctx.identity()));
    }

    #[rpc]
    fn never(&mut self) {}
}

#[volttron::test]
async fn positional_named_and_typed_calls(tp: TestPlatform) {
    tp.spawn("meter", Meter::default()).await.unwrap();
    assert_eq!(tp.call("meter", "add", (2, 3)).await.unwrap(), Value::from(5));
    let by_name = Args::new().kwarg("b", 10).kwarg("a", 1);
    assert_eq!(tp.call("meter", "add", by_name).await.unwrap(), Value::from(11));
    let mixed = Args::new().arg(1).kwarg("b", 2);
    assert_eq!(tp.call("meter", "add", mixed).await.unwrap(), Value::from(3));

    let r = Reading {
        point: "zone1/temp".into(),
        value: 20.0,
    };
    let scaled: Reading = tp
        .call("meter", "scale", (r.clone(), 1.5))
        .returning()
        .await
        .unwrap();
    assert_eq!(scaled.value, 30.0);
    // An Option parameter may be left out.
    let same: Reading = tp.call("meter", "scale", (r.clone(),)).returning().await.unwrap();
    assert_eq!(same, r);
    tp.shutdown().await;
}

#[volttron::test]
async fn volttron_errors(tp: TestPlatform) {
    tp.spawn("meter", Meter::default()).await.unwrap();

    let e = tp.call("nobody", "add", (1, 2)).await.unwrap_err();
    assert_eq!(
        e,
        RpcError::UnknownPeer {
            peer: "nobody".into()
        }
    );

    let e = tp.call("meter", "sub", (1, 2)).await.unwrap_err();
    assert_eq!(e.to_string(), "method 'sub' is not implemented");
    assert_eq!(e.code(), Some(-32601));

    let e = tp.call("meter", "add", ("x", 2)).await.unwrap_err();
    assert!(
        matches!(&e, RpcError::InvalidParams { message, .. } if message.contains("argument 'a'")),
        "{e}"
    );
    assert_eq!(e.code(), Some(-32602));
    let e = tp.call("meter", "add", (1,)).await.unwrap_err();
    assert!(e.to_string().contains("missing required argument 'b'"), "{e}");
    let e = tp.call("meter", "add", (1, 2, 3)).await.unwrap_err();
    assert!(
        e.to_string().contains("takes 2 arguments but 3 were given"),
        "{e}"
    );
    let e = tp
        .call("meter", "add", Args::new().kwarg("c", 1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unexpected keyword argument 'c'"), "{e}");

    let e = tp.call("meter", "fail", ("valve stuck",)).await.unwrap_err();
    assert!(
        matches!(&e, RpcError::Remote { message, kind, .. } if message == "valve stuck" && kind == "error")
    );
    assert_eq!(e.code(), Some(-32000));

    // A typed call whose reply does not convert.
    let e = tp
        .call("meter", "add", (1, 2))
        .returning::<String>()
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::InvalidReply { .. }));

    // The agent still serves.
    assert_eq!(tp.call("meter", "add", (1, 1)).await.unwrap(), Value::from(2));
    tp.shutdown().await;
}

#[volttron::test]
async fn notify_has_no_reply_and_carries_the_sender(tp: TestPlatform) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    tp.spawn("meter", Meter { notes: notes.clone() }).await.unwrap();
    tp.notify("meter", "note", ("hello",)).unwrap();
    // A failing notification is only logged.
    tp.notify("meter", "fail", ("ignored",)).unwrap();
    assert!(matches!(
        tp.notify("ghost", "note", ()),
        Err(RpcError::UnknownPeer { .. })
    ));
    tp.settle().await;
    // `note` sees its own identity in ctx; the caller was the platform handle.
    assert_eq!(*notes.lock(), ["hello from meter"]);
    tp.shutdown().await;
}

#[volttron::test]
async fn inspect_lists_methods_and_parameters(tp: TestPlatform) {
    tp.spawn("meter", Meter::default()).await.unwrap();
    let all = tp.call("meter", "inspect", ()).await.unwrap();
    assert_eq!(
        all["methods"],
        Value::from(vec!["add", "fail", "never", "note", "scale"])
    );
    let one = tp.call("meter", "scale.inspect", ()).await.unwrap();
    assert_eq!(one["param_order"], Value::from(vec!["reading", "factor"]));
    assert_eq!(one["params"]["factor"], Value::from("Option<f64>"));
    assert_eq!(one["doc"], Value::from("Scales a reading."));
    assert_eq!(one["return"], Value::from("Reading"));
    assert!(tp.call("meter", "nope.inspect", ()).await.is_err());
    tp.shutdown().await;
}

/// Holds every request until told to answer: for deadline tests.
#[derive(Default)]
struct Slow;

#[volttron::agent]
impl Slow {
    #[rpc]
    async fn wait(&mut self, ctx: &AgentContext, secs: u64) -> &'static str {
        ctx.clock().sleep(Duration::from_secs(secs)).await;
        "done"
    }
}

#[derive(Default)]
struct Caller {
    outcome: Arc<Mutex<Option<Result<Value, RpcError>>>>,
}

#[volttron::agent]
impl Caller {
    #[rpc]
    async fn relay(&mut self, ctx: &AgentContext, a: i64, b: i64) -> Result<i64, RpcError> {
        ctx.call("meter", "add", (a, b)).returning().await
    }

    #[rpc]
    async fn try_slow(&mut self, ctx: &AgentContext, secs: u64) {
        let r = ctx
            .call("slow", "wait", (secs,))
            .timeout(Duration::from_secs(5))
            .await;
        *self.outcome.lock() = Some(r);
    }
}

#[volttron::test]
async fn async_handlers_call_other_agents(tp: TestPlatform) {
    tp.spawn("meter", Meter::default()).await.unwrap();
    tp.spawn("caller", Caller::default()).await.unwrap();
    let sum: i64 = tp.call("caller", "relay", (20, 22)).returning().await.unwrap();
    assert_eq!(sum, 42);
    tp.shutdown().await;
}

#[volttron::test]
async fn deadlines_run_on_the_virtual_clock(tp: TestPlatform) {
    let outcome = Arc::new(Mutex::new(None));
    tp.spawn("slow", Slow).await.unwrap();
    tp.spawn(
        "caller",
        Caller {
            outcome: outcome.clone(),
        },
    )
    .await
    .unwrap();

    // 3 s of work under a 5 s deadline: answered.
    tp.notify("caller", "try_slow", (3,)).unwrap();
    tp.advance(Duration::from_secs(3)).await;
    assert_eq!(outcome.lock().take(), Some(Ok(Value::from("done"))));

    // 60 s of work under a 5 s deadline: times out at exactly 5 s of virtual time.
    tp.notify("caller", "try_slow", (60,)).unwrap();
    tp.settle().await;
    tp.advance(Duration::from_secs(4)).await;
    assert!(outcome.lock().is_none());
    tp.advance(Duration::from_secs(1)).await;
    let r = outcome.lock().take().expect("timed out by now");
    assert!(
        matches!(r, Err(RpcError::Timeout { ref peer, ref method, timeout }) if peer == "slow" && method == "wait" && timeout == Duration::from_secs(5)),
        "{r:?}"
    );
    tp.shutdown().await;
}

#[volttron::test]
async fn handle_call_deadline(tp: TestPlatform) {
    tp.spawn("slow", Slow).await.unwrap();
    let call = tp.call("slow", "wait", (100,)).timeout(Duration::from_secs(2));
    let pending = tokio::spawn(call.into_future());
    tp.settle().await;
    tp.advance(Duration::from_secs(2)).await;
    let r = pending.await.unwrap();
    assert!(matches!(r, Err(RpcError::Timeout { .. })), "{r:?}");
    tp.shutdown().await;
}

use std::future::IntoFuture;

/// Calls another agent from its start hook (VOLTTRON #2417: that times out there).
#[derive(Default)]
struct Greeter {
    sum: Arc<Mutex<Option<i64>>>,
}

#[volttron::agent]
impl Greeter {
    #[on_start]
    async fn start(&mut self, ctx: &AgentContext) -> Result<(), RpcError> {
        let sum: i64 = ctx.call("meter", "add", (40, 2)).returning().await?;
        *self.sum.lock() = Some(sum);
        Ok(())
    }
}

#[volttron::test]
async fn rpc_from_on_start_works(tp: TestPlatform) {
    tp.spawn("meter", Meter::default()).await.unwrap();
    let sum = Arc::new(Mutex::new(None));
    tp.spawn("greeter", Greeter { sum: sum.clone() }).await.unwrap();
    // spawn returned after on_start, so the reply is already in.
    assert_eq!(*sum.lock(), Some(42));
    // Without the callee, on_start fails and so does the spawn, with the reason.
    let e = tp.spawn("greeter2", Greeter::default());
    tp.stop_agent("meter").await;
    let e = e.await.unwrap_err();
    assert!(e.to_string().contains("meter"), "{e}");
    tp.shutdown().await;
}
