//! Enforcement: which agents over their contract to act on when the machine is under
//! pressure, and how.
//!
//! An agent may use more than its [`Reservation`] while the machine is idle: a soft
//! contract is what the agent is sure to get, not a cap. When the machine is under
//! *pressure* ([`pressure`], by the terms of a [`PressurePolicy`]):
//!
//! * **memory**: `MemAvailable` ([`mem_available_bytes`]) is below
//!   [`memory_available_below`](PressurePolicy::memory_available_below) (by default 10% of
//!   `MemTotal`, [`PressurePolicy::for_machine`]);
//! * **CPU**: the agents' total CPU use ([`cpu_demand_mips`]) is above the platform's CPU
//!   budget ([`Budget::cpu_mips`](super::admission::Budget::cpu_mips)), if
//!   [`cpu_demand_above_budget`](PressurePolicy::cpu_demand_above_budget) (the default);
//!
//! the agents over their contract (*offenders*) are acted on, worst offender first. An
//! [`Enforcer`] keeps the state from one monitor round to the next and answers each round
//! with [`Action`]s: the first round an agent is seen offending under pressure it is
//! warned ([`Action::Warn`]: an alert); if it is still offending under pressure
//! [`warn_rounds`](PressurePolicy::warn_rounds) rounds later, it is terminated
//! ([`Action::Terminate`]). Carrying the actions out (the alert; SIGTERM, the grace period
//! and SIGKILL to the agent's process group; not restarting it until it is started again;
//! health BAD with the reason) is the control service's: this module owns no process, reads
//! no clock and sends no signal.
//!
//! # Offenders
//!
//! An agent offends when its usage ([`AgentUsage`]) exceeds its reservation in either
//! term: `cpu_mips` above the reserved `cpu_mips`, or `rss_bytes` above the reserved
//! `memory_bytes`. A term reserved at zero is not enforced (there is nothing to compare
//! with), so an agent with an [empty](Reservation::is_empty) reservation (no contract, or a
//! contract without soft terms) is *unmanaged* and never acted on, as agents without
//! execution requirements were unmanaged in VOLTTRON Restricted. A CPU figure not known yet
//! (the first round that sees a process) does not offend.
//!
//! How far an offender is over is its *ratio*: the larger of usage / reservation over its
//! enforced terms (8.0 for 512 MB used against a 64 MB contract). Offenders are taken in
//! decreasing ratio (ties by identity). Both terms count under either kind of pressure: an
//! agent over its contract is over it, whatever the machine is short of.
//!
//! # Rounds
//!
//! Each [`Enforcer::round`]:
//!
//! * forgets the agents that are not in the list or are [gone](AgentUsage::gone), and those
//!   whose process changed (another [`ProcessKey`]: the agent was restarted);
//! * without pressure, acts on nobody and forgets every offence: the counts start again
//!   with the next pressure;
//! * under pressure, forgets the offence of every agent now within its contract, warns every
//!   offender seen for the first time (one warning per offence), counts one more round for
//!   the others, and terminates **at most one** agent: the worst offender among those that
//!   have been warned for [`warn_rounds`](PressurePolicy::warn_rounds) rounds. With
//!   `warn_rounds` 0 an offender is warned and terminated in the same round.
//!
//! A terminated agent's offence is forgotten. Until its process is gone (or the agent
//! leaves the list, or comes back with another process), it is *terminating*: it is not
//! acted on again, and no other agent is terminated, so that freeing its memory and CPU may
//! end the pressure before the next one is killed. Other offenders are still warned and
//! their rounds still counted meanwhile. [`Enforcer::forget`] drops an agent's state at
//! once (for example when it is stopped by hand).
//!
//! # Reasons
//!
//! Each action carries a reason naming the pressure and the agent's worst term, with the
//! numbers (1 MB = 1024 × 1024 bytes, as `/proc/meminfo`'s kB are 1024 bytes):
//!
//! ```text
//! memory pressure (MemAvailable 180 MB < 200 MB): 'hog' uses 512 MB RSS against a 64 MB contract (8.0x)
//! ```
//!
//! ```
//! use volttron::resources::admission::Reservation;
//! use volttron::resources::enforcement::{Action, Enforcer, PressurePolicy, pressure};
//! use volttron::resources::monitor::{Accounting, AgentUsage, ProcessKey};
//!
//! const MB: u64 = 1 << 20;
//! let policy = PressurePolicy {
//!     memory_available_below: 200 * MB,
//!     cpu_demand_above_budget: true,
//!     warn_rounds: 2,
//! };
//! let usage = AgentUsage {
//!     identity: "hog".into(),
//!     key: ProcessKey { pid: 4242, start_time: 1 },
//!     gone: false,
//!     cpu_percent_of_core: Some(1.0),
//!     cpu_mips: Some(50.0),
//!     rss_bytes: 512 * MB,
//!     processes: 1,
//!     accounting: Accounting::Procfs,
//! };
//! let contract = Reservation { cpu_mips: 100.0, memory_bytes: 64 * MB };
//! let agents = [("hog".to_string(), contract, usage)];
//! let mut enforcer = Enforcer::new(policy);
//!
//! // An idle machine: the hog may use what it likes.
//! assert_eq!(pressure(&policy, 2000 * MB, 50.0, 4800.0), None);
//! assert!(enforcer.round(None, &agents).is_empty());
//!
//! // Under pressure: warned, then terminated two rounds later.
//! let under = pressure(&policy, 180 * MB, 50.0, 4800.0);
//! assert_eq!(
//!     enforcer.round(under, &agents),
//!     [Action::Warn {
//!         identity: "hog".into(),
//!         reason: "memory pressure (MemAvailable 180 MB < 200 MB): 'hog' uses 512 MB RSS against a \
//!                  64 MB contract (8.0x)"
//!             .into(),
//!     }]
//! );
//! assert!(enforcer.round(under, &agents).is_empty());
//! let actions = enforcer.round(under, &agents);
//! assert!(matches!(&actions[..], [Action::Terminate { identity, .. }] if identity == "hog"));
//! ```

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, hash_map};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::admission::{Reservation, amount};
use super::contract::Machine;
use super::monitor::{AgentUsage, ProcessKey};

