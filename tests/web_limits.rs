//! The web service's limits and defaults, against a real server on loopback: bodies over
//! `WebConfig::max_body` refused with 413 (a declared length before the body is read, a
//! chunked body as it streams in), unknown routes 404 JSON, no token 401 with
//! `WWW-Authenticate`, CORS closed unless an origin is configured, nothing changed without
//! a token, `X-Content-Type-Options: nosniff`, and the listener gone when the platform has
//! shut down.

mod web_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use web_support::{Reply, Web, block_on};

const LIMIT: usize = 1024;

/// Sends `head` (and then whatever `body` is) on a fresh connection and reads the answer's
/// status line and headers, without sending anything more; then the body if it comes with a
/// `Content-Length`.
fn raw(web: &Web, head: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(web.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut out = head.as_bytes().to_vec();
    out.extend_from_slice(body);
    // The server may answer (and stop reading) before all of it is sent.
    let _ = s.write_all(&out);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("an answer before the read timeout");
        assert!(
            n > 0,
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    };
    let text = String::from_utf8_lossy(&got[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut rest = got[end..].to_vec();
    while rest.len() < length {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
        }
    }
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&rest).into_owned(),
    }
}

fn small_platform() -> Web {
    Web::start(Web::config().max_body(LIMIT))
}

#[test]
fn a_declared_oversize_body_gets_413_before_it_is_sent() {
    let web = small_platform();
    let token = web.user_token("root", &["admin", "vui"]);
    let probe = web.thermo("thermo");
    for path in [
        "/jsonrpc",
        "/vui/platforms/webtest/agents/thermo/rpc/bump",
        "/authenticate",
        "/agent/route",
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
        );
        let t = Instant::now();
        let r = raw(&web, &head, b"{\"jsonrpc\"");
        assert_eq!(r.status, 413, "{path}: {r:?}");
        assert!(t.elapsed() < Duration::from_secs(15), "answered without the rest");
        assert!(r.json()["error"].as_str().unwrap().contains("1024"), "{r:?}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
    }
    // Without a token it is the same answer: the size is checked first.
    let head =
        "PUT /vui/platforms/webtest/pubsub/devices/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n";
    assert_eq!(raw(&web, head, b"{}").status, 413);
    assert_eq!(probe.bumps(), 0);

    // At the limit it is read.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "thermo.bump", "params": []}).to_string();
    let padded = format!("{call:<LIMIT$}");
    assert_eq!(padded.len(), LIMIT);
    let r = web
        .req("POST", "/jsonrpc")
        .token(&token)
        .body("application/json", padded)
        .send()
        .expect(200);
    assert_eq!(r.json()["result"], 1);
    assert_eq!(probe.bumps(), 1);
    web.shutdown();
}

