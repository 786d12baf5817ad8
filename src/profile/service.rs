//! The `platform.profile` service: CPU profiles of the platform and of its agents'
//! processes, over RPC.
//!
//! | method | arguments | answer |
//! |--------|-----------|--------|
//! | `cpu` | `seconds` (1 to [`MAX_SECONDS`](super::MAX_SECONDS)), `agent` (optional identity) | a [`Profile`] |
//!
//! | `agent` | how it is profiled |
//! |---------|--------------------|
//! | none | the platform's own process, by [`profile_process`] on a thread of its own (the handler only awaits it) |
//! | an installed Python agent | `py-spy record` on its process ([`super::python`]), on the blocking pool |
//! | any other connected peer | asked for [`AGENT_METHOD`]: a Rust agent process (`volttron::remote`) built with `profile` answers with its own profile; anything else is [`ProfileError::NotProfilable`] |
//!
//! Every method requires the capability `profile` ([`crate::auth::authz::PROFILE`]) of a
//! caller that is not the platform's own (`vctl` is): the router refuses the others with
//! [`RpcError::Unauthorized`](crate::RpcError::Unauthorized) before the service sees them.
//! Requests are answered one at a time, in order: a second waits for the first (its
//! deadline counts), and a process being profiled refuses another profile with
//! [`ProfileError::Busy`].

use std::path::PathBuf;
use std::time::Duration;

use crate::AgentContext;
use crate::auth::authz::PROFILE_SERVICE;
use crate::core::{RpcError, Value};
use crate::home::VolttronHome;
use crate::home::install::Program;
use crate::platform::service::{BindContext, PlatformService, ServiceContext, ServiceError, ServiceStop};
use crate::services::control::{AgentRecord, IDENTITY as CONTROL};

use super::seconds::checked_value;
use super::{AGENT_METHOD, Profile, ProfileError, profile_process};

/// The service's identity (`platform.profile`).
pub const IDENTITY: &str = PROFILE_SERVICE;
/// The method of [`IDENTITY`] that takes a profile.
pub const METHOD: &str = "cpu";
/// How much longer than the profile itself its callers wait for the answer (symbols are
/// resolved after the sampling).
pub const ANSWER_MARGIN: Duration = Duration::from_secs(30);
const NAME: &str = "profile";

/// The profile service, given to [`PlatformBuilder::service`](crate::PlatformBuilder::service).
#[derive(Debug, Default)]
pub struct ProfileService {
    home: Option<PathBuf>,
}

impl ProfileService {
    /// The service. Nothing samples until a profile is asked for.
    pub fn new() -> Self {
        Self::default()
    }
}

impl PlatformService for ProfileService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn bind(&mut self, ctx: &BindContext<'_>) -> Result<(), ServiceError> {
        // Without a home there are no installed (Python) agents; the rest works.
        self.home = ctx.home().map(ToOwned::to_owned);
        Ok(())
    }

    fn start(self: Box<Self>, ctx: ServiceContext) -> Result<ServiceStop, ServiceError> {
        let agent = ProfileAgent {
            home: self.home.map(VolttronHome::new),
        };
        ctx.spawn_agent(IDENTITY, agent)?;
        // The agent stops with the platform's other agents.
        Ok(Box::new(|| {}))
    }
}

/// The agent behind [`IDENTITY`].
struct ProfileAgent {
    home: Option<VolttronHome>,
}

#[crate::agent]
impl ProfileAgent {
    /// A CPU profile of the platform, or of agent `agent`'s process, over `seconds`.
    #[rpc]
    async fn cpu(
        &mut self,
        ctx: &AgentContext,
        seconds: Value,
        agent: Option<String>,
    ) -> Result<Profile, String> {
        let duration = checked_value(&seconds).map_err(|e| e.to_string())?;
        let profile = match agent {
            None => profile_process("the platform", duration).await.map(|mut p| {
                p.source = "platform".into();
                p
            }),
            Some(agent) => profile_agent(self.home.clone(), ctx, &agent, duration).await,
        };
        profile.map_err(|e| e.to_string())
    }
}

/// The profile of `agent`'s process (see the module docs).
async fn profile_agent(
    home: Option<VolttronHome>,
    ctx: &AgentContext,
    agent: &str,
    duration: Duration,
) -> Result<Profile, ProfileError> {
    if let Some(interpreter) = python_interpreter(home, agent).await {
        let pid = running_pid(ctx, agent).await?;
        let agent = agent.to_owned();
        return tokio::task::spawn_blocking(move || {
            super::python::record_blocking(&agent, pid, &interpreter, duration)
        })
        .await
        .map_err(|e| ProfileError::Sampler(format!("py-spy's thread failed: {e}")))?;
    }
    let not_profilable = |reason: String| ProfileError::NotProfilable {
        agent: agent.to_owned(),
        reason,
    };
    let answer = ctx
        .call(agent, AGENT_METHOD, (duration.as_secs(),))
        .timeout(duration + ANSWER_MARGIN)
        .await;
    match answer {
        Ok(v) => crate::from_value(v).map_err(|e| ProfileError::Reply(e.to_string())),
        Err(RpcError::MethodNotFound { .. }) => Err(not_profilable(format!(
            "it does not answer {AGENT_METHOD}: an agent running inside the platform (its stacks are \
             in the platform's profile: leave out --agent), or an agent process built without the \
             `profile` feature"
        ))),
        Err(RpcError::UnknownPeer { .. }) => Err(not_profilable("no such peer is connected".into())),
        Err(e) => Err(e.into()),
    }
}

/// The interpreter of `agent` if it is an installed Python agent.
async fn python_interpreter(home: Option<VolttronHome>, agent: &str) -> Option<PathBuf> {
    let home = home?;
    let agent = agent.to_owned();
    tokio::task::spawn_blocking(move || {
        let installed = crate::home::install::list(&home).ok()?;
        installed
            .into_iter()
            .find(|a| a.identity.as_str() == agent)
            .and_then(|a| match a.program {
                Program::Python(python) => Some(python.interpreter()),
                _ => None,
            })
    })
    .await
    .ok()
    .flatten()
}

/// The pid of the installed agent `agent`, from the control service.
async fn running_pid(ctx: &AgentContext, agent: &str) -> Result<u32, ProfileError> {
    let records: Vec<AgentRecord> = ctx.call(CONTROL, "status_agents", ()).returning().await?;
    records
        .iter()
        .find(|r| r.identity == agent)
        .and_then(|r| r.pid)
        .ok_or_else(|| ProfileError::NotProfilable {
            agent: agent.to_owned(),
            reason: "its process is not running (vctl start it first)".into(),
        })
}
