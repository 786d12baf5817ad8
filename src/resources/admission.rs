//! Admission: whether an agent's contract fits what the platform can still grant.
//!
//! The platform grants a [`Budget`]: by default 80% of the machine's total BogoMIPS and
//! 50% of its `MemTotal` ([`BudgetPolicy`]; the shares attributed to VOLTTRON
//! Restricted's resource monitor, whose source is not public). Each admitted agent holds
//! a [`Reservation`] made from its contract's soft requirements; an agent is admitted
//! when its hard requirements match the [`Machine`] and its reservation fits in the
//! budget minus the other agents' reservations. Otherwise the [`Refusal`] names each failed term with the requested and
//! the available amounts:
//!
//! ```text
//! cannot start 'hog': cpu.bogomips requests 3000 MIPS, 1200 of 4800 available (budget 80% of 6000)
//! ```
//!
//! [`Admission`] is the ledger: [`check`](Admission::check) on install,
//! [`admit`](Admission::admit) on start, [`release`](Admission::release) when the agent
//! stops. Reservations are bookkeeping: nothing here limits what a running agent uses
//! (VOLTTRON Restricted put each agent in a cgroup limiting its CPU and memory;
//! VOLTTRON's open-source `resmon.py` reserves nothing and admits every soft request).
//!
//! ```
//! use volttron::resources::admission::{Admission, BudgetPolicy};
//! use volttron::resources::contract::{Contract, Machine};
//!
//! let machine = Machine {
//!     kernel_name: "Linux".into(),
//!     kernel_release: "6.8.0".into(),
//!     kernel_version: "#1 SMP".into(),
//!     architecture: "x86_64".into(),
//!     os: "GNU/Linux".into(),
//!     platform_version: "0.1.0".into(),
//!     memory_total_kb: 4_000_000,
//!     bogomips_total: 6000.0,
//! };
//! let mut ledger = Admission::new(&machine, BudgetPolicy::default());
//! let hog = Contract::parse(r#"{"requirements": {"cpu.bogomips": 5000}}"#, "hog/exereqs.json").unwrap();
//! let refusal = ledger.admit("hog", &hog, &machine).unwrap_err();
//! assert_eq!(
//!     refusal.to_string(),
//!     "cannot start 'hog': cpu.bogomips requests 5000 MIPS, 4800 of 4800 available (budget 80% of 6000)"
//! );
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::contract::{CPU_BOGOMIPS, Contract, CpuRequest, HardKey, HardValue, MEMORY_SOFT_LIMIT, Machine};

/// How far a CPU request may exceed what is available and still fit (float sums).
const MIPS_EPSILON: f64 = 1e-6;

/// The shares of the machine the platform grants to agents.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetPolicy {
    /// The share of the total BogoMIPS, in (0, 1].
    pub cpu_fraction: f64,
    /// The share of `MemTotal`, in (0, 1].
    pub memory_fraction: f64,
}

impl BudgetPolicy {
    /// VOLTTRON's shares: 80% of the BogoMIPS, 50% of the memory.
    pub const VOLTTRON: BudgetPolicy = BudgetPolicy {
        cpu_fraction: 0.8,
        memory_fraction: 0.5,
    };

    /// A policy with these shares, each in (0, 1].
    pub fn new(cpu_fraction: f64, memory_fraction: f64) -> Result<BudgetPolicy, InvalidPolicy> {
        let policy = BudgetPolicy {
            cpu_fraction,
            memory_fraction,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks that each share is in (0, 1].
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        for (term, value) in [("cpu", self.cpu_fraction), ("memory", self.memory_fraction)] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(InvalidPolicy { term, value });
            }
        }
        Ok(())
    }
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        BudgetPolicy::VOLTTRON
    }
}

/// A [`BudgetPolicy`] share outside (0, 1].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the {term} share of the budget must be in (0, 1], not {value}")]
pub struct InvalidPolicy {
    /// `cpu` or `memory`.
    pub term: &'static str,
    /// The share given.
    pub value: f64,
}