/// The default memory threshold, as a share of `MemTotal`: pressure when less than 10% of
/// the memory is available.
pub const DEFAULT_MEMORY_AVAILABLE_FRACTION: f64 = 0.1;

/// The default number of rounds an offender is warned before it is terminated.
pub const DEFAULT_WARN_ROUNDS: u32 = 2;

/// Bytes in the MB of the reasons (and in `/proc/meminfo`'s kB × 1024).
const MB: f64 = 1024.0 * 1024.0;

/// When the machine is under pressure, and how long offenders are warned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PressurePolicy {
    /// Memory pressure when `MemAvailable` is below this many bytes. By default 10% of
    /// `MemTotal` ([`PressurePolicy::for_machine`]); 0 never detects memory pressure.
    pub memory_available_below: u64,
    /// CPU pressure when the agents' total CPU use is above the CPU budget (default true).
    pub cpu_demand_above_budget: bool,
    /// Rounds an offender is warned before it is terminated (default
    /// [`DEFAULT_WARN_ROUNDS`], 2): warned at round *n*, terminated at round *n* + 2 if it
    /// is still over its contract under pressure at every round in between.
    pub warn_rounds: u32,
}

impl PressurePolicy {
    /// The default policy for a machine with `memory_total_bytes` of memory: memory
    /// pressure below 10% of it ([`DEFAULT_MEMORY_AVAILABLE_FRACTION`]), CPU pressure above
    /// the budget, [`DEFAULT_WARN_ROUNDS`] warned rounds.
    pub fn for_memory_total(memory_total_bytes: u64) -> PressurePolicy {
        PressurePolicy {
            memory_available_below: (memory_total_bytes as f64 * DEFAULT_MEMORY_AVAILABLE_FRACTION) as u64,
            cpu_demand_above_budget: true,
            warn_rounds: DEFAULT_WARN_ROUNDS,
        }
    }

