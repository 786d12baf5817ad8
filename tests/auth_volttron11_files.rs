//! A VOLTTRON 11 home's auth files: credentials, `platform.json`, `authz.json`.

use std::path::Path;

use volttron::auth::authz::{AUTH_SERVICE, Authz, AuthzError, AuthzFormat, PubsubAccess, TopicAccess};
use volttron::auth::keys::{CredentialStore, KeyPair, PLATFORM_SECRET_PLACEHOLDER, PlatformKey};
use volttron::core::{Args, Map, Value};

/// As VOLTTRON 11's auth service writes it at start, plus agents of our own.
const V11_AUTHZ: &str = r#"{
  "roles": {
    "default_rpc_capabilities": {"rpc_capabilities": [
      "platform.config_store.initialize_configs", "platform.config_store.set_config",
      "platform.config_store.delete_store", "platform.config_store.delete_config"]},
    "sync_agent_config": {"rpc_capabilities": ["config.store.config_update", "config.store.initial_update"]},
    "admin": {"rpc_capabilities": ["/.*/"], "pubsub_capabilities": {"/.*/": "pubsub"}}
  },
  "agent_groups": {
    "admin_users": {"identities": ["platform.config_store", "platform.auth", "control.connection", "platform.control"],
                    "agent_roles": ["admin"]}
  },
  "agents": {
    "platform.config_store": {"protected_rpcs": ["set_config", "delete_config", "delete_store",
                              "initialize_configs", "config_update", "initial_config"],
                              "comments": "Automatically added by init of auth service"},
    "platform.auth": {"protected_rpcs": ["remove_agent", "create_or_merge_role", "create_protected_topics"]},
    "platform.control": {"protected_rpcs": ["stop_agent", "start_agent", "install_agent"]},
    "control.connection": {"comments": "Automatically added by init of auth service"},
    "listener": {"agent_roles": [{"default_rpc_capabilities": {"identity": "listener"}}],
                 "comments": "Created during creation of credentials!"},
    "platform.driver": {"agent_roles": [{"default_rpc_capabilities": {"identity": "platform.driver"}}],
                        "protected_rpcs": ["set_point"],
                        "pubsub_capabilities": {"devices/": "publish"}},
    "hvac": {"rpc_capabilities": [{"platform.driver.set_point": {"path": "/campus/building/.*/"}},
                                  "/platform\\.driver\\.get_.*/"],
             "pubsub_capabilities": {"/devices/actuators/.*/": "pubsub"}}
  },
  "protected_topics": ["devices", "/secrets/.*/"]
}"#;

fn v11() -> Authz {
    Authz::parse(V11_AUTHZ, Path::new("/v/authz.json")).unwrap()
}

fn call(a: &Authz, caller: &str, callee: &str, method: &str, args: Args) -> Result<(), String> {
    a.check_call(caller, callee, method, &args, &[]).map_err(|e| {
        assert_eq!(e.code(), Some(-32001), "{e}");
        e.to_string()
    })
}

#[test]
fn volttron11_authz_is_detected_and_kept_as_written() {
    let a = v11();
    assert_eq!(a.format(), AuthzFormat::Volttron11);
    assert!(!a.is_empty());
    let original: serde_json::Value = serde_json::from_str(V11_AUTHZ).unwrap();
    assert_eq!(a.to_json(), original, "written back as read");
    assert!(a.warnings().is_empty(), "{:?}", a.warnings());
    assert_eq!(
        Authz::parse("{}", Path::new("a")).unwrap().format(),
        AuthzFormat::Native
    );
}

