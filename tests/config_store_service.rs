//! The `config.store` service: VOLTTRON's RPCs over per-agent stores persisted under the
//! platform home, agents reading and writing their own store, bad input refused with the
//! store unchanged.

use volttron::config_store::ConfigType;
use volttron::prelude::*;
use volttron::testing::TestPlatform;

async fn platform() -> TestPlatform {
    TestPlatform::builder().services(true).start().await
}

/// Uses its own store.
struct Tenant;

#[volttron::agent]
impl Tenant {
    #[rpc]
    async fn remember(&mut self, ctx: &AgentContext, key: String, value: Value) -> Result<(), RpcError> {
        ctx.config().set(&key, &value).await
    }

    #[rpc]
    async fn recall(&mut self, ctx: &AgentContext, key: String) -> Result<Value, RpcError> {
        ctx.config().get(&key).await
    }

    #[rpc]
    async fn keys(&mut self, ctx: &AgentContext) -> Result<Vec<String>, RpcError> {
        ctx.config().list().await
    }

    #[rpc]
    async fn raw(&mut self, ctx: &AgentContext, key: String) -> Result<String, RpcError> {
        ctx.config().get_raw(&key).await
    }

    #[rpc]
    async fn forget(&mut self, ctx: &AgentContext, key: String) -> Result<(), RpcError> {
        ctx.config().delete(&key).await
    }

    #[rpc]
    async fn points(&mut self, ctx: &AgentContext, csv: String) -> Result<(), RpcError> {
        ctx.config().set_raw("points", &csv, ConfigType::Csv).await
    }
}

#[volttron::test]
async fn volttron_rpcs_set_get_list_delete() {
    let tp = platform().await;
    let set = |name: &'static str, raw: &'static str, ty: &'static str| {
        tp.call("config.store", "set_config", ("listener", name, raw, ty))
    };
    set(
        "config",
        r#"{"interval": 5, /* seconds */ "points": "config://points"}"#,
        "json",
    )
    .await
    .unwrap();
    set("points", "name,unit\nzat,degF\n", "csv").await.unwrap();
    set("note", "plain text", "raw").await.unwrap();

    let raw = tp
        .call("config.store", "get_config", ("listener", "CONFIG"))
        .await
        .unwrap();
    assert!(
        raw.as_str().unwrap().contains("/* seconds */"),
        "raw by default: {raw}"
    );
    let parsed = tp
        .call("config.store", "get_config", ("listener", "config", false))
        .await
        .unwrap();
    assert_eq!(parsed["interval"], Value::from(5));
    assert_eq!(parsed["points"][0]["unit"], Value::from("degF"));

    let names: Vec<String> = tp
        .call("config.store", "list_configs", ("listener",))
        .returning()
        .await
        .unwrap();
    assert_eq!(names, ["config", "note", "points"]);
    let stores: Vec<String> = tp
        .call("config.store", "list_stores", ())
        .returning()
        .await
        .unwrap();
    assert_eq!(stores, ["listener"]);
    let meta = tp
        .call("config.store", "get_metadata", ("listener", "points"))
        .await
        .unwrap();
    assert_eq!(meta["type"], Value::from("csv"));
    assert_eq!(meta["modified"], Value::from("2024-01-01T00:00:00.000000+00:00"));

    // Persisted in VOLTTRON's format under the home.
    let file = tp.home_dir().join("configuration_store/listener.store");
    let on_disk: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(on_disk["note"]["type"], "raw");
    assert_eq!(on_disk["note"]["data"], "plain text");

    tp.call("config.store", "delete_config", ("listener", "note"))
        .await
        .unwrap();
    let names: Vec<String> = tp
        .call("config.store", "list_configs", ("listener",))
        .returning()
        .await
        .unwrap();
    assert_eq!(names, ["config", "points"]);
    tp.call("config.store", "delete_store", ("listener",))
        .await
        .unwrap();
    let stores: Vec<String> = tp
        .call("config.store", "list_stores", ())
        .returning()
        .await
        .unwrap();
    assert!(stores.is_empty());
    tp.shutdown().await;
}

#[volttron::test]
async fn bad_input_is_refused_and_the_store_is_unchanged() {
    let tp = platform().await;
    tp.call(
        "config.store",
        "set_config",
        ("meter", "a", r#"{"x": 1}"#, "json"),
    )
    .await
    .unwrap();
    let file = tp.home_dir().join("configuration_store/meter.store");
    let before = std::fs::read(&file).unwrap();
    for (name, raw, ty) in [
        ("b", "{not json", "json"),
        ("b", "42", "json"),
        ("  ", "{}", "json"),
        ("b", "{}", "yaml"),
        ("a", r#"{"self": "config://a"}"#, "json"),
    ] {
        let e = tp
            .call("config.store", "set_config", ("meter", name, raw, ty))
            .await
            .unwrap_err();
        assert!(matches!(e, RpcError::Remote { .. }), "{name} {ty}: {e:?}");
    }
    let e = tp
        .call("config.store", "set_config", ("bad id", "a", "{}", "json"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("identity"), "{e}");
    assert!(
        tp.call("config.store", "get_config", ("meter", "zzz"))
            .await
            .is_err()
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the store on disk is unchanged"
    );
    tp.shutdown().await;
}

#[volttron::test]
async fn agents_read_and_write_their_own_store() {
    let tp = platform().await;
    tp.spawn("tenant", Tenant).await.unwrap();
    tp.call(
        "tenant",
        "remember",
        ("setpoints", serde_json::json!({"zone1": 21.5})),
    )
    .await
    .unwrap();
    tp.call("tenant", "points", ("name,unit\nzat,degF\n",))
        .await
        .unwrap();
    let back = tp.call("tenant", "recall", ("SETPOINTS",)).await.unwrap();
    assert_eq!(back["zone1"], Value::from(21.5));
    let keys = tp.call("tenant", "keys", ()).await.unwrap();
    assert_eq!(keys, Value::from(vec!["points", "setpoints"]));
    // The store is the agent's own, under its identity.
    let raw = tp
        .call("config.store", "get_config", ("tenant", "setpoints"))
        .await
        .unwrap();
    assert_eq!(raw, Value::from(r#"{"zone1":21.5}"#));
    let csv = tp.call("tenant", "raw", ("points",)).await.unwrap();
    assert_eq!(csv, Value::from("name,unit\nzat,degF\n"));
    tp.call("tenant", "forget", ("points",)).await.unwrap();
    let keys = tp.call("tenant", "keys", ()).await.unwrap();
    assert_eq!(keys, Value::from(vec!["setpoints"]));
    tp.shutdown().await;
}

#[volttron::test]
async fn a_store_survives_a_platform_restart() {
    let tp = platform().await;
    tp.call(
        "config.store",
        "set_config",
        ("keeper", "config", r#"{"on": true}"#, "json"),
    )
    .await
    .unwrap();
    let home = tp.home_dir().to_path_buf();
    tp.shutdown().await;
    let again = Platform::builder().home(&home).start().await.unwrap();
    let v = again
        .call("config.store", "get_config", ("keeper", "config", false))
        .await
        .unwrap();
    assert_eq!(v["on"], Value::Bool(true));
    again.shutdown().await;
}
