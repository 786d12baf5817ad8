//! The platform's Prometheus metrics (src/metrics/) as real clients read them: a `volttron`
//! process serving `/metrics` on the web service and on `--metrics-address`, checked by
//! `promtool check metrics` and scraped by a real Prometheus (Debian's `prometheus`, which
//! `bash .ci/test` installs), whose HTTP API is then asked for the platform's series.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::web::{WEB_CONFIG, http};
use common::{DEADLINE, Home, in_ci};
use serde_json::Value;

/// `program` on the PATH, for a test that needs it: under `CI=true` a panic that says how
/// to install it; otherwise a `skipped:` line and `None`.
fn require(program: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let why =
            format!("{test}: no `{program}`; install it with: apt-get install prometheus (or bash .ci/test)");
        assert!(!in_ci(), "{why}");
        println!("skipped: {why}");
    }
    found
}

/// `GET url` with `accept`, waiting until it answers 200 (the listeners come up with the
/// platform): (content type, body).
fn get(url: &str, accept: Option<&str>) -> (String, String) {
    let start = Instant::now();
    loop {
        let mut request = http().get(url);
        if let Some(a) = accept {
            request = request.header("Accept", a);
        }
        if let Ok(mut response) = request.call()
            && response.status() == 200
        {
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            return (content_type, response.body_mut().read_to_string().unwrap());
        }
        assert!(start.elapsed() < DEADLINE, "{url} did not answer 200");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `promtool check metrics` on `text`: its exit status and output.
fn promtool_check(promtool: &PathBuf, text: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// The value of the sample `name{labels}` (labels as written, e.g. `identity="control"`).
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

struct Platform {
    home: Home,
    process: Option<common::PlatformProcess>,
    metrics_url: String,
    web_metrics_url: String,
}

impl Platform {
    fn start() -> Platform {
        let home = Home::with_config(WEB_CONFIG);
        let port = common::free_port();
        let process = home.start_platform_with(&["--metrics-address", &format!("127.0.0.1:{port}")]);
        let web = home.web_url();
        Platform {
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
            web_metrics_url: format!("{web}/metrics"),
            home,
            process: Some(process),
        }
    }

    fn stop(mut self) {
        self.home.ok(&["shutdown", "--platform"]);
        let status = common::platform_wait(self.process.take().unwrap());
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn both_listeners_serve_series_that_promtool_accepts() {
    let Some(promtool) = require("promtool", "metrics_promtool") else {
        return;
    };
    let p = Platform::start();
    let agent = common::remote_agent_binary();
    p.home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        "meter.m",
        "--start",
    ]);
    p.home
        .wait_for("meter.m", "running with health GOOD and sampled", |a| {
            common::pid(a).is_some() && a["health"] == "GOOD" && !a["usage"].is_null()
        });
    for url in [&p.metrics_url, &p.web_metrics_url] {
        let (content_type, text) = get(url, None);
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{url}: {content_type}"
        );
        let (ok, said) = promtool_check(&promtool, &text);
        assert!(ok, "{url}: promtool check metrics: {said}\n{text}");
        assert_eq!(
            sample(&text, "volttron_agent_up", "identity=\"control\""),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "volttron_agent_up", "identity=\"platform.health\""),
            Some(1.0),
            "{text}"
        );
        assert!(
            sample(&text, "volttron_peers", "").unwrap_or(0.0) >= 5.0,
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "volttron_agent_restarts_total",
                "identity=\"config.store\""
            ),
            Some(0.0),
            "{text}"
        );
        assert!(text.contains("volttron_build_info{version=\""), "{text}");
        // The health service's reports and the control service's process, at scrape time.
        assert_eq!(
            sample(
                &text,
                "volttron_agent_health",
                "identity=\"meter.m\",status=\"GOOD\""
            ),
            Some(1.0),
            "{text}"
        );
        let age = sample(
            &text,
            "volttron_agent_heartbeat_age_seconds",
            "identity=\"meter.m\"",
        );
        assert!(age.is_some_and(|a| (0.0..30.0).contains(&a)), "{age:?}\n{text}");
        assert_eq!(
            sample(&text, "volttron_agent_process_running", "identity=\"meter.m\""),
            Some(1.0),
            "{text}"
        );
        let rss = sample(
            &text,
            "volttron_agent_resident_memory_bytes",
            "identity=\"meter.m\"",
        );
        assert!(rss.is_some_and(|r| r > 100_000.0), "{rss:?}\n{text}");
        // The admission budget, what the running agents reserve of it, enforcement actions.
        let budget = sample(&text, "volttron_resources_budget_memory_bytes", "");
        assert!(budget.is_some_and(|b| b > 0.0), "{budget:?}\n{text}");
        let reserved = sample(&text, "volttron_resources_reserved_memory_bytes", "");
        assert!(
            reserved.is_some_and(|r| r <= budget.unwrap()),
            "{reserved:?}\n{text}"
        );
        assert_eq!(
            sample(
                &text,
                "volttron_resources_enforcement_actions_total",
                "action=\"terminate\""
            ),
            Some(0.0),
            "{text}"
        );
        // The hot-path counters of the installed agent's calls and the bridge's traffic.
        assert!(
            sample(&text, "volttron_bridge_connections_total", "").is_some_and(|n| n >= 1.0),
            "{text}"
        );
        // OpenMetrics when asked for, as Prometheus asks.
        let (content_type, om) = get(
            url,
            Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
        );
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE volttron_agent_restarts counter"), "{om}");
    }
    // The plain listener answers nothing else.
    let other = http()
        .get(p.metrics_url.replace("/metrics", "/other"))
        .call()
        .unwrap();
    assert_eq!(other.status(), 404);
    let post = http().post(&p.metrics_url).send("").unwrap();
    assert_eq!(post.status(), 405);
    let head = http().head(&p.metrics_url).call().unwrap();
    assert_eq!(head.status(), 200);
    p.stop();
}

