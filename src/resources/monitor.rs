//! What each agent uses: CPU and resident memory of an agent's process and everything it
//! spawned, read from `/proc` with the [`procfs`] crate, or from the agent's own cgroup when
//! it has one (see [Accounting from a cgroup](#accounting-from-a-cgroup)).
//!
//! * [`ProcessKey`] names a process by pid **and** start time (field 22 of
//!   `/proc/<pid>/stat`), so a pid the kernel has handed to another process is never taken
//!   for the agent that had it.
//! * [`MonitoredAgent`] is what the sampler is told of an agent: its identity, its root
//!   process and, if it has one, where its cgroup's figures are read.
//! * [`Sampler`] reads one round: for every agent, its root process and all its
//!   descendants (or its cgroup), CPU since the previous round (as % of one core and as
//!   BogoMIPS) and RSS; [`AgentUsage::accounting`] says which way.
//! * [`Monitor`] runs a [`Sampler`] on a thread of its own (never a tokio or actix thread)
//!   at an interval; its [`MonitorHandle`] takes the list of agents and hands out the latest
//!   figures.
//!
//! # How descendants are found
//!
//! Where the kernel has `/proc/<pid>/task/<tid>/children` (`CONFIG_PROC_CHILDREN`, present in
//! every mainstream distribution kernel), each process's children are read from there, for
//! each of its threads (a child belongs to the thread that forked it). The cost is then
//! proportional to the agents' own processes and threads, not to everything running on the
//! machine. Without that file, the sampler scans `/proc/*/stat` once per round (not once per
//! agent) and builds a parent → children map. Either way each descendant is re-read through
//! a handle on its own `/proc/<pid>` directory and kept only if its parent pid is the process
//! it was found under and it started no earlier than that parent, so a pid reused between
//! the listing and the read is never counted.
//!
//! # How CPU is counted
//!
//! For each process of the tree, `utime + stime` (its own threads, live and exited) and
//! `cutime + cstime` (children it has reaped) are compared with the previous round's figures
//! for the same [`ProcessKey`]. A process seen for the first time counts in full if it
//! started after the previous round, and not at all otherwise (its past is unknown). A
//! process seen last round that has since ended has its last-seen figures subtracted: its
//! final figures reappear in the reaped time of the tree process that reaped it. So a child
//! that lives and dies between two rounds is still counted, through its parent. A process
//! that left the tree alive (re-parented to init when its parent died) simply stops being
//! counted. Short races (a reap between two reads of the same round) move a few ticks from
//! one round to the next; a round never reports less than zero.
//!
//! # How memory is counted
//!
//! RSS is the sum over the tree of `/proc/<pid>/statm` resident pages × the page size, as
//! `VmRSS` is. Pages shared between processes of the tree (a forked child's copy-on-write
//! pages, shared libraries) count once per process, so the sum can over-state what the tree
//! holds in physical memory, never under-state it.
//!
//! # Accounting from a cgroup
//!
//! An agent given with a [`CgroupAccounting`] (its [`AgentCgroup`]'s,
//! [`AgentCgroup::accounting`]) is measured from its group instead of its process tree:
//!
//! * **why**: the kernel accounts for every process in the group, and a process stays in
//!   its group when it leaves the tree. A daemon that double-forks (re-parented to init) is
//!   invisible to the tree walk and still counted by the group; so is a child that ended
//!   between rounds, with no reaped-time bookkeeping.
//! * **cost**: a few small file reads per agent (the CPU counter, `memory.stat`, the memory
//!   usage, `cgroup.procs`; see [`CgroupAccounting::read`]) and one read of the root's
//!   `/proc/<pid>/stat`, whatever the number of processes and threads, instead of a walk of
//!   the tree.
//! * **CPU**: the group's CPU time (nanoseconds) minus the previous round's, over the time
//!   between the rounds, as % of one core and in BogoMIPS exactly as procfs figures are.
//! * **memory**: [`AgentUsage::rss_bytes`] is the group's
//!   [`resident_bytes`](crate::resources::cgroup::CgroupUsage::resident_bytes), anonymous
//!   plus mapped file memory, not the page cache the group is also charged for (see the
//!   [cgroup module docs](crate::resources::cgroup#accounting) for how it compares with
//!   summed RSS: shared pages count once, so it is the lower figure).
//! * **processes**: the group's processes, escaped ones included.
//!
//! The root [`ProcessKey`] still decides [`AgentUsage::gone`]: the group may outlive the
//! agent (a daemon left behind), but the agent is its root process. When the group's
//! figures cannot be read (the group was removed, a v1 machine without `cpuacct`, no CPU,
//! memory or process figure) or the group holds no process (the root is not in it), that
//! round measures the tree through procfs, and [`AgentUsage::accounting`] says
//! [`Procfs`](Accounting::Procfs). A round that accounts differently from the previous one
//! has no CPU figure, as a first round: one way's baseline says nothing about the other's.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use procfs::Current;
use procfs::process::Process;
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::resources::cgroup::AgentCgroup;
use crate::resources::cgroup::CgroupAccounting;

/// A process, named so that it cannot be confused with a later process given the same pid:
/// its pid and its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessKey {
    /// The process id.
    pub pid: u32,
    /// When the process started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
    pub start_time: u64,
}

impl ProcessKey {
    /// The key of the process that has `pid` now; `None` if there is no such process (or no
    /// `/proc`).
    pub fn of(pid: u32) -> Option<ProcessKey> {
        let process = Process::new(i32::try_from(pid).ok()?).ok()?;
        let stat = process.stat().ok()?;
        Some(ProcessKey {
            pid,
            start_time: stat.starttime,
        })
    }

