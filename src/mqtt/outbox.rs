//! What leaves this platform for the broker, and what waits on disk while it cannot.
//!
//! | link | a publication to send (federated or a plain MQTT export) |
//! |------|-------------------------------------------------------|
//! | live (connected, backlog empty) | handed to the MQTT client at once |
//! | down, or replaying the backlog | appended to the backlog (durable before [`Outbox::flush`] answers) |
//! | the client's queue is full | appended to the backlog; the link replays before it goes live again |
//!
//! On reconnection the backlog is replayed in its order (priority, then age) with QoS 1,
//! a window of [`REPLAY_WINDOW`] at a time; an entry leaves the disk only when the
//! broker has acknowledged it (its PUBACK), so a crash at any point loses nothing that
//! was backlogged (a replayed entry may arrive twice; receivers drop the second).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, ClientError, Request};
use tokio::sync::{Notify, oneshot};

use crate::mqtt::backlog::{Backlog, BacklogConfig, BacklogError, Entry};

/// Backlog entries in flight to the broker at once while replaying.
pub(crate) const REPLAY_WINDOW: usize = 64;

/// One MQTT message, as the backlog stores it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredMessage {
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) retain: bool,
}

impl StoredMessage {
    fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Option<StoredMessage> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .ok()
            .map(|(m, _)| m)
    }
}

impl From<Publish> for StoredMessage {
    fn from(p: Publish) -> StoredMessage {
        StoredMessage {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            payload: p.payload.to_vec(),
            properties: p.properties.map(|pr| pr.user_properties).unwrap_or_default(),
            retain: p.retain,
        }
    }
}

/// MQTT 5 publish properties: user properties, and a response topic with correlation
/// data for a call.
fn properties(user: Vec<(String, String)>, response: Option<(String, Vec<u8>)>) -> PublishProperties {
    let (response_topic, correlation_data) = match response {
        Some((topic, correlation)) => (Some(topic), Some(correlation.into())),
        None => (None, None),
    };
    PublishProperties {
        user_properties: user,
        response_topic,
        correlation_data,
        ..Default::default()
    }
}

enum Command {
    /// `bus_topic` picks the backlog policy.
    Push {
        bus_topic: String,
        record: Vec<u8>,
    },
    Peek {
        max: usize,
        reply: oneshot::Sender<Vec<Entry>>,
    },
    Remove(Vec<u64>),
    Flush(oneshot::Sender<()>),
}

/// The backlog's figures, for `status` and metrics.
#[derive(Debug, Default)]
pub(crate) struct BacklogFigures {
    pub(crate) messages: AtomicU64,
    pub(crate) bytes: AtomicU64,
    /// Unix ms of the oldest entry; 0 when empty.
    pub(crate) oldest_ms: AtomicU64,
    pub(crate) dropped: AtomicU64,
    /// Failed writes (disk full...), logged.
    pub(crate) errors: AtomicU64,
}