    /// The default policy for `machine` (see [`for_memory_total`](Self::for_memory_total)):
    /// its `MemTotal` is [`Machine::memory_total_bytes`].
    pub fn for_machine(machine: &Machine) -> PressurePolicy {
        PressurePolicy::for_memory_total(machine.memory_total_bytes())
    }
}

/// Too little memory available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryPressure {
    /// `MemAvailable`, in bytes.
    pub available_bytes: u64,
    /// The policy's threshold, in bytes.
    pub threshold_bytes: u64,
}

impl fmt::Display for MemoryPressure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MemAvailable {} MB < {} MB",
            megabytes(self.available_bytes),
            megabytes(self.threshold_bytes)
        )
    }
}

/// The agents use more CPU than the budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuPressure {
    /// The agents' total CPU use, in MIPS.
    pub demand_mips: f64,
    /// The platform's CPU budget, in MIPS.
    pub budget_mips: f64,
}

impl fmt::Display for CpuPressure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "agents use {} MIPS > {} MIPS budget",
            amount(self.demand_mips),
            amount(self.budget_mips)
        )
    }
}

/// Why the machine is under pressure, from [`pressure`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PressureReason {
    /// Too little memory available.
    Memory(MemoryPressure),
    /// Too much CPU demand.
    Cpu(CpuPressure),
    /// Both.
    MemoryAndCpu {
        /// The memory term.
        memory: MemoryPressure,
        /// The CPU term.
        cpu: CpuPressure,
    },
}

impl PressureReason {
    /// The memory term, if memory is short.
    pub fn memory(&self) -> Option<MemoryPressure> {
        match self {
            PressureReason::Memory(memory) | PressureReason::MemoryAndCpu { memory, .. } => Some(*memory),
            PressureReason::Cpu(_) => None,
        }
    }

    /// The CPU term, if CPU demand is over the budget.
    pub fn cpu(&self) -> Option<CpuPressure> {
        match self {
            PressureReason::Cpu(cpu) | PressureReason::MemoryAndCpu { cpu, .. } => Some(*cpu),
            PressureReason::Memory(_) => None,
        }
    }
}

impl fmt::Display for PressureReason {
    /// `memory pressure (MemAvailable 180 MB < 200 MB)`, `CPU pressure (agents use 5200 MIPS >
    /// 4800 MIPS budget)`, or `memory and CPU pressure (…; …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PressureReason::Memory(memory) => write!(f, "memory pressure ({memory})"),
            PressureReason::Cpu(cpu) => write!(f, "CPU pressure ({cpu})"),
            PressureReason::MemoryAndCpu { memory, cpu } => {
                write!(f, "memory and CPU pressure ({memory}; {cpu})")
            }
        }
    }
}

/// Whether the machine is under pressure by the terms of `policy`: memory when
/// `mem_available_bytes` is below [`PressurePolicy::memory_available_below`]; CPU when
/// [`PressurePolicy::cpu_demand_above_budget`] and `total_cpu_demand_mips` (the agents'
/// total use, [`cpu_demand_mips`]) is above `cpu_budget_mips` (the platform's budget,
/// [`Budget::cpu_mips`](super::admission::Budget::cpu_mips)).
///
/// Both comparisons are strict (exactly at the threshold is no pressure). Pass `u64::MAX`
/// as `mem_available_bytes` when it is unknown ([`mem_available_bytes`] is `None`). A CPU
/// budget that is not a positive number (a machine that reports no BogoMIPS) never gives
/// CPU pressure, nor does a demand that is not a number.
pub fn pressure(
    policy: &PressurePolicy,
    mem_available_bytes: u64,
    total_cpu_demand_mips: f64,
    cpu_budget_mips: f64,
) -> Option<PressureReason> {
    let memory = (mem_available_bytes < policy.memory_available_below).then_some(MemoryPressure {
        available_bytes: mem_available_bytes,
        threshold_bytes: policy.memory_available_below,
    });
    let cpu = (policy.cpu_demand_above_budget
        && cpu_budget_mips.is_finite()
        && cpu_budget_mips > 0.0
        && total_cpu_demand_mips > cpu_budget_mips)
        .then_some(CpuPressure {
            demand_mips: total_cpu_demand_mips,
            budget_mips: cpu_budget_mips,
        });
    match (memory, cpu) {
        (Some(memory), Some(cpu)) => Some(PressureReason::MemoryAndCpu { memory, cpu }),
        (Some(memory), None) => Some(PressureReason::Memory(memory)),
        (None, Some(cpu)) => Some(PressureReason::Cpu(cpu)),
        (None, None) => None,
    }
}

