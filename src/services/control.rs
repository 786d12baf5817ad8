//! The control service (`control`): installed agents as child processes. `vctl` talks to
//! it over the bridge.
//!
//! | RPC | does |
//! |---|---|
//! | `list_agents()` | the installed agents: identity, uuid, name, tag, priority, autostart |
//! | `status_agents()` | the same plus `reservation` (its contract's share of the budget), `usage` (CPU and RSS sampled from `/proc`), `pid`, `state` (`running`, `restarting`, `gave up`, `stopped`), `last_exit`, and `health` `BAD` for an agent given up on |
//! | `install_agent(source, identity, name, tag, config, priority, enable, force, exereqs, python)` | installs an executable (see [`crate::home::install`]), or with `python` (`{env, entry_point, distribution, version}`) a Python agent whose package is in that environment already ([`crate::home::python`]); refuses a resource contract the machine cannot honour; creates its key pair; loads `config` into its store (not a Python agent's: VOLTTRON 11 only copies it); returns the identity |
//! | `start_agent(identity)` / `stop_agent(identity)` / `restart_agent(identity)` | launch (after admitting its `exereqs.json` contract against the budget: by default 80% of the machine's BogoMIPS, 50% of its memory, minus what running agents reserved); SIGINT, grace, SIGTERM, grace, SIGKILL to its process group |
//! | `remove_agent(identity)` | stops it, deletes its directory, key pair, configuration store and authorization entries |
//! | `enable_agent(identity, priority)` / `disable_agent(identity)` / `tag_agent(identity, tag)` | autostart and tag |
//! | `agent_resources(identity)` | its reservation and latest sampled use (`AgentContext::resource_usage`, `Platform::agent_resources`) |
//! | `start_enabled()` | launches the enabled agents in priority order (lowest number first) |
//! | `shutdown_platform()` | asks the platform process to stop (SIGTERM to itself) |
//!
//! Under pressure (MemAvailable below a threshold, or the agents' CPU use above the
//! budget), agents over their contract are warned (an alert), then terminated, worst
//! offender first, one per monitor round; a terminated agent shows `terminated` with the
//! reason and health BAD, and is not restarted until started again.
//!
//! Where cgroups are writable (v2, or v1), an agent with a contract runs in its own group
//! (CPU shares in proportion to its BogoMIPS, its memory soft limit), joined by the
//! trampoline before exec; elsewhere only `/proc` measurement and termination apply. Which
//! one is logged at start.
//!
//! Agents are launched through the `volttron-sandbox` trampoline (found beside the running
//! binary, or at `$VOLTTRON_SANDBOX`): no capabilities, an empty bounding set,
//! no-new-privs, SIGTERM when the platform dies. In agent isolation mode
//! ([`crate::control::isolation`]) each runs as a uid of its own, handed its files before
//! each explicit start; with only `data/` writable, Landlock confines its writes there.
//! Either setting refuses to launch without the trampoline rather than run unconfined.
//!
//! An agent with a cgroup is measured through it (which also counts processes that left
//! its process tree); the others through `/proc`. Pressure is judged from the figures of
//! the processes running now only.
//!
//! File work (listing agents, reading a contract or a key pair, installing) runs on the
//! blocking pool, never on the services' thread: an explicit start reads what launching
//! needs once, and the agent's crash restarts reuse it.
//!
//! A crashed agent (non-zero exit or a signal) is restarted with exponential backoff on
//! the platform clock, at most `limit` times within `period` ([`RestartPolicy`]); past
//! that it stays down, its state is `gave up`, and one alert is sent
//! (`alerts/ControlService/control`), until someone starts it again. A clean exit is not
//! restarted. Agents are launched with the environment `volttron::remote::run` reads, in
//! their own process group, with their directory as working directory; their output goes
//! to the platform log tagged with their identity.
//!
//! Python agents (VOLTTRON 11's, unchanged) are launched as VOLTTRON 11's `aip.py` does:
//! `[<env>/bin/python, "-c", "from <module> import <function>; <function>()"]`, stdin
//! `/dev/null`, their directory as working directory, the platform's environment plus
//! `VOLTTRON_HOME`, `AGENT_CONFIG` (if they have a `config`), `AGENT_TAG` (if tagged),
//! `AGENT_UUID`, `_LAUNCHED_BY_PLATFORM=1`, `AGENT_VIP_IDENTITY` and `AGENT_CREDENTIALS`
//! (inline JSON `{"identity","publickey","secretkey","domain":"","address":""}`), and
//! none of the bridge's `VOLTTRON_*` variables. Everything else is as for any agent: the
//! trampoline, contracts, `/proc` sampling, crash restarts, stop escalation. Their JSON
//! log records on stderr become `tracing` events at the records' levels
//! ([`crate::control::pylog`]).
//!
//! Every end of an agent process passes through `forget_process`: a stop or restart
//! (`stop_process`, once the escalation has reaped it) and an exit on its own, a crash or
//! a termination (`agent_exited`, when the watcher's report arrives).

// Without the `control` feature the service is never started (its records and constants
// stay, for `vctl`'s and `Platform::agent_resources`' sake).
#![cfg_attr(not(feature = "control"), allow(dead_code))]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::auth::keys::{CredentialStore, KeyPair};
use crate::control::isolation::{self, UidRange};
use crate::control::process::{AgentProcess, Exit, ExitReport, LaunchSpec};
use crate::control::restart::{CrashMonitor, Decision, MonitorState, RestartPolicy};
use crate::core::{Status, Value};
use crate::home::VolttronHome;
use crate::home::install::{self, InstallSpec, InstalledAgent, Program};
use crate::prelude::*;
use crate::resources::admission::{Admission, BudgetPolicy, Reservation};
use crate::resources::cgroup::{AgentCgroup, CGROUP_ROOT, CgroupLimits, CgroupSupport, platform_group_name};
use crate::resources::contract::{Contract, Machine};
use crate::resources::enforcement::{self, Action, Enforcer, PressurePolicy, cpu_demand_mips};
use crate::resources::monitor::{
    AgentUsage, Monitor, MonitorHandle, MonitoredAgent, ProcessKey, Sampler, bogomips_per_core,
};
use crate::resources::sandbox::{self, SandboxOptions};

