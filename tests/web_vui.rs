//! VOLTTRON's REST API under `/vui/`, against a real server on loopback with a real HTTP
//! client: every route of `src/web/vui.rs` with VOLTTRON's JSON shapes, on an embedded
//! platform with an in-process agent and the configuration store (links, status, health,
//! configs, RPC with object, `"args"` and array bodies, pub/sub), the `rpc-allow-list`; and
//! the control routes (running, enabled, tag, installed agents, status) on the `volttron`
//! binary with an installed agent process.

mod common;
mod web_support;

use serde_json::{Value as Json, json};
use volttron::web::RpcAllowList;
use web_support::{Site, Web, WebSetup, block_on, wait_until};

const P: &str = "/vui/platforms/webtest";

fn links(v: &Json) -> Vec<String> {
    let mut names: Vec<String> = v["links"]
        .as_object()
        .unwrap_or_else(|| panic!("no links: {v}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

#[test]
fn links_status_health_and_pubsub_of_an_in_process_agent() {
    let web = Web::start(Web::config());
    let admin = web.user_token("root", &["admin", "vui"]);
    let viewer = web.user_token("viewer", &["vui"]);
    let probe = web.thermo("thermo");

    for root in ["/vui", "/vui/"] {
        let v = web.get(root, &viewer).expect(200).json();
        assert_eq!(v, json!({"links": {"platforms": "/vui/platforms"}}));
    }
    let v = web.get("/vui/platforms", &viewer).expect(200).json();
    assert_eq!(v, json!({"links": {"webtest": P}}));
    let v = web.get(P, &viewer).expect(200).json();
    assert_eq!(
        v,
        json!({"links": {"agents": format!("{P}/agents"), "pubsub": format!("{P}/pubsub"), "status": format!("{P}/status")}})
    );
    for path in [
        "/vui/platforms/other",
        "/vui/platforms/other/agents",
        "/vui/platforms/other/status",
        "/vui/platforms/other/agents/thermo/rpc/add",
    ] {
        let r = web.get(path, &admin).expect(404);
        assert!(r.json()["error"].as_str().unwrap().contains("other"), "{path}");
    }

    // Agents: without a control service, the connected peers.
    let v = web.get(&format!("{P}/agents"), &viewer).expect(200).json();
    let names = links(&v);
    assert!(names.contains(&"thermo".to_owned()), "{v}");
    assert!(names.contains(&"platform.web".to_owned()), "{v}");
    assert_eq!(v["links"]["thermo"], format!("{P}/agents/thermo"));
    web.get(&format!("{P}/agents?agent-state=bogus"), &viewer)
        .expect(400);
    let v = web.get(&format!("{P}/agents/thermo"), &viewer).expect(200).json();
    assert_eq!(links(&v), ["configs", "health", "rpc", "status"], "{v}");
    assert_eq!(v["links"]["rpc"], format!("{P}/agents/thermo/rpc"));
    // (Configurations may be stored for an agent before it is installed.)
    for sub in ["", "/status", "/health", "/running", "/rpc"] {
        let r = web.get(&format!("{P}/agents/ghost{sub}"), &viewer);
        assert_eq!(r.status, 404, "ghost{sub}: {}", r.body);
    }

    // Its status (a peer, not an installed agent) and health.
    let v = web
        .get(&format!("{P}/agents/thermo/status"), &viewer)
        .expect(200)
        .json();
    assert_eq!(v["running"], true, "{v}");
    assert_eq!(v["status"], "connected");
    assert_eq!(v["enabled"], false);
    for k in ["name", "uuid", "tag", "priority", "pid", "exit_code"] {
        assert_eq!(v[k], Json::Null, "{k}: {v}");
    }
    let all = web.get(&format!("{P}/status"), &viewer).expect(200).json();
    assert_eq!(all["thermo"], v);
    assert_eq!(all["platform.web"]["running"], true);
    let h = web
        .get(&format!("{P}/agents/thermo/health"), &viewer)
        .expect(200)
        .json();
    assert_eq!(h["connected"], true, "{h}");
    assert!(
        h.get("status").is_some() && h.get("last_heartbeat").is_some(),
        "{h}"
    );
    let v = web
        .get(&format!("{P}/agents/thermo/running"), &viewer)
        .expect(200)
        .json();
    assert_eq!(v, json!({"running": true}));
    // Not installed: nothing to start, enable or tag.
    web.req("PUT", &format!("{P}/agents/thermo/running"))
        .token(&admin)
        .send()
        .expect(400);
    web.get(&format!("{P}/agents/thermo/enabled"), &viewer)
        .expect(404);
    web.get(&format!("{P}/agents/thermo/tag"), &viewer).expect(404);

    // Pub/sub: the subscriptions, and a publish that reaches the agent.
    let v = web.get(&format!("{P}/pubsub"), &viewer).expect(200).json();
    let subscribed = v.as_object().unwrap().iter().any(|(prefix, peers)| {
        prefix.starts_with("devices") && peers.as_array().unwrap().contains(&json!("thermo"))
    });
    assert!(subscribed, "{v}");
    let v = web
        .req("PUT", &format!("{P}/pubsub/devices/campus/rtu1"))
        .token(&viewer)
        .json(&json!({"message": {"temp": 19.5}, "headers": {"units": "C"}}))
        .send()
        .expect(200)
        .json();
    assert_eq!(v, json!({"number_of_subscribers": 1}));
    let heard = probe.wait_heard(1);
    assert_eq!(
        heard[0],
        ("devices/campus/rtu1".to_owned(), json!({"temp": 19.5}))
    );
    let v = web
        .req("PUT", &format!("{P}/pubsub/nobody/listens"))
        .token(&viewer)
        .json(&json!({"message": 1}))
        .send()
        .expect(200)
        .json();
    assert_eq!(v, json!({"number_of_subscribers": 0}));
    for bad in [json!({"message": 1, "headers": [1]}), json!("x")] {
        let r = web
            .req("PUT", &format!("{P}/pubsub/devices/x"))
            .token(&viewer)
            .json(&bad)
            .send();
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    web.req("PUT", &format!("{P}/pubsub/devices/x"))
        .token(&viewer)
        .body("application/json", "{oops")
        .send()
        .expect(400);
    // GET on a topic is a WebSocket, and nothing else.
    web.get(&format!("{P}/pubsub/devices/x"), &viewer).expect(400);
    assert_eq!(probe.heard().len(), 1);
    web.shutdown();
}

#[test]
fn configs_create_conflict_replace_read_and_delete() {
    let web = Web::start(Web::config());
    let admin = web.user_token("root", &["admin", "vui"]);
    let viewer = web.user_token("viewer", &["vui"]);
    web.thermo("thermo");
    let configs = format!("{P}/agents/thermo/configs");

    assert_eq!(
        web.get(&configs, &viewer).expect(200).json(),
        json!({"links": {}})
    );
    let r = web
        .req("POST", &format!("{configs}?config-name=setpoints"))
        .token(&admin)
        .json(&json!({"occupied": 21, "unoccupied": 16}))
        .send()
        .expect(201);
    assert_eq!(
        r.header("location"),
        Some(format!("{configs}/setpoints").as_str())
    );
    let r = web
        .req("POST", &format!("{configs}?config-name=setpoints"))
        .token(&admin)
        .json(&json!({"other": 1}))
        .send()
        .expect(409);
    assert!(r.json()["error"].as_str().unwrap().contains("setpoints"));
    let v = web.get(&configs, &viewer).expect(200).json();
    assert_eq!(v, json!({"links": {"setpoints": format!("{configs}/setpoints")}}));
    let r = web.get(&format!("{configs}/setpoints"), &viewer).expect(200);
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(r.json(), json!({"occupied": 21, "unoccupied": 16}));
    // The store holds what the agent will read.
    let stored = block_on(
        web.platform
            .call("config.store", "get_config", ("thermo", "setpoints"))
            .returning::<String>(),
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Json>(&stored).unwrap(),
        json!({"occupied": 21, "unoccupied": 16})
    );

    // Replaced by CSV, then by raw text.
    web.req("PUT", &format!("{configs}/setpoints"))
        .token(&admin)
        .body("text/csv", "zone,setpoint\nA,21\n")
        .send()
        .expect(204);
    let r = web.get(&format!("{configs}/setpoints"), &viewer).expect(200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/plain"),
        "{r:?}"
    );
    assert_eq!(r.body, "zone,setpoint\nA,21\n");
    web.req("POST", &format!("{configs}?config-name=notes"))
        .token(&admin)
        .body("text/plain", "free text")
        .send()
        .expect(201);
    assert_eq!(
        web.get(&format!("{configs}/notes"), &viewer).expect(200).body,
        "free text"
    );
    assert_eq!(links(&web.get(&configs, &viewer).json()), ["notes", "setpoints"]);
    // Every store, through the `-` agent.
    let stores = web
        .get(&format!("{P}/agents/-/configs"), &viewer)
        .expect(200)
        .json();
    assert!(stores.to_string().contains("thermo"), "{stores}");

    // Refused: no name, a type the store cannot keep, JSON that is not.
    let bad = [
        (configs.clone(), "application/json", "{}"),
        (format!("{configs}?config-name="), "application/json", "{}"),
        (format!("{configs}?config-name=x"), "application/xml", "<x/>"),
        (format!("{configs}?config-name=x"), "application/json", "{nope"),
    ];
    for (path, ct, body) in bad {
        let r = web.req("POST", &path).token(&admin).body(ct, body).send();
        assert_eq!(r.status, 400, "{path} {ct}: {}", r.body);
        assert!(r.json()["error"].is_string());
    }
    web.req("PUT", &format!("{configs}/notes"))
        .token(&admin)
        .body("application/json", "[1,")
        .send()
        .expect(400);

    // Deleted, then gone.
    web.req("DELETE", &format!("{configs}/setpoints"))
        .token(&admin)
        .send()
        .expect(204);
    web.get(&format!("{configs}/setpoints"), &viewer).expect(404);
    web.req("DELETE", &format!("{configs}/setpoints"))
        .token(&admin)
        .send()
        .expect(404);
    assert_eq!(links(&web.get(&configs, &viewer).json()), ["notes"]);
    web.shutdown();
}

#[test]
fn rpc_routes_with_volttron_bodies_and_the_allow_list() {
    let web = Web::start(Web::config());
    let admin = web.user_token("root", &["admin", "vui"]);
    let viewer = web.user_token("viewer", &["vui"]);
    web.thermo("thermo");
    let rpc = format!("{P}/agents/thermo/rpc");

    let v = web.get(&rpc, &admin).expect(200).json();
    let methods = links(&v);
    for m in ["add", "bump", "fail", "get_temp", "poke", "set_point"] {
        assert!(methods.contains(&m.to_owned()), "{m}: {v}");
    }
    assert_eq!(v["links"]["add"], format!("{rpc}/add"));
    let inspected = web.get(&format!("{rpc}/add"), &admin).expect(200).json();
    assert!(inspected.is_object(), "{inspected}");
    assert!(inspected.to_string().contains('a'), "{inspected}");

    let post = |method: &str, body: Option<Json>| {
        let req = web.req("POST", &format!("{rpc}/{method}")).token(&admin);
        match body {
            Some(b) => req.json(&b),
            None => req,
        }
        .send()
    };
    // Keyword arguments, VOLTTRON's "args" list, an array; no body at all.
    assert_eq!(post("add", Some(json!({"a": 2, "b": 40}))).expect(200).json(), 42);
    assert_eq!(post("add", Some(json!({"args": [2, 3]}))).expect(200).json(), 5);
    assert_eq!(
        post("add", Some(json!({"args": [2], "b": 5}))).expect(200).json(),
        7
    );
    assert_eq!(post("add", Some(json!([20, 22]))).expect(200).json(), 42);
    assert_eq!(post("get_temp", None).expect(200).json(), 21.5);
    assert_eq!(
        post("set_point", Some(json!({"value": 22.5}))).expect(200).json(),
        22.5
    );
    // Bodies that are not arguments; arguments that do not fit; unknown methods.
    for bad in [json!(3), json!({"args": 1}), json!("x")] {
        let r = post("add", Some(bad.clone()));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    post("add", Some(json!(["x", "y"]))).expect(400);
    post("nosuch", Some(json!([]))).expect(400);
    let r = post("fail", Some(json!(["broken"]))).expect(500);
    assert!(
        r.json()["error"].as_str().unwrap().contains("broken"),
        "{}",
        r.body
    );
    web.req("POST", &format!("{P}/agents/ghost/rpc/x"))
        .token(&admin)
        .json(&json!([]))
        .send()
        .expect(404);
    // Without an allow list a `vui` user may look, not call.
    let r = web
        .req("POST", &format!("{rpc}/get_temp"))
        .token(&viewer)
        .send()
        .expect(403);
    assert!(r.json()["error"].as_str().unwrap().contains("rpc-allow-list"));
    assert_eq!(web.get(&rpc, &viewer).expect(200).json(), json!({"links": {}}));
    // The platform's services are not called over HTTP, even by an administrator.
    for (peer, method) in [
        ("platform.auth", "get_authorization_pending"),
        ("config.store", "set_config"),
        ("platform.web", "get_user_claims"),
    ] {
        let r = web
            .req("POST", &format!("{P}/agents/{peer}/rpc/{method}"))
            .token(&admin)
            .json(&json!([]))
            .send();
        assert_eq!(r.status, 403, "{peer}.{method}: {}", r.body);
    }
    web.shutdown();

    // With a list: `vui` users call what it allows.
    let allow: RpcAllowList = "thermo: get_*, set_point\n*: nothing".parse().unwrap();
    let web = WebSetup::new(Web::config().rpc_allow_list(allow)).start();
    let viewer = web.user_token("viewer", &["vui"]);
    let admin = web.user_token("root", &["admin", "vui"]);
    web.thermo("thermo");
    let r = web.req("POST", &format!("{rpc}/get_temp")).token(&viewer).send();
    assert_eq!(r.expect(200).json(), 21.5);
    let r = web
        .req("POST", &format!("{rpc}/set_point"))
        .token(&viewer)
        .json(&json!([18.0]))
        .send();
    assert_eq!(r.expect(200).json(), 18.0);
    for m in ["add", "bump", "poke"] {
        web.req("POST", &format!("{rpc}/{m}"))
            .token(&viewer)
            .json(&json!([1, 2]))
            .send()
            .expect(403);
    }
    web.get(&format!("{rpc}/add"), &viewer).expect(403);
    let v = web.get(&rpc, &viewer).expect(200).json();
    assert_eq!(links(&v), ["get_temp", "set_point"], "what it may call: {v}");
    // Administrators are not limited by it; the deny list limits everyone.
    web.req("POST", &format!("{rpc}/add"))
        .token(&admin)
        .json(&json!([1, 2]))
        .send()
        .expect(200);
    web.req(
        "POST",
        &format!("{P}/agents/platform.auth/rpc/get_authorization_pending"),
    )
    .token(&admin)
    .send()
    .expect(403);
    web.shutdown();
}

/// The `volttron` binary with the web service and an installed agent.
struct Binary {
    home: common::Home,
    process: Option<common::PlatformProcess>,
    site: Site,
}

impl Binary {
    fn start(config: &str) -> Binary {
        let home = common::Home::with_config(config);
        let process = home.start_platform();
        let base: String = wait_until("the web address", || {
            let out = home.vctl(&["rpc", "call", "platform.web", "get_bind_web_address"]);
            out.status
                .success()
                .then(|| serde_json::from_slice::<String>(&out.stdout).ok())
                .flatten()
        });
        Binary {
            home,
            process: Some(process),
            site: Site::new(base),
        }
    }

    fn stop(mut self) {
        self.home.ok(&["shutdown", "--platform"]);
        let status = common::platform_wait(self.process.take().unwrap());
        assert!(status.success(), "{status:?}");
    }
}

const B: &str = "/vui/platforms/webctl";

#[test]
fn control_routes_of_an_installed_agent_on_the_volttron_binary() {
    let b = Binary::start(
        "[volttron]\ninstance-name = webctl\nbind-web-address = http://127.0.0.1:0\n[web]\nrpc-allow-list = meter.web: echo\n",
    );
    let site = &b.site;
    web_support::add_user(b.home.path(), "root", &["admin", "vui"]);
    web_support::add_user(b.home.path(), "viewer", &["vui"]);
    let admin = site.login("root").access;
    let viewer = site.login("viewer").access;
    let agent = common::remote_agent_binary();
    b.home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        "meter.web",
        "--tag",
        "meters",
    ]);
    let a = format!("{B}/agents/meter.web");

    // Installed, not running.
    let installed = site
        .get(&format!("{B}/agents?agent-state=installed"), &viewer)
        .expect(200)
        .json();
    assert_eq!(installed, json!({"links": {"meter.web": a}}));
    let running = site.get(&format!("{B}/agents"), &viewer).expect(200).json();
    assert_eq!(running, json!({"links": {}}), "running agents only");
    let hidden = site
        .get(&format!("{B}/agents?include-hidden=true"), &viewer)
        .expect(200)
        .json();
    assert!(links(&hidden).contains(&"platform.web".to_owned()), "{hidden}");
    let v = site.get(&a, &viewer).expect(200).json();
    assert_eq!(
        links(&v),
        ["configs", "enabled", "health", "running", "status", "tag"],
        "not connected: no rpc: {v}"
    );
    assert_eq!(
        site.get(&format!("{a}/running"), &viewer).expect(200).json(),
        json!({"running": false})
    );
    let s = site.get(&format!("{a}/status"), &viewer).expect(200).json();
    assert_eq!(s["running"], false, "{s}");
    assert_eq!(s["tag"], "meters");
    assert_eq!(s["pid"], Json::Null);
    assert!(s["uuid"].as_str().is_some_and(|u| !u.is_empty()), "{s}");
    assert!(
        s["name"].as_str().is_some_and(|n| n.contains("remote_agent")),
        "{s}"
    );
    for k in ["priority", "enabled", "exit_code", "status"] {
        assert!(s.get(k).is_some(), "{k}: {s}");
    }

    // Started by an administrator only.
    site.req("PUT", &format!("{a}/running"))
        .token(&viewer)
        .send()
        .expect(403);
    site.req("PUT", &format!("{a}/running"))
        .token(&admin)
        .send()
        .expect(204);
    let first_pid = wait_until("meter.web running with a pid", || {
        let s = site.get(&format!("{a}/status"), &viewer).json();
        (s["running"] == true).then(|| s["pid"].as_u64()).flatten()
    });
    wait_until("meter.web connected", || {
        (site.get(&format!("{a}/running"), &viewer).json() == json!({"running": true})).then_some(())
    });
    site.req("PUT", &format!("{a}/running"))
        .token(&admin)
        .send()
        .expect(400);
    let v = site.get(&format!("{B}/agents"), &viewer).json();
    assert_eq!(links(&v), ["meter.web"]);
    let all = site.get(&format!("{B}/status"), &viewer).expect(200).json();
    assert_eq!(all["meter.web"]["pid"], first_pid);
    assert_eq!(all["meter.web"]["tag"], "meters");
    let h = wait_until("a heartbeat", || {
        let h = site.get(&format!("{a}/health"), &viewer).json();
        (h["status"] == "GOOD").then_some(h)
    });
    assert!(h["last_heartbeat"].is_string(), "{h}");

    // RPC through the `[web]` section's allow list.
    let r = site
        .req("POST", &format!("{a}/rpc/echo"))
        .token(&viewer)
        .json(&json!(["over http"]))
        .send();
    assert_eq!(r.expect(200).json(), "over http");
    site.req("POST", &format!("{a}/rpc/interval"))
        .token(&viewer)
        .send()
        .expect(403);
    assert_eq!(
        site.req("POST", &format!("{a}/rpc/interval"))
            .token(&admin)
            .send()
            .expect(200)
            .json(),
        1
    );

    // Restarted: another process.
    site.req("PUT", &format!("{a}/running?restart=true"))
        .token(&admin)
        .send()
        .expect(204);
    wait_until("a new pid", || {
        let s = site.get(&format!("{a}/status"), &viewer).json();
        s["pid"].as_u64().filter(|p| *p != first_pid)
    });

    // Enabled (autostart) with a priority, then disabled.
    assert_eq!(
        site.get(&format!("{a}/enabled"), &viewer).expect(200).json(),
        json!({"status": false, "priority": null})
    );
    site.req("PUT", &format!("{a}/enabled?priority=30"))
        .token(&viewer)
        .send()
        .expect(403);
    site.req("PUT", &format!("{a}/enabled?priority=300"))
        .token(&admin)
        .send()
        .expect(400);
    site.req("PUT", &format!("{a}/enabled?priority=30"))
        .token(&admin)
        .send()
        .expect(204);
    assert_eq!(
        site.get(&format!("{a}/enabled"), &viewer).json(),
        json!({"status": true, "priority": 30})
    );
    let s = site.get(&format!("{a}/status"), &viewer).json();
    assert_eq!(s["enabled"], true);
    assert_eq!(s["priority"], "30");
    site.req("DELETE", &format!("{a}/enabled"))
        .token(&admin)
        .send()
        .expect(204);
    assert_eq!(site.get(&format!("{a}/enabled"), &viewer).json()["status"], false);

    // Tagged, then untagged.
    assert_eq!(
        site.get(&format!("{a}/tag"), &viewer).json(),
        json!({"tag": "meters"})
    );
    site.req("PUT", &format!("{a}/tag"))
        .token(&admin)
        .json(&json!({"tag": "east"}))
        .send()
        .expect(204);
    assert_eq!(
        site.get(&format!("{a}/tag"), &viewer).json(),
        json!({"tag": "east"})
    );
    site.req("PUT", &format!("{a}/tag"))
        .token(&admin)
        .json(&json!({"label": "east"}))
        .send()
        .expect(400);
    site.req("DELETE", &format!("{a}/tag"))
        .token(&admin)
        .send()
        .expect(204);
    assert_eq!(
        site.get(&format!("{a}/tag"), &viewer).json(),
        json!({"tag": null})
    );

    // Its configs through the same store the agent reads.
    site.req("POST", &format!("{a}/configs?config-name=config"))
        .token(&admin)
        .json(&json!({"interval": 3}))
        .send()
        .expect(201);
    wait_until("the agent read its new config", || {
        let v = site
            .req("POST", &format!("{a}/rpc/interval"))
            .token(&admin)
            .send()
            .json();
        (v == 3).then_some(())
    });

    // Stopped.
    site.req("DELETE", &format!("{a}/running"))
        .token(&viewer)
        .send()
        .expect(403);
    site.req("DELETE", &format!("{a}/running"))
        .token(&admin)
        .send()
        .expect(204);
    wait_until("meter.web stopped", || {
        let s = site.get(&format!("{a}/status"), &viewer).json();
        (s["running"] == false && s["pid"].is_null()).then_some(())
    });
    assert_eq!(
        site.get(&format!("{a}/running"), &viewer).json(),
        json!({"running": false})
    );
    for sub in ["running", "enabled", "tag", "status"] {
        site.get(&format!("{B}/agents/ghost/{sub}"), &viewer).expect(404);
    }
    site.get("/vui/platforms/volttron1/agents", &viewer).expect(404);
    b.stop();
}
