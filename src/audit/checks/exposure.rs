//! What the platform exposes: authentication off, TCP listeners, the web service's TLS.
//!
//! | setting | finding |
//! |---------|---------|
//! | `auth = false` / `auth-enabled = False` / `auth-disabled` | critical with a non-loopback listener (VIP, bridge or web), else high |
//! | `vip-address` or `bridge-address` `tcp://` on a non-loopback host, auth on | info: encrypted (VIP: CURVE, bridge: Noise XX) and every key checked, but reachable from the network |
//! | the same with auth off | part of the auth finding (encrypted, but anyone may connect) |
//! | `bind-web-address = http://` on a non-loopback host | high: passwords and tokens cross the network in clear |
//! | `bind-web-address = http://` on loopback | info |
//!
//! VIP's TCP sockets are always CURVE servers (ZeroMQ refuses NULL clients), and bridge TCP
//! links always run the Noise handshake, so no TCP listener carries plaintext; what auth
//! off changes is who may connect.

use std::net::IpAddr;

use crate::audit::report::{Check, Finding, Severity};
use crate::home::config::PlatformConfig;

/// The host of `tcp://HOST:PORT`, `http(s)://HOST:PORT[/]` or `HOST:PORT`.
fn host_of(address: &str) -> &str {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.rsplit_once(':') {
        Some((h, _)) if !authority.ends_with(']') => h,
        _ => authority,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Whether only this machine can reach `address` (loopback IP or `localhost`).
pub(crate) fn is_loopback(address: &str) -> bool {
    let host = host_of(address);
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The TCP listeners of the config: (`vip-address` or `bridge-address`, address).
fn tcp_listeners(config: &PlatformConfig) -> Vec<(&'static str, &str)> {
    let vip = config
        .vip_addresses
        .iter()
        .flatten()
        .map(|a| ("vip-address", a.as_str()));
    let bridge = config
        .bridge_addresses
        .iter()
        .flatten()
        .map(|a| ("bridge-address", a.as_str()));
    vip.chain(bridge)
        .filter(|(_, a)| a.starts_with("tcp://"))
        .collect()
}

/// The findings about auth (`auth`: whether it is on), listeners and the web service.
pub(crate) fn check(config: &PlatformConfig, auth: bool, out: &mut Vec<Finding>) {
    let exposed: Vec<String> = tcp_listeners(config)
        .into_iter()
        .filter(|(_, a)| !is_loopback(a))
        .map(|(k, a)| format!("{k} = {a}"))
        .chain(
            config
                .bind_web_address
                .iter()
                .filter(|a| !is_loopback(a))
                .map(|a| format!("bind-web-address = {a}")),
        )
        .collect();
    if !auth {
        let (severity, reach) = if exposed.is_empty() {
            (Severity::High, "any local process".to_owned())
        } else {
            (
                Severity::Critical,
                format!("anyone who can reach {}", exposed.join(", ")),
            )
        };
        out.push(Finding::new(
            Check::AuthDisabled,
            severity,
            format!(
                "auth is off (the config, or `volttron --no-auth`): {reach} may connect, call every method and publish or subscribe to \
                 every topic (links stay encrypted, but no key is checked)"
            ),
            "remove `auth = false` / `auth-enabled = False` (or `auth-disabled`) from the config and `--no-auth` from \
             the command line, restart the platform, then approve agents' keys with `vctl auth approve`",
        ));
    } else {
        for (key, address) in tcp_listeners(config).into_iter().filter(|(_, a)| !is_loopback(a)) {
            let how = if key == "vip-address" { "CURVE" } else { "Noise XX" };
            out.push(Finding::new(
                Check::TcpListener,
                Severity::Info,
                format!(
                    "{key} = {address} listens beyond this machine (encrypted with {how}, every key checked)"
                ),
                "bind a loopback or private address if no remote agent needs it, and firewall the port",
            ));
        }
    }
    if let Some(web) = &config.bind_web_address
        && web.starts_with("http://")
    {
        if is_loopback(web) {
            out.push(Finding::new(
                Check::WebTls,
                Severity::Info,
                format!("bind-web-address = {web} serves plain HTTP on loopback only"),
                "use https:// with web-ssl-cert and web-ssl-key before exposing it, or a TLS reverse proxy",
            ));
        } else {
            out.push(Finding::new(
                Check::WebTls,
                Severity::High,
                format!("bind-web-address = {web} serves plain HTTP beyond this machine: passwords and tokens cross the network in clear"),
                "set bind-web-address = https://HOST:PORT with web-ssl-cert and web-ssl-key, or bind 127.0.0.1 behind a TLS reverse proxy",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("tcp://127.0.0.1:22916"));
        assert!(is_loopback("http://localhost:8080"));
        assert!(is_loopback("https://[::1]:8443/"));
        assert!(!is_loopback("tcp://0.0.0.0:22916"));
        assert!(!is_loopback("tcp://*:22916"));
        assert!(!is_loopback("http://10.1.2.3:8080"));
        assert!(!is_loopback("tcp://[::]:22917"));
    }
}