#[test]
fn a_bad_metrics_address_is_refused_in_one_line() {
    let home = Home::with_config("[volttron]\nmetrics-address = localhost-ish\n");
    let out = Command::new(env!("CARGO_BIN_EXE_volttron"))
        .arg("--volttron-home")
        .arg(home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("metrics-address \"localhost-ish\": expected HOST:PORT"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    // A port in use fails the start too.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_volttron"))
        .arg("--volttron-home")
        .arg(home.path())
        .args(["--metrics-address", &address])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("metrics-address {address}")), "{err}");
}

/// A Prometheus server scraping `targets` every second (killed on drop).
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(binary: &PathBuf, jobs: &[(&str, &str, &str)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, address, path) in jobs {
            config.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: {path}\n    static_configs:\n      - targets: ['{address}']\n"
            ));
        }
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let port = common::free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Asks `/api/v1/query` until `query` has a result (or panics at the deadline).
    fn wait_for(&self, query: &str) -> Vec<Value> {
        let start = Instant::now();
        let deadline = Duration::from_secs(60);
        loop {
            let answer = http()
                .get(format!("{}/api/v1/query", self.url))
                .query("query", query)
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok());
            if let Some(result) = answer
                .as_ref()
                .and_then(|a| a["data"]["result"].as_array())
                .filter(|r| !r.is_empty())
            {
                return result.clone();
            }
            assert!(
                start.elapsed() < deadline,
                "Prometheus has no {query}: {answer:?}\nits log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_the_platform() {
    let Some(binary) = require("prometheus", "metrics_prometheus") else {
        return;
    };
    let p = Platform::start();
    let plain = p
        .metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let web = p
        .web_metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let prometheus = Prometheus::start(
        &binary,
        &[("volttron", &plain, "/metrics"), ("web", &web, "/metrics")],
    );
    for job in ["volttron", "web"] {
        let up = prometheus.wait_for(&format!("up{{job=\"{job}\"}} == 1"));
        assert_eq!(up.len(), 1, "{up:?}");
        let agents = prometheus.wait_for(&format!(
            "volttron_agent_up{{job=\"{job}\",identity=\"control\"}}"
        ));
        assert_eq!(agents[0]["value"][1], "1", "{agents:?}");
        // A counter, read by Prometheus under its `_total` name.
        let restarts = prometheus.wait_for(&format!(
            "volttron_agent_restarts_total{{job=\"{job}\",identity=\"platform.auth\"}}"
        ));
        assert_eq!(restarts[0]["value"][1], "0", "{restarts:?}");
    }
    // The shipped Grafana dashboard: every query is PromQL Prometheus accepts, and every
    // series it reads is one the platform documents (src/metrics/mod.rs).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("examples/grafana-dashboard.json")).unwrap())
            .unwrap();
    let documented = std::fs::read_to_string(root.join("src/metrics/mod.rs")).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8, "{dashboard}");
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap().replace("$job", ".*");
            let answer: Value = http()
                .get(format!("{}/api/v1/query", prometheus.url))
                .query("query", &expr)
                .call()
                .unwrap()
                .body_mut()
                .read_json()
                .unwrap();
            assert_eq!(
                answer["status"], "success",
                "{}: {expr}: {answer}",
                panel["title"]
            );
            for name in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if name.starts_with("volttron_") {
                    let family = ["_total", "_bucket", "_count", "_sum"]
                        .iter()
                        .fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
                    assert!(
                        documented.contains(&format!("`{family}")),
                        "{name} is not documented"
                    );
                }
            }
        }
    }
    drop(prometheus);
    p.stop();
}

#[test]
fn the_shipped_scrape_config_is_valid() {
    let Some(promtool) = require("promtool", "metrics_scrape_config") else {
        return;
    };
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/prometheus.yml");
    let out = Command::new(promtool)
        .args(["check", "config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
