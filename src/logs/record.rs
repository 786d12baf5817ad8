//! Reading a line of the platform's log back: [`LogLine::parse`] understands both formats
//! the platform writes, for `vctl log`'s filters.
//!
//! | line | level | agent |
//! |------|-------|-------|
//! | a JSON object (`--log-format json`) | its `level` | its `agent` field |
//! | `TIMESTAMP LEVEL ...` (the human format) | the second word | the first `agent=ID` (a span's `agent{agent=ID}:` or a field `agent=ID`; quotes dropped) |
//! | anything else | none: it continues the record above it (a message's later lines) | |
//!
//! Levels compare by severity: `trace < debug < info < warn < error` ([`LogLevel`]);
//! Python's `WARNING` and `CRITICAL` read as `warn` and `error`.

use std::str::FromStr;

/// A record's severity, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `TRACE`.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARN` (`WARNING`).
    Warn,
    /// `ERROR` (`CRITICAL`, `FATAL`).
    Error,
}

impl FromStr for LogLevel {
    type Err = ();

    fn from_str(text: &str) -> Result<LogLevel, ()> {
        match text.trim().to_ascii_lowercase().as_str() {
            "trace" => Ok(LogLevel::Trace),
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "error" | "critical" | "fatal" => Ok(LogLevel::Error),
            _ => Err(()),
        }
    }
}

/// What the filters need of one record's first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The record's level.
    pub level: LogLevel,
    /// The agent that logged it, if any.
    pub agent: Option<String>,
}

impl LogLine {
    /// Reads `line`; `None` when it does not start a record (see the module docs).
    pub fn parse(line: &str) -> Option<LogLine> {
        let trimmed = line.trim();
        if trimmed.starts_with('{') {
            let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
            let level = value.get("level")?.as_str()?.parse().ok()?;
            let agent = value.get("agent").and_then(|a| a.as_str()).map(str::to_owned);
            return Some(LogLine { level, agent });
        }
        let mut words = trimmed.splitn(3, char::is_whitespace);
        let timestamp = words.next()?;
        if !(timestamp.starts_with(|c: char| c.is_ascii_digit()) && timestamp.contains('T')) {
            return None;
        }
        let rest = words.next().map(|w| (w, words.next().unwrap_or("")));
        // The human format pads the level (`  INFO`): skip empty words.
        let (level, rest) = match rest? {
            ("", rest) => {
                let rest = rest.trim_start();
                let (level, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                (level, rest)
            }
            pair => pair,
        };
        Some(LogLine {
            level: level.parse().ok()?,
            agent: human_agent(rest),
        })
    }

    /// Whether the record passes `vctl log`'s filters.
    pub fn matches(&self, agent: Option<&str>, level: LogLevel) -> bool {
        self.level >= level && agent.is_none_or(|a| self.agent.as_deref() == Some(a))
    }
}

/// The first `agent=ID` of a human line's text.
fn human_agent(text: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = text[from..].find("agent=") {
        let start = from + at;
        from = start + "agent=".len();
        let boundary = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == '{' || c == ',');
        if !boundary {
            continue;
        }
        let value = &text[from..];
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or(""),
            None => value
                .split(|c: char| c.is_whitespace() || c == '}' || c == ',')
                .next()
                .unwrap_or(""),
        };
        let value = value.trim_end_matches(':');
        if !value.is_empty() {
            return Some(value.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: LogLevel, agent: Option<&str>) -> Option<LogLine> {
        Some(LogLine {
            level,
            agent: agent.map(str::to_owned),
        })
    }

    #[test]
    fn json_lines() {
        assert_eq!(
            LogLine::parse(
                r#"{"timestamp":"2026-01-01T00:00:00Z","level":"WARN","agent":"m.1","message":"x"}"#
            ),
            line(LogLevel::Warn, Some("m.1"))
        );
        assert_eq!(
            LogLine::parse(r#"{"timestamp":"t","level":"INFO","message":"x"}"#),
            line(LogLevel::Info, None)
        );
        assert_eq!(LogLine::parse(r#"{"message":"no level"}"#), None);
        assert_eq!(LogLine::parse("{not json"), None);
    }

    #[test]
    fn human_lines() {
        assert_eq!(
            LogLine::parse(
                "2026-12-07T03:21:24.123456Z  INFO agent{agent=control}: volttron::services::control: shutdown"
            ),
            line(LogLevel::Info, Some("control"))
        );
        assert_eq!(
            LogLine::parse(
                "2026-12-07T03:21:24.123456Z  WARN volttron::control::output: ERROR: boom agent=s.1 stream=\"stderr\""
            ),
            line(LogLevel::Warn, Some("s.1"))
        );
        assert_eq!(
            LogLine::parse(
                "2026-12-07T03:21:24.123456Z ERROR volttron::agent::host: agent panicked agent=\"a b\""
            ),
            line(LogLevel::Error, Some("a b"))
        );
        assert_eq!(
            LogLine::parse("2026-12-07T03:21:24Z DEBUG x: no agent here; subagent=x"),
            line(LogLevel::Debug, None)
        );
        assert_eq!(LogLine::parse("    at a traceback line"), None);
        assert_eq!(LogLine::parse(""), None);
    }

    #[test]
    fn filters() {
        let l = line(LogLevel::Warn, Some("a")).unwrap();
        assert!(l.matches(None, LogLevel::Info));
        assert!(l.matches(Some("a"), LogLevel::Warn));
        assert!(!l.matches(Some("b"), LogLevel::Trace));
        assert!(!l.matches(None, LogLevel::Error));
        assert_eq!("WARNING".parse(), Ok(LogLevel::Warn));
        assert_eq!("critical".parse(), Ok(LogLevel::Error));
    }
}
