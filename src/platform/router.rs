//! The routing table: who is connected, who subscribes to what, and how to reach them.
//!
//! The data path (publish, RPC) reads this table directly from the sending agent's thread:
//! a publish is one read-locked trie walk plus one queue push per matching subscription,
//! with no hop through a central actor (VOLTTRON's router socket is its bottleneck).
//! Membership changes (an agent's hello when it boots, its goodbye when it leaves) are
//! atomic check-and-insert operations on the table, and the `peerlist` add/drop events they
//! broadcast are sent under one lock, so every watcher sees them in the same order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use smallvec::SmallVec;

use crate::core::{Headers, Identity, Publication, SubscriptionIndex, Topic, TopicError, Value};
use crate::platform::backpressure::{MailboxStats, OverflowPolicy};
use crate::platform::counters::{self, AgentCells, AgentCounters, Instrumentation, PlatformCells};
use crate::platform::mailbox::{Activity, Delivered, Envelope, Mailbox, PeerEvent};

/// A connected peer.
pub(crate) struct PeerEntry {
    pub(crate) id: u64,
    pub(crate) mailbox: Arc<Mailbox>,
    /// Wants `peerlist` add/drop events.
    pub(crate) watches_peers: bool,
    /// Its RPC methods' parameter names, for authorization restrictions on arguments.
    pub(crate) exports: Exports,
}

/// The RPC methods a peer exports, with their parameter names.
#[derive(Clone)]
pub(crate) enum Exports {
    /// Not known (a mirrored peer in a bridged agent's process).
    Unknown,
    /// An in-process agent's, from its descriptor.
    Static(&'static [crate::agent::RpcSpec]),
    /// A bridged agent's, as declared in its hello.
    Declared(Arc<Vec<crate::bridge::frame::RpcExport>>),
}

/// What a subscription points at.
pub(crate) struct SubTarget {
    peer: u64,
    subscription: u32,
    overflow: OverflowPolicy,
    mailbox: Arc<Mailbox>,
    /// Also receives publications from other platforms of a federation.
    all_platforms: bool,
}

/// One subscription as its peer's list keeps it.
struct PeerSubscription {
    bus: String,
    subscription: String,
    id: u32,
    all_platforms: bool,
}

#[derive(Default)]
struct SubscriptionTable {
    index: SubscriptionIndex<SubTarget>,
    /// Each peer's subscriptions, so a departing peer is purged without a scan.
    by_peer: std::collections::HashMap<u64, Vec<PeerSubscription>>,
    /// The `all_platforms` subscriptions' (bus, prefix), with how many share each.
    remote_interest: std::collections::BTreeMap<(String, String), usize>,
}

impl SubscriptionTable {
    /// Counts one more (`up`) or one fewer `all_platforms` subscription to `key`;
    /// true if the set of keys changed.
    fn count_interest(&mut self, key: (String, String), up: bool) -> bool {
        use std::collections::btree_map::Entry;
        match (self.remote_interest.entry(key), up) {
            (Entry::Vacant(v), true) => {
                v.insert(1);
                true
            }
            (Entry::Occupied(mut o), true) => {
                *o.get_mut() += 1;
                false
            }
            (Entry::Occupied(mut o), false) => {
                *o.get_mut() -= 1;
                if *o.get() == 0 {
                    o.remove();
                    true
                } else {
                    false
                }
            }
            (Entry::Vacant(_), false) => false,
        }
    }

