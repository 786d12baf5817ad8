//! A VOLTTRON 11 home's `config`: read, honoured where it means something, warned about
//! where not.

use std::time::Duration;

use volttron::home::config::{ConfigError, ConfigWarningKind, PlatformConfig};

fn load(text: &str) -> Result<PlatformConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, text).unwrap();
    PlatformConfig::load(&path)
}

#[test]
fn a_volttron11_config_with_an_address_loads() {
    // `ServerOptions.store` after `volttron --address tcp://127.0.0.1:22916`.
    let c = load(
        "[volttron]\ninstance-name = campus\naddress = tcp://127.0.0.1:22916\nagent-isolation-mode = False\n\
         messagebus = zmq\nauth-enabled = True\nserver-messagebus-id = vip.server\nagent-monitor-frequency = 30\n\
         enable-federation = False\nenable-federation-cache = True\nfederation-cache-limit-hours = 24\n\n\
         [platform.web]\nbind-web-address = http://x\n",
    )
    .unwrap();
    assert_eq!(c.instance_name.as_deref(), Some("campus"));
    assert_eq!(c.vip_addresses, Some(vec!["tcp://127.0.0.1:22916".to_owned()]));
    assert_eq!(c.bridge_addresses, None, "the bridge has its own key now");
    assert_eq!(c.auth, Some(true));
    assert_eq!(c.agent_isolation_mode, Some(false));
    assert_eq!(c.agent_monitor_frequency, Some(Duration::from_secs(30)));
    assert_eq!(c.bind_web_address, None, "other sections are ignored");
    // Only VOLTTRON 11's plumbing key, quietly.
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].is_minor());
}

#[test]
fn warnings_and_errors_name_file_line_and_key() {
    let c = load(
        "[volttron]\nauth-enabled = False\nvolttron-central-address = https://vc:8443\nbind-web-address = https://0.0.0.0:8443\n",
    )
    .unwrap();
    let text: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(c.warnings[0].kind, ConfigWarningKind::AuthDisabled);
    assert!(text[0].contains("config:2: `auth-enabled`"), "{text:?}");
    assert!(
        text[1].contains(
            "config:3: `volttron-central-address` is ignored: there is no web service (Volttron Central)"
        ),
        "{text:?}"
    );
    // The web service reads `bind-web-address`: no warning.
    assert_eq!(c.warnings.len(), 2, "{text:?}");
    assert_eq!(c.bind_web_address.as_deref(), Some("https://0.0.0.0:8443"));

    let err = load("[volttron]\nmessagebus = rmq\n").unwrap_err();
    assert!(matches!(err, ConfigError::Unsupported { line: 2, .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("config:2: `messagebus = rmq` is not supported"),
        "{err}"
    );

    // Flags over the file keep the file's warnings.
    let flags = PlatformConfig {
        auth: Some(true),
        ..PlatformConfig::default()
    };
    let merged = c.merge(flags);
    assert_eq!(merged.auth, Some(true));
    assert_eq!(merged.warnings.len(), 2);
}
