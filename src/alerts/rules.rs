//! The routing rules: configuration `config` of the `platform.alerts` identity in the
//! config store, parsed and checked into [`AlertRules`] (or a [`RulesError`]).
//!
//! ```json
//! {
//!   "sinks": {
//!     "ops":    {"type": "webhook", "url": "https://ops.example.com/hook", "timeout": "10s",
//!                "headers": {"Authorization": "Bearer s3cret"}},
//!     "oncall": {"type": "email", "host": "smtp.example.com", "port": 587, "tls": "starttls",
//!                "username": "volttron", "password": "...",
//!                "from": "volttron@example.com", "to": ["oncall@example.com"]},
//!     "fleet":  {"type": "topic", "topic": "fleet/alerts"}
//!   },
//!   "routes": [
//!     {"severity": "critical", "identity": "hvac.*", "sinks": ["ops", "oncall"]},
//!     {"topic": "heartbeat/*", "sinks": ["fleet"]},
//!     {"sinks": ["log"]}
//!   ],
//!   "flapping": {"changes": 4, "window": "10m"},
//!   "heartbeat": {"misses": 3},
//!   "repeat": "4h",
//!   "retention": "1d"
//! }
//! ```
//!
//! | field | meaning | default |
//! |-------|---------|---------|
//! | `sinks.<name>` | a webhook (`url` http/https, `timeout`, `headers`, `ca`), an e-mail (`host`, `port`, `tls`: `none` / `starttls` / `tls`, `username` + `password`, `from`, `to`, `timeout`, `ca`) or a bus `topic`; `log` always exists | none |
//! | `sinks.<name>.ca` | an absolute path: the PEM certificate (a private CA, a self-signed server) trusted instead of the webpki roots; read when sending | the webpki roots |
//! | `routes[]` | every route whose conditions all hold sends to its `sinks` (each sink once per notification) | one route: everything to `log` |
//! | `routes[].severity` | at or above this severity | any |
//! | `routes[].identity`, `.key`, `.topic` | shell globs (`*`, `?`, `[a-z]`) over the origin, the alert key, the topic | any |
//! | `flapping.changes`, `.window` | more than `changes` changes of condition within `window` is flapping | 4 in 10 min |
//! | `heartbeat.misses` | a heartbeat this many periods late is lost | 3 |
//! | `repeat` | a firing alert not acknowledged is notified again this often | never |
//! | `retention` | a resolved alert is forgotten this long after it was last seen | 1 day |
//!
//! Durations are humantime's (`90s`, `10m`, `1h 30m`, `2d`). Unknown fields are errors.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::alerts::observation::Severity;
use crate::core::glob::{Glob, Syntax};
use crate::core::{Topic, Value};

/// The built-in sink that writes to the platform log.
pub const LOG_SINK: &str = "log";

/// Why a rules configuration was refused (the service keeps the rules it had).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// Not the shape above (a missing or unknown field, a wrong type).
    #[error("the alert rules do not parse: {0}")]
    Shape(String),
    /// A route names a sink that is not defined.
    #[error("routes[{route}] names sink {sink:?}, which is not defined (sinks: {known})")]
    UnknownSink {
        /// The route's index.
        route: usize,
        /// The name.
        sink: String,
        /// The sinks that are defined.
        known: String,
    },
    /// A route with no sinks.
    #[error("routes[{route}] has no sinks")]
    NoSinks {
        /// The route's index.
        route: usize,
    },
    /// A duration humantime does not read.
    #[error("{field} = {value:?}: {message} (write e.g. 90s, 10m, 1h 30m)")]
    Duration {
        /// Where it was.
        field: String,
        /// As written.
        value: String,
        /// Why.
        message: String,
    },
    /// A value out of its range.
    #[error("{field}: {message}")]
    Range {
        /// Where it was.
        field: String,
        /// Why.
        message: String,
    },
    /// A sink's setting is wrong (a URL, an address, a topic).
    #[error("sink {sink:?}: {message}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// What is wrong.
        message: String,
    },
}

/// How the e-mail sink talks to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on loopback).
    None,
    /// Plain, then STARTTLS (required); port 587 by default.
    #[default]
    Starttls,
    /// TLS from the start (SMTPS); port 465 by default.
    Tls,
}

