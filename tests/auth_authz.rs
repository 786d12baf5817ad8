//! The auth service (`platform.auth`): VOLTTRON's RPCs over `auth.json` (approved and
//! denied peers) and `authz.json` (roles, groups, capabilities, RPC method authorizations,
//! protected topics), every edit persisted to the platform home; hand edits of `authz.json`
//! applied within a second; and, on a platform with auth on, the rules enforced on agents'
//! calls and publishes as soon as they are edited.

use std::path::Path;
use std::time::{Duration, SystemTime};

use volttron::prelude::*;
use volttron::services::auth::IDENTITY;
use volttron::testing::TestPlatform;

const KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Writes `text` with a modification time of its own (no waiting for the clock to tick).
fn write_stamped(path: &Path, text: &str, secs: u64) {
    std::fs::write(path, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// A test platform with auth on: its `platform.auth` service runs over the temporary home.
async fn with_service() -> TestPlatform {
    TestPlatform::builder().services(true).auth(true).start().await
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[volttron::test]
async fn auth_entries_approve_deny_delete_on_disk() {
    let tp = with_service().await;
    let auth_json = tp.home_dir().join("auth.json");

    tp.call(
        IDENTITY,
        "add_auth_entry",
        ("hvac.agent", KEY, "installed by hand"),
    )
    .await
    .unwrap();
    let on_disk = read_json(&auth_json);
    assert_eq!(on_disk["allow"][0]["identity"], "hvac.agent");
    assert_eq!(on_disk["allow"][0]["public_key"], KEY);
    assert_eq!(on_disk["allow"][0]["enabled"], true);
    let approved = tp.call(IDENTITY, "get_authorization_approved", ()).await.unwrap();
    assert_eq!(approved[0]["comments"], Value::from("installed by hand"));

    tp.call(IDENTITY, "deny_authorization", ("hvac.agent",))
        .await
        .unwrap();
    let denied = tp.call(IDENTITY, "get_authorization_denied", ()).await.unwrap();
    assert_eq!(denied[0]["public_key"], Value::from(KEY));
    let on_disk = read_json(&auth_json);
    assert_eq!(on_disk["allow"], serde_json::json!([]));
    assert_eq!(on_disk["deny"][0]["identity"], "hvac.agent");

    // Approve it again, by key.
    let entries = tp.call(IDENTITY, "approve_authorization", (KEY,)).await.unwrap();
    assert_eq!(entries[0]["identity"], Value::from("hvac.agent"));
    assert_eq!(read_json(&auth_json)["deny"], serde_json::json!([]));

    let all = tp.call(IDENTITY, "get_auth_entries", ()).await.unwrap();
    assert_eq!(all.as_list().unwrap().len(), 1);
    tp.call(IDENTITY, "delete_authorization", ("hvac.agent",))
        .await
        .unwrap();
    assert_eq!(read_json(&auth_json)["allow"], serde_json::json!([]));
    let pending = tp.call(IDENTITY, "get_authorization_pending", ()).await.unwrap();
    assert_eq!(pending, Value::List(vec![]));

    let e = tp
        .call(IDENTITY, "approve_authorization", ("ghost",))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no pending or denied peer matches \"ghost\""),
        "{e}"
    );
    let e = tp
        .call(IDENTITY, "add_auth_entry", ("bad/identity", KEY))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid identity"), "{e}");
    let e = tp
        .call(IDENTITY, "add_auth_entry", ("ok", "not base64!"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is not base64 text"), "{e}");
    tp.shutdown().await;
}

#[volttron::test]
async fn authz_edits_persist_roles_groups_users_rpc_and_topics() {
    let tp = with_service().await;
    let authz_json = tp.home_dir().join("authz.json");

    tp.call(
        IDENTITY,
        "set_role",
        ("operator", strings(&["actuate", "read_devices"])),
    )
    .await
    .unwrap();
    tp.call(IDENTITY, "set_group", ("campus_ops", strings(&["operator"])))
        .await
        .unwrap();
    let caps = serde_json::json!({"edit_config_store": {"identity": "<self>"}});
    tp.call(
        IDENTITY,
        "set_user_capabilities",
        Args::new()
            .kwarg("identity", "hvac.agent")
            .kwarg("capabilities", Value::from(caps))
            .kwarg("groups", strings(&["campus_ops"])),
    )
    .await
    .unwrap();
    let effective = tp
        .call(IDENTITY, "get_user_capabilities", ("hvac.agent",))
        .await
        .unwrap();
    assert_eq!(
        effective["actuate"],
        Value::Null,
        "through group and role, unrestricted"
    );
    assert_eq!(effective["edit_config_store"]["identity"], Value::from("<self>"));

    tp.call(
        IDENTITY,
        "set_rpc_authorizations",
        ("config.store", "set_config", strings(&["edit_config_store"])),
    )
    .await
    .unwrap();
    let rpc = tp
        .call(IDENTITY, "get_rpc_authorizations", ("config.store",))
        .await
        .unwrap();
    assert_eq!(rpc["set_config"], Value::from(vec!["edit_config_store"]));

    tp.call(
        IDENTITY,
        "set_protected_topic",
        ("publish", "devices/actuators", strings(&["actuate"])),
    )
    .await
    .unwrap();
    tp.call(
        IDENTITY,
        "set_protected_topic",
        ("subscribe", "secrets/", strings(&["read"])),
    )
    .await
    .unwrap();
    let topics = tp.call(IDENTITY, "get_protected_topics", ()).await.unwrap();
    assert_eq!(
        topics["publish"]["devices/actuators"],
        Value::from(vec!["actuate"])
    );
    assert_eq!(topics["subscribe"]["secrets"], Value::from(vec!["read"]));

    let on_disk = read_json(&authz_json);
    assert_eq!(
        on_disk["roles"]["operator"],
        serde_json::json!(["actuate", "read_devices"])
    );
    assert_eq!(on_disk["groups"]["campus_ops"], serde_json::json!(["operator"]));
    assert_eq!(
        on_disk["users"]["hvac.agent"]["groups"],
        serde_json::json!(["campus_ops"])
    );
    assert_eq!(
        on_disk["users"]["hvac.agent"]["capabilities"]["edit_config_store"]["identity"],
        "<self>"
    );
    assert_eq!(
        on_disk["rpc_method_authorizations"]["config.store"]["set_config"],
        serde_json::json!(["edit_config_store"])
    );
    assert_eq!(
        on_disk["protected_topics"]["publish"]["devices/actuators"],
        serde_json::json!(["actuate"])
    );

    // Bad edits are refused with the file unchanged.
    let before = std::fs::read(&authz_json).unwrap();
    let e = tp
        .call(IDENTITY, "set_group", ("viewers", strings(&["ghost"])))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"$.groups["viewers"]: unknown role "ghost""#),
        "{e}"
    );
    let e = tp
        .call(IDENTITY, "set_protected_topic", ("publsh", "a", strings(&["c"])))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown topic access \"publsh\""), "{e}");
    let e = tp
        .call(IDENTITY, "set_role", ("operator", Value::Null))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("unknown role \"operator\""),
        "still used by a group: {e}"
    );
    assert_eq!(std::fs::read(&authz_json).unwrap(), before);

    tp.call(IDENTITY, "remove_protected_topic", ("subscribe", "secrets"))
        .await
        .unwrap();
    tp.call(
        IDENTITY,
        "set_rpc_authorizations",
        ("config.store", "set_config", Value::Null),
    )
    .await
    .unwrap();
    let on_disk = read_json(&authz_json);
    assert_eq!(on_disk["protected_topics"]["subscribe"], serde_json::json!({}));
    assert_eq!(on_disk["rpc_method_authorizations"], serde_json::json!({}));
    tp.shutdown().await;
}

