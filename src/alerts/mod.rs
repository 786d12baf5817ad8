//! Alert management (feature `alerts`): the `platform.alerts` service collects every
//! `alerts/` publication and every lost heartbeat, deduplicates them by (origin, alert
//! key), tracks each alert's state, holds flapping ones, and routes notifications by rules
//! kept in the config store to the log, webhooks, e-mail and bus topics. Silences and
//! acknowledgements through `vctl alerts`.
//!
//! ```text
//! alerts/<AgentClass>/<instance>  ─┐                         ┌─ log
//! (alert_key header, Status JSON)  ├─ Observation ─ AlertBook ┼─ webhook  (delivery thread)
//! heartbeat/<identity> lost       ─┘   (dedup, flapping,      ├─ e-mail   (delivery thread)
//!                                       silences, acks)       └─ bus topic
//! ```
//!
//! | part | what | file |
//! |------|------|------|
//! | [`Observation`] | one report read from a publication: origin, key, firing or resolved, [`Severity`], context | `observation.rs` |
//! | [`AlertBook`] | every alert and silence; decides what is notified (the rules are in its docs) | `book.rs` |
//! | [`AlertRules`] | the config store's `config` of `platform.alerts`: sinks, routes, timing; [`RulesError`] | `rules.rs` |
//! | [`Notification`] | what sinks receive | `notification.rs` |
//! | heartbeat watch | a peer whose heartbeat is `misses` periods late raises `<identity>/heartbeat` | `heartbeat_watch.rs` |
//! | delivery | webhooks (ureq) and SMTP (lettre) on a thread of the service's own | `delivery.rs` |
//! | [`AlertsService`] | the platform service and its RPCs (`list`, `ack`, `silence`) | `service.rs` |
//! | `cli` | `vctl alerts list | ack | silence` (feature `cli`) | `cli.rs` |
//!
//! The flapping rule: an alert whose condition changed more than `flapping.changes` times
//! (default 4) within `flapping.window` (default 10 min) is `flapping`. That is notified
//! once; its further changes are counted (`list` shows them) but not notified. Once it has
//! not changed for a whole window, the condition it settled on is notified once. So an
//! agent that flips an alert hundreds of times within a window gives its first report and
//! `changes` changes (5 notifications by default), one `flapping`, then one when it is
//! still: not hundreds.
//!
//! All times are the platform clock's ([`AgentContext::now`](crate::AgentContext::now)):
//! under [`TestPlatform`](crate::testing::TestPlatform) the virtual clock drives
//! heartbeats, flapping windows, silences and repeats.

mod book;
#[cfg(feature = "cli")]
pub mod cli;
mod delivery;
mod heartbeat_watch;
mod notification;
mod observation;
mod rules;
mod service;

pub use book::{Ack, AckError, AlertBook, AlertView, Silence};
pub use heartbeat_watch::HEARTBEAT_KEY;
pub use notification::{AlertStatus, Notification};
pub use observation::{ALERTS_PREFIX, Condition, Observation, Severity, alert_id};
pub use rules::{AlertRules, EmailSink, LOG_SINK, RulesError, Sink, SmtpTls, Timing, WebhookSink};
pub use service::{AlertsService, IDENTITY, RULES_CONFIG};