/// A webhook: an HTTP POST of the notification's JSON.
#[derive(Debug, Clone)]
pub struct WebhookSink {
    /// `http://` or `https://`.
    pub url: String,
    /// The whole request's deadline.
    pub timeout: Duration,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// For `https://`: the PEM certificate to trust instead of the webpki roots.
    pub ca: Option<PathBuf>,
}

/// E-mail through an SMTP server.
#[derive(Clone)]
pub struct EmailSink {
    /// The server's host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Plain, STARTTLS or TLS.
    pub tls: SmtpTls,
    /// Login, if the server wants one.
    pub credentials: Option<(String, String)>,
    /// The sender.
    pub from: lettre::message::Mailbox,
    /// The recipients.
    pub to: Vec<lettre::message::Mailbox>,
    /// The server's deadline.
    pub timeout: Duration,
    /// For STARTTLS and TLS: the PEM certificate to trust instead of the webpki roots.
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSink")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.credentials.as_ref().map(|c| &c.0))
            .field("from", &self.from.to_string())
            .field("to", &self.to.iter().map(|m| m.to_string()).collect::<Vec<_>>())
            .field("ca", &self.ca)
            .finish()
    }
}

/// Where notifications go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// The platform log (a `warn` record per notification, `info` for a resolved one).
    Log,
    /// An HTTP POST.
    Webhook(WebhookSink),
    /// An e-mail.
    Email(EmailSink),
    /// A publication on the bus, as `platform.alerts`.
    Topic(Topic),
}

/// One route: conditions and sinks.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    severity: Option<Severity>,
    identity: Option<Glob>,
    key: Option<Glob>,
    topic: Option<Glob>,
    sinks: Vec<String>,
}

impl Route {
    fn matches(&self, severity: Severity, origin: &str, key: &str, topic: &str) -> bool {
        self.severity.is_none_or(|s| severity >= s)
            && self.identity.as_ref().is_none_or(|g| g.matches(origin))
            && self.key.as_ref().is_none_or(|g| g.matches(key))
            && self.topic.as_ref().is_none_or(|g| g.matches(topic))
    }
}

/// The book's parameters (flapping, repeats, retention, heartbeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// More than this many changes within `flap_window` is flapping.
    pub flap_changes: usize,
    /// The flapping window; also how long a flapping alert must be still to settle.
    pub flap_window: Duration,
    /// Re-notify a firing, unacknowledged alert this often.
    pub repeat: Option<Duration>,
    /// Forget a resolved alert this long after it was last seen.
    pub retention: Duration,
    /// A heartbeat this many periods late is lost.
    pub heartbeat_misses: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            flap_changes: 4,
            flap_window: Duration::from_secs(600),
            repeat: None,
            retention: Duration::from_secs(86_400),
            heartbeat_misses: 3,
        }
    }
}

/// Checked routing rules.
#[derive(Debug, Clone)]
pub struct AlertRules {
    sinks: BTreeMap<String, Arc<Sink>>,
    routes: Vec<Route>,
    /// Flapping, repeats, retention, heartbeats.
    pub timing: Timing,
}

