//! The `platform.alerts` service: an agent that reads every `alerts/` publication and
//! every heartbeat, keeps the [`AlertBook`], and sends what it decides to the sinks its
//! rules route to.
//!
//! | method / event | answer / effect |
//! |----------------|-----------------|
//! | a publication under `alerts/` | an [`Observation`]; its notification, if any, routed |
//! | a publication under `heartbeat/` | the peer is watched; a lost heartbeat it ends resolves |
//! | every 5 s of the platform clock | heartbeats checked, silences ended, flapping settled, repeats |
//! | configuration `config` of `platform.alerts` (NEW, UPDATE) | the [`AlertRules`]; refused rules are logged, shown by `list`, and the rules in force kept |
//! | the same, DELETE | the default rules (everything to the log) |
//! | `list()` | `{"alerts": [AlertView], "silences": [Silence], "rules": {"routes", "sinks", "error"}}` |
//! | `ack(id)` | acknowledges a firing alert (the caller is recorded) |
//! | `silence(pattern, seconds)` | silences the ids matching the glob for that long; returns the [`Silence`] |
//!
//! Log and topic sinks are served on the agent's own turn; webhooks and e-mail on the
//! service's delivery thread. Any peer may call `ack` and `silence`: protect them in
//! `authz.json` where agents you do not trust share the bus.

use std::sync::Arc;
use std::time::Duration;

use crate::AgentContext;
use crate::agent::ConfigUpdate;
use crate::agent::config::ConfigAction;
use crate::alerts::book::{AckError, AlertBook, Silence};
use crate::alerts::delivery::Delivery;
use crate::alerts::heartbeat_watch::HeartbeatWatch;
use crate::alerts::notification::{AlertStatus, Notification};
use crate::alerts::observation::Observation;
use crate::alerts::rules::{AlertRules, Sink};
use crate::core::{Caller, Publication, Value};
use crate::platform::service::{PlatformService, ServiceContext, ServiceError, ServiceStop};

/// The service's identity.
pub const IDENTITY: &str = "platform.alerts";
/// The configuration (of [`IDENTITY`]) that holds the rules.
pub const RULES_CONFIG: &str = "config";
const NAME: &str = "alerts";

/// The alert service, given to [`PlatformBuilder::service`](crate::PlatformBuilder::service).
/// Its rules come from the config store (the platform's services must run, with a home);
/// without them it routes everything to the log.
#[derive(Debug, Default)]
pub struct AlertsService {
    rules: Option<AlertRules>,
}

impl AlertsService {
    /// A service with the default rules until the config store gives it others.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts with these rules (the config store's, when it has some, replace them).
    pub fn rules(mut self, rules: AlertRules) -> Self {
        self.rules = Some(rules);
        self
    }
}

impl PlatformService for AlertsService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(self: Box<Self>, ctx: ServiceContext) -> Result<ServiceStop, ServiceError> {
        let delivery = Delivery::start()
            .map_err(|e| ServiceError::new(NAME, format!("the delivery thread did not start: {e}")))?;
        let agent = AlertsAgent {
            book: AlertBook::new(ctx.platform().instance_name()),
            heartbeats: HeartbeatWatch::default(),
            rules: self.rules.unwrap_or_default(),
            rules_error: None,
            delivery,
        };
        ctx.spawn_agent(IDENTITY, agent)?;
        // The agent stops with the platform's other agents; its delivery thread with it.
        Ok(Box::new(|| {}))
    }
}

/// The agent behind [`IDENTITY`].
struct AlertsAgent {
    book: AlertBook,
    heartbeats: HeartbeatWatch,
    rules: AlertRules,
    rules_error: Option<String>,
    delivery: Delivery,
}

impl AlertsAgent {
    fn observe(&mut self, ctx: &AgentContext, o: Observation) {
        if let Some(n) = self.book.observe(o, ctx.now(), &self.rules.timing) {
            self.dispatch(ctx, n);
        }
    }

