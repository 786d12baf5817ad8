//! VOLTTRON's documented `vctl` spellings against a real `volttron` process: `config
//! store IDENTITY NAME FILE --json|--csv|--raw` (and from standard input), `config get
//! --raw`, `install ... --vip-identity --tag --agent-config --start --enable --priority
//! --force`, `status`, `list`, and `auth keypair | publickey (agentcred) | serverkey
//! (servercred) | add | remove | list`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Home, pid, platform_wait};
use serde_json::Value;

#[test]
fn config_store_types_and_raw_get() {
    let home = Home::with_config("");
    let platform = home.start_platform();
    let json = home.write("c.json", "{\"a\": 1}");
    let csv = home.write("points.csv", "Point,Units\nT1,degF\n");
    let raw = home.write("notes.txt", "just text");
    home.ok(&[
        "config",
        "store",
        "agent.x",
        "config",
        json.to_str().unwrap(),
        "--json",
    ]);
    home.ok(&[
        "config",
        "store",
        "agent.x",
        "points.csv",
        csv.to_str().unwrap(),
        "--csv",
    ]);
    home.ok(&[
        "config",
        "store",
        "agent.x",
        "notes",
        raw.to_str().unwrap(),
        "--raw",
    ]);

    let v: Value = serde_json::from_str(&home.ok(&["config", "get", "agent.x", "config", "--json"])).unwrap();
    assert_eq!(v, serde_json::json!({"a": 1}));
    let rows: Value =
        serde_json::from_str(&home.ok(&["config", "get", "agent.x", "points.csv", "--json"])).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"Point": "T1", "Units": "degF"}]),
        "parsed as CSV"
    );
    assert_eq!(
        home.ok(&["config", "get", "agent.x", "points.csv", "--raw"])
            .trim_end(),
        "Point,Units\nT1,degF"
    );
    assert_eq!(
        home.ok(&["config", "get", "agent.x", "notes", "--raw"])
            .trim_end(),
        "just text"
    );
    assert_eq!(
        home.ok(&["config", "get", "agent.x", "notes"]).trim_end(),
        "\"just text\""
    );
    // Not JSON, stored as JSON: refused.
    let err = home.fails(&["config", "store", "agent.x", "bad", raw.to_str().unwrap()]);
    assert!(err.contains("set_config"), "{err}");

    // The file may come on standard input, as in VOLTTRON.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vctl"))
        .arg("--volttron-home")
        .arg(home.path())
        .args(["config", "store", "agent.x", "stdin", "--raw"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"from stdin").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        home.ok(&["config", "get", "agent.x", "stdin", "--raw"])
            .trim_end(),
        "from stdin"
    );
    let names: Vec<String> =
        serde_json::from_str(&home.ok(&["config", "list", "agent.x", "--json"])).unwrap();
    assert_eq!(names, ["config", "notes", "points.csv", "stdin"]);

    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}

#[test]
fn install_options_status_list_and_auth() {
    let home = Home::with_config("");
    let platform = home.start_platform();
    let agent = home.write_script(
        "sleeper",
        "#!/bin/sh\ntrap 'exit 0' INT TERM\nwhile :; do sleep 0.05; done\n",
    );
    let config = home.write("sleeper.json", "{\"k\": \"v\"}");
    let out = home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        "sleeper.1",
        "--tag",
        "sleepy",
        "--agent-config",
        config.to_str().unwrap(),
        "--priority",
        "7",
        "--enable",
        "--start",
    ]);
    assert!(out.contains("Installed sleeper.1 and started it"), "{out}");
    let a = home.wait_for("sleeper.1", "running", |a| pid(a).is_some());
    assert_eq!(
        (
            a["tag"].as_str(),
            a["priority"].as_u64(),
            a["autostart"].as_bool()
        ),
        (Some("sleepy"), Some(7), Some(true))
    );
    let stored: Value =
        serde_json::from_str(&home.ok(&["config", "get", "sleeper.1", "config", "--json"])).unwrap();
    assert_eq!(stored, serde_json::json!({"k": "v"}));

    // Tables.
    let status = home.ok(&["status"]);
    assert!(
        status.lines().next().unwrap().starts_with("UUID  AGENT"),
        "{status}"
    );
    assert!(
        status.contains("sleeper.1") && status.contains("running ["),
        "{status}"
    );
    let list = home.ok(&["list"]);
    assert!(
        list.contains("sleeper.1") && list.contains("sleepy") && list.contains("enabled"),
        "{list}"
    );

    // --force replaces it (stopped first), keeping its UUID and tag.
    let uuid = a["uuid"].as_str().unwrap().to_owned();
    home.fails(&["install", agent.to_str().unwrap(), "--vip-identity", "sleeper.1"]);
    home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        "sleeper.1",
        "--force",
    ]);
    let a = home.agent("sleeper.1").unwrap();
    assert_eq!(
        (a["uuid"].as_str(), a["tag"].as_str()),
        (Some(uuid.as_str()), Some("sleepy"))
    );
    assert!(pid(&a).is_none(), "a reinstall is stopped");

    // auth: a key pair, the platform's key (both spellings), agents' keys (both).
    let pair: Value = serde_json::from_str(&home.ok(&["auth", "keypair"])).unwrap();
    let public = pair["public"].as_str().unwrap().to_owned();
    assert_eq!(public.len(), 43);
    let server = home.ok(&["auth", "serverkey"]);
    assert_eq!(home.ok(&["auth", "servercred"]), server);
    assert_eq!(server.trim().len(), 43);
    let keys: Value = serde_json::from_str(&home.ok(&["auth", "publickey", "--json"])).unwrap();
    assert_eq!(keys["sleeper.1"].as_str().unwrap().len(), 43, "{keys}");
    let table = home.ok(&["auth", "agentcred", "--tag", "sleepy"]);
    assert!(
        table.contains("PUBLICKEY") && table.contains(keys["sleeper.1"].as_str().unwrap()),
        "{table}"
    );

    // add with a key, add without (a key pair is made for the identity), list, remove.
    home.ok(&["auth", "add", "ext.one", &public, "--comments", "test"]);
    home.ok(&["auth", "add", "ext.two"]);
    let made = std::fs::read_to_string(home.path().join("credentials_store/ext.two.json")).unwrap();
    assert!(!made.is_empty());
    let listed = home.ok(&["auth", "list", "--json"]);
    assert!(
        listed.contains("ext.one") && listed.contains(&public) && listed.contains("ext.two"),
        "{listed}"
    );
    home.ok(&["auth", "remove", "ext.one"]);
    let listed = home.ok(&["auth", "list", "--json"]);
    assert!(!listed.contains("ext.one"), "{listed}");

    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}
