//! The pub/sub service's subscription index.
//!
//! [`SubscriptionIndex<T>`] maps `(bus, subscription)` pairs to values of
//! type `T` (typically a subscriber handle) and answers "which subscriptions
//! on this bus match this topic?" without looking at subscriptions that
//! cannot match.
//!
//! Each bus (a namespace string such as `""` or `"pubsub"`; buses are
//! independent) holds two tries:
//!
//! * **prefix subscriptions** (see [`prefix_matches`]) live in a compressed
//!   (radix) trie over bytes. Matching walks the topic's bytes once and
//!   reports the values stored at every node it passes, including the root
//!   (the `""` subscription);
//! * **pattern subscriptions** (see [`pattern_matches`]) live in a trie over
//!   `/`-separated levels, each node having exact-level children (a hash
//!   map), an optional `+` child, the values of patterns ending there and the
//!   values of patterns ending there with `/#` (or being just `#` at the
//!   root).
//!
//! Several values may be stored under the same subscription (duplicates are
//! kept; the caller decides). Nodes that become empty are pruned, so memory
//! does not grow under subscribe/unsubscribe churn.
//!
//! # Behaviour and complexity
//!
//! `L` = length of the topic/subscription in bytes, `k` = number of hits,
//! `e` = entries stored at the removed subscription, `B` = number of buses
//! (small), `n` = total entries.
//!
//! | Operation          | Behaviour                                                     | Cost                                  |
//! |--------------------|---------------------------------------------------------------|---------------------------------------|
//! | [`insert`]         | validates with [`classify_subscription`], appends the value   | `O(B + L)`                            |
//! | [`remove`]         | removes values at exactly `(bus, subscription)` matching pred; prunes | `O(B + L + e)`                |
//! | [`retain`]         | keeps values for which pred is true, everywhere; prunes       | `O(n + nodes)`                        |
//! | [`for_each_match`] | every `(subscription, value)` on the bus matching the topic   | `O(B + L + k)` for prefixes; patterns: `O(L)` per `+` branch taken; no allocation |
//! | [`iter`]           | every `(bus, subscription, value)`, unspecified order         | `O(n + nodes)`                        |
//!
//! Matching cost is independent of the number of subscriptions that do not
//! match (apart from hash-map and binary-search lookups whose cost is
//! logarithmic or constant in the fan-out).
//!
//! [`insert`]: SubscriptionIndex::insert
//! [`remove`]: SubscriptionIndex::remove
//! [`retain`]: SubscriptionIndex::retain
//! [`for_each_match`]: SubscriptionIndex::for_each_match
//! [`iter`]: SubscriptionIndex::iter
//! [`prefix_matches`]: crate::core::topic::prefix_matches
//! [`pattern_matches`]: crate::core::topic::pattern_matches

use std::collections::HashMap;

use crate::core::topic::{SubscriptionKind, TopicError, classify_subscription};

/// The values stored under one subscription, with its text.
#[derive(Debug, Clone)]
struct Slot<T> {
    text: Box<str>,
    values: Vec<T>,
}

impl<T> Slot<T> {
    fn new(text: &str) -> Self {
        Slot {
            text: text.into(),
            values: Vec::new(),
        }
    }

    fn report<F: FnMut(&str, &T)>(&self, f: &mut F) {
        for v in &self.values {
            f(&self.text, v);
        }
    }

    /// Keeps values for which `keep` is true; returns how many were removed.
    fn retain_values<F: FnMut(&T) -> bool>(&mut self, keep: F) -> usize {
        let before = self.values.len();
        self.values.retain(keep);
        before - self.values.len()
    }
}

/// Applies `f` to the slot in `slot` (if any), dropping it if it empties.
fn retain_slot<T, F: FnMut(&T) -> bool>(slot: &mut Option<Slot<T>>, keep: F) -> usize {
    let Some(s) = slot else { return 0 };
    let removed = s.retain_values(keep);
    if s.values.is_empty() {
        *slot = None;
    }
    removed
}

// ---------------------------------------------------------------------------
// Prefix subscriptions: radix trie over bytes.
// ---------------------------------------------------------------------------

/// A radix-trie node. Invariants (for non-root nodes): `label` is non-empty;
/// a node without a slot has at least two children. `children` is sorted by
/// the first byte of their labels, which are distinct.
#[derive(Debug, Clone)]
struct RadixNode<T> {
    label: Box<[u8]>,
    slot: Option<Slot<T>>,
    children: Vec<RadixNode<T>>,
}