/// An amount of CPU and memory: what the platform grants, or what is left of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// MIPS.
    pub cpu_mips: f64,
    /// Bytes.
    pub memory_bytes: u64,
}

impl Budget {
    /// What `policy` grants of `machine`.
    pub fn new(machine: &Machine, policy: BudgetPolicy) -> Budget {
        Budget {
            cpu_mips: machine.bogomips_total * policy.cpu_fraction,
            memory_bytes: (machine.memory_total_bytes() as f64 * policy.memory_fraction) as u64,
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} MIPS, {} bytes", amount(self.cpu_mips), self.memory_bytes)
    }
}

/// What an admitted agent holds of the budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    /// MIPS (`cpu.bogomips`; a fraction is resolved against the machine's total).
    pub cpu_mips: f64,
    /// Bytes (`memory.soft_limit_in_bytes`).
    pub memory_bytes: u64,
}

impl Reservation {
    /// The reservation `contract` asks for on `machine` (0 for an absent term).
    pub fn for_contract(contract: &Contract, machine: &Machine) -> Reservation {
        Reservation {
            cpu_mips: contract
                .soft
                .cpu
                .map_or(0.0, |cpu| cpu.mips(machine.bogomips_total)),
            memory_bytes: contract.soft.memory_soft_limit.unwrap_or(0),
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.cpu_mips == 0.0 && self.memory_bytes == 0
    }
}

impl fmt::Display for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} MIPS, {} bytes", amount(self.cpu_mips), self.memory_bytes)
    }
}

/// One term of a contract the platform cannot grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "term", rename_all = "snake_case")]
pub enum RefusedTerm {
    /// A hard requirement that the machine does not meet.
    Hard {
        /// The fact.
        key: HardKey,
        /// What the contract requires.
        required: HardValue,
        /// What the machine has.
        actual: HardValue,
    },
    /// `cpu.bogomips` does not fit.
    Cpu {
        /// The request as written.
        request: CpuRequest,
        /// The request in MIPS.
        requested_mips: f64,
        /// What is left of the budget.
        available_mips: f64,
        /// The whole budget.
        budget_mips: f64,
        /// The machine's total BogoMIPS.
        total_mips: f64,
        /// The policy's share.
        budget_fraction: f64,
    },
    /// `memory.soft_limit_in_bytes` does not fit.
    Memory {
        /// The request.
        requested_bytes: u64,
        /// What is left of the budget.
        available_bytes: u64,
        /// The whole budget.
        budget_bytes: u64,
        /// The machine's `MemTotal`, in bytes.
        total_bytes: u64,
        /// The policy's share.
        budget_fraction: f64,
    },
}

impl fmt::Display for RefusedTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusedTerm::Hard {
                key,
                required,
                actual,
            } => {
                write!(f, "{key} requires {required}, this machine has {actual}")
            }
            RefusedTerm::Cpu {
                request,
                requested_mips,
                available_mips,
                budget_mips,
                total_mips,
                budget_fraction,
            } => {
                write!(f, "{CPU_BOGOMIPS} requests ")?;
                if let CpuRequest::Fraction(x) = request {
                    write!(f, "{x} × {} = ", amount(*total_mips))?;
                }
                write!(
                    f,
                    "{} MIPS, {} of {} available (budget {}% of {})",
                    amount(*requested_mips),
                    amount(*available_mips),
                    amount(*budget_mips),
                    amount(budget_fraction * 100.0),
                    amount(*total_mips),
                )
            }
            RefusedTerm::Memory {
                requested_bytes,
                available_bytes,
                budget_bytes,
                total_bytes,
                budget_fraction,
            } => {
                write!(
                    f,
                    "{MEMORY_SOFT_LIMIT} requests {requested_bytes} bytes, {available_bytes} of {budget_bytes} \
                     available (budget {}% of {total_bytes})",
                    amount(budget_fraction * 100.0),
                )
            }
        }
    }
}

