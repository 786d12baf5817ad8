//! A bad logging setting, in a flag or in `$VOLTTRON_HOME/config`, stops `volttron` before
//! it starts, with one line naming the key and what it takes.

mod common;

use std::process::Command;

use common::Home;

fn refused(home: &Home, flags: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_volttron"))
        .arg("--volttron-home")
        .arg(home.path())
        .args(flags)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{flags:?} started");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        !home.path().join("VOLTTRON_PID").exists(),
        "it got as far as the pid file"
    );
    err
}

#[test]
fn bad_flags_and_keys_are_refused_with_the_key_named() {
    let home = Home::with_config("");
    let err = refused(&home, &["--log-format", "xml"]);
    assert!(
        err.contains("log-format") && err.contains("human or json"),
        "{err}"
    );
    let err = refused(&home, &["--log-max-bytes", "0"]);
    assert!(err.contains("log-max-bytes"), "{err}");
    let err = refused(&home, &["--syslog", "/dev/log"]);
    assert!(err.contains("syslog") && err.contains("udp://"), "{err}");

    let home = Home::with_config("[volttron]\nlog-keep = many\n");
    let err = refused(&home, &[]);
    assert!(err.contains("log-keep"), "{err}");
    let home = Home::with_config("[volttron]\nsyslog = unix:///no/such/socket\n");
    let err = refused(&home, &[]);
    assert!(err.contains("/no/such/socket"), "{err}");
}
