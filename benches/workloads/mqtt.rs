//! MQTT baselines: raw rumqttc v5 clients through a real mosquitto ([`super::mosquitto`]),
//! what the federation's figures over the same broker are compared with. No platform.
//!
//! - [`MqttRig::rtts`]: request/response as MQTT 5 does it. Client `requester` publishes
//!   QoS 0 to `bench/req` with the properties `response_topic = bench/resp/requester` and
//!   `correlation_data = <i>`; client `responder`, subscribed to `bench/req`, answers with
//!   the same correlation data on the response topic from inside its event loop; the
//!   requester waits for the answer before the next request. Every round trip's time.
//! - [`MqttRig::pubsub`]: client `publisher` publishes N payloads of [`PAYLOAD_BYTES`] to
//!   `bench/data` at QoS 0 or 1 as fast as rumqttc takes them (its request channel holds
//!   [`CHANNEL`]); client `subscriber`, subscribed at the same QoS, counts them in its event
//!   loop. The time from the first publish to the last one counted.
//!
//! The broker allows any number of queued messages a client (`max_queued_messages 0`:
//! mosquitto otherwise drops past 1000, QoS 0 included, when the subscriber falls behind),
//! so every payload arrives; a run that counts fewer within [`STALL`] of the last one
//! received panics. Every client sets rumqttc's maximum packet size (its default is 10 KiB)
//! and a keep-alive, and has its event loop polled all the time by a task of its own (rumqttc
//! sends and receives only while it is polled). The clients do not reconnect: the broker
//! does not go away during a run (rumqttc would reconnect on the next poll, without backoff,
//! and would not subscribe again: a connection that ends ends its client here). All of it on the caller's runtime (the perf example: a
//! current-thread one), so the clients' event loops and the timing loop share one thread.

use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::mosquitto::{Broker, BrokerOptions, NotInstalled};

/// Bytes of each payload of [`MqttRig::pubsub`].
pub(crate) const PAYLOAD_BYTES: usize = 100;

/// Requests a client's `AsyncClient` queues for its event loop before `publish` waits.
pub(crate) const CHANNEL: usize = 1024;

/// How long a run may go without a message arriving before it is called lost.
pub(crate) const STALL: Duration = Duration::from_secs(10);

/// The request topic of [`MqttRig::rtts`].
const REQUEST_TOPIC: &str = "bench/req";

/// The response topic the requester gives.
const RESPONSE_TOPIC: &str = "bench/resp/requester";

/// The topic of [`MqttRig::pubsub`].
const DATA_TOPIC: &str = "bench/data";

/// A broker of its own and the clients of the figures.
pub(crate) struct MqttRig {
    broker: Broker,
}

/// A client connected (ConnAck received), its event loop not yet polled.
async fn connect(broker: &Broker, id: &str) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", broker.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(Some(1 << 20));
    options.set_request_channel_capacity(CHANNEL);
    let (client, mut eventloop) = AsyncClient::new(options, CHANNEL);
    match timeout(STALL, eventloop.poll()).await {
        Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {}
        other => panic!(
            "{id}: no ConnAck from {}: {other:?}\n{}",
            broker.url(),
            broker.log()
        ),
    }
    (client, eventloop)
}

/// Polls `eventloop` until its SubAck.
async fn subscribe(client: &AsyncClient, eventloop: &mut EventLoop, filter: &str, qos: QoS) {
    client.subscribe(filter, qos).await.expect("subscribe");
    loop {
        match timeout(STALL, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => return,
            Ok(Ok(_)) => {}
            other => panic!("no SubAck for {filter}: {other:?}"),
        }
    }
}

/// Polls `eventloop` until it ends (its client dropped, or the connection), handing each
/// incoming publish to `on_publish`.
fn drive(mut eventloop: EventLoop, mut on_publish: impl FnMut(Publish) + Send + 'static) {
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::Publish(publish)) = event {
                on_publish(publish);
            }
        }
    });
}

impl MqttRig {
    /// Starts the broker (`Err` when mosquitto is not installed).
    pub(crate) fn start() -> Result<MqttRig, NotInstalled> {
        Ok(MqttRig {
            broker: Broker::start(BrokerOptions::new().max_queued_messages(0))?,
        })
    }

