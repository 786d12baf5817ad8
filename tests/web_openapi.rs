//! The OpenAPI document (`/openapi.json`, src/web/openapi.rs): its structure, and that it
//! describes exactly the routes of `app()` in src/web/mod.rs (read from that source, so a
//! route added there without its operation fails here); then the live server of a real
//! `volttron` process against it with schemathesis (`.ci/python-requirements.txt` pins
//! it): no server error, only documented status codes and content types, bodies of the
//! documented schemas.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::web::{WEB_CONFIG, access_token, http};
use common::{Home, pid, remote_agent_binary, require_schemathesis};
use serde_json::Value;

const TEST: &str = "web_openapi";
const PASSWORD: &str = "correct horse battery staple";
const INSTANCE: &str = "apitest";
const AGENT: &str = "meter.api";

/// `path` with every parameter (`{p}`, `{identity}`, `{topic:.*}`) as `{}`.
fn normalized(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push_str("{}");
                }
            }
            '}' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The first string literal at the start of `text` (which starts with `"`), and the rest.
fn literal(text: &str) -> (&str, &str) {
    let text = text.strip_prefix('"').expect("a string literal");
    let end = text.find('"').expect("a closed string literal");
    (&text[..end], &text[end + 1..])
}

/// Every `(method, path)` that `app()` in src/web/mod.rs routes: `.route("PATH",
/// web::METHOD()...)`, and `web::resource("PATH")` with its `.route(web::METHOD()...)`s.
fn app_routes() -> BTreeSet<(String, String)> {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/mod.rs")).unwrap();
    let start = source.find("\nfn app(").expect("fn app( in src/web/mod.rs");
    let end = start
        + source[start..]
            .find(".default_service(")
            .expect("app()'s default_service");
    let body: String = source[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut routes = BTreeSet::new();
    let mut resource: Option<String> = None;
    let mut rest = body.as_str();
    loop {
        let next = ["web::resource(\"", ".route(\"", ".route(web::"]
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, *p)))
            .min();
        let Some((at, pattern)) = next else { break };
        rest = &rest[at + pattern.len() - usize::from(pattern.ends_with('"'))..];
        let method = |text: &str| -> String {
            let text = text.strip_prefix("web::").unwrap_or(text);
            let name: String = text.chars().take_while(char::is_ascii_alphabetic).collect();
            assert!(
                ["get", "post", "put", "delete", "patch"].contains(&name.as_str()),
                "a route of app() with method {name:?}"
            );
            name
        };
        match pattern {
            "web::resource(\"" => {
                let (path, after) = literal(rest);
                resource = Some(path.to_owned());
                rest = after;
            }
            ".route(\"" => {
                let (path, after) = literal(rest);
                let after = after.strip_prefix(',').expect(".route(PATH, ROUTE)");
                routes.insert((method(after), normalized(path)));
                resource = None;
                rest = after;
            }
            _ => {
                let path = resource
                    .clone()
                    .expect(".route(web::...) outside a web::resource");
                routes.insert((method(rest), normalized(&path)));
            }
        }
    }
    assert!(routes.len() > 20, "app()'s routes as read: {routes:?}");
    routes
}