/// The agents' total CPU use, in MIPS: the sum of [`AgentUsage::cpu_mips`] over the agents
/// that are not gone (a figure not known yet, or not a non-negative number, counts 0).
/// Unmanaged agents count: they use the same CPU.
pub fn cpu_demand_mips<'a>(usages: impl IntoIterator<Item = &'a AgentUsage>) -> f64 {
    usages
        .into_iter()
        .filter(|usage| !usage.gone)
        .filter_map(|usage| usage.cpu_mips)
        .filter(|mips| mips.is_finite() && *mips >= 0.0)
        .sum()
}

/// `MemAvailable` of this machine's `/proc/meminfo`, in bytes. `None` if the file cannot be
/// read or has no such line (kernels before 3.14).
pub fn mem_available_bytes() -> Option<u64> {
    parse_mem_available_bytes(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// `MemAvailable` of a `/proc/meminfo` text (in kB there), in bytes.
pub fn parse_mem_available_bytes(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemAvailable:")?;
        let mut words = rest.split_whitespace();
        let kb = words.next()?.parse::<u64>().ok()?;
        match words.next() {
            None | Some("kB") => Some(kb.saturating_mul(1024)),
            Some(_) => None,
        }
    })
}

/// What to do to an agent, from [`Enforcer::round`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Raise an alert: the agent is over its contract while the machine is under pressure.
    Warn {
        /// The agent.
        identity: String,
        /// The pressure and the agent's usage against its contract.
        reason: String,
    },
    /// Terminate the agent (SIGTERM, the grace period, SIGKILL to its process group), do not
    /// restart it until it is started again, and set its health BAD with `reason`.
    Terminate {
        /// The agent.
        identity: String,
        /// The pressure, the agent's usage against its contract and how long it was over.
        reason: String,
    },
}

impl Action {
    /// The agent acted on.
    pub fn identity(&self) -> &str {
        match self {
            Action::Warn { identity, .. } | Action::Terminate { identity, .. } => identity,
        }
    }

    /// Why.
    pub fn reason(&self) -> &str {
        match self {
            Action::Warn { reason, .. } | Action::Terminate { reason, .. } => reason,
        }
    }

    /// Whether it is a [`Terminate`](Action::Terminate).
    pub fn is_terminate(&self) -> bool {
        matches!(self, Action::Terminate { .. })
    }
}

/// An offence in progress: the agent has been warned.
#[derive(Debug, Clone, Copy)]
struct Episode {
    /// The process the offence is of.
    key: ProcessKey,
    /// Rounds over its contract under pressure since the warning.
    rounds_since_warning: u32,
}

/// One agent over its contract this round.
struct Offence<'a> {
    identity: &'a str,
    key: ProcessKey,
    ratio: f64,
    description: String,
}

/// One term of usage against the contract.
struct Term {
    ratio: f64,
    text: String,
}

/// The agents' offences from one monitor round to the next; see the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub struct Enforcer {
    policy: PressurePolicy,
    episodes: BTreeMap<String, Episode>,
    terminating: BTreeMap<String, ProcessKey>,
}

