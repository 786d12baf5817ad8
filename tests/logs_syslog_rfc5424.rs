//! `syslog = udp://HOST:PORT` in `$VOLTTRON_HOME/config`: every record also arrives as one
//! RFC 5424 datagram (what rsyslog, Logstash's and Filebeat's syslog inputs take), received
//! here by a UDP socket and parsed strictly: PRI from facility daemon and the level,
//! version 1, an RFC 3339 timestamp, APP-NAME `volttron`, PROCID the platform's pid, MSGID
//! the target, and the agent's identity and the stream in the `volttron@32473` element.

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::logs::TALKER;
use common::{DEADLINE, Home, platform_wait};

/// One RFC 5424 message, parsed.
#[derive(Debug)]
struct Syslog {
    pri: u32,
    timestamp: String,
    app: String,
    procid: String,
    msgid: String,
    /// The params of the `volttron@32473` element.
    params: BTreeMap<String, String>,
    msg: String,
}

/// Parses `text` as RFC 5424 (section 6), panicking at what is not.
fn parse(text: &str) -> Syslog {
    let fail = |why: &str| -> ! { panic!("not RFC 5424 ({why}): {text:?}") };
    let rest = text.strip_prefix('<').unwrap_or_else(|| fail("PRI"));
    let (pri, rest) = rest.split_once('>').unwrap_or_else(|| fail("PRI"));
    let pri: u32 = pri.parse().unwrap_or_else(|_| fail("PRI"));
    assert!(pri < 192, "PRI {pri}");
    let rest = rest.strip_prefix("1 ").unwrap_or_else(|| fail("VERSION"));
    let mut header = rest.splitn(6, ' ');
    let mut next = |what| header.next().unwrap_or_else(|| fail(what)).to_owned();
    let (timestamp, host, app, procid, msgid) = (
        next("TIMESTAMP"),
        next("HOSTNAME"),
        next("APP-NAME"),
        next("PROCID"),
        next("MSGID"),
    );
    let rest = next("STRUCTURED-DATA");
    for (field, max) in [(&host, 255), (&app, 48), (&procid, 128), (&msgid, 32)] {
        assert!(
            !field.is_empty() && field.len() <= max && field.bytes().all(|b| (33..=126).contains(&b)),
            "header field {field:?}: {text:?}"
        );
    }
    // TIMESTAMP: FULL-DATE "T" FULL-TIME, here UTC with fractions.
    let t = timestamp.as_bytes();
    assert!(
        t.len() >= 20
            && t[4] == b'-'
            && t[7] == b'-'
            && t[10] == b'T'
            && t[13] == b':'
            && timestamp.ends_with('Z'),
        "TIMESTAMP {timestamp}"
    );
    let mut params = BTreeMap::new();
    let msg = if let Some(msg) = rest.strip_prefix('-') {
        msg
    } else {
        let mut chars = rest.char_indices().peekable();
        assert_eq!(chars.next().map(|c| c.1), Some('['), "SD: {text:?}");
        let id_end = rest.find([' ', ']']).unwrap_or_else(|| fail("SD-ID"));
        assert_eq!(&rest[1..id_end], "volttron@32473");
        let mut body = &rest[id_end..];
        loop {
            if let Some(after) = body.strip_prefix(']') {
                break after;
            }
            body = body.strip_prefix(' ').unwrap_or_else(|| fail("SD-PARAM"));
            let (name, value) = body.split_once("=\"").unwrap_or_else(|| fail("SD-PARAM"));
            let mut decoded = String::new();
            let mut escaped = false;
            let mut end = None;
            for (i, c) in value.char_indices() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    (true, '"' | '\\' | ']') => {
                        decoded.push(c);
                        escaped = false;
                    }
                    (true, _) => fail("escape"),
                    (false, ']') => fail("unescaped ]"),
                    (false, c) => decoded.push(c),
                }
            }
            let end = end.unwrap_or_else(|| fail("PARAM-VALUE"));
            params.insert(name.to_owned(), decoded);
            body = &value[end + 1..];
        }
    };
    let msg = msg.strip_prefix(' ').unwrap_or(msg).to_owned();
    Syslog {
        pri,
        timestamp,
        app,
        procid,
        msgid,
        params,
        msg,
    }
}

/// Receives until a message for which `f` holds; panics at the deadline.
fn receive(socket: &UdpSocket, seen: &mut Vec<Syslog>, what: &str, f: impl Fn(&Syslog) -> bool) -> usize {
    if let Some(i) = seen.iter().position(&f) {
        return i;
    }
    let start = Instant::now();
    let mut buffer = vec![0u8; 65536];
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "no syslog message {what}; got {seen:#?}"
        );
        let Ok(n) = socket.recv(&mut buffer) else { continue };
        let text = std::str::from_utf8(&buffer[..n]).expect("UTF-8");
        seen.push(parse(text));
        if f(seen.last().unwrap()) {
            return seen.len() - 1;
        }
    }
}

#[test]
fn records_arrive_as_rfc5424_datagrams() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let port = socket.local_addr().unwrap().port();
    let home = Home::with_config(&format!(
        "[volttron]\nlog-format = json\nsyslog = udp://127.0.0.1:{port}\n"
    ));
    let platform = home.start_platform();
    let platform_pid = platform.0.id().to_string();
    let mut seen = Vec::new();
    let running = receive(&socket, &mut seen, "platform running", |m| {
        m.msg == "platform running"
    });
    let m = &seen[running];
    // facility daemon (3) * 8 + informational (6)
    assert_eq!(m.pri, 30, "{m:?}");
    assert_eq!(
        (m.app.as_str(), m.procid.as_str(), m.msgid.as_str()),
        ("volttron", platform_pid.as_str(), "volttron")
    );
    assert_eq!(
        m.params.get("instance").map(String::as_str),
        Some("volttron1"),
        "{m:?}"
    );
    assert!(!m.params.contains_key("agent"));

    let talker = home.write_script("talker", TALKER);
    home.install_started(&talker, "talker.1");
    let err = receive(&socket, &mut seen, "of talker.1's stderr", |m| {
        m.msg.starts_with("ERROR: trouble")
    });
    let m = &seen[err];
    // daemon * 8 + warning (4)
    assert_eq!(m.pri, 28, "{m:?}");
    assert_eq!(m.msgid, "volttron::agent_output");
    assert_eq!(
        m.params.get("agent").map(String::as_str),
        Some("talker.1"),
        "{m:?}"
    );
    assert_eq!(
        m.params.get("stream").map(String::as_str),
        Some("stderr"),
        "{m:?}"
    );

    home.ok(&["shutdown", "--platform"]);
    let shutdown = receive(&socket, &mut seen, "of the control service", |m| {
        m.msg == "shutdown requested through the control service"
    });
    assert_eq!(
        seen[shutdown].params.get("agent").map(String::as_str),
        Some("control")
    );
    assert!(platform_wait(platform).success());
    // The file still gets its JSON lines too.
    let log = std::fs::read_to_string(home.log_path()).unwrap();
    assert!(log.lines().any(|l| l.contains("\"platform running\"")));
    assert!(seen.iter().all(|m| m.timestamp.starts_with("20")));
}
