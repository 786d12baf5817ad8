//! Topics and subscriptions of the VOLTTRON pub/sub bus.
//!
//! VOLTTRON topics are free-form strings such as
//! `devices/campus/building/unit/all` or `heartbeat/listener`. A *publish*
//! topic is validated into a [`Topic`]; a *subscription* string is
//! classified by [`classify_subscription`] as either
//!
//! * a [`SubscriptionKind::Prefix`] (VOLTTRON's native semantics: the topic
//!   must start with the subscription string, byte-wise, **not** level-aware),
//!   or
//! * a [`SubscriptionKind::Pattern`] (MQTT-style: some level is exactly `+`
//!   or `#`; `+` matches exactly one level, `#` matches all remaining levels,
//!   including none, and may only be the last level).
//!
//! [`prefix_matches`] and [`pattern_matches`] are the reference semantics;
//! the subscription index in [`crate::core::subscription`] agrees with them.
//!
//! # Behaviour
//!
//! | Subscription | Kind    | Matches                               | Does not match              |
//! |--------------|---------|---------------------------------------|-----------------------------|
//! | `""`         | prefix  | every topic                           | —                           |
//! | `dev`        | prefix  | `dev`, `devices`, `devices/a/b`       | `de`, `x/dev`               |
//! | `devices/`   | prefix  | `devices/`, `devices/a`               | `devices`                   |
//! | `a/b`        | prefix  | `a/b`, `a/bc`, `a/b/c`                | `a`, `a/c`                  |
//! | `a+`         | prefix  | `a+`, `a+/x` (`+`/`#` are wildcards only as whole levels) | `ab` |
//! | `a/+`        | pattern | `a/b`, `a/` (the level may be empty)  | `a`, `a/b/c`, `b/x`         |
//! | `+/b`        | pattern | `a/b`, `/b`                           | `b`, `a/b/c`                |
//! | `a/#`        | pattern | `a`, `a/`, `a/b`, `a/b/c`             | `ab`, `b/a`                 |
//! | `a/+/#`      | pattern | `a/b`, `a/b/c`                        | `a`                         |
//! | `#`          | pattern | every topic (including `""`)          | —                           |
//! | `a/#/b`      | invalid ([`TopicError::MisplacedHash`]) | —                   | —                           |
//!
//! # Validation rules
//!
//! * A publish topic must be non-empty; a subscription may be empty (`""`
//!   subscribes to everything on its bus).
//! * At most [`MAX_TOPIC_LEN`] bytes.
//! * No control characters (U+0000..=U+001F and U+007F).
//! * A publish topic may not contain a level that is exactly `+` or `#`
//!   (`a+b` or `#x` are fine: they are ordinary text).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::sync::Arc;

/// Maximum length of a topic or subscription, in bytes.
pub const MAX_TOPIC_LEN: usize = 4096;

/// Why a topic or subscription string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// A publish topic was empty (only subscriptions may be empty).
    #[error("topic is empty: a publish topic needs at least one character")]
    Empty,
    /// The string is longer than [`MAX_TOPIC_LEN`] bytes.
    #[error("topic is {len} bytes long, more than the maximum of {max} bytes")]
    TooLong {
        /// Length of the rejected string, in bytes.
        len: usize,
        /// The maximum allowed length, in bytes.
        max: usize,
    },
    /// The string contains a control character.
    #[error("{input:?} contains control character {character:?} at byte {position}")]
    ControlCharacter {
        /// Byte offset of the first control character.
        position: usize,
        /// The offending character.
        character: char,
        /// The rejected string.
        input: String,
    },
    /// A publish topic has a level that is exactly `+` or `#`.
    #[error(
        "publish topic {topic:?} has the wildcard {wildcard:?} as level {level} (0-based); \
         '+' and '#' levels are only allowed in subscriptions"
    )]
    WildcardInTopic {
        /// The rejected topic.
        topic: String,
        /// 0-based index of the offending level.
        level: usize,
        /// The wildcard found: `'+'` or `'#'`.
        wildcard: char,
    },
    /// A subscription pattern has a `#` level that is not the last level.
    #[error(
        "subscription {pattern:?} has '#' at level {level} (0-based), \
         but '#' may only be the last level"
    )]
    MisplacedHash {
        /// The rejected subscription.
        pattern: String,
        /// 0-based index of the misplaced `#` level.
        level: usize,
    },
}

/// How a subscription string matches topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubscriptionKind {
    /// Matches every topic that starts with the subscription string
    /// (byte-wise `starts_with`, not level-aware). See [`prefix_matches`].
    Prefix,
    /// MQTT-style pattern with `+` and/or `#` levels. See [`pattern_matches`].
    Pattern,
}