    /// The broker (also the federation figures' broker, [`super::federation`]).
    pub(crate) fn broker(&self) -> &Broker {
        &self.broker
    }

    /// `n` sequential MQTT 5 request/response round trips (see the module docs), in
    /// microseconds, sorted.
    pub(crate) async fn rtts(&self, n: usize) -> Vec<f64> {
        let (responder, mut responder_loop) = connect(&self.broker, "responder").await;
        subscribe(&responder, &mut responder_loop, REQUEST_TOPIC, QoS::AtMostOnce).await;
        let answering = responder.clone();
        drive(responder_loop, move |request| {
            let Some(properties) = request.properties else {
                return;
            };
            let Some(topic) = properties.response_topic else {
                return;
            };
            let reply = PublishProperties {
                correlation_data: properties.correlation_data,
                ..Default::default()
            };
            // From inside the event loop: never wait on its own channel.
            answering
                .try_publish_with_properties(topic, QoS::AtMostOnce, false, request.payload, reply)
                .expect("the responder's channel is full");
        });

        let (requester, mut requester_loop) = connect(&self.broker, "requester").await;
        subscribe(&requester, &mut requester_loop, RESPONSE_TOPIC, QoS::AtMostOnce).await;
        let (tx, mut replies) = mpsc::unbounded_channel();
        drive(requester_loop, move |reply| {
            let _ = tx.send(reply);
        });

        let mut times = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let correlation = i.to_be_bytes().to_vec();
            let properties = PublishProperties {
                response_topic: Some(RESPONSE_TOPIC.to_owned()),
                correlation_data: Some(correlation.clone().into()),
                ..Default::default()
            };
            let t = Instant::now();
            requester
                .publish_with_properties(REQUEST_TOPIC, QoS::AtMostOnce, false, "ping", properties)
                .await
                .expect("publish a request");
            let reply = timeout(STALL, replies.recv())
                .await
                .unwrap_or_else(|_| panic!("request {i}: no reply within {STALL:?}\n{}", self.broker.log()))
                .expect("the requester's connection ended");
            times.push(t.elapsed().as_secs_f64() * 1e6);
            let got = reply.properties.and_then(|p| p.correlation_data);
            assert_eq!(got.as_deref(), Some(&correlation[..]), "the reply to request {i}");
        }
        let _ = requester.disconnect().await;
        let _ = responder.disconnect().await;
        times.sort_by(f64::total_cmp);
        times
    }

    /// `n` payloads from one publisher to one subscriber at `qos` (see the module docs):
    /// messages per second, first publish to the last counted.
    pub(crate) async fn pubsub(&self, n: u64, qos: QoS) -> f64 {
        let (subscriber, mut subscriber_loop) = connect(&self.broker, "subscriber").await;
        subscribe(&subscriber, &mut subscriber_loop, DATA_TOPIC, qos).await;
        let (tx, mut counted) = mpsc::unbounded_channel();
        let mut seen = 0u64;
        drive(subscriber_loop, move |_| {
            seen += 1;
            // Every 1024th and the last: a wake-up of the timing loop per message would
            // cost more than the message.
            if seen.is_multiple_of(1024) || seen == n {
                let _ = tx.send((seen, Instant::now()));
            }
        });

        let (publisher, publisher_loop) = connect(&self.broker, "publisher").await;
        drive(publisher_loop, |_| {});
        let payload = vec![b'x'; PAYLOAD_BYTES];
        let start = Instant::now();
        for _ in 0..n {
            publisher
                .publish(DATA_TOPIC, qos, false, payload.clone())
                .await
                .expect("publish");
        }
        let mut last = (0, start);
        while last.0 < n {
            match timeout(STALL, counted.recv()).await {
                Ok(Some(progress)) => last = progress,
                _ => panic!(
                    "the subscriber counted {} of {n} at QoS {qos:?}, then nothing for {STALL:?}\n{}",
                    last.0,
                    self.broker.log()
                ),
            }
        }
        let _ = publisher.disconnect().await;
        let _ = subscriber.disconnect().await;
        n as f64 / (last.1 - start).as_secs_f64()
    }
}

/// The 50th and 99th percentiles of sorted `times`.
pub(crate) fn p50_p99(times: &[f64]) -> (f64, f64) {
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    (pct(0.50), pct(0.99))
}