#[test]
fn protected_rpcs_with_role_restrictions() {
    let a = v11();
    assert_eq!(a.protected_rpcs("platform.driver"), ["set_point"]);
    assert!(a.protected_rpcs("listener").is_empty());
    assert_eq!(a.protected_rpcs("platform.config_store").len(), 6);

    // The default role, given with {"identity": "listener"}: only for its own store.
    let own = Args::new()
        .kwarg("identity", "listener")
        .kwarg("config_name", "config");
    assert!(call(&a, "listener", "platform.config_store", "set_config", own).is_ok());
    let e = call(
        &a,
        "listener",
        "platform.config_store",
        "set_config",
        Args::new().kwarg("identity", "platform.driver"),
    )
    .unwrap_err();
    assert!(e.contains("only with 'identity' = \"listener\""), "{e}");
    // Positional, without the callee's parameter names: refused (pass it by name) ...
    let positional = Args::new().arg("listener").arg("config").arg("{}");
    let e = call(
        &a,
        "listener",
        "platform.config_store",
        "set_config",
        positional.clone(),
    )
    .unwrap_err();
    assert!(e.contains("pass it by name"), "{e}");
    // ... and matched by position when the platform knows them.
    let params = ["identity".to_owned(), "config_name".to_owned(), "raw".to_owned()];
    assert!(
        a.check_call(
            "listener",
            "platform.config_store",
            "set_config",
            &positional,
            &params
        )
        .is_ok()
    );
    // Unprotected methods are open.
    assert!(call(&a, "listener", "platform.config_store", "get_config", Args::new()).is_ok());
    assert!(call(&a, "listener", "platform.driver", "get_point", Args::new()).is_ok());

    // An object capability with a regex argument (matched from the start, as VOLTTRON 11's re.match).
    assert!(call(&a, "listener", "platform.driver", "set_point", Args::new()).is_err());
    let rtu = Args::new()
        .kwarg("path", "campus/building/rtu1")
        .kwarg("value", 1);
    assert!(call(&a, "hvac", "platform.driver", "set_point", rtu).is_ok());
    let other = Args::new().kwarg("path", "campus/other/rtu1");
    let e = call(&a, "hvac", "platform.driver", "set_point", other).unwrap_err();
    assert!(e.contains("'path' matching /campus/building/.*/"), "{e}");
    assert!(
        call(
            &a,
            "hvac",
            "platform.driver",
            "set_point",
            Args::new().kwarg("path", 5)
        )
        .is_err(),
        "a regex restriction needs a string"
    );

    // The admin role ("/.*/") through the admin_users group.
    assert!(
        call(
            &a,
            "control.connection",
            "platform.control",
            "stop_agent",
            Args::new()
        )
        .is_ok()
    );
    assert!(call(&a, "listener", "platform.control", "stop_agent", Args::new()).is_err());
    assert!(call(&a, "listener", "platform.control", "list_agents", Args::new()).is_ok());
}

#[test]
fn the_auth_services_methods_stay_protected() {
    let a = v11();
    assert!(call(&a, "listener", AUTH_SERVICE, "create_or_merge_role", Args::new()).is_err());
    // Not listed in the file (this platform's own methods): protected all the same.
    assert!(call(&a, "listener", AUTH_SERVICE, "approve_authorization", Args::new()).is_err());
    assert!(
        call(
            &a,
            "control.connection",
            AUTH_SERVICE,
            "approve_authorization",
            Args::new()
        )
        .is_ok()
    );
    // What every agent calls.
    for open in [
        "get_protected_rpcs",
        "check_rpc_authorization",
        "check_pubsub_authorization",
    ] {
        assert!(
            call(&a, "listener", AUTH_SERVICE, open, Args::new()).is_ok(),
            "{open}"
        );
    }
    // The same in this project's format.
    let native = Authz::default();
    assert!(
        call(
            &native,
            "listener",
            AUTH_SERVICE,
            "get_protected_rpcs",
            Args::new()
        )
        .is_ok()
    );
    assert!(
        call(
            &native,
            "listener",
            AUTH_SERVICE,
            "approve_authorization",
            Args::new()
        )
        .is_err()
    );
}