/// The service's identity.
pub const IDENTITY: &str = "control";

/// The identity `vctl` connects under (VOLTTRON's).
pub const CONTROL_CONNECTION: &str = "control.connection";

/// Whether `identity` is `vctl`'s: [`CONTROL_CONNECTION`], or `control.connection.<pid>`,
/// which a second `vctl` takes while the first holds the name (`vctl subscribe` running),
/// with the same key.
pub fn is_control_connection(identity: &str) -> bool {
    match identity.strip_prefix(CONTROL_CONNECTION) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('.')
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

/// An installed agent as `list_agents` and `status_agents` report it (the process fields
/// only from `status_agents`; absent fields are left out of the record).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgentRecord {
    /// The VIP identity.
    pub identity: String,
    /// The install's UUID.
    pub uuid: String,
    /// Name and version.
    pub name: String,
    /// The tag.
    pub tag: Option<String>,
    /// The autostart priority.
    pub priority: Option<u32>,
    /// Whether it starts with the platform.
    pub autostart: bool,
    /// In agent isolation mode, the uid (and gid) it runs as, once allocated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u32>,
    /// The pid, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Where its process stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ProcessState>,
    /// How its last process ended (`exit code 0`, `signal 9 (SIGKILL)`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    /// `BAD` for an agent given up on or terminated, whatever its last heartbeat said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Why the enforcer terminated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its contract's share of the budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Reservation>,
    /// Its latest CPU and memory use, sampled from `/proc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<AgentUsage>,
}

impl AgentRecord {
    /// Where its process stands, as `vctl status` shows it: `running [pid]`, `gave up
    /// (how it last ended)`, `terminated: why`, or how it last ended.
    pub fn status_text(&self) -> String {
        match (self.pid, self.state) {
            (Some(pid), _) => format!("running [{pid}]"),
            (None, Some(ProcessState::GaveUp)) => {
                format!("gave up ({})", self.last_exit.clone().unwrap_or_default())
            }
            (None, Some(ProcessState::Terminated)) => {
                format!("terminated: {}", self.reason.clone().unwrap_or_default())
            }
            (None, _) => self.last_exit.clone().unwrap_or_default(),
        }
    }

    /// CPU (% of a core and MIPS), RSS, where they come from (`procfs` or `cgroup`) and
    /// the reservation, as `vctl status --resources` shows them (empty when not known).
    pub fn resource_cells(&self) -> [String; 4] {
        let usage = self.usage.as_ref().filter(|u| !u.gone);
        let cpu = usage
            .and_then(|u| u.cpu_percent_of_core.map(|p| (p, u.cpu_mips)))
            .map(|(p, mips)| match mips {
                Some(m) => format!("{p:.1}% ({m:.0} MIPS)"),
                None => format!("{p:.1}%"),
            })
            .unwrap_or_default();
        let rss = usage
            .map(|u| format!("{:.1} MB", u.rss_bytes as f64 / 1e6))
            .unwrap_or_default();
        let from = usage
            .map(|u| match u.accounting {
                crate::resources::monitor::Accounting::Procfs => "procfs",
                crate::resources::monitor::Accounting::Cgroup => "cgroup",
            })
            .unwrap_or_default()
            .to_owned();
        let reserved = self
            .reservation
            .as_ref()
            .map(|v| format!("{:.0} MIPS, {:.1} MB", v.cpu_mips, v.memory_bytes as f64 / 1e6))
            .unwrap_or_default();
        [cpu, rss, from, reserved]
    }
}

impl crate::home::select::Selectable for AgentRecord {
    fn identity(&self) -> &str {
        &self.identity
    }
    fn uuid(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(&self.uuid)
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
}

/// Where an installed agent's process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ProcessState {
    /// Its process runs.
    #[serde(rename = "running")]
    Running,
    /// It crashed; a restart is due after a backoff.
    #[serde(rename = "restarting")]
    Restarting,
    /// It crashed past the restart limit: down until started again.
    #[serde(rename = "gave up")]
    GaveUp,
    /// The enforcer terminated it: down until started again.
    #[serde(rename = "terminated")]
    Terminated,
    /// Not running (never started, stopped, or exited cleanly).
    #[serde(rename = "stopped")]
    Stopped,
}

/// An agent's reservation and latest use (`agent_resources`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgentResources {
    /// Its contract's share of the budget.
    pub reservation: Option<Reservation>,
    /// Its latest CPU and memory use.
    pub usage: Option<AgentUsage>,
}

/// How the control service launches agents.
#[derive(Debug, Clone)]
pub(crate) struct ControlConfig {
    pub(crate) home: VolttronHome,
    /// The address agents connect to (`ipc://.../vip.socket`).
    pub(crate) address: String,
    /// The platform's public key, for `VOLTTRON_SERVERKEY`.
    pub(crate) serverkey: Option<String>,
    pub(crate) restart: RestartPolicy,
    /// Each stop step's grace period.
    pub(crate) grace: Duration,
    /// How often agent processes are sampled from `/proc`.
    pub(crate) monitor_interval: Duration,
    /// MemAvailable below which the machine is under memory pressure (default: 10 % of
    /// MemTotal).
    pub(crate) memory_pressure_below: Option<u64>,
    /// The shares of the machine contracts may reserve.
    pub(crate) budget: BudgetPolicy,
    /// An agent's cgroup memory cap, as a multiple of its contract's soft limit.
    pub(crate) memory_hard_cap: Option<f64>,
    /// Agent isolation mode: each agent runs as a uid of this range.
    pub(crate) isolation: Option<UidRange>,
    /// Agents may write only beneath their `data/`.
    pub(crate) data_only_writable: bool,
}

/// What launching an agent needs from disk, read on the blocking pool at its explicit
/// start ([`ControlService::prepare`]) and kept for its crash restarts: its installation,
/// its contract and its key pair.
#[derive(Clone)]
struct Launch {
    agent: InstalledAgent,
    contract: Option<Contract>,
    keys: KeyPair,
}

struct Running {
    process: Arc<AgentProcess>,
    /// Its own cgroup, if the machine allows (removed when this is dropped).
    cgroup: Option<AgentCgroup>,
}

