//! JSON-RPC 2.0 over HTTP (`POST /jsonrpc`), against a real server on loopback with an
//! in-process agent: single calls with list and object params, batches (calls, a
//! notification, an invalid element), notification-only requests (204), parse errors
//! (400, -32700), unknown methods (-32601), an agent's own error (-32000 with data), the
//! `rpc-allow-list`, `authz.json`'s method and topic rules against the user's groups, and
//! the service's own `web.peers` and `web.publish`.

mod web_support;

use serde_json::{Value as Json, json};
use volttron::web::RpcAllowList;
use web_support::{Web, WebSetup};

fn rpc(web: &Web, token: &str, body: &Json) -> web_support::Reply {
    web.req("POST", "/jsonrpc").token(token).json(body).send()
}

fn call(id: impl Into<Json>, method: &str, params: Json) -> Json {
    json!({"jsonrpc": "2.0", "id": id.into(), "method": method, "params": params})
}

#[test]
fn single_calls_results_and_errors() {
    let web = Web::start(Web::config());
    let admin = web.user_token("root", &["admin", "vui"]);
    web.thermo("thermo");

    let r = rpc(&web, &admin, &call(1, "thermo.add", json!([2, 3]))).expect(200);
    assert_eq!(r.json(), json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    let r = rpc(
        &web,
        &admin,
        &call("abc.1", "thermo.add", json!({"a": 4, "b": 5})),
    )
    .expect(200);
    assert_eq!(r.json(), json!({"jsonrpc": "2.0", "id": "abc.1", "result": 9}));
    let r = rpc(
        &web,
        &admin,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "thermo.get_temp"}),
    )
    .expect(200);
    assert_eq!(r.json()["result"], 21.5);

    // Unknown: no such agent, no such method of a known one.
    for method in ["nosuch.method", "thermo.nosuch", "thermo", "thermox.add"] {
        let v = rpc(&web, &admin, &call(3, method, json!([]))).expect(200).json();
        assert_eq!(v["error"]["code"], -32601, "{method}: {v}");
        assert_eq!(v["id"], 3);
        assert!(v.get("result").is_none());
    }
    // The agent's own error.
    let v = rpc(
        &web,
        &admin,
        &call(4, "thermo.fail", json!(["the boiler is out"])),
    )
    .expect(200)
    .json();
    assert_eq!(v["error"]["code"], -32000, "{v}");
    assert!(v["error"]["message"].is_string());
    let data = &v["error"]["data"];
    assert!(
        data["detail"].as_str().unwrap().contains("the boiler is out"),
        "{v}"
    );
    assert!(data["exception.py"]["exc_type"].is_string(), "{v}");
    // Arguments that do not fit.
    let v = rpc(&web, &admin, &call(5, "thermo.add", json!(["two"])))
        .expect(200)
        .json();
    assert_eq!(v["error"]["code"], -32602, "{v}");

    // Not JSON at all.
    let r = web
        .req("POST", "/jsonrpc")
        .token(&admin)
        .body("application/json", "{\"jsonrpc\": \"2.0\", ")
        .send()
        .expect(400);
    let v = r.json();
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert_eq!(v["id"], Json::Null);
    // Not a request; an empty batch.
    let v = rpc(&web, &admin, &json!(42)).json();
    assert_eq!(v["error"]["code"], -32600, "{v}");
    let v = rpc(
        &web,
        &admin,
        &json!({"jsonrpc": "1.0", "id": 1, "method": "thermo.add"}),
    )
    .json();
    assert_eq!(v["error"]["code"], -32600, "{v}");
    let v = rpc(&web, &admin, &json!([])).expect(400).json();
    assert_eq!(v["error"]["code"], -32600, "{v}");
    web.shutdown();
}

