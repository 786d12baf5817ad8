//! A real InfluxDB 1.x (`influxd`, Debian's `influxdb` package) as a child process on free
//! loopback ports, with its data in a temporary directory, and InfluxQL queries over HTTP.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to install it.
const INSTALL: &str = "apt-get install -y --no-install-recommends influxdb (or bash .ci/test)";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// An `influxd` child process.
pub(crate) struct Influx {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
}

impl Influx {
    /// Starts `influxd`; without it, under `CI=true` a panic that says how to install it,
    /// otherwise a `skipped:` line naming `test` and `None`.
    pub(crate) fn require(test: &str) -> Option<Influx> {
        let program = ["/usr/bin/influxd", "/usr/sbin/influxd"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file());
        let Some(program) = program else {
            let why = format!("{test}: no influxd; install it with: {INSTALL}");
            assert!(!super::in_ci(), "{why}");
            println!("skipped: {why}");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("influxdb-").tempdir().unwrap();
        let (http, rpc) = (free_port(), free_port());
        let d = dir.path().display();
        let config = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n\
             [monitor]\n  store-enabled = false\n"
        );
        let conf = dir.path().join("influxdb.conf");
        std::fs::write(&conf, config).unwrap();
        let log = std::fs::File::create(dir.path().join("influxd.log")).unwrap();
        let child = Command::new(program)
            .arg("-config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let influx = Influx {
            child,
            url: format!("http://127.0.0.1:{http}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ping = ureq::get(format!("{}/ping", influx.url)).call();
            if ping.is_ok_and(|r| r.status() == 204) {
                return Some(influx);
            }
            let log = std::fs::read_to_string(influx._dir.path().join("influxd.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "influxd did not answer /ping:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs InfluxQL `q` (on database `db`, if given): the JSON answer.
    pub(crate) fn query(&self, db: Option<&str>, q: &str) -> serde_json::Value {
        let mut request = ureq::post(format!("{}/query", self.url)).query("q", q);
        if let Some(db) = db {
            request = request.query("db", db);
        }
        let mut r = request.send_empty().unwrap_or_else(|e| panic!("{q}: {e}"));
        r.body_mut().read_json().unwrap()
    }
}

impl Drop for Influx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