/// The control service agent. See the module docs.
pub(crate) struct ControlService {
    config: ControlConfig,
    /// The routing table, told of every agent process that ends (set at start).
    router: Option<std::sync::Arc<crate::platform::router::Router>>,
    running: HashMap<String, Running>,
    /// What the last explicit start of each agent read from disk (crash restarts reuse it).
    launches: HashMap<String, Launch>,
    monitors: HashMap<String, CrashMonitor>,
    last_exit: HashMap<String, Exit>,
    exits: mpsc::UnboundedSender<ExitReport>,
    exits_rx: Option<mpsc::UnboundedReceiver<ExitReport>>,
    /// The machine's facts (hard requirements, totals), probed at start.
    machine: Option<Machine>,
    /// What running agents have reserved of the budget.
    admission: Option<Admission>,
    /// The `/proc` sampler's thread.
    monitor: Option<MonitorHandle>,
    /// Acts on agents over their contract while the machine is under pressure.
    enforcer: Option<Enforcer>,
    /// Agents terminated for exceeding their contract, with the reason (until started
    /// again).
    terminated: HashMap<String, String>,
    /// Whether agents get their own cgroups (detected at start).
    cgroups: Option<CgroupSupport>,
    /// Enforcement actions taken so far.
    actions: EnforcementCounts,
}

/// Enforcement actions taken since the platform started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnforcementCounts {
    /// Warnings to agents over their contract under pressure.
    pub warnings: u64,
    /// Agents terminated for it.
    pub terminations: u64,
}

/// The admission budget and what running agents reserve of it (`resource_budget`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResourceBudget {
    /// What agents' contracts may reserve in all.
    pub budget: crate::resources::admission::Budget,
    /// What the running agents' contracts reserve.
    pub reserved: Reservation,
    /// Enforcement actions so far.
    pub actions: EnforcementCounts,
}

impl ControlService {
    pub(crate) fn new(config: ControlConfig) -> Self {
        let (exits, exits_rx) = mpsc::unbounded_channel();
        ControlService {
            config,
            router: None,
            running: HashMap::new(),
            launches: HashMap::new(),
            monitors: HashMap::new(),
            last_exit: HashMap::new(),
            exits,
            exits_rx: Some(exits_rx),
            machine: None,
            admission: None,
            monitor: None,
            enforcer: None,
            actions: EnforcementCounts::default(),
            terminated: HashMap::new(),
            cgroups: None,
        }
    }

    /// A cgroup for an agent with a reservation, where cgroups are writable: CPU shares
    /// in proportion to its BogoMIPS, its memory soft limit.
    fn agent_cgroup(&self, identity: &str) -> Option<AgentCgroup> {
        let support = self.cgroups.as_ref().filter(|c| c.is_available())?;
        let reservation = self.admission.as_ref()?.reserved(identity)?;
        let machine = self.machine.as_ref()?;
        let limits = CgroupLimits {
            cpu_mips: (reservation.cpu_mips > 0.0).then_some(reservation.cpu_mips),
            total_mips: machine.bogomips_total,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_soft_bytes: (reservation.memory_bytes > 0).then_some(reservation.memory_bytes),
            memory_max_bytes: self
                .config
                .memory_hard_cap
                .filter(|_| reservation.memory_bytes > 0)
                .map(|factor| (reservation.memory_bytes as f64 * factor) as u64),
        };
        match AgentCgroup::create(support, identity, &limits) {
            Ok(group) => Some(group),
            Err(e) => {
                tracing::warn!(agent = identity, "no cgroup for the agent: {e}");
                None
            }
        }
    }

    /// One enforcement round: under pressure, warn then terminate agents over their
    /// contract, worst first (see [`crate::resources::enforcement`]).
    fn enforce(&mut self, ctx: &AgentContext) {
        let (Some(enforcer), Some(admission), Some(monitor)) =
            (&mut self.enforcer, &self.admission, &self.monitor)
        else {
            return;
        };
        // Only figures of the processes running now: the monitor's latest round may still
        // hold an agent just terminated or stopped, whose CPU would keep the pressure up
        // and get the next agent terminated for nothing.
        let latest: HashMap<String, AgentUsage> = monitor
            .latest()
            .into_iter()
            .filter(|(id, usage)| {
                self.running
                    .get(id)
                    .is_some_and(|r| r.process.process_key() == Some(usage.key))
            })
            .collect();
        let agents: Vec<_> = self
            .running
            .keys()
            .filter_map(|id| Some((id.clone(), admission.reserved(id)?, latest.get(id)?.clone())))
            .collect();
        let demand = cpu_demand_mips(latest.values());
        // Read by the sampling thread: no file read here.
        let available = monitor.mem_available_bytes().unwrap_or(u64::MAX);
        let pressure =
            enforcement::pressure(&enforcer.policy(), available, demand, admission.budget().cpu_mips);
        for action in enforcer.round(pressure, &agents) {
            match action {
                Action::Warn { identity, reason } => {
                    self.actions.warnings += 1;
                    tracing::warn!(agent = identity.as_str(), "{reason}");
                    let _ = ctx.send_alert(
                        &format!("agent_over_contract.{identity}"),
                        Status::Bad,
                        Some(&reason),
                    );
                }
                Action::Terminate { identity, reason } => {
                    self.actions.terminations += 1;
                    tracing::error!(agent = identity.as_str(), "terminating: {reason}");
                    let _ = ctx.send_alert(
                        &format!("agent_terminated.{identity}"),
                        Status::Bad,
                        Some(&reason),
                    );
                    self.terminate(identity, reason);
                }
            }
        }
    }

    /// Books `identity`'s contract against the budget, if it fits.
    fn admit(&mut self, identity: &str, contract: &Contract) -> Result<(), String> {
        let (Some(machine), Some(admission)) = (&self.machine, &mut self.admission) else {
            return Ok(());
        };
        admission
            .admit(identity, contract, machine)
            .map(|_| ())
            .map_err(|refusal| refusal.for_agent(identity).to_string())
    }

