//! The federation's MQTT topic tree. Every platform writes only under its own name, so a
//! broker ACL of `pattern write volttron/%u/#` (the platform's broker user is its
//! instance name) is what makes the origin of every message authenticated:
//!
//! | topic | written by | what |
//! |-------|------------|------|
//! | `volttron/<p>/status` | `p` (retained; its last will says `offline`) | `p` is online or offline |
//! | `volttron/<p>/pubsub/<topic>` | `p` | a publication on `p`'s bus under an exported prefix |
//! | `volttron/<p>/rpc/<q>` | `p` | a call from `p` to an agent of `q` (MQTT 5 response topic + correlation data) |
//! | `volttron/<p>/reply/<q>` | `p` | `p`'s reply to a call from `q` |
//!
//! VOLTTRON prefixes are string prefixes (`devices/rtu` matches `devices/rtu3/...`), so a
//! platform subscribes to the MQTT level that encloses each prefix and the routing table
//! filters exactly. Overlapping filters are merged (a broker delivers a message once per
//! matching filter), so each publication arrives once.

use std::collections::BTreeSet;

/// The root of the federation's topics.
pub(crate) const ROOT: &str = "volttron";

/// Whether `name` can be an instance name in a federation: an identity's characters
/// (ASCII letters, digits, `_ . -`), so that `<platform>.<identity>` is one too.
pub(crate) fn check_instance_name(name: &str) -> Result<(), String> {
    crate::core::Identity::new(name)
        .map(|_| ())
        .map_err(|e| format!("not a usable instance name: {e}"))
}

/// `volttron/<platform>/status`.
pub(crate) fn status(platform: &str) -> String {
    format!("{ROOT}/{platform}/status")
}

/// `volttron/<platform>/pubsub/<topic>`.
pub(crate) fn pubsub(platform: &str, topic: &str) -> String {
    format!("{ROOT}/{platform}/pubsub/{topic}")
}

/// `volttron/<from>/rpc/<to>`.
pub(crate) fn rpc(from: &str, to: &str) -> String {
    format!("{ROOT}/{from}/rpc/{to}")
}

/// `volttron/<from>/reply/<to>`.
pub(crate) fn reply(from: &str, to: &str) -> String {
    format!("{ROOT}/{from}/reply/{to}")
}

/// A federation topic, parsed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FederationTopic<'a> {
    Status { platform: &'a str },
    PubSub { platform: &'a str, topic: &'a str },
    Rpc { from: &'a str, to: &'a str },
    Reply { from: &'a str, to: &'a str },
}

/// Parses a topic of the table in the module docs; `None` for anything else.
pub(crate) fn parse(topic: &str) -> Option<FederationTopic<'_>> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix('/')?;
    let (platform, rest) = rest.split_once('/')?;
    check_instance_name(platform).ok()?;
    let (kind, tail) = rest.split_once('/').unwrap_or((rest, ""));
    match kind {
        "status" if tail.is_empty() && !rest.contains('/') => Some(FederationTopic::Status { platform }),
        "pubsub" if rest.contains('/') => Some(FederationTopic::PubSub {
            platform,
            topic: tail,
        }),
        "rpc" if check_instance_name(tail).is_ok() => Some(FederationTopic::Rpc {
            from: platform,
            to: tail,
        }),
        "reply" if check_instance_name(tail).is_ok() => Some(FederationTopic::Reply {
            from: platform,
            to: tail,
        }),
        _ => None,
    }
}

/// Whether `topic` can be published to MQTT (no wildcard characters, no NUL).
pub(crate) fn publishable(topic: &str) -> bool {
    !topic.contains(['+', '#', '\0'])
}

/// The whole MQTT levels a VOLTTRON subscription is sure to lie under: a prefix's levels
/// before its last `/` (`devices/rtu` → `devices`, `devices/` → `devices`), a pattern's
/// levels before its first wildcard.
pub(crate) fn enclosing_levels(subscription: &str) -> Vec<&str> {
    let mut levels: Vec<&str> = subscription.split('/').collect();
    if let Some(wild) = levels.iter().position(|l| *l == "+" || *l == "#") {
        levels.truncate(wild);
    } else {
        levels.pop();
    }
    levels
}

/// The MQTT filters that bring in every subscription of `subscriptions` from every other
/// platform, without overlaps: `volttron/+/pubsub/<levels>/#`, dropping any filter whose
/// levels extend another's.
pub(crate) fn filters<'a>(subscriptions: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut all: Vec<Vec<&str>> = subscriptions.into_iter().map(enclosing_levels).collect();
    all.sort();
    all.dedup();
    let mut kept: Vec<Vec<&str>> = Vec::new();
    for levels in all {
        // Sorted, so a covering (shorter, equal-leading) list comes first.
        if !kept.iter().any(|k| levels.starts_with(k)) {
            kept.push(levels);
        }
    }
    kept.into_iter()
        .map(|levels| {
            let mut f = format!("{ROOT}/+/pubsub/");
            for l in levels {
                f.push_str(l);
                f.push('/');
            }
            f.push('#');
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        assert_eq!(
            parse(&pubsub("site1", "devices/a/b")),
            Some(FederationTopic::PubSub {
                platform: "site1",
                topic: "devices/a/b"
            })
        );
        assert_eq!(
            parse(&status("s-2")),
            Some(FederationTopic::Status { platform: "s-2" })
        );
        assert_eq!(
            parse(&rpc("a", "b")),
            Some(FederationTopic::Rpc { from: "a", to: "b" })
        );
        assert_eq!(
            parse(&reply("a", "b")),
            Some(FederationTopic::Reply { from: "a", to: "b" })
        );
        for bad in [
            "volttron",
            "volttron/",
            "other/a/status",
            "volttron/a b/status",
            "volttron/a/status/x",
            "volttron/a/rpc/",
            "volttron/a/rpc/b/c",
            "volttron/a/what",
            "volttron/a/pubsub",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn string_prefixes_subscribe_one_level_up() {
        assert_eq!(enclosing_levels("devices/rtu"), ["devices"]);
        assert_eq!(enclosing_levels("devices/"), ["devices"]);
        assert_eq!(enclosing_levels("devices"), Vec::<&str>::new());
        assert_eq!(enclosing_levels(""), Vec::<&str>::new());
        assert_eq!(enclosing_levels("a/+/c/#"), ["a"]);
        assert_eq!(enclosing_levels("a/b/c/#"), ["a", "b", "c"]);
    }

    #[test]
    fn filters_do_not_overlap() {
        let f = filters(["devices/rtu1/", "devices/", "alerts/x", "devices/rtu2/a"]);
        assert_eq!(
            f.into_iter().collect::<Vec<_>>(),
            ["volttron/+/pubsub/alerts/#", "volttron/+/pubsub/devices/#"]
        );
        let f = filters(["devices/", ""]);
        assert_eq!(f.into_iter().collect::<Vec<_>>(), ["volttron/+/pubsub/#"]);
        // `devicesX/` is not under `devices/`.
        let f = filters(["devices/a", "devicesX/b"]);
        assert_eq!(f.len(), 2);
    }
}
