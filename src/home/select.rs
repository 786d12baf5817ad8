//! `vctl`'s agent selection: which installed agents a pattern on the command line means.
//!
//! A pattern is text with glob wildcards: `*` (any run of characters), `?` (one
//! character); `\` makes the next character literal. Which fields it is matched against
//! depends on the flags ([`By`]):
//!
//! | flags | matching |
//! |-------|----------|
//! | none (default) | 1. the identity, whole (`listener`, `platform.*`); any match wins. 2. else the UUID prefix: one agent, or [`SelectError::Ambiguous`]. 3. else the name prefix (`listeneragent` matches `listeneragent-3.0`): every match |
//! | `--identity`, `--uuid`, `--name`, `--tag` (any combination) | the union of the chosen fields; the UUID by prefix, the others whole |
//!
//! UUIDs are matched without regard to case. An agent without a tag never matches
//! `--tag`. Nothing matching is [`SelectError::NoMatch`]. Commands that act on one agent
//! (`vctl tag`) use [`select_one`], which also refuses several matches.
//!
//! # Differences from VOLTTRON
//!
//! VOLTTRON's `filter_agents` (`volttron/client/commands/control.py` in volttron-core,
//! `volttron/platform/control.py` in VOLTTRON 9) turns the glob into a regular
//! expression matched at the start of the field. By default it tries the UUID prefix,
//! keeps it only if exactly one agent matches, and otherwise (10.x only, when none
//! matched) tries the name prefix; with flags it matches whole fields.
//!
//! - The identity is matched, first: VOLTTRON never matches identities, although `vctl
//!   list` shows them and users type them.
//! - A UUID prefix matching several agents is an error naming them; VOLTTRON says
//!   "agent not found" (and 9.x then does not try names at all).
//! - So `vctl stop '*'` selects every agent (by identity); in VOLTTRON it selects none.
//! - `--uuid` matches a prefix, as the default does; VOLTTRON's `--uuid` needs the whole
//!   UUID (or a trailing `*`).
//! - `--tag '*'` does not select untagged agents; VOLTTRON matches them as tag `""`.
//! - `\*` and `\?` are literal; VOLTTRON meant to allow that but its split left the
//!   backslash in the regular expression.
//! - An empty pattern is [`SelectError::EmptyPattern`]; VOLTTRON matched every UUID,
//!   hence (several) none.

use std::borrow::Cow;
use std::fmt;

use super::install::InstalledAgent;

/// The fields of an agent that selection looks at; implemented by [`InstalledAgent`],
/// and by whatever the control service's `list_agents` returns to `vctl`.
pub trait Selectable {
    /// The VIP identity.
    fn identity(&self) -> &str;
    /// The UUID, hyphenated.
    fn uuid(&self) -> Cow<'_, str>;
    /// The name and version (`listeneragent-3.0`).
    fn name(&self) -> &str;
    /// The tag, if any.
    fn tag(&self) -> Option<&str>;
}

impl Selectable for InstalledAgent {
    fn identity(&self) -> &str {
        self.identity.as_str()
    }
    fn uuid(&self) -> Cow<'_, str> {
        Cow::Owned(self.uuid.to_string())
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
}

/// Which fields a pattern is matched against (`vctl`'s `--identity`, `--uuid`, `--name`,
/// `--tag`). None set is the default matching of the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct By {
    /// `--identity`: the whole identity.
    pub identity: bool,
    /// `--uuid`: a UUID prefix.
    pub uuid: bool,
    /// `--name`: the whole name.
    pub name: bool,
    /// `--tag`: the whole tag.
    pub tag: bool,
}

impl By {
    /// Whether no field was chosen (the default matching).
    pub fn is_default(&self) -> bool {
        *self == By::default()
    }
}