impl<T> RadixNode<T> {
    fn root() -> Self {
        RadixNode {
            label: Box::default(),
            slot: None,
            children: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.slot.is_none() && self.children.is_empty()
    }

    fn child_index(&self, first: u8) -> Result<usize, usize> {
        self.children.binary_search_by_key(&first, |c| c.label[0])
    }

    fn insert(&mut self, key: &str, value: T) {
        let bytes = key.as_bytes();
        let mut node = self;
        let mut pos = 0;
        loop {
            let rest = &bytes[pos..];
            let Some(&first) = rest.first() else {
                node.slot.get_or_insert_with(|| Slot::new(key)).values.push(value);
                return;
            };
            match node.child_index(first) {
                Err(i) => {
                    let mut slot = Slot::new(key);
                    slot.values.push(value);
                    node.children.insert(
                        i,
                        RadixNode {
                            label: rest.into(),
                            slot: Some(slot),
                            children: Vec::new(),
                        },
                    );
                    return;
                }
                Ok(i) => {
                    let child = &mut node.children[i];
                    let common = child.label.iter().zip(rest).take_while(|(a, b)| a == b).count();
                    if common < child.label.len() {
                        child.split_at(common);
                    }
                    pos += common;
                    node = child;
                }
            }
        }
    }

    /// Splits this node's label at `at` (`0 < at < label.len()`), moving the
    /// tail and everything below into a new single child.
    fn split_at(&mut self, at: usize) {
        let tail = RadixNode {
            label: self.label[at..].into(),
            slot: self.slot.take(),
            children: std::mem::take(&mut self.children),
        };
        self.label = self.label[..at].into();
        self.children = vec![tail];
    }

    /// Merges a slotless node with its single child.
    fn merge_only_child(&mut self) {
        debug_assert!(self.slot.is_none() && self.children.len() == 1);
        if let Some(child) = self.children.pop() {
            let mut label = Vec::with_capacity(self.label.len() + child.label.len());
            label.extend_from_slice(&self.label);
            label.extend_from_slice(&child.label);
            self.label = label.into_boxed_slice();
            self.slot = child.slot;
            self.children = child.children;
        }
    }

    /// Restores the invariants of a (non-root) node after removals below it.
    /// Returns false if the node is empty and must be dropped.
    fn normalize(&mut self) -> bool {
        if self.slot.is_none() {
            match self.children.len() {
                0 => return false,
                1 => self.merge_only_child(),
                _ => {}
            }
        }
        true
    }

    /// Removes values at exactly `key` (relative to this node) matching `pred`.
    fn remove<F: FnMut(&T) -> bool>(&mut self, key: &[u8], pred: &mut F) -> usize {
        let Some(&first) = key.first() else {
            return retain_slot(&mut self.slot, |v| !pred(v));
        };
        let Ok(i) = self.child_index(first) else {
            return 0;
        };
        let child = &mut self.children[i];
        let Some(rest) = key.strip_prefix(&*child.label) else {
            return 0;
        };
        let removed = child.remove(rest, pred);
        if removed > 0 && !child.normalize() {
            self.children.remove(i);
            shrink_vec(&mut self.children);
        }
        removed
    }

    fn retain<F: FnMut(&T) -> bool>(&mut self, keep: &mut F) -> usize {
        let mut removed = retain_slot(&mut self.slot, &mut *keep);
        for child in &mut self.children {
            removed += child.retain(keep);
        }
        if removed > 0 {
            self.children.retain_mut(RadixNode::normalize);
            shrink_vec(&mut self.children);
        }
        removed
    }

    fn for_each_match<F: FnMut(&str, &T)>(&self, topic: &[u8], f: &mut F) {
        let mut node = self;
        let mut rest = topic;
        loop {
            if let Some(slot) = &node.slot {
                slot.report(f);
            }
            let Some(&first) = rest.first() else { return };
            let Ok(i) = node.child_index(first) else {
                return;
            };
            let child = &node.children[i];
            let Some(r) = rest.strip_prefix(&*child.label) else {
                return;
            };
            rest = r;
            node = child;
        }
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        1 + self.children.iter().map(RadixNode::node_count).sum::<usize>()
    }

    /// Checks the structural invariants; `path` is the key up to and
    /// including this node's label.
    #[cfg(test)]
    fn check_invariants(&self, path: &mut Vec<u8>, is_root: bool) {
        if !is_root {
            assert!(!self.label.is_empty(), "empty label");
            assert!(
                self.slot.is_some() || self.children.len() >= 2,
                "uncompressed node at {path:?}"
            );
        }
        if let Some(slot) = &self.slot {
            assert!(!slot.values.is_empty());
            assert_eq!(slot.text.as_bytes(), &path[..]);
        }
        assert!(self.children.windows(2).all(|w| w[0].label[0] < w[1].label[0]));
        for child in &self.children {
            let n = path.len();
            path.extend_from_slice(&child.label);
            child.check_invariants(path, false);
            path.truncate(n);
        }
    }
}

/// Releases memory of a vector that has shrunk a lot.
fn shrink_vec<X>(v: &mut Vec<X>) {
    if v.capacity() > 8 && v.capacity() > 4 * v.len() {
        v.shrink_to_fit();
    }
}

// ---------------------------------------------------------------------------
// Pattern subscriptions: trie over levels.
// ---------------------------------------------------------------------------

/// A level-trie node for MQTT-style patterns.
#[derive(Debug, Clone)]
struct PatternNode<T> {
    /// Children for literal levels (never `"+"` or `"#"`).
    exact: HashMap<Box<str>, PatternNode<T>>,
    /// Child for a `+` level.
    plus: Option<Box<PatternNode<T>>>,
    /// Patterns ending at this node.
    slot: Option<Slot<T>>,
    /// Patterns ending at this node followed by a `#` level.
    hash: Option<Slot<T>>,
}

impl<T> Default for PatternNode<T> {
    fn default() -> Self {
        PatternNode {
            exact: HashMap::new(),
            plus: None,
            slot: None,
            hash: None,
        }
    }
}

impl<T> PatternNode<T> {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.plus.is_none() && self.slot.is_none() && self.hash.is_none()
    }

