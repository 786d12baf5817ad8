//! A real MQTT 5 broker for the tests and the benchmarks: Debian's `mosquitto` (2.0.11) as
//! a child process on a free loopback port, and `mosquitto_sub` / `mosquitto_pub` as "the
//! other system" a federation test talks to.
//!
//! ```ignore
//! let Some(broker) = Broker::require("my_test", BrokerOptions::new()) else { return };
//! let sub = broker.mosquitto_sub(&["-t", "volttron/+/pubsub/#", "-C", "1"]); // subscribed
//! broker.mosquitto_pub(&["-t", "volttron/site1/pubsub/x", "-m", "hi"]);
//! assert_eq!(sub.wait()[0].payload, "hi");
//! ```
//!
//! One copy of this file serves both: `benches/workloads/mod.rs` has it as
//! `workloads::mosquitto` (the `perf` example's `baseline.mqtt_*` figures), and
//! `tests/common/mod.rs` as `common::mosquitto`, through
//! `#[path = "../../benches/workloads/mosquitto.rs"]`. So it uses nothing of either
//! harness: std, `tempfile`, `rustix` (signals) and `serde_json` only.
//!
//! | call | what it does |
//! |------|--------------|
//! | [`Broker::require`] | for a test: [`Broker::start`], or when `mosquitto` or its clients are missing, a `skipped:` line and `None`; under `CI=true` a panic with [`INSTALL`] |
//! | [`Broker::start`] | writes `mosquitto.conf` (below) in a temporary directory, runs `mosquitto -c` on a free loopback port, and waits until a TCP connect to it succeeds ([`START_DEADLINE`]; a broker that exits first is a panic with its log). A port taken in between (another test) is retried with a new one |
//! | [`Broker::port`] / [`Broker::url`] | the port; `mqtt://127.0.0.1:<port>` |
//! | [`Broker::stop`] | SIGTERM, then waits for the exit: mosquitto saves its database (retained messages, sessions, queued QoS 1 messages) as it exits |
//! | [`Broker::kill`] | SIGKILL: a crash, nothing saved since the last autosave (every 30 minutes, mosquitto's default) |
//! | [`Broker::start_again`] | after `stop` or `kill`: the same config, port and database |
//! | [`Broker::restart`] | `stop` + `start_again` |
//! | [`Broker::log`] | the broker's log so far (`log_dest file`), for failure messages; printed to stderr when a `Broker` is dropped while its thread panics |
//! | [`Broker::mosquitto_sub`] | `mosquitto_sub -V mqttv5 -h 127.0.0.1 -p <port> -d -F %j <args>` as a child (line-buffered by `stdbuf -oL`), returned once the broker has acknowledged the subscription; [`MosquittoSub::wait`] collects its messages ([`Message`]) |
//! | [`Broker::mosquitto_pub`] | `mosquitto_pub -V mqttv5 -h 127.0.0.1 -p <port> <args>`, run to its end; a failure is a panic with its stderr ([`Broker::try_mosquitto_pub`] returns it) |
//! | drop | SIGKILL and wait; the directory is removed |
//!
//! The config, from [`BrokerOptions`]:
//!
//! | line | from |
//! |------|------|
//! | `listener <port> 127.0.0.1` | loopback only |
//! | `allow_anonymous true\|false` | [`BrokerOptions::anonymous`] (default `true`) |
//! | `persistence true`, `persistence_location <dir>/data/` | always: a restart keeps retained messages and QoS 1 sessions |
//! | `password_file <dir>/passwd` | [`BrokerOptions::user`] (made with `mosquitto_passwd -b`) |
//! | `acl_file <dir>/acl` | [`BrokerOptions::acl`]; [`FEDERATION_ACL`] is the federation's rule |
//! | `max_packet_size <n>` | [`BrokerOptions::max_packet_size`] |
//! | `max_queued_messages <n>` | [`BrokerOptions::max_queued_messages`] (mosquitto's default is 1000 a client, beyond which it drops) |
//! | `log_dest file <dir>/mosquitto.log`, `log_type ...` | always; every type (`all`: one line per packet) with [`BrokerOptions::verbose_log`] |
//! | `set_tcp_nodelay true` | always: no Nagle delay on small packets (the round-trip figures) |
//! | `user root` | when run as root: mosquitto would otherwise drop to the user `mosquitto`, which may not write the temporary directory |

#![allow(dead_code, reason = "each test and bench uses a part of it")]

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The packages, as the skip and CI messages name them.
pub(crate) const INSTALL: &str = "apt-get install mosquitto mosquitto-clients";