/// A contract the platform cannot grant: the agent does not start (or install).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub struct Refusal {
    /// The agent, once known ([`for_agent`](Self::for_agent)).
    pub agent: Option<String>,
    /// Every failed term: the hard ones, or else the soft ones.
    pub terms: Vec<RefusedTerm>,
}

impl Refusal {
    /// The same refusal, naming `identity`.
    pub fn for_agent(mut self, identity: &str) -> Refusal {
        self.agent = Some(identity.to_owned());
        self
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.agent {
            Some(agent) => write!(f, "cannot start '{agent}': ")?,
            None => f.write_str("contract refused: ")?,
        }
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{term}")?;
        }
        Ok(())
    }
}

/// The ledger of reservations held by running agents.
///
/// The budget is recomputed from the [`Machine`] given to each [`check`](Self::check)
/// and [`admit`](Self::admit); [`admit`](Self::admit) keeps it for
/// [`available`](Self::available).
#[derive(Debug, Clone)]
pub struct Admission {
    policy: BudgetPolicy,
    total_mips: f64,
    total_memory_bytes: u64,
    agents: BTreeMap<String, Reservation>,
}

impl Admission {
    /// An empty ledger granting `policy`'s shares of `machine`.
    pub fn new(machine: &Machine, policy: BudgetPolicy) -> Admission {
        Admission {
            policy,
            total_mips: machine.bogomips_total,
            total_memory_bytes: machine.memory_total_bytes(),
            agents: BTreeMap::new(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> BudgetPolicy {
        self.policy
    }

    /// The whole budget.
    pub fn budget(&self) -> Budget {
        self.budget_of(self.total_mips, self.total_memory_bytes)
    }

    fn budget_of(&self, total_mips: f64, total_memory_bytes: u64) -> Budget {
        Budget {
            cpu_mips: total_mips * self.policy.cpu_fraction,
            memory_bytes: (total_memory_bytes as f64 * self.policy.memory_fraction) as u64,
        }
    }

    /// Whether `identity` could be admitted with `contract` on `machine` now, reserving
    /// nothing (for install). `identity`'s own reservation, if any, counts as free.
    pub fn check(
        &self,
        identity: &str,
        contract: &Contract,
        machine: &Machine,
    ) -> Result<Reservation, Refusal> {
        contract.check_hard(machine).map_err(|r| r.for_agent(identity))?;
        let wanted = Reservation::for_contract(contract, machine);
        let total_memory_bytes = machine.memory_total_bytes();
        let budget = self.budget_of(machine.bogomips_total, total_memory_bytes);
        let others = self.reserved_except(Some(identity));
        let available = remaining(budget, others);
        let mut terms = Vec::new();
        if let Some(request) = contract.soft.cpu
            && wanted.cpu_mips > available.cpu_mips + MIPS_EPSILON
        {
            terms.push(RefusedTerm::Cpu {
                request,
                requested_mips: wanted.cpu_mips,
                available_mips: available.cpu_mips,
                budget_mips: budget.cpu_mips,
                total_mips: machine.bogomips_total,
                budget_fraction: self.policy.cpu_fraction,
            });
        }
        if wanted.memory_bytes > available.memory_bytes {
            terms.push(RefusedTerm::Memory {
                requested_bytes: wanted.memory_bytes,
                available_bytes: available.memory_bytes,
                budget_bytes: budget.memory_bytes,
                total_bytes: total_memory_bytes,
                budget_fraction: self.policy.memory_fraction,
            });
        }
        if terms.is_empty() {
            Ok(wanted)
        } else {
            Err(Refusal {
                agent: Some(identity.to_owned()),
                terms,
            })
        }
    }

    /// Admits `identity` (on start): hard requirements first, then the soft ones against
    /// what is left of the budget. On success the reservation is recorded, replacing any
    /// earlier one of `identity` (admitting twice is the same as once); on refusal the
    /// ledger is unchanged.
    pub fn admit(
        &mut self,
        identity: &str,
        contract: &Contract,
        machine: &Machine,
    ) -> Result<Reservation, Refusal> {
        let reservation = self.check(identity, contract, machine)?;
        self.total_mips = machine.bogomips_total;
        self.total_memory_bytes = machine.memory_total_bytes();
        self.agents.insert(identity.to_owned(), reservation);
        Ok(reservation)
    }

    /// Frees `identity`'s reservation (the agent stopped); returns it.
    pub fn release(&mut self, identity: &str) -> Option<Reservation> {
        self.agents.remove(identity)
    }

    /// `identity`'s reservation, if it is admitted.
    pub fn reserved(&self, identity: &str) -> Option<Reservation> {
        self.agents.get(identity).copied()
    }

    /// Every admitted agent's reservation, by identity.
    pub fn reservations(&self) -> impl Iterator<Item = (&str, Reservation)> + '_ {
        self.agents.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// The sum of all reservations.
    pub fn reserved_total(&self) -> Reservation {
        self.reserved_except(None)
    }

    fn reserved_except(&self, skip: Option<&str>) -> Reservation {
        self.agents.iter().filter(|(k, _)| Some(k.as_str()) != skip).fold(
            Reservation::default(),
            |sum, (_, r)| Reservation {
                cpu_mips: sum.cpu_mips + r.cpu_mips,
                memory_bytes: sum.memory_bytes.saturating_add(r.memory_bytes),
            },
        )
    }

    /// What is left of the budget (never negative).
    pub fn available(&self) -> Budget {
        remaining(self.budget(), self.reserved_total())
    }

    /// Everything, for `vctl status` and the control RPCs.
    pub fn summary(&self) -> AdmissionSummary {
        AdmissionSummary {
            policy: self.policy,
            total_mips: self.total_mips,
            total_memory_bytes: self.total_memory_bytes,
            budget: self.budget(),
            reserved: self.reserved_total(),
            available: self.available(),
            agents: self.agents.clone(),
        }
    }
}

fn remaining(budget: Budget, reserved: Reservation) -> Budget {
    Budget {
        cpu_mips: (budget.cpu_mips - reserved.cpu_mips).max(0.0),
        memory_bytes: budget.memory_bytes.saturating_sub(reserved.memory_bytes),
    }
}

/// The ledger's state, serializable for RPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdmissionSummary {
    /// The policy.
    pub policy: BudgetPolicy,
    /// The machine's total BogoMIPS.
    pub total_mips: f64,
    /// The machine's `MemTotal`, in bytes.
    pub total_memory_bytes: u64,
    /// The whole budget.
    pub budget: Budget,
    /// The sum of all reservations.
    pub reserved: Reservation,
    /// What is left.
    pub available: Budget,
    /// Each admitted agent's reservation.
    pub agents: BTreeMap<String, Reservation>,
}

/// An amount for messages: rounded to two decimals, without a fraction when whole.
pub(crate) fn amount(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    if r.fract() == 0.0 && r.abs() < 1e15 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_rounded_for_messages() {
        assert_eq!(amount(4800.000000000001), "4800");
        assert_eq!(amount(0.8 * 100.0), "80");
        assert_eq!(amount(1557.672), "1557.67");
        assert_eq!(amount(0.0), "0");
    }

    #[test]
    fn policy_shares_must_be_in_range() {
        assert_eq!(
            BudgetPolicy::default(),
            BudgetPolicy {
                cpu_fraction: 0.8,
                memory_fraction: 0.5
            }
        );
        assert!(BudgetPolicy::new(1.0, 0.1).is_ok());
        let err = BudgetPolicy::new(0.0, 0.5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the cpu share of the budget must be in (0, 1], not 0"
        );
        let err = BudgetPolicy::new(0.5, f64::NAN).unwrap_err();
        assert_eq!(err.term, "memory");
        assert!(BudgetPolicy::new(0.5, 1.5).is_err());
    }
}