#[volttron::test]
async fn hand_edits_apply_within_a_second_and_broken_ones_are_not_applied() {
    let tp = with_service().await;
    let authz_json = tp.home_dir().join("authz.json");
    let topics = || tp.call(IDENTITY, "get_protected_topics", ());

    write_stamped(
        &authz_json,
        r#"{"protected_topics": {"publish": {"devices/actuators": ["actuate"]}}}"#,
        1_000,
    );
    tp.advance(Duration::from_secs(1)).await;
    let t = topics().await.unwrap();
    assert_eq!(t["publish"]["devices/actuators"], Value::from(vec!["actuate"]));

    write_stamped(
        &authz_json,
        r#"{"protected_topics": {"publish": {"x": "not a list"}}}"#,
        2_000,
    );
    tp.advance(Duration::from_secs(1)).await;
    let t = topics().await.unwrap();
    assert_eq!(
        t["publish"]["devices/actuators"],
        Value::from(vec!["actuate"]),
        "the previous rules stay in force"
    );
    let e = tp
        .call(IDENTITY, "set_role", ("r", strings(&[])))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("is not overwritten until it is fixed"),
        "the broken hand edit is kept: {e}"
    );

    write_stamped(
        &authz_json,
        r#"{"protected_topics": {"publish": {"x": ["c"]}}}"#,
        3_000,
    );
    tp.advance(Duration::from_secs(1)).await;
    let t = topics().await.unwrap();
    assert_eq!(t["publish"].as_map().unwrap().len(), 1);
    assert_eq!(t["publish"]["x"], Value::from(vec!["c"]));
    tp.shutdown().await;
}