    /// `pattern` must be a validated pattern (`#` only as last level).
    fn insert(&mut self, pattern: &str, value: T) {
        let mut node = self;
        for level in pattern.split('/') {
            node = match level {
                "#" => {
                    node.hash
                        .get_or_insert_with(|| Slot::new(pattern))
                        .values
                        .push(value);
                    return;
                }
                "+" => node.plus.get_or_insert_with(Box::default),
                _ => {
                    if !node.exact.contains_key(level) {
                        node.exact.insert(level.into(), PatternNode::default());
                    }
                    match node.exact.get_mut(level) {
                        Some(child) => child,
                        None => unreachable!("child was just inserted"),
                    }
                }
            };
        }
        node.slot
            .get_or_insert_with(|| Slot::new(pattern))
            .values
            .push(value);
    }

    /// `levels` are the remaining levels of a validated pattern.
    fn remove<F: FnMut(&T) -> bool>(&mut self, mut levels: std::str::Split<'_, char>, pred: &mut F) -> usize {
        match levels.next() {
            None => retain_slot(&mut self.slot, |v| !pred(v)),
            Some("#") => retain_slot(&mut self.hash, |v| !pred(v)),
            Some("+") => {
                let Some(child) = self.plus.as_deref_mut() else {
                    return 0;
                };
                let removed = child.remove(levels, pred);
                if child.is_empty() {
                    self.plus = None;
                }
                removed
            }
            Some(level) => {
                let Some(child) = self.exact.get_mut(level) else {
                    return 0;
                };
                let removed = child.remove(levels, pred);
                if child.is_empty() {
                    self.exact.remove(level);
                    shrink_map(&mut self.exact);
                }
                removed
            }
        }
    }

    fn retain<F: FnMut(&T) -> bool>(&mut self, keep: &mut F) -> usize {
        let mut removed = retain_slot(&mut self.slot, &mut *keep);
        removed += retain_slot(&mut self.hash, &mut *keep);
        if let Some(child) = self.plus.as_deref_mut() {
            removed += child.retain(keep);
            if child.is_empty() {
                self.plus = None;
            }
        }
        if !self.exact.is_empty() {
            self.exact.retain(|_, child| {
                removed += child.retain(keep);
                !child.is_empty()
            });
            shrink_map(&mut self.exact);
        }
        removed
    }