impl Enforcer {
    /// An enforcer with no offence on record, acting by `policy`.
    pub fn new(policy: PressurePolicy) -> Enforcer {
        Enforcer {
            policy,
            episodes: BTreeMap::new(),
            terminating: BTreeMap::new(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> PressurePolicy {
        self.policy
    }

    /// Replaces the policy; offences on record keep their counts.
    pub fn set_policy(&mut self, policy: PressurePolicy) {
        self.policy = policy;
    }

    /// [`pressure`] by this enforcer's policy.
    pub fn pressure(
        &self,
        mem_available_bytes: u64,
        total_cpu_demand_mips: f64,
        cpu_budget_mips: f64,
    ) -> Option<PressureReason> {
        pressure(
            &self.policy,
            mem_available_bytes,
            total_cpu_demand_mips,
            cpu_budget_mips,
        )
    }

    /// One monitor round: `pressure` as [`pressure`] found it, and every running agent with
    /// its reservation and its usage this round (the identity of each entry is the
    /// `String`; an identity listed twice is taken at its first entry). Returns the actions,
    /// worst offender first: warnings for offenders seen for the first time, at most one
    /// termination. See the [module documentation](self).
    pub fn round(
        &mut self,
        pressure: Option<PressureReason>,
        agents: &[(String, Reservation, AgentUsage)],
    ) -> Vec<Action> {
        let mut running: HashMap<&str, &AgentUsage> = HashMap::with_capacity(agents.len());
        let mut entries = Vec::with_capacity(agents.len());
        for (identity, reservation, usage) in agents {
            if let hash_map::Entry::Vacant(entry) = running.entry(identity.as_str()) {
                entry.insert(usage);
                entries.push((identity.as_str(), reservation, usage));
            }
        }
        let same_process = |identity: &str, key: &ProcessKey| {
            running
                .get(identity)
                .is_some_and(|usage| !usage.gone && usage.key == *key)
        };
        self.terminating
            .retain(|identity, key| same_process(identity, key));
        self.episodes
            .retain(|identity, episode| same_process(identity, &episode.key));
        let Some(pressure) = pressure else {
            self.episodes.clear();
            return Vec::new();
        };

        let mut offences: Vec<Offence<'_>> = entries
            .into_iter()
            .filter(|(identity, _, usage)| !usage.gone && !self.terminating.contains_key(*identity))
            .filter_map(|(identity, reservation, usage)| offence(identity, reservation, usage))
            .collect();
        offences.sort_by(|a, b| {
            b.ratio
                .total_cmp(&a.ratio)
                .then_with(|| a.identity.cmp(b.identity))
        });
        self.episodes
            .retain(|identity, _| offences.iter().any(|o| o.identity == identity));

        let warn_rounds = self.policy.warn_rounds;
        let mut may_terminate = self.terminating.is_empty();
        let mut actions = Vec::new();
        for offence in &offences {
            let rounds = match self.episodes.entry(offence.identity.to_owned()) {
                Entry::Vacant(entry) => {
                    entry.insert(Episode {
                        key: offence.key,
                        rounds_since_warning: 0,
                    });
                    actions.push(Action::Warn {
                        identity: offence.identity.to_owned(),
                        reason: format!("{pressure}: {}", offence.description),
                    });
                    0
                }
                Entry::Occupied(mut entry) => {
                    let episode = entry.get_mut();
                    episode.rounds_since_warning = episode.rounds_since_warning.saturating_add(1);
                    episode.rounds_since_warning
                }
            };
            if may_terminate && rounds >= warn_rounds {
                may_terminate = false;
                self.episodes.remove(offence.identity);
                self.terminating.insert(offence.identity.to_owned(), offence.key);
                let over = u64::from(rounds) + 1;
                actions.push(Action::Terminate {
                    identity: offence.identity.to_owned(),
                    reason: format!(
                        "{pressure}: {}, over its contract under pressure for {over} round{}",
                        offence.description,
                        if over == 1 { "" } else { "s" }
                    ),
                });
            }
        }
        actions
    }

    /// Drops everything on record about `identity` (its offence, or its pending termination).
    pub fn forget(&mut self, identity: &str) {
        self.episodes.remove(identity);
        self.terminating.remove(identity);
    }

    /// The agents warned and still offending, with the rounds each has been over its
    /// contract under pressure since its warning (0 in the round of the warning).
    pub fn warned(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.episodes
            .iter()
            .map(|(identity, episode)| (identity.as_str(), episode.rounds_since_warning))
    }

    /// The agents terminated whose process is still running (see the
    /// [module documentation](self)): while there is one, no other agent is terminated.
    pub fn terminating(&self) -> impl Iterator<Item = &str> + '_ {
        self.terminating.keys().map(String::as_str)
    }
}

/// `identity`'s offence, if its usage exceeds its reservation in an enforced term.
fn offence<'a>(identity: &'a str, reservation: &Reservation, usage: &AgentUsage) -> Option<Offence<'a>> {
    let memory = usage.memory_ratio(reservation.memory_bytes).map(|ratio| Term {
        ratio,
        text: format!(
            "{} MB RSS against a {} MB contract ({ratio:.1}x)",
            megabytes(usage.rss_bytes),
            megabytes(reservation.memory_bytes)
        ),
    });
    let cpu = usage.cpu_ratio(reservation.cpu_mips).map(|ratio| Term {
        ratio,
        text: format!(
            "{} MIPS against a {} MIPS contract ({ratio:.1}x)",
            amount(usage.cpu_mips.unwrap_or_default()),
            amount(reservation.cpu_mips)
        ),
    });
    let mut over: Vec<Term> = [memory, cpu]
        .into_iter()
        .flatten()
        .filter(|term| term.ratio > 1.0)
        .collect();
    over.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
    let worst = over.first()?;
    let mut description = format!("'{identity}' uses {}", worst.text);
    for term in &over[1..] {
        description.push_str(" and ");
        description.push_str(&term.text);
    }
    Some(Offence {
        identity,
        key: usage.key,
        ratio: worst.ratio,
        description,
    })
}

