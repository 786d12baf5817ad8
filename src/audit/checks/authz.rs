//! `authz.json` granting by wildcard (both formats), and a file that does not load.
//!
//! | format | grant | finding |
//! |--------|-------|---------|
//! | either | the file does not load | high: the platform refuses to start (or keeps its last good rules) |
//! | VOLTTRON 11 | an `rpc_capabilities` `/regex/` matching every method name | critical: every protected method, `platform.auth`'s edits included (so every right) |
//! | VOLTTRON 11 | an `rpc_capabilities` `/regex/` matching `platform.auth.*` edits | high |
//! | VOLTTRON 11 | a `pubsub_capabilities` pattern matching every topic | medium: every protected topic |
//! | VOLTTRON 11 | any of these held only by the platform's own services and `control.connection` (the `admin` role VOLTTRON writes) | none: administration by design |
//! | this project's | a restriction glob matching every value (`*`) | medium: the restriction restricts nothing |
//! | this project's | a non-platform user holding `allow_auth_modifications` | medium: it can grant itself anything |
//! | this project's | `rpc_method_authorizations["platform.auth"]` opening an editing method (`[]`) | high |
//! | either | a capability *named* `*`, `.*` or `/.*/` in this project's format, or an identity `*` | low: identities and this format's capability names are exact, so it is no wildcard, probably a mistake |

use std::path::Path;

use serde_json::Value as Json;

use crate::audit::report::{Check, Finding, Severity};
use crate::auth::authz::{AUTH_MODIFICATIONS, AUTH_OPEN_METHODS, AUTH_SERVICE, Authz, AuthzFormat};

/// Method names a regex granting "everything" matches.
const METHOD_PROBES: &[&str] = &[
    "platform.driver.set_point",
    "zz9.q7",
    "platform.auth.approve_authorization",
];
/// Topics a pattern granting "every topic" matches.
const TOPIC_PROBES: &[&str] = &["devices/actuators/x", "zz9/q7", "secrets"];
/// `platform.auth`'s editing methods, which give every right.
const AUTH_EDIT_PROBES: &[&str] = &[
    "platform.auth.approve_authorization",
    "platform.auth.set_user_capabilities",
];

/// The platform's own identities and `vctl`'s, which administer auth by design.
fn is_administration(identity: &str) -> bool {
    crate::services::is_service(identity)
        || identity == crate::platform::PLATFORM_IDENTITY
        || identity.starts_with(crate::services::control::CONTROL_CONNECTION)
}

fn looks_wild(name: &str) -> bool {
    matches!(name.trim(), "*" | ".*" | "/.*/" | ".+" | "/.+/" | "**")
}

/// The findings about `<home>/authz.json`.
pub(crate) fn check(home: &Path, out: &mut Vec<Finding>) {
    let path = home.join(crate::auth::authz::AUTHZ_FILE);
    let authz = match Authz::load(&path) {
        Ok(a) => a,
        Err(e) => {
            out.push(Finding::new(
                Check::AuthzWildcard,
                Severity::High,
                format!("{e}"),
                "fix the file (the platform refuses to start with it, or keeps the rules it had)",
            ));
            return;
        }
    };
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    let Ok(json) = serde_json::from_slice::<Json>(&bytes) else {
        return;
    };
    let shown = path.display().to_string();
    match authz.format() {
        AuthzFormat::Volttron11 => volttron11(&json, &shown, out),
        AuthzFormat::Native => native(&authz, &json, &shown, out),
    }
}

/// Whether the VOLTTRON 11 `/regex/` (or exact text) `pattern` matches every probe;
/// `whole`: matched against the whole text (RPC), else from its start (topics).
fn matches_all(pattern: &str, whole: bool, probes: &[&str]) -> bool {
    let source = match pattern.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
        Some(re) => re.to_owned(),
        None if whole => return looks_wild(pattern),
        None => pattern.to_owned(),
    };
    let anchored = if whole {
        format!("^(?:{source})$")
    } else {
        format!("^(?:{source})")
    };
    regex_lite::Regex::new(&anchored).is_ok_and(|re| probes.iter().all(|p| re.is_match(p)))
}

/// The role names in an `agent_roles` (or a group's `roles`) list: names, or objects keyed
/// by the name (a role with argument restrictions).
fn role_names(list: &Json) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| match r {
            Json::String(s) => Some(s.as_str()),
            Json::Object(o) => o.keys().next().map(String::as_str),
            _ => None,
        })
        .collect()
}