    /// Tells the sampler which processes are the agents'.
    fn update_monitor(&self) {
        if let Some(monitor) = &self.monitor {
            // Measured through its cgroup where it has one (which also counts processes
            // that left its process tree), else through /proc.
            let agents = self
                .running
                .iter()
                .filter_map(|(id, r)| {
                    Some(MonitoredAgent {
                        identity: id.clone(),
                        key: ProcessKey::of(r.process.pid())?,
                        cgroup: r.cgroup.as_ref().map(AgentCgroup::accounting),
                    })
                })
                .collect();
            monitor.set_agents(agents);
        }
    }

    /// The agent process is gone (reaped): its reservation is free again. Every end of
    /// an agent process comes here, on the services' thread: a requested stop from
    /// `stop_process`, any other exit from `agent_exited`.
    fn forget_process(&mut self, identity: &str) {
        self.running.remove(identity);
        // A transport that cannot see a connection end at once (VIP over ZeroMQ: a
        // Python agent sends nothing on SIGINT or SIGKILL) drops the peer now.
        if let Some(router) = &self.router {
            router.process_exited(identity);
        }
        if let Some(admission) = &mut self.admission {
            admission.release(identity);
        }
        self.update_monitor();
    }

    /// The installed agent `identity` (read on the blocking pool).
    async fn installed(&self, identity: &str) -> Result<InstalledAgent, String> {
        let (home, id) = (self.config.home.clone(), identity.to_owned());
        blocking(move || install::find(&home, &id).map_err(|e| e.to_string())).await
    }

    /// The installed agents (read on the blocking pool).
    async fn installed_agents(&self) -> Result<Vec<InstalledAgent>, String> {
        let home = self.config.home.clone();
        blocking(move || install::list(&home).map_err(|e| e.to_string())).await
    }

    fn monitor(&mut self, identity: &str) -> &mut CrashMonitor {
        let policy = self.config.restart;
        self.monitors
            .entry(identity.to_owned())
            .or_insert_with(|| CrashMonitor::new(policy))
    }

    /// Launches an agent (not counting as an explicit start: the crash monitor's history
    /// is kept). Reads nothing from disk: `launch` was.
    fn launch(&mut self, launch: &Launch) -> Result<u32, String> {
        let identity = launch.agent.identity.as_str();
        if let Some(r) = self.running.get(identity) {
            return Err(format!(
                "agent '{identity}' is already running (pid {})",
                r.process.pid()
            ));
        }
        if let Some(contract) = &launch.contract {
            self.admit(identity, contract)?;
        }
        let launched = self.spawn_process(launch);
        match &launched {
            Ok(_) => self.update_monitor(),
            Err(_) => {
                if let Some(admission) = &mut self.admission {
                    admission.release(identity);
                }
            }
        }
        launched
    }

    /// Starts the process of an installed agent.
    fn spawn_process(&mut self, launch: &Launch) -> Result<u32, String> {
        let Launch { agent, keys, .. } = launch;
        let identity = agent.identity.as_str();
        let home = self.config.home.path();
        let credentials = CredentialStore::new(home);
        // Isolation mode: the uid its explicit start allocated (see `prepare`).
        let uid = match self.config.isolation {
            Some(range) => Some(agent.user_id.filter(|u| range.contains(*u)).ok_or_else(|| {
                format!("agent '{identity}' has no uid in {range} yet: start it with start_agent")
            })?),
            None => None,
        };
        let mut spec = match &agent.program {
            Program::Executable(path) => LaunchSpec::new(identity, path, &agent.dir),
            Program::Command(words) => LaunchSpec::from_command(identity, words.clone(), &agent.dir)
                .ok_or_else(|| format!("agent '{identity}' has an empty command"))?,
            Program::Python(python) => {
                return self.spawn_python(launch, python, uid);
            }
            Program::Volttron11 => {
                return Err(format!(
                    "agent '{identity}' ({}) was installed by VOLTTRON 11, whose Python environment \
                     holds its code: reinstall it with `vctl install <package> --vip-identity {identity} --force` \
                     (its UUID, data/ and key are kept)",
                    agent.name
                ));
            }
        };
        spec = spec
            .env("AGENT_VIP_IDENTITY", identity)
            .env("VOLTTRON_HOME", home.display().to_string())
            .env("VOLTTRON_PLATFORM_ADDRESS", self.config.address.clone())
            .env(
                "AGENT_CREDENTIALS",
                match uid {
                    // Its own user cannot read credentials_store/: the key pair itself,
                    // as VOLTTRON passes AGENT_PUBLICKEY and AGENT_SECRETKEY.
                    Some(_) => keys.to_json(),
                    None => credentials
                        .path(identity)
                        .map_err(|e| e.to_string())?
                        .display()
                        .to_string(),
                },
            )
            .env("AGENT_UUID", agent.uuid.to_string())
            .env("AGENT_TAG", agent.tag.clone().unwrap_or_default())
            .report_exits(self.exits.clone());
        if let Some(config) = &agent.config {
            spec = spec.env("AGENT_CONFIG", config.display().to_string());
        }
        if let Some(key) = &self.config.serverkey {
            spec = spec.env("VOLTTRON_SERVERKEY", key.clone());
        }
        self.spawn_confined(agent, spec, uid)
    }