/// How long the broker may take to listen, and to exit after SIGTERM (milliseconds on an
/// idle machine; far more on a loaded CI one).
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(30);

/// How long a `mosquitto_sub` may take to be subscribed, and (unless its arguments give
/// `-W`) to get its messages.
pub(crate) const CLIENT_DEADLINE: Duration = Duration::from_secs(30);

/// The federation's access rule (mosquitto's `acl_file` syntax): every client may write
/// only under `volttron/<its username>/`, and read everything under `volttron/`.
///
/// This is what makes a platform's name authenticated: the broker checks the password of
/// username `site1`, and then lets it publish nowhere but under `volttron/site1/#`, so a
/// message on `volttron/site1/...` comes from `site1` (or from no one). `pattern` lines
/// apply to every client, `%u` being its username; a `topic` line before any `user` line
/// would apply to anonymous clients only, so the read rule is a `pattern` too (mosquitto
/// logs a warning that it has no `%u`: harmless). A publish it refuses gets, at QoS 1, a
/// PubAck with reason `NotAuthorized`, and reaches no one.
pub(crate) const FEDERATION_ACL: &str = "pattern readwrite volttron/%u/#\npattern read volttron/#\n";

/// What the broker is started with (see the table in the module docs).
#[derive(Debug, Clone)]
pub(crate) struct BrokerOptions {
    anonymous: bool,
    users: Vec<(String, String)>,
    acl: Option<String>,
    max_packet_size: Option<u32>,
    max_queued_messages: Option<u32>,
    verbose_log: bool,
    /// The listener's certificate and key (PEM): TLS only.
    tls: Option<(String, String)>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl BrokerOptions {
    /// Anonymous clients allowed, no users, no ACL, mosquitto's defaults otherwise.
    pub(crate) fn new() -> Self {
        BrokerOptions {
            anonymous: true,
            users: Vec::new(),
            acl: None,
            max_packet_size: None,
            max_queued_messages: None,
            verbose_log: false,
            tls: None,
        }
    }

    /// The listener speaks TLS only, with this certificate chain and key (PEM): clients
    /// connect to `mqtts://127.0.0.1:<port>`.
    pub(crate) fn tls(mut self, cert_pem: &str, key_pem: &str) -> Self {
        self.tls = Some((cert_pem.to_owned(), key_pem.to_owned()));
        self
    }

    /// Whether clients without a username may connect (`allow_anonymous`).
    pub(crate) fn anonymous(mut self, allowed: bool) -> Self {
        self.anonymous = allowed;
        self
    }

    /// A user of the password file.
    pub(crate) fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// The ACL file's text, e.g. [`FEDERATION_ACL`].
    pub(crate) fn acl(mut self, text: &str) -> Self {
        self.acl = Some(text.to_owned());
        self
    }

    /// `max_packet_size`: larger packets are refused (the client is disconnected).
    pub(crate) fn max_packet_size(mut self, bytes: u32) -> Self {
        self.max_packet_size = Some(bytes);
        self
    }

    /// `max_queued_messages` (0: no limit): messages queued for a client beyond its
    /// in-flight window, past which mosquitto drops.
    pub(crate) fn max_queued_messages(mut self, n: u32) -> Self {
        self.max_queued_messages = Some(n);
        self
    }

    /// `log_type all`: a log line for every packet.
    pub(crate) fn verbose_log(mut self) -> Self {
        self.verbose_log = true;
        self
    }
}

/// A program of the `mosquitto` packages is missing.
#[derive(Debug, Clone)]
pub(crate) struct NotInstalled(&'static str);

impl fmt::Display for NotInstalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no `{}` in $PATH, /usr/sbin or /usr/bin; install it with: {INSTALL}",
            self.0
        )
    }
}

/// The executable `name` in `$PATH`, else in `/usr/sbin` (Debian puts `mosquitto` there,
/// outside a normal user's `$PATH`) or `/usr/bin`.
pub(crate) fn find_program(name: &'static str) -> Result<PathBuf, NotInstalled> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .ok_or(NotInstalled(name))
}