    /// Whether this very process (same pid, same start time) still exists. A zombie (ended,
    /// not yet reaped) still exists.
    pub fn is_alive(&self) -> bool {
        ProcessKey::of(self.pid) == Some(*self)
    }

    /// Whether this very process is still running: alive and not a zombie.
    pub fn is_running(&self) -> bool {
        self.is_alive()
            && !matches!(
                crate::control::process::process_state(self.pid),
                Some('Z' | 'X') | None
            )
    }
}

/// An agent as a [`Sampler`] (or [`MonitorHandle::set_agents`]) is told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoredAgent {
    /// The agent's identity.
    pub identity: String,
    /// The agent's root process: the agent is [gone](AgentUsage::gone) when it is.
    pub key: ProcessKey,
    /// Where the agent's cgroup's figures are read ([`AgentCgroup::accounting`]); `None`:
    /// the agent is measured through procfs (see the [module documentation](self)).
    pub cgroup: Option<CgroupAccounting>,
}

impl From<(String, ProcessKey)> for MonitoredAgent {
    /// An agent measured through procfs.
    fn from((identity, key): (String, ProcessKey)) -> MonitoredAgent {
        MonitoredAgent {
            identity,
            key,
            cgroup: None,
        }
    }
}

/// Where an [`AgentUsage`]'s figures come from (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accounting {
    /// The agent's process tree, read from `/proc` (also for an agent that is gone).
    #[default]
    Procfs,
    /// The agent's cgroup: every process in the group, in the tree or not.
    Cgroup,
}

/// One agent's figures from one round of a [`Sampler`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentUsage {
    /// The agent's identity, as given to [`Sampler::sample`].
    pub identity: String,
    /// The agent's root process, as given to [`Sampler::sample`].
    pub key: ProcessKey,
    /// The root process is gone: no process has that pid, or the pid now belongs to a
    /// process with another start time. All figures are then empty.
    pub gone: bool,
    /// CPU used by the agent's processes since the previous round, in % of one core (above
    /// 100 when it keeps more than one core busy). `None` on the first round that sees this
    /// [`ProcessKey`] under this identity.
    pub cpu_percent_of_core: Option<f64>,
    /// The same CPU figure in BogoMIPS: `cpu_percent_of_core` × BogoMIPS per core / 100.
    /// `None` on the first round, or if the sampler does not know the BogoMIPS per core.
    pub cpu_mips: Option<f64>,
    /// Resident memory of the agent's processes, in bytes (procfs: summed over processes;
    /// cgroup: the group's resident memory; see the [module documentation](self) on shared
    /// pages).
    pub rss_bytes: u64,
    /// How many processes the agent has: procfs, its root and all descendants found this
    /// round; cgroup, the processes in its group.
    pub processes: usize,
    /// Where these figures come from. Absent from older serialized figures: procfs.
    #[serde(default)]
    pub accounting: Accounting,
}

/// Usage over contract, from [`AgentUsage::ratio`]: 1.0 is exactly the contract.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UsageRatio {
    /// CPU used / contracted CPU; `None` when usage is not known yet or the contract has no
    /// (positive) CPU.
    pub cpu: Option<f64>,
    /// RSS / contracted memory; `None` when the contract has no memory.
    pub memory: Option<f64>,
}

impl AgentUsage {
    /// The figures of an agent whose root process is gone.
    fn for_gone(identity: &str, key: ProcessKey) -> AgentUsage {
        AgentUsage {
            identity: identity.to_owned(),
            key,
            gone: true,
            cpu_percent_of_core: None,
            cpu_mips: None,
            rss_bytes: 0,
            processes: 0,
            accounting: Accounting::Procfs,
        }
    }

    /// CPU used over `contract_cpu_mips` (both in BogoMIPS); `None` if CPU usage is not known
    /// yet or the contract is not a positive number.
    pub fn cpu_ratio(&self, contract_cpu_mips: f64) -> Option<f64> {
        let used = self.cpu_mips?;
        (contract_cpu_mips.is_finite() && contract_cpu_mips > 0.0).then(|| used / contract_cpu_mips)
    }

    /// RSS over `contract_memory_bytes`; `None` if the contract is zero.
    pub fn memory_ratio(&self, contract_memory_bytes: u64) -> Option<f64> {
        (contract_memory_bytes > 0).then(|| self.rss_bytes as f64 / contract_memory_bytes as f64)
    }

    /// Both ratios of usage to a contract of `contract_cpu_mips` BogoMIPS and
    /// `contract_memory_bytes` bytes.
    pub fn ratio(&self, contract_cpu_mips: f64, contract_memory_bytes: u64) -> UsageRatio {
        UsageRatio {
            cpu: self.cpu_ratio(contract_cpu_mips),
            memory: self.memory_ratio(contract_memory_bytes),
        }
    }
}

/// The average of the `bogomips` lines of `/proc/cpuinfo` (`BogoMIPS` on ARM): the speed of
/// one core in the unit CPU contracts are written in. `None` if the file has no such line
/// (some architectures do not report it). Read once, then cached.
pub fn bogomips_per_core() -> Option<f64> {
    static CACHED: OnceLock<Option<f64>> = OnceLock::new();
    *CACHED.get_or_init(|| parse_bogomips(&std::fs::read_to_string("/proc/cpuinfo").ok()?))
}