#[test]
fn the_document_is_openapi_3_and_describes_every_route_of_the_app() {
    let doc = volttron::web::openapi::document(INSTANCE);
    assert_eq!(doc["openapi"], "3.0.3");
    assert_eq!(doc["info"]["title"], format!("VOLTTRON platform {INSTANCE}"));
    assert!(doc["info"]["version"].as_str().is_some_and(|v| !v.is_empty()));
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");

    let mut documented = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'), "{path}");
        let template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            assert!(
                ["get", "post", "put", "delete", "patch"].contains(&method.as_str()),
                "{what}"
            );
            assert!(
                documented.insert((method.clone(), normalized(path))),
                "{what} twice"
            );
            let id = op["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id.to_owned()),
                "{what}: operationId {id} twice"
            );
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{what}");
            // Path parameters: exactly the template's, required; query parameters named once.
            let params = op["parameters"].as_array().unwrap();
            let in_path: BTreeSet<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(p["required"], true, "{what}: {p}");
                    p["name"].as_str().unwrap()
                })
                .collect();
            assert_eq!(in_path, template, "{what}: its path parameters");
            let names: Vec<(&str, &str)> = params
                .iter()
                .map(|p| (p["in"].as_str().unwrap(), p["name"].as_str().unwrap()))
                .collect();
            let unique: BTreeSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "{what}: a parameter twice");
            for p in params {
                assert!(
                    ["path", "query"].contains(&p["in"].as_str().unwrap()),
                    "{what}: {p}"
                );
                assert!(p["schema"].is_object(), "{what}: {p}");
            }
            // Answers: status codes, each described; bodies with a media type and a schema.
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses
                    .keys()
                    .any(|c| c.starts_with('2') || c == "101" || c == "303")
            );
            for (code, response) in responses {
                assert!(
                    code.len() == 3 && code.parse::<u16>().is_ok_and(|c| (100..600).contains(&c)),
                    "{what}: status {code}"
                );
                assert!(response["description"].is_string(), "{what} {code}");
                if let Some(content) = response.get("content") {
                    for (media, m) in content.as_object().unwrap() {
                        assert!(media.contains('/'), "{what} {code}: {media}");
                        assert!(m["schema"].is_object(), "{what} {code} {media}");
                    }
                }
                if code.starts_with('4') || code.starts_with('5') {
                    assert!(
                        response["content"].is_object(),
                        "{what} {code}: an error has a body"
                    );
                }
            }
            if let Some(security) = op.get("security") {
                for requirement in security.as_array().unwrap() {
                    for scheme in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(scheme), "{what}: {scheme}");
                    }
                }
                assert!(responses.contains_key("401"), "{what}: secured, so 401");
            }
            if let Some(body) = op.get("requestBody") {
                let content = body["content"].as_object().unwrap();
                assert!(!content.is_empty(), "{what}");
                assert!(responses.contains_key("400"), "{what}: a body, so 400");
                assert!(responses.contains_key("413"), "{what}: a body, so 413");
            }
            if !template.is_empty() {
                assert!(responses.contains_key("404"), "{what}: path parameters, so 404");
            }
        }
    }
    let listed: BTreeSet<(String, String)> = volttron::web::openapi::operations()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), normalized(p)))
        .collect();
    assert_eq!(listed, documented);

    let routed = app_routes();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routed by app() but not in the document: {undocumented:?}; in the document but not routed: {unrouted:?}"
    );
}

/// `schemathesis.toml`: the platform's instance name, the installed agent, a few real
/// identities and methods, given for path parameters most of the time, so that cases get
/// past the 404 of an unknown platform or agent.
fn schemathesis_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("schemathesis.toml");
    std::fs::write(
        &path,
        format!(
            r#"[dictionaries.platforms]
values = ["{INSTANCE}"]
[dictionaries.identities]
values = ["{AGENT}", "control", "platform.health", "-"]
[dictionaries.methods]
values = ["inspect", "echo", "list_agents"]
[parameters]
"path.platform" = {{ dictionary = "platforms", probability = 0.8 }}
"path.identity" = {{ dictionary = "identities", probability = 0.6 }}
"path.method" = {{ dictionary = "methods", probability = 0.5 }}
"#
        ),
    )
    .unwrap();
    path
}