/// Why a pattern selects nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// No agent matches.
    #[error("no agent matches '{pattern}'")]
    NoMatch {
        /// The pattern.
        pattern: String,
    },
    /// Several agents match where one is needed.
    #[error(
        "'{pattern}' matches several agents ({}); name one by its identity or a longer UUID prefix",
        Identities(identities)
    )]
    Ambiguous {
        /// The pattern.
        pattern: String,
        /// The matching agents' identities.
        identities: Vec<String>,
    },
    /// The pattern is empty.
    #[error("an empty pattern selects no agent")]
    EmptyPattern,
}

struct Identities<'a>(&'a [String]);

impl fmt::Display for Identities<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// The agents `pattern` selects, in `agents`' order (module docs).
pub fn select<'a, A: Selectable>(agents: &'a [A], pattern: &str, by: By) -> Result<Vec<&'a A>, SelectError> {
    if pattern.is_empty() {
        return Err(SelectError::EmptyPattern);
    }
    let glob = Glob::new(pattern);
    let uuid_glob = Glob::new(&pattern.to_ascii_lowercase());
    let no_match = || SelectError::NoMatch {
        pattern: pattern.to_owned(),
    };
    let by_identity = |a: &&A| glob.matches(a.identity(), false);
    let by_uuid = |a: &&A| uuid_glob.matches_prefix_ignoring_case(&a.uuid());
    let by_name = |a: &&A| glob.matches(a.name(), false);
    let by_tag = |a: &&A| a.tag().is_some_and(|t| glob.matches(t, false));
    if !by.is_default() {
        let found: Vec<&A> = agents
            .iter()
            .filter(|a| {
                (by.identity && by_identity(a))
                    || (by.uuid && by_uuid(a))
                    || (by.name && by_name(a))
                    || (by.tag && by_tag(a))
            })
            .collect();
        return if found.is_empty() {
            Err(no_match())
        } else {
            Ok(found)
        };
    }
    let found: Vec<&A> = agents.iter().filter(by_identity).collect();
    if !found.is_empty() {
        return Ok(found);
    }
    let found: Vec<&A> = agents.iter().filter(by_uuid).collect();
    match found.len() {
        0 => {}
        1 => return Ok(found),
        _ => return Err(ambiguous(pattern, &found)),
    }
    let found: Vec<&A> = agents.iter().filter(|a| glob.matches(a.name(), true)).collect();
    if found.is_empty() {
        Err(no_match())
    } else {
        Ok(found)
    }
}

/// The one agent `pattern` selects; several is [`SelectError::Ambiguous`].
pub fn select_one<'a, A: Selectable>(agents: &'a [A], pattern: &str, by: By) -> Result<&'a A, SelectError> {
    let found = select(agents, pattern, by)?;
    match found.as_slice() {
        [one] => Ok(one),
        _ => Err(ambiguous(pattern, &found)),
    }
}

/// The agents any of `patterns` selects, each once, in `agents`' order; the first
/// pattern that fails is the error (select pattern by pattern to go on past it).
pub fn select_all<'a, A: Selectable, P: AsRef<str>>(
    agents: &'a [A],
    patterns: &[P],
    by: By,
) -> Result<Vec<&'a A>, SelectError> {
    let mut chosen = vec![false; agents.len()];
    for pattern in patterns {
        for agent in select(agents, pattern.as_ref(), by)? {
            if let Some(i) = agents.iter().position(|a| std::ptr::eq(a, agent)) {
                chosen[i] = true;
            }
        }
    }
    Ok(agents
        .iter()
        .zip(chosen)
        .filter_map(|(a, c)| c.then_some(a))
        .collect())
}

/// How many leading characters of the UUIDs tell these agents apart (what `vctl list`
/// shows): one more than the longest prefix two of them share.
pub fn unique_uuid_prefix_len<A: Selectable>(agents: &[A]) -> usize {
    let uuids: Vec<Cow<'_, str>> = agents.iter().map(|a| a.uuid()).collect();
    let mut longest = 0;
    for (i, a) in uuids.iter().enumerate() {
        for b in &uuids[i + 1..] {
            let shared = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
            longest = longest.max(shared);
        }
    }
    longest + 1
}

