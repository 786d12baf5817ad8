//! The home's and its key files' modes.
//!
//! | path | expected | group/others may read | group/others may write |
//! |------|----------|-----------------------|------------------------|
//! | the home | `0700` (`0701` in isolation mode: others only traverse) | medium | critical |
//! | `credentials_store/` | `0711` / `0700` | medium (identities listed) | critical |
//! | `keystore.json`, `credentials_store/<identity>.json`, `web-secret-key`, `web-users.json`, the `web-ssl-key` file, `config` when it holds `web-secret-key` | `0600` | high (a secret) | critical |
//! | `authz.json`, `auth.json`, `known_hosts`, `config` | `0600` / `0644` | fine | high (rules or pinned keys replaced) |
//!
//! `credentials_store/platform.json` holds no secret (`0644` by design) and is left alone;
//! an execute bit alone on a directory is traversal, which isolation mode needs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::audit::report::{Check, Finding, Severity};
use crate::auth::keys::{KNOWN_HOSTS_FILE, PlatformKey};
use crate::home::config::PlatformConfig;

/// The web service's token key (`crate::web::SECRET_FILE`; named here so the audit does
/// not need the `web` feature).
pub(crate) const WEB_SECRET_FILE: &str = "web-secret-key";
/// The web service's users (`crate::web::users::FILE`).
pub(crate) const WEB_USERS_FILE: &str = "web-users.json";

/// What a file holds, which decides what its mode may allow.
#[derive(Clone, Copy)]
enum Holds {
    /// A secret: nobody else may read it.
    Secret,
    /// Rules or pinned keys: nobody else may change it.
    Rules,
}

/// The findings about the home's and its files' modes; `config` names the TLS key and may
/// hold the web secret itself (then the config file is a secret).
pub(crate) fn check(home: &Path, config: Option<&PlatformConfig>, out: &mut Vec<Finding>) {
    directory(home, "the home", Check::HomeMode, out);
    let credentials = home.join("credentials_store");
    directory(&credentials, "credentials_store/", Check::FileMode, out);
    file(&home.join("keystore.json"), Holds::Secret, out);
    file(&home.join(WEB_SECRET_FILE), Holds::Secret, out);
    file(&home.join(WEB_USERS_FILE), Holds::Secret, out);
    let platform_file = PlatformKey::platform_file_in(home);
    if let Ok(entries) = std::fs::read_dir(&credentials) {
        let mut paths: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json") && *p != platform_file)
            .collect();
        paths.sort();
        for path in paths {
            file(&path, Holds::Secret, out);
        }
    }
    if let Some(key) = config.and_then(|c| c.extra.get("web-ssl-key")) {
        file(&home.join(key), Holds::Secret, out);
    }
    for name in [crate::auth::authz::AUTHZ_FILE, "auth.json", KNOWN_HOSTS_FILE] {
        file(&home.join(name), Holds::Rules, out);
    }
    let secret_inside = config.is_some_and(|c| c.extra.contains_key("web-secret-key"));
    file(
        &home.join("config"),
        if secret_inside {
            Holds::Secret
        } else {
            Holds::Rules
        },
        out,
    );
}

fn mode_of(path: &Path) -> Option<(u32, bool)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.permissions().mode() & 0o7777, meta.is_dir()))
}

fn directory(path: &Path, what: &str, check: Check, out: &mut Vec<Finding>) {
    let Some((mode, true)) = mode_of(path) else {
        return;
    };
    let shown = path.display();
    if mode & 0o022 != 0 {
        out.push(Finding::new(
            check,
            Severity::Critical,
            format!("{what} {shown} is mode {mode:04o}: others may create, replace and delete files in it"),
            format!("chmod go-w {shown}"),
        ));
    }
    if mode & 0o044 != 0 {
        out.push(Finding::new(
            check,
            Severity::Medium,
            format!(
                "{what} {shown} is mode {mode:04o}: others may list it (they need at most the traverse bit, for \
                 agent isolation)"
            ),
            format!("chmod go-r {shown}"),
        ));
    }
}

fn file(path: &Path, holds: Holds, out: &mut Vec<Finding>) {
    let Some((mode, false)) = mode_of(path) else {
        return;
    };
    let shown = path.display();
    if mode & 0o022 != 0 {
        let severity = match holds {
            Holds::Secret => Severity::Critical,
            Holds::Rules => Severity::High,
        };
        out.push(Finding::new(
            Check::FileMode,
            severity,
            format!("{shown} is mode {mode:04o}: others may change it"),
            format!("chmod go-w {shown}"),
        ));
    }
    if matches!(holds, Holds::Secret) && mode & 0o044 != 0 {
        out.push(Finding::new(
            Check::FileMode,
            Severity::High,
            format!("{shown} is mode {mode:04o}: others may read a secret (replace it once the mode is fixed: it may have been read)"),
            format!("chmod go-rw {shown}"),
        ));
    }
}

#[cfg(all(test, feature = "web"))]
mod tests {
    #[test]
    fn the_web_file_names_are_the_web_services() {
        assert_eq!(super::WEB_SECRET_FILE, crate::web::SECRET_FILE);
        assert_eq!(super::WEB_USERS_FILE, crate::web::users::FILE);
    }
}