    /// Starts a Python agent's process as VOLTTRON 11 does (`aip.py`'s `start_agent`):
    /// `[<env>/bin/python, "-c", "from <module> import <function>; <function>()"]` in its
    /// directory, with the platform's environment plus `VOLTTRON_HOME`, `AGENT_CONFIG`
    /// (if it has one), `AGENT_TAG` (if it has one), `AGENT_UUID`,
    /// `_LAUNCHED_BY_PLATFORM=1`, `AGENT_VIP_IDENTITY` and `AGENT_CREDENTIALS` (inline
    /// JSON); none of the bridge's `VOLTTRON_*` variables. Its JSON log records on stderr
    /// are logged at their levels.
    fn spawn_python(
        &mut self,
        launch: &Launch,
        python: &crate::home::python::PythonProgram,
        uid: Option<u32>,
    ) -> Result<u32, String> {
        let Launch { agent, keys, .. } = launch;
        let identity = agent.identity.as_str();
        let words = python.command().ok_or_else(|| {
            format!(
                "agent '{identity}': entry point {:?} is not module:function",
                python.entry_point
            )
        })?;
        let credentials = crate::home::python::agent_credentials(
            identity,
            &keys.public.to_string(),
            &keys.secret.to_base64(),
        )
        .ok_or_else(|| {
            format!("agent '{identity}': the identity is too long for a Python agent's AGENT_CREDENTIALS")
        })?;
        let mut spec = LaunchSpec::from_command(identity, words, &agent.dir)
            .ok_or_else(|| format!("agent '{identity}' has an empty command"))?
            .env("VOLTTRON_HOME", self.config.home.path().display().to_string())
            .env("AGENT_UUID", agent.uuid.to_string())
            .env("_LAUNCHED_BY_PLATFORM", "1")
            .env("AGENT_VIP_IDENTITY", identity)
            .env("AGENT_CREDENTIALS", credentials)
            .json_logs(true)
            .report_exits(self.exits.clone());
        if let Some(tag) = &agent.tag {
            spec = spec.env("AGENT_TAG", tag.clone());
        }
        if let Some(config) = &agent.config {
            spec = spec.env("AGENT_CONFIG", config.display().to_string());
        }
        self.spawn_confined(agent, spec, uid)
    }

    /// Launches `spec` through the sandbox trampoline (or, without one and without
    /// confinement, directly) and records the process.
    fn spawn_confined(
        &mut self,
        agent: &InstalledAgent,
        mut spec: LaunchSpec,
        uid: Option<u32>,
    ) -> Result<u32, String> {
        let identity = agent.identity.as_str();
        let writable_only = self.config.data_only_writable.then(|| agent.data_dir());
        if let Some(data) = &writable_only {
            spec = spec.env("TMPDIR", data.join("tmp").display().to_string());
        }
        // Through the sandbox trampoline when it is installed beside this binary: empty
        // capability sets (bounding included), no ambient capabilities, no-new-privs;
        // its own uid and gid in isolation mode; only data/ writable if so configured.
        let cgroup = self.agent_cgroup(identity);
        let confined = uid.is_some() || writable_only.is_some();
        if let Some(trampoline) = sandbox::find_trampoline() {
            let options = SandboxOptions {
                // The trampoline joins the group before it execs: no window outside it.
                cgroup_procs: cgroup.as_ref().map(|g| g.procs_files()).unwrap_or_default(),
                uid,
                gid: uid,
                writable_only,
                // An agent of any language stops when the platform is killed.
                die_with_parent: Some(std::process::id()),
            };
            let (program, args) = sandbox::sandbox_command(&trampoline, &options, &spec.program, &spec.args);
            spec.program = program;
            spec.args = args;
        } else if confined {
            return Err(format!(
                "volttron-sandbox not found: agent '{identity}' cannot run as its own user or with \
                 only data/ writable (install it beside volttron, or set $VOLTTRON_SANDBOX)"
            ));
        } else {
            tracing::warn!(
                agent = identity,
                "volttron-sandbox not found: the agent runs with this process's privileges"
            );
        }
        let process = AgentProcess::launch(&spec).map_err(|e| e.to_string())?;
        let pid = process.pid();
        tracing::info!(agent = identity, pid, uid, "agent started");
        self.running.insert(
            identity.to_owned(),
            Running {
                process: Arc::new(process),
                cgroup,
            },
        );
        Ok(pid)
    }

    /// Before an explicit start, on the blocking pool: reads the agent, its contract and
    /// its key pair (made if missing); in isolation mode allocates its uid (once), hands
    /// its files to it and checks that it can reach its program; with only `data/` writable, makes its `data/tmp` (which may walk
    /// the agent's `data/`). A running agent's files are left alone (its start fails
    /// anyway).
    async fn prepare(&self, identity: &str) -> Result<Launch, String> {
        let (range, tmp) = (self.config.isolation, self.config.data_only_writable);
        let running = self.running.contains_key(identity);
        let home = self.config.home.clone();
        let id = identity.to_owned();
        blocking(move || {
            let mut agent = install::find(&home, &id).map_err(|e| e.to_string())?;
            if !running {
                let prepared = match range {
                    // The home's modes first (idempotent): the agent must reach its
                    // directory and the socket.
                    Some(range) => isolation::open_home(&home)
                        .and_then(|()| isolation::allocate(&home, &id, range))
                        .and_then(|uid| {
                            agent.user_id = Some(uid);
                            isolation::prepare_agent(&agent, uid, tmp)
                        }),
                    None if tmp => isolation::make_tmp(&agent.data_dir()),
                    None => Ok(()),
                };
                prepared.map_err(|e| e.to_string())?;
                if let (Some(_), Some(uid)) = (range, agent.user_id) {
                    check_reachable(&agent, uid)?;
                }
            }
            let contract = Contract::find(&agent.dir)
                .map_err(|e| e.to_string())?
                .map(|(_, contract)| contract);
            let keys = CredentialStore::new(home.path())
                .load_or_create(&id)
                .map_err(|e| e.to_string())?;
            Ok(Launch {
                agent,
                contract,
                keys,
            })
        })
        .await
    }

    /// A watcher saw an agent process end: forget it, then restart it, give up, or leave
    /// it down.
    fn agent_exited(&mut self, ctx: &AgentContext, identity: String, pid: u32) {
        let Some(running) = self.running.get(&identity) else {
            return;
        };
        if running.process.pid() != pid {
            return;
        }
        // Reaped before the report was sent.
        let exit = running.process.try_exit().unwrap_or(Exit::Unknown);
        self.forget_process(&identity);
        if self.terminated.contains_key(&identity)
            && let Some(enforcer) = &mut self.enforcer
        {
            enforcer.forget(&identity);
        }
        self.on_exit(ctx, identity, exit);
    }

    /// Stops an agent the enforcer terminated, in the background (SIGTERM, the grace
    /// period, SIGKILL, to its process group); its exit comes back through
    /// `agent_exited`, and it is not restarted until started again.
    fn terminate(&mut self, identity: String, reason: String) {
        self.terminated.insert(identity.clone(), reason);
        let Some(process) = self.running.get(&identity).map(|r| r.process.clone()) else {
            return;
        };
        self.monitor(&identity).stop_requested();
        let grace = self.config.grace;
        tokio::spawn(async move {
            let outcome = process.terminate(grace).await;
            tracing::info!(agent = identity.as_str(), step = ?outcome.step, exit = %outcome.exit, "terminated agent stopped");
        });
    }