fn ambiguous<A: Selectable>(pattern: &str, found: &[&A]) -> SelectError {
    SelectError::Ambiguous {
        pattern: pattern.to_owned(),
        identities: found.iter().map(|a| a.identity().to_owned()).collect(),
    }
}

/// A selection pattern: `*` and `?` wildcards, `\` escapes ([`crate::core::glob`]).
struct Glob(crate::core::glob::Glob);

impl Glob {
    fn new(pattern: &str) -> Glob {
        let syntax = crate::core::glob::Syntax {
            classes: false,
            escapes: true,
        };
        Glob(crate::core::glob::Glob::new(pattern, syntax))
    }

    /// Whether the glob matches all of `text` (or, with `prefix`, its start).
    fn matches(&self, text: &str, prefix: bool) -> bool {
        if prefix {
            self.0.matches_prefix(text)
        } else {
            self.0.matches(text)
        }
    }

    /// UUIDs: a prefix, in either case (the pattern was compiled as given; UUIDs are
    /// lowercase hex, so the text is compared lowercased against a lowercased pattern).
    fn matches_prefix_ignoring_case(&self, text: &str) -> bool {
        self.0.matches_prefix(&text.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Meta {
        identity: &'static str,
        uuid: &'static str,
        name: &'static str,
        tag: Option<&'static str>,
    }

    impl Selectable for Meta {
        fn identity(&self) -> &str {
            self.identity
        }
        fn uuid(&self) -> Cow<'_, str> {
            Cow::Borrowed(self.uuid)
        }
        fn name(&self) -> &str {
            self.name
        }
        fn tag(&self) -> Option<&str> {
            self.tag
        }
    }

    fn agents() -> Vec<Meta> {
        vec![
            Meta {
                identity: "listener",
                uuid: "d1c2a3b4-0000-4000-8000-000000000001",
                name: "listeneragent-3.0",
                tag: Some("hq"),
            },
            Meta {
                identity: "listener2",
                uuid: "d1f00000-0000-4000-8000-000000000002",
                name: "listeneragent-3.0",
                tag: None,
            },
            Meta {
                identity: "platform.driver",
                uuid: "2b000000-0000-4000-8000-000000000003",
                name: "platform_driveragent-4.0",
                tag: Some("hq"),
            },
            Meta {
                identity: "platform.historian",
                uuid: "7e000000-0000-4000-8000-000000000004",
                name: "sqlhistorian-4.0",
                tag: Some("store*"),
            },
        ]
    }

    fn ids(found: &[&Meta]) -> Vec<&'static str> {
        found.iter().map(|a| a.identity).collect()
    }

