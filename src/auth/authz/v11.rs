//! VOLTTRON 11's `authz.json` (`volttron.types.auth.authz_types.VolttronAuthzMap`), parsed
//! and enforced as VOLTTRON 11's `VolttronAuthzManager` does, except where the parent
//! module's docs say otherwise.

use regex_lite::Regex;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};

use super::{AuthzError, JsonMap, Parser, PubsubAccess, TopicAccess, Unauthorized, key_at};
use crate::core::Value;

/// The top-level keys of VOLTTRON 11's format.
pub(super) const SECTIONS: &[&str] = &["protected_topics", "roles", "agent_groups", "agents"];

/// Whether `doc` is in VOLTTRON 11's format: it has `agents` or `agent_groups`, its
/// `protected_topics` is a list, or a role is an object (this project's roles are lists).
pub(super) fn is_v11(doc: &JsonMap) -> bool {
    doc.contains_key("agents")
        || doc.contains_key("agent_groups")
        || doc.get("protected_topics").is_some_and(Json::is_array)
        || doc
            .get("roles")
            .and_then(Json::as_object)
            .is_some_and(|roles| roles.values().any(Json::is_object))
}

/// A topic pattern of VOLTTRON 11: `/regex/`, or text that VOLTTRON compiles as a regular
/// expression with `.*` appended; either is matched from the start of the topic
/// (`re.match`).
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    /// `^(?:…)`, not anchored at the end.
    regex: Regex,
    /// Every topic the pattern matches starts with this.
    literal: String,
    /// The pattern is plain text (no regular expression syntax): it matches exactly the
    /// topics starting with `literal`.
    is_literal: bool,
    /// When the pattern matches a topic it also matches every topic extending it (no `$`
    /// or word-boundary assertion).
    closed: bool,
}

impl Pattern {
    fn matches(&self, topic: &str) -> bool {
        self.regex.is_match(topic)
    }
}

/// The method (`<identity>.<method>`) an RPC capability grants.
#[derive(Debug, Clone)]
enum Resource {
    Exact(String),
    /// `/regex/`, matched against the whole name.
    Regex(Regex),
}

/// What a restricted argument must be.
#[derive(Debug, Clone)]
enum ArgRule {
    /// `/regex/`: a string argument matching from its start (`re.match`).
    Regex(Regex, String),
    /// Any other value: an equal argument.
    Equals(Json),
}

#[derive(Debug, Clone)]
struct RpcGrant {
    resource: Resource,
    restrictions: BTreeMap<String, ArgRule>,
}

#[derive(Debug, Clone)]
struct PubsubGrant {
    pattern: Pattern,
    access: PubsubAccess,
}

#[derive(Debug, Clone, Default)]
struct Grants {
    rpc: Vec<RpcGrant>,
    pubsub: Vec<PubsubGrant>,
}

/// A role as written: its RPC capabilities (JSON, restricted when referenced with
/// restrictions) and pub/sub capabilities.
#[derive(Debug, Clone, Default)]
struct Role {
    rpc: Vec<Json>,
    pubsub: Vec<PubsubGrant>,
}

/// The parsed rules.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    /// The document as read, for [`super::Authz::to_json`].
    pub(super) doc: Json,
    protected_topics: Vec<Pattern>,
    protected_rpcs: BTreeMap<String, BTreeSet<String>>,
    grants: BTreeMap<String, Grants>,
    /// Content that VOLTTRON 11 accepts and that grants nothing (logged on load).
    pub(super) warnings: Vec<String>,
}

static NO_GRANTS: Grants = Grants {
    rpc: Vec::new(),
    pubsub: Vec::new(),
};

fn is_regex(text: &str) -> bool {
    text.len() > 1 && text.starts_with('/') && text.ends_with('/')
}

/// The literal text every match of `regex` (Python syntax, matched from the start) begins
/// with, and whether the whole pattern is that literal. Conservative: stops at the first
/// character with a meaning, drops a character a quantifier makes optional, and gives up
/// (`""`) on alternation.
fn literal_prefix(regex: &str) -> (String, bool) {
    if regex.contains('|') {
        return (String::new(), false);
    }
    let body = regex.strip_prefix('^').unwrap_or(regex);
    let mut literal = String::new();
    for c in body.chars() {
        if ".^$*+?()[]{}\\|".contains(c) {
            if matches!(c, '*' | '?' | '{') {
                literal.pop();
            }
            return (literal, false);
        }
        literal.push(c);
    }
    (literal, body.len() == regex.len())
}