impl Default for AlertRules {
    /// Everything to the log.
    fn default() -> Self {
        AlertRules {
            sinks: BTreeMap::from([(LOG_SINK.to_owned(), Arc::new(Sink::Log))]),
            routes: vec![Route {
                severity: None,
                identity: None,
                key: None,
                topic: None,
                sinks: vec![LOG_SINK.to_owned()],
            }],
            timing: Timing::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    sinks: BTreeMap<String, RawSink>,
    #[serde(default)]
    routes: Option<Vec<RawRoute>>,
    #[serde(default)]
    flapping: Option<RawFlapping>,
    #[serde(default)]
    heartbeat: Option<RawHeartbeat>,
    repeat: Option<String>,
    retention: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    severity: Option<Severity>,
    identity: Option<String>,
    key: Option<String>,
    topic: Option<String>,
    sinks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlapping {
    changes: Option<usize>,
    window: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeartbeat {
    misses: Option<u32>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum RawSink {
    Log,
    Webhook {
        url: String,
        timeout: Option<String>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        ca: Option<String>,
    },
    Email {
        host: String,
        port: Option<u16>,
        #[serde(default)]
        tls: SmtpTls,
        username: Option<String>,
        password: Option<String>,
        from: String,
        to: Vec<String>,
        timeout: Option<String>,
        ca: Option<String>,
    },
    Topic {
        topic: String,
    },
}

/// Reads a humantime duration for `field`.
pub(crate) fn parse_duration(field: &str, text: &str) -> Result<Duration, RulesError> {
    humantime::parse_duration(text.trim()).map_err(|e| RulesError::Duration {
        field: field.to_owned(),
        value: text.to_owned(),
        message: e.to_string(),
    })
}

fn glob(pattern: Option<String>) -> Option<Glob> {
    pattern.map(|p| {
        Glob::new(
            &p,
            Syntax {
                classes: true,
                escapes: false,
            },
        )
    })
}

impl AlertRules {
    /// Checks a configuration (the JSON above) into rules.
    pub fn from_value(value: &Value) -> Result<AlertRules, RulesError> {
        let raw: RawRules = crate::from_value(value.clone()).map_err(|e| RulesError::Shape(e.to_string()))?;
        let mut sinks = BTreeMap::from([(LOG_SINK.to_owned(), Arc::new(Sink::Log))]);
        for (name, raw) in raw.sinks {
            let sink = check_sink(&name, raw)?;
            sinks.insert(name, Arc::new(sink));
        }
        let routes = match raw.routes {
            None => AlertRules::default().routes,
            Some(routes) => routes
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    if r.sinks.is_empty() {
                        return Err(RulesError::NoSinks { route: i });
                    }
                    if let Some(unknown) = r.sinks.iter().find(|s| !sinks.contains_key(*s)) {
                        return Err(RulesError::UnknownSink {
                            route: i,
                            sink: unknown.clone(),
                            known: sinks.keys().cloned().collect::<Vec<_>>().join(", "),
                        });
                    }
                    Ok(Route {
                        severity: r.severity,
                        identity: glob(r.identity),
                        key: glob(r.key),
                        topic: glob(r.topic),
                        sinks: r.sinks,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let mut timing = Timing::default();
        if let Some(f) = raw.flapping {
            if let Some(changes) = f.changes {
                if changes == 0 {
                    return Err(RulesError::Range {
                        field: "flapping.changes".into(),
                        message: "must be at least 1".into(),
                    });
                }
                timing.flap_changes = changes;
            }
            if let Some(window) = f.window {
                timing.flap_window = parse_duration("flapping.window", &window)?;
            }
        }
        if let Some(misses) = raw.heartbeat.and_then(|h| h.misses) {
            if misses == 0 {
                return Err(RulesError::Range {
                    field: "heartbeat.misses".into(),
                    message: "must be at least 1".into(),
                });
            }
            timing.heartbeat_misses = misses;
        }
        if let Some(repeat) = raw.repeat {
            let every = parse_duration("repeat", &repeat)?;
            timing.repeat = (!every.is_zero()).then_some(every);
        }
        if let Some(retention) = raw.retention {
            timing.retention = parse_duration("retention", &retention)?;
        }
        Ok(AlertRules {
            sinks,
            routes,
            timing,
        })
    }

    /// The sinks a notification goes to, each once, in the order routes name them.
    pub fn route(
        &self,
        severity: Severity,
        origin: &str,
        key: &str,
        topic: &str,
    ) -> Vec<(String, Arc<Sink>)> {
        let mut out: Vec<(String, Arc<Sink>)> = Vec::new();
        for route in self
            .routes
            .iter()
            .filter(|r| r.matches(severity, origin, key, topic))
        {
            for name in &route.sinks {
                if !out.iter().any(|(n, _)| n == name)
                    && let Some(sink) = self.sinks.get(name)
                {
                    out.push((name.clone(), sink.clone()));
                }
            }
        }
        out
    }

    /// The names of the defined sinks.
    pub fn sink_names(&self) -> Vec<String> {
        self.sinks.keys().cloned().collect()
    }

    /// How many routes there are.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }
}

fn check_sink(name: &str, raw: RawSink) -> Result<Sink, RulesError> {
    let bad = |message: String| RulesError::Sink {
        sink: name.to_owned(),
        message,
    };
    let ca = |ca: Option<String>| match ca {
        Some(path) if !std::path::Path::new(&path).is_absolute() => {
            Err(bad(format!("ca {path:?} is not an absolute path")))
        }
        other => Ok(other.map(PathBuf::from)),
    };
    let timeout = |t: Option<String>| match t {
        Some(t) => parse_duration(&format!("sinks.{name}.timeout"), &t),
        None => Ok(Duration::from_secs(10)),
    };
    Ok(match raw {
        RawSink::Log => Sink::Log,
        RawSink::Webhook {
            url,
            timeout: t,
            headers,
            ca: c,
        } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < "http://x".len() {
                return Err(bad(format!("url {url:?} is not an http:// or https:// URL")));
            }
            Sink::Webhook(WebhookSink {
                url,
                timeout: timeout(t)?,
                headers,
                ca: ca(c)?,
            })
        }
        RawSink::Email {
            host,
            port,
            tls,
            username,
            password,
            from,
            to,
            timeout: t,
            ca: c,
        } => {
            if host.trim().is_empty() {
                return Err(bad("host is empty".into()));
            }
            let mailbox = |text: &str| {
                text.parse::<lettre::message::Mailbox>()
                    .map_err(|e| bad(format!("{text:?} is not an e-mail address: {e}")))
            };
            if to.is_empty() {
                return Err(bad("`to` names no recipient".into()));
            }
            let credentials = match (username, password) {
                (Some(u), Some(p)) => Some((u, p)),
                (None, None) => None,
                _ => return Err(bad("give both username and password, or neither".into())),
            };
            Sink::Email(EmailSink {
                port: port.unwrap_or(match tls {
                    SmtpTls::None => 25,
                    SmtpTls::Starttls => 587,
                    SmtpTls::Tls => 465,
                }),
                host,
                tls,
                credentials,
                from: mailbox(&from)?,
                to: to.iter().map(|t| mailbox(t)).collect::<Result<_, _>>()?,
                timeout: timeout(t)?,
                ca: ca(c)?,
            })
        }
        RawSink::Topic { topic } => {
            Sink::Topic(Topic::new(&topic).map_err(|e| bad(format!("topic {topic:?}: {e}")))?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: serde_json::Value) -> Result<AlertRules, RulesError> {
        AlertRules::from_value(&Value::from(json))
    }

    #[test]
    fn routes_by_severity_identity_and_topic() {
        let r = rules(serde_json::json!({
            "sinks": {"bus": {"type": "topic", "topic": "out/alerts"}},
            "routes": [
                {"severity": "critical", "identity": "hvac.*", "sinks": ["bus"]},
                {"topic": "heartbeat/*", "sinks": ["bus", "log"]},
            ]
        }))
        .unwrap();
        let names = |s, o, t| {
            r.route(s, o, "k", t)
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Severity::Critical, "hvac.1", "alerts/x"), ["bus"]);
        assert!(names(Severity::Warning, "hvac.1", "alerts/x").is_empty());
        assert!(names(Severity::Critical, "meter.1", "alerts/x").is_empty());
        assert_eq!(names(Severity::Info, "a", "heartbeat/a"), ["bus", "log"]);
    }

    #[test]
    fn bad_rules_are_typed_errors() {
        assert!(matches!(
            rules(serde_json::json!({"routes": [{"sinks": ["nope"]}]})),
            Err(RulesError::UnknownSink { route: 0, .. })
        ));
        assert!(matches!(
            rules(serde_json::json!({"routs": []})),
            Err(RulesError::Shape(_))
        ));
        assert!(matches!(
            rules(serde_json::json!({"flapping": {"window": "soon"}})),
            Err(RulesError::Duration { .. })
        ));
        assert!(matches!(
            rules(serde_json::json!({"sinks": {"w": {"type": "webhook", "url": "ftp://x"}}})),
            Err(RulesError::Sink { .. })
        ));
        assert!(matches!(
            rules(
                serde_json::json!({"sinks": {"m": {"type": "email", "host": "h", "from": "nobody", "to": ["a@b.c"]}}})
            ),
            Err(RulesError::Sink { .. })
        ));
        assert!(matches!(
            rules(serde_json::json!({"routes": [{"severity": "dire", "sinks": ["log"]}]})),
            Err(RulesError::Shape(_))
        ));
        assert!(matches!(
            rules(
                serde_json::json!({"sinks": {"w": {"type": "webhook", "url": "https://h/", "ca": "ca.pem"}}})
            ),
            Err(RulesError::Sink { .. })
        ));
    }
}
