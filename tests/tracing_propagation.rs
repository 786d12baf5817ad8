//! W3C trace context travels with the bus: a publication's `traceparent` header and an RPC
//! request's trace become current in the handler, and what the handler publishes or calls
//! carries them on, in-process and across the bridge; an untraced envelope handled next
//! sees no trace; bad `traceparent`s are dropped, never fail a delivery.

use std::time::Duration;

use volttron::bridge::BridgeAddress;
use volttron::core::TraceContext;
use volttron::core::trace::{TRACEPARENT, TRACESTATE};
use volttron::prelude::*;
use volttron::remote::Remote;
use volttron::testing::TestPlatform;

const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn seen() -> Value {
    match volttron::agent::current_trace() {
        Some(t) => Value::from(t.traceparent()),
        None => Value::Null,
    }
}

/// Relays what it hears to `relay.next`'s `forward`, which publishes on `out/`.
#[derive(Default)]
struct Front;

#[volttron::agent]
impl Front {
    #[subscribe("in/")]
    async fn heard(&mut self, ctx: &AgentContext, p: &Publication) {
        let _ = ctx.call("back", "forward", (p.message.clone(),)).await;
    }

    /// The trace current in this handler.
    #[rpc]
    fn which(&mut self) -> Value {
        seen()
    }
}

#[derive(Default)]
struct Back;

#[volttron::agent]
impl Back {
    #[rpc]
    fn forward(&mut self, ctx: &AgentContext, message: Value) -> bool {
        ctx.publish("out/relayed", message).is_ok()
    }
}

fn header(p: &Publication, key: &str) -> Option<String> {
    p.headers.get(key).and_then(Value::as_str).map(str::to_owned)
}

#[volttron::test]
async fn a_trace_travels_from_a_publication_through_a_call_to_the_next_publication() {
    let tp = TestPlatform::start().await;
    tp.spawn("front", Front).await.unwrap();
    tp.spawn("back", Back).await.unwrap();
    let out = tp.capture("out/");
    let mut headers = Headers::new();
    headers.insert(TRACEPARENT.into(), Value::from(TRACE));
    headers.insert(TRACESTATE.into(), Value::from("vendor=abc"));
    tp.platform().publish_on("", "in/reading", headers, 21.5).unwrap();
    tp.settle().await;
    let relayed = out.last().expect("relayed");
    assert_eq!(header(&relayed, TRACEPARENT).as_deref(), Some(TRACE));
    assert_eq!(header(&relayed, TRACESTATE).as_deref(), Some("vendor=abc"));

    // Untraced, nothing is carried (the handler before left nothing behind).
    tp.publish("in/reading", 22.0).unwrap();
    tp.settle().await;
    let relayed = out.last().expect("relayed");
    assert_eq!(header(&relayed, TRACEPARENT), None, "{:?}", relayed.headers);
    assert_eq!(tp.call("front", "which", ()).await.unwrap(), Value::Null);

    // A call given a trace; a bad traceparent is dropped, the delivery still happens.
    let t = TraceContext::parse(TRACE, None).unwrap();
    let got = tp
        .platform()
        .call("front", "which", ())
        .trace(Some(t))
        .await
        .unwrap();
    assert_eq!(got, Value::from(TRACE));
    let mut bad = Headers::new();
    bad.insert(TRACEPARENT.into(), Value::from("00-nothex-00f067aa0ba902b7-01"));
    tp.platform().publish_on("", "in/reading", bad, 23.0).unwrap();
    tp.settle().await;
    let relayed = out.last().expect("relayed");
    assert_eq!(relayed.message, Value::from(23.0));
    assert_eq!(header(&relayed, TRACEPARENT), None);
}

/// The bridged agent: reports its trace, and calls back into the platform.
#[derive(Default)]
struct Remote1;

#[volttron::agent]
impl Remote1 {
    #[rpc]
    async fn bounce(&mut self, ctx: &AgentContext) -> Value {
        let here = seen();
        let there = ctx.call("front", "which", ()).await.unwrap_or(Value::Null);
        Value::from(vec![here, there])
    }
}

#[volttron::test]
async fn a_trace_crosses_the_bridge_both_ways() {
    let home = tempfile::tempdir().unwrap();
    let p = Platform::builder()
        .home(home.path())
        .agent_threads(1)
        .start()
        .await
        .unwrap();
    p.spawn("front", Front).await.unwrap();
    let socket: BridgeAddress = p.addresses().into_iter().next().expect("the default socket");
    let remote = Remote::new(socket)
        .identity("remote.bouncer")
        .start(Remote1)
        .await
        .expect("the remote agent attaches");
    let t = TraceContext::parse(TRACE, Some("vendor=abc")).unwrap();
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        p.call("remote.bouncer", "bounce", ())
            .trace(Some(t))
            .into_future(),
    )
    .await
    .expect("a reply within 10 s")
    .unwrap();
    assert_eq!(
        got,
        Value::from(vec![Value::from(TRACE), Value::from(TRACE)]),
        "current in the bridged agent's handler, and carried by its call back"
    );
    // Untraced: nothing on either side.
    let got = p.call("remote.bouncer", "bounce", ()).await.unwrap();
    assert_eq!(got, Value::from(vec![Value::Null, Value::Null]));
    drop(remote);
    p.shutdown().await;
}