#[test]
fn check_rpc_authorization_as_volttron11_answers_it() {
    let a = v11();
    let mut args = Map::new();
    assert!(
        a.check_rpc_authorization("hvac", "platform.driver.get_point", &args)
            .is_ok(),
        "regex capability, anchored at both ends"
    );
    assert!(
        a.check_rpc_authorization("hvac", "platform.driver.scrape_all", &args)
            .is_err()
    );
    assert!(
        a.check_rpc_authorization("hvac", "xplatform.driver.get_point", &args)
            .is_err(),
        "anchored at the start"
    );
    args.insert("path".into(), Value::from("campus/building/ahu"));
    assert!(
        a.check_rpc_authorization("hvac", "platform.driver.set_point", &args)
            .is_ok()
    );
    args.insert("path".into(), Value::from("elsewhere"));
    assert!(
        a.check_rpc_authorization("hvac", "platform.driver.set_point", &args)
            .is_err()
    );
    let e = a
        .check_rpc_authorization("nobody", "platform.driver.set_point", &args)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("'nobody' has no RPC capability for platform.driver.set_point"),
        "{e}"
    );

    // This project's format: the same rules as the router's, for any split of the name.
    let native = Authz::parse(
        r#"{"users": {"me": {"capabilities": {"edit": {"identity": "<self>"}}}},
            "rpc_method_authorizations": {"platform.config_store": {"set_config": ["edit"]}}}"#,
        Path::new("a"),
    )
    .unwrap();
    let mut args = Map::new();
    args.insert("identity".into(), Value::from("me"));
    assert!(
        native
            .check_rpc_authorization("me", "platform.config_store.set_config", &args)
            .is_ok()
    );
    assert!(
        native
            .check_rpc_authorization("you", "platform.config_store.set_config", &args)
            .is_err()
    );
    assert!(
        native
            .check_rpc_authorization("you", "platform.config_store.get_config", &args)
            .is_ok()
    );
    assert_eq!(native.protected_rpcs("platform.config_store"), ["set_config"]);
}

#[test]
fn protected_topics_publish() {
    let a = v11();
    assert!(
        a.check_publish("platform.driver", "devices/campus/building/fake/all")
            .is_ok()
    );
    let e = a.check_publish("listener", "devices/x").unwrap_err();
    assert_eq!(e.access, TopicAccess::Publish);
    assert_eq!(e.prefix, "devices");
    assert!(
        a.check_publish("listener", "heartbeat/listener").is_ok(),
        "not protected"
    );
    assert!(
        a.check_publish("listener", "secrets/a").is_err(),
        "a /regex/ protected topic"
    );
    assert!(a.check_publish("listener", "secretsX").is_ok());
    assert!(a.check_publish("hvac", "devices/actuators/rtu1").is_ok());
    assert!(a.check_publish("hvac", "devices/other").is_err());
    assert!(
        a.check_publish("control.connection", "secrets/a").is_ok(),
        "admin: /.*/ pubsub"
    );
}

#[test]
fn protected_topics_subscribe_is_checked_as_subscribe() {
    let a = v11();
    // VOLTTRON 11 checks the subscription prefix as if it were a topic, so "" or "dev" would
    // receive devices/... unprotected; here they are refused.
    for refused in ["", "d", "dev", "devices", "devices/x", "secrets/", "sec"] {
        let e = a.check_subscribe("listener", refused).unwrap_err();
        assert_eq!(e.access, TopicAccess::Subscribe, "{refused:?}");
        assert!(
            a.check_subscribe("control.connection", refused).is_ok(),
            "{refused:?}"
        );
    }
    for allowed in ["heartbeat", "alerts/", "secretsX"] {
        assert!(a.check_subscribe("listener", allowed).is_ok(), "{allowed:?}");
    }
    // A publish grant does not allow subscribing.
    assert!(a.check_subscribe("platform.driver", "devices/campus").is_err());
    assert!(a.check_subscribe("hvac", "devices/actuators/rtu1").is_ok());
    assert!(a.check_subscribe("hvac", "devices/actuators/").is_ok());
    assert!(a.check_subscribe("hvac", "devices").is_err());
    // MQTT-style patterns are judged by their literal levels.
    assert!(a.check_subscribe("listener", "devices/+/all").is_err());
    assert!(a.check_subscribe("listener", "heartbeat/#").is_ok());

    assert!(
        a.check_pubsub_authorization("listener", "devices/x", PubsubAccess::Subscribe)
            .is_err()
    );
    assert!(
        a.check_pubsub_authorization("platform.driver", "devices/a", PubsubAccess::Publish)
            .is_ok()
    );
    assert!(
        a.check_pubsub_authorization("platform.driver", "devices/a", PubsubAccess::PubSub)
            .is_err()
    );
    assert!(
        a.check_pubsub_authorization("listener", "heartbeat/listener", PubsubAccess::PubSub)
            .is_ok()
    );
}

