//! Python agents' log records.
//!
//! Launched with `_LAUNCHED_BY_PLATFORM` set and stderr a pipe, a VOLTTRON agent writes
//! each log record as one JSON object per stderr line (`volttron/client/logs.py`'s
//! `JsonFormatter`: the `LogRecord`'s attributes, among them `name`, `msg` (the formatted
//! message), `levelno`, `levelname`, `created`, `pathname`, `lineno` and, with an
//! exception, `exc_text`). [`parse_record`] reads such a line; `log_stderr_line` turns
//! it into a `tracing` event at the matching level (target
//! [`OUTPUT_TARGET`](super::process::OUTPUT_TARGET), fields `agent`, `logger`, `stream`,
//! `exc_text` when present, the message), and logs any other line as plain output.
//!
//! Parsing is lenient: a line that is not a JSON object, or lacks `msg`, is plain text;
//! a missing level is `INFO`; nothing panics. Python's `NaN` and `Infinity` (which strict
//! JSON rejects) make the line plain text.

/// One log record of a Python agent.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The logger's name (`listener.agent`).
    pub logger: String,
    /// The formatted message.
    pub msg: String,
    /// Python's numeric level (10 debug, 20 info, 30 warning, 40 error, 50 critical).
    pub levelno: i64,
    /// `levelname`.
    pub levelname: Option<String>,
    /// The time it was made (seconds since the epoch).
    pub created: Option<f64>,
    /// The source file.
    pub pathname: Option<String>,
    /// The source line.
    pub lineno: Option<i64>,
    /// The formatted exception, if one was logged.
    pub exc_text: Option<String>,
}

impl LogRecord {
    /// The `tracing` level of the record's `levelno`: 40 and above error, 30 warn, 20
    /// info, 10 debug, below that trace.
    pub fn level(&self) -> tracing::Level {
        match self.levelno {
            n if n >= 40 => tracing::Level::ERROR,
            n if n >= 30 => tracing::Level::WARN,
            n if n >= 20 => tracing::Level::INFO,
            n if n >= 10 => tracing::Level::DEBUG,
            _ => tracing::Level::TRACE,
        }
    }
}