/// Whether a match of `regex` (from the start) is kept by every extension of the text.
fn extension_closed(regex: &str) -> bool {
    !regex.contains('$') && !["\\b", "\\B", "\\z", "\\Z"].iter().any(|a| regex.contains(a))
}

impl Parser<'_> {
    fn regex(
        &self,
        source: &str,
        anchored_end: bool,
        at: &str,
        what: &'static str,
        text: &str,
    ) -> Result<Regex, AuthzError> {
        let pattern = if anchored_end {
            format!("^(?:{source})$")
        } else {
            format!("^(?:{source})")
        };
        Regex::new(&pattern).map_err(|e| {
            self.invalid(
                at,
                what,
                text,
                format!("not a regular expression this platform understands: {e}"),
            )
        })
    }

    fn pattern(&self, text: &str, at: &str) -> Result<Pattern, AuthzError> {
        if text.is_empty() {
            return Err(self.invalid(at, "topic pattern", text, "it is empty"));
        }
        if text.chars().any(char::is_control) {
            return Err(self.invalid(at, "topic pattern", text, "it contains a control character"));
        }
        let source = if is_regex(text) {
            &text[1..text.len() - 1]
        } else {
            text
        };
        let regex = self.regex(source, false, at, "topic pattern", text)?;
        let (literal, is_literal) = literal_prefix(source);
        Ok(Pattern {
            text: text.to_owned(),
            regex,
            literal,
            is_literal,
            closed: extension_closed(source),
        })
    }

    /// A list of names, in order.
    pub(super) fn string_list<'j>(
        &self,
        v: &'j Json,
        at: &str,
        what: &'static str,
    ) -> Result<Vec<&'j str>, AuthzError> {
        let list = v
            .as_array()
            .ok_or_else(|| self.wrong_type(at, "a list of names", v))?;
        let mut out = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let name = item
                .as_str()
                .ok_or_else(|| self.wrong_type(&at, "a string", item))?;
            self.name(name, &at, what)?;
            out.push(name);
        }
        Ok(out)
    }

    /// `rpc_capabilities`: a list of `"<identity>.<method>"`, `"/regex/"`, or
    /// `{"<identity>.<method>": {param: value}}`. Returned as written (validated).
    fn rpc_capabilities(&self, v: &Json, at: &str) -> Result<Vec<Json>, AuthzError> {
        let list = v.as_array().ok_or_else(|| {
            self.wrong_type(
                at,
                "a list of RPC capabilities (\"<identity>.<method>\", \"/regex/\" or {\"<identity>.<method>\": {parameter: value}})",
                v,
            )
        })?;
        for (i, item) in list.iter().enumerate() {
            self.rpc_grant(item, &JsonMap::new(), &format!("{at}[{i}]"))?;
        }
        Ok(list.clone())
    }

    /// One RPC capability, with `extra` restrictions (from a role referenced with
    /// restrictions) over its own.
    fn rpc_grant(&self, item: &Json, extra: &JsonMap, at: &str) -> Result<RpcGrant, AuthzError> {
        let (name, own, params_at) = match item {
            Json::String(name) => (name.as_str(), None, at.to_owned()),
            Json::Object(map) if map.len() == 1 => {
                let (name, restrictions) = map.iter().next().unwrap_or_else(|| unreachable!("one entry"));
                let at = key_at(at, name);
                let restrictions = restrictions.as_object().ok_or_else(|| {
                    self.wrong_type(&at, "an object of argument restrictions", restrictions)
                })?;
                (name.as_str(), Some(restrictions), at)
            }
            other => {
                return Err(self.wrong_type(
                    at,
                    "a string (\"<identity>.<method>\" or \"/regex/\") or an object with one entry",
                    other,
                ));
            }
        };
        self.name(name, at, "RPC capability")?;
        let mut restrictions = BTreeMap::new();
        for (param, value) in own.into_iter().flatten().chain(extra) {
            let at = key_at(&params_at, param);
            self.name(param, &at, "parameter")?;
            let rule = match value {
                Json::String(s) if is_regex(s) => ArgRule::Regex(
                    self.regex(&s[1..s.len() - 1], false, &at, "argument pattern", s)?,
                    s.clone(),
                ),
                other => ArgRule::Equals(other.clone()),
            };
            restrictions.insert(param.clone(), rule);
        }
        // As in VOLTTRON 11, a capability with restrictions is matched by its exact name.
        let resource = if restrictions.is_empty() && own.is_none() && is_regex(name) {
            Resource::Regex(self.regex(&name[1..name.len() - 1], true, at, "RPC capability", name)?)
        } else {
            Resource::Exact(name.to_owned())
        };
        Ok(RpcGrant {
            resource,
            restrictions,
        })
    }

    /// `pubsub_capabilities`: topic pattern → `"publish"`, `"subscribe"` or `"pubsub"`.
    fn pubsub_capabilities(&self, v: &Json, at: &str) -> Result<Vec<PubsubGrant>, AuthzError> {
        let map = v.as_object().ok_or_else(|| {
            self.wrong_type(
                at,
                "an object (topic pattern -> \"publish\", \"subscribe\" or \"pubsub\")",
                v,
            )
        })?;
        let mut out = Vec::new();
        for (topic, access) in map {
            let at = key_at(at, topic);
            let pattern = self.pattern(topic, &at)?;
            let access = access
                .as_str()
                .ok_or_else(|| self.wrong_type(&at, "\"publish\", \"subscribe\" or \"pubsub\"", access))?;
            let access = access.parse::<PubsubAccess>().map_err(|_| {
                self.invalid(
                    &at,
                    "topic access",
                    access,
                    "expected \"publish\", \"subscribe\" or \"pubsub\"",
                )
            })?;
            out.push(PubsubGrant { pattern, access });
        }
        Ok(out)
    }

    /// `agent_roles` (or `roles`): role names, or `{role: {param: value}}`.
    fn role_refs(&self, v: &Json, at: &str) -> Result<Vec<(String, JsonMap, String)>, AuthzError> {
        let list = v.as_array().ok_or_else(|| {
            self.wrong_type(
                at,
                "a list of roles (\"<role>\" or {\"<role>\": {parameter: value}})",
                v,
            )
        })?;
        let mut out = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let at = format!("{at}[{i}]");
            match item {
                Json::String(name) => {
                    self.name(name, &at, "role")?;
                    out.push((name.clone(), JsonMap::new(), at));
                }
                Json::Object(map) if map.len() == 1 => {
                    let (name, restrictions) = map.iter().next().unwrap_or_else(|| unreachable!("one entry"));
                    self.name(name, &at, "role")?;
                    let inner = key_at(&at, name);
                    let restrictions = restrictions.as_object().ok_or_else(|| {
                        self.wrong_type(&inner, "an object of argument restrictions", restrictions)
                    })?;
                    out.push((name.clone(), restrictions.clone(), inner));
                }
                other => {
                    return Err(self.wrong_type(&at, "a role name or an object with one entry", other));
                }
            }
        }
        Ok(out)
    }

    /// The roles key of a group or agent: VOLTTRON 11 writes `agent_roles` (and reads a
    /// group's as `roles`); both are accepted, not both at once.
    fn roles_of<'j>(&self, map: &'j JsonMap, at: &str) -> Result<Option<(&'j Json, String)>, AuthzError> {
        match (map.get("agent_roles"), map.get("roles")) {
            (Some(_), Some(_)) => Err(self.invalid(
                at,
                "entry",
                "agent_roles",
                "it has both `agent_roles` and `roles`",
            )),
            (Some(v), None) => Ok(Some((v, format!("{at}.agent_roles")))),
            (None, Some(v)) => Ok(Some((v, format!("{at}.roles")))),
            (None, None) => Ok(None),
        }
    }

    fn comments(&self, map: &JsonMap, at: &str) -> Result<(), AuthzError> {
        match map.get("comments") {
            None | Some(Json::Null) | Some(Json::String(_)) => Ok(()),
            Some(other) => Err(self.wrong_type(&format!("{at}.comments"), "a string", other)),
        }
    }

    pub(super) fn v11(&self, json: &Json, doc: &JsonMap) -> Result<Rules, AuthzError> {
        self.only_keys(
            doc,
            "$",
            SECTIONS,
            "VOLTTRON 11's protected_topics, roles, agent_groups or agents: the file has VOLTTRON 11 \
             content (agents, agent_groups, a protected_topics list or object roles) and cannot mix \
             in this project's sections",
        )?;
        let mut rules = Rules {
            doc: json.clone(),
            protected_topics: Vec::new(),
            protected_rpcs: BTreeMap::new(),
            grants: BTreeMap::new(),
            warnings: Vec::new(),
        };
        if let Some(v) = doc.get("protected_topics") {
            let at = "$.protected_topics";
            let list = v
                .as_array()
                .ok_or_else(|| self.wrong_type(at, "a list of topic patterns", v))?;
            for (i, item) in list.iter().enumerate() {
                let at = format!("{at}[{i}]");
                let text = item
                    .as_str()
                    .ok_or_else(|| self.wrong_type(&at, "a string", item))?;
                rules.protected_topics.push(self.pattern(text, &at)?);
            }
        }

        let mut roles: BTreeMap<String, Role> = BTreeMap::new();
        if let Some(v) = doc.get("roles") {
            for (name, role) in self.object(v, "$.roles")? {
                let at = key_at("$.roles", name);
                self.name(name, &at, "role")?;
                let map = self.object(role, &at)?;
                self.only_keys(
                    map,
                    &at,
                    &["rpc_capabilities", "pubsub_capabilities", "comments"],
                    "rpc_capabilities or pubsub_capabilities",
                )?;
                self.comments(map, &at)?;
                let mut parsed = Role::default();
                if let Some(v) = map.get("rpc_capabilities").filter(|v| !v.is_null()) {
                    parsed.rpc = self.rpc_capabilities(v, &format!("{at}.rpc_capabilities"))?;
                }
                if let Some(v) = map.get("pubsub_capabilities").filter(|v| !v.is_null()) {
                    parsed.pubsub = self.pubsub_capabilities(v, &format!("{at}.pubsub_capabilities"))?;
                }
                roles.insert(name.clone(), parsed);
            }
        }

        // Each identity's grants: its own, its groups', and its and its groups' roles'.
        let add_roles = |rules: &mut Rules,
                         identity: &str,
                         refs: &[(String, JsonMap, String)]|
         -> Result<(), AuthzError> {
            for (role, restrictions, at) in refs {
                let Some(defined) = roles.get(role) else {
                    rules.warnings.push(format!(
                        "{}: {at}: role {role:?} is not defined; it grants nothing",
                        self.file.display()
                    ));
                    continue;
                };
                let grants = rules.grants.entry(identity.to_owned()).or_default();
                for (i, cap) in defined.rpc.iter().enumerate() {
                    let cap_at = format!("$.roles[{role:?}].rpc_capabilities[{i}]");
                    let mut grant = self.rpc_grant(cap, restrictions, &cap_at)?;
                    if !restrictions.is_empty()
                        && let (Json::String(name), Resource::Exact(_)) = (cap, &grant.resource)
                        && is_regex(name)
                    {
                        // VOLTTRON 11 turns the pattern into an exact name, which no method has.
                        rules.warnings.push(format!(
                            "{}: {at}: role {role:?} given with restrictions makes its capability \
                             {name:?} an exact name (as VOLTTRON 11 does); it matches no method",
                            self.file.display()
                        ));
                        grant.resource = Resource::Exact(name.clone());
                    }
                    grants.rpc.push(grant);
                }
                grants.pubsub.extend(defined.pubsub.iter().cloned());
            }
            Ok(())
        };

        if let Some(v) = doc.get("agent_groups") {
            for (name, group) in self.object(v, "$.agent_groups")? {
                let at = key_at("$.agent_groups", name);
                self.name(name, &at, "group")?;
                let map = self.object(group, &at)?;
                self.only_keys(
                    map,
                    &at,
                    &[
                        "identities",
                        "agent_roles",
                        "roles",
                        "rpc_capabilities",
                        "pubsub_capabilities",
                        "comments",
                    ],
                    "identities, agent_roles, rpc_capabilities or pubsub_capabilities",
                )?;
                self.comments(map, &at)?;
                let identities = match map.get("identities") {
                    Some(v) => self.string_list(v, &format!("{at}.identities"), "identity")?,
                    None => Vec::new(),
                };
                for (i, identity) in identities.iter().enumerate() {
                    self.identity(identity, &format!("{at}.identities[{i}]"))?;
                }
                let rpc = match map.get("rpc_capabilities").filter(|v| !v.is_null()) {
                    Some(v) => {
                        let at = format!("{at}.rpc_capabilities");
                        let list = self.rpc_capabilities(v, &at)?;
                        list.iter()
                            .enumerate()
                            .map(|(i, c)| self.rpc_grant(c, &JsonMap::new(), &format!("{at}[{i}]")))
                            .collect::<Result<Vec<_>, _>>()?
                    }
                    None => Vec::new(),
                };
                let pubsub = match map.get("pubsub_capabilities").filter(|v| !v.is_null()) {
                    Some(v) => self.pubsub_capabilities(v, &format!("{at}.pubsub_capabilities"))?,
                    None => Vec::new(),
                };
                let refs = match self.roles_of(map, &at)? {
                    Some((v, at)) => self.role_refs(v, &at)?,
                    None => Vec::new(),
                };
                for identity in identities {
                    let grants = rules.grants.entry(identity.to_owned()).or_default();
                    grants.rpc.extend(rpc.iter().cloned());
                    grants.pubsub.extend(pubsub.iter().cloned());
                    add_roles(&mut rules, identity, &refs)?;
                }
            }
        }

        if let Some(v) = doc.get("agents") {
            for (identity, agent) in self.object(v, "$.agents")? {
                let at = key_at("$.agents", identity);
                self.identity(identity, &at)?;
                let map = self.object(agent, &at)?;
                self.only_keys(
                    map,
                    &at,
                    &[
                        "protected_rpcs",
                        "agent_roles",
                        "roles",
                        "rpc_capabilities",
                        "pubsub_capabilities",
                        "comments",
                    ],
                    "protected_rpcs, agent_roles, rpc_capabilities, pubsub_capabilities or comments",
                )?;
                self.comments(map, &at)?;
                if let Some(v) = map.get("protected_rpcs").filter(|v| !v.is_null()) {
                    let methods = self.string_list(v, &format!("{at}.protected_rpcs"), "method")?;
                    rules
                        .protected_rpcs
                        .entry(identity.clone())
                        .or_default()
                        .extend(methods.into_iter().map(str::to_owned));
                }
                let grants = rules.grants.entry(identity.clone()).or_default();
                if let Some(v) = map.get("rpc_capabilities").filter(|v| !v.is_null()) {
                    let at = format!("{at}.rpc_capabilities");
                    for (i, c) in self.rpc_capabilities(v, &at)?.iter().enumerate() {
                        grants
                            .rpc
                            .push(self.rpc_grant(c, &JsonMap::new(), &format!("{at}[{i}]"))?);
                    }
                }
                if let Some(v) = map.get("pubsub_capabilities").filter(|v| !v.is_null()) {
                    grants
                        .pubsub
                        .extend(self.pubsub_capabilities(v, &format!("{at}.pubsub_capabilities"))?);
                }
                if let Some((v, roles_at)) = self.roles_of(map, &at)? {
                    let refs = self.role_refs(v, &roles_at)?;
                    add_roles(&mut rules, identity, &refs)?;
                }
            }
        }
        Ok(rules)
    }
}