#[test]
fn a_protected_topic_covered_by_a_grant_lets_a_wide_subscription_through() {
    let a = Authz::parse(
        r#"{"agents": {"reader": {"pubsub_capabilities": {"secrets": "subscribe"}},
                       "closed": {"pubsub_capabilities": {"/secrets/a$/": "pubsub"}}},
            "protected_topics": ["secrets"]}"#,
        Path::new("a"),
    )
    .unwrap();
    assert!(
        a.check_subscribe("reader", "").is_ok(),
        "every protected topic it can receive is granted"
    );
    assert!(a.check_subscribe("reader", "secrets/x").is_ok());
    assert!(a.check_publish("reader", "secrets/x").is_err(), "subscribe only");
    // A grant anchored at the end covers one topic, not a prefix subscription.
    assert!(a.check_subscribe("closed", "secrets/a").is_err());
    assert!(a.check_publish("closed", "secrets/a").is_ok());
    assert!(a.check_publish("closed", "secrets/ab").is_err());
}

#[test]
fn editing_a_volttron11_file_is_refused_and_dangling_roles_warned() {
    let a = v11();
    let e = a.set_role("x", Some(&["c".to_owned()])).unwrap_err();
    assert!(matches!(e, AuthzError::Unsupported { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("/v/authz.json: the file is in VOLTTRON 11's format"),
        "{e}"
    );

    let a = Authz::parse(
        r#"{"agents": {"x": {"agent_roles": ["removed"]}}}"#,
        Path::new("/v/authz.json"),
    )
    .unwrap();
    assert_eq!(a.warnings().len(), 1);
    assert!(
        a.warnings()[0].contains(r#"role "removed" is not defined"#),
        "{:?}",
        a.warnings()
    );
    // A group's roles may be spelled `roles` (as VOLTTRON 11 reads them) or `agent_roles`.
    let a = Authz::parse(
        r#"{"roles": {"r": {"rpc_capabilities": ["a.b"]}},
            "agent_groups": {"g": {"identities": ["x"], "roles": ["r"]}},
            "agents": {"a": {"protected_rpcs": ["b"]}}}"#,
        Path::new("a"),
    )
    .unwrap();
    assert!(a.check_call("x", "a", "b", &Args::new(), &[]).is_ok());
    assert!(a.check_call("y", "a", "b", &Args::new(), &[]).is_err());
}

#[test]
fn malformed_volttron11_authz_names_file_and_entry() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"agents": {}, "users": {}}"#,
            r#"/v/authz.json: $: unknown key "users" (expected VOLTTRON 11's"#,
        ),
        (
            r#"{"agents": {"a": {"protected_rpcs": "set_point"}}}"#,
            r#"/v/authz.json: $.agents["a"].protected_rpcs: expected a list of names, found a string"#,
        ),
        (
            r#"{"agents": {"a": {"pubsub_capabilities": {"devices": "read"}}}}"#,
            r#"/v/authz.json: $.agents["a"].pubsub_capabilities["devices"]: invalid topic access "read""#,
        ),
        (
            r#"{"agents": {"a": {"rpc_capabilities": ["/(/"]}}}"#,
            r#"/v/authz.json: $.agents["a"].rpc_capabilities[0]: invalid RPC capability "/(/": not a regular expression"#,
        ),
        (
            r#"{"protected_topics": ["devices", "(x"]}"#,
            r#"/v/authz.json: $.protected_topics[1]: invalid topic pattern "(x": not a regular expression"#,
        ),
        (
            // Unicode classes are beyond the pattern engine (regex-lite): refused, not misread.
            r#"{"protected_topics": ["/devices/\\p{L}+/"]}"#,
            r#"/v/authz.json: $.protected_topics[0]: invalid topic pattern "/devices/\\p{L}+/": not a regular expression"#,
        ),
        (
            r#"{"protected_topics": [5]}"#,
            r#"/v/authz.json: $.protected_topics[0]: expected a string, found a number"#,
        ),
        (
            r#"{"agents": {"a": {"rolez": []}}}"#,
            r#"/v/authz.json: $.agents["a"]: unknown key "rolez""#,
        ),
        (
            r#"{"agents": {"a b": {}}}"#,
            r#"/v/authz.json: $.agents["a b"]: invalid identity "a b""#,
        ),
        (
            r#"{"agent_groups": {"g": {"identities": "x"}}}"#,
            r#"/v/authz.json: $.agent_groups["g"].identities: expected a list of names, found a string"#,
        ),
        (
            r#"{"roles": {"r": {"rpc_capabilities": [5]}}}"#,
            r#"/v/authz.json: $.roles["r"].rpc_capabilities[0]: expected a string"#,
        ),
        (
            r#"{"roles": {"r": {"rpc_capabilities": [{"a.b": "x"}]}}}"#,
            r#"/v/authz.json: $.roles["r"].rpc_capabilities[0]["a.b"]: expected an object of argument restrictions, found a string"#,
        ),
        (
            r#"{"agents": {"a": {"rpc_capabilities": [{"a.b": {"p": "/[/"}}]}}}"#,
            r#"/v/authz.json: $.agents["a"].rpc_capabilities[0]["a.b"]["p"]: invalid argument pattern "/[/""#,
        ),
        (
            r#"{"agents": {"a": {"agent_roles": [{"r": 1}]}}}"#,
            r#"/v/authz.json: $.agents["a"].agent_roles[0]["r"]: expected an object of argument restrictions, found a number"#,
        ),
    ];
    for (text, expected) in cases {
        let message = Authz::parse(text, Path::new("/v/authz.json"))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(expected),
            "{text}\n got: {message}\nwant: {expected}"
        );
    }
}