#[test]
fn batches_and_notifications() {
    let web = Web::start(Web::config());
    let admin = web.user_token("root", &["admin", "vui"]);
    let probe = web.thermo("thermo");

    let batch = json!([
        call(1, "thermo.add", json!([1, 1])),
        {"jsonrpc": "2.0", "method": "thermo.bump"},
        7,
        call("t", "thermo.get_temp", json!([])),
        {"jsonrpc": "2.0", "method": "thermo.bump", "id": null},
        call(2, "thermo.nosuch", json!([])),
        {"jsonrpc": "2.0", "id": 9, "method": 12},
    ]);
    let r = rpc(&web, &admin, &batch).expect(200);
    let answers = r.json();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 5, "the notifications get none: {answers:?}");
    assert_eq!(answers[0], json!({"jsonrpc": "2.0", "id": 1, "result": 2}));
    assert_eq!(answers[1]["error"]["code"], -32600);
    assert_eq!(answers[1]["id"], Json::Null);
    assert_eq!(answers[2], json!({"jsonrpc": "2.0", "id": "t", "result": 21.5}));
    assert_eq!(answers[3]["error"]["code"], -32601);
    assert_eq!(answers[3]["id"], 2);
    assert_eq!(answers[4]["error"]["code"], -32600);
    // The notifications ran (before the answer).
    assert_eq!(probe.bumps(), 2);

    // Only notifications: nothing to answer.
    let r = rpc(
        &web,
        &admin,
        &json!([{"jsonrpc": "2.0", "method": "thermo.bump"}, {"jsonrpc": "2.0", "method": "thermo.bump", "params": []}]),
    )
    .expect(204);
    assert!(r.body.is_empty());
    rpc(&web, &admin, &json!({"jsonrpc": "2.0", "method": "thermo.bump"})).expect(204);
    assert_eq!(probe.bumps(), 5);
    // A batch of one is still a batch.
    let v = rpc(&web, &admin, &json!([call(1, "thermo.bump", json!([]))]))
        .expect(200)
        .json();
    assert_eq!(v, json!([{"jsonrpc": "2.0", "id": 1, "result": 6}]));
    web.shutdown();
}

#[test]
fn web_peers_and_web_publish() {
    let web = WebSetup::new(Web::config())
        .prepare(|home| {
            std::fs::write(
                home.join("authz.json"),
                r#"{"protected_topics": {"publish": {"devices/actuators": ["actuate"]}}}"#,
            )
            .unwrap();
        })
        .start();
    let viewer = web.user_token("viewer", &["vui"]);
    let actor = web.user_token("actor", &["vui", "actuate"]);
    let probe = web.thermo("thermo");

    let v = rpc(&web, &viewer, &call(1, "web.peers", json!([])))
        .expect(200)
        .json();
    let peers: Vec<&str> = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        peers.contains(&"thermo") && peers.contains(&"platform.web"),
        "{v}"
    );

    let v = rpc(
        &web,
        &viewer,
        &call(2, "web.publish", json!(["devices/hvac/1", {"temp": 20.5}])),
    )
    .expect(200)
    .json();
    assert_eq!(v["result"], 1, "one subscriber: {v}");
    let v = rpc(
        &web,
        &viewer,
        &call(
            3,
            "web.publish",
            json!({"topic": "devices/hvac/2", "message": "named", "headers": {"h": 1}}),
        ),
    )
    .expect(200)
    .json();
    assert_eq!(v["result"], 1, "{v}");
    let heard = probe.wait_heard(2);
    assert_eq!(heard[0], ("devices/hvac/1".to_owned(), json!({"temp": 20.5})));
    assert_eq!(heard[1], ("devices/hvac/2".to_owned(), json!("named")));
    // Nobody listens here.
    let v = rpc(&web, &viewer, &call(4, "web.publish", json!(["weather/x", 1]))).json();
    assert_eq!(v["result"], 0);
    for bad in [json!([]), json!([7, 1]), json!(["devices/x", 1, "not headers"])] {
        let v = rpc(&web, &viewer, &call(5, "web.publish", bad.clone())).json();
        assert_eq!(v["error"]["code"], -32602, "{bad}: {v}");
    }

    // A protected topic needs its capability.
    let v = rpc(
        &web,
        &viewer,
        &call(6, "web.publish", json!(["devices/actuators/rtu1", "open"])),
    )
    .json();
    assert_eq!(v["error"]["code"], -32001, "{v}");
    assert!(
        v["error"]["data"]["detail"].as_str().unwrap().contains("actuate"),
        "{v}"
    );
    let v = rpc(
        &web,
        &actor,
        &call(7, "web.publish", json!(["devices/actuators/rtu1", "open"])),
    )
    .json();
    assert_eq!(v["result"], 1, "{v}");
    // Administrators hold every capability.
    let admin = web.user_token("root", &["admin", "vui"]);
    let v = rpc(
        &web,
        &admin,
        &call(8, "web.publish", json!(["devices/actuators/rtu2", "close"])),
    )
    .json();
    assert_eq!(v["result"], 1, "{v}");
    let heard = probe.wait_heard(4);
    assert_eq!(heard[2], ("devices/actuators/rtu1".to_owned(), json!("open")));
    assert_eq!(heard[3], ("devices/actuators/rtu2".to_owned(), json!("close")));
    assert_eq!(heard.len(), 4, "the refused one was not published");
    web.shutdown();
}