/// Bytes in MB (1024 × 1024), to one decimal, without a fraction when whole.
fn megabytes(bytes: u64) -> String {
    let tenths = (bytes as f64 / MB * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0}")
    } else {
        format!("{tenths:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::monitor::Accounting;

    const MIB: u64 = 1 << 20;

    fn usage(cpu_mips: Option<f64>, rss_bytes: u64) -> AgentUsage {
        AgentUsage {
            identity: "a".into(),
            key: ProcessKey {
                pid: 100,
                start_time: 7,
            },
            gone: false,
            cpu_percent_of_core: cpu_mips.map(|m| m / 10.0),
            cpu_mips,
            rss_bytes,
            processes: 1,
            accounting: Accounting::Procfs,
        }
    }

    #[test]
    fn mem_available_is_parsed_from_meminfo() {
        let meminfo = "MemTotal:       16303460 kB\nMemFree:         1234567 kB\n\
                       MemAvailable:    8000000 kB\nBuffers:          100 kB\n";
        assert_eq!(parse_mem_available_bytes(meminfo), Some(8_000_000 * 1024));
        assert_eq!(parse_mem_available_bytes("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_mem_available_bytes("MemAvailable: lots kB\n"), None);
        assert_eq!(parse_mem_available_bytes("MemAvailable: 5 MB\n"), None);
        assert_eq!(parse_mem_available_bytes("MemAvailable: 5\n"), Some(5120));
    }

    #[test]
    fn this_machine_reports_mem_available() {
        if std::path::Path::new("/proc/meminfo").exists() {
            let available = mem_available_bytes().expect("MemAvailable");
            assert!(available > 0);
        }
    }

    #[test]
    fn default_policy_is_ten_percent_of_mem_total() {
        let policy = PressurePolicy::for_memory_total(1000 * MIB);
        assert_eq!(policy.memory_available_below, 100 * MIB);
        assert!(policy.cpu_demand_above_budget);
        assert_eq!(policy.warn_rounds, 2);
    }

    #[test]
    fn thresholds_are_strict_and_cpu_may_be_off() {
        let mut policy = PressurePolicy::for_memory_total(1000 * MIB);
        assert_eq!(pressure(&policy, 100 * MIB, 4800.0, 4800.0), None);
        assert!(matches!(
            pressure(&policy, 100 * MIB - 1, 0.0, 4800.0),
            Some(PressureReason::Memory(_))
        ));
        assert!(matches!(
            pressure(&policy, u64::MAX, 4800.5, 4800.0),
            Some(PressureReason::Cpu(_))
        ));
        let both = pressure(&policy, 0, 5000.0, 4800.0).unwrap();
        assert_eq!(both.memory().unwrap().available_bytes, 0);
        assert_eq!(both.cpu().unwrap().demand_mips, 5000.0);
        assert_eq!(pressure(&policy, u64::MAX, 10.0, 0.0), None);
        assert_eq!(pressure(&policy, u64::MAX, f64::NAN, 4800.0), None);
        policy.cpu_demand_above_budget = false;
        assert_eq!(pressure(&policy, u64::MAX, 9999.0, 4800.0), None);
        policy.memory_available_below = 0;
        assert_eq!(pressure(&policy, 0, 0.0, 4800.0), None);
    }

    #[test]
    fn pressure_reasons_name_the_numbers() {
        let memory = MemoryPressure {
            available_bytes: 180 * MIB,
            threshold_bytes: 200 * MIB,
        };
        let cpu = CpuPressure {
            demand_mips: 5200.0,
            budget_mips: 4800.0,
        };
        assert_eq!(
            PressureReason::Memory(memory).to_string(),
            "memory pressure (MemAvailable 180 MB < 200 MB)"
        );
        assert_eq!(
            PressureReason::Cpu(cpu).to_string(),
            "CPU pressure (agents use 5200 MIPS > 4800 MIPS budget)"
        );
        assert_eq!(
            PressureReason::MemoryAndCpu { memory, cpu }.to_string(),
            "memory and CPU pressure (MemAvailable 180 MB < 200 MB; agents use 5200 MIPS > 4800 MIPS budget)"
        );
    }

    #[test]
    fn megabytes_have_one_decimal_at_most() {
        assert_eq!(megabytes(512 * MIB), "512");
        assert_eq!(megabytes(MIB / 2), "0.5");
        assert_eq!(megabytes(0), "0");
        assert_eq!(megabytes(100 * MIB + MIB / 3), "100.3");
    }

    #[test]
    fn offences_take_the_worst_term_and_name_both() {
        let reservation = Reservation {
            cpu_mips: 300.0,
            memory_bytes: 64 * MIB,
        };
        let o = offence("hog", &reservation, &usage(Some(900.0), 512 * MIB)).unwrap();
        assert_eq!(o.ratio, 8.0);
        assert_eq!(
            o.description,
            "'hog' uses 512 MB RSS against a 64 MB contract (8.0x) and 900 MIPS against a 300 MIPS \
             contract (3.0x)"
        );
        let o = offence("spin", &reservation, &usage(Some(1200.0), MIB)).unwrap();
        assert_eq!(o.ratio, 4.0);
        assert_eq!(
            o.description,
            "'spin' uses 1200 MIPS against a 300 MIPS contract (4.0x)"
        );
        // Within the contract, at it exactly, or CPU not known yet.
        assert!(offence("ok", &reservation, &usage(Some(300.0), 64 * MIB)).is_none());
        assert!(offence("new", &reservation, &usage(None, 64 * MIB)).is_none());
        // A term reserved at zero is not enforced; an empty reservation is unmanaged.
        let memory_only = Reservation {
            cpu_mips: 0.0,
            memory_bytes: 64 * MIB,
        };
        assert!(offence("m", &memory_only, &usage(Some(5000.0), MIB)).is_none());
        assert!(offence("u", &Reservation::default(), &usage(Some(5000.0), 4096 * MIB)).is_none());
    }

    #[test]
    fn actions_serialize_tagged() {
        let action = Action::Terminate {
            identity: "hog".into(),
            reason: "r".into(),
        };
        let json = serde_json::to_value(&action).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"action": "terminate", "identity": "hog", "reason": "r"})
        );
        assert_eq!(serde_json::from_value::<Action>(json).unwrap(), action);
        assert_eq!(action.identity(), "hog");
        assert_eq!(action.reason(), "r");
        assert!(action.is_terminate());
    }
}
