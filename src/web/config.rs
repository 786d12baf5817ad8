//! The web service's settings: `bind-web-address` and friends, from `$VOLTTRON_HOME/config`
//! (`[volttron]`, then a `[web]` section, which wins) or built in code.
//!
//! | key | field | value |
//! |-----|-------|-------|
//! | `bind-web-address` | [`bind`](WebConfig::bind) | `http://HOST:PORT` or `https://HOST:PORT` (port 0: any free port) |
//! | `web-ssl-cert`, `web-ssl-key` | [`tls`](WebConfig::tls) | PEM files; both, and only with `https://` |
//! | `web-secret-key` | [`secret_key`](WebConfig::secret_key) | the HS256 key of the tokens; without it one is made once and kept in `$VOLTTRON_HOME/web-secret-key` (0600) |
//! | `rpc-allow-list` | [`rpc_allow_list`](WebConfig::rpc_allow_list) | lines of `[platform:] identity: method, method` globs (see [`RpcAllowList`]) |
//! | `web-root-dir` | [`web_root`](WebConfig::web_root) | a directory served under `/static/` |
//! | `web-max-body` | [`max_body`](WebConfig::max_body) | bytes (default 1 MiB); larger bodies get 413 before they are read |
//! | `web-access-token-minutes`, `web-refresh-token-minutes` | lifetimes | default 15 and 240, VOLTTRON's |
//! | `web-cors-origins` | [`cors_origins`](WebConfig::cors_origins) | origins allowed cross-site (default none: CORS closed) |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::core::glob::{Glob, Syntax};
use crate::home::config::PlatformConfig;

/// A setting the web service cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("web: {key} = {value:?}: {message}")]
pub struct WebConfigError {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// What is wrong.
    pub message: String,
}

fn bad(key: &str, value: &str, message: impl Into<String>) -> WebConfigError {
    WebConfigError {
        key: key.to_owned(),
        value: value.to_owned(),
        message: message.into(),
    }
}

/// Where the web service listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAddress {
    /// `https://` (TLS) rather than `http://`.
    pub https: bool,
    /// The socket address.
    pub addr: SocketAddr,
}

impl std::str::FromStr for WebAddress {
    type Err = WebConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = "bind-web-address";
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad(key, s, "expected http://HOST:PORT or https://HOST:PORT"));
        };
        let rest = rest.trim_end_matches('/');
        let rest = match rest.split_once(':') {
            Some(("localhost", port)) => format!("127.0.0.1:{port}"),
            Some(_) => rest.to_owned(),
            None => format!("{rest}:{}", if https { 443 } else { 80 }),
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&rest)
            .map_err(|e| bad(key, s, e.to_string()))?
            .next()
            .ok_or_else(|| bad(key, s, "the host has no address"))?;
        Ok(WebAddress { https, addr })
    }
}

impl std::fmt::Display for WebAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }
}

/// The web service's settings (see the module docs).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where to listen.
    pub bind: WebAddress,
    /// The certificate chain and private key files (PEM), for `https://`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The tokens' signing key; made and kept in the home when `None`.
    pub secret_key: Option<String>,
    /// The agent methods the HTTP RPC routes may call; `None`: only `admin` users may call,
    /// any method but the [denied](RpcAllowList::DENIED) ones.
    pub rpc_allow_list: Option<RpcAllowList>,
    /// A directory served under `/static/`.
    pub web_root: Option<PathBuf>,
    /// The largest request body read.
    pub max_body: usize,
    /// How long an access token is good for.
    pub access_lifetime: Duration,
    /// How long a refresh token is good for.
    pub refresh_lifetime: Duration,
    /// Origins allowed cross-site requests.
    pub cors_origins: Vec<String>,
    /// Paths that answer the OAuth2 password grant besides `/authenticate`
    /// ([`oauth2_token_path`](Self::oauth2_token_path)).
    pub oauth2_token_paths: Vec<String>,
}

impl WebConfig {
    /// Listens on `bind` (`http://127.0.0.1:8080`), everything else by default.
    pub fn new(bind: &str) -> Result<WebConfig, WebConfigError> {
        Ok(WebConfig {
            bind: bind.parse()?,
            tls: None,
            secret_key: None,
            rpc_allow_list: None,
            web_root: None,
            max_body: 1 << 20,
            access_lifetime: Duration::from_secs(15 * 60),
            refresh_lifetime: Duration::from_secs(240 * 60),
            cors_origins: Vec::new(),
            oauth2_token_paths: Vec::new(),
        })
    }

