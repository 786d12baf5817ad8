//! `vctl alerts`: the commands, and what they print, over `platform.alerts`'s RPCs.
//!
//! | command | RPC | prints |
//! |---------|-----|--------|
//! | `vctl alerts list` | `list` | a table of alerts, then the silences in force and a refused rules config |
//! | `vctl alerts ack <id>` | `ack` | `acknowledged <id>` |
//! | `vctl alerts silence <glob> --for <duration>` | `silence` | the silence and when it ends |

use std::time::Duration;

use crate::alerts::book::{AlertView, Silence};
use crate::alerts::service::IDENTITY;
use crate::remote::Connection;

/// The `vctl alerts` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AlertsCommand {
    /// Every alert (firing, flapping, recently resolved) and the silences in force.
    List,
    /// Acknowledge a firing alert: it is no longer repeated.
    Ack {
        /// The alert's id, `origin/key` (as `list` shows it).
        id: String,
    },
    /// Silence the alerts whose id matches a glob (`hvac.*/*`, `*/heartbeat`).
    Silence {
        /// The glob over alert ids.
        pattern: String,
        /// How long: 90s, 10m, 1h 30m, 2d.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_for)]
        duration: Duration,
    },
}

fn parse_for(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("a silence lasts longer than 0 s".into()),
        Err(e) => Err(format!("{e} (write e.g. 90s, 10m, 1h 30m)")),
    }
}

/// Runs a command against the platform: its JSON answer and the text for people.
pub async fn run(conn: &Connection, command: AlertsCommand) -> Result<(serde_json::Value, String), String> {
    match command {
        AlertsCommand::List => {
            let answer = conn.call_json(IDENTITY, "list", ()).await?;
            let text = list_text(&answer)?;
            Ok((answer, text))
        }
        AlertsCommand::Ack { id } => {
            conn.call_json(IDENTITY, "ack", (id.as_str(),)).await?;
            Ok((
                serde_json::json!({"acknowledged": id}),
                format!("acknowledged {id}"),
            ))
        }
        AlertsCommand::Silence { pattern, duration } => {
            let answer = conn
                .call_json(IDENTITY, "silence", (pattern.as_str(), duration.as_secs_f64()))
                .await?;
            let silence: Silence = serde_json::from_value(answer.clone()).map_err(|e| e.to_string())?;
            let text = format!(
                "silenced {} until {}",
                silence.pattern,
                silence.until.to_rfc3339()
            );
            Ok((answer, text))
        }
    }
}

/// The table of `vctl alerts list`.
fn list_text(answer: &serde_json::Value) -> Result<String, String> {
    let alerts: Vec<AlertView> =
        serde_json::from_value(answer["alerts"].clone()).map_err(|e| format!("the alert list: {e}"))?;
    let silences: Vec<Silence> =
        serde_json::from_value(answer["silences"].clone()).map_err(|e| format!("the silences: {e}"))?;
    let header = [
        "ID",
        "STATUS",
        "SEVERITY",
        "COUNT",
        "LAST SEEN",
        "ACK",
        "SILENCED",
        "CONTEXT",
    ];
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.status.to_string(),
                a.severity.to_string(),
                a.count.to_string(),
                a.last_seen.to_rfc3339(),
                a.ack.as_ref().map(|k| k.by.clone()).unwrap_or_default(),
                if a.silenced { "yes".into() } else { String::new() },
                match &a.context {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            ]
        })
        .collect();
    let mut out = table(&header, &rows);
    for s in &silences {
        out.push_str(&format!(
            "\nsilence {} until {} (by {})",
            s.pattern,
            s.until.to_rfc3339(),
            s.by
        ));
    }
    if let Some(error) = answer["rules"]["error"].as_str() {
        out.push_str(&format!(
            "\nrules refused (the previous ones are in force): {error}"
        ));
    }
    Ok(out)
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut lines = vec![line(header.to_vec())];
    lines.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    lines.join("\n")
}
