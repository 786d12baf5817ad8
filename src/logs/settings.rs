//! What the platform's logging is set to: the keys of `$VOLTTRON_HOME/config`'s
//! `[volttron]` section (and the `volttron` flags of the same names, which override them).
//!
//! | key | flag | value | default |
//! |-----|------|-------|---------|
//! | `log-format` | `--log-format` | `human` or `json` | `human` |
//! | `log-max-bytes` | `--log-max-bytes` | a positive number of bytes, with an optional `K`/`M`/`G` suffix (1024-based): rotate the log file once it would grow past it | none: the file only grows (reopen it on SIGHUP) |
//! | `log-keep` | `--log-keep` | how many rotated files (`FILE.1` ... `FILE.N`) to keep | 5 |
//! | `syslog` | `--syslog` | `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix:///dev/log` | none |
//!
//! The log file itself is `volttron -l FILE` (VOLTTRON's `log` key stays command-line only).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::home::config::PlatformConfig;
use crate::logs::LogError;

/// How each record is written to the log file or stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// tracing-subscriber's human format: `TIMESTAMP LEVEL spans: target: message fields`.
    #[default]
    Human,
    /// One JSON object per line: `timestamp` (RFC 3339, UTC), `level`, `target`, `message`,
    /// the event's fields, and `agent`.
    Json,
}

impl FromStr for LogFormat {
    type Err = ();

    fn from_str(text: &str) -> Result<LogFormat, ()> {
        match text.trim().to_ascii_lowercase().as_str() {
            "human" | "text" | "plain" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(()),
        }
    }
}

/// Where syslog records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddress {
    /// `udp://HOST:PORT`: one datagram per record.
    Udp(SocketAddr),
    /// `tcp://HOST:PORT`: records separated by line ends.
    Tcp(SocketAddr),
    /// `unix:///dev/log`: the local syslog daemon's socket (datagram, else stream).
    Unix(PathBuf),
}

impl FromStr for SyslogAddress {
    type Err = ();

    fn from_str(text: &str) -> Result<SyslogAddress, ()> {
        let text = text.trim();
        let socket = |rest: &str| {
            std::net::ToSocketAddrs::to_socket_addrs(rest)
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(())
        };
        if let Some(rest) = text.strip_prefix("udp://") {
            socket(rest).map(SyslogAddress::Udp)
        } else if let Some(rest) = text.strip_prefix("tcp://") {
            socket(rest).map(SyslogAddress::Tcp)
        } else if let Some(rest) = text.strip_prefix("unix://") {
            if rest.starts_with('/') {
                Ok(SyslogAddress::Unix(PathBuf::from(rest)))
            } else {
                Err(())
            }
        } else {
            Err(())
        }
    }
}

impl std::fmt::Display for SyslogAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyslogAddress::Udp(a) => write!(f, "udp://{a}"),
            SyslogAddress::Tcp(a) => write!(f, "tcp://{a}"),
            SyslogAddress::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// The platform's logging settings (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// The records' format.
    pub format: LogFormat,
    /// The log file (`-l FILE`); `None` logs to stderr.
    pub file: Option<PathBuf>,
    /// Rotate the file once it would grow past this many bytes.
    pub max_bytes: Option<u64>,
    /// Rotated files kept (`FILE.1` is the newest).
    pub keep: usize,
    /// Also send each record to syslog (RFC 5424).
    pub syslog: Option<SyslogAddress>,
    /// The least severe level logged.
    pub level: tracing::Level,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Human,
            file: None,
            max_bytes: None,
            keep: DEFAULT_KEEP,
            syslog: None,
            level: tracing::Level::INFO,
        }
    }
}

/// Rotated files kept when `log-keep` is not set.
pub const DEFAULT_KEEP: usize = 5;

impl LogSettings {
    /// The settings of `config`'s logging keys (kept in its `extra`; put flags there too,
    /// as `volttron` does, to override the file). The file and the level are left at their
    /// defaults: they come from the command line.
    pub fn from_platform_config(config: &PlatformConfig) -> Result<LogSettings, LogError> {
        let mut settings = LogSettings::default();
        let invalid = |key: &'static str, value: &str, expected: &'static str| LogError::InvalidValue {
            key,
            value: value.to_owned(),
            expected,
        };
        if let Some(value) = config.extra.get("log-format") {
            settings.format = value
                .parse()
                .map_err(|()| invalid("log-format", value, "human or json"))?;
        }
        if let Some(value) = config.extra.get("log-max-bytes") {
            settings.max_bytes = Some(parse_bytes(value).ok_or_else(|| {
                invalid(
                    "log-max-bytes",
                    value,
                    "a positive number of bytes, optionally with K, M or G",
                )
            })?);
        }
        if let Some(value) = config.extra.get("log-keep") {
            settings.keep = value
                .trim()
                .parse()
                .map_err(|_| invalid("log-keep", value, "a number of files (0 or more)"))?;
        }
        if let Some(value) = config.extra.get("syslog") {
            settings.syslog = Some(value.parse().map_err(|()| {
                invalid(
                    "syslog",
                    value,
                    "udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH",
                )
            })?);
        }
        Ok(settings)
    }
}

/// `4096`, `64K`, `10M`, `1G` (1024-based); `None` for anything else or 0.
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, factor) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&text[..i], 1 << 20),
        (i, 'g' | 'G') => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<LogSettings, LogError> {
        let c = PlatformConfig::parse(text, "config").unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        LogSettings::from_platform_config(&c)
    }

    #[test]
    fn reads_the_keys_without_warnings() {
        let s = config(
            "[volttron]\nlog-format = JSON\nlog-max-bytes = 10M\nlog-keep = 3\nsyslog = udp://127.0.0.1:514\n",
        )
        .unwrap();
        assert_eq!(s.format, LogFormat::Json);
        assert_eq!(s.max_bytes, Some(10 << 20));
        assert_eq!(s.keep, 3);
        assert_eq!(
            s.syslog,
            Some(SyslogAddress::Udp("127.0.0.1:514".parse().unwrap()))
        );
        assert_eq!(config("").unwrap(), LogSettings::default());
    }

    #[test]
    fn bad_values_are_typed_errors() {
        for (text, key) in [
            ("log-format = xml", "log-format"),
            ("log-max-bytes = 0", "log-max-bytes"),
            ("log-max-bytes = lots", "log-max-bytes"),
            ("log-keep = -1", "log-keep"),
            ("syslog = /dev/log", "syslog"),
            ("syslog = udp://nowhere", "syslog"),
        ] {
            match config(&format!("[volttron]\n{text}\n")) {
                Err(LogError::InvalidValue { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn syslog_addresses() {
        assert_eq!(
            "unix:///dev/log".parse::<SyslogAddress>(),
            Ok(SyslogAddress::Unix("/dev/log".into()))
        );
        assert!(matches!(
            "tcp://127.0.0.1:601".parse::<SyslogAddress>(),
            Ok(SyslogAddress::Tcp(_))
        ));
        assert!("unix://dev/log".parse::<SyslogAddress>().is_err());
    }
}