    /// Also answers the OAuth2 password grant on `path` (RFC 6749 §4.3: `POST` a form with
    /// `username` and `password`, or the same as JSON; the answer is
    /// `{"access_token", "token_type": "bearer", "refresh_token"}`), for clients written
    /// against another API's token URL — DOTS's `/api/v1/simulation/token`, say. The
    /// users and tokens are the web service's, as for `/authenticate`.
    pub fn oauth2_token_path(mut self, path: impl Into<String>) -> Self {
        self.oauth2_token_paths.push(path.into());
        self
    }

    /// Sets the TLS certificate chain and key files (PEM).
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some((cert.into(), key.into()));
        self
    }

    /// Sets the tokens' signing key.
    pub fn secret_key(mut self, key: impl Into<String>) -> Self {
        self.secret_key = Some(key.into());
        self
    }

    /// Sets the RPC allow list.
    pub fn rpc_allow_list(mut self, list: RpcAllowList) -> Self {
        self.rpc_allow_list = Some(list);
        self
    }

    /// Sets the largest request body read.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sets the access token's lifetime.
    pub fn access_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_lifetime = lifetime;
        self
    }

    /// The settings of a platform configuration file: `None` without `bind-web-address`.
    pub fn from_platform_config(config: &PlatformConfig) -> Result<Option<WebConfig>, WebConfigError> {
        let empty = Default::default();
        let web = config.sections.get("web").unwrap_or(&empty);
        let get = |key: &str| -> Option<&str> {
            web.get(key)
                .or_else(|| {
                    if key == "bind-web-address" {
                        config.bind_web_address.as_ref()
                    } else {
                        config.extra.get(key)
                    }
                })
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        };
        let Some(bind) = get("bind-web-address") else {
            return Ok(None);
        };
        let mut c = WebConfig::new(bind)?;
        match (get("web-ssl-cert"), get("web-ssl-key")) {
            (Some(cert), Some(key)) => c.tls = Some((cert.into(), key.into())),
            (None, None) => {}
            (Some(v), None) | (None, Some(v)) => {
                return Err(bad(
                    "web-ssl-cert/web-ssl-key",
                    v,
                    "set both the certificate and the key, or neither",
                ));
            }
        }
        if c.bind.https && c.tls.is_none() {
            return Err(bad(
                "bind-web-address",
                bind,
                "https needs web-ssl-cert and web-ssl-key",
            ));
        }
        if !c.bind.https && c.tls.is_some() {
            return Err(bad(
                "bind-web-address",
                bind,
                "web-ssl-cert and web-ssl-key are set: use https://",
            ));
        }
        c.secret_key = get("web-secret-key").map(str::to_owned);
        if let Some(list) = get("rpc-allow-list") {
            c.rpc_allow_list = Some(list.parse()?);
        }
        if let Some(dir) = get("web-root-dir") {
            let path = PathBuf::from(dir);
            if !path.is_dir() || path == std::path::Path::new("/") {
                return Err(bad("web-root-dir", dir, "not a directory that can be served"));
            }
            c.web_root = Some(path);
        }
        let number = |key: &str| -> Result<Option<u64>, WebConfigError> {
            get(key)
                .map(|v| {
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad(key, v, "expected a positive integer"))
                })
                .transpose()
        };
        if let Some(n) = number("web-max-body")? {
            c.max_body = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number("web-access-token-minutes")? {
            c.access_lifetime = Duration::from_secs(n.saturating_mul(60));
        }
        if let Some(n) = number("web-refresh-token-minutes")? {
            c.refresh_lifetime = Duration::from_secs(n.saturating_mul(60));
        }
        if let Some(origins) = get("web-cors-origins") {
            c.cors_origins = origins
                .split(|ch: char| ch == ',' || ch.is_whitespace())
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(Some(c))
    }
}

/// Which agent methods the HTTP RPC routes (`/vui/.../rpc/<method>`, `/jsonrpc`) may call,
/// as volttron-lib-web's `rpc-allow-list`: one rule per line,
/// `[platform:] identity: method[, method...]`, each field a shell glob (`*`, `?`, `[...]`).
///
/// ```ini
/// [web]
/// rpc-allow-list =
///     hvac.*: get_*, set_point
///     *: health
/// ```
///
/// Whatever the list says, the platform's own services' mutating methods stay out of reach
/// ([`DENIED`](Self::DENIED)).
#[derive(Debug, Clone)]
pub struct RpcAllowList {
    rules: Vec<(Glob, Glob, Vec<Glob>)>,
}