/// Whether a JSON restriction value equals an argument (numbers by value).
fn equal(expected: &Json, actual: &Value) -> bool {
    let actual = Json::from(actual.clone());
    match (expected, &actual) {
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        _ => *expected == actual,
    }
}

fn describe(value: &Value) -> String {
    value.to_json_string()
}

impl Rules {
    /// Whether any topic is protected.
    pub(super) fn protects_topics(&self) -> bool {
        !self.protected_topics.is_empty()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.protected_topics.is_empty() && self.protected_rpcs.is_empty() && self.grants.is_empty()
    }

    fn grants(&self, identity: &str) -> &Grants {
        self.grants.get(identity).unwrap_or(&NO_GRANTS)
    }

    /// The methods of `identity` listed in its `protected_rpcs`, sorted.
    pub(super) fn protected_rpcs(&self, identity: &str) -> Vec<String> {
        self.protected_rpcs
            .get(identity)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn is_protected_rpc(&self, identity: &str, method: &str) -> bool {
        self.protected_rpcs
            .get(identity)
            .is_some_and(|m| m.contains(method))
    }

    /// VOLTTRON 11's `check_rpc_authorization`: whether `identity` holds an RPC capability
    /// for `method_name` (`<identity>.<method>`) whose argument restrictions the arguments
    /// (looked up by parameter name) satisfy. The error says why not.
    pub(super) fn check_rpc(
        &self,
        identity: &str,
        method_name: &str,
        argument: &dyn Fn(&str) -> Option<Value>,
    ) -> Result<(), String> {
        let mut reason = None;
        'grants: for grant in &self.grants(identity).rpc {
            let named = match &grant.resource {
                Resource::Exact(name) => name == method_name,
                Resource::Regex(regex) => regex.is_match(method_name),
            };
            if !named {
                continue;
            }
            for (param, rule) in &grant.restrictions {
                let Some(value) = argument(param) else {
                    reason = Some(format!(
                        "'{identity}' may call {method_name} only with argument '{param}' restricted, \
                         and it was not given (pass it by name)"
                    ));
                    continue 'grants;
                };
                let (ok, allowed) = match rule {
                    ArgRule::Regex(regex, text) => (
                        matches!(&value, Value::String(s) if regex.is_match(s)),
                        format!("matching {text}"),
                    ),
                    ArgRule::Equals(expected) => (equal(expected, &value), format!("= {expected}")),
                };
                if !ok {
                    reason = Some(format!(
                        "'{identity}' may call {method_name} only with '{param}' {allowed}, not {}",
                        describe(&value)
                    ));
                    continue 'grants;
                }
            }
            return Ok(());
        }
        Err(reason.unwrap_or_else(|| format!("'{identity}' has no RPC capability for {method_name}")))
    }

