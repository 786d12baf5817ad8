//! The web service's logins, against a real server on loopback with a real HTTP client:
//! `/discovery/`; web users made by `vctl web user` (the binary) and by the library; `POST
//! /authenticate` with JSON and with a form; the failure delay that slows down an address
//! after a failed login; refresh, logout, removed users and expired tokens; capabilities
//! (`vui` alone cannot control agents); HTTPS with a self-signed certificate; and no secret
//! (password hash, signing key) in any answer.

mod web_support;

use base64::Engine as _;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use volttron::auth::pending::FailureTracker;
use volttron::web::{Claims, WebConfig, WebService};
use web_support::{PASSWORD, Web, WebSetup, assert_no_secrets, block_on, client};

fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

/// Runs `vctl --volttron-home home args...` with `stdin` fed in.
fn vctl(home: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vctl"))
        .arg("--volttron-home")
        .arg(home)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[track_caller]
fn vctl_ok(home: &Path, args: &[&str], stdin: &str) -> String {
    let out = vctl(home, args, stdin);
    assert!(
        out.status.success(),
        "vctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn discovery_tells_the_instance_its_key_and_the_vip_address() {
    let web = WebSetup::service(WebService::new(Web::config()).vip_address("tcp://127.0.0.1:22916")).start();
    // No token needed: VOLTTRON's tools ask before they have one.
    let r = web.req("GET", "/discovery/").send().expect(200);
    let d = r.json();
    assert_eq!(d["instance-name"], "webtest");
    assert_eq!(d["vip-address"], "tcp://127.0.0.1:22916");
    let key = volttron::auth::keys::PlatformKey::public_key(web.home())
        .unwrap()
        .expect("the platform's key in its home");
    assert_eq!(d["serverkey"], key.to_string());
    assert_eq!(d.as_object().unwrap().len(), 3, "{d}");
    assert_no_secrets(&r.body, None);
    web.shutdown();

    // Without a VIP address to tell, the key is absent.
    let web = Web::start(Web::config());
    let d = web.req("GET", "/discovery/").send().expect(200).json();
    assert!(d.get("vip-address").is_none(), "{d}");
    assert!(d["serverkey"].as_str().is_some_and(|k| !k.is_empty()), "{d}");
    web.shutdown();
}

#[test]
fn vctl_web_user_add_list_remove_and_the_service_follows_the_file() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = vctl_ok(
        h,
        &[
            "web",
            "user",
            "add",
            "alice",
            "--groups",
            "admin,vui",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.contains("alice"), "{out}");
    let file = h.join("web-users.json");
    assert_eq!(mode(&file), 0o600, "the users file is its owner's alone");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("$argon2id$"), "{text}");
    assert!(!text.contains(PASSWORD), "no plain password: {text}");
    assert!(!text.contains("horse"), "not even a part: {text}");
    let on_disk: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(on_disk["alice"]["groups"], json!(["admin", "vui"]));

    // A second user, a refused duplicate and an empty password.
    vctl_ok(
        h,
        &["web", "user", "add", "bob", "--password-stdin"],
        "b0b's password\n",
    );
    let dup = vctl(h, &["web", "user", "add", "alice", "--password-stdin"], "x\n");
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists"));
    let empty = vctl(h, &["web", "user", "add", "carol", "--password-stdin"], "\n");
    assert!(!empty.status.success());
    let listed: serde_json::Value =
        serde_json::from_str(&vctl_ok(h, &["--json", "web", "user", "list"], "")).unwrap();
    assert_eq!(
        listed,
        json!([{"name": "alice", "groups": ["admin", "vui"]}, {"name": "bob", "groups": ["vui"]}])
    );
    assert_no_secrets(&listed.to_string(), None);

    // The service reads the file at each login.
    let web = WebSetup::new(Web::config()).home(home).start();
    let alice = web.login("alice");
    web.get("/vui/", &alice.access).expect(200);
    let bob = web.authenticate("bob", "b0b's password").expect(200).json();
    assert!(bob["access_token"].is_string());

    vctl_ok(web.home(), &["web", "user", "remove", "alice"], "");
    let listed: serde_json::Value =
        serde_json::from_str(&vctl_ok(web.home(), &["--json", "web", "user", "list"], "")).unwrap();
    assert_eq!(listed, json!([{"name": "bob", "groups": ["vui"]}]));
    assert!(
        !vctl(web.home(), &["web", "user", "remove", "alice"], "")
            .status
            .success()
    );
    // Removed: no new login, no refresh, and the login's tokens end with it.
    web.authenticate("alice", PASSWORD).expect(401);
    let r = web
        .req("PUT", "/authenticate")
        .token(&alice.refresh)
        .send()
        .expect(401);
    assert!(
        r.json()["error"].as_str().unwrap().contains("no longer exists"),
        "{}",
        r.body
    );
    web.get("/vui/", &alice.access).expect(401);
    web.shutdown();
}

#[test]
fn logins_by_json_and_by_form_give_tokens_and_bad_ones_get_401() {
    let web = Web::start(Web::config());
    web.add_user("bob", &["vui"]);
    let r = web.authenticate("bob", PASSWORD).expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    let access = v["access_token"].as_str().unwrap();
    assert!(v["refresh_token"].is_string());
    assert_eq!(access.split('.').count(), 3, "a JWT");
    web.get("/vui/", access).expect(200);
    assert_no_secrets(&r.body, None);

    // A form, as VOLTTRON's pages post it (`+` for spaces).
    let form = format!("username=bob&password={}", PASSWORD.replace(' ', "+"));
    let v = web
        .req("POST", "/authenticate")
        .body("application/x-www-form-urlencoded", form)
        .send()
        .expect(200)
        .json();
    web.get("/vui/", v["access_token"].as_str().unwrap()).expect(200);

    for (user, password) in [("bob", "wrong"), ("nobody", PASSWORD), ("bob", "")] {
        let r = web.authenticate(user, password).expect(401);
        assert_eq!(r.json(), json!({"error": "Not Authorized"}), "{user}/{password}");
    }
    let r = web
        .req("POST", "/authenticate")
        .body("application/json", "{not json")
        .send()
        .expect(400);
    assert!(r.json()["error"].is_string());
    web.shutdown();
}

/// The delay the failure tracker's policy imposes after `failures` failures.
fn policy_delay(failures: u32) -> Duration {
    let mut t = FailureTracker::new();
    let now = Instant::now();
    for _ in 0..failures {
        t.record_failure("x", now);
    }
    t.delay("x", now)
}

#[test]
fn each_failed_login_makes_the_next_one_from_that_address_wait_longer() {
    let web = Web::start(Web::config());
    web.add_user("bob", &["vui"]);
    let timed = |password: &str| {
        let t = Instant::now();
        let r = web.authenticate("bob", password);
        (r.status, t.elapsed())
    };
    // Empty passwords are refused without hashing: what is measured is the delay alone.
    let (s1, first) = timed("");
    assert_eq!(s1, 401);
    let (s2, second) = timed("");
    assert_eq!(s2, 401);
    assert!(!policy_delay(1).is_zero());
    assert!(
        second >= policy_delay(1),
        "the second failure waited {second:?}, the policy says {:?}",
        policy_delay(1)
    );
    assert!(second > first, "{second:?} vs {first:?}");
    let (s3, third) = timed("wrong");
    assert_eq!(s3, 401);
    assert!(third >= policy_delay(2), "{third:?} vs {:?}", policy_delay(2));
    // The right password still gets in (after the delay earned), and starts afresh.
    let (s4, fourth) = timed(PASSWORD);
    assert_eq!(s4, 200);
    assert!(fourth >= policy_delay(3), "{fourth:?} vs {:?}", policy_delay(3));
    let (s5, _) = timed("");
    assert_eq!(s5, 401);
    let (_, after_reset) = timed("");
    assert!(
        after_reset >= policy_delay(1) && after_reset < policy_delay(3),
        "counted from one again: {after_reset:?}"
    );
    web.shutdown();
}

#[test]
fn refresh_logout_and_token_kinds() {
    let web = Web::start(Web::config());
    web.add_user("ann", &["vui"]);
    let t = web.login("ann");

    let r = web
        .req("PUT", "/authenticate")
        .token(&t.refresh)
        .send()
        .expect(200);
    let v = r.json();
    let fresh = v["access_token"].as_str().unwrap().to_owned();
    assert!(v.get("refresh_token").is_none(), "{v}");
    assert_ne!(fresh, t.refresh);
    web.get("/vui/platforms", &fresh).expect(200);

    // Kinds do not mix.
    let r = web
        .req("PUT", "/authenticate")
        .token(&t.access)
        .send()
        .expect(401);
    assert!(r.json()["error"].is_string());
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    web.get("/vui/", &t.refresh).expect(401);
    web.req("PUT", "/authenticate").send().expect(401);
    web.req("PUT", "/authenticate")
        .token("not.a.token")
        .send()
        .expect(401);

    // A second login is a session of its own.
    let other = web.login("ann");
    web.req("DELETE", "/authenticate")
        .token(&t.refresh)
        .send()
        .expect(204);
    for token in [&t.access, &fresh] {
        web.get("/vui/", token).expect(401);
    }
    web.req("PUT", "/authenticate")
        .token(&t.refresh)
        .send()
        .expect(401);
    web.req("DELETE", "/authenticate")
        .token(&t.refresh)
        .send()
        .expect(401);
    web.get("/vui/", &other.access).expect(200);
    // Logging out with the access token works too.
    web.req("DELETE", "/authenticate")
        .token(&other.access)
        .send()
        .expect(204);
    web.get("/vui/", &other.access).expect(401);
    web.req("PUT", "/authenticate")
        .token(&other.refresh)
        .send()
        .expect(401);
    web.shutdown();
}

#[test]
fn a_removed_user_cannot_refresh_and_groups_follow_the_file() {
    let web = Web::start(Web::config());
    web.add_user("dan", &["vui"]);
    let t = web.login("dan");
    web.get("/vui/platforms/webtest/agents/x/running", &t.access)
        .expect(404);
    // Promoted: the next refresh carries the new groups.
    web.add_user("dan", &["vui", "admin"]);
    let v = web
        .req("PUT", "/authenticate")
        .token(&t.refresh)
        .send()
        .expect(200)
        .json();
    let promoted = v["access_token"].as_str().unwrap().to_owned();
    let claims: serde_json::Value = block_on(
        web.platform
            .call("platform.web", "get_user_claims", (promoted.as_str(),))
            .returning::<serde_json::Value>(),
    )
    .unwrap();
    assert_eq!(claims["groups"], json!(["admin", "vui"]), "{claims}");
    assert_eq!(claims["sub"], "dan");

    web.remove_user("dan");
    web.req("PUT", "/authenticate")
        .token(&t.refresh)
        .send()
        .expect(401);
    web.get("/vui/", &promoted).expect(401);
    web.get("/vui/", &t.access).expect(401);
    web.shutdown();
}

const SECRET: &str = "a-known-secret-key-for-tests-only-0123456789";

/// A JWT signed HS256 with `key`, made here from RFC 7515/7519 (not with the service's code).
fn sign(claims: &Claims, key: &str) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let signing_input = format!(
        "{}.{}",
        b64(br#"{"typ":"JWT","alg":"HS256"}"#),
        b64(&serde_json::to_vec(claims).unwrap())
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes()),
        signing_input.as_bytes(),
    );
    format!("{signing_input}.{}", b64(tag.as_ref()))
}