    /// The (bus, prefix) of every `all_platforms` subscription, sorted.
    fn interest(&self) -> RemoteInterest {
        Arc::new(self.remote_interest.keys().cloned().collect())
    }
}

/// The (bus, prefix) of every `all_platforms` subscription on a platform, sorted: what a
/// federation must bring in from the other platforms.
pub(crate) type RemoteInterest = Arc<Vec<(String, String)>>;

/// Facts a peer can `query` (VOLTTRON's router `query` subsystem).
#[derive(Debug, Clone)]
pub(crate) struct QueryInfo {
    pub(crate) instance_name: String,
    /// The bridge addresses, as `ipc://...`/`tcp://...`.
    pub(crate) addresses: Vec<String>,
    /// The platform's public key, when the bridge listens.
    pub(crate) serverkey: Option<String>,
    /// The platform home, if any.
    pub(crate) home: Option<std::path::PathBuf>,
}

/// The platform's routing table. See the module docs.
pub(crate) struct Router {
    peers: DashMap<Identity, PeerEntry>,
    subscriptions: RwLock<SubscriptionTable>,
    watchers: Mutex<Vec<(Identity, Arc<Mailbox>)>>,
    next_peer: AtomicU64,
    pub(crate) activity: Option<Arc<Activity>>,
    pub(crate) info: QueryInfo,
    /// Publications an agent's mailbox holds before its overflow policies apply.
    mailbox_capacity: usize,
    /// Authorization of publishes, subscriptions and calls (platforms with auth on).
    pub(crate) auth: std::sync::OnceLock<Arc<crate::auth::Authority>>,
    /// In the process of an agent attached through the bridge: the link that publishes,
    /// subscriptions and calls go up instead of through this table.
    pub(crate) upstream: std::sync::OnceLock<Arc<crate::remote::Upstream>>,
    /// Told when an agent's process exits (transports that cannot see a connection end
    /// at once drop the peer then).
    exit_hooks: Mutex<Vec<ExitHook>>,
    /// The platform's counters (see [`crate::platform::counters`]).
    pub(crate) counters: PlatformCells,
    /// Each identity's counters, kept across its connections.
    agent_cells: DashMap<Identity, Arc<AgentCells>>,
    /// Where sampled timings go, if anywhere.
    pub(crate) instrumentation: std::sync::OnceLock<Arc<dyn Instrumentation>>,
    /// What the `all_platforms` subscriptions want from other platforms, for the
    /// service that federates this platform.
    interest: tokio::sync::watch::Sender<RemoteInterest>,
    /// How calls reach agents on other platforms, once a federation service attached it.
    pub(crate) external: std::sync::OnceLock<Arc<dyn crate::platform::external::ExternalPlatforms>>,
}

/// A function told the identity of an agent whose process exited.
pub(crate) type ExitHook = Box<dyn Fn(&str) + Send + Sync>;

/// A subscription as listed by [`Platform::subscriptions`](crate::Platform::subscriptions).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SubscriptionInfo {
    /// The subscribing peer.
    pub peer: Identity,
    /// The bus.
    pub bus: String,
    /// The prefix or pattern.
    pub subscription: String,
}

impl Router {
    pub(crate) fn new(info: QueryInfo, activity: Option<Arc<Activity>>, mailbox_capacity: usize) -> Self {
        Router {
            peers: DashMap::new(),
            subscriptions: RwLock::new(SubscriptionTable::default()),
            watchers: Mutex::new(Vec::new()),
            next_peer: AtomicU64::new(1),
            activity,
            info,
            mailbox_capacity,
            auth: std::sync::OnceLock::new(),
            upstream: std::sync::OnceLock::new(),
            exit_hooks: Mutex::new(Vec::new()),
            counters: PlatformCells::default(),
            agent_cells: DashMap::new(),
            instrumentation: std::sync::OnceLock::new(),
            interest: tokio::sync::watch::Sender::new(Arc::new(Vec::new())),
            external: std::sync::OnceLock::new(),
        }
    }

