//! `config://` references between the configurations of one store.
//!
//! As VOLTTRON (`storeutils` and the agent-side `ConfigStore`): a string that starts with
//! [`LINK_PREFIX`] and sits inside a list or a map of a parsed `json`/`csv` configuration refers
//! to the configuration named by the rest of the string (stripped like a name, compared
//! case-insensitively). A `raw` configuration, being a plain string, has no references. The
//! prefix itself is case-sensitive, as in VOLTTRON's resolver.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::names;
use crate::core::value::Value;

/// The prefix of a reference to another configuration of the same store.
pub const LINK_PREFIX: &str = "config://";

/// The lookup key a string refers to, if it is a reference.
pub(crate) fn link_key(s: &str) -> Option<String> {
    s.strip_prefix(LINK_PREFIX)
        .map(|rest| names::key(names::strip(rest)))
}

/// The keys of every configuration `value` refers to directly.
pub(crate) fn links(value: &Value) -> BTreeSet<String> {
    fn visit(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::String(s) => out.extend(link_key(s)),
            Value::List(items) => items.iter().for_each(|x| visit(x, out)),
            Value::Map(map) => map.values().for_each(|x| visit(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    if matches!(value, Value::List(_) | Value::Map(_)) {
        visit(value, &mut out);
    }
    out
}

/// Replaces, inside the lists and maps of `value`, every reference for which `resolve` returns
/// a value; other references stay plain strings.
pub(crate) fn substitute<E>(
    value: &mut Value,
    resolve: &mut dyn FnMut(&str) -> Result<Option<Value>, E>,
) -> Result<(), E> {
    fn visit<E>(v: &mut Value, resolve: &mut dyn FnMut(&str) -> Result<Option<Value>, E>) -> Result<(), E> {
        match v {
            Value::String(s) => {
                if let Some(key) = link_key(s)
                    && let Some(resolved) = resolve(&key)?
                {
                    *v = resolved;
                }
                Ok(())
            }
            Value::List(items) => items.iter_mut().try_for_each(|x| visit(x, resolve)),
            Value::Map(map) => map.values_mut().try_for_each(|x| visit(x, resolve)),
            _ => Ok(()),
        }
    }
    match value {
        Value::List(_) | Value::Map(_) => visit(value, resolve),
        _ => Ok(()),
    }
}

/// A path of keys from `new_key` back to itself if giving `new_key` the references `new_links`
/// closes a cycle, following `links_of` for every other configuration (`None`: no such
/// configuration).
pub(crate) fn find_cycle<'a>(
    new_key: &str,
    new_links: &BTreeSet<String>,
    links_of: &dyn Fn(&str) -> Option<&'a BTreeSet<String>>,
) -> Option<Vec<String>> {
    // Depth-first search with an explicit stack of (node, remaining children), so a long chain
    // of references cannot overflow the call stack.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut path: Vec<String> = vec![new_key.to_owned()];
    let mut stack: Vec<std::collections::btree_set::Iter<'_, String>> = vec![new_links.iter()];
    while let Some(children) = stack.last_mut() {
        let Some(child) = children.next() else {
            stack.pop();
            path.pop();
            continue;
        };
        if child == new_key {
            path.push(child.clone());
            return Some(path);
        }
        if !seen.insert(child.as_str()) {
            continue;
        }
        if let Some(grandchildren) = links_of(child) {
            path.push(child.clone());
            stack.push(grandchildren.iter());
        }
    }
    None
}

/// Every key that refers to `target`, directly or through other configurations, `target`
/// itself excluded, given each configuration's key and direct references.
pub(crate) fn referrers<'a>(
    target: &str,
    all: impl Iterator<Item = (&'a str, &'a BTreeSet<String>)>,
) -> BTreeSet<String> {
    let mut reverse: HashMap<&str, Vec<&str>> = HashMap::new();
    for (key, links) in all {
        for link in links {
            reverse.entry(link.as_str()).or_default().push(key);
        }
    }
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut frontier = vec![target];
    while let Some(current) = frontier.pop() {
        for &referrer in reverse.get(current).into_iter().flatten() {
            if referrer != target && found.insert(referrer.to_owned()) {
                frontier.push(referrer);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn links_are_found_in_nested_containers_only() {
        let v = Value::from_json_str(
            r#"{"a": "config://One", "b": ["x", {"c": "config:// /Two/ "}], "config://key": 1, "d": "CONFIG://no"}"#,
        )
        .unwrap();
        assert_eq!(links(&v), set(&["one", "two"]));
        assert!(links(&Value::String("config://raw".into())).is_empty());
    }

    #[test]
    fn substitute_replaces_known_references() {
        let mut v = Value::from_json_str(r#"["config://a", {"k": "config://missing"}]"#).unwrap();
        substitute::<()>(&mut v, &mut |k| Ok((k == "a").then_some(Value::Int(1)))).unwrap();
        assert_eq!(
            v,
            Value::from_json_str(r#"[1, {"k": "config://missing"}]"#).unwrap()
        );
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        let graph: HashMap<String, BTreeSet<String>> = [
            ("b".to_string(), set(&["c"])),
            ("c".to_string(), set(&["a", "z"])),
            ("d".to_string(), set(&[])),
        ]
        .into_iter()
        .collect();
        let links_of = |k: &str| graph.get(k);
        assert_eq!(
            find_cycle("a", &set(&["a"]), &links_of),
            Some(vec!["a".into(), "a".into()])
        );
        assert_eq!(
            find_cycle("a", &set(&["d", "b"]), &links_of),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(find_cycle("a", &set(&["d", "z"]), &links_of), None);
        assert_eq!(find_cycle("x", &set(&["b"]), &links_of), None);
    }

    #[test]
    fn referrers_are_transitive() {
        let graph = [
            ("b", set(&["a"])),
            ("c", set(&["b"])),
            ("d", set(&["c", "a"])),
            ("e", set(&["x"])),
        ];
        let all = || graph.iter().map(|(k, l)| (*k, l));
        assert_eq!(referrers("a", all()), set(&["b", "c", "d"]));
        assert_eq!(referrers("c", all()), set(&["d"]));
        assert_eq!(referrers("x", all()), set(&["e"]));
        assert!(referrers("d", all()).is_empty());
    }
}
