//! Three platforms, each its own `volttron` process, and one mosquitto with a password
//! file and the federation's ACL: platforms see each other come and go, publications
//! cross with `vctl subscribe --all-platforms`, an unexported prefix stays home, protected
//! topics apply to remote publishers, calls go both ways, a SIGKILLed platform's backlog
//! (written while the broker was down) replays after it restarts, and malformed,
//! oversized or spoofed messages from the broker side are dropped.
#![cfg(all(feature = "cli", feature = "mqtt"))]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Home;
use common::mosquitto::{Broker, BrokerOptions, FEDERATION_ACL};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

fn home(broker: &Broker, name: &str) -> Home {
    Home::with_config(&format!(
        "[volttron]\ninstance-name = {name}\n[federation]\nbroker = {}\nusername = {name}\npassword = pw-{name}\nexport = devices/\nkeepalive = 5\n",
        broker.url()
    ))
}

fn federation(home: &Home) -> Value {
    serde_json::from_str(&home.ok(&["--json", "federation", "status"])).unwrap()
}

/// Waits until `home`'s platform sees `other` in `state`.
fn wait_state(home: &Home, other: &str, state: &str) {
    let start = Instant::now();
    loop {
        let s = federation(home);
        let seen = s["platforms"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == other && p["state"] == state);
        if seen {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "{other} never became {state}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `vctl --json subscribe PREFIX --all-platforms`, its lines on a channel.
struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Subscriber {
    fn start(home: &Home, prefix: &str) -> Subscriber {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vctl"))
            .arg("--volttron-home")
            .arg(home.path())
            .args(["--json", "subscribe", prefix, "--all-platforms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Subscriber { child, lines }
    }

    /// The next publication, past any warm-up ones.
    fn next(&self) -> Value {
        loop {
            let p = self.lines.recv_timeout(DEADLINE).expect("a publication");
            if !p["topic"]
                .as_str()
                .is_some_and(|t| t.starts_with("devices/warmup"))
            {
                return p;
            }
        }
    }

    /// Publishes `topic` on `home` until one arrives here (the subscription, the broker
    /// subscription behind it and the link are then all up); drains the rest.
    fn warm_up(&self, home: &Home, topic: &str) {
        let start = Instant::now();
        loop {
            home.ok(&["publish", topic, "0"]);
            if self.lines.recv_timeout(Duration::from_millis(300)).is_ok() {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "nothing crossed to the subscriber");
        }
        std::thread::sleep(Duration::from_millis(300));
        while self.lines.try_recv().is_ok() {}
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn three_platforms_one_broker() {
    let options = BrokerOptions::new()
        .anonymous(false)
        .user("site1", "pw-site1")
        .user("site2", "pw-site2")
        .user("site3", "pw-site3")
        .user("scada", "pw-scada")
        .acl(&format!("{FEDERATION_ACL}user scada\ntopic readwrite #\n"));
    let Some(mut broker) = Broker::require("federation_processes", options) else {
        return;
    };
    let (h1, h2, h3) = (
        home(&broker, "site1"),
        home(&broker, "site2"),
        home(&broker, "site3"),
    );
    // On site2, `flush` needs a capability that site3's vctl holds and site1's does not.
    h2.write(
        "authz.json",
        r#"{"users": {"site3.control.connection": {"capabilities": ["fed_admin"]}},
            "rpc_method_authorizations": {"platform.federation": {"flush": ["fed_admin"]}}}"#,
    );
    let p1 = h1.start_platform();
    let _p2 = h2.start_platform();
    let mut p3 = h3.start_platform();
    for (h, others) in [
        (&h1, ["site2", "site3"]),
        (&h2, ["site1", "site3"]),
        (&h3, ["site1", "site2"]),
    ] {
        for o in others {
            wait_state(h, o, "online");
        }
    }

    // Publications cross to every all_platforms subscriber, with their origin.
    let s2 = Subscriber::start(&h2, "devices/");
    let s3 = Subscriber::start(&h3, "devices/");
    s2.warm_up(&h1, "devices/warmup");
    s3.warm_up(&h1, "devices/warmup");
    h1.ok(&["publish", "secret/plans", "\"stays home\""]);
    h1.ok(&["publish", "devices/campus/ahu1", "21.5"]);
    for s in [&s2, &s3] {
        let p = s.next();
        assert_eq!(
            p["topic"], "devices/campus/ahu1",
            "an unexported prefix leaked: {p}"
        );
        assert_eq!(p["origin"], "site1");
        assert_eq!(p["sender"], "site1.control.connection");
        assert_eq!(p["message"], 21.5);
    }
    // And the other way.
    h3.ok(&["publish", "devices/site3/meter", "7"]);
    let p = s2.next();
    assert_eq!(
        (p["topic"].as_str(), p["origin"].as_str()),
        (Some("devices/site3/meter"), Some("site3"))
    );

    // Protected topics apply to remote publishers: site2 requires a capability that
    // `site1.control.connection` does not have.
    h2.ok(&["auth", "protect", "publish", "devices/secure/", "hvac_writer"]);
    h1.ok(&["publish", "devices/secure/valve", "1"]);
    h1.ok(&["publish", "devices/open/valve", "2"]);
    let p = s2.next();
    assert_eq!(
        p["topic"], "devices/open/valve",
        "a protected topic was delivered: {p}"
    );

    // Calls both ways, answered by the other platform's agents.
    let answer = h1.ok(&[
        "--json",
        "rpc",
        "call",
        "--platform",
        "site2",
        "platform.federation",
        "status",
    ]);
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["instance"], "site2");
    let answer = h2.ok(&[
        "--json",
        "rpc",
        "call",
        "--platform",
        "site1",
        "platform.federation",
        "status",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap()["instance"],
        "site1"
    );
    let e = h1.fails(&[
        "rpc",
        "call",
        "--platform",
        "site9",
        "platform.federation",
        "status",
    ]);
    assert!(e.contains("unreachable"), "{e}");
    // A remote caller's capabilities are checked as `<platform>.<identity>`.
    let flush = [
        "rpc",
        "call",
        "--platform",
        "site2",
        "platform.federation",
        "flush",
    ];
    let e = h1.fails(&flush);
    assert!(e.contains("unauthorized") && e.contains("fed_admin"), "{e}");
    let ok = h3.ok(&[&["--json"], &flush[..]].concat());
    assert!(ok.contains("backlogged"), "{ok}");

    // Bad input from the broker side: malformed, spoofed, unknown kinds. The platforms
    // drop them and keep working.
    let scada = |args: &[&str]| broker.mosquitto_pub(&[&["-u", "scada", "-P", "pw-scada"], args].concat());
    scada(&["-t", "volttron/site1/pubsub/devices/x", "-m", "{not json"]);
    scada(&[
        "-V",
        "mqttv5",
        "-t",
        "volttron/site1/pubsub/devices/spoof",
        "-m",
        r#"{"sender":"evil","message":1}"#,
        "-D",
        "publish",
        "user-property",
        "volttron-origin",
        "site9",
    ]);
    scada(&["-t", "volttron/site1/status", "-m", "[]"]);
    scada(&["-t", "volttron/site1/rpc/site2", "-m", "{}"]);
    let big = format!(r#"{{"sender":"a","message":"{}"}}"#, "x".repeat(2 << 20));
    let big = h1.write("big.json", &big);
    let big = big.to_str().unwrap();
    scada(&["-t", "volttron/site1/pubsub/devices/big", "-f", big]);
    // The ACL: site3's credentials cannot write as site1.
    broker.mosquitto_pub(&[
        "-u",
        "site3",
        "-P",
        "pw-site3",
        "-t",
        "volttron/site1/pubsub/devices/forged",
        "-m",
        r#"{"sender":"x","message":1}"#,
    ]);
    h1.ok(&["publish", "devices/after/bad", "3"]);
    let p = s2.next();
    assert_eq!(p["topic"], "devices/after/bad", "bad input got through: {p}");
    let refused = federation(&h2)["counters"]["refused"].as_i64().unwrap();
    assert!(refused >= 3, "refusals counted: {refused}");

    // SIGKILL site3: the others see it leave (its last will) and come back.
    p3.0.kill().unwrap();
    p3.0.wait().unwrap();
    wait_state(&h1, "site3", "offline");
    wait_state(&h2, "site3", "offline");
    drop(s3);
    let _p3 = h3.start_platform();
    wait_state(&h1, "site3", "online");

    // The broker goes away; site1 backlogs, is SIGKILLed, restarts; everything it
    // reported backlogged arrives at site2, in order, once.
    broker.stop();
    let start = Instant::now();
    while federation(&h1)["connected"] == true {
        assert!(start.elapsed() < DEADLINE, "site1 never noticed the broker left");
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..20 {
        h1.ok(&["publish", &format!("devices/outage/{i:02}"), &i.to_string()]);
    }
    let flushed: Value = serde_json::from_str(&h1.ok(&["--json", "federation", "flush"])).unwrap();
    assert_eq!(flushed["backlogged"], 20, "{flushed}");
    let mut p1 = p1;
    p1.0.kill().unwrap();
    p1.0.wait().unwrap();
    broker.start_again();
    let _p1 = h1.start_platform();
    let mut got = Vec::new();
    while got.len() < 20 {
        let p = s2.next();
        let t = p["topic"].as_str().unwrap().to_owned();
        if t.starts_with("devices/outage/") {
            got.push(t);
        }
    }
    let want: Vec<String> = (0..20).map(|i| format!("devices/outage/{i:02}")).collect();
    assert_eq!(got, want);
    h1.ok(&["publish", "devices/after/replay", "4"]);
    let p = s2.next();
    assert_eq!(
        p["topic"], "devices/after/replay",
        "a replayed publication came twice: {p}"
    );
    assert_eq!(federation(&h1)["backlog"]["messages"], 0);
}
