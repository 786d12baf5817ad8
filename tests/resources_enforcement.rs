//! Enforcement of resource contracts under pressure, with constructed usages (no
//! processes): an idle machine acts on nobody; under pressure offenders are warned worst
//! first, then terminated after `warn_rounds`, one per round, in ratio order; agents within
//! their contract and unmanaged agents are never acted on; counters reset when the pressure
//! ends or the agent stops offending; gone agents are forgotten; CPU pressure comes from the
//! sum of the agents' usage against the budget.

use volttron::resources::admission::Reservation;
use volttron::resources::enforcement::{
    Action, Enforcer, PressurePolicy, PressureReason, cpu_demand_mips, pressure,
};
use volttron::resources::monitor::{Accounting, AgentUsage, ProcessKey};

const MB: u64 = 1 << 20;

/// Memory pressure below 200 MB available, CPU pressure above the budget, two warned rounds.
fn policy() -> PressurePolicy {
    PressurePolicy {
        memory_available_below: 200 * MB,
        cpu_demand_above_budget: true,
        warn_rounds: 2,
    }
}

/// 180 MB available: memory pressure by [`policy`].
fn memory_pressure() -> Option<PressureReason> {
    let reason = pressure(&policy(), 180 * MB, 100.0, 4800.0);
    assert!(matches!(reason, Some(PressureReason::Memory(_))));
    reason
}

/// An agent of `pid` using `cpu_mips` and `rss_mb`, with a reservation of `contract_mips` and
/// `contract_mb`.
fn agent(
    identity: &str,
    pid: u32,
    contract_mips: f64,
    contract_mb: u64,
    cpu_mips: f64,
    rss_mb: u64,
) -> (String, Reservation, AgentUsage) {
    (
        identity.to_owned(),
        Reservation {
            cpu_mips: contract_mips,
            memory_bytes: contract_mb * MB,
        },
        AgentUsage {
            identity: identity.to_owned(),
            key: ProcessKey {
                pid,
                start_time: 1000 + u64::from(pid),
            },
            gone: false,
            cpu_percent_of_core: Some(cpu_mips / 50.0),
            cpu_mips: Some(cpu_mips),
            rss_bytes: rss_mb * MB,
            processes: 1,
            accounting: Accounting::Procfs,
        },
    )
}

/// The same agent, its process gone.
fn gone(mut entry: (String, Reservation, AgentUsage)) -> (String, Reservation, AgentUsage) {
    entry.2.gone = true;
    entry.2.cpu_mips = None;
    entry.2.cpu_percent_of_core = None;
    entry.2.rss_bytes = 0;
    entry.2.processes = 0;
    entry
}

/// `(kind, identity)` of each action.
fn summary(actions: &[Action]) -> Vec<(&'static str, &str)> {
    actions
        .iter()
        .map(|a| {
            let kind = if a.is_terminate() { "terminate" } else { "warn" };
            (kind, a.identity())
        })
        .collect()
}

/// Three offenders: `hog` 8.0x, `fat` 4.0x, `big` 2.0x (memory), and a well-behaved agent.
fn crowd() -> Vec<(String, Reservation, AgentUsage)> {
    vec![
        agent("big", 3, 100.0, 100, 50.0, 200),
        agent("fine", 4, 100.0, 100, 90.0, 90),
        agent("hog", 1, 100.0, 64, 50.0, 512),
        agent("fat", 2, 100.0, 50, 50.0, 200),
    ]
}

#[test]
fn idle_machine_acts_on_nobody_even_offenders() {
    let mut enforcer = Enforcer::new(policy());
    let agents = crowd();
    assert_eq!(pressure(&policy(), 2000 * MB, 100.0, 4800.0), None);
    for _ in 0..10 {
        assert!(enforcer.round(None, &agents).is_empty());
    }
    assert_eq!(enforcer.warned().count(), 0);
}

#[test]
fn pressure_warns_worst_first_then_terminates_after_warn_rounds() {
    let mut enforcer = Enforcer::new(policy());
    let agents = vec![agent("hog", 1, 100.0, 64, 50.0, 512)];
    let actions = enforcer.round(memory_pressure(), &agents);
    assert_eq!(
        actions,
        [Action::Warn {
            identity: "hog".into(),
            reason: "memory pressure (MemAvailable 180 MB < 200 MB): 'hog' uses 512 MB RSS against a 64 MB \
                     contract (8.0x)"
                .into(),
        }]
    );
    // One round after the warning: nothing more.
    assert!(enforcer.round(memory_pressure(), &agents).is_empty());
    assert_eq!(enforcer.warned().collect::<Vec<_>>(), [("hog", 1)]);
    // Two rounds after the warning: terminated.
    let actions = enforcer.round(memory_pressure(), &agents);
    assert_eq!(
        actions,
        [Action::Terminate {
            identity: "hog".into(),
            reason: "memory pressure (MemAvailable 180 MB < 200 MB): 'hog' uses 512 MB RSS against a 64 MB \
                     contract (8.0x), over its contract under pressure for 3 rounds"
                .into(),
        }]
    );
    assert_eq!(enforcer.warned().count(), 0);
    assert_eq!(enforcer.terminating().collect::<Vec<_>>(), ["hog"]);
}