fn chunked(n: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let piece = "x".repeat(256);
    for _ in 0..n {
        body.extend_from_slice(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes());
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

#[test]
fn a_chunked_oversize_body_gets_413() {
    let web = small_platform();
    let token = web.user_token("root", &["admin", "vui"]);
    let probe = web.thermo("thermo");
    for (method, path) in [
        ("POST", "/jsonrpc"),
        ("PUT", "/vui/platforms/webtest/pubsub/devices/big"),
        ("POST", "/vui/platforms/webtest/agents/thermo/rpc/bump"),
        (
            "POST",
            "/vui/platforms/webtest/agents/thermo/configs?config-name=big",
        ),
    ] {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let r = raw(&web, &head, &chunked(8));
        assert_eq!(r.status, 413, "{method} {path}: {r:?}");
        // Under the limit, chunked is fine (and is read as what it is: not JSON here).
        let r = raw(&web, &head, &chunked(2));
        assert_ne!(r.status, 413, "{method} {path}: {r:?}");
    }
    assert_eq!(probe.bumps(), 0);
    assert!(probe.heard().is_empty());
    let configs = web
        .get("/vui/platforms/webtest/agents/thermo/configs", &token)
        .expect(200);
    assert_eq!(configs.json(), json!({"links": {}}));
    web.shutdown();
}

#[test]
fn unknown_routes_404_and_missing_tokens_401_in_json() {
    let web = Web::start(Web::config());
    let token = web.user_token("root", &["admin", "vui"]);
    for path in ["/no/such/route", "/vui/nothing/here", "/discovery/extra"] {
        for r in [web.req("GET", path).send(), web.get(path, &token)] {
            assert_eq!(r.status, 404, "{path}: {}", r.body);
            assert!(r.json()["error"].is_string(), "{path}: {}", r.body);
            assert!(
                r.header("content-type").unwrap().starts_with("application/json"),
                "{path}"
            );
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        }
    }
    web.get("/vui/platforms/elsewhere", &token).expect(404);
    for (method, path) in [
        ("GET", "/vui/"),
        ("GET", "/vui/platforms/webtest/status"),
        ("GET", "/status.json"),
        ("POST", "/jsonrpc"),
        ("PUT", "/authenticate"),
        ("DELETE", "/authenticate"),
    ] {
        for r in [
            web.req(method, path).send(),
            web.req(method, path).token("garbage").send(),
            web.req(method, path)
                .header("Authorization", "Basic cm9vdDpwdw==")
                .send(),
        ] {
            assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{method} {path}");
            assert!(r.json()["error"].is_string());
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        }
    }
    let ok = web.req("GET", "/discovery/").send().expect(200);
    assert_eq!(ok.header("x-content-type-options"), Some("nosniff"));
    web.shutdown();
}

#[test]
fn cors_is_closed_by_default_and_open_for_a_configured_origin() {
    let web = Web::start(Web::config());
    let r = web
        .req("GET", "/discovery/")
        .header("Origin", "http://ui.example")
        .send()
        .expect(200);
    assert_eq!(r.header("access-control-allow-origin"), None, "{:?}", r.headers);
    let pre = web
        .req("OPTIONS", "/authenticate")
        .header("Origin", "http://ui.example")
        .header("Access-Control-Request-Method", "POST")
        .send();
    assert_eq!(pre.header("access-control-allow-origin"), None, "{pre:?}");
    assert_eq!(pre.header("access-control-allow-methods"), None);
    web.shutdown();

    let mut config = Web::config();
    config.cors_origins = vec!["http://ui.example".into()];
    let web = Web::start(config);
    web.add_user("ui", &["vui"]);
    let r = web
        .req("POST", "/authenticate")
        .header("Origin", "http://ui.example")
        .json(&json!({"username": "ui", "password": web_support::PASSWORD}))
        .send()
        .expect(200);
    assert_eq!(r.header("access-control-allow-origin"), Some("http://ui.example"));
    assert_eq!(r.header("vary"), Some("Origin"));
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let pre = web
        .req("OPTIONS", "/vui/platforms")
        .header("Origin", "http://ui.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .expect(204);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("http://ui.example")
    );
    assert!(
        pre.header("access-control-allow-methods")
            .unwrap()
            .contains("GET")
    );
    assert!(
        pre.header("access-control-allow-headers")
            .unwrap()
            .contains("Authorization")
    );
    // Errors carry it too (the page must be able to read them).
    let r = web
        .req("GET", "/vui/platforms")
        .header("Origin", "http://ui.example")
        .send()
        .expect(401);
    assert_eq!(r.header("access-control-allow-origin"), Some("http://ui.example"));
    let r = web
        .req("GET", "/vui/platforms")
        .token(&token)
        .header("Origin", "http://ui.example")
        .send()
        .expect(200);
    assert_eq!(r.header("access-control-allow-origin"), Some("http://ui.example"));
    // Another origin still gets nothing.
    for origin in ["http://evil.example", "http://ui.example.evil", "null"] {
        let r = web
            .req("GET", "/vui/platforms")
            .token(&token)
            .header("Origin", origin)
            .send()
            .expect(200);
        assert_eq!(r.header("access-control-allow-origin"), None, "{origin}");
        let pre = web
            .req("OPTIONS", "/vui/platforms")
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .send();
        assert_eq!(pre.header("access-control-allow-origin"), None, "{origin}");
    }
    web.shutdown();
}

#[test]
fn nothing_changes_without_a_token() {
    let web = Web::start(Web::config());
    let probe = web.thermo("thermo");
    block_on(web.platform.call(
        "config.store",
        "set_config",
        ("thermo", "kept", "{\"a\": 1}", "json"),
    ))
    .unwrap();
    let publish = json!({"message": "intruder"});
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "thermo.bump"});
    let web_publish =
        json!({"jsonrpc": "2.0", "id": 1, "method": "web.publish", "params": ["devices/x", "intruder"]});
    let cfg = "/vui/platforms/webtest/agents/thermo/configs";
    for token in [None, Some("garbage"), Some("a.b.c")] {
        let attempts = [
            web.req("PUT", "/vui/platforms/webtest/pubsub/devices/x")
                .json(&publish),
            web.req("POST", "/jsonrpc").json(&call),
            web.req("POST", "/jsonrpc").json(&web_publish),
            web.req("POST", "/vui/platforms/webtest/agents/thermo/rpc/bump")
                .json(&json!([])),
            web.req("POST", &format!("{cfg}?config-name=new"))
                .json(&json!({"b": 2})),
            web.req("PUT", &format!("{cfg}/kept")).json(&json!({"a": 2})),
            web.req("DELETE", &format!("{cfg}/kept")),
            web.req("DELETE", "/vui/platforms/webtest/agents/thermo/running"),
            web.req("PUT", "/vui/platforms/webtest/agents/thermo/tag")
                .json(&json!({"tag": "x"})),
        ];
        for req in attempts {
            let req = match token {
                Some(t) => req.token(t),
                None => req,
            };
            let r = req.send();
            assert_eq!(r.status, 401, "{token:?}: {}", r.body);
        }
    }
    // Browsers send cookies and query parameters unasked: they never authorize a change.
    let admin = web.user_token("root", &["admin", "vui"]);
    let r = web
        .req("POST", &format!("/jsonrpc?access_token={admin}"))
        .header("Cookie", &format!("Bearer={admin}"))
        .json(&call)
        .send();
    assert_eq!(r.status, 401, "{}", r.body);
    let r = web
        .req(
            "PUT",
            &format!("/vui/platforms/webtest/pubsub/devices/x?access_token={admin}"),
        )
        .header("Cookie", &format!("Bearer={admin}"))
        .json(&publish)
        .send();
    assert_eq!(r.status, 401, "{}", r.body);

    // Nothing happened: the first publication the agent hears is the one made with a token.
    let r = web
        .req("PUT", "/vui/platforms/webtest/pubsub/devices/x")
        .token(&admin)
        .json(&json!({"message": "marker"}))
        .send()
        .expect(200);
    assert_eq!(r.json()["number_of_subscribers"], 1);
    let heard = probe.wait_heard(1);
    assert_eq!(heard[0], ("devices/x".to_owned(), json!("marker")));
    assert_eq!(probe.bumps(), 0);
    let names: Vec<String> = block_on(
        web.platform
            .call("config.store", "list_configs", ("thermo",))
            .returning(),
    )
    .unwrap();
    assert_eq!(names, ["kept"]);
    let kept = web.get(&format!("{cfg}/kept"), &admin).expect(200);
    assert_eq!(kept.json(), json!({"a": 1}));
    assert_eq!(
        web.get("/vui/platforms/webtest/agents/thermo/running", &admin)
            .expect(200)
            .json(),
        json!({"running": true})
    );
    web.shutdown();
}

#[test]
fn the_listener_closes_with_the_platform() {
    let web = Web::start(Web::config());
    let addr = web.addr();
    web.req("GET", "/discovery/").send().expect(200);
    // A connection left open (keep-alive) does not hold the shutdown up.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /discovery/ HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(idle.read(&mut buf).unwrap() > 0);
    let t = Instant::now();
    block_on(web.platform.shutdown());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let e = TcpStream::connect(addr).expect_err("nothing listens after shutdown");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    // The idle connection was closed too.
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match idle.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{n} more bytes on a closed service"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the idle connection was left open: {e}"
        ),
    }
    drop(web);
}