/// The claims of `token` after checking its HS256 tag with `key`.
fn verified_claims(token: &str, key: &str) -> Claims {
    let b64 = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap()
    };
    let (signing_input, tag) = token.rsplit_once('.').expect("a JWT has three parts");
    ring::hmac::verify(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes()),
        signing_input.as_bytes(),
        &b64(tag),
    )
    .expect("the service signs with the configured key");
    let (header, payload) = signing_input.split_once('.').unwrap();
    let header: serde_json::Value = serde_json::from_slice(&b64(header)).unwrap();
    assert_eq!(header["alg"], "HS256", "{header}");
    serde_json::from_slice(&b64(payload)).unwrap()
}

#[test]
fn expired_and_foreign_tokens_are_refused() {
    let web = Web::start(Web::config().secret_key(SECRET));
    web.add_user("eve", &["vui"]);
    let t = web.login("eve");
    let claims = verified_claims(&t.access, SECRET);
    assert_eq!(claims.sub, "eve");
    assert_eq!(claims.grant_type, "access_token");
    assert_eq!(claims.exp - claims.iat, 15 * 60);

    // The same claims re-signed are accepted: what follows fails for what was changed.
    web.get("/vui/", &sign(&claims, SECRET)).expect(200);
    let mut old = claims.clone();
    old.iat -= 3600;
    old.nbf -= 3600;
    old.exp = claims.iat - 10;
    let r = web.get("/vui/", &sign(&old, SECRET)).expect(401);
    assert!(
        r.json()["error"].as_str().unwrap().contains("expired"),
        "{}",
        r.body
    );
    // Not yet valid.
    let mut early = claims.clone();
    early.nbf = claims.iat + 3600;
    web.get("/vui/", &sign(&early, SECRET)).expect(401);
    // Another key; more groups than granted (tampered, so the signature fails).
    web.get("/vui/", &sign(&claims, "another key")).expect(401);
    let mut admin = claims.clone();
    admin.groups.push("admin".into());
    let forged = sign(&admin, "another key");
    web.req("PUT", "/vui/platforms/webtest/agents/x/running")
        .token(&forged)
        .send()
        .expect(401);
    // A well-signed token of a session that never was.
    let mut stray = claims.clone();
    stray.sid = "0000".into();
    web.get("/vui/", &sign(&stray, SECRET)).expect(401);
    web.shutdown();
}

