//! A security audit of a platform home (feature `audit`): `vctl audit`, and the
//! `platform.audit` service that answers the same report over RPC and publishes it on a
//! cron schedule.
//!
//! [`run`] reads the home (the config, key and rules files, the installed agents) and
//! returns an [`AuditReport`]: each [`Finding`] has a [`Severity`], the evidence (paths,
//! modes, addresses, keys) and a fix that works as written. Nothing is changed.
//!
//! | check (`Finding::check`) | what is read | worst severity | file |
//! |--------------------------|--------------|----------------|------|
//! | `home-mode` | the home directory's mode | critical (others may write) | `checks/files.rs` |
//! | `file-mode` | `keystore.json`, `credentials_store/`, `web-secret-key`, `web-users.json`, `web-ssl-key`, `authz.json`, `auth.json`, `known_hosts`, `config` | critical | `checks/files.rs` |
//! | `auth-disabled` | `auth = false` / `auth-enabled = False` / `auth-disabled` in the config, or `--no-auth` (the service sees it) | critical with a non-loopback listener | `checks/exposure.rs` |
//! | `tcp-listener` | `vip-address` / `bridge-address` `tcp://` beyond loopback | info (always encrypted: CURVE, Noise XX) | `checks/exposure.rs` |
//! | `web-tls` | `bind-web-address = http://` | high beyond loopback | `checks/exposure.rs` |
//! | `agent-isolation` | `agent-isolation-mode` off | medium with agents installed | `checks/agents.rs` |
//! | `resource-contract` | installed agents without `exereqs.json` | low | `checks/agents.rs` |
//! | `pending-key` | the running platform's pending keys | medium | `checks/pending.rs` |
//! | `authz-wildcard` | `authz.json`, this project's format and VOLTTRON 11's | critical | `checks/authz.rs` |
//! | `known-hosts` | `known_hosts` entries for this platform's own addresses | high | `checks/known_hosts.rs` |
//!
//! | entry point | pending keys | auth off by `--no-auth` |
//! |-------------|--------------|-------------------------|
//! | [`run`] | skipped (only a running platform knows) | not seen (only the config) |
//! | [`run_with`] + [`Live`] | checked | checked |
//! | [`AuditService`] (`platform.audit.run`, the schedule) | checked, from the authority | checked |
//! | `vctl audit` ([`answer_or_run`]) | checked when a platform runs (it asks `platform.audit.run`) | likewise |
//!
//! [`AuditReport::exceeds`] decides `vctl audit`'s exit code (`--fail-at`, default high):
//! 0 clean, [`FINDINGS_EXIT_CODE`] (3) for findings at or above it, 1 when the audit could
//! not run, 2 for bad arguments.

/// `vctl audit`'s exit code when a finding is at or above `--fail-at` (1 is vctl's own
/// failure: the audit could not run; 2 clap's, for bad arguments).
pub const FINDINGS_EXIT_CODE: i32 = 3;

mod checks;
mod report;
mod service;

pub use report::{AuditReport, Check, FailAt, Finding, Severity, SkippedCheck, UnknownSeverity};
pub use service::{AUDIT_TOPIC, AuditError, AuditService, IDENTITY, SCHEDULE_KEY};

use crate::auth::pending::PendingPeer;
use crate::home::VolttronHome;
use crate::home::config::PlatformConfig;

/// What only a running platform knows, for [`run_with`].
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Whether the platform authenticates peers (false with `--no-auth`).
    pub auth: bool,
    /// Its pending keys (`platform.auth.get_authorization_pending`).
    pub pending: Vec<PendingPeer>,
}

/// Audits `home` from its files alone (pending keys skipped). Blocking: it reads files.
pub fn run(home: &VolttronHome) -> AuditReport {
    audit(home, None)
}

/// Audits `home` and what the running platform knows. Blocking: it reads files.
pub fn run_with(home: &VolttronHome, live: &Live) -> AuditReport {
    audit(home, Some(live))
}

/// `vctl audit`'s report: the running platform's answer to `platform.audit.run` (which
/// sees its pending keys and `--no-auth`), or, without one, [`run`] on the files.
/// Blocking: it may read files.
pub fn answer_or_run(home: &VolttronHome, answer: Option<crate::Value>) -> AuditReport {
    match answer.map(crate::from_value::<AuditReport>) {
        Some(Ok(report)) => report,
        Some(Err(e)) => {
            let mut report = run(home);
            for s in report.skipped.iter_mut().filter(|s| s.check == Check::PendingKey) {
                s.reason = format!("the platform's report does not parse: {e}");
            }
            report
        }
        None => run(home),
    }
}

fn audit(home: &VolttronHome, live: Option<&Live>) -> AuditReport {
    let dir = home.path();
    let mut findings = Vec::new();
    let mut skipped = Vec::new();
    let config = match PlatformConfig::load(home.config_file()) {
        Ok(c) => Some(c),
        Err(e) => {
            for check in [
                Check::AuthDisabled,
                Check::TcpListener,
                Check::WebTls,
                Check::AgentIsolation,
                Check::KnownHosts,
            ] {
                skipped.push(SkippedCheck {
                    check,
                    reason: format!("the config does not load: {e}"),
                });
            }
            None
        }
    };
    checks::files::check(dir, config.as_ref(), &mut findings);
    if let Some(config) = &config {
        let auth = config.auth.unwrap_or(true) && live.is_none_or(|l| l.auth);
        checks::exposure::check(config, auth, &mut findings);
        checks::known_hosts::check(dir, config, &mut findings);
    }
    match crate::home::install::list(home) {
        Ok(agents) => {
            if let Some(config) = &config {
                checks::agents::check_isolation(config, &agents, &mut findings);
            }
            checks::agents::check_contracts(&agents, &mut findings);
        }
        Err(e) => {
            skipped.extend(
                [Check::AgentIsolation, Check::ResourceContract].map(|check| SkippedCheck {
                    check,
                    reason: format!("the installed agents do not load: {e}"),
                }),
            )
        }
    }
    checks::authz::check(dir, &mut findings);
    match live {
        Some(live) => checks::pending::check(&live.pending, &mut findings),
        None => skipped.push(SkippedCheck {
            check: Check::PendingKey,
            reason: "only a running platform knows its pending keys (`vctl auth pending`)".into(),
        }),
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.check.cmp(&b.check)));
    skipped.sort_by_key(|s| s.check);
    skipped.dedup_by_key(|s| s.check);
    AuditReport {
        home: dir.to_owned(),
        generated_at: chrono::Utc::now(),
        findings,
        skipped,
    }
}