/// Runs `schemathesis --config-file CONFIG run SCHEMA --url URL -H "Authorization: Bearer
/// TOKEN"` with the checks and `args`, in `dir` (where it keeps its files); its output.
fn schemathesis(
    program: &Path,
    dir: &Path,
    config: &Path,
    schema: &str,
    url: &str,
    token: &str,
    args: &[&str],
) -> Output {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .arg("--config-file")
        .arg(config)
        .args(["run", schema, "--url", url])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--request-timeout",
            "20",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .args(args)
        .stdin(Stdio::null());
    let out = command.output().unwrap();
    println!(
        "schemathesis {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn schemathesis_finds_no_server_error_nor_undocumented_answer() {
    let Some(program) = require_schemathesis(TEST) else {
        return;
    };
    let home = Home::with_config(&format!("{WEB_CONFIG}instance-name = {INSTANCE}\n"));
    let platform = home.start_platform();
    let agent = remote_agent_binary();
    home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        AGENT,
        "--start",
    ]);
    home.wait_for(AGENT, "running", |a| pid(a).is_some());
    home.add_web_user("admin", "admin,vui", PASSWORD);
    let url = home.web_url();
    let token = access_token(&url, "admin", PASSWORD);

    // The live document is the library's.
    let mut response = http().get(format!("{url}/openapi.json")).call().unwrap();
    assert_eq!(response.status(), 200);
    let mut live: Value = response.body_mut().read_json().unwrap();
    // With the endpoint the binary plugs in (`WebService::endpoint`) for Prometheus.
    let metrics = live["paths"].as_object_mut().unwrap().remove("/metrics");
    assert!(
        metrics.is_some_and(|m| m["get"]["responses"]["200"].is_object()),
        "{live}"
    );
    assert_eq!(live, volttron::web::openapi::document(INSTANCE));

    let dir = tempfile::tempdir().unwrap();
    let config = schemathesis_config(dir.path());
    let schema = format!("{url}/openapi.json");
    // Every operation but the logins (each failed login makes the next wait longer: they
    // get a few cases below) and `DELETE /authenticate` (it would end the token's login).
    let out = schemathesis(
        &program,
        dir.path(),
        &config,
        &schema,
        &url,
        &token,
        &[
            "--max-examples",
            "15",
            "--seed",
            "20261207",
            "--exclude-operation-id-regex",
            "^(post_authenticate|post_login|delete_authenticate)$",
        ],
    );
    let output = text(&out);
    assert!(out.status.success(), "schemathesis found problems:\n{output}");
    // "Selected: 36/39" (schemathesis counts `/vui` and `/vui/` as one), "Tested: 36".
    let field = |name: &str| -> String {
        output
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` line:\n{output}"))
            .trim()
            .to_owned()
    };
    let selected = field("Selected: ");
    let (selected, total) = selected.split_once('/').unwrap();
    let (selected, total): (usize, usize) = (selected.parse().unwrap(), total.parse().unwrap());
    assert_eq!(selected + 3, total, "every operation but three:\n{output}");
    assert!(
        total >= volttron::web::openapi::operations().len() - 1,
        "{output}"
    );
    assert_eq!(field("Tested: "), selected.to_string(), "{output}");

    // The logins: a few fuzzed cases each.
    let out = schemathesis(
        &program,
        dir.path(),
        &config,
        &schema,
        &url,
        &token,
        &[
            "--phases",
            "fuzzing",
            "--max-examples",
            "3",
            "--seed",
            "20261207",
            "--include-operation-id-regex",
            "^(post_authenticate|post_login)$",
        ],
    );
    assert!(
        out.status.success(),
        "schemathesis found problems in the logins:\n{}",
        text(&out)
    );

    // The token still works (nothing above logged it out), and schemathesis does fail on
    // what it checks: with the 404 left out of one operation's answers, an unknown
    // platform is an undocumented status.
    let mut doc = live.clone();
    let responses = doc["paths"]["/vui/platforms/{platform}"]["get"]["responses"]
        .as_object_mut()
        .unwrap();
    assert!(responses.remove("404").is_some());
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = schemathesis(
        &program,
        dir.path(),
        &config,
        broken.to_str().unwrap(),
        &url,
        &token,
        &[
            "--max-examples",
            "5",
            "--seed",
            "20261207",
            "--phases",
            "coverage,fuzzing",
            "--include-operation-id",
            "get_vui_platforms__platform_",
        ],
    );
    let output = text(&out);
    assert!(!out.status.success(), "the broken document passed:\n{output}");
    assert!(
        output.contains("Undocumented status code") && output.contains("Received: 404"),
        "{output}"
    );
    let still = http()
        .get(format!("{url}/status.json"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap()
        .status();
    assert_eq!(still, 200, "the token is still valid");

    home.ok(&["shutdown", "--platform"]);
    let status = common::platform_wait(platform);
    assert!(status.success(), "{status:?}");
}