fn parse_bogomips(cpuinfo: &str) -> Option<f64> {
    let values: Vec<f64> = cpuinfo
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            if !key.trim().eq_ignore_ascii_case("bogomips") {
                return None;
            }
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// How a round finds descendants (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// `/proc/<pid>/task/<tid>/children`.
    Children,
    /// One scan of `/proc/*/stat` per round.
    Scan,
}

impl Walk {
    fn detect() -> Walk {
        let children = Process::myself()
            .and_then(|me| me.task_main_thread())
            .and_then(|t| t.children());
        if children.is_ok() {
            Walk::Children
        } else {
            Walk::Scan
        }
    }
}

/// A process's CPU figures at one round, in clock ticks.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    /// `utime + stime`.
    own: u64,
    /// `cutime + cstime`.
    reaped: u64,
}

impl Ticks {
    fn total(self) -> u64 {
        self.own.saturating_add(self.reaped)
    }
}

/// One process of an agent's tree, as read this round.
#[derive(Debug, Clone)]
struct ProcRecord {
    key: ProcessKey,
    ppid: u32,
    ticks: Ticks,
    rss_pages: u64,
    threads: i64,
}

/// What a [`Sampler`] keeps of an agent's previous round.
#[derive(Debug)]
struct Previous {
    key: ProcessKey,
    at: Instant,
    baseline: Baseline,
}

/// The CPU figures of an agent's previous round, the way it was accounted.
#[derive(Debug)]
enum Baseline {
    /// Its process tree.
    Procfs(TreeBaseline),
    /// Its cgroup's CPU time, in nanoseconds.
    Cgroup { cpu_nanos: u64 },
}

/// A process tree's CPU figures at a round.
#[derive(Debug)]
struct TreeBaseline {
    /// Clock ticks since boot when that round began (`None` if `/proc/uptime` was unreadable).
    uptime_ticks: Option<u64>,
    processes: HashMap<ProcessKey, Ticks>,
}

/// One agent's figures for one round, however accounted, and the baseline for the next.
struct Measured {
    cpu_percent_of_core: Option<f64>,
    rss_bytes: u64,
    processes: usize,
    accounting: Accounting,
    baseline: Baseline,
}

/// A cgroup's figures for one round, all read.
#[derive(Debug, Clone, Copy)]
struct GroupFigures {
    cpu_nanos: u64,
    resident_bytes: u64,
    processes: usize,
}

impl GroupFigures {
    /// The group's figures, if it has all of them and holds at least one process.
    fn read(cgroup: &CgroupAccounting) -> Option<GroupFigures> {
        let usage = cgroup.read();
        Some(GroupFigures {
            cpu_nanos: usage.cpu_nanos?,
            resident_bytes: usage.resident_bytes?,
            processes: usage.processes.filter(|n| *n > 0)?,
        })
    }
}

/// Reads agents' usage from `/proc` (or their cgroups), one round at a time, keeping each
/// agent's previous round to compute CPU rates.
///
/// A round costs, per agent, a few small `/proc` reads per process and per thread of the
/// agent (or a few cgroup file reads per agent with a cgroup); the sampler does no blocking
/// other than those reads. Run it off async threads ([`Monitor`] does).
#[derive(Debug)]
pub struct Sampler {
    bogomips_per_core: f64,
    ticks_per_second: f64,
    page_size: u64,
    walk: Walk,
    previous: HashMap<String, Previous>,
}

impl Sampler {
    /// A sampler that converts CPU time to BogoMIPS at `bogomips_per_core` (see
    /// [`bogomips_per_core`]; pass 0.0 if unknown, and [`AgentUsage::cpu_mips`] stays `None`).
    pub fn new(bogomips_per_core: f64) -> Sampler {
        Sampler::with_walk(bogomips_per_core, Walk::detect())
    }

    fn with_walk(bogomips_per_core: f64, walk: Walk) -> Sampler {
        Sampler {
            bogomips_per_core,
            ticks_per_second: procfs::ticks_per_second() as f64,
            page_size: procfs::page_size(),
            walk,
            previous: HashMap::new(),
        }
    }

    /// The BogoMIPS per core this sampler converts with.
    pub fn bogomips_per_core(&self) -> f64 {
        self.bogomips_per_core
    }

