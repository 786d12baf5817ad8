//! The real-broker harness (`tests/common/mosquitto.rs`, the file
//! `benches/workloads/mosquitto.rs`): a mosquitto child process that rumqttc v5 clients and
//! `mosquitto_sub`/`mosquitto_pub` reach, whose database survives a restart (and a crash,
//! `kill`, loses what it had not saved), whose ACL
//! confines a user to `volttron/<user>/` and whose password file refuses a wrong password.
//! Each test skips without mosquitto (fails under `CI=true`).

mod common;

use std::time::Duration;

use common::mosquitto::{Broker, BrokerOptions, FEDERATION_ACL};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Packet, PubAck, PubAckReason, Publish, PublishProperties,
};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use tokio::sync::mpsc;
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(30);

/// A rumqttc v5 client whose event loop a task of its own polls (rumqttc sends and
/// receives only while it is polled), passing on every packet it receives.
struct Client {
    client: AsyncClient,
    incoming: mpsc::UnboundedReceiver<Packet>,
    eventloop: tokio::task::JoinHandle<()>,
}

/// rumqttc's options for `id` on `broker`: 1 MiB packets (its default is 10 KiB), a short
/// keep-alive.
fn options(broker: &Broker, id: &str, login: Option<(&str, &str)>) -> MqttOptions {
    let mut options = MqttOptions::new(id, "127.0.0.1", broker.port());
    options.set_keep_alive(Duration::from_secs(5));
    options.set_max_packet_size(Some(1 << 20));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    options
}

/// Connects with `options`: `Ok` with the ConnAck's `session_present` once the broker
/// accepted, `Err` with its refusal.
async fn connect(options: MqttOptions) -> Result<(Client, bool), ConnectionError> {
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    // The first poll connects and returns the ConnAck, or the refusal.
    let session_present = match timeout(DEADLINE, eventloop.poll())
        .await
        .expect("a ConnAck in time")?
    {
        Event::Incoming(Packet::ConnAck(ack)) => ack.session_present,
        other => panic!("expected a ConnAck, got {other:?}"),
    };
    let (tx, incoming) = mpsc::unbounded_channel();
    let eventloop = tokio::spawn(async move {
        // Until the connection ends: these tests do not reconnect.
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(packet) = event
                && tx.send(packet).is_err()
            {
                break;
            }
        }
    });
    Ok((
        Client {
            client,
            incoming,
            eventloop,
        },
        session_present,
    ))
}

impl Client {
    /// The next packet matching `pick`, skipping others; a panic after [`DEADLINE`].
    async fn next<T>(&mut self, what: &str, mut pick: impl FnMut(Packet) -> Option<T>) -> T {
        let wait = async {
            loop {
                let packet = self.incoming.recv().await.expect("the connection ended");
                if let Some(t) = pick(packet) {
                    return t;
                }
            }
        };
        timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}"))
    }

    async fn subscribe(&mut self, filter: &str) {
        self.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        self.next("SubAck", |p| matches!(p, Packet::SubAck(_)).then_some(()))
            .await;
    }

    /// Publishes at QoS 1 and returns the broker's PubAck.
    async fn publish(&mut self, topic: &str, payload: &str, retain: bool) -> PubAck {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_owned())
            .await
            .unwrap();
        self.next("PubAck", |p| match p {
            Packet::PubAck(ack) => Some(ack),
            _ => None,
        })
        .await
    }

    async fn next_publish(&mut self) -> Publish {
        self.next("Publish", |p| match p {
            Packet::Publish(publish) => Some(publish),
            _ => None,
        })
        .await
    }

    /// Disconnects and waits until its event loop has ended.
    async fn disconnect(self) {
        self.client.disconnect().await.unwrap();
        timeout(DEADLINE, self.eventloop)
            .await
            .expect("the event loop ends")
            .unwrap();
    }
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