/// Whether this is CI (`CI=true`), where no test may skip for a missing component (as
/// `tests/common::in_ci`, which this file cannot name).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A loopback TCP port nothing listens on now (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// A `mosquitto` child process (see the module docs).
pub(crate) struct Broker {
    program: PathBuf,
    /// Config, database, password and ACL files, log.
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    /// [`Broker::start`] for a test:
    /// `let Some(broker) = Broker::require("my_test", BrokerOptions::new()) else { return };`.
    /// Also needs `mosquitto_sub`, `mosquitto_pub` and `mosquitto_passwd`. When one is
    /// missing: under `CI=true` a panic that says how to install it; otherwise a `skipped:`
    /// line naming `test`, and `None`.
    pub(crate) fn require(test: &str, options: BrokerOptions) -> Option<Broker> {
        let missing = ["mosquitto_sub", "mosquitto_pub", "mosquitto_passwd"]
            .into_iter()
            .map(find_program)
            .find_map(Result::err);
        let started = match missing {
            Some(missing) => Err(missing),
            None => Broker::start(options),
        };
        match started {
            Ok(broker) => Some(broker),
            Err(missing) => {
                let why = format!("{test}: {missing}");
                assert!(!in_ci(), "{why}");
                println!("skipped: {why}");
                None
            }
        }
    }

    /// Starts `mosquitto` with `options` on a free loopback port and waits until it
    /// listens. `Err` only when `mosquitto` (or, with users, `mosquitto_passwd`) is not
    /// installed; a broker that does not start is a panic with its log.
    pub(crate) fn start(options: BrokerOptions) -> Result<Broker, NotInstalled> {
        let program = find_program("mosquitto")?;
        let dir = tempfile::Builder::new()
            .prefix("mosquitto-")
            .tempdir()
            .expect("temporary directory");
        std::fs::create_dir(dir.path().join("data")).expect("persistence directory");
        write_password_file(dir.path(), &options.users)?;
        if let Some(acl) = &options.acl {
            std::fs::write(dir.path().join("acl"), acl).expect("write the ACL file");
        }
        if let Some((cert, key)) = &options.tls {
            std::fs::write(dir.path().join("server.crt"), cert).expect("write the certificate");
            std::fs::write(dir.path().join("server.key"), key).expect("write the key");
        }
        let mut broker = Broker {
            program,
            dir,
            port: 0,
            child: None,
        };
        // The port is free when picked, but another process may bind it before mosquitto
        // does: then pick another.
        for attempt in 1.. {
            broker.port = free_port();
            std::fs::write(
                broker.dir.path().join("mosquitto.conf"),
                config(broker.dir.path(), broker.port, &options),
            )
            .expect("write mosquitto.conf");
            match broker.spawn() {
                Ok(()) => return Ok(broker),
                Err(log) if attempt < 5 && log.contains("Address already in use") => continue,
                Err(log) => panic!("mosquitto did not start on port {}:\n{log}", broker.port),
            }
        }
        unreachable!()
    }