    /// One round: the usage of each of `agents`, in that order, with CPU measured since the
    /// previous round that saw the same identity with the same root process (and accounted
    /// the same way), `now` being the time of this round.
    ///
    /// Agents not in `agents` are forgotten. An agent whose root process is gone is reported
    /// with [`AgentUsage::gone`]; a descendant that ends mid-read is skipped; an agent whose
    /// cgroup cannot be read is measured through procfs. Nothing here fails: what cannot be
    /// read is not counted.
    pub fn sample(&mut self, agents: &[MonitoredAgent], now: Instant) -> Vec<AgentUsage> {
        let uptime_ticks = procfs::Uptime::current()
            .ok()
            .map(|u| (u.uptime * self.ticks_per_second) as u64);
        // Made when the first agent measured through procfs needs it.
        let mut scan = None;
        let mut previous = std::mem::take(&mut self.previous);
        let mut usage = Vec::with_capacity(agents.len());
        for MonitoredAgent {
            identity,
            key,
            cgroup,
        } in agents
        {
            let prev = previous.remove(identity).filter(|p| p.key == *key);
            let elapsed = prev
                .as_ref()
                .map(|prev| now.saturating_duration_since(prev.at).as_secs_f64())
                .filter(|elapsed| *elapsed > 0.0);
            if cgroup.is_some() && !key.is_alive() {
                usage.push(AgentUsage::for_gone(identity, *key));
                continue;
            }
            // The cgroup's figures where it has them, else the process tree's.
            let measured = match cgroup.as_ref().and_then(GroupFigures::read) {
                Some(group) => Measured {
                    cpu_percent_of_core: match (prev.map(|p| p.baseline), elapsed) {
                        // A counter that went back is another group: a new baseline.
                        (Some(Baseline::Cgroup { cpu_nanos }), Some(elapsed)) => group
                            .cpu_nanos
                            .checked_sub(cpu_nanos)
                            .map(|nanos| nanos as f64 / 1e9 / elapsed * 100.0),
                        _ => None,
                    },
                    rss_bytes: group.resident_bytes,
                    processes: group.processes,
                    accounting: Accounting::Cgroup,
                    baseline: Baseline::Cgroup {
                        cpu_nanos: group.cpu_nanos,
                    },
                },
                None => {
                    if self.walk == Walk::Scan && scan.is_none() {
                        scan = Some(scan_children());
                    }
                    let Some(records) = walk_tree(*key, scan.as_ref()) else {
                        usage.push(AgentUsage::for_gone(identity, *key));
                        continue;
                    };
                    Measured {
                        cpu_percent_of_core: match (prev.map(|p| p.baseline), elapsed) {
                            (Some(Baseline::Procfs(tree)), Some(elapsed)) => Some(
                                cpu_ticks_since(&tree, &records) as f64 / self.ticks_per_second / elapsed
                                    * 100.0,
                            ),
                            _ => None,
                        },
                        rss_bytes: records
                            .iter()
                            .map(|r| r.rss_pages)
                            .sum::<u64>()
                            .saturating_mul(self.page_size),
                        processes: records.len(),
                        accounting: Accounting::Procfs,
                        baseline: Baseline::Procfs(TreeBaseline {
                            uptime_ticks,
                            processes: records.iter().map(|r| (r.key, r.ticks)).collect(),
                        }),
                    }
                }
            };
            usage.push(AgentUsage {
                identity: identity.clone(),
                key: *key,
                gone: false,
                cpu_percent_of_core: measured.cpu_percent_of_core,
                cpu_mips: self.mips(measured.cpu_percent_of_core),
                rss_bytes: measured.rss_bytes,
                processes: measured.processes,
                accounting: measured.accounting,
            });
            self.previous.insert(
                identity.clone(),
                Previous {
                    key: *key,
                    at: now,
                    baseline: measured.baseline,
                },
            );
        }
        usage
    }

    /// `percent` of a core in BogoMIPS, if the sampler knows the BogoMIPS per core.
    fn mips(&self, percent: Option<f64>) -> Option<f64> {
        percent
            .filter(|_| self.bogomips_per_core.is_finite() && self.bogomips_per_core > 0.0)
            .map(|percent| percent * self.bogomips_per_core / 100.0)
    }
}

/// CPU ticks used by a tree between `prev` and `records` (see the [module
/// documentation](self)).
fn cpu_ticks_since(prev: &TreeBaseline, records: &[ProcRecord]) -> u64 {
    let mut ticks: i128 = 0;
    let mut current = HashSet::with_capacity(records.len());
    for record in records {
        current.insert(record.key);
        match prev.processes.get(&record.key) {
            Some(before) => {
                ticks += i128::from(record.ticks.own.saturating_sub(before.own));
                ticks += i128::from(record.ticks.reaped.saturating_sub(before.reaped));
            }
            None if prev.uptime_ticks.is_some_and(|t| record.key.start_time >= t) => {
                ticks += i128::from(record.ticks.total());
            }
            None => {}
        }
    }
    for (key, before) in &prev.processes {
        if !current.contains(key) && !key.is_alive() {
            ticks -= i128::from(before.total());
        }
    }
    u64::try_from(ticks.max(0)).unwrap_or(u64::MAX)
}

/// Reads one process through its `/proc/<pid>` directory handle.
fn read_record(process: &Process) -> Option<ProcRecord> {
    let stat = process.stat().ok()?;
    let statm = process.statm().ok()?;
    Some(ProcRecord {
        key: ProcessKey {
            pid: u32::try_from(stat.pid).ok()?,
            start_time: stat.starttime,
        },
        ppid: u32::try_from(stat.ppid).unwrap_or(0),
        ticks: Ticks {
            own: stat.utime.saturating_add(stat.stime),
            reaped: u64::try_from(stat.cutime.max(0) + stat.cstime.max(0)).unwrap_or(0),
        },
        rss_pages: statm.resident,
        threads: stat.num_threads,
    })
}

/// The children of `process` (read just before through the same handle): from each thread's
/// `children` file, or from `scan`.
fn children_of(process: &Process, record: &ProcRecord, scan: Option<&HashMap<u32, Vec<u32>>>) -> Vec<u32> {
    if let Some(scan) = scan {
        return scan.get(&record.key.pid).cloned().unwrap_or_default();
    }
    if record.threads == 1 {
        // The common case, one readdir fewer: only the main thread can have forked.
        return process
            .task_main_thread()
            .and_then(|t| t.children())
            .unwrap_or_default();
    }
    let Ok(tasks) = process.tasks() else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| task.children().ok())
        .flatten()
        .collect()
}

