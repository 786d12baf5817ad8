//! An agent in its own process that serves a web route through the platform's web service.
//!
//! It attaches through the socket bridge as `examples/remote_agent.rs` does (the same
//! environment: `AGENT_VIP_IDENTITY`, `VOLTTRON_HOME`, ...):
//!
//! ```text
//! AGENT_VIP_IDENTITY=web.remote VOLTTRON_HOME=~/.volttron cargo run --example web_route_agent
//! curl http://127.0.0.1:8080/remote/hello?name=you
//! ```
//!
//! | route | answer |
//! |-------|--------|
//! | `GET /remote/hello` | `{"identity": <its identity>, "greeting": "hello <name query parameter, or world>"}` |
//! | `POST /remote/echo` | `200`, `text/plain`, the body sent, and `x-web-user` (the caller's web user) |
//!
//! The platform serves the routes while the process is attached and forgets them when it
//! leaves. It also exports `stop_agent()`.

use volttron::agent::route::{WebRequest, WebResponse};
use volttron::prelude::*;

#[derive(Default)]
struct WebRemote;

#[volttron::agent]
impl WebRemote {
    #[route(GET, "/remote/hello")]
    fn hello(&mut self, ctx: &AgentContext, request: WebRequest) -> serde_json::Value {
        let name = request.query_param("name").unwrap_or_else(|| "world".into());
        serde_json::json!({"identity": ctx.identity().as_str(), "greeting": format!("hello {name}")})
    }

    #[route(POST, "/remote/echo")]
    fn echo(&mut self, request: WebRequest) -> WebResponse {
        WebResponse::text(200, request.body).header("x-web-user", request.user.unwrap_or_default())
    }

    /// Stops the agent (the process then exits 0).
    #[rpc]
    fn stop_agent(&mut self, ctx: &AgentContext) -> bool {
        ctx.stop();
        true
    }
}

fn main() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = volttron::remote::run(WebRemote) {
        eprintln!("web_route_agent: {e}");
        std::process::exit(1);
    }
}