/// VOLTTRON 11's file: each grant (a role's, an agent's own) is judged by who holds it; the
/// `admin` role VOLTTRON writes for its own services (`/.*/`) is no finding.
fn volttron11(json: &Json, file: &str, out: &mut Vec<Finding>) {
    let empty = serde_json::Map::new();
    let roles = json["roles"].as_object().unwrap_or(&empty);
    let groups = json["agent_groups"].as_object().unwrap_or(&empty);
    let agents = json["agents"].as_object().unwrap_or(&empty);
    for (name, group) in groups {
        for id in group["identities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
        {
            if looks_wild(id) {
                exact_identity(id, &format!("$.agent_groups[{name:?}].identities"), file, out);
            }
        }
    }
    for id in agents.keys().filter(|k| looks_wild(k)) {
        exact_identity(id, "$.agents", file, out);
    }
    for (role, grants) in roles {
        let mut holders: Vec<&str> = Vec::new();
        for group in groups.values() {
            let named = role_names(&group["agent_roles"])
                .into_iter()
                .chain(role_names(&group["roles"]));
            if named.into_iter().any(|r| r == role) {
                holders.extend(
                    group["identities"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Json::as_str),
                );
            }
        }
        for (id, agent) in agents {
            if role_names(&agent["agent_roles"]).contains(&role.as_str()) {
                holders.push(id);
            }
        }
        judge(grants, &format!("$.roles[{role:?}]"), &holders, file, out);
    }
    for (id, agent) in agents {
        judge(agent, &format!("$.agents[{id:?}]"), &[id.as_str()], file, out);
    }
}

/// The findings about one grant (`rpc_capabilities`, `pubsub_capabilities`) held by `holders`.
fn judge(grants: &Json, at: &str, holders: &[&str], file: &str, out: &mut Vec<Finding>) {
    let mut others: Vec<&str> = holders
        .iter()
        .copied()
        .filter(|h| !is_administration(h))
        .collect();
    others.sort_unstable();
    others.dedup();
    if others.is_empty() {
        return;
    }
    let held = format!("held by {}", others.join(", "));
    for (i, item) in grants["rpc_capabilities"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = match item {
            Json::String(s) => s.as_str(),
            Json::Object(o) => o.keys().next().map_or("", String::as_str),
            _ => continue,
        };
        rpc_grant(name, &format!("{at}.rpc_capabilities[{i}]"), &held, file, out);
    }
    for (pattern, access) in grants["pubsub_capabilities"].as_object().into_iter().flatten() {
        if matches_all(pattern, false, TOPIC_PROBES) {
            out.push(Finding::new(
                Check::AuthzWildcard,
                Severity::Medium,
                format!(
                    "{file}: {at}.pubsub_capabilities[{pattern:?}] = {access} ({held}) matches every topic: it \
                     grants every protected topic"
                ),
                "grant the topic prefixes the agent needs (\"devices/campus/\")",
            ));
        }
    }
}

fn rpc_grant(name: &str, at: &str, held: &str, file: &str, out: &mut Vec<Finding>) {
    if matches_all(name, true, METHOD_PROBES) {
        out.push(Finding::new(
            Check::AuthzWildcard,
            Severity::Critical,
            format!(
                "{file}: {at} = {name:?} ({held}) matches every method name: every protected method, \
                 platform.auth's edits included, so every right"
            ),
            "list the methods (\"platform.driver.set_point\") or a narrow /regex/ instead",
        ));
    } else if matches_all(name, true, AUTH_EDIT_PROBES) {
        out.push(Finding::new(
            Check::AuthzWildcard,
            Severity::High,
            format!(
                "{file}: {at} = {name:?} ({held}) matches platform.auth's editing methods: it can grant itself \
                 anything"
            ),
            "grant platform.auth's methods to administrators only, by name",
        ));
    }
}

fn exact_identity(id: &str, at: &str, file: &str, out: &mut Vec<Finding>) {
    out.push(Finding::new(
        Check::AuthzWildcard,
        Severity::Low,
        format!("{file}: {at} names the identity {id:?}: identities are exact, so this grants only an agent called {id:?}"),
        "name the agents' identities (or use a group)",
    ));
}

fn native(authz: &Authz, json: &Json, file: &str, out: &mut Vec<Finding>) {
    for (identity, user) in authz.users() {
        if looks_wild(identity) {
            exact_identity(identity, "$.users", file, out);
        }
        for (capability, restrictions) in &user.capabilities {
            if looks_wild(capability) {
                out.push(Finding::new(
                    Check::AuthzWildcard,
                    Severity::Low,
                    format!(
                        "{file}: $.users[{identity:?}].capabilities names {capability:?}: capability names are exact \
                         here, so it grants only methods that require a capability of that name"
                    ),
                    "name the capabilities rpc_method_authorizations requires",
                ));
            }
            for (param, allowed) in restrictions.iter().flatten() {
                if !allowed.is_empty() && allowed.chars().all(|c| c == '*') {
                    out.push(Finding::new(
                        Check::AuthzWildcard,
                        Severity::Medium,
                        format!(
                            "{file}: $.users[{identity:?}].capabilities[{capability:?}][{param:?}] = {allowed:?} \
                             allows every value: the restriction restricts nothing"
                        ),
                        "restrict the argument to the values the agent needs (\"<self>\", \"campus/*\")",
                    ));
                }
            }
        }
        if authz.has_capability(identity, AUTH_MODIFICATIONS) && !is_administration(identity) {
            out.push(Finding::new(
                Check::AuthzWildcard,
                Severity::Medium,
                format!(
                    "{file}: {identity:?} holds {AUTH_MODIFICATIONS}: it may edit authz.json and auth.json, so grant \
                     itself any capability"
                ),
                format!("remove {AUTH_MODIFICATIONS} from {identity:?} unless it is an administration agent"),
            ));
        }
    }
    if let Some(methods) = json["rpc_method_authorizations"][AUTH_SERVICE].as_object() {
        for (method, caps) in methods {
            if caps.as_array().is_some_and(Vec::is_empty) && !AUTH_OPEN_METHODS.contains(&method.as_str()) {
                out.push(Finding::new(
                    Check::AuthzWildcard,
                    Severity::High,
                    format!(
                        "{file}: $.rpc_method_authorizations[\"{AUTH_SERVICE}\"][{method:?}] = [] opens {method} to \
                         every agent"
                    ),
                    format!("remove the entry (then {method} requires {AUTH_MODIFICATIONS})"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_patterns() {
        assert!(matches_all("/.*/", true, METHOD_PROBES));
        assert!(!matches_all("/platform\\.driver\\..*/", true, METHOD_PROBES));
        assert!(matches_all("/platform\\.auth\\..*/", true, AUTH_EDIT_PROBES));
        assert!(matches_all("/.*/", false, TOPIC_PROBES));
        assert!(matches_all("", false, TOPIC_PROBES));
        assert!(!matches_all("devices", false, TOPIC_PROBES));
    }
}
