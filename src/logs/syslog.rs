//! [`SyslogLayer`]: each record as one RFC 5424 message, for rsyslog, syslog-ng,
//! Logstash's `syslog` input or Filebeat's `syslog` input.
//!
//! ```text
//! <14>1 2026-12-07T03:21:24.123456Z host volttron 4242 volttron::control::output [volttron@32473 agent="meter.1" stream="stderr"] the message
//! ```
//!
//! | RFC 5424 part | value |
//! |---------------|-------|
//! | PRI | facility `daemon` (3) × 8 + severity: error 3, warn 4, info 6, debug and trace 7 |
//! | TIMESTAMP | when the record was formatted, RFC 3339 UTC, microseconds |
//! | HOSTNAME, APP-NAME, PROCID | the machine's host name, `volttron`, the platform's pid |
//! | MSGID | the event's target (its first 32 characters) |
//! | STRUCTURED-DATA | `[volttron@32473 agent=".." <field>=".." ...]`: the agent's identity (see [`super::agent_field`]) and the event's other fields; `-` when there are none |
//! | MSG | the message |
//!
//! `32473` is the enterprise number RFC 5612 reserves for examples: this project has no
//! registered one; match the SD-ID `volttron@32473` in the receiver's rules.
//!
//! Records are formatted on the thread that logs and handed to a sender thread through a
//! bounded queue ([`QUEUE`] records): a slow or absent syslog daemon never blocks an
//! arbiter; when the queue is full, records are dropped and the count of dropped ones is
//! said on stderr. Formatting and sending are fasyslog's (Apache-2.0): its RFC 5424
//! formatter escapes SD-PARAM values and its senders cover UDP, TCP and Unix sockets.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use fasyslog::format::SyslogContext;
use fasyslog::sender::SyslogSender;
use fasyslog::{Facility, SDElement, Severity};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::agent_field::{AGENT_FIELD, identity_of};
use super::{LogError, SyslogAddress};

/// Records queued for the sender thread at most.
pub const QUEUE: usize = 4096;

/// The SD-ID of the structured data element.
pub const SD_ID: &str = "volttron@32473";

/// The APP-NAME.
pub const APP_NAME: &str = "volttron";

enum Message {
    Record(Vec<u8>),
    Flush(SyncSender<()>),
}

/// The layer (see the module docs).
pub struct SyslogLayer {
    queue: SyncSender<Message>,
    context: SyslogContext,
    dropped: Arc<AtomicU64>,
}

/// Flushes the queue to the socket when dropped (hold it until the platform stops).
pub struct SyslogGuard {
    queue: SyncSender<Message>,
}

impl Drop for SyslogGuard {
    fn drop(&mut self) {
        let (done, wait) = mpsc::sync_channel(1);
        if self.queue.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(2));
        }
    }
}

impl fmt::Debug for SyslogGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyslogGuard").finish_non_exhaustive()
    }
}

impl fmt::Debug for SyslogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyslogLayer").finish_non_exhaustive()
    }
}

impl SyslogLayer {
    /// Connects to `address` (a Unix socket must exist; UDP needs no listener) and starts
    /// the sender thread.
    pub fn connect(address: &SyslogAddress) -> Result<(SyslogLayer, SyslogGuard), LogError> {
        let error = |source| LogError::Syslog {
            address: address.to_string(),
            source,
        };
        let sender = match address {
            SyslogAddress::Udp(remote) => {
                let local = if remote.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                fasyslog::sender::udp(local, remote).map(SyslogSender::Udp)
            }
            SyslogAddress::Tcp(remote) => fasyslog::sender::tcp(remote).map(SyslogSender::Tcp),
            SyslogAddress::Unix(path) => fasyslog::sender::unix(path),
        }
        .map_err(error)?;
        let mut context = SyslogContext::new();
        context
            .facility(Facility::DAEMON)
            .appname(APP_NAME)
            .procid(std::process::id().to_string());
        let (queue, records) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::Builder::new()
            .name("volttron-syslog".into())
            .spawn(move || send_all(sender, records, counted))
            .map_err(error)?;
        Ok((
            SyslogLayer {
                queue: queue.clone(),
                context,
                dropped,
            },
            SyslogGuard { queue },
        ))
    }

    /// One record's RFC 5424 message.
    fn format<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>) -> String
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = event.metadata();
        let severity = match *meta.level() {
            Level::ERROR => Severity::ERROR,
            Level::WARN => Severity::WARNING,
            Level::INFO => Severity::INFORMATIONAL,
            _ => Severity::DEBUG,
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut element = SDElement::new(SD_ID).ok();
        let mut params = 0;
        if let (Some(element), Some(identity)) = (element.as_mut(), identity_of(event, ctx)) {
            params += element.add_param(AGENT_FIELD, identity).is_ok() as usize;
        }
        for (name, value) in fields.others {
            if let Some(element) = element.as_mut() {
                params += element.add_param(name, value).is_ok() as usize;
            }
        }
        let elements = element.filter(|_| params > 0).into_iter().collect();
        let msgid: String = meta
            .target()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(32)
            .collect();
        self.context
            .format_rfc5424(severity, Some(msgid), elements, Some(fields.message))
            .to_string()
    }
}

impl<S> Layer<S> for SyslogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let record = self.format(event, &ctx).into_bytes();
        match self.queue.try_send(Message::Record(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

fn send_all(mut sender: SyslogSender, records: Receiver<Message>, dropped: Arc<AtomicU64>) {
    let mut failing = false;
    for message in records {
        match message {
            Message::Record(record) => match sender.send_formatted(&record) {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    // Said once per run of failures (a daemon restarting, a full socket).
                    eprintln!("volttron: cannot send to syslog: {e}");
                    failing = true;
                }
                Err(_) => {}
            },
            Message::Flush(done) => {
                let _ = sender.flush();
                let _ = done.send(());
            }
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            eprintln!("volttron: syslog queue full: {lost} records dropped");
        }
    }
}

/// The event's message and its other fields, as text.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else if field.name() != AGENT_FIELD {
            self.others.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else if field.name() != AGENT_FIELD {
            self.others.push((field.name(), format!("{value:?}")));
        }
    }
}
