//! `$VOLTTRON_HOME/authz.json`: who may call which RPC method and publish or subscribe to
//! which topics.
//!
//! # The file
//!
//! ```json
//! {
//!   "roles":  { "operator": ["edit_config_store", "read_devices"] },
//!   "groups": { "campus_ops": ["operator"] },
//!   "users": {
//!     "hvac.agent": {
//!       "roles": ["operator"],
//!       "groups": [],
//!       "capabilities": {
//!         "edit_config_store": { "identity": "<self>" },
//!         "control": null
//!       }
//!     },
//!     "scheduler": { "groups": ["campus_ops"], "capabilities": ["actuate"] }
//!   },
//!   "rpc_method_authorizations": {
//!     "config.store": {
//!       "set_config": ["edit_config_store"],
//!       "delete_config": ["edit_config_store"]
//!     }
//!   },
//!   "protected_topics": {
//!     "publish":   { "devices/actuators": ["actuate"] },
//!     "subscribe": { "secrets": ["read_secrets"] }
//!   }
//! }
//! ```
//!
//! Every section is optional; a missing file is the same as `{}`: nothing is protected and
//! nothing is required ([`Authz::default`]).
//!
//! | section | shape | meaning |
//! |---------|-------|---------|
//! | `roles` | role → list of capabilities | a role bundles capabilities |
//! | `groups` | group → list of roles | a group bundles roles |
//! | `users` | identity → `{roles, groups, capabilities}` | what an agent holds; `capabilities` is a map (capability → restrictions or `null`) or a plain list |
//! | `rpc_method_authorizations` | callee identity → method → list of capabilities | the caller needs every listed capability |
//! | `protected_topics` | `publish`/`subscribe` → topic prefix → list of capabilities | the publisher/subscriber needs every listed capability |
//!
//! # Capabilities
//!
//! A user's effective capabilities are its direct `capabilities`, the capabilities of its
//! `roles`, and the capabilities of the roles of its `groups`. A direct capability may carry
//! an argument restriction map:
//!
//! * a key is a parameter name (`"identity"`) or a positional index written as a string
//!   (`"0"`); a name is looked up among the call's named arguments, then among its
//!   positional ones by the callee's parameter list (the platform knows it for every
//!   in-process agent, and bridged agents declare theirs in their hello); an index among
//!   the positional ones. A restricted argument that is absent refuses the call;
//! * a value is the exact text the argument must have, `"<self>"` for the caller's own
//!   identity, or a glob (`*` any run of characters, `?` one character; case-sensitive;
//!   `<self>` may appear inside a glob, as in `"<self>.*"`). A non-string argument is compared
//!   as its JSON text (`5`, `true`).
//!
//! A capability that comes from a role has no restriction, and when the same capability is
//! held both restricted and unrestricted, the unrestricted grant wins. Restrictions concern
//! RPC arguments only: for topic protection, holding the capability is enough.
//!
//! # The auth service's own methods
//!
//! Every method of the auth service (`platform.auth`) requires the capability
//! [`AUTH_MODIFICATIONS`] (`allow_auth_modifications`, as in VOLTTRON) unless
//! `rpc_method_authorizations["platform.auth"]` lists the method (an empty list opens it to
//! everyone), but for [`AUTH_OPEN_METHODS`], the read-only queries every VOLTTRON 11 agent
//! makes (`get_protected_rpcs`, `check_rpc_authorization`, `check_pubsub_authorization`,
//! `is_protected_topic`). Otherwise any agent could grant itself every capability. Even
//! [`Authz::default`] has this requirement; it protects nothing else. (The platform's own
//! identities are not checked at all.)
//!
//! Likewise every method of the profile service (`platform.profile`, feature `profile`)
//! requires [`PROFILE`] (`profile`) unless `rpc_method_authorizations["platform.profile"]`
//! lists the method ([`default_requirement`]): a CPU profile shows what runs, and costs it.
//!
//! # Protected topics
//!
//! Protected prefixes are VOLTTRON topic prefixes taken level by level (`/`-separated): the
//! prefix `devices/actuators` protects `devices/actuators` and `devices/actuators/...`, but not
//! `devices/actuatorsX`. A trailing `/` is ignored; the empty prefix protects every topic.
//! When several protected prefixes cover a topic, the capabilities of each are required.
//! Protection applies on every bus.
//!
//! * **Publish** to a topic is refused unless the publisher holds the capabilities of every
//!   protected `publish` prefix the topic is under.
//! * **Subscribe** is refused if the subscription *could receive* any topic under a protected
//!   `subscribe` prefix whose capabilities the subscriber lacks. Subscriptions match topics
//!   byte-wise (`dev` receives `devices/...`), so a plain prefix subscription `S` is checked
//!   against a protected prefix `P` when `S` is under `P` (`devices/actuators/rtu1`) or `P`
//!   starts with `S` (`""`, `dev`, `devices`, `devices/actuators`). An MQTT-style pattern
//!   (a `+` or `#` level) is judged by its literal levels before the first wildcard
//!   (`devices/+/x` as `devices`, `+/x` and `#` as everything).
//!
//! This is stricter than VOLTTRON, which either does not check subscriptions at all
//! (monolithic 9.x protects only publishing) or checks a subscription prefix as if it were a
//! published topic (modular 10.x), so that subscribing to `""` or `devices` receives
//! everything under a protected `devices/actuators`.
//!
//! # VOLTTRON 11's format
//!
//! The same file may instead be in VOLTTRON 11's format (`VolttronAuthzMap`); it is taken
//! to be when it has `agents` or `agent_groups`, when `protected_topics` is a list, or when a
//! role is an object. It is enforced, reloaded when it changes, and written back as it was
//! read; this platform's editing RPCs refuse to change it ([`AuthzError::Unsupported`]).
//!
//! ```json
//! {
//!   "roles": {
//!     "default_rpc_capabilities": { "rpc_capabilities": ["platform.config_store.set_config"] },
//!     "admin": { "rpc_capabilities": ["/.*/"], "pubsub_capabilities": { "/.*/": "pubsub" } }
//!   },
//!   "agent_groups": {
//!     "admin_users": { "identities": ["control.connection"], "agent_roles": ["admin"] }
//!   },
//!   "agents": {
//!     "platform.driver": { "protected_rpcs": ["set_point"],
//!                          "pubsub_capabilities": { "devices/": "publish" } },
//!     "listener": { "agent_roles": [{ "default_rpc_capabilities": { "identity": "listener" } }] },
//!     "hvac": { "rpc_capabilities": [{ "platform.driver.set_point": { "path": "/campus/.*/" } },
//!                                    "/platform\\.driver\\.get_.*/"],
//!               "pubsub_capabilities": { "/devices/actuators/.*/": "pubsub" } }
//!   },
//!   "protected_topics": ["devices", "/secrets/.*/"]
//! }
//! ```
//!
//! | section | shape | meaning |
//! |---------|-------|---------|
//! | `roles` | role → `{rpc_capabilities, pubsub_capabilities}` | a role bundles capabilities |
//! | `agent_groups` | group → `{identities, agent_roles, rpc_capabilities, pubsub_capabilities}` | each listed identity gets the group's capabilities and roles |
//! | `agents` | identity → `{protected_rpcs, agent_roles, rpc_capabilities, pubsub_capabilities, comments}` | what an agent holds, and which of its own methods are protected |
//! | `protected_topics` | list of topic patterns | the topics that need a pub/sub capability |
//!
//! `agent_roles` may also be spelled `roles`; an entry is a role name or
//! `{role: {parameter: value}}`, which adds those argument restrictions to each of the
//! role's RPC capabilities (a `/regex/` capability then becomes an exact name, which no
//! method has, as in VOLTTRON 11; a warning says so). A role that is referenced and not
//! defined grants nothing, with a warning ([`Authz::warnings`]).
//!
//! * **RPC.** A method of an agent is protected only if its `protected_rpcs` lists it
//!   (every method of `platform.auth` is, but [`AUTH_OPEN_METHODS`], and every method of
//!   `platform.profile`: grant `platform.profile.cpu`). Calling it needs an RPC
//!   capability naming `<identity>.<method>`: the exact text, a `/regex/` matched against the
//!   whole name, or `{"<identity>.<method>": {parameter: value}}` (exact name) whose
//!   restrictions the arguments satisfy: a `/regex/` value must match a string argument from
//!   its start (Python's `re.match`: end it with `$` to match all of it), any other value must
//!   equal the argument. A restricted parameter that was not given refuses the call.
//! * **Topics.** A topic is protected when a `protected_topics` pattern matches it from its
//!   start: `/regex/`, or text that is itself a regular expression (VOLTTRON 11 appends `.*`),
//!   so `devices` protects `devices...`. Publishing to a protected topic needs a
//!   `pubsub_capabilities` pattern matching the topic with `"publish"` or `"pubsub"`.
//!   Subscribing needs `"subscribe"` or `"pubsub"` for **every protected topic the
//!   subscription could receive**: a subscription `S` (a byte-wise prefix) overlapping a
//!   protected pattern must be covered by a granted pattern matching `S` or the protected
//!   pattern's literal start, and without `$` or `\b` (so that it also matches every topic
//!   extending it).
//!
//! Differences from VOLTTRON 11, deliberate:
//!
//! * VOLTTRON 11 checks a subscription prefix as if it were a published topic, so
//!   subscribing to `""` or `dev` receives `devices/...` unchecked (and checks subscribe
//!   access as publish in places); here subscriptions are checked as above.
//! * VOLTTRON 11 merges the grants of an agent, its groups and its roles into one list, in an
//!   order-dependent way (a later grant of the same method replaces or narrows an earlier
//!   one; the first pub/sub pattern that matches decides alone); here each grant stands on its
//!   own: a call, publish or subscribe is allowed when any one grant allows it.
//! * Agents in a group's `identities` need no `agents` entry (VOLTTRON 11 fails to load such
//!   a file), and `platform.auth`'s methods are protected even when not listed.
//! * Unknown keys, wrong types and regular expressions this platform's `regex` crate cannot
//!   compile (look-around, back-references) are errors, not silently ignored.
//!
//! # Errors
//!
//! Loading never panics: a file that is not JSON, or that does not have one of the shapes
//! above, gives an [`AuthzError`] naming the file and the JSON path of the offending value,
//! such as `authz.json: $.users["hvac.agent"].roles[0]: unknown role "operatr"` or
//! `authz.json: $.agents["hvac"].pubsub_capabilities["devices"]: invalid topic access "read"`.
//! In this project's format references must resolve: a user's roles and groups, and a
//! group's roles, must be defined.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value as Json;