    /// An explicit start: reads what the launch needs, clears the crash history (and a
    /// termination), then launches.
    async fn start(&mut self, identity: &str) -> Result<u32, String> {
        let launch = self.prepare(identity).await?;
        let pid = self.launch(&launch)?;
        self.launches.insert(identity.to_owned(), launch);
        self.terminated.remove(identity);
        self.monitor(identity).started();
        Ok(pid)
    }

    /// Acts on an agent's exit: restart after a backoff, give up, or leave it down.
    fn on_exit(&mut self, ctx: &AgentContext, identity: String, exit: Exit) {
        self.last_exit.insert(identity.clone(), exit);
        let decision = self.monitor(&identity).exited(exit, ctx.clock().elapsed());
        tracing::info!(agent = identity.as_str(), %exit, ?decision, "agent exited");
        match decision {
            Decision::Restart { after, attempt } => {
                let id = identity.clone();
                let scheduled = ctx.schedule_once::<ControlService>(after, move |this, ctx| {
                    if !this.monitor(&id).restart_due(ctx.clock().elapsed()) {
                        return;
                    }
                    // What its explicit start read (a restart reads nothing from disk).
                    let relaunched = match this.launches.get(&id).cloned() {
                        Some(launch) => this.launch(&launch),
                        None => Err(format!("agent '{id}' was never started")),
                    };
                    if let Err(e) = relaunched {
                        tracing::warn!(agent = id.as_str(), attempt, "restart failed: {e}");
                        // As a shell reports a command it cannot run.
                        this.on_exit(ctx, id.clone(), Exit::Code(127));
                    }
                });
                if let Err(e) = scheduled {
                    tracing::warn!(agent = identity.as_str(), "restart not scheduled: {e}");
                }
            }
            Decision::GaveUp { restarts, last_exit } => {
                let message = format!(
                    "agent '{identity}' crashed ({last_exit}) after {restarts} restarts; not restarted until started again"
                );
                tracing::error!(agent = identity.as_str(), "{message}");
                let _ = ctx.send_alert(&format!("agent_gave_up.{identity}"), Status::Bad, Some(&message));
            }
            Decision::Exited | Decision::Stopped | Decision::Ignored => {}
        }
    }

    fn record(&self, agent: &InstalledAgent) -> AgentRecord {
        AgentRecord {
            identity: agent.identity.to_string(),
            uuid: agent.uuid.to_string(),
            name: agent.name.clone(),
            tag: agent.tag.clone(),
            priority: agent.priority,
            autostart: agent.autostart,
            user_id: agent.user_id,
            pid: None,
            state: None,
            last_exit: None,
            health: None,
            reason: None,
            reservation: None,
            usage: None,
        }
    }

    fn state(&self, identity: &str) -> ProcessState {
        match self.monitors.get(identity).map(|m| m.state()) {
            _ if self.running.contains_key(identity) => ProcessState::Running,
            _ if self.terminated.contains_key(identity) => ProcessState::Terminated,
            Some(MonitorState::BackingOff { .. }) => ProcessState::Restarting,
            Some(MonitorState::GaveUp) => ProcessState::GaveUp,
            _ => ProcessState::Stopped,
        }
    }

    fn resources(&self, identity: &str) -> AgentResources {
        AgentResources {
            reservation: self.admission.as_ref().and_then(|a| a.reserved(identity)),
            usage: self.monitor.as_ref().and_then(|m| m.get(identity)),
        }
    }

    /// Stops the process of `identity`, if it runs; returns how it ended.
    async fn stop_process(&mut self, identity: &str) -> Option<Exit> {
        self.monitor(identity).stop_requested();
        let running = self.running.get(identity)?.process.clone();
        let outcome = running.stop(self.config.grace).await;
        self.forget_process(identity);
        tracing::info!(agent = identity, step = ?outcome.step, exit = %outcome.exit, "agent stopped");
        self.last_exit.insert(identity.to_owned(), outcome.exit);
        Some(outcome.exit)
    }
}

/// The running agents in the order to stop them: the reverse of the autostart order
/// (`started`), after those outside it (sorted, for a stable order).
fn stop_order<'a>(started: &[&str], running: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let running: std::collections::BTreeSet<&str> = running.into_iter().map(String::as_str).collect();
    let mut order: Vec<String> = running
        .iter()
        .filter(|id| !started.contains(id))
        .map(|id| id.to_string())
        .collect();
    order.extend(
        started
            .iter()
            .rev()
            .filter(|id| running.contains(*id))
            .map(|id| id.to_string()),
    );
    order
}

/// Whether `agent`'s own user (isolation mode) may execute its program: a home under a
/// `0700` directory (root's home directory, say) is not reachable by it, and the start is
/// refused naming that directory, rather than a process that dies with EACCES. A bare
/// command name is looked up in `PATH` by `exec`, and not checked. On the blocking pool.
fn check_reachable(agent: &InstalledAgent, uid: u32) -> Result<(), String> {
    let program = match &agent.program {
        Program::Executable(path) => path.clone(),
        Program::Command(words) => match words.first() {
            Some(word) => PathBuf::from(word),
            None => return Ok(()),
        },
        // The environment's interpreter (its code is read, not executed).
        Program::Python(python) => python.interpreter(),
        Program::Volttron11 => return Ok(()),
    };
    let named = std::os::unix::ffi::OsStrExt::as_bytes(program.as_os_str()).contains(&b'/');
    if !named {
        return Ok(());
    }
    sandbox::check_reachable(&agent.dir.join(program), uid, uid)
        .map_err(|e| format!("agent '{}': cannot execute {e}", agent.identity))
}

/// Runs file work (which fsyncs) on the blocking pool, off the services' thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string())?
}

fn exit_value(exit: Option<&Exit>) -> Value {
    match exit {
        None => Value::Null,
        Some(e) => Value::from(e.to_string()),
    }
}