/// Reads `root` and all its descendants; `None` if `root` itself is gone.
fn walk_tree(root: ProcessKey, scan: Option<&HashMap<u32, Vec<u32>>>) -> Option<Vec<ProcRecord>> {
    let process = Process::new(i32::try_from(root.pid).ok()?).ok()?;
    let record = read_record(&process)?;
    if record.key != root {
        return None;
    }
    // Children lists are read as soon as their process is, so that at most one `/proc`
    // handle is open at a time, however large the tree.
    let mut pending = vec![(record.key, children_of(&process, &record, scan))];
    drop(process);
    let mut seen = HashSet::from([root.pid]);
    let mut records = vec![record];
    while let Some((parent, children)) = pending.pop() {
        for pid in children {
            if !seen.insert(pid) {
                continue;
            }
            let Ok(process) = Process::new(i32::try_from(pid).unwrap_or(-1)) else {
                continue;
            };
            let Some(record) = read_record(&process) else {
                continue;
            };
            // A pid listed as a child, then freed and reused before this read, is not one.
            if record.ppid != parent.pid || record.key.start_time < parent.start_time {
                continue;
            }
            pending.push((record.key, children_of(&process, &record, scan)));
            records.push(record);
        }
    }
    Some(records)
}

/// Parent pid → child pids of every process, from one pass over `/proc/*/stat`.
fn scan_children() -> HashMap<u32, Vec<u32>> {
    let mut map: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(processes) = procfs::process::all_processes() else {
        return map;
    };
    for process in processes.flatten() {
        let Ok(stat) = process.stat() else {
            continue;
        };
        if let (Ok(pid), Ok(ppid)) = (u32::try_from(stat.pid), u32::try_from(stat.ppid)) {
            map.entry(ppid).or_default().push(pid);
        }
    }
    map
}

/// Starts a [`Sampler`] on a thread of its own.
///
/// ```no_run
/// use std::time::Duration;
/// use volttron::resources::monitor::{Monitor, MonitoredAgent, ProcessKey, Sampler, bogomips_per_core};
///
/// let sampler = Sampler::new(bogomips_per_core().unwrap_or(0.0));
/// let monitor = Monitor::new(sampler, Duration::from_secs(1)).spawn().unwrap();
/// let key = ProcessKey::of(std::process::id()).unwrap();
/// // Measured through procfs; give `cgroup: Some(group.accounting())` for an agent that has
/// // an `AgentCgroup`.
/// monitor.set_agents(vec![MonitoredAgent {
///     identity: "meter".to_owned(),
///     key,
///     cgroup: None,
/// }]);
/// // ... two intervals later:
/// if let Some(usage) = monitor.get("meter") {
///     println!(
///         "{:?}% of a core, {} bytes ({:?})",
///         usage.cpu_percent_of_core, usage.rss_bytes, usage.accounting
///     );
/// }
/// // Dropping the handle stops the thread.
/// ```
#[derive(Debug)]
pub struct Monitor {
    sampler: Sampler,
    interval: Duration,
}

impl Monitor {
    /// A monitor that runs `sampler` every `interval` (at least 1 ms).
    pub fn new(sampler: Sampler, interval: Duration) -> Monitor {
        Monitor {
            sampler,
            interval: interval.max(Duration::from_millis(1)),
        }
    }

    /// Starts the sampling thread. Rounds run every interval from now (the first one interval
    /// from now), over the agents last given to [`MonitorHandle::set_agents`]; CPU figures
    /// appear from an agent's second round on.
    pub fn spawn(self) -> io::Result<MonitorHandle> {
        let (commands, receiver) = mpsc::channel();
        let view = UsageView::default();
        let shared = view.clone();
        let interval = self.interval;
        let mut sampler = self.sampler;
        let thread = std::thread::Builder::new()
            .name("volttron-resource-monitor".to_owned())
            .spawn(move || run(&mut sampler, interval, &receiver, &shared))?;
        Ok(MonitorHandle {
            commands: Some(commands),
            thread: Some(thread),
            view,
            interval,
        })
    }
}

/// The sampling thread: waits for the next round or a new list of agents, whichever comes
/// first, and ends as soon as the handle is dropped.
fn run(
    sampler: &mut Sampler,
    interval: Duration,
    commands: &mpsc::Receiver<Vec<MonitoredAgent>>,
    view: &UsageView,
) {
    let mut agents = Vec::new();
    let mut next = Instant::now() + interval;
    loop {
        match commands.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(list) => {
                agents = list;
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        let usage = sampler.sample(&agents, now);
        *view.latest.lock() = usage.into_iter().map(|u| (u.identity.clone(), u)).collect();
        // 0: unknown; else the bytes plus one.
        let available = super::enforcement::mem_available_bytes().map_or(0, |b| b.saturating_add(1));
        view.mem_available.store(available, Ordering::Release);
        view.rounds.fetch_add(1, Ordering::Release);
        // A late round does not make the next ones come in a burst.
        next += interval;
        if next <= Instant::now() {
            next = Instant::now() + interval;
        }
    }
}

/// The latest figures of a [`Monitor`], readable from anywhere (the platform handle, the
/// control service, an agent's health context): cheap to clone, and still readable (frozen
/// at the last round) after the monitor has stopped.
#[derive(Debug, Clone, Default)]
pub struct UsageView {
    latest: Arc<Mutex<HashMap<String, AgentUsage>>>,
    rounds: Arc<AtomicU64>,
    /// The machine's `MemAvailable` at the latest round, plus one (0: unknown).
    mem_available: Arc<AtomicU64>,
}

impl UsageView {
    /// The latest round's figures, by agent identity (agents gone at that round included,
    /// with [`AgentUsage::gone`]).
    pub fn latest(&self) -> HashMap<String, AgentUsage> {
        self.latest.lock().clone()
    }

    /// The latest round's figures for one agent.
    pub fn get(&self, identity: &str) -> Option<AgentUsage> {
        self.latest.lock().get(identity).cloned()
    }

    /// How many rounds have completed.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Acquire)
    }

    /// The machine's `MemAvailable` in bytes, read at the latest round (so that whoever
    /// judges memory pressure reads no file itself); `None` before the first round or
    /// without `/proc/meminfo`.
    pub fn mem_available_bytes(&self) -> Option<u64> {
        self.mem_available.load(Ordering::Acquire).checked_sub(1)
    }
}