#[test]
fn a_vui_token_reads_but_cannot_control_or_write() {
    let web = Web::start(Web::config());
    let vui = web.user_token("viewer", &["vui"]);
    let admin = web.user_token("root", &["admin", "vui"]);
    let nobody = web.user_token("guest", &[]);

    web.get("/vui/platforms/webtest", &vui).expect(200);
    let r = web.get("/vui/", &nobody).expect(403);
    assert!(r.json()["error"].as_str().unwrap().contains("vui"), "{}", r.body);
    web.req("POST", "/jsonrpc")
        .token(&nobody)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "web.peers"}))
        .send()
        .expect(403);

    let admin_only = [
        ("PUT", "/vui/platforms/webtest/agents/platform.health/running"),
        ("DELETE", "/vui/platforms/webtest/agents/platform.health/running"),
        ("PUT", "/vui/platforms/webtest/agents/platform.health/enabled"),
        ("DELETE", "/vui/platforms/webtest/agents/platform.health/tag"),
        ("DELETE", "/vui/platforms/webtest/agents/a/configs/c"),
    ];
    for (method, path) in admin_only {
        let r = web.req(method, path).token(&vui).send().expect(403);
        assert!(
            r.json()["error"].as_str().unwrap().contains("admin"),
            "{method} {path}"
        );
    }
    let r = web
        .req("POST", "/vui/platforms/webtest/agents/a/configs?config-name=c")
        .token(&vui)
        .json(&json!({"x": 1}))
        .send()
        .expect(403);
    assert!(r.json()["error"].is_string());
    web.req("PUT", "/vui/platforms/webtest/agents/a/configs/c")
        .token(&vui)
        .json(&json!({"x": 1}))
        .send()
        .expect(403);
    // Nothing was written.
    let stored = web
        .get("/vui/platforms/webtest/agents/a/configs", &admin)
        .expect(200);
    assert_eq!(stored.json(), json!({"links": {}}));
    // The admin passes the same checks (the agent is not installed: 400, not 403).
    web.req("PUT", "/vui/platforms/webtest/agents/platform.health/running")
        .token(&admin)
        .send()
        .expect(400);
    web.req("POST", "/vui/platforms/webtest/agents/a/configs?config-name=c")
        .token(&admin)
        .json(&json!({"x": 1}))
        .send()
        .expect(201);
    web.shutdown();
}