    /// What the `all_platforms` subscriptions want from other platforms, now and as it
    /// changes.
    #[cfg_attr(
        not(feature = "mqtt"),
        allow(dead_code, reason = "watched by the federation service")
    )]
    pub(crate) fn remote_interest(&self) -> tokio::sync::watch::Receiver<RemoteInterest> {
        self.interest.subscribe()
    }

    /// Tells the watchers of [`remote_interest`](Self::remote_interest), if it `changed`.
    fn interest_changed(&self, table: &SubscriptionTable, changed: bool) {
        if changed {
            self.interest.send_replace(table.interest());
        }
    }

    /// The attached instrumentation, if any.
    #[inline]
    pub(crate) fn instrumentation(&self) -> Option<&dyn Instrumentation> {
        self.instrumentation.get().map(|i| &**i)
    }

    /// A config-store write was made durable in `elapsed`.
    pub(crate) fn config_written(&self, elapsed: std::time::Duration) {
        counters::add(&self.counters.config_writes, 1);
        if let Some(i) = self.instrumentation() {
            i.config_fsync(elapsed);
        }
    }

    /// Counts a refusal by `authz.json`.
    pub(crate) fn refused(&self) {
        counters::add(&self.counters.authz_refusals, 1);
    }

    /// How many subscriptions there are, on every bus.
    pub(crate) fn subscription_count(&self) -> usize {
        self.subscriptions.read().by_peer.values().map(Vec::len).sum()
    }

    /// The counters of a connected peer.
    pub(crate) fn agent_counters(&self, identity: &str) -> Option<AgentCounters> {
        self.peers.get(identity).map(|e| e.mailbox.counters())
    }

    /// Registers a function told of every agent process that exits.
    #[cfg_attr(not(feature = "vip"), allow(dead_code, reason = "used by the VIP listener"))]
    pub(crate) fn on_process_exit(&self, hook: ExitHook) {
        self.exit_hooks.lock().push(hook);
    }

    /// The process of the agent `identity` exited: its transport drops it at once.
    pub(crate) fn process_exited(&self, identity: &str) {
        for hook in self.exit_hooks.lock().iter() {
            hook(identity);
        }
    }

    /// A fresh peer number.
    pub(crate) fn next_peer_id(&self) -> u64 {
        self.next_peer.fetch_add(1, Ordering::Relaxed)
    }

    /// A new mailbox wired to this platform's activity counter.
    pub(crate) fn new_mailbox(&self) -> Arc<Mailbox> {
        Arc::new(Mailbox::new(
            self.activity.clone(),
            self.mailbox_capacity,
            Default::default(),
        ))
    }

    /// A new mailbox for the peer `identity`, whose counters carry on from its earlier
    /// connections (a restarted agent's panics and calls still count).
    pub(crate) fn mailbox_for(&self, identity: &Identity) -> Arc<Mailbox> {
        let cells = self.agent_cells.entry(identity.clone()).or_default().clone();
        Arc::new(Mailbox::new(self.activity.clone(), self.mailbox_capacity, cells))
    }

    /// Adds a peer; fails if the identity is taken. Only the router service calls this.
    pub(crate) fn add_peer(&self, identity: Identity, entry: PeerEntry) -> Result<(), Identity> {
        use dashmap::mapref::entry::Entry;
        let watches = entry.watches_peers;
        let mailbox = entry.mailbox.clone();
        match self.peers.entry(identity.clone()) {
            Entry::Occupied(_) => return Err(identity),
            Entry::Vacant(v) => {
                v.insert(entry);
            }
        }
        let mut watchers = self.watchers.lock();
        for (_, w) in watchers.iter() {
            let _ = w.deliver(Envelope::Peer(PeerEvent::Added(identity.clone())));
        }
        if watches {
            watchers.push((identity, mailbox));
        }
        Ok(())
    }

    /// Removes a peer, its subscriptions and tells the watchers. Only the router service
    /// calls this. Returns false if it was not connected.
    pub(crate) fn remove_peer(&self, identity: &Identity, peer_id: u64) -> bool {
        let removed = self.peers.remove_if(identity, |_, e| e.id == peer_id).is_some();
        if !removed {
            return false;
        }
        if let Some(up) = self.upstream.get() {
            up.local_peer_left(identity);
        }
        self.purge_subscriptions(peer_id);
        let mut watchers = self.watchers.lock();
        watchers.retain(|(id, _)| id != identity);
        for (_, w) in watchers.iter() {
            let _ = w.deliver(Envelope::Peer(PeerEvent::Dropped(identity.clone())));
        }
        true
    }

    fn purge_subscriptions(&self, peer: u64) {
        let mut table = self.subscriptions.write();
        let mut changed = false;
        if let Some(list) = table.by_peer.remove(&peer) {
            for s in list {
                table.index.remove(&s.bus, &s.subscription, |t| t.peer == peer);
                if s.all_platforms {
                    changed |= table.count_interest((s.bus, s.subscription), false);
                }
            }
        }
        self.interest_changed(&table, changed);
    }

    /// The parameter names of `peer`'s `method`, in order (empty when not known).
    pub(crate) fn param_names(&self, peer: &str, method: &str) -> Vec<String> {
        let Some(entry) = self.peers.get(peer) else {
            return Vec::new();
        };
        match &entry.exports {
            Exports::Unknown => Vec::new(),
            Exports::Static(rpcs) => rpcs
                .iter()
                .find(|r| r.name == method)
                .map(|r| r.params.iter().map(|p| p.name.to_owned()).collect())
                .unwrap_or_default(),
            Exports::Declared(rpcs) => rpcs
                .iter()
                .find(|r| r.name == method)
                .map(|r| r.params.clone())
                .unwrap_or_default(),
        }
    }

    /// The peers exporting an RPC method named `method`, each with the method's parameter
    /// names (how the web service finds the agent answering a declared route).
    #[cfg_attr(not(feature = "web"), allow(dead_code, reason = "asked by the web service"))]
    pub(crate) fn exporters(&self, method: &str) -> Vec<(Identity, Vec<String>)> {
        let mut found = Vec::new();
        for entry in self.peers.iter() {
            let params = match &entry.exports {
                Exports::Unknown => None,
                Exports::Static(rpcs) => rpcs
                    .iter()
                    .find(|r| r.name == method)
                    .map(|r| r.params.iter().map(|p| p.name.to_owned()).collect()),
                Exports::Declared(rpcs) => rpcs.iter().find(|r| r.name == method).map(|r| r.params.clone()),
            };
            if let Some(params) = params {
                found.push((entry.key().clone(), params));
            }
        }
        found.sort();
        found
    }

    /// Every RPC method name exported by a connected peer, with the peer, for which `keep`
    /// is true (the web service's list of declared routes).
    #[cfg_attr(not(feature = "web"), allow(dead_code, reason = "asked by the web service"))]
    pub(crate) fn exported_methods(&self, keep: impl Fn(&str) -> bool) -> Vec<(Identity, String)> {
        let mut found = Vec::new();
        for entry in self.peers.iter() {
            let names: Vec<String> = match &entry.exports {
                Exports::Unknown => Vec::new(),
                Exports::Static(rpcs) => rpcs.iter().map(|r| r.name.to_owned()).collect(),
                Exports::Declared(rpcs) => rpcs.iter().map(|r| r.name.clone()).collect(),
            };
            for name in names.into_iter().filter(|n| keep(n)) {
                found.push((entry.key().clone(), name));
            }
        }
        found.sort();
        found
    }

    /// The mailbox of a connected peer.
    pub(crate) fn mailbox(&self, identity: &str) -> Option<Arc<Mailbox>> {
        self.peers.get(identity).map(|e| e.mailbox.clone())
    }

    /// Whether `identity` is connected.
    pub(crate) fn is_connected(&self, identity: &str) -> bool {
        self.peers.contains_key(identity)
    }

    /// Connected identities, sorted.
    pub(crate) fn peers(&self) -> Vec<Identity> {
        let mut v: Vec<Identity> = self.peers.iter().map(|e| e.key().clone()).collect();
        v.sort();
        v
    }

    /// Subscribes `peer` (whose mailbox is `mailbox`) to `subscription` on `bus`; deliveries
    /// carry `id`. With `all_platforms`, publications from other platforms of a federation
    /// match it too.
    #[allow(
        clippy::too_many_arguments,
        reason = "one subscription's parts, passed through"
    )]
    pub(crate) fn subscribe(
        &self,
        peer: u64,
        mailbox: &Arc<Mailbox>,
        bus: &str,
        subscription: &str,
        id: u32,
        overflow: OverflowPolicy,
        all_platforms: bool,
    ) -> Result<(), TopicError> {
        let mut table = self.subscriptions.write();
        table.index.insert(
            bus,
            subscription,
            SubTarget {
                peer,
                subscription: id,
                overflow,
                mailbox: mailbox.clone(),
                all_platforms,
            },
        )?;
        table.by_peer.entry(peer).or_default().push(PeerSubscription {
            bus: bus.to_owned(),
            subscription: subscription.to_owned(),
            id,
            all_platforms,
        });
        if all_platforms {
            let changed = table.count_interest((bus.to_owned(), subscription.to_owned()), true);
            self.interest_changed(&table, changed);
        }
        Ok(())
    }

    /// Removes `peer`'s subscriptions on `bus` equal to `subscription` (all of them when
    /// `None`); returns the ids removed.
    pub(crate) fn unsubscribe(&self, peer: u64, bus: Option<&str>, subscription: Option<&str>) -> Vec<u32> {
        let mut table = self.subscriptions.write();
        let table = &mut *table;
        let Some(list) = table.by_peer.get_mut(&peer) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        let mut gone = Vec::new();
        list.retain(|s| {
            let hit = bus.is_none_or(|x| x == s.bus) && subscription.is_none_or(|x| x == s.subscription);
            if hit {
                table.index.remove(&s.bus, &s.subscription, |t| {
                    t.peer == peer && t.subscription == s.id
                });
                removed.push(s.id);
                if s.all_platforms {
                    gone.push((s.bus.clone(), s.subscription.clone()));
                }
            }
            !hit
        });
        if list.is_empty() {
            table.by_peer.remove(&peer);
        }
        let mut changed = false;
        for key in gone {
            changed |= table.count_interest(key, false);
        }
        self.interest_changed(table, changed);
        removed
    }

    /// One peer's subscriptions as `(bus, subscription)`, sorted.
    pub(crate) fn peer_subscriptions(&self, peer: u64) -> Vec<(String, String)> {
        let table = self.subscriptions.read();
        let mut v: Vec<(String, String)> = table
            .by_peer
            .get(&peer)
            .map(|list| {
                list.iter()
                    .map(|s| (s.bus.clone(), s.subscription.clone()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The peer number of a connected peer.
    pub(crate) fn peer_number(&self, identity: &str) -> Option<u64> {
        self.peers.get(identity).map(|e| e.id)
    }

    /// Removes one subscription by id.
    pub(crate) fn unsubscribe_id(&self, peer: u64, bus: &str, subscription: &str, id: u32) {
        let mut table = self.subscriptions.write();
        let table = &mut *table;
        table
            .index
            .remove(bus, subscription, |t| t.peer == peer && t.subscription == id);
        let mut changed = false;
        if let Some(list) = table.by_peer.get_mut(&peer)
            && let Some(pos) = list.iter().position(|s| s.id == id)
        {
            let s = list.remove(pos);
            if s.all_platforms {
                changed = table.count_interest((s.bus, s.subscription), false);
            }
        }
        self.interest_changed(table, changed);
    }

    /// The mailbox counters of a connected peer.
    pub(crate) fn mailbox_stats(&self, identity: &str) -> Option<MailboxStats> {
        self.peers.get(identity).map(|e| e.mailbox.stats())
    }

    /// Every subscription, sorted, optionally only those whose text starts with `prefix`.
    pub(crate) fn subscriptions(&self, prefix: &str) -> Vec<SubscriptionInfo> {
        let table = self.subscriptions.read();
        let names: std::collections::HashMap<u64, Identity> = self
            .peers
            .iter()
            .map(|e| (e.value().id, e.key().clone()))
            .collect();
        let mut v: Vec<SubscriptionInfo> = table
            .index
            .iter()
            .filter(|(_, s, _)| s.starts_with(prefix))
            .filter_map(|(bus, s, t)| {
                Some(SubscriptionInfo {
                    peer: names.get(&t.peer)?.clone(),
                    bus: bus.to_owned(),
                    subscription: s.to_owned(),
                })
            })
            .collect();
        v.sort();
        v
    }

    /// Publishes; returns how many distinct peers it reached. Each matching subscription
    /// gets its own delivery (VOLTTRON runs a callback once per matching subscription).
    pub(crate) fn publish(
        &self,
        sender: &Identity,
        bus: &str,
        topic: Topic,
        headers: Headers,
        message: Value,
    ) -> usize {
        self.counters.publishes.inc();
        self.deliver(Arc::new(Publication {
            sender: sender.clone(),
            bus: bus.to_owned(),
            topic,
            headers,
            message,
            origin: None,
        }))
    }

    /// Delivers a publication made on another platform of a federation (its `origin` is
    /// set) to this platform's `all_platforms` subscriptions only; returns how many
    /// distinct peers it reached.
    #[cfg_attr(
        not(feature = "mqtt"),
        allow(dead_code, reason = "called by the federation service")
    )]
    pub(crate) fn publish_remote(&self, publication: Publication) -> usize {
        debug_assert!(publication.origin.is_some());
        self.deliver(Arc::new(publication))
    }

    /// Queues `publication` for every matching subscription (only `all_platforms` ones
    /// for a remote publication).
    fn deliver(&self, publication: Arc<Publication>) -> usize {
        let bus = publication.bus.as_str();
        let remote = publication.origin.is_some();
        let table = self.subscriptions.read();
        let mut reached: SmallVec<[u64; 16]> = SmallVec::new();
        let mut slow: Vec<(u64, String, u32)> = Vec::new();
        table
            .index
            .for_each_match(bus, publication.topic.as_str(), |subscription, target| {
                if remote && !target.all_platforms {
                    return;
                }
                let envelope = Envelope::Publication {
                    publication: publication.clone(),
                    subscription: target.subscription,
                };
                match target.mailbox.deliver_publication(envelope, target.overflow) {
                    Delivered::Queued => reached.push(target.peer),
                    Delivered::Dropped | Delivered::Closed => {}
                    Delivered::Disconnect => {
                        slow.push((target.peer, subscription.to_owned(), target.subscription))
                    }
                }
            });
        drop(table);
        for (peer, subscription, id) in slow {
            tracing::warn!(
                peer,
                subscription,
                bus,
                "slow subscriber: mailbox full, subscription removed"
            );
            self.unsubscribe_id(peer, bus, &subscription, id);
        }
        if reached.len() > 1 {
            reached.sort_unstable();
            reached.dedup();
        }
        reached.len()
    }
}