    fn dispatch(&self, ctx: &AgentContext, n: Notification) {
        let n = Arc::new(n);
        for (name, sink) in self.rules.route(n.severity, &n.origin, &n.key, &n.topic) {
            match &*sink {
                Sink::Log => match n.status {
                    AlertStatus::Resolved => tracing::info!("alert {}", n.summary()),
                    _ => tracing::warn!("alert {}", n.summary()),
                },
                Sink::Topic(topic) => {
                    let message = Value::from(serde_json::to_value(&*n).unwrap_or_default());
                    if let Err(e) = ctx.publish(topic.clone(), message) {
                        tracing::warn!("alerts: sink {name:?} did not take {}: {e}", n.id);
                    }
                }
                Sink::Webhook(_) | Sink::Email(_) => self.delivery.queue(&name, sink.clone(), n.clone()),
            }
        }
    }
}

#[crate::agent]
impl AlertsAgent {
    /// Every alert.
    #[subscribe("alerts/")]
    fn alert(&mut self, ctx: &AgentContext, msg: &Publication) {
        if msg.sender.as_str() == IDENTITY {
            return;
        }
        if let Some(o) = Observation::from_publication(msg) {
            self.observe(ctx, o);
        }
    }

    /// Every heartbeat.
    #[subscribe("heartbeat/")]
    fn heartbeat(&mut self, ctx: &AgentContext, msg: &Publication) {
        if msg.topic.as_str() == format!("heartbeat/{IDENTITY}") {
            return;
        }
        if let Some(o) = self.heartbeats.beat(msg, ctx.now()) {
            self.observe(ctx, o);
        }
    }

    /// Heartbeats, silences, flapping, repeats.
    #[periodic(secs = 5)]
    fn tick(&mut self, ctx: &AgentContext) {
        let now = ctx.now();
        for o in self.heartbeats.check(now, self.rules.timing.heartbeat_misses) {
            self.observe(ctx, o);
        }
        for n in self.book.tick(now, &self.rules.timing) {
            self.dispatch(ctx, n);
        }
    }

    /// The routing rules, from the config store.
    #[on_config("config")]
    fn configure(&mut self, update: &ConfigUpdate) {
        if update.action == ConfigAction::Delete {
            self.rules = AlertRules::default();
            self.rules_error = None;
            return;
        }
        match AlertRules::from_value(&update.contents) {
            Ok(rules) => {
                tracing::info!(
                    "alerts: {} route(s) to sinks {}",
                    rules.route_count(),
                    rules.sink_names().join(", ")
                );
                self.rules = rules;
                self.rules_error = None;
            }
            Err(e) => {
                tracing::error!("alerts: {e}; the rules in force are kept");
                self.rules_error = Some(e.to_string());
            }
        }
    }

    /// Every alert, the silences in force, and the rules' state.
    #[rpc]
    fn list(&mut self, ctx: &AgentContext) -> Value {
        let now = ctx.now();
        Value::from(serde_json::json!({
            "alerts": self.book.list(now),
            "silences": self.book.silences(now),
            "rules": {
                "routes": self.rules.route_count(),
                "sinks": self.rules.sink_names(),
                "error": self.rules_error,
            },
        }))
    }

    /// Acknowledges the alert `id` (`origin/key`).
    #[rpc]
    fn ack(&mut self, ctx: &AgentContext, caller: Caller, id: String) -> Result<(), AckError> {
        self.book.ack(&id, caller.identity().as_str(), ctx.now())
    }

    /// Silences alerts whose id matches `pattern` for `seconds`.
    #[rpc]
    fn silence(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        pattern: String,
        seconds: f64,
    ) -> Result<Silence, String> {
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err(format!(
                "a silence lasts a positive number of seconds, not {seconds}"
            ));
        }
        let until = ctx.now()
            + chrono::Duration::from_std(Duration::from_secs_f64(seconds)).map_err(|e| e.to_string())?;
        Ok(self.book.silence(&pattern, until, caller.identity().as_str()))
    }
}