    /// `rest` is the remainder of the topic: `None` when all levels have been
    /// consumed, `Some(s)` when at least one level (possibly empty) remains.
    fn for_each_match<F: FnMut(&str, &T)>(&self, rest: Option<&str>, f: &mut F) {
        if let Some(hash) = &self.hash {
            hash.report(f);
        }
        let Some(s) = rest else {
            if let Some(slot) = &self.slot {
                slot.report(f);
            }
            return;
        };
        let (level, next) = match s.split_once('/') {
            Some((level, next)) => (level, Some(next)),
            None => (s, None),
        };
        if let Some(child) = &self.plus {
            child.for_each_match(next, f);
        }
        if !self.exact.is_empty()
            && let Some(child) = self.exact.get(level)
        {
            child.for_each_match(next, f);
        }
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        1 + self.plus.as_deref().map_or(0, PatternNode::node_count)
            + self.exact.values().map(PatternNode::node_count).sum::<usize>()
    }

    #[cfg(test)]
    fn check_invariants(&self, path: &str, is_root: bool) {
        assert!(is_root || !self.is_empty(), "empty pattern node at {path:?}");
        let join = |level: &str| {
            if is_root {
                level.to_owned()
            } else {
                format!("{path}/{level}")
            }
        };
        if let Some(slot) = &self.slot {
            assert!(!slot.values.is_empty());
            assert_eq!(&*slot.text, path);
        }
        if let Some(slot) = &self.hash {
            assert!(!slot.values.is_empty());
            assert_eq!(*slot.text, join("#"));
        }
        if let Some(child) = &self.plus {
            child.check_invariants(&join("+"), false);
        }
        for (level, child) in &self.exact {
            assert!(&**level != "+" && &**level != "#");
            child.check_invariants(&join(level), false);
        }
    }
}

/// Releases memory of a map that has shrunk a lot.
fn shrink_map<K: Eq + std::hash::Hash, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 8 && m.capacity() > 4 * m.len() {
        m.shrink_to_fit();
    }
}

// ---------------------------------------------------------------------------
// The index.
// ---------------------------------------------------------------------------

/// All subscriptions of one bus.
#[derive(Debug, Clone)]
struct Bus<T> {
    name: Box<str>,
    prefixes: RadixNode<T>,
    patterns: PatternNode<T>,
}

impl<T> Bus<T> {
    fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && self.patterns.is_empty()
    }
}

/// Index of subscriptions per bus, answering which subscriptions match a
/// published topic. See the [module docs](self) for behaviour and costs.
///
/// ```
/// use volttron::core::subscription::SubscriptionIndex;
/// let mut index = SubscriptionIndex::new();
/// index.insert("pubsub", "devices/", 1).unwrap();
/// index.insert("pubsub", "devices/+/all", 2).unwrap();
/// index.insert("pubsub", "heartbeat", 3).unwrap();
/// let mut hits = Vec::new();
/// index.for_each_match("pubsub", "devices/ahu1/all", |sub, v| hits.push((sub.to_owned(), *v)));
/// hits.sort();
/// assert_eq!(hits, [("devices/".to_owned(), 1), ("devices/+/all".to_owned(), 2)]);
/// ```
#[derive(Debug, Clone)]
pub struct SubscriptionIndex<T> {
    buses: Vec<Bus<T>>,
    len: usize,
}

impl<T> Default for SubscriptionIndex<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SubscriptionIndex<T> {
    /// Creates an empty index.
    #[must_use]
    pub fn new() -> Self {
        SubscriptionIndex {
            buses: Vec::new(),
            len: 0,
        }
    }

    fn bus(&self, bus: &str) -> Option<&Bus<T>> {
        self.buses.iter().find(|b| &*b.name == bus)
    }

    fn bus_position(&self, bus: &str) -> Option<usize> {
        self.buses.iter().position(|b| &*b.name == bus)
    }

    /// Adds a subscription of `value` on `bus` (a namespace: `""` or
    /// `"pubsub"` are just strings; each bus is separate) to `subscription`
    /// (prefix or pattern, classified by [`classify_subscription`]).
    ///
    /// Duplicates are kept: inserting the same `(bus, subscription, value)`
    /// twice stores two entries. Returns the subscription's kind.
    ///
    /// # Errors
    ///
    /// The error of [`classify_subscription`] for an invalid subscription;
    /// nothing is stored then.
    pub fn insert(
        &mut self,
        bus: &str,
        subscription: &str,
        value: T,
    ) -> Result<SubscriptionKind, TopicError> {
        let kind = classify_subscription(subscription)?;
        let i = match self.bus_position(bus) {
            Some(i) => i,
            None => {
                self.buses.push(Bus {
                    name: bus.into(),
                    prefixes: RadixNode::root(),
                    patterns: PatternNode::default(),
                });
                self.buses.len() - 1
            }
        };
        let b = &mut self.buses[i];
        match kind {
            SubscriptionKind::Prefix => b.prefixes.insert(subscription, value),
            SubscriptionKind::Pattern => b.patterns.insert(subscription, value),
        }
        self.len += 1;
        Ok(kind)
    }

