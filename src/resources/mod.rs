//! Agents' resource contracts: execution requirements (`exereqs.json`), the machine they
//! are checked against, and admission against the platform's CPU and memory budget.
//!
//! After VOLTTRON's resource monitor (`volttron/platform/resmon.py`, VOLTTRON™
//! Restricted): see [`contract`] for the file and the machine facts, [`admission`] for
//! the budget, the reservations and the refusals.

pub mod admission;
pub mod cgroup;
pub mod contract;
pub mod enforcement;
pub mod monitor;
pub mod sandbox;