/// The thread that owns the backlog (SQLite calls block).
struct Worker {
    tx: std::sync::mpsc::Sender<Command>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Worker {
    fn start(config: BacklogConfig, figures: Arc<BacklogFigures>) -> Result<Worker, String> {
        let path = config.path.display().to_string();
        let mut backlog = Backlog::open(config).map_err(|e: BacklogError| e.to_string())?;
        let (tx, rx) = std::sync::mpsc::channel::<Command>();
        let update = move |b: &Backlog, f: &BacklogFigures| {
            f.messages.store(b.len() as u64, Ordering::Relaxed);
            f.bytes.store(b.bytes(), Ordering::Relaxed);
            f.oldest_ms.store(
                b.oldest_enqueued_ms().map_or(0, |t| t.max(0) as u64),
                Ordering::Relaxed,
            );
            f.dropped.store(b.dropped(), Ordering::Relaxed);
        };
        update(&backlog, &figures);
        std::thread::Builder::new()
            .name("volttron-federation-backlog".into())
            .spawn(move || {
                while let Ok(cmd) = rx.recv() {
                    match cmd {
                        Command::Push { bus_topic, record } => {
                            if let Err(e) = backlog.push(&bus_topic, &record, now_ms()) {
                                figures.errors.fetch_add(1, Ordering::Relaxed);
                                tracing::error!("federation: backlog write failed, publication lost: {e}");
                            }
                        }
                        Command::Peek { max, reply } => {
                            let entries = backlog.peek(max).unwrap_or_else(|e| {
                                tracing::error!("federation: backlog read failed: {e}");
                                Vec::new()
                            });
                            let _ = reply.send(entries);
                        }
                        Command::Remove(seqs) => {
                            if let Err(e) = backlog.remove(&seqs) {
                                tracing::error!(
                                    "federation: backlog removal failed (entries will be sent again): {e}"
                                );
                            }
                        }
                        Command::Flush(reply) => {
                            let _ = reply.send(());
                        }
                    }
                    update(&backlog, &figures);
                }
            })
            .map_err(|e| format!("the backlog thread for {path} did not start: {e}"))?;
        Ok(Worker { tx })
    }
}

struct State {
    /// Connected, and the backlog is replayed: new messages go straight out.
    live: bool,
    /// Entries pushed but not yet known to be removed; while above 0 the link is not live.
    backlogged: u64,
    /// QoS 1 hand-offs whose packet id is not known yet, in hand-off order: the backlog
    /// seq of a replayed entry, `None` for any other.
    fifo: VecDeque<Option<u64>>,
    /// Packet id → backlog seq of QoS 1 messages sent, until their PUBACK.
    inflight: HashMap<u16, Option<u64>>,
    /// Backlog entries handed to the client and not acknowledged.
    replaying: HashSet<u64>,
    /// Pushes to the backlog so far.
    pushes: u64,
}

/// See the module docs.
pub(crate) struct Outbox {
    client: AsyncClient,
    worker: Worker,
    state: Mutex<State>,
    /// The replayer waits here for acknowledgements.
    acked: Notify,
    pub(crate) figures: Arc<BacklogFigures>,
}

/// A message to send.
pub(crate) struct Message {
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
}

impl Outbox {
    pub(crate) fn open(client: AsyncClient, config: BacklogConfig) -> Result<Outbox, String> {
        let figures = Arc::new(BacklogFigures::default());
        let worker = Worker::start(config, figures.clone())?;
        let backlogged = figures.messages.load(Ordering::Relaxed);
        Ok(Outbox {
            client,
            worker,
            state: Mutex::new(State {
                live: false,
                backlogged,
                fifo: VecDeque::new(),
                inflight: HashMap::new(),
                replaying: HashSet::new(),
                pushes: 0,
            }),
            acked: Notify::new(),
            figures,
        })
    }

    /// Sends `message`, or backlogs it (see the module docs); `bus_topic` picks its
    /// backlog policy.
    pub(crate) fn send(&self, bus_topic: &str, message: Message) {
        let mut st = self.state.lock();
        let stored = if st.live {
            let qos = message.qos;
            match self.client.try_publish_with_properties(
                message.topic,
                qos,
                message.retain,
                message.payload,
                properties(message.properties, None),
            ) {
                Ok(()) => {
                    if qos != QoS::AtMostOnce {
                        st.fifo.push_back(None);
                    }
                    return;
                }
                Err(e) => {
                    tracing::info!(
                        "federation: the MQTT client's queue is full; backlogging until it drains"
                    );
                    st.live = false;
                    // The client hands the refused publish back.
                    match e {
                        ClientError::Request(Request::Publish(p))
                        | ClientError::TryRequest(Request::Publish(p)) => StoredMessage::from(p),
                        _ => return,
                    }
                }
            }
        } else {
            StoredMessage {
                topic: message.topic,
                payload: message.payload,
                properties: message.properties,
                retain: message.retain,
            }
        };
        let record = stored.encode();
        st.backlogged += 1;
        st.pushes += 1;
        let _ = self.worker.tx.send(Command::Push {
            bus_topic: bus_topic.to_owned(),
            record,
        });
    }

    /// Sends a message that is never backlogged (calls, replies, statuses): false if the
    /// client's queue is full.
    pub(crate) fn send_now(&self, message: Message, response: Option<(String, Vec<u8>)>) -> bool {
        let mut st = self.state.lock();
        let props = properties(message.properties, response);
        let ok = self
            .client
            .try_publish_with_properties(message.topic, message.qos, message.retain, message.payload, props)
            .is_ok();
        if ok && message.qos != QoS::AtMostOnce {
            st.fifo.push_back(None);
        }
        ok
    }

