//! A real headless Chromium for the tests, driven over WebDriver: Debian's `chromium` and
//! `chromium-driver` packages (`bash .ci/test` installs them), [`fantoccini`] as the client.
//!
//! ```ignore
//! let Some(browser) = Browser::start("my_test").await else { return };
//! browser.goto(&url).await;
//! browser.wait_for_text("#state", "running", DEADLINE).await;
//! browser.screenshot("my_test").await;
//! browser.quit().await;
//! ```
//!
//! [`Browser::start`] runs `chromedriver --port=0` as a child process in a process group of
//! its own, reads the port it chose from its first lines of output, polls its `/status`
//! until it says `ready`, then opens a session on Chromium in `--headless=new` mode with the
//! flags that a root user without a GPU or a large `/dev/shm` needs ([`CHROMIUM_ARGS`]).
//! Dropping the [`Browser`] ends the session and kills the group (chromedriver, and the
//! Chromium processes it started); [`Browser::quit`] does the same after an orderly
//! `DELETE /session`. chromedriver's log is `target/test-artifacts/<test>.chromedriver.log`.
//!
//! A missing `chromium` or `chromedriver` skips the test (a `skipped:` line, [`None`]), or
//! under `CI=true` fails it with the `apt-get install` line, like [`super::require_python`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use super::in_ci;
use serde_json::{Value, json};

/// How long chromedriver may take to listen and report ready, and Chromium to open a
/// session (about 0.1 s and 0.5 s on an idle machine; much more on a loaded CI one).
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(60);

/// How often [`Browser::wait_for_text`] and the start-up polls look again.
const POLL: Duration = Duration::from_millis(50);

/// The window size (`--window-size`), so that screenshots are the same size from one run to
/// the next. The viewport, and so a screenshot, is smaller: 1280×657 with Chromium 156.
pub(crate) const WINDOW: (u32, u32) = (1280, 800);

/// Chromium's flags: headless; `--no-sandbox` because the tests run as root (Chromium
/// refuses to start as root with its sandbox); no GPU; `/dev/shm` unused (a container's is
/// small, and Chromium crashes when it fills); no first-run UI or background traffic.
pub(crate) const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-extensions",
];

/// The `apt-get install` line that the skip and CI messages give.
const INSTALL: &str = "apt-get install chromium chromium-driver";

/// The first executable file named one of `names` in `$PATH`, else the first of `fallbacks`
/// that is one.
fn find_program(names: &[&str], fallbacks: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let in_path = std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| is_executable(candidate));
    in_path.or_else(|| fallbacks.iter().map(PathBuf::from).find(|p| is_executable(p)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `chromedriver` from `$PATH`, else `/usr/bin/chromedriver` (Debian's `chromium-driver`).
pub(crate) fn find_chromedriver() -> Option<PathBuf> {
    find_program(&["chromedriver"], &["/usr/bin/chromedriver"])
}

/// `chromium` from `$PATH`, else `/usr/bin/chromium` (Debian's `chromium`: a launcher
/// script that sources `/etc/chromium.d/` and runs `/usr/lib/chromium/chromium`).
pub(crate) fn find_chromium() -> Option<PathBuf> {
    find_program(&["chromium", "chromium-browser"], &["/usr/bin/chromium"])
}

/// `target/test-artifacts` in this clone, created: where screenshots and chromedriver's
/// logs go.
pub(crate) fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// [`find_chromedriver`] and [`find_chromium`], for a test that needs them. When one is
/// missing: under `CI=true` a panic that says how to install it; otherwise a `skipped:` line
/// naming `test`, and `None`.
pub(crate) fn require_chromium(test: &str) -> Option<(PathBuf, PathBuf)> {
    let (driver, chromium) = (find_chromedriver(), find_chromium());
    if let (Some(driver), Some(chromium)) = (&driver, &chromium) {
        return Some((driver.clone(), chromium.clone()));
    }
    let missing: Vec<&str> = [
        (driver.is_none(), "chromedriver"),
        (chromium.is_none(), "chromium"),
    ]
    .into_iter()
    .filter_map(|(missing, name)| missing.then_some(name))
    .collect();
    let why = format!(
        "{test}: no {} (not in $PATH nor /usr/bin); install with: {INSTALL}",
        missing.join(" nor ")
    );
    assert!(!in_ci(), "{why}");
    println!("skipped: {why}");
    None
}

/// The chromedriver child process, in a process group of its own; dropping it ends the
/// session (if any is still open) and kills the group.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
    session: Option<String>,
}

impl Driver {
    /// Starts `chromedriver --port=0` and waits, until `deadline`, for the port it reports
    /// and for `/status` to say `ready`.
    async fn start(program: &Path, test: &str, deadline: Instant) -> Driver {
        use std::os::unix::process::CommandExt;
        let log = artifacts_dir().join(format!("{test}.chromedriver.log"));
        let mut child = Command::new(program)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{test}: starting {}: {e}", program.display()));
        // Its stdout, read by a thread to the end (so that chromedriver never blocks on a
        // full pipe): "ChromeDriver was started successfully on port 36619."
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut driver = Driver {
            child,
            port: 0,
            log,
            session: None,
        };
        let mut seen = Vec::new();
        driver.port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = reported_port(&line) {
                        break port;
                    }
                    seen.push(line);
                }
                Err(e) => panic!(
                    "{test}: chromedriver reported no port ({}; exit: {:?}); its output: {seen:?}; log: {}",
                    match e {
                        mpsc::RecvTimeoutError::Timeout => "deadline passed",
                        mpsc::RecvTimeoutError::Disconnected => "its output ended",
                    },
                    driver.child.try_wait(),
                    driver.log.display()
                ),
            }
        };
        loop {
            match driver.status() {
                Ok(status) if status["value"]["ready"] == json!(true) => return driver,
                result if Instant::now() >= deadline => panic!(
                    "{test}: chromedriver on port {} not ready by the deadline: {result:?}; exit: {:?}; log: {}",
                    driver.port,
                    driver.child.try_wait(),
                    driver.log.display()
                ),
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET /status`, its JSON body.
    fn status(&self) -> Result<Value, String> {
        let body = self.request("GET", "/status")?;
        serde_json::from_str(&body).map_err(|e| format!("{e}: {body:?}"))
    }

    /// One HTTP/1.1 request to chromedriver on loopback, blocking for at most 5 s; the body
    /// of the response. For the start-up polls and [`Drop`], which cannot await.
    fn request(&self, method: &str, path: &str) -> Result<String, String> {
        let timeout = Duration::from_secs(5);
        let addr = ([127, 0, 0, 1], self.port).into();
        let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        // The head, then a body of its Content-Length: chromedriver answers `Connection:
        // close` but does not close, so reading to the end would wait for the timeout.
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).map_err(|e| e.to_string())?;
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).map_err(|e| e.to_string())?;
            match header.trim_end().split_once(':') {
                Some((name, value)) if name.eq_ignore_ascii_case("content-length") => {
                    length = value.trim().parse().map_err(|e| format!("{e}: {header:?}"))?;
                }
                Some(_) => {}
                None if header.trim_end().is_empty() => break,
                None => return Err(format!("{status:?} then {header:?}")),
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        let body = String::from_utf8(body).map_err(|e| e.to_string())?;
        if status.split_whitespace().nth(1) == Some("200") {
            Ok(body)
        } else {
            Err(format!("{}: {body}", status.trim_end()))
        }
    }
}