    /// Removes the entries for exactly `(bus, subscription)` whose value
    /// satisfies `pred`; returns how many.
    ///
    /// Cost `O(len(subscription) + entries at that subscription)`, not a scan
    /// of the index. Empty nodes (and empty buses) are pruned. An invalid
    /// subscription string removes nothing.
    pub fn remove(&mut self, bus: &str, subscription: &str, mut pred: impl FnMut(&T) -> bool) -> usize {
        let Ok(kind) = classify_subscription(subscription) else {
            return 0;
        };
        let Some(i) = self.bus_position(bus) else {
            return 0;
        };
        let b = &mut self.buses[i];
        let removed = match kind {
            SubscriptionKind::Prefix => b.prefixes.remove(subscription.as_bytes(), &mut pred),
            SubscriptionKind::Pattern => b.patterns.remove(subscription.split('/'), &mut pred),
        };
        if b.is_empty() {
            self.buses.swap_remove(i);
        }
        self.len -= removed;
        removed
    }

    /// Removes every entry (any bus, any subscription) whose value does
    /// **not** satisfy `keep` (full scan, meant for rare use such as a peer
    /// disconnecting); returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> usize {
        let mut removed = 0;
        self.buses.retain_mut(|b| {
            removed += b.prefixes.retain(&mut keep);
            removed += b.patterns.retain(&mut keep);
            !b.is_empty()
        });
        self.len -= removed;
        removed
    }

    /// Calls `f(subscription, value)` for every entry on `bus` whose
    /// subscription matches `topic` (prefix subscriptions:
    /// [`prefix_matches`](crate::core::topic::prefix_matches); patterns:
    /// [`pattern_matches`](crate::core::topic::pattern_matches)).
    ///
    /// `topic` is not validated. Does not allocate. The order of calls is
    /// unspecified; an entry stored twice is reported twice.
    pub fn for_each_match(&self, bus: &str, topic: &str, mut f: impl FnMut(&str, &T)) {
        let Some(b) = self.bus(bus) else { return };
        b.prefixes.for_each_match(topic.as_bytes(), &mut f);
        if !b.patterns.is_empty() {
            b.patterns.for_each_match(Some(topic), &mut f);
        }
    }

    /// Every entry as `(bus, subscription, &value)`, in unspecified order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &T)> {
        self.buses.iter().flat_map(|b| {
            let name: &str = &b.name;
            Slots {
                radix: vec![&b.prefixes],
                pattern: vec![&b.patterns],
                pending: None,
            }
            .flat_map(move |slot| slot.values.iter().map(move |v| (name, &*slot.text, v)))
        })
    }

    /// Number of entries (values) stored, over all buses.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of allocated nodes (buses, trie roots and trie nodes); 0 when
    /// the index is empty, since empty buses are pruned.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.buses
            .iter()
            .map(|b| 1 + b.prefixes.node_count() + b.patterns.node_count())
            .sum()
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        let mut total = 0;
        for (i, b) in self.buses.iter().enumerate() {
            assert!(!b.is_empty(), "empty bus kept");
            assert!(self.buses[..i].iter().all(|o| o.name != b.name));
            b.prefixes.check_invariants(&mut Vec::new(), true);
            b.patterns.check_invariants("", true);
            total += Slots {
                radix: vec![&b.prefixes],
                pattern: vec![&b.patterns],
                pending: None,
            }
            .map(|s| s.values.len())
            .sum::<usize>();
        }
        assert_eq!(total, self.len);
    }
}

/// Depth-first iterator over the slots of one bus.
struct Slots<'a, T> {
    radix: Vec<&'a RadixNode<T>>,
    pattern: Vec<&'a PatternNode<T>>,
    pending: Option<&'a Slot<T>>,
}

impl<'a, T> Iterator for Slots<'a, T> {
    type Item = &'a Slot<T>;