#[test]
fn the_allow_list_and_authz_rules_decide_who_calls_what() {
    // Without an allow list only administrators call agents.
    let web = Web::start(Web::config());
    web.thermo("thermo");
    let viewer = web.user_token("viewer", &["vui"]);
    let v = rpc(&web, &viewer, &call(1, "thermo.get_temp", json!([])))
        .expect(200)
        .json();
    assert_eq!(v["error"]["code"], -32001, "{v}");
    assert!(
        v["error"]["data"]["detail"]
            .as_str()
            .unwrap()
            .contains("rpc-allow-list"),
        "{v}"
    );
    web.shutdown();

    let allow: RpcAllowList = "thermo: get_*, poke".parse().unwrap();
    let web = WebSetup::new(Web::config().rpc_allow_list(allow))
        .prepare(|home| {
            std::fs::write(
                home.join("authz.json"),
                r#"{"rpc_method_authorizations": {"thermo": {"poke": ["poker"]}}}"#,
            )
            .unwrap();
        })
        .start();
    web.thermo("thermo");
    let viewer = web.user_token("viewer", &["vui"]);
    let poker = web.user_token("poker", &["vui", "poker"]);
    let admin = web.user_token("root", &["admin", "vui"]);

    let v = rpc(&web, &viewer, &call(1, "thermo.get_temp", json!([]))).json();
    assert_eq!(v["result"], 21.5, "allowed by the list: {v}");
    let v = rpc(&web, &viewer, &call(2, "thermo.add", json!([1, 2]))).json();
    assert_eq!(v["error"]["code"], -32001, "not on the list: {v}");
    let v = rpc(&web, &viewer, &call(3, "thermo.poke", json!([]))).json();
    assert_eq!(
        v["error"]["code"], -32001,
        "on the list, but authz.json protects it: {v}"
    );
    assert!(
        v["error"]["data"]["detail"].as_str().unwrap().contains("poker"),
        "{v}"
    );
    let v = rpc(&web, &poker, &call(4, "thermo.poke", json!([]))).json();
    assert_eq!(
        v["result"], "poked",
        "the user's groups are its capabilities: {v}"
    );
    // Administrators hold every capability.
    let v = rpc(&web, &admin, &call(5, "thermo.poke", json!([]))).json();
    assert_eq!(v["result"], "poked", "{v}");
    let v = rpc(&web, &admin, &call(6, "thermo.add", json!([1, 2]))).json();
    assert_eq!(v["result"], 3, "{v}");
    // The platform's own services stay out of reach, for anyone.
    for method in [
        "platform.auth.get_authorization_pending",
        "config.store.set_config",
        "platform.web.get_user_claims",
    ] {
        let v = rpc(&web, &admin, &call(7, method, json!([]))).json();
        assert_eq!(v["error"]["code"], -32001, "{method}: {v}");
    }
    web.shutdown();
}

#[test]
fn an_http_traceparent_continues_into_the_agents_handler() {
    let web = Web::start(Web::config());
    let admin = web.user_token("root", &["admin", "vui"]);
    web.thermo("thermo");
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = web
        .req("POST", "/jsonrpc")
        .token(&admin)
        .header("traceparent", tp)
        .json(&call(1, "thermo.trace", json!([])))
        .send()
        .expect(200);
    assert_eq!(r.json()["result"], tp);
    // None, or an invalid one: the handler sees no trace, the call still answers.
    for header in [None, Some("00-not-a-trace-01")] {
        let mut req = web.req("POST", "/jsonrpc").token(&admin);
        if let Some(h) = header {
            req = req.header("traceparent", h);
        }
        let r = req.json(&call(2, "thermo.trace", json!([]))).send().expect(200);
        assert_eq!(r.json()["result"], Json::Null, "{header:?}");
    }
}