use crate::core::{Args, Identity, Map, RpcError, Value};
use crate::services::volttron11_identity;

mod v11;

/// The file's name under `$VOLTTRON_HOME`.
pub const AUTHZ_FILE: &str = "authz.json";

/// The restriction value that stands for the caller's own identity.
pub const SELF_MARKER: &str = "<self>";

/// The capability every method of the auth service requires unless `authz.json` says
/// otherwise for that method (see the module docs).
pub const AUTH_MODIFICATIONS: &str = "allow_auth_modifications";

/// The auth service's identity (`platform.auth`), whose methods require
/// [`AUTH_MODIFICATIONS`] by default.
pub const AUTH_SERVICE: &str = "platform.auth";

/// The capability every method of [`PROFILE_SERVICE`] requires unless `authz.json` says
/// otherwise for that method: a CPU profile shows what the platform runs, and costs it.
pub const PROFILE: &str = "profile";

/// The profile service's identity (`platform.profile`, feature `profile`), whose methods
/// require [`PROFILE`] by default.
pub const PROFILE_SERVICE: &str = "platform.profile";

/// The capability `authz.json` requires by default for `callee`'s `method` when it lists
/// nothing for it: [`AUTH_MODIFICATIONS`] for the auth service (but
/// [`AUTH_OPEN_METHODS`]), [`PROFILE`] for the profile service; `None` otherwise.
pub fn default_requirement(callee: &str, method: &str) -> Option<&'static str> {
    match callee {
        AUTH_SERVICE if !AUTH_OPEN_METHODS.contains(&method) => Some(AUTH_MODIFICATIONS),
        PROFILE_SERVICE => Some(PROFILE),
        _ => None,
    }
}

/// The methods of the auth service that every agent may call whatever `authz.json` says:
/// VOLTTRON 11 agents call the first three before their own calls, publishes and
/// subscriptions, and none of them changes anything.
pub const AUTH_OPEN_METHODS: &[&str] = &[
    "get_protected_rpcs",
    "check_rpc_authorization",
    "check_pubsub_authorization",
    "is_protected_topic",
];

/// The format an `authz.json` was written in (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzFormat {
    /// This project's: `roles`, `groups`, `users`, `rpc_method_authorizations`,
    /// `protected_topics` (`publish`/`subscribe`).
    Native,
    /// VOLTTRON 11's: `roles`, `agent_groups`, `agents`, `protected_topics` (a list).
    Volttron11,
}

/// The access asked for in VOLTTRON 11's `check_pubsub_authorization`, and granted by its
/// `pubsub_capabilities`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PubsubAccess {
    /// `"publish"`.
    Publish,
    /// `"subscribe"`.
    Subscribe,
    /// `"pubsub"`: both.
    PubSub,
}

impl PubsubAccess {
    /// Whether this grants `access`.
    pub fn grants(self, access: TopicAccess) -> bool {
        matches!(
            (self, access),
            (PubsubAccess::PubSub, _)
                | (PubsubAccess::Publish, TopicAccess::Publish)
                | (PubsubAccess::Subscribe, TopicAccess::Subscribe)
        )
    }

    /// `"publish"`, `"subscribe"` or `"pubsub"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PubsubAccess::Publish => "publish",
            PubsubAccess::Subscribe => "subscribe",
            PubsubAccess::PubSub => "pubsub",
        }
    }
}

/// A string other than `"publish"`, `"subscribe"` or `"pubsub"` given as a [`PubsubAccess`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pub/sub access {0:?}: expected \"publish\", \"subscribe\" or \"pubsub\"")]
pub struct UnknownPubsubAccess(pub String);

impl FromStr for PubsubAccess {
    type Err = UnknownPubsubAccess;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "publish" => Ok(PubsubAccess::Publish),
            "subscribe" => Ok(PubsubAccess::Subscribe),
            "pubsub" => Ok(PubsubAccess::PubSub),
            other => Err(UnknownPubsubAccess(other.to_owned())),
        }
    }
}

/// Argument restrictions of a capability: parameter name or positional index (`"0"`) →
/// exact text, [`SELF_MARKER`] or glob.
pub type Restrictions = BTreeMap<String, String>;

/// Capability names, sorted.
pub type Capabilities = BTreeSet<String>;

type JsonMap = serde_json::Map<String, Json>;

/// Why `authz.json` (or an edit of it) was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzError {
    /// The file exists but could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{} is not valid JSON: {source}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// Where and what (line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A value has the wrong JSON type.
    #[error("{}: {at}: expected {expected}, found {found}", file.display())]
    WrongType {
        /// The file.
        file: PathBuf,
        /// The JSON path of the value, such as `$.roles["operator"]`.
        at: String,
        /// What was expected.
        expected: &'static str,
        /// What was there.
        found: &'static str,
    },
    /// An object has a key that means nothing here (a typo, usually).
    #[error("{}: {at}: unknown key {key:?} (expected {expected})", file.display())]
    UnknownKey {
        /// The file.
        file: PathBuf,
        /// The JSON path of the object.
        at: String,
        /// The key.
        key: String,
        /// The keys allowed there.
        expected: &'static str,
    },
    /// A name (identity, role, capability, method, topic prefix, parameter) is not valid.
    #[error("{}: {at}: invalid {what} {name:?}: {reason}", file.display())]
    InvalidName {
        /// The file.
        file: PathBuf,
        /// The JSON path of the name.
        at: String,
        /// What kind of name.
        what: &'static str,
        /// The name.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// An edit that this format of the file does not support.
    #[error("{}: {message}", file.display())]
    Unsupported {
        /// The file.
        file: PathBuf,
        /// What cannot be done, and what to do instead.
        message: String,
    },
    /// A role or group that is referenced but not defined.
    #[error("{}: {at}: unknown {kind} {name:?}", file.display())]
    UnknownReference {
        /// The file.
        file: PathBuf,
        /// The JSON path of the reference.
        at: String,
        /// `"role"` or `"group"`.
        kind: &'static str,
        /// The name referenced.
        name: String,
    },
}

/// One agent's entry in `users`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct User {
    /// Roles held.
    pub roles: BTreeSet<String>,
    /// Groups belonged to.
    pub groups: BTreeSet<String>,
    /// Direct capabilities, each with its argument restrictions (`None`: unrestricted).
    pub capabilities: BTreeMap<String, Option<Restrictions>>,
}

/// How an effective capability is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Grant {
    /// Without restriction (JSON `null`).
    Unrestricted,
    /// Only for calls whose arguments satisfy these restrictions (a JSON object).
    Restricted(Restrictions),
}

/// Which side of pub/sub a protected topic concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicAccess {
    /// Publishing to the topic.
    Publish,
    /// Subscribing to a prefix that can receive the topic.
    Subscribe,
}

impl TopicAccess {
    /// `"publish"` or `"subscribe"`, as in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            TopicAccess::Publish => "publish",
            TopicAccess::Subscribe => "subscribe",
        }
    }
}