    /// The protected topic pattern `topic` falls under, if any.
    fn protecting(&self, topic: &str) -> Option<&Pattern> {
        self.protected_topics.iter().find(|p| p.matches(topic))
    }

    /// Publishing to a protected topic needs a pub/sub capability granting publish whose
    /// pattern matches the topic.
    pub(super) fn check_publish(&self, identity: &str, topic: &str) -> Result<(), Unauthorized> {
        let Some(protected) = self.protecting(topic) else {
            return Ok(());
        };
        let granted = self
            .grants(identity)
            .pubsub
            .iter()
            .any(|g| g.access.grants(TopicAccess::Publish) && g.pattern.matches(topic));
        if granted {
            return Ok(());
        }
        Err(Unauthorized {
            identity: identity.to_owned(),
            access: TopicAccess::Publish,
            topic: topic.to_owned(),
            prefix: protected.text.clone(),
            capability: "publish".to_owned(),
        })
    }

    /// A subscription `subscription` (a byte-wise prefix; MQTT-style patterns are judged by
    /// their literal levels before the first wildcard) is refused if it could receive a
    /// topic under a protected pattern without a capability covering it (see the module
    /// docs).
    pub(super) fn check_subscribe(&self, identity: &str, subscription: &str) -> Result<(), Unauthorized> {
        if self.protected_topics.is_empty() {
            return Ok(());
        }
        let levels: Vec<&str> = subscription.split('/').collect();
        let prefix = match levels.iter().position(|l| *l == "+" || *l == "#") {
            None => subscription.to_owned(),
            Some(first) => {
                let mut literal = levels[..first].join("/");
                if first > 0 {
                    literal.push('/');
                }
                literal
            }
        };
        let grants: Vec<&PubsubGrant> = self
            .grants(identity)
            .pubsub
            .iter()
            .filter(|g| g.access.grants(TopicAccess::Subscribe) && g.pattern.closed)
            .collect();
        for protected in &self.protected_topics {
            let overlaps = protected.matches(&prefix)
                || protected.literal.starts_with(&prefix)
                || (!protected.is_literal && prefix.starts_with(&protected.literal));
            if !overlaps {
                continue;
            }
            let covered = grants
                .iter()
                .any(|g| g.pattern.matches(&prefix) || g.pattern.matches(&protected.literal));
            if !covered {
                return Err(Unauthorized {
                    identity: identity.to_owned(),
                    access: TopicAccess::Subscribe,
                    topic: subscription.to_owned(),
                    prefix: protected.text.clone(),
                    capability: "subscribe".to_owned(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix("devices"), ("devices".into(), true));
        assert_eq!(literal_prefix("devices/*"), ("devices".into(), false));
        assert_eq!(literal_prefix("devices/.*/x"), ("devices/".into(), false));
        assert_eq!(literal_prefix("^abc+"), ("abc".into(), false));
        assert_eq!(literal_prefix("ab?c"), ("a".into(), false));
        assert_eq!(literal_prefix("a|b"), ("".into(), false));
        assert_eq!(literal_prefix(".*"), ("".into(), false));
        assert_eq!(literal_prefix("x{2}"), ("".into(), false));
        assert!(extension_closed(".*"));
        assert!(!extension_closed("devices$"));
        assert!(!extension_closed("devices\\b"));
    }
}