    /// Resolves once everything sent before is either handed to the client while live or
    /// durable in the backlog; returns the backlog's length then.
    pub(crate) async fn flush(&self) -> u64 {
        let (tx, rx) = oneshot::channel();
        let _ = self.worker.tx.send(Command::Flush(tx));
        let _ = rx.await;
        self.figures.messages.load(Ordering::Relaxed)
    }

    /// The connection dropped: new messages go to the backlog.
    pub(crate) fn disconnected(&self) {
        self.state.lock().live = false;
        self.acked.notify_waiters();
    }

    /// A new connection: with `session_present` false the broker and the client forgot
    /// what was in flight, so replayed entries not acknowledged are replayed again.
    pub(crate) fn connected(&self, session_present: bool) {
        let mut st = self.state.lock();
        if !session_present {
            st.fifo.clear();
            st.inflight.clear();
            st.replaying.clear();
        }
    }

    /// The client wrote a publish with packet id `pkid`.
    pub(crate) fn published(&self, pkid: u16) {
        if pkid == 0 {
            return;
        }
        let mut st = self.state.lock();
        if st.inflight.contains_key(&pkid) {
            return; // sent again after a reconnection
        }
        if let Some(seq) = st.fifo.pop_front() {
            st.inflight.insert(pkid, seq);
        }
    }

    /// The broker acknowledged packet id `pkid`.
    pub(crate) fn acknowledged(&self, pkid: u16) {
        let mut st = self.state.lock();
        if let Some(Some(seq)) = st.inflight.remove(&pkid) {
            st.replaying.remove(&seq);
            st.backlogged = st.backlogged.saturating_sub(1);
            let _ = self.worker.tx.send(Command::Remove(vec![seq]));
            drop(st);
            self.acked.notify_waiters();
        }
    }

    /// Replays the backlog, then goes live; returns early if the connection drops
    /// (`still_connected` turns false). Runs on the link's thread.
    pub(crate) async fn replay(&self, still_connected: impl Fn() -> bool) {
        loop {
            if !still_connected() {
                return;
            }
            // Go live once nothing is backlogged, under the lock `send` takes.
            let (window, in_flight) = {
                let mut st = self.state.lock();
                if st.backlogged == 0 && st.replaying.is_empty() {
                    st.live = true;
                    tracing::info!("federation: link live");
                    return;
                }
                (
                    REPLAY_WINDOW.saturating_sub(st.replaying.len()),
                    st.replaying.len(),
                )
            };
            if window > 0 {
                let (tx, rx) = oneshot::channel();
                let _ = self.worker.tx.send(Command::Peek {
                    max: window + in_flight,
                    reply: tx,
                });
                let entries = rx.await.unwrap_or_default();
                let mut sent = 0;
                for e in entries {
                    let mut st = self.state.lock();
                    if st.replaying.contains(&e.seq) {
                        continue;
                    }
                    let Some(m) = StoredMessage::decode(&e.record) else {
                        tracing::warn!(
                            seq = e.seq,
                            "federation: a backlog entry does not decode; dropped"
                        );
                        st.backlogged = st.backlogged.saturating_sub(1);
                        let _ = self.worker.tx.send(Command::Remove(vec![e.seq]));
                        continue;
                    };
                    let props = properties(m.properties, None);
                    if self
                        .client
                        .try_publish_with_properties(m.topic, QoS::AtLeastOnce, m.retain, m.payload, props)
                        .is_err()
                    {
                        break; // the client's queue is full: wait for acknowledgements
                    }
                    st.fifo.push_back(Some(e.seq));
                    st.replaying.insert(e.seq);
                    sent += 1;
                }
                if sent > 0 {
                    continue;
                }
                // Nothing to send: the count may be of entries still being written, or
                // of entries the backlog's policies dropped.
                let idle = {
                    let st = self.state.lock();
                    st.replaying.is_empty().then_some(st.pushes)
                };
                if let Some(pushes) = idle {
                    let _ = self.flush().await;
                    let mut st = self.state.lock();
                    if st.replaying.is_empty()
                        && st.pushes == pushes
                        && self.figures.messages.load(Ordering::Relaxed) == 0
                    {
                        st.backlogged = 0;
                        continue;
                    }
                }
            }
            let acked = self.acked.notified();
            tokio::select! {
                () = acked => {}
                () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            }
        }
    }
}
