//! `$VOLTTRON_HOME` end to end through the public API: the configuration file, the PID
//! file, installing, selecting, ordering and removing agents, and bad input.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use volttron::bridge::BridgeAddress;
use volttron::home::VolttronHome;
use volttron::home::config::{ConfigError, PlatformConfig};
use volttron::home::install::{self, InstallError, InstallSpec, InstalledAgent, Program};
use volttron::home::pid::{PidError, PidFile};
use volttron::home::select::{self, By, SelectError};

struct Home {
    _tmp: tempfile::TempDir,
    home: VolttronHome,
    exe: PathBuf,
}

fn home() -> Home {
    let tmp = tempfile::tempdir().unwrap();
    let home = VolttronHome::resolve(Some(tmp.path().join("vhome"))).unwrap();
    home.ensure().unwrap();
    let exe = tmp.path().join("agent-bin");
    fs::write(&exe, b"#!/bin/sh\nexit 0\n").unwrap();
    Home { _tmp: tmp, home, exe }
}

fn spec(h: &Home, identity: &str, name: &str) -> InstallSpec {
    InstallSpec::new(identity, name, h.exe.clone())
}

#[test]
fn platform_config_from_the_home() {
    let h = home();
    // No file: defaults.
    assert_eq!(
        PlatformConfig::load(h.home.config_file()).unwrap(),
        PlatformConfig::default()
    );
    let socket = h.home.socket_path();
    fs::write(
        h.home.config_file(),
        format!(
            "[volttron]\nvip-address = tcp://127.0.0.1:22916, ipc://@{}\ninstance-name = bms1\n\
             agent-monitor-frequency = 30\nauth = false\nvolttron-central-address = http://vc:8080\n",
            socket.display()
        ),
    )
    .unwrap();
    let file = PlatformConfig::load(h.home.config_file()).unwrap();
    assert_eq!(file.instance_name.as_deref(), Some("bms1"));
    assert_eq!(file.agent_monitor_frequency, Some(Duration::from_secs(30)));
    assert_eq!(file.auth, Some(false));
    assert_eq!(file.extra["volttron-central-address"], "http://vc:8080");
    let addresses: Vec<BridgeAddress> = file
        .vip_addresses
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(addresses[1], BridgeAddress::Unix(socket));

    // Flags override the file.
    let flags = PlatformConfig {
        vip_addresses: Some(vec!["tcp://0.0.0.0:22917".into()]),
        ..PlatformConfig::default()
    };
    let merged = file.merge(flags);
    assert_eq!(merged.vip_addresses.unwrap(), ["tcp://0.0.0.0:22917"]);
    assert_eq!(merged.instance_name.as_deref(), Some("bms1"));

    // Malformed: the error names the file, the line, the key and the value.
    fs::write(
        h.home.config_file(),
        "[volttron]\ninstance-name = x\nagent-restart-limit = lots\n",
    )
    .unwrap();
    let err = PlatformConfig::load(h.home.config_file()).unwrap_err();
    assert!(
        matches!(err, ConfigError::InvalidValue { line: 3, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("config:3") && msg.contains("agent-restart-limit") && msg.contains("\"lots\""));
}

#[test]
fn one_platform_per_home() {
    let h = home();
    let first = PidFile::acquire(h.home.pid_file()).unwrap();
    assert_eq!(
        fs::read_to_string(h.home.pid_file()).unwrap(),
        std::process::id().to_string()
    );
    // This binary is `home_layout-<hash>`, not `volttron`: the lock refuses the second.
    let err = PidFile::acquire(h.home.pid_file()).unwrap_err();
    assert!(
        matches!(&err, PidError::AlreadyRunning { pid: Some(p), home }
            if *p == std::process::id() && home == h.home.path()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "a platform is already running on {} (pid {}); stop it with `vctl shutdown --platform`",
            h.home.path().display(),
            std::process::id()
        )
    );
    drop(first);
    assert!(!h.home.pid_file().exists());
    // A stale file from a dead platform is replaced.
    fs::write(h.home.pid_file(), "999999999").unwrap();
    let again = PidFile::acquire(h.home.pid_file()).unwrap();
    assert_eq!(again.pid(), std::process::id());
}

#[test]
fn install_select_order_and_remove() {
    let h = home();
    let config = h.exe.with_file_name("driver.json");
    fs::write(&config, r#"{"driver_scrape_interval": 0.05}"#).unwrap();
    let mut driver = spec(&h, "platform.driver", "platform_driveragent-4.0");
    driver.config = Some(config);
    driver.priority = Some(9);
    driver.enable = true;
    driver.tag = Some("core".into());
    install::install(&h.home, &driver).unwrap();
    let mut historian = spec(&h, "platform.historian", "sqlhistorian-4.0");
    historian.priority = Some(100);
    historian.enable = true;
    install::install(&h.home, &historian).unwrap();
    let mut listener = spec(&h, "listener", "listeneragent-3.0");
    listener.enable = true;
    install::install(&h.home, &listener).unwrap();
    install::install(
        &h.home,
        &InstallSpec::new(
            "py",
            "pyagent-0.1",
            Program::Command(vec!["python3".into(), "-m".into(), "x".into()]),
        ),
    )
    .unwrap();

    let agents = install::list(&h.home).unwrap();
    let ids: Vec<&str> = agents.iter().map(|a| a.identity.as_str()).collect();
    assert_eq!(ids, ["listener", "platform.driver", "platform.historian", "py"]);

    // Numeric priorities: 9 (driver) < 50 (listener, the default) < 100 (historian).
    let order: Vec<&str> = install::autostart_order(&agents)
        .iter()
        .map(|a| a.identity.as_str())
        .collect();
    assert_eq!(order, ["platform.driver", "listener", "platform.historian"]);

    // Selection: identity, UUID prefix, name prefix, tag, globs.
    let one =
        |pattern: &str, by: By| select::select_one(&agents, pattern, by).map(|a| a.identity.to_string());
    assert_eq!(one("listener", By::default()).unwrap(), "listener");
    let historian_uuid = agents[2].uuid.to_string();
    let n = select::unique_uuid_prefix_len(&agents);
    assert_eq!(
        one(&historian_uuid[..n], By::default()).unwrap(),
        "platform.historian"
    );
    assert_eq!(one("sqlhistorian", By::default()).unwrap(), "platform.historian");
    let tag = By {
        tag: true,
        ..By::default()
    };
    assert_eq!(one("co?e", tag).unwrap(), "platform.driver");
    let found = select::select(&agents, "platform.*", By::default()).unwrap();
    assert_eq!(found.len(), 2);
    assert!(matches!(
        select::select_one(&agents, "platform.*", By::default()),
        Err(SelectError::Ambiguous { .. })
    ));
    let err = select::select(&agents, "ghost", By::default()).unwrap_err();
    assert_eq!(err.to_string(), "no agent matches 'ghost'");

    // Reinstall: refused without force; with it, data/ and the UUID stay.
    let before = install::find(&h.home, "platform.driver").unwrap();
    fs::write(before.data_dir().join("cache"), b"keep me").unwrap();
    let err = install::install(&h.home, &driver).unwrap_err();
    assert!(matches!(err, InstallError::Exists { .. }), "{err}");
    driver.force = true;
    driver.name = "platform_driveragent-4.1".into();
    let after = install::install(&h.home, &driver).unwrap();
    assert_eq!(after.uuid, before.uuid);
    assert_eq!(after.name, "platform_driveragent-4.1");
    assert_eq!(fs::read(after.data_dir().join("cache")).unwrap(), b"keep me");
    assert_eq!(InstalledAgent::load(&after.dir).unwrap(), after);

    // Remove.
    install::remove(&h.home, "platform.driver").unwrap();
    assert!(!after.dir.exists());
    assert_eq!(install::list(&h.home).unwrap().len(), 3);
}

#[test]
fn bad_input_gives_typed_errors() {
    let h = home();
    let err = install::install(&h.home, &spec(&h, "no spaces allowed", "x-1")).unwrap_err();
    assert!(matches!(err, InstallError::BadIdentity { .. }), "{err}");
    assert!(err.to_string().contains("invalid agent identity"), "{err}");
    let err = install::install(&h.home, &spec(&h, "..", "x-1")).unwrap_err();
    assert!(matches!(err, InstallError::ReservedIdentity { .. }), "{err}");
    let err = install::find(&h.home, "ghost").unwrap_err();
    assert!(matches!(err, InstallError::NotInstalled { .. }), "{err}");
    let err = install::set_tag(&h.home, "ghost", Some("t")).unwrap_err();
    assert!(matches!(err, InstallError::NotInstalled { .. }), "{err}");
    let missing = InstallSpec::new("x", "x-1", h.exe.with_file_name("missing-bin"));
    let err = install::install(&h.home, &missing).unwrap_err();
    assert!(matches!(err, InstallError::Source { .. }), "{err}");
    assert!(InstalledAgent::load(h.home.agents_dir().join("ghost")).is_err());
    // No home at all: an empty agents list, and the default config.
    let nowhere = VolttronHome::new(h.home.path().join("not-created"));
    assert!(install::list(&nowhere).unwrap().is_empty());
    assert_eq!(
        PlatformConfig::load(nowhere.config_file()).unwrap(),
        PlatformConfig::default()
    );
    let err = PlatformConfig::load(h.home.path()).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err}");
}