/// Polls the broker's log until it has `line` (connection messages are on).
fn wait_for_log(broker: &Broker, line: &str) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !broker.log().contains(line) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {line:?} in the broker's log:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn clients_publish_and_subscribe_through_the_broker() {
    let Some(broker) = Broker::require(
        "clients_publish_and_subscribe_through_the_broker",
        BrokerOptions::new(),
    ) else {
        return;
    };
    assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.port()));
    let (mut subscriber, _) = connect(options(&broker, "subscriber", None)).await.unwrap();
    subscriber.subscribe("bench/#").await;
    let cli = broker.mosquitto_sub(&["-t", "bench/#", "-C", "2"]);

    // rumqttc to rumqttc and to mosquitto_sub, with MQTT 5 properties.
    let (publisher, _) = connect(options(&broker, "publisher", None)).await.unwrap();
    let properties = PublishProperties {
        response_topic: Some("bench/reply".into()),
        correlation_data: Some(b"42".to_vec().into()),
        user_properties: vec![("from".into(), "rumqttc".into())],
        ..Default::default()
    };
    publisher
        .client
        .publish_with_properties("bench/a", QoS::AtLeastOnce, false, "hello", properties)
        .await
        .unwrap();
    let got = subscriber.next_publish().await;
    assert_eq!((text(&got.topic), text(&got.payload)), ("bench/a", "hello"));
    let props = got.properties.expect("properties");
    assert_eq!(props.response_topic.as_deref(), Some("bench/reply"));
    assert_eq!(props.correlation_data.as_deref(), Some(&b"42"[..]));
    assert_eq!(
        props.user_properties,
        vec![("from".to_owned(), "rumqttc".to_owned())]
    );

    // mosquitto_pub to rumqttc and to mosquitto_sub.
    broker.mosquitto_pub(&[
        "-t",
        "bench/b",
        "-m",
        "from the cli",
        "-D",
        "publish",
        "user-property",
        "from",
        "cli",
    ]);
    let got = subscriber.next_publish().await;
    assert_eq!(
        (text(&got.topic), text(&got.payload)),
        ("bench/b", "from the cli")
    );

    let seen = tokio::task::spawn_blocking(move || cli.wait()).await.unwrap();
    let seen: Vec<_> = seen
        .iter()
        .map(|m| (m.topic.as_str(), m.payload.as_str()))
        .collect();
    assert_eq!(seen, [("bench/a", "hello"), ("bench/b", "from the cli")]);
    publisher.disconnect().await;
    subscriber.disconnect().await;
}

#[tokio::test]
async fn a_restart_keeps_retained_messages_and_sessions() {
    let Some(mut broker) = Broker::require(
        "a_restart_keeps_retained_messages_and_sessions",
        BrokerOptions::new(),
    ) else {
        return;
    };
    let port = broker.port();
    // A persistent session (no clean start, an hour's expiry) subscribed at QoS 1, gone.
    let persistent = |broker: &Broker| {
        let mut o = options(broker, "persistent", None);
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(3600));
        o
    };
    let (mut away, session_present) = connect(persistent(&broker)).await.unwrap();
    assert!(!session_present, "a new broker has no session for it");
    away.subscribe("queue/#").await;
    away.disconnect().await;
    wait_for_log(&broker, "Client persistent disconnected");

    let (mut publisher, _) = connect(options(&broker, "publisher", None)).await.unwrap();
    let ack = publisher.publish("state/a", "kept", true).await;
    assert_eq!(
        ack.reason,
        PubAckReason::NoMatchingSubscribers,
        "retained, for no one yet"
    );
    let ack = publisher.publish("queue/1", "queued while away", false).await;
    assert_eq!(ack.reason, PubAckReason::Success);
    publisher.disconnect().await;

    broker.restart();
    assert_eq!(broker.port(), port, "the same port");

    // The retained message, to a new client.
    let (mut late, _) = connect(options(&broker, "late", None)).await.unwrap();
    late.client.subscribe("state/#", QoS::AtLeastOnce).await.unwrap();
    let got = late.next_publish().await;
    assert_eq!(
        (text(&got.topic), text(&got.payload), got.retain),
        ("state/a", "kept", true)
    );
    late.disconnect().await;

    // The session and its queued message: delivered without subscribing again (rumqttc
    // itself never resubscribes; the broker kept the subscription).
    let (mut back, session_present) = connect(persistent(&broker)).await.unwrap();
    assert!(session_present, "the restarted broker kept the session");
    let got = back.next_publish().await;
    assert_eq!(
        (text(&got.topic), text(&got.payload)),
        ("queue/1", "queued while away")
    );
    back.disconnect().await;
}

/// Users `site1` and `site2` (no anonymous clients) under [`FEDERATION_ACL`].
fn federation_broker(test: &str) -> Option<Broker> {
    Broker::require(
        test,
        BrokerOptions::new()
            .anonymous(false)
            .user("site1", "site1-password")
            .user("site2", "site2-password")
            .acl(FEDERATION_ACL),
    )
}