/// Controls a running [`Monitor`]; dropping it stops the monitor's thread at once (the drop
/// waits for a round in progress to finish).
#[derive(Debug)]
pub struct MonitorHandle {
    commands: Option<mpsc::Sender<Vec<MonitoredAgent>>>,
    thread: Option<JoinHandle<()>>,
    view: UsageView,
    interval: Duration,
}

impl MonitorHandle {
    /// The agents to measure from the next round on, replacing the previous list: each a
    /// [`MonitoredAgent`] or an (identity, root process) pair, measured through procfs.
    /// Agents left out are forgotten; an agent kept with the same root process keeps its
    /// CPU baseline.
    ///
    /// A `Vec` (not any iterable) so that a caller's `.collect()` into it needs no type
    /// annotation.
    pub fn set_agents(&self, agents: Vec<impl Into<MonitoredAgent>>) {
        if let Some(commands) = &self.commands {
            // The thread only ends when this handle is dropped (or if it panicked, in which
            // case there is no one left to tell).
            let _ = commands.send(agents.into_iter().map(Into::into).collect());
        }
    }

    /// The latest round's figures, by agent identity.
    pub fn latest(&self) -> HashMap<String, AgentUsage> {
        self.view.latest()
    }

    /// The latest round's figures for one agent.
    pub fn get(&self, identity: &str) -> Option<AgentUsage> {
        self.view.get(identity)
    }

    /// How many rounds have completed.
    pub fn rounds(&self) -> u64 {
        self.view.rounds()
    }

    /// The machine's `MemAvailable` at the latest round ([`UsageView::mem_available_bytes`]).
    pub fn mem_available_bytes(&self) -> Option<u64> {
        self.view.mem_available_bytes()
    }

