//! `known_hosts` against this platform's own key.
//!
//! | condition | finding |
//! |-----------|---------|
//! | `known_hosts` does not load (not JSON, a key that is no key) | medium: remote agents and bridges that look a serverkey up find none |
//! | an entry for one of this platform's own `vip-address` / `bridge-address` with a key that is not the platform's | high: a client trusting the entry refuses this platform, or trusts whoever holds the other key |
//!
//! Entries for other platforms cannot be checked from here (their keys are theirs); an
//! address that binds every interface (`0.0.0.0`, `*`, `[::]`) is never looked up and is
//! left alone.

use std::path::Path;

use crate::audit::report::{Check, Finding, Severity};
use crate::auth::keys::{KnownHosts, PlatformKey};
use crate::home::config::PlatformConfig;

/// The findings about `<home>/known_hosts`.
pub(crate) fn check(home: &Path, config: &PlatformConfig, out: &mut Vec<Finding>) {
    let hosts = match KnownHosts::load(home) {
        Ok(h) => h,
        Err(e) => {
            out.push(Finding::new(
                Check::KnownHosts,
                Severity::Medium,
                e.to_string(),
                format!(
                    "fix {} (a JSON object of \"HOST:PORT\": \"SERVERKEY\"), or move it away",
                    home.join(crate::auth::keys::KNOWN_HOSTS_FILE).display()
                ),
            ));
            return;
        }
    };
    let Ok(Some(own)) = PlatformKey::public_key(home) else {
        return;
    };
    let addresses = config
        .vip_addresses
        .iter()
        .flatten()
        .chain(config.bridge_addresses.iter().flatten());
    for address in addresses {
        let host = KnownHosts::normalize_address(address);
        if ["0.0.0.0", "*", "[::]"]
            .iter()
            .any(|any| host.starts_with(&format!("{any}:")))
        {
            continue;
        }
        if let Some(recorded) = hosts.get(address)
            && recorded != own
        {
            out.push(Finding::new(
                Check::KnownHosts,
                Severity::High,
                format!(
                    "{}: {host:?} (this platform's {address}) is recorded with serverkey {recorded}, but this \
                     platform's serverkey is {own}",
                    hosts.path().display()
                ),
                format!(
                    "in {}, set \"{host}\" to \"{own}\" (`vctl auth serverkey` prints it) or remove the entry; if \
                     nobody changed the platform's key, find out who wrote the other one",
                    hosts.path().display()
                ),
            ));
        }
    }
}