impl RpcAllowList {
    /// Peers no HTTP RPC route reaches, and `(peer, method)`s denied whatever the list says.
    pub const DENIED: &'static [(&'static str, &'static str)] = &[
        ("platform.auth", "*"),
        ("platform.web", "*"),
        ("config.store", "*"),
        ("platform.config_store", "*"),
        ("control", "install_agent"),
        ("control", "remove_agent"),
        ("control", "shutdown"),
        ("control", "stop_platform"),
        ("control", "clear_status"),
        ("control", "prioritize_agent"),
        ("control", "tag_agent"),
    ];

    /// Whether `identity`'s `method` on `platform` is allowed by the list.
    pub fn allows(&self, platform: &str, identity: &str, method: &str) -> bool {
        self.rules.iter().any(|(p, id, methods)| {
            p.matches(platform) && id.matches(identity) && methods.iter().any(|m| m.matches(method))
        })
    }

    /// Whether `(identity, method)` is on the fixed deny list.
    pub fn denied(identity: &str, method: &str) -> bool {
        let identity = match identity {
            "platform.control" => "control",
            other => other,
        };
        Self::DENIED
            .iter()
            .any(|(p, m)| *p == identity && (*m == "*" || *m == method))
    }
}

impl std::str::FromStr for RpcAllowList {
    type Err = WebConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = Syntax {
            classes: true,
            escapes: false,
        };
        let mut rules = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let fields: Vec<&str> = line.split(':').map(str::trim).collect();
            let (platform, identity, methods) = match fields.as_slice() {
                [identity, methods] => ("*", *identity, *methods),
                [platform, identity, methods] => (*platform, *identity, *methods),
                _ => {
                    return Err(bad(
                        "rpc-allow-list",
                        line,
                        "expected `[platform:] identity: method[, method...]`",
                    ));
                }
            };
            let methods: Vec<&str> = methods
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .collect();
            if platform.is_empty() || identity.is_empty() || methods.is_empty() {
                return Err(bad("rpc-allow-list", line, "a field is empty"));
            }
            rules.push((
                Glob::new(platform, syntax),
                Glob::new(identity, syntax),
                methods.iter().map(|m| Glob::new(m, syntax)).collect(),
            ));
        }
        Ok(RpcAllowList { rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let a: WebAddress = "http://127.0.0.1:8080".parse().unwrap();
        assert!(!a.https);
        assert_eq!(a.addr.port(), 8080);
        assert_eq!(a.to_string(), "http://127.0.0.1:8080");
        assert!("https://localhost:8443/".parse::<WebAddress>().unwrap().https);
        assert!("ftp://x:1".parse::<WebAddress>().is_err());
        assert!("http://no such host:1".parse::<WebAddress>().is_err());
    }

    #[test]
    fn allow_lists_parse_and_match() {
        let l: RpcAllowList = "hvac.*: get_*, set_point\nvolttron1: meter: read\n"
            .parse()
            .unwrap();
        assert!(l.allows("any", "hvac.1", "get_temp"));
        assert!(l.allows("any", "hvac.1", "set_point"));
        assert!(!l.allows("any", "hvac.1", "reboot"));
        assert!(l.allows("volttron1", "meter", "read"));
        assert!(!l.allows("other", "meter", "read"));
        assert!("just text".parse::<RpcAllowList>().is_err());
        assert!("a: ".parse::<RpcAllowList>().is_err());
        assert!(RpcAllowList::denied("platform.auth", "x"));
        assert!(RpcAllowList::denied("platform.control", "shutdown"));
        assert!(!RpcAllowList::denied("control", "list_agents"));
    }

    #[test]
    fn platform_config_sections_win() {
        let pc = PlatformConfig::parse(
            "[volttron]\nbind-web-address = http://127.0.0.1:0\nweb-secret-key = a\n[web]\nweb-secret-key = b\nrpc-allow-list =\n  x: y\nweb-max-body = 10\n",
            "/v/config",
        )
        .unwrap();
        let c = WebConfig::from_platform_config(&pc).unwrap().unwrap();
        assert_eq!(c.secret_key.as_deref(), Some("b"));
        assert_eq!(c.max_body, 10);
        assert!(c.rpc_allow_list.unwrap().allows("p", "x", "y"));
        let none = PlatformConfig::parse("[volttron]\n", "/v/config").unwrap();
        assert!(WebConfig::from_platform_config(&none).unwrap().is_none());
        let https =
            PlatformConfig::parse("[volttron]\nbind-web-address = https://127.0.0.1:0\n", "/v/c").unwrap();
        assert!(WebConfig::from_platform_config(&https).is_err());
    }
}