#[test]
fn a_volttron11_home_credentials_and_platform_key() {
    let home = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(home.path());
    std::fs::create_dir_all(store.dir()).unwrap();
    // As VOLTTRON 11 writes them.
    let agent = KeyPair::generate().unwrap();
    std::fs::write(
        store.path("listener").unwrap(),
        format!(
            r#"{{"identity": "listener", "publickey": "{}", "secretkey": "{}"}}"#,
            agent.public,
            agent.secret.to_base64()
        ),
    )
    .unwrap();
    let platform = KeyPair::generate().unwrap();
    std::fs::write(
        PlatformKey::platform_file_in(home.path()),
        format!(
            r#"{{"identity": "platform", "publickey": "{}", "secretkey": "{}", "domain": "VIP", "address": ""}}"#,
            platform.public,
            platform.secret.to_base64()
        ),
    )
    .unwrap();

    assert_eq!(store.load("listener").unwrap(), Some(agent.clone()));
    assert_eq!(store.identities().unwrap(), ["listener"]);
    let key = PlatformKey::load_or_create(home.path()).unwrap();
    assert_eq!(
        key.serverkey(),
        platform.public,
        "existing agents' serverkey stays valid"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(PlatformKey::platform_file_in(home.path())).unwrap())
            .unwrap();
    assert_eq!(json["publickey"], platform.public.to_string());
    assert_eq!(json["secretkey"], PLATFORM_SECRET_PLACEHOLDER);
    for field in ["identity", "publickey", "secretkey"] {
        assert!(json.get(field).is_some(), "VOLTTRON 11 agents require {field}");
    }

    // A file written here has VOLTTRON 11's keys.
    store.store("listener", &agent).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store.path("listener").unwrap()).unwrap()).unwrap();
    let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["address", "domain", "identity", "publickey", "secretkey"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&PlatformKey::platform_file_in(home.path())), 0o644);
        assert_eq!(mode(&store.path("listener").unwrap()), 0o600);
        assert_eq!(mode(store.dir()) & 0o011, 0o011, "traversable by agents");
    }
}