#[test]
fn https_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let config = WebConfig::new("https://127.0.0.1:0").unwrap().tls(&cert, &key);
    let web = WebSetup::new(config).trust(ck.cert.der().to_vec()).start();
    assert!(web.base.starts_with("https://127.0.0.1:"), "{}", web.base);
    let d = web.req("GET", "/discovery/").send().expect(200).json();
    assert_eq!(d["instance-name"], "webtest");
    web.add_user("tls", &["vui"]);
    let t = web.login("tls");
    web.get("/vui/platforms", &t.access).expect(200);
    web.req("PUT", "/authenticate")
        .token(&t.refresh)
        .send()
        .expect(200);

    // A client that does not trust the certificate gets no answer.
    let untrusting = client(None);
    let e = untrusting.get(web.url("/discovery/")).call();
    assert!(e.is_err(), "an unknown certificate must fail: {e:?}");
    // Nor does plain HTTP on the TLS port.
    let plain = format!("http://{}/discovery/", web.addr());
    let r = untrusting.get(&plain).call();
    assert!(r.map(|r| r.status() != 200).unwrap_or(true));
    web.shutdown();

    // https without a certificate does not start.
    let e = block_on(
        volttron::Platform::builder()
            .service(WebService::new(WebConfig::new("https://127.0.0.1:0").unwrap()))
            .start(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[test]
fn no_answer_carries_a_hash_or_the_secret_key() {
    let web = Web::start(Web::config().secret_key(SECRET));
    let admin = web.user_token("root", &["admin", "vui"]);
    let mut bodies = Vec::new();
    for path in [
        "/",
        "/status.json",
        "/openapi.json",
        "/discovery/",
        "/vui/",
        "/vui/platforms/webtest",
        "/vui/platforms/webtest/status",
        "/vui/platforms/webtest/agents?include-hidden=true",
        "/vui/platforms/webtest/agents/platform.web",
        "/vui/platforms/webtest/agents/platform.web/status",
        "/vui/platforms/webtest/agents/-/configs",
        "/vui/platforms/webtest/pubsub",
        "/no/such/route",
    ] {
        let r = web.get(path, &admin);
        assert!(r.status < 500, "{path}: {} {}", r.status, r.body);
        bodies.push(format!("{path} {:?} {}", r.headers, r.body));
    }
    // platform.web's own methods, and the auth service, are out of reach.
    let r = web
        .req("POST", "/jsonrpc")
        .token(&admin)
        .json(&json!([
            {"jsonrpc": "2.0", "id": 1, "method": "platform.web.get_user_claims", "params": [admin]},
            {"jsonrpc": "2.0", "id": 2, "method": "platform.auth.get_authorization_pending"},
        ]))
        .send()
        .expect(200);
    for answer in r.json().as_array().unwrap() {
        assert_eq!(answer["error"]["code"], -32001, "{answer}");
    }
    bodies.push(r.body);
    let r = web
        .req("POST", "/login")
        .body(
            "application/x-www-form-urlencoded",
            format!("username=root&password={}", PASSWORD.replace(' ', "+")),
        )
        .send();
    bodies.push(format!("{:?} {}", r.headers, r.body));
    for b in &bodies {
        assert_no_secrets(b, Some(SECRET));
    }
    web.shutdown();
}