/// Length and control-character checks shared by topics and subscriptions.
fn check_common(s: &str) -> Result<(), TopicError> {
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong {
            len: s.len(),
            max: MAX_TOPIC_LEN,
        });
    }
    // Control characters are all ASCII, and UTF-8 continuation bytes are
    // >= 0x80, so a byte scan is exact.
    if let Some(position) = s.bytes().position(|b| b < 0x20 || b == 0x7f) {
        return Err(TopicError::ControlCharacter {
            position,
            character: char::from(s.as_bytes()[position]),
            input: s.to_owned(),
        });
    }
    Ok(())
}

/// Validates a publish topic (see the module docs for the rules).
fn validate_topic(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    check_common(s)?;
    for (level, part) in s.split('/').enumerate() {
        let wildcard = match part {
            "+" => '+',
            "#" => '#',
            _ => continue,
        };
        return Err(TopicError::WildcardInTopic {
            topic: s.to_owned(),
            level,
            wildcard,
        });
    }
    Ok(())
}

/// Validates a subscription string and tells whether it is a prefix or a
/// pattern subscription.
///
/// The empty string is a valid prefix subscription matching every topic.
/// A subscription is a [`SubscriptionKind::Pattern`] iff some level
/// (text between `/`) is exactly `+` or `#`; `#` must then be the last level.
///
/// ```
/// use volttron::core::topic::{classify_subscription, SubscriptionKind};
/// assert_eq!(classify_subscription("devices/"), Ok(SubscriptionKind::Prefix));
/// assert_eq!(classify_subscription("devices/+/all"), Ok(SubscriptionKind::Pattern));
/// assert!(classify_subscription("a/#/b").is_err());
/// ```
///
/// # Errors
///
/// [`TopicError::TooLong`], [`TopicError::ControlCharacter`] or
/// [`TopicError::MisplacedHash`].
pub fn classify_subscription(s: &str) -> Result<SubscriptionKind, TopicError> {
    check_common(s)?;
    let mut kind = SubscriptionKind::Prefix;
    let mut levels = s.split('/').enumerate().peekable();
    while let Some((level, part)) = levels.next() {
        match part {
            "+" => kind = SubscriptionKind::Pattern,
            "#" => {
                if levels.peek().is_some() {
                    return Err(TopicError::MisplacedHash {
                        pattern: s.to_owned(),
                        level,
                    });
                }
                kind = SubscriptionKind::Pattern;
            }
            _ => {}
        }
    }
    Ok(kind)
}

/// Reference semantics of a prefix subscription: plain `starts_with`.
///
/// This is VOLTTRON's behaviour and is deliberately **not** level-aware:
/// prefix `"dev"` matches topic `"devices/x"`, and `""` matches everything.
#[must_use]
pub fn prefix_matches(prefix: &str, topic: &str) -> bool {
    topic.starts_with(prefix)
}