#[test]
fn offenders_are_warned_together_worst_first_and_terminated_one_per_round_in_ratio_order() {
    let mut enforcer = Enforcer::new(policy());
    let mut agents = crowd();
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &agents)),
        [("warn", "hog"), ("warn", "fat"), ("warn", "big")]
    );
    assert!(enforcer.round(memory_pressure(), &agents).is_empty());
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &agents)),
        [("terminate", "hog")]
    );
    // The control service killed it: gone this round. Next worst.
    agents[2] = gone(agents[2].clone());
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &agents)),
        [("terminate", "fat")]
    );
    // The control service no longer lists it.
    agents.retain(|(identity, _, _)| identity != "fat" && identity != "hog");
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &agents)),
        [("terminate", "big")]
    );
    agents.retain(|(identity, _, _)| identity != "big");
    for _ in 0..5 {
        assert!(enforcer.round(memory_pressure(), &agents).is_empty());
    }
}

#[test]
fn no_second_termination_while_the_first_agent_is_still_running() {
    let mut enforcer = Enforcer::new(PressurePolicy {
        warn_rounds: 0,
        ..policy()
    });
    let agents = crowd();
    // warn_rounds 0: warned and terminated in the same round.
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &agents)),
        [
            ("warn", "hog"),
            ("terminate", "hog"),
            ("warn", "fat"),
            ("warn", "big")
        ]
    );
    // hog is still listed with the same process (in its grace period): nobody else is
    // terminated, and hog is not acted on again.
    for _ in 0..3 {
        assert!(enforcer.round(memory_pressure(), &agents).is_empty());
    }
    assert_eq!(enforcer.terminating().collect::<Vec<_>>(), ["hog"]);
    let mut after = agents.clone();
    after[2] = gone(after[2].clone());
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &after)),
        [("terminate", "fat")]
    );
    assert_eq!(enforcer.terminating().collect::<Vec<_>>(), ["fat"]);
    // Stopped by hand: forget() releases the hold at once (it would be a new offence if it
    // were still listed).
    enforcer.forget("fat");
    assert_eq!(enforcer.terminating().count(), 0);
    after.retain(|(identity, _, _)| identity != "fat");
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &after)),
        [("terminate", "big")]
    );
}

#[test]
fn agents_within_their_contract_are_never_acted_on() {
    let mut enforcer = Enforcer::new(PressurePolicy {
        warn_rounds: 0,
        ..policy()
    });
    let agents = vec![
        agent("fine", 4, 100.0, 100, 90.0, 90),
        agent("exact", 5, 100.0, 100, 100.0, 100),
    ];
    let both = pressure(&policy(), 0, 1e9, 4800.0);
    assert!(matches!(both, Some(PressureReason::MemoryAndCpu { .. })));
    for _ in 0..5 {
        assert!(enforcer.round(both, &agents).is_empty());
    }
}

#[test]
fn unmanaged_agents_are_never_acted_on() {
    let mut enforcer = Enforcer::new(PressurePolicy {
        warn_rounds: 0,
        ..policy()
    });
    let mut unmanaged = agent("wild", 6, 0.0, 0, 9000.0, 8000);
    unmanaged.1 = Reservation::default();
    assert!(unmanaged.1.is_empty());
    // A memory-only contract does not enforce CPU.
    let memory_only = agent("memonly", 7, 0.0, 100, 9000.0, 50);
    let agents = vec![unmanaged, memory_only];
    let both = pressure(&policy(), 0, 18000.0, 4800.0);
    for _ in 0..5 {
        assert!(enforcer.round(both, &agents).is_empty());
    }
}

#[test]
fn counters_reset_when_the_pressure_ends() {
    let mut enforcer = Enforcer::new(policy());
    let agents = vec![agent("hog", 1, 100.0, 64, 50.0, 512)];
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &agents)),
        [("warn", "hog")]
    );
    assert!(enforcer.round(memory_pressure(), &agents).is_empty());
    // Pressure ends for a round: the offence is forgotten.
    assert!(enforcer.round(None, &agents).is_empty());
    assert_eq!(enforcer.warned().count(), 0);
    // A new episode: warned again, and the full warn_rounds again before termination.
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &agents)),
        [("warn", "hog")]
    );
    assert!(enforcer.round(memory_pressure(), &agents).is_empty());
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &agents)),
        [("terminate", "hog")]
    );
}

