//! OpenTelemetry export (feature `otel`): a traced call chain, the platform handle's call →
//! an in-process agent's handler → its call → the handler of an agent attached through the
//! bridge, arrives at a local OTLP/HTTP
//! receiver (JSON) as one trace whose spans link parent to child across the bridge.
//!
//! The exporter is configured as an operator would: `OTEL_EXPORTER_OTLP_ENDPOINT` and
//! `OTEL_EXPORTER_OTLP_PROTOCOL`. Waits are on the receiver's spans, with a deadline.

#![cfg(feature = "otel")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use volttron::bridge::BridgeAddress;
use volttron::core::TraceContext;
use volttron::prelude::*;
use volttron::remote::Remote;

const ROOT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[derive(Default)]
struct Controller;

#[volttron::agent]
impl Controller {
    #[rpc]
    async fn command(&mut self, ctx: &AgentContext, value: f64) -> Result<f64, String> {
        ctx.call("actuator", "set_point", (value,))
            .returning()
            .await
            .map_err(|e| e.to_string())
    }
}

#[derive(Default)]
struct Actuator;

#[volttron::agent]
impl Actuator {
    #[rpc]
    fn set_point(&mut self, value: f64) -> f64 {
        value
    }
}

#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace: String,
    id: String,
    parent: String,
}

/// A receiver of OTLP/HTTP JSON on loopback: every span of every `POST /v1/traces`.
fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind the receiver");
    let url = format!("http://{}", server.server_addr().to_ip().expect("an IP address"));
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
            if request.url() == "/v1/traces" {
                let doc: serde_json::Value = serde_json::from_str(&body).expect("OTLP JSON");
                let mut got = sink.lock().unwrap();
                for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
                    for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                        for s in ss["spans"].as_array().into_iter().flatten() {
                            let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                            got.push(Span {
                                name: text("name"),
                                trace: text("traceId"),
                                id: text("spanId"),
                                parent: text("parentSpanId"),
                            });
                        }
                    }
                }
            }
            let _ = request.respond(tiny_http::Response::from_string("{}").with_status_code(200));
        }
    });
    (url, spans)
}

/// The variable telling this test binary it runs as the child that makes the spans.
const CHILD: &str = "VOLTTRON_TEST_OTLP_CHILD";

/// The receiver and the checks, in the test process; the platform and its agents in a
/// child process started with the OTEL variables set (as an operator starts `volttron`).
#[test]
fn a_call_chain_across_the_bridge_is_one_trace_of_linked_spans() {
    if std::env::var_os(CHILD).is_some() {
        return traced_chain();
    }
    let (url, spans) = receiver();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_call_chain_across_the_bridge_is_one_trace_of_linked_spans",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &url)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .status()
        .expect("run the child");
    assert!(status.success(), "the child failed: {status}");
    // The child flushed and shut its exporter down before it exited.
    let got = spans.lock().unwrap().clone();
    let find = |name: &str| {
        got.iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no span {name:?} in {got:#?}"))
    };
    let first_call = find("controller.command");
    let handler = find("controller rpc");
    let call = find("actuator.set_point");
    let remote_handler = find("actuator rpc");
    assert_eq!(got.len(), 4, "only the traced chain: {got:#?}");
    for s in &got {
        assert_eq!(s.trace, "0af7651916cd43dd8448eb211c80319c", "{s:?}");
    }
    assert_eq!(
        first_call.parent, "b7ad6b7169203331",
        "the platform handle's call is the root's child"
    );
    assert_eq!(handler.parent, first_call.id, "the handler is that call's child");
    assert_eq!(call.parent, handler.id, "the call is the handler's child");
    assert_eq!(
        remote_handler.parent, call.id,
        "the bridged agent's handler is the call's child"
    );
}

/// The child: a platform, an in-process controller, an actuator attached through the
/// bridge, one traced call chain and one untraced.
fn traced_chain() {
    let otel = volttron::otel::OtelTracing::from_env("volttron-test").expect("the exporter");
    tracing_subscriber::registry().with(otel.layer()).init();
    assert!(otel.install());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let home = tempfile::tempdir().unwrap();
        let p = Platform::builder()
            .home(home.path())
            .agent_threads(1)
            .start()
            .await
            .unwrap();
        p.spawn("controller", Controller).await.unwrap();
        let socket: BridgeAddress = p.addresses().into_iter().next().expect("the default socket");
        let remote = Remote::new(socket)
            .identity("actuator")
            .start(Actuator)
            .await
            .expect("the actuator attaches through the bridge");
        let root = TraceContext::parse(ROOT, None).unwrap();
        let v: f64 = tokio::time::timeout(
            Duration::from_secs(10),
            p.call("controller", "command", (21.5,))
                .trace(Some(root))
                .returning(),
        )
        .await
        .expect("a reply within 10 s")
        .unwrap();
        assert_eq!(v, 21.5);
        // Untraced work makes no spans.
        let _: f64 = p
            .call("controller", "command", (20.0,))
            .returning()
            .await
            .unwrap();
        drop(remote);
        p.shutdown().await;
    });
    // Every span ended (the agents stopped); export them before exiting.
    otel.shutdown();
}
