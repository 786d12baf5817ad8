//! `platform.profile` requires the `profile` capability (authz.json): a caller without it
//! is refused with `RpcError::Unauthorized` before anything samples; one with it gets the
//! profile; `vctl` (the platform's own `control.connection`) needs none.

mod common;

use common::Home;
use volttron::RpcError;
use volttron::profile::{IDENTITY, METHOD, Profile};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_needs_the_profile_capability() {
    let home = Home::with_config("");
    home.write(
        "authz.json",
        r#"{"users": {"operator": {"capabilities": ["profile"]}, "intruder": {"capabilities": ["other"]}}}"#,
    );
    let platform = home.start_platform();

    let intruder = home.connect_as("intruder").await;
    match intruder.call(IDENTITY, METHOD, (1,)).await {
        Err(e @ RpcError::Unauthorized { .. }) => {
            assert_eq!(e.code(), Some(-32001));
            assert!(e.to_string().contains("lacks capability 'profile'"), "{e}");
        }
        other => panic!("a caller without `profile` was not refused: {other:?}"),
    }
    // The same caller may not go around the service to an agent process either: the
    // router refuses unknown agents, and an agent process answers the service only
    // (tests/profile_agent_process.rs).
    intruder.close().await;

    let operator = home.connect_as("operator").await;
    let profile: Profile = operator
        .call(IDENTITY, METHOD, (1,))
        .timeout(std::time::Duration::from_secs(30))
        .returning()
        .await
        .unwrap();
    assert_eq!((profile.source.as_str(), profile.seconds), ("platform", 1));
    assert_eq!(profile.pid, platform.0.id());
    // Bad durations from a caller that may profile: refused with the rule.
    for bad in [
        serde_json::json!(0),
        serde_json::json!(601),
        serde_json::json!(1.5),
    ] {
        let e = operator
            .call(IDENTITY, METHOD, (volttron::Value::from(bad.clone()),))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("from 1 to 600"), "{bad}: {e}");
    }
    operator.close().await;
    home.ok(&["shutdown", "--platform"]);
    common::platform_wait(platform);
}