/// Reference semantics of an MQTT-style pattern subscription.
///
/// Both strings are split on `/` into levels (`""` is one empty level).
/// A `+` level matches exactly one topic level (which may be empty); a `#`
/// level matches all remaining topic levels, including none (`"a/#"` matches
/// `"a"`, `"a/b"` and `"a/b/c"`; `"#"` matches everything). Other levels must
/// be equal, and the number of levels must agree: a pattern is not a prefix
/// (`"a/+"` does not match `"a/b/c"`).
///
/// No validation is performed: a `#` that is not the last level behaves as
/// if the pattern ended there, and `+`/`#` levels in `topic` are compared as
/// ordinary text. Unlike MQTT, topics starting with `$` get no special
/// treatment.
#[must_use]
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    let mut p = pattern.split('/');
    let mut t = topic.split('/');
    loop {
        match (p.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A validated publish topic (cheap to clone: the text is shared).
///
/// See the [module docs](self) for the validation rules.
///
/// ```
/// use volttron::core::topic::Topic;
/// let t = Topic::new("devices/campus/building/all").unwrap();
/// assert_eq!(t.levels().count(), 4);
/// assert!(Topic::new("devices/+/all").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Validates `s` as a publish topic.
    ///
    /// # Errors
    ///
    /// [`TopicError::Empty`], [`TopicError::TooLong`],
    /// [`TopicError::ControlCharacter`] or [`TopicError::WildcardInTopic`].
    pub fn new(s: impl AsRef<str>) -> Result<Topic, TopicError> {
        let s = s.as_ref();
        validate_topic(s)?;
        Ok(Topic(Arc::from(s)))
    }

    /// The topic text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic's levels (the text split on `/`; empty levels included).
    #[must_use]
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Topic").field(&&*self.0).finish()
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Deref for Topic {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Topic {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Topic {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl TryFrom<&str> for Topic {
    type Error = TopicError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Topic::new(s)
    }
}

impl TryFrom<String> for Topic {
    type Error = TopicError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        validate_topic(&s)?;
        Ok(Topic(Arc::from(s)))
    }
}

impl FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::new(s)
    }
}

impl From<Topic> for Arc<str> {
    fn from(t: Topic) -> Arc<str> {
        t.0
    }
}

impl serde::Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Topic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Topic::try_from(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_topics() {
        for s in [
            "devices/campus/building/unit/all",
            "heartbeat/listener",
            "a",
            "/",
            "a//b/",
            "a+b/#x/+y/c#",
            "ünïcödé/温度",
            "with space/and-dash_and.dot",
        ] {
            let t = Topic::new(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(t.as_str(), s);
            assert_eq!(t.to_string(), s);
            assert_eq!(&*t, s);
            assert_eq!(t, s);
            assert_eq!(Topic::try_from(s.to_owned()).unwrap(), t);
            assert_eq!(s.parse::<Topic>().unwrap(), t);
        }
        let max = "x".repeat(MAX_TOPIC_LEN);
        assert!(Topic::new(&max).is_ok());
    }

    #[test]
    fn levels_split_on_slash() {
        let t = Topic::new("a//b/").unwrap();
        assert_eq!(t.levels().collect::<Vec<_>>(), ["a", "", "b", ""]);
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(Topic::new(""), Err(TopicError::Empty));
        assert_eq!(Topic::try_from(String::new()), Err(TopicError::Empty));
    }

    #[test]
    fn rejects_too_long() {
        let long = "x".repeat(MAX_TOPIC_LEN + 1);
        let err = Topic::new(&long).unwrap_err();
        assert_eq!(
            err,
            TopicError::TooLong {
                len: MAX_TOPIC_LEN + 1,
                max: MAX_TOPIC_LEN
            }
        );
        assert!(err.to_string().contains("4097"));
        assert_eq!(classify_subscription(&long), Err(err));
    }

    #[test]
    fn rejects_control_characters() {
        for (s, position, character) in [
            ("a\nb", 1, '\n'),
            ("\0", 0, '\0'),
            ("é/\u{7f}", 3, '\u{7f}'),
            ("ok/\u{1f}", 3, '\u{1f}'),
        ] {
            let err = Topic::new(s).unwrap_err();
            assert_eq!(
                err,
                TopicError::ControlCharacter {
                    position,
                    character,
                    input: s.to_owned()
                }
            );
            assert_eq!(classify_subscription(s), Err(err));
        }
        let msg = Topic::new("a\tb").unwrap_err().to_string();
        assert!(msg.contains(r#""a\tb""#), "{msg}");
    }

    #[test]
    fn rejects_wildcards_in_topics() {
        for (s, level, wildcard) in [
            ("+", 0, '+'),
            ("#", 0, '#'),
            ("a/+/b", 1, '+'),
            ("a/b/#", 2, '#'),
            ("a/+/#", 1, '+'),
        ] {
            assert_eq!(
                Topic::new(s),
                Err(TopicError::WildcardInTopic {
                    topic: s.to_owned(),
                    level,
                    wildcard
                })
            );
        }
        let msg = Topic::new("devices/+/all").unwrap_err().to_string();
        assert!(msg.contains("\"devices/+/all\""), "{msg}");
    }

    #[test]
    fn classifies_subscriptions() {
        use SubscriptionKind::*;
        for (s, kind) in [
            ("", Prefix),
            ("dev", Prefix),
            ("devices/", Prefix),
            ("a+/#b", Prefix),
            ("+", Pattern),
            ("#", Pattern),
            ("a/+", Pattern),
            ("+/b", Pattern),
            ("a/#", Pattern),
            ("+/+/#", Pattern),
            ("/#", Pattern),
        ] {
            assert_eq!(classify_subscription(s), Ok(kind), "{s:?}");
        }
        for (s, level) in [("#/a", 0), ("a/#/b", 1), ("#/#", 0), ("a/#/", 1)] {
            assert_eq!(
                classify_subscription(s),
                Err(TopicError::MisplacedHash {
                    pattern: s.to_owned(),
                    level
                })
            );
        }
    }

    #[test]
    fn prefix_semantics() {
        assert!(prefix_matches("", "anything"));
        assert!(prefix_matches("dev", "devices/a"));
        assert!(prefix_matches("a/b", "a/b"));
        assert!(!prefix_matches("devices/", "devices"));
        assert!(!prefix_matches("b", "a/b"));
    }

    #[test]
    fn pattern_semantics() {
        let cases: &[(&str, &str, bool)] = &[
            ("#", "", true),
            ("#", "a/b/c", true),
            ("a/#", "a", true),
            ("a/#", "a/", true),
            ("a/#", "a/b/c", true),
            ("a/#", "ab", false),
            ("a/#", "b/a", false),
            ("+", "", true),
            ("+", "a", true),
            ("+", "a/b", false),
            ("a/+", "a/b", true),
            ("a/+", "a/", true),
            ("a/+", "a", false),
            ("a/+", "a/b/c", false),
            ("+/b", "a/b", true),
            ("+/b", "/b", true),
            ("+/b", "b", false),
            ("a/+/#", "a", false),
            ("a/+/#", "a/b", true),
            ("a/+/#", "a/b/c/d", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
        ];
        for &(p, t, want) in cases {
            assert_eq!(pattern_matches(p, t), want, "{p:?} vs {t:?}");
        }
    }
}