impl fmt::Display for TopicAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string other than `"publish"` or `"subscribe"` given as a [`TopicAccess`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown topic access {0:?}: expected \"publish\" or \"subscribe\"")]
pub struct UnknownTopicAccess(pub String);

impl FromStr for TopicAccess {
    type Err = UnknownTopicAccess;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "publish" => Ok(TopicAccess::Publish),
            "subscribe" => Ok(TopicAccess::Subscribe),
            other => Err(UnknownTopicAccess(other.to_owned())),
        }
    }
}

/// A publish or subscribe refused for lack of a capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{identity}' may not {access} '{topic}': protected prefix '{prefix}' requires capability '{capability}'"
)]
pub struct Unauthorized {
    /// The publisher or subscriber.
    pub identity: String,
    /// Publish or subscribe.
    pub access: TopicAccess,
    /// The topic published, or the subscription asked for.
    pub topic: String,
    /// The protected prefix that applies.
    pub prefix: String,
    /// The capability that is missing.
    pub capability: String,
}

/// The parsed `authz.json`, with every user's effective capabilities worked out.
///
/// Immutable: the editing methods return a new, validated `Authz`.
#[derive(Debug, Clone)]
pub struct Authz {
    file: PathBuf,
    roles: BTreeMap<String, Capabilities>,
    groups: BTreeMap<String, BTreeSet<String>>,
    users: BTreeMap<String, User>,
    rpc: BTreeMap<String, BTreeMap<String, Capabilities>>,
    publish: BTreeMap<String, Capabilities>,
    subscribe: BTreeMap<String, Capabilities>,
    effective: BTreeMap<String, BTreeMap<String, Grant>>,
    /// The rules of a file in VOLTTRON 11's format (then every other field is empty).
    v11: Option<v11::Rules>,
}

impl Default for Authz {
    fn default() -> Self {
        Authz {
            file: PathBuf::from(AUTHZ_FILE),
            roles: BTreeMap::new(),
            groups: BTreeMap::new(),
            users: BTreeMap::new(),
            rpc: BTreeMap::new(),
            publish: BTreeMap::new(),
            subscribe: BTreeMap::new(),
            effective: BTreeMap::new(),
            v11: None,
        }
    }
}

static NO_GRANTS: BTreeMap<String, Grant> = BTreeMap::new();

#[derive(Serialize)]
struct FileView<'a> {
    roles: &'a BTreeMap<String, Capabilities>,
    groups: &'a BTreeMap<String, BTreeSet<String>>,
    users: &'a BTreeMap<String, User>,
    rpc_method_authorizations: &'a BTreeMap<String, BTreeMap<String, Capabilities>>,
    protected_topics: TopicsView<'a>,
}

#[derive(Serialize)]
struct TopicsView<'a> {
    publish: &'a BTreeMap<String, Capabilities>,
    subscribe: &'a BTreeMap<String, Capabilities>,
}

