//! `platform.simulation` through the web service on DOTS's paths, with a real HTTP client
//! (ureq) against a platform serving on loopback with auth on: DOTS's token path (the
//! OAuth2 password grant of the web service's users), start and queue need a web user's
//! token, status, list, results as CSV and JSON, cancel, and the errors
//! (`400` with the field, `404`, `409`).

#![cfg(all(feature = "simulation", feature = "web"))]

mod common;

use std::time::{Duration, Instant};

use common::simulation::{request, service};
use serde_json::{Value as Json, json};
use volttron::prelude::*;
use volttron::web::{WebConfig, WebService, WebUsers};

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

struct Site {
    _home: tempfile::TempDir,
    platform: Platform,
    base: String,
}

impl Site {
    async fn start() -> Site {
        let home = tempfile::tempdir().unwrap();
        let mut users = WebUsers::load(WebUsers::path_in(home.path())).unwrap();
        users
            .add("modeller", "pw-modeller", &["vui".to_owned()], false)
            .unwrap();
        let platform = Platform::builder()
            .home(home.path())
            .auth(true)
            .service(WebService::new(
                WebConfig::new("http://127.0.0.1:0")
                    .unwrap()
                    .oauth2_token_path("/api/v1/simulation/token"),
            ))
            .service(service())
            .start()
            .await
            .unwrap();
        let base: String = platform
            .call("platform.web", "get_bind_web_address", ())
            .returning()
            .await
            .unwrap();
        Site {
            _home: home,
            platform,
            base,
        }
    }

    /// `method path` (with a bearer token and a JSON body): status and body.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Json>,
    ) -> (u16, Vec<u8>, String) {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            b = b.header("Authorization", format!("Bearer {t}"));
        }
        let r = match body {
            Some(body) => http().run(
                b.header("Content-Type", "application/json")
                    .body(body.to_string())
                    .unwrap(),
            ),
            None => http().run(b.body(()).unwrap()),
        };
        let mut r = r.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (
            r.status().as_u16(),
            r.body_mut().read_to_vec().unwrap(),
            content_type,
        )
    }

    fn json(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Json>) -> (u16, Json) {
        let (status, body, _) = self.call(method, path, token, body);
        let json = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        (status, json)
    }

    /// DOTS's token call: the OAuth2 password grant, as a form.
    fn dots_token(&self, password: &str) -> (u16, Json) {
        let mut r = http()
            .post(format!("{}/api/v1/simulation/token", self.base))
            .send_form([
                ("grant_type", "password"),
                ("username", "modeller"),
                ("password", password),
            ])
            .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap_or(Json::Null))
    }

    fn token(&self) -> String {
        let (status, body) = self.json(
            "POST",
            "/authenticate",
            None,
            Some(&json!({"username": "modeller", "password": "pw-modeller"})),
        );
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

#[volttron::test]
async fn simulations_are_started_followed_and_downloaded_over_http() {
    let site = Site::start().await;
    // DOTS's clients log in at DOTS's token path; wrong passwords get no token.
    let (status, _) = site.dots_token("wrong");
    assert_eq!(status, 401);
    let (status, t) = site.dots_token("pw-modeller");
    assert_eq!((status, t["token_type"].as_str()), (200, Some("bearer")), "{t}");
    let token = t["access_token"].as_str().unwrap().to_owned();
    let body = request("Over HTTP", 2, 1, 8);

    let (status, _, _) = site.call("POST", "/api/v1/simulation/start", None, Some(&body));
    assert_eq!(status, 401, "starting needs a token");
    let (status, started) = site.json("POST", "/api/v1/simulation/start", Some(&token), Some(&body));
    assert_eq!(status, 201, "{started}");
    let id = started["simulation_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("over-http-"), "{id}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let (code, s) = site.json("GET", &format!("/api/v1/simulation/{id}"), None, None);
        assert_eq!(code, 200, "{s}");
        if s["stopped"] == json!(true) {
            break s;
        }
        assert!(Instant::now() < deadline, "not done: {s}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status["simulation_status"], "TERMINATED_SUCCESSFULL");
    assert_eq!(
        status["name"], "Over HTTP",
        "DOTS's fields: the request's with the status"
    );

    let (code, list) = site.json("GET", "/api/v1/simulation/", None, None);
    assert_eq!(code, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (code, csv, content_type) = site.call("GET", &format!("/api/v1/simulation/data/{id}"), None, None);
    assert_eq!((code, content_type.as_str()), (200, "text/csv; charset=utf-8"));
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8 * (4 + 4 + 2));
    let (code, rows) = site.json("GET", &format!("/api/v1/simulation/results/{id}"), None, None);
    assert_eq!(code, 200);
    assert_eq!(rows.as_array().unwrap().len(), 8 * 10);

    let (code, e) = site.json("DELETE", &format!("/api/v1/simulation/{id}"), Some(&token), None);
    assert_eq!(code, 409, "{e}");
    assert!(e["detail"].as_str().unwrap().contains("already ended"));
    site.platform.shutdown().await;
}

#[volttron::test]
async fn a_queued_simulation_is_cancelled_and_bad_requests_say_why() {
    let site = Site::start().await;
    let token = site.token();
    let (code, running) = site.json(
        "POST",
        "/api/v1/simulation/queue",
        Some(&token),
        Some(&request("long", 2, 1, 10_000_000)),
    );
    assert_eq!(code, 201, "{running}");
    let (code, queued) = site.json(
        "POST",
        "/api/v1/simulation/queue",
        Some(&token),
        Some(&request("next", 2, 1, 4)),
    );
    assert_eq!(
        (code, queued["state"].as_str()),
        (201, Some("Queued")),
        "{queued}"
    );
    let next = queued["simulation_id"].as_str().unwrap();
    let (code, c) = site.json(
        "DELETE",
        &format!("/api/v1/simulation/{next}"),
        Some(&token),
        None,
    );
    assert_eq!(
        (code, c["state"].as_str(), c["stopped"].as_bool()),
        (200, Some("Cancelled"), Some(true)),
        "{c}"
    );
    let first = running["simulation_id"].as_str().unwrap();
    let (code, c) = site.json(
        "DELETE",
        &format!("/api/v1/simulation/{first}"),
        Some(&token),
        None,
    );
    assert_eq!((code, c["state"].as_str()), (200, Some("Cancelled")), "{c}");

    let mut bad = request("bad", 2, 1, 4);
    bad["nr_of_time_steps"] = json!(0);
    let (code, e) = site.json("POST", "/api/v1/simulation/start", Some(&token), Some(&bad));
    assert_eq!(code, 400);
    assert!(
        e["detail"].as_str().unwrap().starts_with("nr_of_time_steps"),
        "{e}"
    );
    let (code, e) = site.json(
        "POST",
        "/api/v1/simulation/start",
        Some(&token),
        Some(&json!({"name": 3})),
    );
    assert_eq!(code, 400, "{e}");
    let (code, _) = site.json("GET", "/api/v1/simulation/nope-00000000", None, None);
    assert_eq!(code, 404);
    let (code, _) = site.json("POST", "/api/v1/simulation/other", Some(&token), Some(&json!({})));
    assert_eq!(code, 404);
    site.platform.shutdown().await;
}