#[tokio::test]
async fn the_acl_confines_a_user_to_its_own_topics() {
    let Some(broker) = federation_broker("the_acl_confines_a_user_to_its_own_topics") else {
        return;
    };
    // site2 reads everything under volttron/ (its own and site1's).
    let sub = broker.mosquitto_sub(&[
        "-u",
        "site2",
        "-P",
        "site2-password",
        "-t",
        "volttron/#",
        "-q",
        "1",
        "-C",
        "2",
    ]);
    let (mut site1, _) = connect(options(&broker, "site1", Some(("site1", "site1-password"))))
        .await
        .unwrap();
    // Forged: site1 writing as site2. Refused, and never delivered.
    let forged = site1
        .publish("volttron/site2/pubsub/forged", "from site1", false)
        .await;
    assert_eq!(forged.reason, PubAckReason::NotAuthorized);
    // Then what site1 may write, and site2 its own: these arrive, after where the forged
    // one would have been (one connection keeps its order).
    let genuine = site1
        .publish("volttron/site1/pubsub/genuine", "from site1", false)
        .await;
    assert_eq!(genuine.reason, PubAckReason::Success);
    broker.mosquitto_pub(&[
        "-u",
        "site2",
        "-P",
        "site2-password",
        "-q",
        "1",
        "-t",
        "volttron/site2/pubsub/own",
        "-m",
        "from site2",
    ]);
    let seen = tokio::task::spawn_blocking(move || sub.wait()).await.unwrap();
    let seen: Vec<_> = seen
        .iter()
        .map(|m| (m.topic.as_str(), m.payload.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("volttron/site1/pubsub/genuine", "from site1"),
            ("volttron/site2/pubsub/own", "from site2")
        ]
    );
    // Outside volttron/, nothing at all.
    let outside = site1.publish("other/x", "from site1", false).await;
    assert_eq!(outside.reason, PubAckReason::NotAuthorized);
    site1.disconnect().await;
}

#[tokio::test]
async fn the_password_file_refuses_a_wrong_password() {
    let Some(broker) = federation_broker("the_password_file_refuses_a_wrong_password") else {
        return;
    };
    let refused = |r: Result<(Client, bool), ConnectionError>| match r {
        Err(ConnectionError::ConnectionRefused(code)) => code,
        Err(e) => panic!("expected a refused ConnAck, got {e}"),
        Ok(_) => panic!("expected a refused ConnAck, the broker accepted"),
    };
    // mosquitto 2.0.11 answers a wrong password with `NotAuthorized` (0x87), not
    // `BadUserNamePassword` (0x86); either is a refusal of the credentials.
    let credentials_refused = |code: ConnectReturnCode| {
        assert!(
            matches!(
                code,
                ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword
            ),
            "{code:?}"
        );
    };
    let wrong = connect(options(&broker, "site1", Some(("site1", "not-the-password")))).await;
    credentials_refused(refused(wrong));
    let other_users = connect(options(&broker, "site1", Some(("site1", "site2-password")))).await;
    credentials_refused(refused(other_users));
    let unknown = connect(options(&broker, "site3", Some(("site3", "site1-password")))).await;
    credentials_refused(refused(unknown));
    let anonymous = connect(options(&broker, "anonymous", None)).await;
    credentials_refused(refused(anonymous));
    // The right one is accepted.
    let (site1, _) = connect(options(&broker, "site1", Some(("site1", "site1-password"))))
        .await
        .expect("the right password");
    site1.disconnect().await;
}

#[tokio::test]
async fn a_killed_broker_starts_again_on_its_port_without_what_it_had_not_saved() {
    let Some(mut broker) = Broker::require(
        "a_killed_broker_starts_again_on_its_port_without_what_it_had_not_saved",
        BrokerOptions::new(),
    ) else {
        return;
    };
    let (mut publisher, _) = connect(options(&broker, "publisher", None)).await.unwrap();
    publisher.publish("state/lost", "not saved", true).await;
    // A crash: SIGKILL, no database written (mosquitto autosaves every 30 minutes).
    broker.kill();
    assert!(!broker.is_running());
    // The client's connection ends with it (rumqttc would reconnect on a further poll).
    timeout(DEADLINE, publisher.eventloop)
        .await
        .expect("the event loop ends")
        .unwrap();

    broker.start_again();
    assert!(broker.is_running());
    let (mut late, _) = connect(options(&broker, "late", None)).await.unwrap();
    late.subscribe("state/#").await;
    // Published after the subscription, so it arrives; the lost one, retained before the
    // crash, would have come first.
    let (mut publisher, _) = connect(options(&broker, "publisher", None)).await.unwrap();
    publisher.publish("state/after", "after the crash", true).await;
    let got = late.next_publish().await;
    assert_eq!(
        (text(&got.topic), text(&got.payload)),
        ("state/after", "after the crash")
    );
    publisher.disconnect().await;
    late.disconnect().await;
}
