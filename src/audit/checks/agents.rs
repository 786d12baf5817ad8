//! Installed agents: isolation and resource contracts.
//!
//! | condition | finding |
//! |-----------|---------|
//! | `agent-isolation-mode` off, agents installed | medium: every agent runs as the platform's user and can read its keys and every other agent's files |
//! | `agent-isolation-mode` off, no agent installed | low |
//! | an installed agent without `exereqs.json` (or `execreqs.json`) | low, one per agent: nothing reserves or bounds its CPU and memory |

use crate::audit::report::{Check, Finding, Severity};
use crate::home::config::PlatformConfig;
use crate::home::install::InstalledAgent;

/// The finding about isolation being off, given the installed `agents`.
pub(crate) fn check_isolation(config: &PlatformConfig, agents: &[InstalledAgent], out: &mut Vec<Finding>) {
    if config.agent_isolation_mode != Some(true) {
        let (severity, evidence) = if agents.is_empty() {
            (
                Severity::Low,
                "agent-isolation-mode is off: agents installed later will run as the platform's user"
                    .to_owned(),
            )
        } else {
            let names: Vec<&str> = agents.iter().map(|a| a.identity.as_str()).collect();
            (
                Severity::Medium,
                format!(
                    "agent-isolation-mode is off: {} installed agent(s) run as the platform's user and can read \
                     its keys and every other agent's files: {}",
                    agents.len(),
                    names.join(", ")
                ),
            )
        };
        out.push(Finding::new(
            Check::AgentIsolation,
            severity,
            evidence,
            "set `agent-isolation-mode = True` in the config and run the platform with the privileges it needs \
             (see volttron::control::isolation)",
        ));
    }
}

/// The findings about installed `agents` without a resource contract.
pub(crate) fn check_contracts(agents: &[InstalledAgent], out: &mut Vec<Finding>) {
    for agent in agents.iter().filter(|a| a.exereqs.is_none()) {
        out.push(Finding::new(
            Check::ResourceContract,
            Severity::Low,
            format!(
                "agent {} has no resource contract ({}/exereqs.json): nothing reserves or bounds its CPU and memory",
                agent.identity,
                agent.dir.display()
            ),
            format!(
                "write its contract, e.g. `echo '{{\"requirements\": {{\"cpu.bogomips\": 100, \
                 \"memory.soft_limit_in_bytes\": 100000000}}}}' > {}/exereqs.json`, then `vctl restart {}`",
                agent.dir.display(),
                agent.identity
            ),
        ));
    }
}