#[crate::agent]
impl ControlService {
    #[on_start]
    fn start_watching(&mut self, ctx: &AgentContext) {
        self.router = Some(ctx.inner.endpoint.router.clone());
        match Machine::probe() {
            Ok(machine) => {
                self.admission = Some(Admission::new(&machine, self.config.budget));
                self.machine = Some(machine);
            }
            Err(e) => tracing::warn!("resource contracts are not checked: {e}"),
        }
        let name = ctx
            .query("instance-name")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "volttron".into());
        // One group per home: two platforms of the same name never share agents' groups.
        let name = platform_group_name(&name, self.config.home.path());
        self.cgroups = Some(CgroupSupport::detect(std::path::Path::new(CGROUP_ROOT), &name));
        if let Some(range) = self.config.isolation {
            tracing::info!(uids = %range, "agent isolation mode: each agent runs as its own user");
        }
        if let Some(machine) = &self.machine {
            let mut policy = PressurePolicy::for_machine(machine);
            if let Some(below) = self.config.memory_pressure_below {
                policy.memory_available_below = below;
            }
            self.enforcer = Some(Enforcer::new(policy));
            let every = self.config.monitor_interval;
            if let Err(e) = ctx.schedule_every::<ControlService>(every, |this, ctx| this.enforce(ctx)) {
                tracing::warn!("resource contracts are not enforced: {e}");
            }
        }
        let sampler = Sampler::new(bogomips_per_core().unwrap_or(0.0));
        match Monitor::new(sampler, self.config.monitor_interval).spawn() {
            Ok(handle) => self.monitor = Some(handle),
            Err(e) => tracing::warn!("agent processes are not sampled: {e}"),
        }
        // Exit reports arrive from the process watchers' threads; each runs on this
        // service, in order with everything else, as an immediate one-shot timer: an
        // internal event, not an RPC another peer could send.
        if let Some(mut rx) = self.exits_rx.take() {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                while let Some(report) = rx.recv().await {
                    let mut report = Some(report);
                    let scheduled = ctx.schedule_once::<ControlService>(Duration::ZERO, move |this, ctx| {
                        if let Some(report) = report.take() {
                            this.agent_exited(ctx, report.identity, report.pid);
                        }
                    });
                    if scheduled.is_err() {
                        // The service is stopping; it stops the agents itself.
                        break;
                    }
                }
            });
        }
    }

    /// Stops every running agent, in reverse autostart order.
    #[on_stop]
    async fn stop_all(&mut self) {
        let agents = self.installed_agents().await.unwrap_or_default();
        let started: Vec<&str> = install::autostart_order(&agents)
            .into_iter()
            .map(|a| a.identity.as_str())
            .collect();
        for identity in stop_order(&started, self.running.keys()) {
            self.stop_process(&identity).await;
        }
        // The agents' groups went with them; the platform's own group goes last (kept,
        // with a warning, while another platform of the same name still uses it).
        if let Some(cgroups) = &self.cgroups {
            cgroups.remove_platform_group();
        }
    }

    /// One agent's reservation and its latest sampled use (CPU, RSS), or nulls.
    #[rpc]
    fn agent_resources(&mut self, identity: String) -> AgentResources {
        self.resources(&identity)
    }

    /// The admission budget, what running agents reserve of it, and the enforcement
    /// actions taken; `None` where contracts are not enforced (no machine facts).
    #[rpc]
    fn resource_budget(&mut self) -> Option<ResourceBudget> {
        let admission = self.admission.as_ref()?;
        Some(ResourceBudget {
            budget: admission.budget(),
            reserved: admission.reserved_total(),
            actions: self.actions,
        })
    }

    /// The installed agents.
    #[rpc]
    async fn list_agents(&mut self) -> Result<Vec<AgentRecord>, String> {
        let agents = self.installed_agents().await?;
        Ok(agents.iter().map(|a| self.record(a)).collect())
    }

    /// The installed agents with their process state.
    #[rpc]
    async fn status_agents(&mut self) -> Result<Vec<AgentRecord>, String> {
        let agents = self.installed_agents().await?;
        Ok(agents
            .iter()
            .map(|a| {
                let id = a.identity.as_str();
                let state = self.state(id);
                let AgentResources { reservation, usage } = self.resources(id);
                AgentRecord {
                    pid: self.running.get(id).map(|r| r.process.pid()),
                    state: Some(state),
                    last_exit: self.last_exit.get(id).map(Exit::to_string),
                    health: matches!(state, ProcessState::GaveUp | ProcessState::Terminated)
                        .then(|| "BAD".to_owned()),
                    reason: self.terminated.get(id).cloned(),
                    reservation,
                    usage,
                    ..self.record(a)
                }
            })
            .collect())
    }

    /// Installs an agent executable (or replaces one, with `force`). With `python` (an
    /// environment and an entry point, see [`crate::home::python`]; the package is
    /// installed in the environment already, by `vctl`), a Python agent instead: `source`
    /// is then ignored, and its `config` is copied as VOLTTRON 11 does but not loaded
    /// into its configuration store.
    #[rpc]
    #[allow(clippy::too_many_arguments)]
    async fn install_agent(
        &mut self,
        ctx: &AgentContext,
        source: String,
        identity: String,
        name: String,
        tag: Option<String>,
        config: Option<String>,
        priority: Option<u32>,
        enable: Option<bool>,
        force: Option<bool>,
        exereqs: Option<String>,
        python: Option<crate::home::python::PythonProgram>,
    ) -> Result<String, String> {
        // A contract the machine cannot honour is refused before anything is installed.
        if let Some(path) = exereqs.clone() {
            let contract = blocking(move || {
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                Contract::parse(&text, &path).map_err(|e| e.to_string())
            })
            .await?;
            if let (Some(machine), Some(admission)) = (&self.machine, &self.admission) {
                admission
                    .check(&identity, &contract, machine)
                    .map_err(|r| r.for_agent(&identity).to_string())?;
            }
        }
        let force = force.unwrap_or(false);
        if force {
            // Stopped, and no pending crash restart of the old installation.
            self.stop_process(&identity).await;
            self.launches.remove(&identity);
        }
        // A reinstall keeps what it is not told to change: tag, priority, autostart.
        let previous = if force {
            self.installed(&identity).await.ok()
        } else {
            None
        };
        let load_config = python.is_none();
        let program = match python {
            Some(python) => Program::Python(python),
            None => Program::Executable(PathBuf::from(source)),
        };
        let mut spec = InstallSpec::new(identity.clone(), name, program);
        spec.tag = tag.or_else(|| previous.as_ref().and_then(|p| p.tag.clone()));
        spec.priority = priority.or_else(|| previous.as_ref().and_then(|p| p.priority));
        spec.enable = enable.unwrap_or(false) || previous.as_ref().is_some_and(|p| p.autostart);
        spec.force = force;
        spec.config = config.as_ref().map(PathBuf::from);
        spec.exereqs = exereqs.as_ref().map(PathBuf::from);
        let home = self.config.home.clone();
        let (installed, config_text) = blocking(move || {
            let agent = install::install(&home, &spec).map_err(|e| e.to_string())?;
            CredentialStore::new(home.path())
                .load_or_create(agent.identity.as_str())
                .map_err(|e| e.to_string())?;
            let text = match &agent.config {
                Some(path) if load_config => {
                    Some(std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?)
                }
                _ => None,
            };
            Ok((agent, text))
        })
        .await?;
        if let Some(text) = config_text {
            ctx.call(
                crate::services::config_store::IDENTITY,
                "set_config",
                (identity.as_str(), "config", text, "json", false),
            )
            .await
            .map_err(|e| format!("the agent's config was not stored: {e}"))?;
        }
        tracing::info!(agent = identity.as_str(), "agent installed");
        Ok(installed.identity.to_string())
    }

    /// Starts an installed agent; returns its pid.
    #[rpc]
    async fn start_agent(&mut self, identity: String) -> Result<u32, String> {
        self.start(&identity).await
    }

    /// Stops an agent; returns how it ended (`null` if it was not running).
    #[rpc]
    async fn stop_agent(&mut self, identity: String) -> Result<Value, String> {
        self.installed(&identity).await?;
        Ok(exit_value(self.stop_process(&identity).await.as_ref()))
    }

    /// Stops (if running) and starts an agent; returns its new pid.
    #[rpc]
    async fn restart_agent(&mut self, identity: String) -> Result<u32, String> {
        self.installed(&identity).await?;
        self.stop_process(&identity).await;
        self.start(&identity).await
    }

    /// Stops and uninstalls an agent: its directory, key pair, configuration store and
    /// authorization entries.
    #[rpc]
    async fn remove_agent(&mut self, ctx: &AgentContext, identity: String) -> Result<(), String> {
        self.installed(&identity).await?;
        self.stop_process(&identity).await;
        self.monitors.remove(&identity);
        self.launches.remove(&identity);
        self.last_exit.remove(&identity);
        let home = self.config.home.clone();
        let id = identity.clone();
        blocking(move || {
            install::remove(&home, &id).map_err(|e| e.to_string())?;
            CredentialStore::new(home.path())
                .remove(&id)
                .map_err(|e| e.to_string())?;
            Ok(())
        })
        .await?;
        // Best effort: these services may not run (no auth, no store for it).
        let _ = ctx
            .call(
                crate::services::config_store::IDENTITY,
                "delete_store",
                (identity.as_str(),),
            )
            .await;
        if ctx
            .peers()
            .iter()
            .any(|p| p.as_str() == crate::services::auth::IDENTITY)
        {
            let _ = ctx
                .call(
                    crate::services::auth::IDENTITY,
                    "remove_auth_entry",
                    (identity.as_str(),),
                )
                .await;
            let _ = ctx
                .call(
                    crate::services::auth::IDENTITY,
                    "remove_user",
                    (identity.as_str(),),
                )
                .await;
        }
        tracing::info!(agent = identity.as_str(), "agent removed");
        Ok(())
    }

    /// Enables autostart, optionally with a priority.
    #[rpc]
    async fn enable_agent(&mut self, identity: String, priority: Option<u32>) -> Result<(), String> {
        let home = self.config.home.clone();
        blocking(move || {
            install::enable(&home, &identity, priority)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Disables autostart.
    #[rpc]
    async fn disable_agent(&mut self, identity: String) -> Result<(), String> {
        let home = self.config.home.clone();
        blocking(move || {
            install::disable(&home, &identity)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Sets (or, with `null`, clears) an agent's tag.
    #[rpc]
    async fn tag_agent(&mut self, identity: String, tag: Option<String>) -> Result<(), String> {
        let home = self.config.home.clone();
        blocking(move || {
            install::set_tag(&home, &identity, tag.as_deref())
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Launches the enabled agents in priority order; returns the identities started.
    #[rpc]
    async fn start_enabled(&mut self) -> Result<Vec<String>, String> {
        let agents = self.installed_agents().await?;
        let mut started = Vec::new();
        for agent in install::autostart_order(&agents) {
            let id = agent.identity.to_string();
            match self.start(&id).await {
                Ok(_) => started.push(id),
                Err(e) => tracing::error!(agent = id.as_str(), "autostart failed: {e}"),
            }
        }
        Ok(started)
    }

    /// Asks the platform process to shut down (as SIGTERM would).
    #[rpc]
    fn shutdown_platform(&mut self) -> Result<(), String> {
        tracing::info!("shutdown requested through the control service");
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_second_vctl_is_a_control_connection() {
        assert!(super::is_control_connection("control.connection"));
        assert!(super::is_control_connection("control.connection.4242"));
        for other in [
            "control.connection.",
            "control.connection.x1",
            "control.connectionx",
            "control",
        ] {
            assert!(!super::is_control_connection(other), "{other}");
        }
    }
    use super::stop_order;

    #[test]
    fn agents_stop_in_reverse_priority_order_after_the_others() {
        let running: Vec<String> = ["zeta", "low", "high", "manual"].map(String::from).to_vec();
        // Autostart order: lowest priority number first; "idle" is enabled but not running.
        let started = ["low", "idle", "high"];
        assert_eq!(stop_order(&started, &running), ["manual", "zeta", "high", "low"]);
    }
}
