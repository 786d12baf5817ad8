//! `vctl federation`: the commands, and what they print, over `platform.federation`'s RPCs.
//!
//! | command | RPC | prints |
//! |---------|-----|--------|
//! | `vctl federation status` | `status` | the broker link, the backlog, and a table of the platforms seen |
//! | `vctl federation flush` | `flush` | how many publications wait in the backlog |

use crate::mqtt::agent::IDENTITY;
use crate::remote::Connection;

/// The `vctl federation` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum FederationCommand {
    /// The broker link, the backlog and the other platforms.
    Status,
    /// Wait until everything published is sent or durable in the backlog.
    Flush,
}

/// Runs a command against the platform: its JSON answer and the text for people.
pub async fn run(
    conn: &Connection,
    command: FederationCommand,
) -> Result<(serde_json::Value, String), String> {
    match command {
        FederationCommand::Status => {
            let v = call(conn, "status").await?;
            let text = status_text(&v);
            Ok((v, text))
        }
        FederationCommand::Flush => {
            let v = call(conn, "flush").await?;
            let text = format!("backlogged: {}", v["backlogged"]);
            Ok((v, text))
        }
    }
}

async fn call(conn: &Connection, method: &str) -> Result<serde_json::Value, String> {
    conn.call(IDENTITY, method, ())
        .await
        .map(serde_json::Value::from)
        .map_err(|e| match e {
            crate::RpcError::UnknownPeer { .. } => {
                "this platform is not federated (no [federation] section in its config)".to_owned()
            }
            e => format!("{IDENTITY}.{method}: {e}"),
        })
}

/// `status`'s answer as text.
pub fn status_text(v: &serde_json::Value) -> String {
    let mut out = format!(
        "instance {}  broker {}  {}\nbacklog: {} messages, {} bytes, oldest {:.0} s, {} dropped\n",
        v["instance"].as_str().unwrap_or("?"),
        v["broker"].as_str().unwrap_or("?"),
        if v["connected"].as_bool() == Some(true) {
            "connected"
        } else {
            "NOT CONNECTED"
        },
        v["backlog"]["messages"],
        v["backlog"]["bytes"],
        v["backlog"]["oldest_age_seconds"].as_f64().unwrap_or(0.0),
        v["backlog"]["dropped"],
    );
    out.push_str(&format!(
        "{:<24} {:<8} {:<26} {}\n",
        "PLATFORM", "STATE", "SINCE", "EXPORTS"
    ));
    for p in v["platforms"].as_array().into_iter().flatten() {
        let exports: Vec<&str> = p["exports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str())
            .collect();
        out.push_str(&format!(
            "{:<24} {:<8} {:<26} {}\n",
            p["name"].as_str().unwrap_or("?"),
            p["state"].as_str().unwrap_or("?"),
            p["since"].as_str().unwrap_or("?"),
            exports.join(",")
        ));
    }
    out.trim_end().to_owned()
}