    fn next(&mut self) -> Option<&'a Slot<T>> {
        loop {
            if let Some(slot) = self.pending.take() {
                return Some(slot);
            }
            if let Some(node) = self.radix.pop() {
                self.radix.extend(node.children.iter());
                if let Some(slot) = &node.slot {
                    return Some(slot);
                }
            } else if let Some(node) = self.pattern.pop() {
                self.pattern.extend(node.exact.values());
                self.pattern.extend(node.plus.as_deref());
                self.pending = node.hash.as_ref();
                if let Some(slot) = &node.slot {
                    return Some(slot);
                }
            } else {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::topic::{pattern_matches, prefix_matches};
    use proptest::prelude::*;

    fn hits<T: Clone + Ord>(index: &SubscriptionIndex<T>, bus: &str, topic: &str) -> Vec<(String, T)> {
        let mut out = Vec::new();
        index.for_each_match(bus, topic, |s, v| out.push((s.to_owned(), v.clone())));
        out.sort();
        out
    }

    fn subs(index: &SubscriptionIndex<u32>, bus: &str, topic: &str) -> Vec<String> {
        hits(index, bus, topic).into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn empty_prefix_matches_everything_on_its_bus_only() {
        let mut index = SubscriptionIndex::new();
        assert_eq!(index.insert("pubsub", "", 7), Ok(SubscriptionKind::Prefix));
        for topic in ["", "a", "devices/x/y", "heartbeat/listener"] {
            assert_eq!(hits(&index, "pubsub", topic), [(String::new(), 7)]);
            assert!(hits(&index, "", topic).is_empty());
            assert!(hits(&index, "other", topic).is_empty());
        }
    }

    #[test]
    fn prefix_is_not_level_aware() {
        let mut index = SubscriptionIndex::new();
        index.insert("", "dev", 1).unwrap();
        index.insert("", "devices/", 2).unwrap();
        assert_eq!(subs(&index, "", "devices/a"), ["dev", "devices/"]);
        assert_eq!(subs(&index, "", "devices"), ["dev"]);
        assert!(subs(&index, "", "de").is_empty());
        assert!(subs(&index, "", "x/devices").is_empty());
    }

    #[test]
    fn overlapping_prefixes_all_hit() {
        let mut index = SubscriptionIndex::new();
        for (i, s) in ["a", "a/b", "a/b/c", "a/c", "a/b/d", "b"].into_iter().enumerate() {
            index.insert("pubsub", s, i).unwrap();
        }
        assert_eq!(
            hits(&index, "pubsub", "a/b/c/d"),
            [("a".into(), 0), ("a/b".into(), 1), ("a/b/c".into(), 2)]
        );
        assert_eq!(hits(&index, "pubsub", "a/"), [("a".into(), 0)]);
    }

    #[test]
    fn patterns() {
        let mut index = SubscriptionIndex::new();
        for s in ["a/+", "+/b", "a/#", "#", "a/+/c", "+", "a/b/+/#"] {
            assert_eq!(index.insert("", s, 0), Ok(SubscriptionKind::Pattern), "{s}");
        }
        assert_eq!(subs(&index, "", "a"), ["#", "+", "a/#"]);
        assert_eq!(subs(&index, "", "a/b"), ["#", "+/b", "a/#", "a/+"]);
        assert_eq!(subs(&index, "", "a/b/c"), ["#", "a/#", "a/+/c", "a/b/+/#"]);
        assert_eq!(subs(&index, "", "a/b/c/d"), ["#", "a/#", "a/b/+/#"]);
        assert_eq!(subs(&index, "", "x/b"), ["#", "+/b"]);
        assert_eq!(subs(&index, "", ""), ["#", "+"]);
        assert_eq!(subs(&index, "", "ab"), ["#", "+"]);
    }

    #[test]
    fn hash_pattern_matches_parent_level() {
        let mut index = SubscriptionIndex::new();
        index.insert("", "a/#", 1).unwrap();
        assert_eq!(subs(&index, "", "a"), ["a/#"]);
        assert_eq!(subs(&index, "", "a/"), ["a/#"]);
        assert_eq!(subs(&index, "", "a/b/c"), ["a/#"]);
        assert!(subs(&index, "", "ab").is_empty());
        assert!(subs(&index, "", "b").is_empty());
    }

    #[test]
    fn invalid_subscription_is_rejected() {
        let mut index = SubscriptionIndex::new();
        assert!(matches!(
            index.insert("", "a/#/b", 1),
            Err(TopicError::MisplacedHash { .. })
        ));
        assert!(index.is_empty());
        assert_eq!(index.node_count(), 0);
        assert_eq!(index.remove("", "a/#/b", |_| true), 0);
    }

    #[test]
    fn remove_one_of_two_values() {
        let mut index = SubscriptionIndex::new();
        index.insert("pubsub", "devices/", 1).unwrap();
        index.insert("pubsub", "devices/", 2).unwrap();
        index.insert("pubsub", "devices/+", 1).unwrap();
        index.insert("pubsub", "devices/+", 2).unwrap();
        assert_eq!(index.len(), 4);
        assert_eq!(index.remove("pubsub", "devices/", |v| *v == 1), 1);
        assert_eq!(index.remove("pubsub", "devices/+", |v| *v == 2), 1);
        assert_eq!(index.remove("pubsub", "devices/+", |v| *v == 2), 0);
        assert_eq!(index.remove("other", "devices/", |_| true), 0);
        assert_eq!(index.remove("pubsub", "devices", |_| true), 0);
        assert_eq!(index.len(), 2);
        assert_eq!(
            hits(&index, "pubsub", "devices/x"),
            [("devices/".into(), 2), ("devices/+".into(), 1)]
        );
    }

    #[test]
    fn remove_prunes_everything() {
        let mut index = SubscriptionIndex::new();
        let subscriptions = [
            "", "a", "a/b", "a/b/c", "a/bc", "ab", "b", "+", "#", "a/+", "a/#", "+/+/#", "a/b/+",
        ];
        for bus in ["", "pubsub"] {
            for (i, s) in subscriptions.iter().enumerate() {
                index.insert(bus, s, i).unwrap();
                index.insert(bus, s, i + 100).unwrap();
            }
        }
        assert_eq!(index.len(), 4 * subscriptions.len());
        assert!(index.node_count() > 0);
        // Remove in an order different from insertion.
        for bus in ["pubsub", ""] {
            for s in subscriptions.iter().rev() {
                assert_eq!(index.remove(bus, s, |v| *v >= 100), 1);
                index.check_invariants();
            }
            for s in subscriptions.iter() {
                assert_eq!(index.remove(bus, s, |_| true), 1);
                index.check_invariants();
            }
        }
        assert_eq!(index.len(), 0);
        assert!(index.is_empty());
        assert_eq!(index.node_count(), 0);
        assert_eq!(index.iter().count(), 0);
    }

    #[test]
    fn churn_does_not_grow() {
        let mut index = SubscriptionIndex::new();
        index.insert("", "keep/", 0u32).unwrap();
        let baseline = index.node_count();
        for i in 0..1000u32 {
            let p = format!("dev/{i}/x");
            let q = format!("dev/{i}/+/#");
            index.insert("", &p, i).unwrap();
            index.insert("", &q, i).unwrap();
            index.insert("temp", &p, i).unwrap();
            assert_eq!(index.remove("", &p, |_| true), 1);
            assert_eq!(index.remove("", &q, |_| true), 1);
            assert_eq!(index.remove("temp", &p, |_| true), 1);
            assert_eq!(index.node_count(), baseline);
        }
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn retain_removes_where_false() {
        let mut index = SubscriptionIndex::new();
        for (i, s) in ["", "a", "a/b", "a/+", "#", "a/#", "b"].iter().enumerate() {
            index.insert("x", s, i as u32).unwrap();
            index.insert("y", s, 100 + i as u32).unwrap();
        }
        assert_eq!(index.retain(|v| v % 2 == 0), 6);
        assert_eq!(index.len(), 8);
        let mut all: Vec<_> = index
            .iter()
            .map(|(b, s, v)| (b.to_owned(), s.to_owned(), *v))
            .collect();
        all.sort();
        assert!(all.iter().all(|(_, _, v)| v % 2 == 0));
        assert_eq!(all.len(), 8);
        index.check_invariants();
        assert_eq!(index.retain(|v| *v >= 100), 4);
        index.check_invariants();
        assert!(index.iter().all(|(b, _, _)| b == "y"));
        assert_eq!(index.retain(|_| false), 4);
        assert!(index.is_empty());
        assert_eq!(index.node_count(), 0);
    }

    #[test]
    fn many_non_matching_subscriptions_are_not_visited() {
        let mut index = SubscriptionIndex::new();
        for i in 0..100_000u32 {
            index.insert("pubsub", &format!("other/{i}/x"), i).unwrap();
        }
        for i in 0..1000u32 {
            index.insert("pubsub", &format!("other/{i}/+/#"), i).unwrap();
        }
        index.insert("pubsub", "devices/a", u32::MAX).unwrap();
        let mut calls = 0;
        index.for_each_match("pubsub", "devices/a/b", |s, v| {
            calls += 1;
            assert_eq!((s, *v), ("devices/a", u32::MAX));
        });
        assert_eq!(calls, 1);
        assert_eq!(index.len(), 101_001);
    }

    // ---------------------------------------------------------------- proptest

    fn prefix_strategy() -> impl Strategy<Value = String> {
        "[ab/]{0,6}"
    }

    fn pattern_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "ab", "", "+", "#"]), 1..5).prop_map(
            |mut levels| {
                if let Some(i) = levels.iter().position(|l| *l == "#") {
                    levels.truncate(i + 1);
                }
                levels.join("/")
            },
        )
    }

