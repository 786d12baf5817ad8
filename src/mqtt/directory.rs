//! The other platforms of the federation as this one sees them, from their retained
//! status messages and last wills.

use std::collections::BTreeMap;

use crate::core::{Map, Value};
use crate::mqtt::wire::Status;

/// One platform.
#[derive(Debug, Clone)]
pub(crate) struct PlatformEntry {
    pub(crate) status: Status,
    /// When this platform learnt its current state.
    pub(crate) since: chrono::DateTime<chrono::Utc>,
}

/// What changed with a status message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Joined,
    /// Left (or was seen offline for the first time).
    Left,
    /// Restarted: a new boot, online.
    Restarted,
    Unchanged,
}

/// The platforms seen, by name.
#[derive(Default)]
pub(crate) struct Directory {
    platforms: BTreeMap<String, PlatformEntry>,
}

impl Directory {
    /// Records `platform`'s status (`None`: its retained status was cleared).
    pub(crate) fn update(&mut self, platform: &str, status: Option<Status>) -> Change {
        let now = chrono::Utc::now();
        let Some(status) = status else {
            return match self.platforms.remove(platform) {
                Some(e) if e.status.online => Change::Left,
                _ => Change::Unchanged,
            };
        };
        let change = match self.platforms.get(platform) {
            None if status.online => Change::Joined,
            None => Change::Left,
            Some(old) if old.status.online && !status.online => Change::Left,
            Some(old) if !old.status.online && status.online => Change::Joined,
            Some(old) if status.online && old.status.boot != status.boot => Change::Restarted,
            Some(_) => Change::Unchanged,
        };
        let since = match (&change, self.platforms.get(platform)) {
            (Change::Unchanged, Some(old)) => old.since,
            _ => now,
        };
        self.platforms
            .insert(platform.to_owned(), PlatformEntry { status, since });
        change
    }

    /// Whether `platform` is online.
    pub(crate) fn online(&self, platform: &str) -> bool {
        self.platforms.get(platform).is_some_and(|e| e.status.online)
    }

    /// Every platform as `platform.federation`'s `list_platforms` answers it.
    pub(crate) fn listing(&self) -> Value {
        Value::List(
            self.platforms
                .iter()
                .map(|(name, e)| {
                    let mut m = Map::new();
                    m.insert("name".into(), Value::from(name.as_str()));
                    m.insert(
                        "state".into(),
                        Value::from(if e.status.online { "online" } else { "offline" }),
                    );
                    m.insert(
                        "since".into(),
                        Value::from(e.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    );
                    m.insert("version".into(), Value::from(e.status.version.as_str()));
                    m.insert(
                        "exports".into(),
                        Value::List(e.status.exports.iter().map(|x| Value::from(x.as_str())).collect()),
                    );
                    Value::Map(m)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(online: bool, boot: u64) -> Option<Status> {
        Some(Status {
            online,
            boot,
            version: "v".into(),
            exports: vec![],
        })
    }

    #[test]
    fn joins_leaves_and_restarts() {
        let mut d = Directory::default();
        assert_eq!(d.update("a", s(true, 1)), Change::Joined);
        assert!(d.online("a"));
        assert_eq!(d.update("a", s(true, 1)), Change::Unchanged);
        assert_eq!(d.update("a", s(true, 2)), Change::Restarted);
        assert_eq!(d.update("a", s(false, 2)), Change::Left);
        assert!(!d.online("a"));
        assert_eq!(d.update("a", s(true, 3)), Change::Joined);
        assert_eq!(d.update("a", None), Change::Left);
        assert!(!d.online("b"));
    }
}