    /// The loopback port it listens on (the same across restarts).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The directory of its config, database and log.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process runs (not stopped, killed or exited).
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGTERM, then waits (up to [`START_DEADLINE`], then SIGKILL) for the exit;
    /// mosquitto saves its database as it exits. A no-op when not running.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + START_DEADLINE;
        while child.try_wait().expect("wait for mosquitto").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mosquitto did not exit within {START_DEADLINE:?} of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL and wait: a crash (nothing saved since the last autosave).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again after [`stop`](Self::stop) or [`kill`](Self::kill), on the same
    /// port with the same config and database, and waits until it listens.
    pub(crate) fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "mosquitto is still running: stop or kill it first"
        );
        if let Err(log) = self.spawn() {
            panic!("mosquitto did not start again on port {}:\n{log}", self.port);
        }
    }

    /// [`stop`](Self::stop), then [`start_again`](Self::start_again).
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// The log so far: the broker's `log_dest file`, then what it wrote to stdout and
    /// stderr (errors before its log is open).
    pub(crate) fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("mosquitto.log"), read("mosquitto.out"))
    }

    /// Runs the process; `Err(log)` when it exits before it listens.
    fn spawn(&mut self) -> Result<(), String> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("mosquitto.out"))
            .expect("open mosquitto.out");
        let child = Command::new(&self.program)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.program.display()));
        self.child = Some(child);
        self.wait_ready()
    }

    /// Polls a TCP connect to the port until one succeeds, the process exits (`Err` with
    /// the log) or [`START_DEADLINE`] passes (a panic).
    fn wait_ready(&mut self) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let child = self.child.as_mut().expect("a child");
            if let Some(status) = child.try_wait().expect("wait for mosquitto") {
                self.child = None;
                return Err(format!("(exited: {status})\n{}", self.log()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                panic!(
                    "mosquitto does not listen on {addr} after {START_DEADLINE:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `mosquitto_sub -V mqttv5 -h 127.0.0.1 -p <port> -d -F %j <args>` (and `-W` of
    /// [`CLIENT_DEADLINE`] unless `args` give one), returned once the broker has
    /// acknowledged its subscription: what is published from now on reaches it. `args`
    /// give at least `-t TOPIC`; often `-C COUNT` (exit after so many messages), `-q 1`,
    /// `-u USER -P PASSWORD`, `-i ID -c` (a persistent session).
    pub(crate) fn mosquitto_sub(&self, args: &[&str]) -> MosquittoSub {
        let program = find_program("mosquitto_sub").unwrap_or_else(|e| panic!("{e}"));
        // Line-buffered (coreutils' `stdbuf`): into a pipe, its stdio would hold the
        // `Subscribed` line until it exits.
        let stdbuf =
            find_program("stdbuf").unwrap_or_else(|_| panic!("no `stdbuf` (coreutils) in $PATH or /usr/bin"));
        let mut command = Command::new(stdbuf);
        command.arg("-oL").arg(program);
        command.args([
            "-V",
            "mqttv5",
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-d",
            "-F",
            "%j",
        ]);
        if !args.contains(&"-W") {
            command.args(["-W", &CLIENT_DEADLINE.as_secs().to_string()]);
        }
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mosquitto_sub");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut debug = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with('{') {
                    let json: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("mosquitto_sub printed {line:?}, not JSON: {e}"));
                    let _ = tx.send(SubLine::Message(Message::from_json(json)));
                } else if line.starts_with("Subscribed (mid") {
                    let _ = tx.send(SubLine::Subscribed);
                } else {
                    debug.push(line);
                }
            }
            debug
        });
        let mut sub = MosquittoSub {
            child,
            lines: rx,
            reader: Some(reader),
            early: Vec::new(),
        };
        let deadline = Instant::now() + CLIENT_DEADLINE;
        loop {
            match sub
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(SubLine::Subscribed) => return sub,
                Ok(SubLine::Message(m)) => sub.early.push(m),
                Err(_) => {
                    let _ = sub.child.kill();
                    let out = sub.finish();
                    panic!(
                        "mosquitto_sub {args:?} was not subscribed within {CLIENT_DEADLINE:?}: {}\nbroker log:\n{}",
                        out.1,
                        self.log()
                    );
                }
            }
        }
    }

    /// `mosquitto_pub -V mqttv5 -h 127.0.0.1 -p <port> <args>` to its end; a failure is a
    /// panic with its stderr. `args` give `-t TOPIC -m MESSAGE`, maybe `-q 1`, `-r`
    /// (retain), `-u USER -P PASSWORD`, `-D publish user-property K V`, `-D publish
    /// response-topic T`, `-D publish correlation-data D`.
    pub(crate) fn mosquitto_pub(&self, args: &[&str]) {
        let out = self.try_mosquitto_pub(args);
        assert!(
            out.status.success(),
            "mosquitto_pub {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// As [`mosquitto_pub`](Self::mosquitto_pub), returning its output whatever its
    /// status.
    pub(crate) fn try_mosquitto_pub(&self, args: &[&str]) -> Output {
        let program = find_program("mosquitto_pub").unwrap_or_else(|e| panic!("{e}"));
        Command::new(program)
            .args(["-V", "mqttv5", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run mosquitto_pub")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("mosquitto on port {}, last lines of its log:", self.port);
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
        }
    }
}

/// `mosquitto.conf` for a broker in `dir` on `port` (see the table in the module docs).
fn config(dir: &Path, port: u16, options: &BrokerOptions) -> String {
    let dir = dir.display();
    let mut c = format!(
        "# Written by benches/workloads/mosquitto.rs.\n\
         listener {port} 127.0.0.1\n\
         allow_anonymous {}\n\
         persistence true\n\
         persistence_location {dir}/data/\n\
         log_dest file {dir}/mosquitto.log\n\
         log_type {}\n\
         log_timestamp_format %H:%M:%S\n\
         connection_messages true\n\
         set_tcp_nodelay true\n",
        options.anonymous,
        if options.verbose_log {
            "all"
        } else {
            "error\nlog_type warning\nlog_type notice\nlog_type information"
        },
    );
    if rustix::process::geteuid().is_root() {
        c.push_str("user root\n");
    }
    if !options.users.is_empty() {
        c.push_str(&format!("password_file {dir}/passwd\n"));
    }
    if options.acl.is_some() {
        c.push_str(&format!("acl_file {dir}/acl\n"));
    }
    if options.tls.is_some() {
        c.push_str(&format!("certfile {dir}/server.crt\nkeyfile {dir}/server.key\n"));
    }
    if let Some(n) = options.max_packet_size {
        c.push_str(&format!("max_packet_size {n}\n"));
    }
    if let Some(n) = options.max_queued_messages {
        c.push_str(&format!("max_queued_messages {n}\n"));
    }
    c
}

/// `<dir>/passwd` with `users`, made by `mosquitto_passwd -b` (`-c` for the first).
fn write_password_file(dir: &Path, users: &[(String, String)]) -> Result<(), NotInstalled> {
    if users.is_empty() {
        return Ok(());
    }
    let program = find_program("mosquitto_passwd")?;
    let file = dir.join("passwd");
    for (i, (name, password)) in users.iter().enumerate() {
        let mut command = Command::new(&program);
        if i == 0 {
            command.arg("-c");
        }
        let out = command
            .arg("-b")
            .arg(&file)
            .args([name, password])
            .output()
            .expect("run mosquitto_passwd");
        assert!(
            out.status.success(),
            "mosquitto_passwd -b {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A line of `mosquitto_sub`'s output that matters.
enum SubLine {
    Subscribed,
    Message(Message),
}

/// One message `mosquitto_sub` received (its `-F %j` line).
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The topic it was published on.
    pub(crate) topic: String,
    /// The payload as text (mosquitto_sub's JSON escapes it).
    pub(crate) payload: String,
    /// The QoS it was delivered with.
    pub(crate) qos: u8,
    /// Whether it came as a retained message.
    pub(crate) retain: bool,
    /// Its MQTT 5 properties as mosquitto_sub names them (`user-properties` an object,
    /// `response-topic`, `correlation-data`, ...); `Null` when there are none.
    pub(crate) properties: Value,
}

impl Message {
    fn from_json(json: Value) -> Message {
        Message {
            topic: json["topic"].as_str().unwrap_or_default().to_owned(),
            payload: match &json["payload"] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            },
            qos: json["qos"].as_u64().unwrap_or_default() as u8,
            retain: json["retain"].as_u64().unwrap_or_default() != 0,
            properties: json["properties"].clone(),
        }
    }

    /// The user property `key`, if it has one.
    pub(crate) fn user_property(&self, key: &str) -> Option<&str> {
        self.properties["user-properties"][key].as_str()
    }
}

/// A running `mosquitto_sub`, subscribed ([`Broker::mosquitto_sub`]).
pub(crate) struct MosquittoSub {
    child: Child,
    lines: mpsc::Receiver<SubLine>,
    reader: Option<std::thread::JoinHandle<Vec<String>>>,
    /// Messages that came before the subscription was acknowledged (retained ones can).
    early: Vec<Message>,
}

impl MosquittoSub {
    /// The next message, waiting up to `timeout`; `None` when none came (or it exited).
    pub(crate) fn next(&mut self, timeout: Duration) -> Option<Message> {
        if !self.early.is_empty() {
            return Some(self.early.remove(0));
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(SubLine::Message(m)) => return Some(m),
                Ok(SubLine::Subscribed) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Waits for it to exit (after its `-C` count, or its `-W` timeout) and returns every
    /// message not yet taken by [`next`](Self::next). An exit other than those is a panic
    /// with its stderr.
    pub(crate) fn wait(mut self) -> Vec<Message> {
        let status = self.child.wait().expect("wait for mosquitto_sub");
        let (messages, stderr) = self.finish();
        // 27: `-W` timed out (fewer messages than `-C`); the caller counts them.
        assert!(
            status.success() || status.code() == Some(27),
            "mosquitto_sub: {status}: {stderr}"
        );
        messages
    }

    /// Stops it now (SIGKILL) and returns every message not yet taken.
    pub(crate) fn kill(mut self) -> Vec<Message> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish().0
    }

    /// After the exit: the messages left, and stderr with the debug lines.
    fn finish(&mut self) -> (Vec<Message>, String) {
        let debug = self
            .reader
            .take()
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default();
        let mut messages = std::mem::take(&mut self.early);
        messages.extend(self.lines.try_iter().filter_map(|l| match l {
            SubLine::Message(m) => Some(m),
            SubLine::Subscribed => None,
        }));
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        (messages, format!("{stderr}{}", debug.join("\n")))
    }
}

impl Drop for MosquittoSub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