    fn subscription_strategy() -> impl Strategy<Value = String> {
        prop_oneof![prefix_strategy(), pattern_strategy()]
    }

    fn topic_strategy() -> impl Strategy<Value = String> {
        prop_oneof![4 => "[ab/]{0,7}", 1 => "[ab/+#]{0,5}"]
    }

    fn bus_strategy() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", "pubsub"])
    }

    type Model = Vec<(&'static str, String, u8)>;

    fn model_hits(model: &Model, bus: &str, topic: &str) -> Vec<(String, u8)> {
        let mut out: Vec<_> = model
            .iter()
            .filter(|(b, s, _)| {
                *b == bus
                    && match classify_subscription(s).unwrap() {
                        SubscriptionKind::Prefix => prefix_matches(s, topic),
                        SubscriptionKind::Pattern => pattern_matches(s, topic),
                    }
            })
            .map(|(_, s, v)| (s.clone(), *v))
            .collect();
        out.sort();
        out
    }

    fn check(index: &SubscriptionIndex<u8>, model: &Model, topics: &[(&'static str, String)]) {
        index.check_invariants();
        assert_eq!(index.len(), model.len());
        for (bus, topic) in topics {
            assert_eq!(
                hits(index, bus, topic),
                model_hits(model, bus, topic),
                "bus {bus:?} topic {topic:?}"
            );
        }
        let mut all: Vec<_> = index
            .iter()
            .map(|(b, s, v)| (b.to_owned(), s.to_owned(), *v))
            .collect();
        all.sort();
        let mut expected: Vec<_> = model
            .iter()
            .map(|(b, s, v)| ((*b).to_owned(), s.clone(), *v))
            .collect();
        expected.sort();
        assert_eq!(all, expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn index_agrees_with_reference(
            entries in prop::collection::vec((bus_strategy(), subscription_strategy(), 0u8..3), 0..40),
            topics in prop::collection::vec((bus_strategy(), topic_strategy()), 1..20),
            removes in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, bus_strategy()), 0..30),
            keep_below in 0u8..4,
        ) {
            let mut index = SubscriptionIndex::new();
            let mut model: Model = Vec::new();
            for (bus, sub, v) in &entries {
                index.insert(bus, sub, *v).unwrap();
                model.push((bus, sub.clone(), *v));
            }
            check(&index, &model, &topics);

            // Remove: `which` picks a subscription seen in `entries`, `v` the
            // value (3 = any value), `bus` may differ from its original bus.
            for (which, v, bus) in &removes {
                if entries.is_empty() { break; }
                let sub = &entries[which.index(entries.len())].1;
                let pred = |x: &u8| *v == 3 || *x == *v;
                let before = model.len();
                model.retain(|(b, s, x)| !(b == bus && s == sub && pred(x)));
                prop_assert_eq!(index.remove(bus, sub, pred), before - model.len());
                check(&index, &model, &topics);
            }

            let before = model.len();
            model.retain(|(_, _, x)| *x < keep_below);
            prop_assert_eq!(index.retain(|x| *x < keep_below), before - model.len());
            check(&index, &model, &topics);

            let n = model.len();
            prop_assert_eq!(index.retain(|_| false), n);
            prop_assert_eq!(index.node_count(), 0);
        }
    }
}