    /// The interval between rounds.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// A clonable reader of the latest figures, for whoever reports them.
    pub fn view(&self) -> UsageView {
        self.view.clone()
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        // Disconnecting the channel wakes the thread out of its wait.
        drop(self.commands.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command};

    use super::*;

    /// Kills and reaps its children when dropped.
    struct Children(Vec<Child>);

    impl Drop for Children {
        fn drop(&mut self) {
            for child in &mut self.0 {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    fn sh(script: &str) -> Child {
        Command::new("/bin/sh").arg("-c").arg(script).spawn().unwrap()
    }

    /// Waits until `key` has `n` processes in its tree (found by `walk`).
    fn tree_of(key: ProcessKey, n: usize, walk: Walk) -> Vec<ProcRecord> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let scan = (walk == Walk::Scan).then(scan_children);
            let records = walk_tree(key, scan.as_ref()).unwrap();
            if records.len() >= n || Instant::now() > deadline {
                return records;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn bogomips_are_averaged_over_cores_in_either_spelling() {
        let x86 = "processor\t: 0\nbogomips\t: 4000.00\n\nprocessor\t: 1\nbogomips\t: 5000.00\n";
        assert_eq!(parse_bogomips(x86), Some(4500.0));
        let arm = "processor\t: 0\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd\n";
        assert_eq!(parse_bogomips(arm), Some(48.0));
        assert_eq!(parse_bogomips("processor\t: 0\nmodel name\t: riscv\n"), None);
        assert_eq!(parse_bogomips("bogomips : nonsense\n"), None);
    }

    #[test]
    fn this_machine_reports_bogomips_where_x86() {
        if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
            assert!(bogomips_per_core().is_some_and(|b| b > 0.0));
        }
    }

    #[test]
    fn ratios_are_usage_over_contract() {
        let usage = AgentUsage {
            identity: "a".into(),
            key: ProcessKey {
                pid: 1,
                start_time: 1,
            },
            gone: false,
            cpu_percent_of_core: Some(50.0),
            cpu_mips: Some(2000.0),
            rss_bytes: 50 << 20,
            processes: 1,
            accounting: Accounting::Procfs,
        };
        let ratio = usage.ratio(4000.0, 100 << 20);
        assert_eq!(
            ratio,
            UsageRatio {
                cpu: Some(0.5),
                memory: Some(0.5)
            }
        );
        assert_eq!(
            usage.ratio(0.0, 0),
            UsageRatio {
                cpu: None,
                memory: None
            }
        );
        assert_eq!(
            AgentUsage {
                cpu_mips: None,
                ..usage
            }
            .cpu_ratio(4000.0),
            None
        );
    }

    #[test]
    fn both_walks_find_the_same_descendants() {
        let children = Children(vec![sh("sleep 30 & (sleep 30 & wait) & wait")]);
        let key = ProcessKey::of(children.0[0].id()).unwrap();
        // sh, sleep, subshell, its sleep.
        let by_children = tree_of(key, 4, Walk::Children);
        let by_scan = tree_of(key, 4, Walk::Scan);
        let pids = |records: &[ProcRecord]| {
            let mut pids: Vec<u32> = records.iter().map(|r| r.key.pid).collect();
            pids.sort_unstable();
            pids
        };
        assert_eq!(by_children.len(), 4, "{by_children:?}");
        assert_eq!(pids(&by_children), pids(&by_scan));
    }

    #[test]
    fn the_scan_walk_samples_like_the_children_walk() {
        let children = Children(vec![sh("sleep 30 & wait")]);
        let key = ProcessKey::of(children.0[0].id()).unwrap();
        tree_of(key, 2, Walk::Children);
        for walk in [Walk::Children, Walk::Scan] {
            let mut sampler = Sampler::with_walk(1000.0, walk);
            let agents = [MonitoredAgent::from(("a".to_owned(), key))];
            let first = sampler.sample(&agents, Instant::now());
            assert_eq!(first[0].processes, 2);
            assert!(first[0].rss_bytes > 0);
            assert_eq!(first[0].cpu_percent_of_core, None);
            let second = sampler.sample(&agents, Instant::now() + Duration::from_millis(100));
            assert!(
                second[0].cpu_percent_of_core.is_some_and(|c| c < 50.0),
                "{second:?}"
            );
        }
    }

    #[test]
    fn the_detected_walk_is_children_on_this_kernel() {
        // Every kernel this is tested on has the file; the scan is the fallback.
        if std::path::Path::new(&format!("/proc/{0}/task/{0}/children", std::process::id())).exists() {
            assert_eq!(Walk::detect(), Walk::Children);
        }
    }

    /// The basis for choosing the children walk: one round over 100 agents, each way
    /// (`cargo test --release --lib resources::monitor -- --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement, printed; run by hand"]
    fn round_cost_of_each_walk() {
        let children = Children((0..100).map(|_| sh("exec sleep 120")).collect());
        let agents: Vec<_> = children
            .0
            .iter()
            .enumerate()
            .map(|(i, c)| MonitoredAgent::from((format!("a{i}"), ProcessKey::of(c.id()).unwrap())))
            .collect::<Vec<_>>();
        let processes = procfs::process::all_processes().unwrap().count();
        for walk in [Walk::Children, Walk::Scan] {
            let mut sampler = Sampler::with_walk(1000.0, walk);
            sampler.sample(&agents, Instant::now());
            let started = Instant::now();
            for _ in 0..20 {
                sampler.sample(&agents, Instant::now());
            }
            let ms = started.elapsed().as_secs_f64() * 1e3 / 20.0;
            println!("{walk:?}: {ms:.3} ms per round, 100 agents, {processes} processes on the machine");
        }
    }

    /// A v2-like group in a temporary directory, its files written by the test.
    struct FakeGroup {
        _root: tempfile::TempDir,
        dir: std::path::PathBuf,
    }

    impl FakeGroup {
        fn new() -> FakeGroup {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("agent");
            let group = FakeGroup { _root: root, dir };
            group.write(0, "41\n42\n43\n");
            group
        }

        /// Writes the group's files: `cpu_usec` of CPU, 3 + 5 pages resident (and cache),
        /// `procs` as `cgroup.procs`.
        fn write(&self, cpu_usec: u64, procs: &str) {
            std::fs::create_dir_all(&self.dir).unwrap();
            let file = |name: &str, text: String| std::fs::write(self.dir.join(name), text).unwrap();
            file(
                "cpu.stat",
                format!("usage_usec {cpu_usec}\nuser_usec {cpu_usec}\n"),
            );
            file(
                "memory.stat",
                "anon 12288\nfile 1048576\nfile_mapped 20480\n".to_owned(),
            );
            file("memory.current", "2000000\n".to_owned());
            file("cgroup.procs", procs.to_owned());
        }

        fn accounting(&self) -> CgroupAccounting {
            CgroupAccounting::v2_at(&self.dir)
        }
    }

    fn with_cgroup(key: ProcessKey, cgroup: Option<CgroupAccounting>) -> [MonitoredAgent; 1] {
        [MonitoredAgent {
            identity: "a".to_owned(),
            key,
            cgroup,
        }]
    }

    #[test]
    fn a_cgroup_that_cannot_be_read_falls_back_to_procfs() {
        let children = Children(vec![sh("sleep 30 & wait")]);
        let key = ProcessKey::of(children.0[0].id()).unwrap();
        tree_of(key, 2, Walk::Children);
        let missing = tempfile::tempdir().unwrap().path().join("removed-group");
        let agents = with_cgroup(key, Some(CgroupAccounting::v2_at(&missing)));
        let mut sampler = Sampler::new(1000.0);
        let start = Instant::now();
        let first = &sampler.sample(&agents, start)[0];
        assert_eq!(first.accounting, Accounting::Procfs);
        assert!(!first.gone);
        assert_eq!(first.processes, 2, "the tree, walked: {first:?}");
        assert!(first.rss_bytes > 0);
        let second = &sampler.sample(&agents, start + Duration::from_millis(100))[0];
        assert_eq!(second.accounting, Accounting::Procfs);
        assert!(second.cpu_percent_of_core.is_some_and(|c| c < 50.0), "{second:?}");

        // A group that holds no process (the root is not in it) says nothing of the agent.
        let empty = FakeGroup::new();
        empty.write(5_000_000, "");
        let agents = with_cgroup(key, Some(empty.accounting()));
        let third = &sampler.sample(&agents, start + Duration::from_millis(200))[0];
        assert_eq!(third.accounting, Accounting::Procfs);
        assert_eq!(third.processes, 2);
    }

    #[test]
    fn cgroup_figures_are_used_when_they_read() {
        let mut children = Children(vec![sh("sleep 30 & wait")]);
        let key = ProcessKey::of(children.0[0].id()).unwrap();
        tree_of(key, 2, Walk::Children);
        let group = FakeGroup::new();
        group.write(1_000_000, "41\n42\n43\n42\n");
        let agents = with_cgroup(key, Some(group.accounting()));
        let mut sampler = Sampler::new(1000.0);
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);

        let first = &sampler.sample(&agents, start)[0];
        assert_eq!(
            (
                first.accounting,
                first.gone,
                first.cpu_percent_of_core,
                first.cpu_mips
            ),
            (Accounting::Cgroup, false, None, None)
        );
        // anon + file_mapped, not the cache; three distinct pids.
        assert_eq!((first.rss_bytes, first.processes), (12288 + 20480, 3));

        // 0.25 s of CPU in 0.5 s: half a core, 500 of this sampler's 1000 BogoMIPS.
        group.write(1_250_000, "41\n42\n43\n");
        let second = &sampler.sample(&agents, at(500))[0];
        assert_eq!(second.accounting, Accounting::Cgroup);
        let cpu = second.cpu_percent_of_core.unwrap();
        assert!((cpu - 50.0).abs() < 1e-9, "{cpu}");
        assert!((second.cpu_mips.unwrap() - 500.0).abs() < 1e-9, "{second:?}");

        // The group cannot be read: procfs, and no CPU figure from the group's baseline.
        std::fs::remove_dir_all(&group.dir).unwrap();
        let third = &sampler.sample(&agents, at(1000))[0];
        assert_eq!(
            (third.accounting, third.processes, third.cpu_percent_of_core),
            (Accounting::Procfs, 2, None)
        );
        let fourth = &sampler.sample(&agents, at(1100))[0];
        assert!(fourth.cpu_percent_of_core.is_some(), "{fourth:?}");
        // Readable again: the group, from a new baseline.
        group.write(2_000_000, "41\n");
        let fifth = &sampler.sample(&agents, at(1200))[0];
        assert_eq!(
            (fifth.accounting, fifth.processes, fifth.cpu_percent_of_core),
            (Accounting::Cgroup, 1, None)
        );
        // A counter that went back (another group at that path): no figure, a new baseline.
        group.write(10, "41\n");
        let sixth = &sampler.sample(&agents, at(1300))[0];
        assert_eq!(sixth.cpu_percent_of_core, None);
        group.write(100_010, "41\n");
        let seventh = &sampler.sample(&agents, at(1400))[0];
        assert!(
            seventh
                .cpu_percent_of_core
                .is_some_and(|c| (c - 100.0).abs() < 1e-9),
            "{seventh:?}"
        );

        // The root process decides `gone`, whatever the group still reads.
        drop(Children(children.0.drain(..).collect()));
        let gone = &sampler.sample(&agents, at(1500))[0];
        assert!(gone.gone, "{gone:?}");
        assert_eq!(
            (gone.cpu_percent_of_core, gone.rss_bytes, gone.processes),
            (None, 0, 0)
        );
    }

    #[test]
    fn accounting_serializes_lowercase_and_defaults_to_procfs() {
        let usage = AgentUsage {
            accounting: Accounting::Cgroup,
            ..AgentUsage::for_gone(
                "a",
                ProcessKey {
                    pid: 1,
                    start_time: 1,
                },
            )
        };
        let mut json = serde_json::to_value(&usage).unwrap();
        assert_eq!(json["accounting"], "cgroup");
        json.as_object_mut().unwrap().remove("accounting");
        let old: AgentUsage = serde_json::from_value(json).unwrap();
        assert_eq!(old.accounting, Accounting::Procfs);
        assert_eq!(serde_json::to_value(Accounting::Procfs).unwrap(), "procfs");
    }

    #[test]
    fn a_child_that_ended_between_rounds_is_counted_through_its_reaper() {
        let prev = TreeBaseline {
            uptime_ticks: Some(1000),
            processes: HashMap::from([
                (
                    ProcessKey {
                        pid: 10,
                        start_time: 5,
                    },
                    Ticks { own: 100, reaped: 0 },
                ),
                // Long gone (no such pid / start time), last seen at 30 + 0 ticks.
                (
                    ProcessKey {
                        pid: u32::MAX - 1,
                        start_time: 999,
                    },
                    Ticks { own: 30, reaped: 0 },
                ),
            ]),
        };
        let root = |own, reaped| ProcRecord {
            key: ProcessKey {
                pid: 10,
                start_time: 5,
            },
            ppid: 1,
            ticks: Ticks { own, reaped },
            rss_pages: 1,
            threads: 1,
        };
        // It ended at 45 ticks and was reaped by the root: 15 more, plus the root's 10.
        assert_eq!(cpu_ticks_since(&prev, &[root(110, 45)]), 25);
        // A new child started after the previous round counts in full; one that started
        // before it (and was missed) counts from now on.
        let child = |start_time, own| ProcRecord {
            key: ProcessKey { pid: 11, start_time },
            ppid: 10,
            ticks: Ticks { own, reaped: 0 },
            rss_pages: 1,
            threads: 1,
        };
        assert_eq!(cpu_ticks_since(&prev, &[root(110, 45), child(1001, 7)]), 32);
        assert_eq!(cpu_ticks_since(&prev, &[root(110, 45), child(900, 7)]), 25);
        // Never below zero (the reap not seen yet).
        assert_eq!(cpu_ticks_since(&prev, &[root(100, 0)]), 0);
    }
}
