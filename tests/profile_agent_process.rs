//! `vctl profile --agent ID` of a bridged Rust agent process: the platform asks the
//! process, which profiles itself; its busy function is in the stacks. An agent inside
//! the platform, an unknown peer, and a direct request that bypasses the platform are
//! refused.

mod common;

use common::Home;
use volttron::RpcError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_process_profiles_itself_for_the_platform_only() {
    let home = Home::with_config("");
    let platform = home.start_platform();
    let agent = home.install_started(&common::example_binary("profiled_agent"), "busy");
    let out = home.temp_dir().join("busy.folded");
    let printed = home.ok(&[
        "profile",
        "--agent",
        "busy",
        "--seconds",
        "2",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        printed.contains(&format!("of busy (pid {})", common::pid(&agent).unwrap())),
        "{printed}"
    );
    let folded = std::fs::read_to_string(&out).unwrap();
    let busy: Vec<&str> = folded
        .lines()
        .filter(|l| l.contains("profiled_agent::spin_checksum"))
        .collect();
    assert!(
        !busy.is_empty(),
        "spin_checksum is not in the agent's profile:\n{folded}"
    );
    // Walked from the agent thread's start, through its periodic handler.
    assert!(
        busy.iter().any(|l| l.contains("thread_start")
            && l.contains("<profiled_agent::Busy as volttron::agent::Agent>::__dispatch;work;")),
        "{}",
        busy.join("\n")
    );
    // Not the platform's process: none of its services' stacks.
    assert!(!folded.contains("volttron::bridge::server"), "{folded}");

    // An agent inside the platform, and no such peer: clear refusals.
    let e = home.fails(&[
        "profile",
        "--agent",
        "platform.health",
        "--seconds",
        "1",
        "-o",
        "x.folded",
    ]);
    assert!(
        e.contains("'platform.health' cannot be profiled") && e.contains("leave out --agent"),
        "{e}"
    );
    let e = home.fails(&["profile", "--agent", "nobody", "--seconds", "1", "-o", "x.folded"]);
    assert!(e.contains("'nobody' cannot be profiled: no such peer"), "{e}");

    // Asked directly by another agent, the process refuses: only the platform asks.
    let conn = home.connect_as("snoop").await;
    match conn.call("busy", volttron::profile::AGENT_METHOD, (1,)).await {
        Err(RpcError::Unauthorized { message, .. }) => {
            assert!(
                message.contains("platform.profile") && message.contains("'snoop'"),
                "{message}"
            )
        }
        other => panic!("a direct profile request was not refused: {other:?}"),
    }
    conn.close().await;
    home.ok(&["shutdown", "--platform"]);
    common::platform_wait(platform);
}