/// Publishes and calls on request, as itself.
struct Actor;

#[volttron::agent]
impl Actor {
    #[rpc]
    fn emit(&mut self, ctx: &AgentContext, topic: String) -> Result<usize, String> {
        ctx.publish(topic, 1).map_err(|e| e.to_string())
    }

    #[rpc]
    async fn relay(
        &mut self,
        ctx: &AgentContext,
        peer: String,
        method: String,
        args: Value,
    ) -> Result<Value, String> {
        ctx.call(&peer, &method, args).await.map_err(|e| e.to_string())
    }
}

/// A method worth protecting.
struct Target;

#[volttron::agent]
impl Target {
    #[rpc]
    fn poke(&mut self, identity: String) -> String {
        identity
    }
}

#[volttron::test]
async fn edits_are_enforced_at_once_on_a_platform_with_auth() {
    let tp = TestPlatform::builder().services(true).auth(true).start().await;
    tp.spawn("hvac", Actor).await.unwrap();
    tp.spawn("intruder", Actor).await.unwrap();
    tp.spawn("target", Target).await.unwrap();
    let relay = |who: &str, identity: &str| {
        let args = Value::from(serde_json::json!({ "identity": identity }));
        tp.call(who, "relay", ("target", "poke", args))
    };
    assert!(relay("intruder", "x").await.is_ok(), "nothing protected yet");

    tp.call(
        IDENTITY,
        "set_rpc_authorizations",
        ("target", "poke", strings(&["poke"])),
    )
    .await
    .unwrap();
    let caps = Value::from(serde_json::json!({"poke": {"identity": "<self>"}}));
    tp.call(IDENTITY, "set_user_capabilities", ("hvac", caps))
        .await
        .unwrap();
    assert_eq!(relay("hvac", "hvac").await.unwrap(), Value::from("hvac"));
    let e = relay("hvac", "other").await.unwrap_err().to_string();
    assert!(e.contains("outside capability 'poke'"), "{e}");
    let e = relay("intruder", "intruder").await.unwrap_err().to_string();
    assert!(e.contains("'intruder' lacks capability 'poke'"), "{e}");

    tp.call(
        IDENTITY,
        "set_protected_topic",
        ("publish", "devices/actuators", strings(&["actuate"])),
    )
    .await
    .unwrap();
    let e = tp
        .call("intruder", "emit", ("devices/actuators/rtu1",))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("protected prefix 'devices/actuators' requires capability 'actuate'"),
        "{e}"
    );
    assert!(tp.call("intruder", "emit", ("devices/actuatorsX",)).await.is_ok());

    // Agents cannot edit the rules unless granted `allow_auth_modifications`.
    let grant = Value::from(serde_json::json!({"identity": "intruder", "capabilities": {"actuate": null}}));
    let e = tp
        .call(
            "intruder",
            "relay",
            (IDENTITY, "set_user_capabilities", grant.clone()),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("lacks capability 'allow_auth_modifications'"), "{e}");
    let caps = Value::from(serde_json::json!(["allow_auth_modifications"]));
    tp.call(IDENTITY, "set_user_capabilities", ("hvac", caps))
        .await
        .unwrap();
    tp.call("hvac", "relay", (IDENTITY, "set_user_capabilities", grant))
        .await
        .unwrap();
    assert!(
        tp.call("intruder", "emit", ("devices/actuators/rtu1",))
            .await
            .is_ok()
    );
    tp.shutdown().await;
}
