//! Bridge addresses, written as VOLTTRON writes them: `ipc://@/path/vip.socket` or
//! `ipc:///path` for a Unix socket, `tcp://host:port` for TCP.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a platform listens, or where an agent connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BridgeAddress {
    /// A Unix-domain socket at this path (local agents; the peer's uid is checked).
    Unix(PathBuf),
    /// A TCP address (remote agents; the link is encrypted and authenticated with Noise).
    Tcp(SocketAddr),
}

/// Why an address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bridge address {address:?}: {reason}")]
pub struct AddressError {
    /// The text given.
    pub address: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for BridgeAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| AddressError {
            address: s.to_owned(),
            reason,
        };
        if let Some(rest) = s.strip_prefix("ipc://").or_else(|| s.strip_prefix("unix://")) {
            // VOLTTRON writes `ipc://@/home/.../vip.socket` (`@` marks an abstract socket
            // there); we always use the filesystem path.
            let path = rest.strip_prefix('@').unwrap_or(rest);
            if path.is_empty() {
                return Err(err("the socket path is empty"));
            }
            return Ok(BridgeAddress::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let addr = std::net::ToSocketAddrs::to_socket_addrs(rest)
                .map_err(|_| err("expected tcp://host:port with a resolvable host"))?
                .next()
                .ok_or_else(|| err("the host resolves to no address"))?;
            return Ok(BridgeAddress::Tcp(addr));
        }
        if s.starts_with('/') {
            return Ok(BridgeAddress::Unix(PathBuf::from(s)));
        }
        Err(err(
            "expected ipc://PATH, tcp://HOST:PORT or an absolute socket path",
        ))
    }
}

impl fmt::Display for BridgeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeAddress::Unix(p) => write!(f, "ipc://{}", p.display()),
            BridgeAddress::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_volttron_forms() {
        assert_eq!(
            "ipc://@/home/v/.volttron/run/vip.socket"
                .parse::<BridgeAddress>()
                .unwrap(),
            BridgeAddress::Unix("/home/v/.volttron/run/vip.socket".into())
        );
        assert_eq!(
            "/tmp/x.sock".parse::<BridgeAddress>().unwrap(),
            BridgeAddress::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            "tcp://127.0.0.1:22916".parse::<BridgeAddress>().unwrap(),
            BridgeAddress::Tcp("127.0.0.1:22916".parse().unwrap())
        );
        let a: BridgeAddress = "tcp://127.0.0.1:1".parse().unwrap();
        assert_eq!(a.to_string().parse::<BridgeAddress>().unwrap(), a);
        for bad in ["", "ipc://", "tcp://nohost", "http://x", "relative/path"] {
            assert!(bad.parse::<BridgeAddress>().is_err(), "{bad}");
        }
    }
}