impl Authz {
    /// Reads `path`; a missing file gives the default (nothing protected or required).
    pub fn load(path: &Path) -> Result<Authz, AuthzError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let json: Json = serde_json::from_slice(&bytes).map_err(|source| AuthzError::Syntax {
                    file: path.to_owned(),
                    source,
                })?;
                Authz::from_json(&json, path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Authz {
                file: path.to_owned(),
                ..Authz::default()
            }),
            Err(source) => Err(AuthzError::Io {
                file: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses the text of an `authz.json`; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Authz, AuthzError> {
        let json: Json = serde_json::from_str(text).map_err(|source| AuthzError::Syntax {
            file: file.to_owned(),
            source,
        })?;
        Authz::from_json(&json, file)
    }

    /// Builds from an already parsed JSON document; `file` names it in errors.
    pub fn from_json(json: &Json, file: &Path) -> Result<Authz, AuthzError> {
        Parser { file }.authz(json)
    }

    /// The file this was loaded from (or will be saved to).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The format the file was written in.
    pub fn format(&self) -> AuthzFormat {
        match self.v11 {
            Some(_) => AuthzFormat::Volttron11,
            None => AuthzFormat::Native,
        }
    }

    /// Content that loads but grants nothing (a VOLTTRON 11 role that is referenced and not
    /// defined, ...), to log.
    pub fn warnings(&self) -> &[String] {
        match &self.v11 {
            Some(rules) => &rules.warnings,
            None => &[],
        }
    }

    /// The document, in the file's format: for this project's format every section present,
    /// names sorted; a VOLTTRON 11 file as it was read.
    pub fn to_json(&self) -> Json {
        if let Some(rules) = &self.v11 {
            return rules.doc.clone();
        }
        serde_json::to_value(FileView {
            roles: &self.roles,
            groups: &self.groups,
            users: &self.users,
            rpc_method_authorizations: &self.rpc,
            protected_topics: TopicsView {
                publish: &self.publish,
                subscribe: &self.subscribe,
            },
        })
        .unwrap_or(Json::Null)
    }

    /// The document as pretty-printed JSON text, ending with a newline.
    pub fn to_json_string(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        text.push('\n');
        text
    }

    /// True when nothing is defined.
    pub fn is_empty(&self) -> bool {
        if let Some(rules) = &self.v11 {
            return rules.is_empty();
        }
        self.roles.is_empty()
            && self.groups.is_empty()
            && self.users.is_empty()
            && self.rpc.is_empty()
            && self.publish.is_empty()
            && self.subscribe.is_empty()
    }

    /// Roles and their capabilities.
    pub fn roles(&self) -> &BTreeMap<String, Capabilities> {
        &self.roles
    }

    /// Groups and their roles.
    pub fn groups(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.groups
    }

    /// Users as written in the file.
    pub fn users(&self) -> &BTreeMap<String, User> {
        &self.users
    }

    /// Every callee's methods and the capabilities each requires.
    pub fn rpc_method_authorizations(&self) -> &BTreeMap<String, BTreeMap<String, Capabilities>> {
        &self.rpc
    }

    /// Whether any topic is protected, for publishing or subscribing, in either format
    /// (VOLTTRON 11's clients then ask `platform.auth` before each publish).
    pub fn protects_topics(&self) -> bool {
        match &self.v11 {
            Some(rules) => rules.protects_topics(),
            None => !self.publish.is_empty() || !self.subscribe.is_empty(),
        }
    }

    /// The protected prefixes for publishing or subscribing, with their capabilities.
    pub fn protected_topics(&self, access: TopicAccess) -> &BTreeMap<String, Capabilities> {
        match access {
            TopicAccess::Publish => &self.publish,
            TopicAccess::Subscribe => &self.subscribe,
        }
    }

    /// `identity`'s effective capabilities (direct, through roles and through groups).
    pub fn capabilities(&self, identity: &str) -> &BTreeMap<String, Grant> {
        self.effective.get(identity).unwrap_or(&NO_GRANTS)
    }

    /// Whether `identity` holds `capability`, restricted or not.
    pub fn has_capability(&self, identity: &str, capability: &str) -> bool {
        self.capabilities(identity).contains_key(capability)
    }

    /// Checks a call of `callee`'s `method` by `caller` with `args`: if
    /// `rpc_method_authorizations` lists capabilities for it (for an unlisted method of the
    /// auth service: [`AUTH_MODIFICATIONS`]), the caller must hold each, with every argument
    /// restriction satisfied. `params` are the method's parameter names in order, when the
    /// platform knows them (every in-process agent, and bridged agents, which declare their
    /// exports in their hello): a restriction by name then also applies to an argument
    /// passed by position. The error names the missing capability or the refused argument.
    pub fn check_call(
        &self,
        caller: &str,
        callee: &str,
        method: &str,
        args: &Args,
        params: &[String],
    ) -> Result<(), RpcError> {
        let refuse = |message: String| RpcError::Unauthorized {
            method: method.to_owned(),
            message,
        };
        if let Some(rules) = &self.v11 {
            // The file names this platform's store and control service as VOLTTRON 11 does.
            let (caller, callee) = (volttron11_identity(caller), volttron11_identity(callee));
            let protected =
                rules.is_protected_rpc(callee, method) || default_requirement(callee, method).is_some();
            if !protected {
                return Ok(());
            }
            let lookup = |param: &str| argument(args, param, params).cloned();
            return rules
                .check_rpc(caller, &format!("{callee}.{method}"), &lookup)
                .map_err(refuse);
        }
        let required: Vec<&str> = match self.rpc.get(callee).and_then(|m| m.get(method)) {
            Some(listed) => listed.iter().map(String::as_str).collect(),
            None => match default_requirement(callee, method) {
                Some(capability) => vec![capability],
                None => return Ok(()),
            },
        };
        let grants = self.capabilities(caller);
        for capability in required {
            match grants.get(capability) {
                None => {
                    return Err(refuse(format!(
                        "'{caller}' lacks capability '{capability}' required by {callee}.{method}"
                    )));
                }
                Some(Grant::Unrestricted) => {}
                Some(Grant::Restricted(restrictions)) => {
                    for (param, allowed) in restrictions {
                        let Some(value) = argument(args, param, params) else {
                            return Err(refuse(format!(
                                "capability '{capability}' of '{caller}' restricts argument '{param}', \
                                 which was not given (pass it by name)"
                            )));
                        };
                        let text = match value {
                            Value::String(s) => s.clone(),
                            other => other.to_json_string(),
                        };
                        let pattern = allowed.replace(SELF_MARKER, caller);
                        if !glob(&pattern, &text) {
                            return Err(refuse(format!(
                                "argument '{param}' = {text:?} is outside capability '{capability}' of \
                                 '{caller}' (allowed: {allowed:?})"
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The methods of `identity` that are protected: for VOLTTRON 11's format its
    /// `protected_rpcs`, for this project's the methods `rpc_method_authorizations` requires
    /// capabilities for. Sorted. (`platform.auth.get_protected_rpcs`.)
    pub fn protected_rpcs(&self, identity: &str) -> Vec<String> {
        match &self.v11 {
            Some(rules) => rules.protected_rpcs(volttron11_identity(identity)),
            None => self
                .rpc
                .get(identity)
                .map(|methods| {
                    methods
                        .iter()
                        .filter(|(_, caps)| !caps.is_empty())
                        .map(|(m, _)| m.clone())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// VOLTTRON 11's `check_rpc_authorization(identity, method_name, method_args)`, asked by
    /// an agent before it runs a protected method: whether `identity` may call `method_name`
    /// (`"<callee identity>.<method>"`) with `method_args` (every parameter by name, as the
    /// callee bound them).
    ///
    /// For VOLTTRON 11's format, exactly its rule: `identity` must hold an RPC capability for
    /// the method whose restrictions the arguments satisfy (the callee asks only for its
    /// protected methods). For this project's format, [`check_call`](Self::check_call) for
    /// every way of splitting `method_name` into a callee and a method (identities may contain
    /// dots).
    pub fn check_rpc_authorization(
        &self,
        identity: &str,
        method_name: &str,
        method_args: &Map,
    ) -> Result<(), RpcError> {
        if let Some(rules) = &self.v11 {
            let lookup = |param: &str| method_args.get(param).cloned();
            return rules
                .check_rpc(identity, method_name, &lookup)
                .map_err(|message| RpcError::Unauthorized {
                    method: method_name.to_owned(),
                    message,
                });
        }
        let args = Args {
            positional: Vec::new(),
            named: method_args.clone(),
        };
        for (at, _) in method_name.match_indices('.') {
            let (callee, method) = (&method_name[..at], &method_name[at + 1..]);
            if Identity::new(callee).is_ok() && !method.is_empty() {
                self.check_call(identity, callee, method, &args, &[])?;
            }
        }
        Ok(())
    }

    /// VOLTTRON 11's `check_pubsub_authorization(identity, topic_pattern, access)`: whether
    /// `identity` may publish to (`Publish`) or subscribe to (`Subscribe`) `topic_pattern`, or
    /// both (`PubSub`), by [`check_publish`](Self::check_publish) and
    /// [`check_subscribe`](Self::check_subscribe) — the same rules the router enforces.
    pub fn check_pubsub_authorization(
        &self,
        identity: &str,
        topic_pattern: &str,
        access: PubsubAccess,
    ) -> Result<(), Unauthorized> {
        if access.grants(TopicAccess::Publish) {
            self.check_publish(identity, topic_pattern)?;
        }
        if access.grants(TopicAccess::Subscribe) {
            self.check_subscribe(identity, topic_pattern)?;
        }
        Ok(())
    }

    /// Checks that `identity` may publish to `topic`.
    pub fn check_publish(&self, identity: &str, topic: &str) -> Result<(), Unauthorized> {
        if let Some(rules) = &self.v11 {
            return rules.check_publish(volttron11_identity(identity), topic);
        }
        let grants = self.capabilities(identity);
        self.check_topics(
            identity,
            &|c| grants.contains_key(c),
            TopicAccess::Publish,
            topic,
            |prefix| under(topic, prefix),
        )
    }

    /// Checks that `identity` may subscribe to `subscription` (a prefix, or an MQTT-style
    /// pattern): refused if it could receive a topic under a protected `subscribe` prefix
    /// whose capabilities `identity` lacks (see the module docs).
    pub fn check_subscribe(&self, identity: &str, subscription: &str) -> Result<(), Unauthorized> {
        if let Some(rules) = &self.v11 {
            return rules.check_subscribe(volttron11_identity(identity), subscription);
        }
        let grants = self.capabilities(identity);
        self.check_subscription(identity, &|c| grants.contains_key(c), subscription)
    }

    fn check_subscription(
        &self,
        identity: &str,
        has: &dyn Fn(&str) -> bool,
        subscription: &str,
    ) -> Result<(), Unauthorized> {
        let levels: Vec<&str> = subscription.split('/').collect();
        match levels.iter().position(|l| *l == "+" || *l == "#") {
            None => self.check_topics(identity, has, TopicAccess::Subscribe, subscription, |prefix| {
                prefix.starts_with(subscription) || under(subscription, prefix)
            }),
            Some(first_wildcard) => {
                let literal = levels[..first_wildcard].join("/");
                self.check_topics(identity, has, TopicAccess::Subscribe, subscription, |prefix| {
                    under(&literal, prefix) || under(prefix, &literal)
                })
            }
        }
    }

    /// [`check_publish`](Self::check_publish) (`access` publish) or
    /// [`check_subscribe`](Self::check_subscribe) for a caller known by its capabilities
    /// rather than an identity: a web user, named `who` in errors. With VOLTTRON 11's
    /// format, whose grants are per identity, such a caller has none: a protected topic is
    /// refused.
    pub fn check_topic_with_capabilities(
        &self,
        who: &str,
        capabilities: &[String],
        access: TopicAccess,
        topic: &str,
    ) -> Result<(), Unauthorized> {
        let has = |c: &str| capabilities.iter().any(|g| g == c);
        if let Some(rules) = &self.v11 {
            let refused = match access {
                TopicAccess::Publish => rules.check_publish("", topic),
                TopicAccess::Subscribe => rules.check_subscribe("", topic),
            };
            return refused.map_err(|mut e| {
                e.identity = who.to_owned();
                e
            });
        }
        match access {
            TopicAccess::Publish => {
                self.check_topics(who, &has, access, topic, |prefix| under(topic, prefix))
            }
            TopicAccess::Subscribe => self.check_subscription(who, &has, topic),
        }
    }

    /// [`check_call`](Self::check_call) for a caller known by its capabilities (a web
    /// user, named `who` in errors): each capability `rpc_method_authorizations` lists for
    /// the method must be among `capabilities` (a web user's are unrestricted). With VOLTTRON
    /// 11's format a protected method is refused.
    pub fn check_call_with_capabilities(
        &self,
        who: &str,
        capabilities: &[String],
        callee: &str,
        method: &str,
    ) -> Result<(), RpcError> {
        let refuse = |message: String| RpcError::Unauthorized {
            method: method.to_owned(),
            message,
        };
        if let Some(rules) = &self.v11 {
            let callee = volttron11_identity(callee);
            if rules.is_protected_rpc(callee, method) || default_requirement(callee, method).is_some() {
                return Err(refuse(format!(
                    "{callee}.{method} is protected; '{who}' holds no grant for it"
                )));
            }
            return Ok(());
        }
        let required: Vec<&str> = match self.rpc.get(callee).and_then(|m| m.get(method)) {
            Some(listed) => listed.iter().map(String::as_str).collect(),
            None => match default_requirement(callee, method) {
                Some(capability) => vec![capability],
                None => return Ok(()),
            },
        };
        match required.iter().find(|c| !capabilities.iter().any(|g| g == *c)) {
            Some(missing) => Err(refuse(format!(
                "'{who}' lacks capability '{missing}' required by {callee}.{method}"
            ))),
            None => Ok(()),
        }
    }

    fn check_topics(
        &self,
        identity: &str,
        has: &dyn Fn(&str) -> bool,
        access: TopicAccess,
        topic: &str,
        applies: impl Fn(&str) -> bool,
    ) -> Result<(), Unauthorized> {
        let protected = match access {
            TopicAccess::Publish => &self.publish,
            TopicAccess::Subscribe => &self.subscribe,
        };
        if protected.is_empty() {
            return Ok(());
        }
        for (prefix, required) in protected {
            if !applies(prefix) {
                continue;
            }
            if let Some(missing) = required.iter().find(|c| !has(c)) {
                return Err(Unauthorized {
                    identity: identity.to_owned(),
                    access,
                    topic: topic.to_owned(),
                    prefix: prefix.clone(),
                    capability: missing.clone(),
                });
            }
        }
        Ok(())
    }

    // --- editing -------------------------------------------------------------------------

    fn edit(&self, f: impl FnOnce(&mut JsonMap)) -> Result<Authz, AuthzError> {
        if self.v11.is_some() {
            return Err(AuthzError::Unsupported {
                file: self.file.clone(),
                message: "the file is in VOLTTRON 11's format, which this platform enforces but does \
                          not edit: change it by hand (it is reloaded when it changes), or convert it \
                          to this project's format"
                    .into(),
            });
        }
        let mut json = self.to_json();
        if let Json::Object(map) = &mut json {
            f(map);
        }
        Authz::from_json(&json, &self.file)
    }

    /// Defines role `name` with `capabilities`, or (`None`) removes it.
    pub fn set_role(&self, name: &str, capabilities: Option<&[String]>) -> Result<Authz, AuthzError> {
        self.edit(|doc| put(section(doc, "roles"), name, capabilities.map(strings)))
    }

    /// Defines group `name` with `roles`, or (`None`) removes it.
    pub fn set_group(&self, name: &str, roles: Option<&[String]>) -> Result<Authz, AuthzError> {
        self.edit(|doc| put(section(doc, "groups"), name, roles.map(strings)))
    }

    /// Sets `identity`'s entry in `users` (an object in the file's format), or (`None`)
    /// removes it.
    pub fn set_user(&self, identity: &str, user: Option<Json>) -> Result<Authz, AuthzError> {
        self.edit(|doc| put(section(doc, "users"), identity, user))
    }

    /// Sets the capabilities that calling `callee`'s `method` requires; `None` or an empty
    /// list removes the requirement.
    pub fn set_rpc_authorization(
        &self,
        callee: &str,
        method: &str,
        capabilities: Option<&[String]>,
    ) -> Result<Authz, AuthzError> {
        let capabilities = capabilities.filter(|c| !c.is_empty());
        self.edit(|doc| {
            let rpc = section(doc, "rpc_method_authorizations");
            let methods = section(rpc, callee);
            put(methods, method, capabilities.map(strings));
            if methods.is_empty() {
                rpc.remove(callee);
            }
        })
    }

    /// Sets the capabilities that publishing to (or subscribing under) `prefix` requires;
    /// `None` or an empty list removes the protection. A trailing `/` of `prefix` is ignored.
    pub fn set_protected_topic(
        &self,
        access: TopicAccess,
        prefix: &str,
        capabilities: Option<&[String]>,
    ) -> Result<Authz, AuthzError> {
        let capabilities = capabilities.filter(|c| !c.is_empty());
        let prefix = normalize_prefix(prefix).unwrap_or(prefix);
        self.edit(|doc| {
            let topics = section(section(doc, "protected_topics"), access.as_str());
            put(topics, prefix, capabilities.map(strings));
        })
    }
}

fn strings(list: &[String]) -> Json {
    Json::Array(list.iter().cloned().map(Json::String).collect())
}

fn section<'m>(doc: &'m mut JsonMap, key: &str) -> &'m mut JsonMap {
    let slot = doc
        .entry(key.to_owned())
        .or_insert_with(|| Json::Object(JsonMap::new()));
    if !slot.is_object() {
        *slot = Json::Object(JsonMap::new());
    }
    match slot {
        Json::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

fn put(map: &mut JsonMap, key: &str, value: Option<Json>) {
    match value {
        Some(v) => {
            map.insert(key.to_owned(), v);
        }
        None => {
            map.remove(key);
        }
    }
}

/// The argument a restriction key names: a named argument, else the positional one at
/// the key's index (a number), or at the position of that name in `params`.
fn argument<'a>(args: &'a Args, param: &str, params: &[String]) -> Option<&'a Value> {
    args.named.get(param).or_else(|| {
        let index = param
            .parse::<usize>()
            .ok()
            .or_else(|| params.iter().position(|p| p == param))?;
        args.positional.get(index)
    })
}

/// Whether `topic` is `prefix` or below it, level-wise; everything is under `""`.
fn under(topic: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || topic
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `prefix` without trailing slashes; `None` for a prefix of only slashes.
fn normalize_prefix(prefix: &str) -> Option<&str> {
    let trimmed = prefix.trim_end_matches('/');
    (!trimmed.is_empty() || prefix.is_empty()).then_some(trimmed)
}

/// Case-sensitive glob: `*` any run of characters (also none), `?` exactly one.
fn glob(pattern: &str, text: &str) -> bool {
    crate::core::glob::Glob::new(pattern, crate::core::glob::Syntax::default()).matches(text)
}

// --- parsing -------------------------------------------------------------------------------

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

fn key_at(at: &str, key: &str) -> String {
    format!("{at}[{key:?}]")
}

struct Parser<'a> {
    file: &'a Path,
}

impl Parser<'_> {
    fn wrong_type(&self, at: &str, expected: &'static str, found: &Json) -> AuthzError {
        AuthzError::WrongType {
            file: self.file.to_owned(),
            at: at.to_owned(),
            expected,
            found: kind(found),
        }
    }

    fn invalid(&self, at: &str, what: &'static str, name: &str, reason: impl Into<String>) -> AuthzError {
        AuthzError::InvalidName {
            file: self.file.to_owned(),
            at: at.to_owned(),
            what,
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    fn object<'j>(&self, v: &'j Json, at: &str) -> Result<&'j JsonMap, AuthzError> {
        v.as_object().ok_or_else(|| self.wrong_type(at, "an object", v))
    }

    fn only_keys(
        &self,
        map: &JsonMap,
        at: &str,
        allowed: &[&str],
        expected: &'static str,
    ) -> Result<(), AuthzError> {
        match map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(AuthzError::UnknownKey {
                file: self.file.to_owned(),
                at: at.to_owned(),
                key: key.clone(),
                expected,
            }),
            None => Ok(()),
        }
    }

    fn name(&self, name: &str, at: &str, what: &'static str) -> Result<(), AuthzError> {
        if name.is_empty() {
            return Err(self.invalid(at, what, name, "it is empty"));
        }
        if name.trim() != name {
            return Err(self.invalid(at, what, name, "it has leading or trailing whitespace"));
        }
        if name.chars().any(char::is_control) {
            return Err(self.invalid(at, what, name, "it contains a control character"));
        }
        Ok(())
    }

    fn identity(&self, name: &str, at: &str) -> Result<(), AuthzError> {
        Identity::new(name)
            .map(drop)
            .map_err(|e| self.invalid(at, "identity", name, e.to_string()))
    }

    /// A list of names.
    fn names(&self, v: &Json, at: &str, what: &'static str) -> Result<BTreeSet<String>, AuthzError> {
        Ok(self
            .string_list(v, at, what)?
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    /// A map of name → list of names.
    fn table(
        &self,
        v: &Json,
        at: &str,
        key_what: &'static str,
        value_what: &'static str,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, AuthzError> {
        let mut out = BTreeMap::new();
        for (key, value) in self.object(v, at)? {
            let at = key_at(at, key);
            self.name(key, &at, key_what)?;
            out.insert(key.clone(), self.names(value, &at, value_what)?);
        }
        Ok(out)
    }

    fn authz(&self, json: &Json) -> Result<Authz, AuthzError> {
        const SECTIONS: &[&str] = &[
            "roles",
            "groups",
            "users",
            "rpc_method_authorizations",
            "protected_topics",
        ];
        let doc = self.object(json, "$")?;
        if v11::is_v11(doc) {
            return Ok(Authz {
                file: self.file.to_owned(),
                v11: Some(self.v11(json, doc)?),
                ..Authz::default()
            });
        }
        self.only_keys(
            doc,
            "$",
            SECTIONS,
            "roles, groups, users, rpc_method_authorizations or protected_topics",
        )?;
        let mut authz = Authz {
            file: self.file.to_owned(),
            ..Authz::default()
        };
        if let Some(v) = doc.get("roles") {
            authz.roles = self.table(v, "$.roles", "role", "capability")?;
        }
        if let Some(v) = doc.get("groups") {
            authz.groups = self.table(v, "$.groups", "group", "role")?;
            for (group, roles) in &authz.groups {
                self.references(roles, &authz.roles, &key_at("$.groups", group), "role")?;
            }
        }
        if let Some(v) = doc.get("users") {
            for (identity, user) in self.object(v, "$.users")? {
                let at = key_at("$.users", identity);
                self.identity(identity, &at)?;
                let user = self.user(user, &at)?;
                self.references(&user.roles, &authz.roles, &format!("{at}.roles"), "role")?;
                self.references(&user.groups, &authz.groups, &format!("{at}.groups"), "group")?;
                authz.users.insert(identity.clone(), user);
            }
        }
        if let Some(v) = doc.get("rpc_method_authorizations") {
            let at = "$.rpc_method_authorizations";
            for (callee, methods) in self.object(v, at)? {
                let at = key_at(at, callee);
                self.identity(callee, &at)?;
                let methods = self.table(methods, &at, "method", "capability")?;
                authz.rpc.insert(callee.clone(), methods);
            }
        }
        if let Some(v) = doc.get("protected_topics") {
            let at = "$.protected_topics";
            let kinds = self.object(v, at)?;
            self.only_keys(kinds, at, &["publish", "subscribe"], "publish or subscribe")?;
            if let Some(v) = kinds.get("publish") {
                authz.publish = self.topics(v, &format!("{at}.publish"))?;
            }
            if let Some(v) = kinds.get("subscribe") {
                authz.subscribe = self.topics(v, &format!("{at}.subscribe"))?;
            }
        }
        authz.effective = effective(&authz);
        Ok(authz)
    }

    fn references<V>(
        &self,
        names: &BTreeSet<String>,
        defined: &BTreeMap<String, V>,
        at: &str,
        kind: &'static str,
    ) -> Result<(), AuthzError> {
        match names.iter().find(|n| !defined.contains_key(*n)) {
            Some(name) => Err(AuthzError::UnknownReference {
                file: self.file.to_owned(),
                at: at.to_owned(),
                kind,
                name: name.clone(),
            }),
            None => Ok(()),
        }
    }

    fn user(&self, v: &Json, at: &str) -> Result<User, AuthzError> {
        let map = self.object(v, at)?;
        self.only_keys(
            map,
            at,
            &["roles", "groups", "capabilities"],
            "roles, groups or capabilities",
        )?;
        let mut user = User::default();
        if let Some(v) = map.get("roles") {
            user.roles = self.names(v, &format!("{at}.roles"), "role")?;
        }
        if let Some(v) = map.get("groups") {
            user.groups = self.names(v, &format!("{at}.groups"), "group")?;
        }
        if let Some(v) = map.get("capabilities") {
            let at = format!("{at}.capabilities");
            match v {
                Json::Array(_) => {
                    for cap in self.names(v, &at, "capability")? {
                        user.capabilities.insert(cap, None);
                    }
                }
                Json::Object(caps) => {
                    for (cap, restrictions) in caps {
                        let at = key_at(&at, cap);
                        self.name(cap, &at, "capability")?;
                        let restrictions = match restrictions {
                            Json::Null => None,
                            Json::Object(r) => Some(self.restrictions(r, &at)?),
                            other => {
                                return Err(self.wrong_type(
                                    &at,
                                    "an object of argument restrictions, or null",
                                    other,
                                ));
                            }
                        };
                        user.capabilities.insert(cap.clone(), restrictions);
                    }
                }
                other => {
                    return Err(self.wrong_type(
                        &at,
                        "an object (capability -> restrictions or null) or a list of capabilities",
                        other,
                    ));
                }
            }
        }
        Ok(user)
    }

    fn restrictions(&self, map: &JsonMap, at: &str) -> Result<Restrictions, AuthzError> {
        let mut out = Restrictions::new();
        for (param, allowed) in map {
            let at = key_at(at, param);
            self.name(param, &at, "parameter")?;
            let allowed = allowed
                .as_str()
                .ok_or_else(|| self.wrong_type(&at, "a string (exact value, \"<self>\" or glob)", allowed))?;
            out.insert(param.clone(), allowed.to_owned());
        }
        Ok(out)
    }

    fn topics(&self, v: &Json, at: &str) -> Result<BTreeMap<String, Capabilities>, AuthzError> {
        let mut out: BTreeMap<String, Capabilities> = BTreeMap::new();
        for (prefix, caps) in self.object(v, at)? {
            let at = key_at(at, prefix);
            let Some(normalized) = normalize_prefix(prefix) else {
                return Err(self.invalid(&at, "topic prefix", prefix, "it is only slashes"));
            };
            if prefix.chars().any(char::is_control) {
                return Err(self.invalid(&at, "topic prefix", prefix, "it contains a control character"));
            }
            if prefix.split('/').any(|l| l == "+" || l == "#") {
                return Err(self.invalid(
                    &at,
                    "topic prefix",
                    prefix,
                    "protected prefixes are literal: `+` and `#` levels are not allowed",
                ));
            }
            if prefix.len() > crate::core::topic::MAX_TOPIC_LEN {
                return Err(self.invalid(&at, "topic prefix", prefix, "it is too long"));
            }
            let caps = self.names(caps, &at, "capability")?;
            out.entry(normalized.to_owned()).or_default().extend(caps);
        }
        Ok(out)
    }
}

/// Every user's capabilities through its roles and groups; unrestricted wins.
fn effective(authz: &Authz) -> BTreeMap<String, BTreeMap<String, Grant>> {
    let mut all = BTreeMap::new();
    for (identity, user) in &authz.users {
        let mut grants: BTreeMap<String, Grant> = BTreeMap::new();
        let roles = user
            .roles
            .iter()
            .chain(user.groups.iter().filter_map(|g| authz.groups.get(g)).flatten());
        for role in roles {
            for cap in authz.roles.get(role).into_iter().flatten() {
                grants.insert(cap.clone(), Grant::Unrestricted);
            }
        }
        for (cap, restrictions) in &user.capabilities {
            let grant = match restrictions {
                Some(r) if !r.is_empty() => Grant::Restricted(r.clone()),
                _ => Grant::Unrestricted,
            };
            grants.entry(cap.clone()).or_insert(grant);
        }
        all.insert(identity.clone(), grants);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "roles":  { "operator": ["edit_config_store", "read_devices"], "actuator": ["actuate"] },
      "groups": { "campus_ops": ["operator", "actuator"] },
      "users":  {
        "hvac.agent": { "roles": [], "groups": [],
                        "capabilities": { "edit_config_store": { "identity": "<self>" }, "control": null } },
        "ops": { "groups": ["campus_ops"], "capabilities": { "edit_config_store": { "identity": "x" } } },
        "listed": { "capabilities": ["read_secrets"] },
        "roled": { "roles": ["operator"] }
      },
      "rpc_method_authorizations": { "config.store": { "set_config": ["edit_config_store"],
                                                       "delete_config": ["edit_config_store"] } },
      "protected_topics": { "publish": { "devices/actuators": ["actuate"] },
                            "subscribe": { "secrets/": ["read_secrets"] } }
    }"#;

    fn example() -> Authz {
        Authz::parse(EXAMPLE, Path::new("/home/authz.json")).unwrap()
    }

    fn err(text: &str) -> String {
        Authz::parse(text, Path::new("/h/authz.json"))
            .unwrap_err()
            .to_string()
    }

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_documented_example() {
        let a = example();
        assert_eq!(a.roles()["operator"].len(), 2);
        assert_eq!(a.groups()["campus_ops"].len(), 2);
        assert_eq!(
            a.users()["hvac.agent"].capabilities["control"],
            None,
            "null means unrestricted"
        );
        assert_eq!(a.rpc_method_authorizations()["config.store"].len(), 2);
        assert!(
            a.protected_topics(TopicAccess::Subscribe).contains_key("secrets"),
            "trailing / ignored"
        );
        let again = Authz::from_json(&a.to_json(), a.file()).unwrap();
        assert_eq!(again.to_json(), a.to_json(), "round trip");
        assert!(a.to_json_string().ends_with("}\n"));
        let doc_example = crate::auth::doc_json_example(include_str!("authz.rs"));
        Authz::parse(&doc_example, Path::new("doc")).expect("the module docs' example parses");
        let v11_example = include_str!("authz.rs")
            .split("//! ```json\n")
            .nth(2)
            .and_then(|rest| rest.split("//! ```\n").next())
            .expect("a second json example")
            .lines()
            .map(|l| l.strip_prefix("//!").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let v11 = Authz::parse(&v11_example, Path::new("doc")).expect("the VOLTTRON 11 example parses");
        assert_eq!(v11.format(), AuthzFormat::Volttron11);
        assert!(v11.warnings().is_empty());
        assert!(v11.check_subscribe("listener", "").is_err());
    }

    #[test]
    fn empty_and_default_protect_nothing() {
        let a = Authz::parse("{}", Path::new("a")).unwrap();
        assert!(a.is_empty());
        let d = Authz::default();
        assert!(d.check_publish("x", "devices/actuators/a").is_ok());
        assert!(d.check_subscribe("x", "").is_ok());
        assert!(
            d.check_call("x", "config.store", "set_config", &Args::new(), &[])
                .is_ok()
        );
    }

    #[test]
    fn the_auth_service_requires_auth_modifications_unless_listed() {
        let e = Authz::default()
            .check_call("x", AUTH_SERVICE, "set_role", &Args::new(), &[])
            .unwrap_err();
        assert!(
            e.to_string().contains(
                "'x' lacks capability 'allow_auth_modifications' required by platform.auth.set_role"
            ),
            "{e}"
        );
        let a = Authz::parse(
            r#"{"users": {"admin": {"capabilities": ["allow_auth_modifications"]}},
                "rpc_method_authorizations": {"platform.auth": {"get_roles": [], "set_role": ["root"]}}}"#,
            Path::new("a"),
        )
        .unwrap();
        assert!(
            a.check_call("admin", AUTH_SERVICE, "approve_authorization", &Args::new(), &[])
                .is_ok()
        );
        assert!(
            a.check_call("x", AUTH_SERVICE, "approve_authorization", &Args::new(), &[])
                .is_err()
        );
        assert!(
            a.check_call("x", AUTH_SERVICE, "get_roles", &Args::new(), &[])
                .is_ok(),
            "opened"
        );
        assert!(
            a.check_call("admin", AUTH_SERVICE, "set_role", &Args::new(), &[])
                .is_err(),
            "listed wins"
        );
    }

    #[test]
    fn missing_file_is_default_and_unreadable_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = Authz::load(&dir.path().join("authz.json")).unwrap();
        assert!(a.is_empty());
        let e = Authz::load(dir.path()).unwrap_err();
        assert!(matches!(e, AuthzError::Io { .. }), "{e}");
    }

    #[test]
    fn invalid_documents_name_file_and_path() {
        let cases: &[(&str, &str)] = &[
            (
                "{",
                "/h/authz.json is not valid JSON: EOF while parsing an object at line 1 column 1",
            ),
            ("[]", "/h/authz.json: $: expected an object, found a list"),
            (
                r#"{"rolez": {}}"#,
                r#"/h/authz.json: $: unknown key "rolez" (expected roles, groups, users, rpc_method_authorizations or protected_topics)"#,
            ),
            (
                r#"{"roles": []}"#,
                "/h/authz.json: $.roles: expected an object, found a list",
            ),
            (
                r#"{"roles": {"r": "cap"}}"#,
                r#"/h/authz.json: $.roles["r"]: expected a list of names, found a string"#,
            ),
            (
                r#"{"roles": {"r": ["ok", 5]}}"#,
                r#"/h/authz.json: $.roles["r"][1]: expected a string, found a number"#,
            ),
            (
                r#"{"roles": {"r": [""]}}"#,
                r#"/h/authz.json: $.roles["r"][0]: invalid capability "": it is empty"#,
            ),
            (
                r#"{"roles": {" r": []}}"#,
                r#"/h/authz.json: $.roles[" r"]: invalid role " r": it has leading or trailing whitespace"#,
            ),
            (
                r#"{"groups": {"g": ["nope"]}}"#,
                r#"/h/authz.json: $.groups["g"]: unknown role "nope""#,
            ),
            (
                r#"{"users": {"a b": {}}}"#,
                r#"/h/authz.json: $.users["a b"]: invalid identity "a b": "#,
            ),
            (
                r#"{"users": {"a": {"role": []}}}"#,
                r#"/h/authz.json: $.users["a"]: unknown key "role" (expected roles, groups or capabilities)"#,
            ),
            (
                r#"{"users": {"a": {"roles": ["operatr"]}}}"#,
                r#"/h/authz.json: $.users["a"].roles: unknown role "operatr""#,
            ),
            (
                r#"{"users": {"a": {"groups": ["g"]}}}"#,
                r#"/h/authz.json: $.users["a"].groups: unknown group "g""#,
            ),
            (
                r#"{"users": {"a": {"capabilities": "x"}}}"#,
                r#"/h/authz.json: $.users["a"].capabilities: expected an object (capability -> restrictions or null) or a list of capabilities, found a string"#,
            ),
            (
                r#"{"users": {"a": {"capabilities": {"c": true}}}}"#,
                r#"/h/authz.json: $.users["a"].capabilities["c"]: expected an object of argument restrictions, or null, found a boolean"#,
            ),
            (
                r#"{"users": {"a": {"capabilities": {"c": {"identity": 1}}}}}"#,
                r#"/h/authz.json: $.users["a"].capabilities["c"]["identity"]: expected a string (exact value, "<self>" or glob), found a number"#,
            ),
            (
                r#"{"users": {"a": {"capabilities": {"c": {"": "x"}}}}}"#,
                r#"/h/authz.json: $.users["a"].capabilities["c"][""]: invalid parameter "": it is empty"#,
            ),
            (
                r#"{"rpc_method_authorizations": {"config.store": {"set_config": "c"}}}"#,
                r#"/h/authz.json: $.rpc_method_authorizations["config.store"]["set_config"]: expected a list of names, found a string"#,
            ),
            (
                r#"{"rpc_method_authorizations": {"bad/id": {}}}"#,
                r#"/h/authz.json: $.rpc_method_authorizations["bad/id"]: invalid identity "bad/id""#,
            ),
            (
                r#"{"protected_topics": {"publsh": {}}}"#,
                r#"/h/authz.json: $.protected_topics: unknown key "publsh" (expected publish or subscribe)"#,
            ),
            (
                r#"{"protected_topics": {"publish": {"devices/+": ["c"]}}}"#,
                r#"/h/authz.json: $.protected_topics.publish["devices/+"]: invalid topic prefix "devices/+": protected prefixes are literal"#,
            ),
            (
                r#"{"protected_topics": {"subscribe": {"//": ["c"]}}}"#,
                r#"/h/authz.json: $.protected_topics.subscribe["//"]: invalid topic prefix "//": it is only slashes"#,
            ),
            (
                r#"{"protected_topics": {"subscribe": {"a": [null]}}}"#,
                r#"/h/authz.json: $.protected_topics.subscribe["a"][0]: expected a string, found null"#,
            ),
        ];
        for (text, expected) in cases {
            let message = err(text);
            assert!(
                message.starts_with(expected),
                "{text}\n got: {message}\nwant: {expected}"
            );
        }
    }

    #[test]
    fn effective_capabilities_through_roles_and_groups() {
        let a = example();
        let ops = a.capabilities("ops");
        assert_eq!(
            ops.keys().collect::<Vec<_>>(),
            ["actuate", "edit_config_store", "read_devices"],
            "through group campus_ops -> roles operator, actuator"
        );
        assert_eq!(
            ops["edit_config_store"],
            Grant::Unrestricted,
            "unrestricted (from a role) wins over the direct restricted grant"
        );
        let roled = a.capabilities("roled");
        assert_eq!(
            roled.keys().collect::<Vec<_>>(),
            ["edit_config_store", "read_devices"]
        );
        let hvac = a.capabilities("hvac.agent");
        assert_eq!(hvac["control"], Grant::Unrestricted);
        assert!(matches!(&hvac["edit_config_store"], Grant::Restricted(r) if r["identity"] == "<self>"));
        assert!(a.has_capability("listed", "read_secrets"));
        assert!(a.capabilities("stranger").is_empty());
    }

    fn restricted(restrictions: &str) -> Authz {
        let text = format!(
            r#"{{"users": {{"me": {{"capabilities": {{"edit": {restrictions}}}}}}},
                "rpc_method_authorizations": {{"svc": {{"m": ["edit"]}}}}}}"#
        );
        Authz::parse(&text, Path::new("a")).unwrap()
    }

    fn call(a: &Authz, caller: &str, args: Args) -> Result<(), String> {
        a.check_call(caller, "svc", "m", &args, &[]).map_err(|e| {
            assert_eq!(e.code(), Some(-32001));
            e.to_string()
        })
    }

    #[test]
    fn unrestricted_and_missing_capability() {
        let a = restricted("null");
        assert!(call(&a, "me", Args::new()).is_ok());
        let e = call(&a, "other", Args::new()).unwrap_err();
        assert_eq!(
            e,
            "unauthorized call to 'm': 'other' lacks capability 'edit' required by svc.m"
        );
        assert!(
            a.check_call("other", "svc", "unlisted", &Args::new(), &[])
                .is_ok()
        );
        assert!(a.check_call("other", "elsewhere", "m", &Args::new(), &[]).is_ok());
    }

    #[test]
    fn restriction_self() {
        let a = restricted(r#"{"identity": "<self>"}"#);
        assert!(call(&a, "me", Args::new().kwarg("identity", "me")).is_ok());
        let e = call(&a, "me", Args::new().kwarg("identity", "you")).unwrap_err();
        assert!(
            e.contains(
                r#"argument 'identity' = "you" is outside capability 'edit' of 'me' (allowed: "<self>")"#
            ),
            "{e}"
        );
    }

    #[test]
    fn restriction_exact_and_glob() {
        let a = restricted(r#"{"identity": "listener"}"#);
        assert!(call(&a, "me", Args::new().kwarg("identity", "listener")).is_ok());
        assert!(call(&a, "me", Args::new().kwarg("identity", "listener2")).is_err());
        let a = restricted(r#"{"identity": "dev?.*"}"#);
        assert!(call(&a, "me", Args::new().kwarg("identity", "dev1.rtu")).is_ok());
        assert!(call(&a, "me", Args::new().kwarg("identity", "dev1.")).is_ok());
        assert!(call(&a, "me", Args::new().kwarg("identity", "dev12.rtu")).is_err());
        assert!(
            call(&a, "me", Args::new().kwarg("identity", "DEV1.rtu")).is_err(),
            "case-sensitive"
        );
        let a = restricted(r#"{"identity": "<self>.*"}"#);
        assert!(call(&a, "me", Args::new().kwarg("identity", "me.sub")).is_ok());
        assert!(call(&a, "me", Args::new().kwarg("identity", "you.sub")).is_err());
        let a = restricted(r#"{"count": "5"}"#);
        assert!(
            call(&a, "me", Args::new().kwarg("count", 5)).is_ok(),
            "non-strings as JSON text"
        );
    }

    #[test]
    fn restriction_positional_index_and_missing_argument() {
        let a = restricted(r#"{"1": "points"}"#);
        assert!(call(&a, "me", Args::new().arg("me").arg("points")).is_ok());
        assert!(call(&a, "me", Args::new().arg("me").arg("other")).is_err());
        let e = call(&a, "me", Args::new().arg("me")).unwrap_err();
        assert!(e.contains("restricts argument '1', which was not given"), "{e}");

        let a = restricted(r#"{"identity": "<self>", "config_name": "config"}"#);
        assert!(
            call(
                &a,
                "me",
                Args::new().kwarg("identity", "me").kwarg("config_name", "config")
            )
            .is_ok()
        );
        let e = call(&a, "me", Args::new().kwarg("identity", "me")).unwrap_err();
        assert!(e.contains("argument 'config_name', which was not given"), "{e}");
        let e = call(&a, "me", Args::new().arg("me").arg("config")).unwrap_err();
        assert!(
            e.contains("pass it by name"),
            "without the parameter list, positional does not satisfy a named restriction: {e}"
        );
        // With the callee's parameter names, positional arguments are matched by them.
        let params = ["identity".to_owned(), "config_name".to_owned()];
        let positional = Args::new().arg("me").arg("config");
        assert!(a.check_call("me", "svc", "m", &positional, &params).is_ok());
        let other = Args::new().arg("someone").arg("config");
        let e = a.check_call("me", "svc", "m", &other, &params).unwrap_err();
        assert!(e.to_string().contains("'identity' = \"someone\""), "{e}");
    }

    #[test]
    fn glob_matching() {
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("?", "é"));
        assert!(!glob("?", ""));
        assert!(glob("**x", "x"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }

    fn topics() -> Authz {
        Authz::parse(
            r#"{"users": {"actor": {"capabilities": ["actuate", "read"]}, "reader": {"capabilities": ["read"]}},
                "protected_topics": {"publish": {"devices/actuators": ["actuate"]},
                                     "subscribe": {"devices/actuators": ["read"], "secrets": ["read"]}}}"#,
            Path::new("a"),
        )
        .unwrap()
    }

    #[test]
    fn publish_protection_is_level_aware() {
        let a = topics();
        let e = a.check_publish("nobody", "devices/actuators/rtu1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'nobody' may not publish 'devices/actuators/rtu1': protected prefix 'devices/actuators' requires capability 'actuate'"
        );
        assert_eq!(e.capability, "actuate");
        assert!(a.check_publish("nobody", "devices/actuators").is_err());
        assert!(a.check_publish("nobody", "devices/actuatorsX").is_ok());
        assert!(a.check_publish("nobody", "devices/other").is_ok());
        assert!(a.check_publish("actor", "devices/actuators/rtu1").is_ok());
        assert!(a.check_publish("reader", "devices/actuators/rtu1").is_err());
    }

    #[test]
    fn subscribe_protection_covers_overlap_both_ways() {
        let a = topics();
        for refused in [
            "",
            "d",
            "dev",
            "devices",
            "devices/",
            "devices/actuators",
            "devices/actuators/",
            "devices/actuators/rtu1",
            "secrets",
        ] {
            let e = a.check_subscribe("nobody", refused).unwrap_err();
            assert_eq!(e.access, TopicAccess::Subscribe, "{refused:?}");
            assert!(a.check_subscribe("reader", refused).is_ok(), "{refused:?}");
        }
        // Subscriptions match byte-wise: `devices/a` receives `devices/actuators/...`.
        assert!(a.check_subscribe("nobody", "devices/a").is_err());
        for allowed in [
            "devices/actuatorsX",
            "devices/other",
            "devices/b",
            "heartbeat",
            "secretsauce",
        ] {
            assert!(a.check_subscribe("nobody", allowed).is_ok(), "{allowed:?}");
        }
        let e = a.check_subscribe("nobody", "").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("'nobody' may not subscribe '': protected prefix"),
            "{e}"
        );
    }

    #[test]
    fn subscribe_protection_of_patterns() {
        let a = topics();
        for refused in [
            "#",
            "+/actuators",
            "devices/#",
            "devices/+/rtu1",
            "devices/actuators/+",
            "secrets/#",
        ] {
            assert!(a.check_subscribe("nobody", refused).is_err(), "{refused:?}");
            assert!(a.check_subscribe("reader", refused).is_ok(), "{refused:?}");
        }
        for allowed in ["devices/other/#", "heartbeat/+", "devices/actuatorsX/#"] {
            assert!(a.check_subscribe("nobody", allowed).is_ok(), "{allowed:?}");
        }
    }

    #[test]
    fn empty_prefix_protects_everything() {
        let a = Authz::parse(
            r#"{"protected_topics": {"publish": {"": ["any"]}}}"#,
            Path::new("a"),
        )
        .unwrap();
        assert!(a.check_publish("x", "a/b").is_err());
        assert!(
            a.check_subscribe("x", "a/b").is_ok(),
            "only publishing is protected"
        );
    }

    #[test]
    fn edits_validate_and_return_new_rules() {
        let a = example();
        let b = a.set_role("viewer", Some(&caps(&["read_devices"]))).unwrap();
        assert!(b.roles().contains_key("viewer"));
        assert!(!a.roles().contains_key("viewer"), "the original is unchanged");
        let e = a.set_role("operator", None).unwrap_err().to_string();
        assert!(
            e.contains(r#"$.groups["campus_ops"]: unknown role "operator""#),
            "{e}"
        );
        let b = a.set_group("viewers", Some(&caps(&["operator"]))).unwrap();
        assert_eq!(b.groups()["viewers"].len(), 1);
        let e = a.set_group("viewers", Some(&caps(&["ghost"]))).unwrap_err();
        assert!(
            matches!(e, AuthzError::UnknownReference { kind: "role", .. }),
            "{e}"
        );

        let b = a
            .set_user(
                "new.agent",
                Some(serde_json::json!({"capabilities": {"c": {"0": "x"}}})),
            )
            .unwrap();
        assert!(matches!(&b.capabilities("new.agent")["c"], Grant::Restricted(_)));
        let b = b.set_user("new.agent", None).unwrap();
        assert!(b.users().get("new.agent").is_none());

        let b = a.set_rpc_authorization("svc", "m", Some(&caps(&["c"]))).unwrap();
        assert!(b.check_call("x", "svc", "m", &Args::new(), &[]).is_err());
        let b = b.set_rpc_authorization("svc", "m", Some(&[])).unwrap();
        assert!(
            b.rpc_method_authorizations().get("svc").is_none(),
            "empty callee map removed"
        );

        let b = a
            .set_protected_topic(TopicAccess::Subscribe, "alerts/", Some(&caps(&["c"])))
            .unwrap();
        assert!(b.check_subscribe("x", "alerts").is_err());
        let b = b
            .set_protected_topic(TopicAccess::Subscribe, "alerts", None)
            .unwrap();
        assert!(b.check_subscribe("x", "alerts").is_ok());
        let e = a
            .set_protected_topic(TopicAccess::Publish, "a/#", Some(&caps(&["c"])))
            .unwrap_err();
        assert!(matches!(e, AuthzError::InvalidName { .. }), "{e}");
    }

    #[test]
    fn topic_access_parses() {
        assert_eq!("publish".parse::<TopicAccess>().unwrap(), TopicAccess::Publish);
        assert_eq!(
            "pub".parse::<TopicAccess>().unwrap_err().to_string(),
            "unknown topic access \"pub\": expected \"publish\" or \"subscribe\""
        );
    }
}