/// The port in chromedriver's "ChromeDriver was started successfully on port 36619."
fn reported_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("started successfully on port ")?;
    rest.trim_end_matches('.').trim().parse().ok()
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The session first, so that chromedriver closes Chromium itself; then the group, for
        // whatever is left (chromedriver, and Chromium if it did not close).
        if let Some(session) = self.session.take() {
            let _ = self.request("DELETE", &format!("/session/{session}"));
        }
        if let Ok(pid) = i32::try_from(self.child.id())
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session on a headless Chromium, and the chromedriver that serves it.
pub(crate) struct Browser {
    client: Client,
    driver: Driver,
    test: String,
}

impl Browser {
    /// chromedriver and a Chromium session for `test` (the name in skip and failure
    /// messages). `None` when [`require_chromium`] says to skip; panics when they are there
    /// but do not start within [`START_DEADLINE`].
    pub(crate) async fn start(test: &str) -> Option<Browser> {
        let (chromedriver, chromium) = require_chromium(test)?;
        let deadline = Instant::now() + START_DEADLINE;
        let mut driver = Driver::start(&chromedriver, test, deadline).await;
        let window = format!("--window-size={},{}", WINDOW.0, WINDOW.1);
        let mut args: Vec<&str> = CHROMIUM_ARGS.to_vec();
        args.push(&window);
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connect = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await;
        let client = match connect {
            Ok(client) => client,
            Err(e) => panic!(
                "{test}: no Chromium session from chromedriver ({} with {args:?}): {e}; log: {}",
                chromium.display(),
                driver.log.display()
            ),
        };
        assert!(
            Instant::now() <= deadline,
            "{test}: Chromium took more than {START_DEADLINE:?} to start"
        );
        driver.session = client.session_id().await.ok().flatten();
        Some(Browser {
            client,
            driver,
            test: test.to_owned(),
        })
    }

    /// The fantoccini client, for what the helpers here do not cover.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Navigates to `url`, and returns once the page has loaded (WebDriver's `normal` page
    /// load strategy: `document.readyState` is `complete`).
    pub(crate) async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{}: goto {url}: {e}", self.test));
    }

    /// Polls the first element matching the CSS selector `css` until its visible text
    /// contains `text`, and returns that text; panics with the last text seen (or that no
    /// element matched) when `deadline` (from now) passes first.
    pub(crate) async fn wait_for_text(&self, css: &str, text: &str, deadline: Duration) -> String {
        let until = Instant::now() + deadline;
        loop {
            let seen = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match seen {
                Ok(seen) if seen.contains(text) => return seen,
                seen if Instant::now() >= until => panic!(
                    "{}: {css:?} did not contain {text:?} within {deadline:?}; last seen: {seen:?}",
                    self.test
                ),
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Saves a screenshot of the viewport as `target/test-artifacts/<name>.png`, and returns
    /// that path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("{}: screenshot: {e}", self.test));
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Ends the session (chromedriver closes Chromium), then stops chromedriver.
    pub(crate) async fn quit(self) {
        let Browser {
            client,
            mut driver,
            test,
        } = self;
        client
            .close()
            .await
            .unwrap_or_else(|e| panic!("{test}: closing the WebDriver session: {e}"));
        driver.session = None;
        drop(driver);
    }
}
