//! The audit's typed report: [`Severity`], [`Finding`], [`AuditReport`], and its table.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How bad a finding is; ordered, `Info` lowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing to fix.
    Info,
    /// A hardening step not taken.
    Low,
    /// A weakness an attacker with some foothold can use.
    Medium,
    /// A weakness that exposes secrets or control to others.
    High,
    /// Anyone who can reach the platform or its files controls it.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// `"info"`, `"low"`, `"medium"`, `"high"` or `"critical"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A text that names no [`Severity`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected info, low, medium, high or critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    /// Case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// Which check produced a finding (see the module docs' table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The home directory's mode.
    HomeMode,
    /// A key, secret or rules file's mode (or a directory holding them).
    FileMode,
    /// Authentication and authorization off.
    AuthDisabled,
    /// A VIP or bridge TCP listener.
    TcpListener,
    /// The web service without TLS.
    WebTls,
    /// Agents run as the platform's user.
    AgentIsolation,
    /// An installed agent without a resource contract.
    ResourceContract,
    /// A key waiting for approval.
    PendingKey,
    /// `authz.json` grants by wildcard, or does not load.
    AuthzWildcard,
    /// `known_hosts` disagrees with this platform's key, or does not load.
    KnownHosts,
}

impl Check {
    /// The check's name, as in JSON (`home-mode`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Check::HomeMode => "home-mode",
            Check::FileMode => "file-mode",
            Check::AuthDisabled => "auth-disabled",
            Check::TcpListener => "tcp-listener",
            Check::WebTls => "web-tls",
            Check::AgentIsolation => "agent-isolation",
            Check::ResourceContract => "resource-contract",
            Check::PendingKey => "pending-key",
            Check::AuthzWildcard => "authz-wildcard",
            Check::KnownHosts => "known-hosts",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One weakness found: what, how bad, what shows it, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The check that found it.
    pub check: Check,
    /// How bad it is.
    pub severity: Severity,
    /// What was seen (paths, modes, keys, addresses).
    pub evidence: String,
    /// What to do about it.
    pub fix: String,
}

impl Finding {
    /// A finding.
    pub fn new(
        check: Check,
        severity: Severity,
        evidence: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            check,
            severity,
            evidence: evidence.into(),
            fix: fix.into(),
        }
    }
}

/// A check that could not run here, and why (such as pending keys, which only a running
/// platform knows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedCheck {
    /// The check.
    pub check: Check,
    /// Why it did not run.
    pub reason: String,
}

/// Findings at or above the severity an audit was to fail at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit found {count} finding(s) at or above {severity}")]
pub struct FailAt {
    /// How many.
    pub count: usize,
    /// The severity asked for.
    pub severity: Severity,
}

/// The result of one audit of a home: findings, worst first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The home audited.
    pub home: PathBuf,
    /// When the audit ran.
    pub generated_at: DateTime<Utc>,
    /// What was found, worst first (then by check).
    pub findings: Vec<Finding>,
    /// Checks that did not run.
    pub skipped: Vec<SkippedCheck>,
}

impl AuditReport {
    /// The worst severity found, if anything was.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Whether a finding is at `severity` or worse (`vctl audit --fail-at`).
    pub fn exceeds(&self, severity: Severity) -> bool {
        self.worst().is_some_and(|w| w >= severity)
    }

    /// `Err` when a finding is at `severity` or worse: `vctl audit --fail-at`'s exit code.
    pub fn fail_at(&self, severity: Severity) -> Result<(), FailAt> {
        match self.at_or_above(severity).count() {
            0 => Ok(()),
            count => Err(FailAt { count, severity }),
        }
    }

    /// The findings at `severity` or worse.
    pub fn at_or_above(&self, severity: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity >= severity)
    }

    /// The report as a JSON-shaped [`Value`](crate::Value) (the RPC's answer, the
    /// publication's message).
    pub fn to_value(&self) -> crate::Value {
        // The report holds strings, enums and a timestamp only: it always converts.
        crate::to_value(self).unwrap_or_default()
    }

    /// A readable table: one block per finding, then the skipped checks and a summary.
    pub fn to_table(&self) -> String {
        use fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Security audit of {} ({})",
            self.home.display(),
            self.generated_at.to_rfc3339()
        );
        let width = self
            .findings
            .iter()
            .map(|f| f.check.as_str().len())
            .max()
            .unwrap_or(5)
            .max(5);
        if !self.findings.is_empty() {
            let _ = writeln!(out, "\n{:<8}  {:<width$}  EVIDENCE / FIX", "SEVERITY", "CHECK");
        }
        for f in &self.findings {
            let _ = writeln!(
                out,
                "{:<8}  {:<width$}  {}",
                f.severity.as_str().to_uppercase(),
                f.check,
                f.evidence
            );
            let _ = writeln!(out, "{:<8}  {:<width$}  fix: {}", "", "", f.fix);
        }
        for s in &self.skipped {
            let _ = writeln!(out, "\nskipped {}: {}", s.check, s.reason);
        }
        let counts: Vec<String> = Severity::ALL
            .iter()
            .rev()
            .map(|s| (s, self.findings.iter().filter(|f| f.severity == *s).count()))
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        if counts.is_empty() {
            let _ = writeln!(out, "\nno findings");
        } else {
            let _ = writeln!(out, "\n{} findings: {}", self.findings.len(), counts.join(", "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Info < Severity::Low && Severity::High < Severity::Critical);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("severe".parse::<Severity>().is_err());
        assert_eq!(serde_json::to_value(Severity::Medium).unwrap(), "medium");
        assert_eq!(
            serde_json::to_value(Check::HomeMode).unwrap(),
            Check::HomeMode.as_str()
        );
    }
}