#[test]
fn counters_reset_when_the_agent_stops_offending() {
    let mut enforcer = Enforcer::new(policy());
    let offending = vec![agent("hog", 1, 100.0, 64, 50.0, 512)];
    let within = vec![agent("hog", 1, 100.0, 64, 50.0, 60)];
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &offending)),
        [("warn", "hog")]
    );
    assert!(enforcer.round(memory_pressure(), &offending).is_empty());
    assert!(enforcer.round(memory_pressure(), &within).is_empty());
    assert_eq!(enforcer.warned().count(), 0);
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &offending)),
        [("warn", "hog")]
    );
    assert!(enforcer.round(memory_pressure(), &offending).is_empty());
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &offending)),
        [("terminate", "hog")]
    );
}

#[test]
fn gone_agents_are_forgotten() {
    let mut enforcer = Enforcer::new(policy());
    let hog = agent("hog", 1, 100.0, 64, 50.0, 512);
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), std::slice::from_ref(&hog))),
        [("warn", "hog")]
    );
    assert!(enforcer.round(memory_pressure(), &[gone(hog.clone())]).is_empty());
    assert_eq!(enforcer.warned().count(), 0);
    // Back (same process record for the test's sake): a new offence, warned again.
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), std::slice::from_ref(&hog))),
        [("warn", "hog")]
    );
    // Absent from the list: forgotten too.
    assert!(enforcer.round(memory_pressure(), &[]).is_empty());
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), std::slice::from_ref(&hog))),
        [("warn", "hog")]
    );
    // Restarted (another process): a new offence.
    let restarted = agent("hog", 99, 100.0, 64, 50.0, 512);
    assert_eq!(
        summary(&enforcer.round(memory_pressure(), &[restarted])),
        [("warn", "hog")]
    );
}

#[test]
fn cpu_demand_pressure_comes_from_the_sum_of_usages_against_the_budget() {
    let policy = policy();
    let budget = 4800.0;
    let spin = agent("spin", 1, 600.0, 100, 2400.0, 10);
    let busy = agent("busy", 2, 1000.0, 100, 1500.0, 10);
    let calm = agent("calm", 3, 1000.0, 100, 900.0, 10);
    let mut first_round = agent("new", 4, 100.0, 100, 0.0, 10);
    first_round.2.cpu_mips = None;
    let wild = {
        let mut a = agent("wild", 5, 0.0, 0, 400.0, 10);
        a.1 = Reservation::default();
        a
    };
    let dead = gone(agent("dead", 6, 100.0, 100, 0.0, 0));
    let agents = vec![spin, busy, calm, first_round, wild, dead];
    // 2400 + 1500 + 900 + 400 (unmanaged agents use CPU too) = 5200 > 4800.
    let demand = cpu_demand_mips(agents.iter().map(|(_, _, usage)| usage));
    assert_eq!(demand, 5200.0);
    let reason = pressure(&policy, u64::MAX, demand, budget);
    assert_eq!(
        reason.map(|r| r.to_string()).as_deref(),
        Some("CPU pressure (agents use 5200 MIPS > 4800 MIPS budget)")
    );
    // Within the budget: no pressure; with the CPU term off: none either.
    assert_eq!(pressure(&policy, u64::MAX, demand, 5200.0), None);
    let off = PressurePolicy {
        cpu_demand_above_budget: false,
        ..policy
    };
    assert_eq!(pressure(&off, u64::MAX, demand, budget), None);

    let mut enforcer = Enforcer::new(policy);
    let actions = enforcer.round(reason, &agents);
    assert_eq!(summary(&actions), [("warn", "spin"), ("warn", "busy")]);
    assert_eq!(
        actions[0].reason(),
        "CPU pressure (agents use 5200 MIPS > 4800 MIPS budget): 'spin' uses 2400 MIPS against a 600 MIPS \
         contract (4.0x)"
    );
    assert_eq!(
        actions[1].reason(),
        "CPU pressure (agents use 5200 MIPS > 4800 MIPS budget): 'busy' uses 1500 MIPS against a 1000 MIPS \
         contract (1.5x)"
    );
}

#[test]
fn default_policy_follows_the_machine() {
    let machine = volttron::resources::contract::Machine {
        kernel_name: "Linux".into(),
        kernel_release: "6.8.0".into(),
        kernel_version: "#1 SMP".into(),
        architecture: "x86_64".into(),
        os: "GNU/Linux".into(),
        platform_version: "0.1.0".into(),
        memory_total_kb: 4_000_000,
        bogomips_total: 6000.0,
    };
    let policy = PressurePolicy::for_machine(&machine);
    assert_eq!(policy.memory_available_below, 400_000 * 1024);
    assert!(policy.cpu_demand_above_budget);
    assert_eq!(policy.warn_rounds, 2);
    assert_eq!(Enforcer::new(policy).policy(), policy);
}