    fn default(pattern: &str) -> Result<Vec<&'static str>, SelectError> {
        let agents = Box::leak(Box::new(agents()));
        select(agents, pattern, By::default()).map(|f| ids(&f))
    }

    #[test]
    fn identity_exact_and_glob() {
        assert_eq!(default("listener").unwrap(), ["listener"]);
        assert_eq!(
            default("platform.*").unwrap(),
            ["platform.driver", "platform.historian"]
        );
        assert_eq!(default("listener?").unwrap(), ["listener2"]);
        assert_eq!(default("*").unwrap().len(), 4);
    }

    #[test]
    fn uuid_prefix_unique_or_ambiguous() {
        assert_eq!(default("2b").unwrap(), ["platform.driver"]);
        assert_eq!(default("D1C").unwrap(), ["listener"]);
        assert_eq!(default("d1f0*2").unwrap(), ["listener2"]);
        let err = default("d1").unwrap_err();
        assert_eq!(
            err,
            SelectError::Ambiguous {
                pattern: "d1".into(),
                identities: vec!["listener".into(), "listener2".into()]
            }
        );
        assert!(err.to_string().contains("listener, listener2"), "{err}");
    }

    #[test]
    fn name_prefix_and_glob() {
        // Two instances of one package: both, as VOLTTRON controls them as a group.
        assert_eq!(default("listeneragent").unwrap(), ["listener", "listener2"]);
        assert_eq!(default("sql*4.0").unwrap(), ["platform.historian"]);
        let agents = agents();
        let by_name = By {
            name: true,
            ..By::default()
        };
        // With --name the whole name must match.
        assert!(select(&agents, "sqlhistorian", by_name).is_err());
        assert_eq!(
            ids(&select(&agents, "sql*", by_name).unwrap()),
            ["platform.historian"]
        );
        assert_eq!(
            ids(&select(&agents, "*-4.?", by_name).unwrap()),
            ["platform.driver", "platform.historian"]
        );
    }

    #[test]
    fn tags_uuids_and_unions_by_flag() {
        let agents = agents();
        let by_tag = By {
            tag: true,
            ..By::default()
        };
        assert_eq!(
            ids(&select(&agents, "hq", by_tag).unwrap()),
            ["listener", "platform.driver"]
        );
        // Untagged agents never match, and `\*` is a literal star.
        assert_eq!(ids(&select(&agents, "*", by_tag).unwrap()).len(), 3);
        assert_eq!(
            ids(&select(&agents, "store\\*", by_tag).unwrap()),
            ["platform.historian"]
        );
        assert!(select(&agents, "storefront", by_tag).is_err());
        let by_uuid = By {
            uuid: true,
            ..By::default()
        };
        assert_eq!(
            ids(&select(&agents, "d1", by_uuid).unwrap()),
            ["listener", "listener2"]
        );
        // An identity is not looked at under --uuid.
        assert!(select(&agents, "listener", by_uuid).is_err());
        let both = By {
            tag: true,
            identity: true,
            ..By::default()
        };
        assert_eq!(
            ids(&select(&agents, "hq", both).unwrap()),
            ["listener", "platform.driver"]
        );
        assert_eq!(ids(&select(&agents, "listener2", both).unwrap()), ["listener2"]);
    }

    #[test]
    fn no_match_empty_and_select_one() {
        let err = default("nothing-like-it").unwrap_err();
        assert_eq!(err.to_string(), "no agent matches 'nothing-like-it'");
        assert_eq!(default("").unwrap_err(), SelectError::EmptyPattern);
        let agents = agents();
        assert_eq!(
            select_one(&agents, "2b", By::default()).unwrap().identity,
            "platform.driver"
        );
        assert!(matches!(
            select_one(&agents, "platform.*", By::default()),
            Err(SelectError::Ambiguous { .. })
        ));
        assert!(matches!(
            select_one(&agents, "zzz", By::default()),
            Err(SelectError::NoMatch { .. })
        ));
    }

    #[test]
    fn select_all_unites_in_order() {
        let agents = agents();
        let found = select_all(
            &agents,
            &["platform.historian", "listener", "2b", "listener"],
            By::default(),
        )
        .unwrap();
        assert_eq!(ids(&found), ["listener", "platform.driver", "platform.historian"]);
        let err = select_all(&agents, &["listener", "nope"], By::default()).unwrap_err();
        assert!(matches!(err, SelectError::NoMatch { pattern } if pattern == "nope"));
    }

    #[test]
    fn unique_prefix_length() {
        // "d1c…" and "d1f…" share two characters.
        assert_eq!(unique_uuid_prefix_len(&agents()), 3);
        assert_eq!(unique_uuid_prefix_len::<Meta>(&[]), 1);
    }

    #[test]
    fn glob_edge_cases() {
        let m = |p: &str, t: &str| Glob::new(p).matches(t, false);
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("**", ""));
        assert!(!m("?", ""));
        assert!(m("a\\?", "a?"));
        assert!(!m("a\\?", "ab"));
        assert!(m("trailing\\", "trailing\\"));
        assert!(Glob::new("ab").matches("abc", true));
        assert!(!Glob::new("abc").matches("ab", true));
    }
}
