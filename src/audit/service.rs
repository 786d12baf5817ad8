//! The `platform.audit` service: the audit over RPC, and on a cron schedule.
//!
//! | method / event | answer / effect |
//! |----------------|-----------------|
//! | `run()` | the [`AuditReport`] of the platform's home, pending keys and `--no-auth` included |
//! | each minute matching `audit-schedule` (UTC, cron syntax of [`CronSchedule`]) | the same report published on [`AUDIT_TOPIC`] (`platform/audit`) |
//!
//! The files are read on the blocking pool, never on the agent's thread. The report shows
//! the platform's weak spots: protect `platform.audit.run` and the topic in `authz.json`
//! when agents you do not trust share the bus.

use std::path::PathBuf;
use std::sync::Arc;

use crate::AgentContext;
use crate::agent::cron::{CronError, CronSchedule};
use crate::audit::{AuditReport, Live};
use crate::auth::Authority;
use crate::core::Value;
use crate::home::VolttronHome;
use crate::home::config::PlatformConfig;
use crate::platform::service::{BindContext, PlatformService, ServiceContext, ServiceError, ServiceStop};

/// The service's identity.
pub const IDENTITY: &str = "platform.audit";
/// The topic of the scheduled reports.
pub const AUDIT_TOPIC: &str = "platform/audit";
/// The config key of the schedule (`audit-schedule = 0 3 * * *`).
pub const SCHEDULE_KEY: &str = "audit-schedule";
const NAME: &str = "audit";

/// A bad audit setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// `audit-schedule` is not a cron expression.
    #[error("{SCHEDULE_KEY} = {expression:?}: {source}")]
    Schedule {
        /// The expression as written.
        expression: String,
        /// Why it was refused.
        source: CronError,
    },
}

/// The audit service, given to [`PlatformBuilder::service`](crate::PlatformBuilder::service).
#[derive(Debug, Default)]
pub struct AuditService {
    schedule: Option<CronSchedule>,
    home: Option<PathBuf>,
    auth: bool,
}

impl AuditService {
    /// A service that answers `run` and publishes nothing by itself.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also publishes the report on [`AUDIT_TOPIC`] at each minute matching `expression`.
    pub fn schedule(mut self, expression: &str) -> Result<Self, AuditError> {
        let schedule = CronSchedule::parse(expression).map_err(|source| AuditError::Schedule {
            expression: expression.to_owned(),
            source,
        })?;
        self.schedule = Some(schedule);
        Ok(self)
    }

    /// The service as the config sets it up (`audit-schedule`, optional).
    pub fn from_platform_config(config: &PlatformConfig) -> Result<Self, AuditError> {
        match config
            .extra
            .get(SCHEDULE_KEY)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        {
            Some(expression) => Self::new().schedule(expression),
            None => Ok(Self::new()),
        }
    }
}

impl PlatformService for AuditService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn bind(&mut self, ctx: &BindContext<'_>) -> Result<(), ServiceError> {
        let home = ctx
            .home()
            .ok_or_else(|| ServiceError::new(NAME, "the audit needs a platform home"))?;
        self.home = Some(home.to_owned());
        self.auth = ctx.auth();
        Ok(())
    }

    fn start(self: Box<Self>, ctx: ServiceContext) -> Result<ServiceStop, ServiceError> {
        let home = self
            .home
            .ok_or_else(|| ServiceError::new(NAME, "started before it was bound"))?;
        let agent = AuditAgent {
            auditor: Auditor {
                home: VolttronHome::new(home),
                auth: self.auth,
                authority: ctx.authority().cloned(),
            },
            schedule: self.schedule,
        };
        ctx.spawn_agent(IDENTITY, agent)?;
        // The agent stops with the platform's other agents.
        Ok(Box::new(|| {}))
    }
}

/// What a run needs; cloned into each run on the blocking pool.
#[derive(Clone)]
struct Auditor {
    home: VolttronHome,
    auth: bool,
    authority: Option<Arc<Authority>>,
}

impl Auditor {
    async fn report(self) -> Result<AuditReport, String> {
        tokio::task::spawn_blocking(move || {
            let live = Live {
                auth: self.auth,
                pending: self.authority.as_ref().map(|a| a.pending()).unwrap_or_default(),
            };
            crate::audit::run_with(&self.home, &live)
        })
        .await
        .map_err(|e| format!("the audit failed: {e}"))
    }
}

/// The agent behind [`IDENTITY`].
struct AuditAgent {
    auditor: Auditor,
    schedule: Option<CronSchedule>,
}

#[crate::agent]
impl AuditAgent {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) {
        let Some(schedule) = &self.schedule else {
            return;
        };
        let scheduled = ctx.schedule_cron(
            schedule.expression(),
            |me: &mut AuditAgent, ctx: &AgentContext| {
                let auditor = me.auditor.clone();
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    match auditor.report().await {
                        Ok(report) => {
                            if let Err(e) = ctx.publish(AUDIT_TOPIC, report.to_value()) {
                                tracing::warn!("audit: the report was not published: {e}");
                            }
                        }
                        Err(e) => tracing::error!("audit: {e}"),
                    }
                });
            },
        );
        if let Err(e) = scheduled {
            tracing::error!("audit: the schedule did not start: {e}");
        }
    }

    /// The audit of the platform's home, now.
    #[rpc]
    async fn run(&mut self) -> Result<Value, String> {
        Ok(self.auditor.clone().report().await?.to_value())
    }
}