/// Reads one stderr line as a JSON log record; `None` for anything else.
pub fn parse_record(line: &str) -> Option<LogRecord> {
    let line = line.trim();
    if !(line.starts_with('{') && line.ends_with('}')) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let object = value.as_object()?;
    let text = |key: &str| object.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let number = |key: &str| {
        object
            .get(key)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    };
    let msg = match object.get("msg")? {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let levelname = text("levelname");
    let levelno = number("levelno")
        .or_else(|| levelname.as_deref().and_then(level_from_name))
        .unwrap_or(20);
    Some(LogRecord {
        logger: text("name").unwrap_or_default(),
        msg,
        levelno,
        levelname,
        created: object.get("created").and_then(|v| v.as_f64()),
        pathname: text("pathname"),
        lineno: number("lineno"),
        exc_text: text("exc_text").filter(|t| !t.is_empty()),
    })
}

fn level_from_name(name: &str) -> Option<i64> {
    Some(match name.to_ascii_uppercase().as_str() {
        "CRITICAL" | "FATAL" => 50,
        "ERROR" => 40,
        "WARNING" | "WARN" => 30,
        "INFO" => 20,
        "DEBUG" => 10,
        _ => return None,
    })
}

/// Logs one stderr line of a Python agent: a record at its level, else plain output.
pub(crate) fn log_stderr_line(identity: &str, line: &str, plain: impl FnOnce(&str)) {
    let Some(record) = parse_record(line) else {
        plain(line);
        return;
    };
    let logger = record.logger.as_str();
    let exc_text = record.exc_text.as_deref();
    let msg = record.msg.as_str();
    const TARGET: &str = super::process::OUTPUT_TARGET;
    match record.level() {
        tracing::Level::ERROR => {
            tracing::error!(target: TARGET, agent = %identity, logger, stream = "stderr", exc_text, "{msg}")
        }
        tracing::Level::WARN => {
            tracing::warn!(target: TARGET, agent = %identity, logger, stream = "stderr", exc_text, "{msg}")
        }
        tracing::Level::INFO => {
            tracing::info!(target: TARGET, agent = %identity, logger, stream = "stderr", exc_text, "{msg}")
        }
        tracing::Level::DEBUG => {
            tracing::debug!(target: TARGET, agent = %identity, logger, stream = "stderr", exc_text, "{msg}")
        }
        tracing::Level::TRACE => {
            tracing::trace!(target: TARGET, agent = %identity, logger, stream = "stderr", exc_text, "{msg}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read() {
        let line = r#"{"name": "listener.agent", "msg": "Peer: pubsub, Sender: x", "args": [], "levelname": "INFO", "levelno": 20, "pathname": "/v/listener/agent.py", "filename": "agent.py", "module": "agent", "exc_text": null, "stack_info": null, "lineno": 95, "funcName": "on_match", "created": 1717000000.25, "msecs": 250.0, "relativeCreated": 1.5, "thread": 1, "threadName": "MainThread", "processName": "MainProcess", "process": 42}"#;
        let r = parse_record(line).unwrap();
        assert_eq!(r.logger, "listener.agent");
        assert_eq!(r.msg, "Peer: pubsub, Sender: x");
        assert_eq!((r.levelno, r.level()), (20, tracing::Level::INFO));
        assert_eq!(r.levelname.as_deref(), Some("INFO"));
        assert_eq!(r.created, Some(1717000000.25));
        assert_eq!(r.pathname.as_deref(), Some("/v/listener/agent.py"));
        assert_eq!(r.lineno, Some(95));
        assert_eq!(r.exc_text, None);
    }

    #[test]
    fn levels_and_exceptions() {
        let r = parse_record(r#"{"name":"a","msg":"boom","levelno":50,"exc_text":"Traceback (most recent call last):\n  x\nValueError: y"}"#)
            .unwrap();
        assert_eq!(r.level(), tracing::Level::ERROR);
        assert!(r.exc_text.unwrap().starts_with("Traceback"));
        for (no, level) in [
            (40, tracing::Level::ERROR),
            (30, tracing::Level::WARN),
            (25, tracing::Level::INFO),
            (10, tracing::Level::DEBUG),
            (5, tracing::Level::TRACE),
        ] {
            let r = parse_record(&format!(r#"{{"msg":"m","levelno":{no}}}"#)).unwrap();
            assert_eq!(r.level(), level, "{no}");
        }
        // No levelno: from levelname, else INFO.
        let r = parse_record(r#"{"msg":"m","levelname":"warning"}"#).unwrap();
        assert_eq!(r.level(), tracing::Level::WARN);
        let r = parse_record(r#"{"msg":"m"}"#).unwrap();
        assert_eq!(r.level(), tracing::Level::INFO);
        // A non-string msg is shown as JSON; a float levelno counts.
        let r = parse_record(r#"{"msg":{"a":1},"levelno":40.0}"#).unwrap();
        assert_eq!((r.msg.as_str(), r.levelno), (r#"{"a":1}"#, 40));
    }

    #[test]
    fn anything_else_is_plain_text() {
        for line in [
            "",
            "plain text",
            "Traceback (most recent call last):",
            "{not json}",
            "{\"msg\": \"x\", \"created\": NaN}",
            "[1, 2]",
            "{\"name\": \"no message\"}",
            "{\"msg\": \"truncated",
            "{\u{fffd}}",
        ] {
            assert_eq!(parse_record(line), None, "{line:?}");
            let mut plain = None;
            log_stderr_line("a", line, |l| plain = Some(l.to_owned()));
            assert_eq!(plain.as_deref(), Some(line));
        }
        let mut plain = false;
        log_stderr_line("a", r#"{"msg":"x","levelno":20}"#, |_| plain = true);
        assert!(!plain);
    }
}
