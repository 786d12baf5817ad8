//! Control groups: each agent in its own cgroup, where the platform can create them.
//!
//! At start-up the platform calls [`CgroupSupport::detect`] on the cgroup root
//! (`/sys/fs/cgroup`), which logs [`describe`](CgroupSupport::describe) at info level:
//!
//! * **cgroup v2** (the root has `cgroup.controllers`, listing `cpu` and `memory`): the
//!   `cpu` and `memory` controllers are enabled in the root's and the platform group's
//!   `cgroup.subtree_control`;
//! * **cgroup v1** (the root holds mounted `cpu` and `memory` hierarchies, as a tmpfs of
//!   hierarchies does; `cpuacct` is used for accounting when present, best effort);
//! * otherwise, or when the platform group cannot be created: **unavailable**, with the
//!   reason (the OS error). Agents are then only measured through procfs and terminated
//!   when over their contract under pressure ([`enforcement`](super::enforcement)).
//!
//! Either way the platform gets a group `volttron-<platform name>` in each hierarchy (the
//! control service names it with [`platform_group_name`]: the instance name and a hash of
//! the home)
//! (created, or reused when it exists), and [`AgentCgroup::create`] makes one group per
//! agent beneath it, `volttron-<platform name>/<identity>`, set up from [`CgroupLimits`]:
//!
//! | term | cgroup v1 | cgroup v2 |
//! |---|---|---|
//! | CPU, `cpu_mips` | `cpu.shares` = 1024 × `cpu_mips` / BogoMIPS per CPU, at least 2 (at most 262144) | `cpu.weight` = 100 × `cpu_mips` / BogoMIPS per CPU, in 1..=10000 |
//! | memory soft limit | `memory.soft_limit_in_bytes` | `memory.low` |
//! | memory hard cap | `memory.limit_in_bytes` | `memory.max` |
//!
//! CPU is proportional: a group's share of contended CPU time is its weight over the sum
//! of its siblings' weights, and one CPU's BogoMIPS is the default weight (1024 shares, or
//! a `cpu.weight` of 100) — an agent contracted for one core's worth weighs as much as a
//! process outside any agent group. A term left out (`None`) is left at the kernel's
//! default.
//!
//! The soft limit: VOLTTRON's is cgroup v1's `memory.soft_limit_in_bytes`, what a group is
//! pushed back to when the machine runs short of memory, and no limit otherwise. cgroup v2
//! has no such file; `memory.low` is the closest: memory below it is protected from
//! reclaim while unprotected memory (above it, or in other groups) is available, so under
//! pressure a group is reclaimed down towards it, and while memory is plentiful it is not
//! limited. (`memory.high` would throttle and reclaim above the value even on an idle
//! machine: it is a cap, not a soft limit.)
//!
//! An agent joins its group before it runs: the platform passes
//! [`AgentCgroup::procs_files`] to the `volttron-sandbox` trampoline (`--cgroup FILE`,
//! [`SandboxOptions::cgroup_procs`](super::sandbox::SandboxOptions::cgroup_procs)), which
//! writes `0` (itself) to each before it drops privileges and `exec`s the agent, so the
//! agent and its children start inside the group with no race. [`AgentCgroup::remove`]
//! (and drop) removes the group once its processes are gone.
//!
//! # Accounting
//!
//! The kernel accounts for every process in a group, including one that has left the
//! agent's process tree (a daemon re-parented to init), so the
//! [monitor](super::monitor) reads an agent's figures from its group when it has one.
//! [`AgentCgroup::accounting`] gives a cheap, clonable [`CgroupAccounting`] (the paths of
//! the files below) that the monitor's thread keeps; [`CgroupAccounting::read`] (and
//! [`AgentCgroup::usage`]) read a [`CgroupUsage`]:
//!
//! | figure | cgroup v1 | cgroup v2 |
//! |---|---|---|
//! | [`cpu_nanos`](CgroupUsage::cpu_nanos) | `cpuacct.usage` (in the `cpuacct` group when that is a hierarchy of its own, else in the `cpu` group) | `cpu.stat` `usage_usec` × 1000 |
//! | [`memory_bytes`](CgroupUsage::memory_bytes) | `memory.usage_in_bytes` | `memory.current` |
//! | [`resident_bytes`](CgroupUsage::resident_bytes) | `memory.stat` `total_rss` + `total_mapped_file` (or `rss` + `mapped_file` without the `total_` lines) | `memory.stat` `anon` + `file_mapped` |
//! | [`processes`](CgroupUsage::processes) | lines of `cgroup.procs` (memory group) | lines of `cgroup.procs` |
//!
//! `memory_bytes` is everything charged to the group, page cache included: an agent that
//! reads a large file would seem to hold its size. `resident_bytes` is what compares with
//! the summed RSS of procfs measurement: anonymous memory (heap, stacks) and file pages
//! mapped into the group's processes (executables, libraries, `mmap`ed files), not the
//! cache. On v1 the `total_` figures are used because they are hierarchical, as v2's
//! `memory.stat` always is: an agent that makes groups of its own beneath its group is
//! still counted in full; the plain `rss` and `mapped_file` lines (the group alone) are
//! the fallback where a kernel prints no `total_` lines.
//!
//! It differs from the summed RSS in two ways, both towards less: a page shared by several
//! processes of the group (copy-on-write after `fork`, a library) counts once, not once
//! per process; and a page is charged to the group that first brought it into memory, so
//! library pages already cached by processes outside the group (libc) are not the group's.
//!
//! Names: the platform name and identities must be non-empty, not `.` or `..`, and of
//! ASCII letters, digits, `.`, `-` and `_` only ([`CgroupError::InvalidName`]), so that a
//! name never leaves its parent group.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The root of the cgroup file systems on Linux.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The platform name the control service passes to [`CgroupSupport::detect`]: the
/// instance name and eight hex digits of its home's path (FNV-1a), so that two platforms
/// of the same instance name on one host (two homes) never share, account for or remove
/// each other's groups: `volttron1-3fa9c2d1`, giving `volttron-volttron1-3fa9c2d1/<identity>`.
/// Characters a group name may not hold become `_`.
pub fn platform_group_name(instance_name: &str, home: &Path) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in home.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193);
    }
    let instance: String = instance_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{instance}-{hash:08x}")
}

/// The default v1 `cpu.shares` (one CPU's BogoMIPS).
const V1_SHARES_PER_CPU: f64 = 1024.0;
/// The v1 `cpu.shares` range.
const V1_SHARES_RANGE: (u64, u64) = (2, 262_144);
/// The default v2 `cpu.weight` (one CPU's BogoMIPS).
const V2_WEIGHT_PER_CPU: f64 = 100.0;
/// The v2 `cpu.weight` range.
const V2_WEIGHT_RANGE: (u64, u64) = (1, 10_000);

/// Whether, and how, agents get their own cgroups: see [`CgroupSupport::detect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupSupport {
    /// cgroup v2: the platform group in the unified hierarchy.
    V2 {
        /// The platform group, `<root>/volttron-<platform name>`.
        dir: PathBuf,
    },
    /// cgroup v1: the platform group in the `cpu` and `memory` hierarchies (and
    /// `cpuacct`, for accounting, when it is a hierarchy of its own).
    V1 {
        /// The platform group in the `cpu` hierarchy.
        cpu_dir: PathBuf,
        /// The platform group in the `memory` hierarchy.
        memory_dir: PathBuf,
        /// The platform group in a separate `cpuacct` hierarchy, if there is one and the
        /// group could be made there.
        cpuacct_dir: Option<PathBuf>,
    },
    /// No cgroups: procfs measurement and termination only.
    Unavailable {
        /// Why (the layout found, or the OS error).
        reason: String,
    },
}

impl CgroupSupport {
    /// Detects the cgroup layout under `root` (normally [`CGROUP_ROOT`]) and creates, or
    /// reuses, the platform group `volttron-<platform_name>` in it (see the module docs).
    /// Logs [`describe`](Self::describe) at info level.
    pub fn detect(root: &Path, platform_name: &str) -> CgroupSupport {
        let support = match Self::try_detect(root, platform_name) {
            Ok(support) => support,
            Err(reason) => CgroupSupport::Unavailable { reason },
        };
        tracing::info!("{}", support.describe());
        support
    }

    fn try_detect(root: &Path, platform_name: &str) -> Result<CgroupSupport, String> {
        check_name(platform_name).map_err(|e| e.to_string())?;
        let group = format!("volttron-{platform_name}");
        let controllers_file = root.join("cgroup.controllers");
        if controllers_file.is_file() {
            let controllers = read_trimmed(&controllers_file).map_err(|e| e.to_string())?;
            let has = |name: &str| controllers.split_whitespace().any(|c| c == name);
            if !(has("cpu") && has("memory")) {
                return Err(format!(
                    "cgroup v2 at {} without the cpu and memory controllers (has: {controllers})",
                    root.display()
                ));
            }
            enable_v2_controllers(root).map_err(|e| e.to_string())?;
            let dir = root.join(&group);
            make_dir(&dir).map_err(|e| e.to_string())?;
            if let Err(e) = enable_v2_controllers(&dir) {
                // Not left behind empty (kept if another platform's agents are in it).
                let _ = std::fs::remove_dir(&dir);
                return Err(e.to_string());
            }
            return Ok(CgroupSupport::V2 { dir });
        }
        let is_hierarchy = |name: &str| root.join(name).join("cgroup.procs").is_file();
        if !(is_hierarchy("cpu") && is_hierarchy("memory")) {
            return Err(format!(
                "neither cgroup v2 nor the v1 cpu and memory hierarchies under {}",
                root.display()
            ));
        }
        let cpu_dir = root.join("cpu").join(&group);
        let memory_dir = root.join("memory").join(&group);
        make_dir(&cpu_dir).map_err(|e| e.to_string())?;
        if let Err(e) = make_dir(&memory_dir) {
            let _ = std::fs::remove_dir(&cpu_dir);
            return Err(e.to_string());
        }
        let cpuacct_dir = (is_hierarchy("cpuacct") && !same_hierarchy(root, "cpu", "cpuacct"))
            .then(|| root.join("cpuacct").join(&group))
            .filter(|dir| make_dir(dir).is_ok());
        Ok(CgroupSupport::V1 {
            cpu_dir,
            memory_dir,
            cpuacct_dir,
        })
    }

    /// Whether agents get their own cgroups.
    pub fn is_available(&self) -> bool {
        !matches!(self, CgroupSupport::Unavailable { .. })
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            CgroupSupport::V2 { dir } => {
                format!(
                    "cgroups v2 (cpu, memory) in {}: agents get their own groups",
                    dir.display()
                )
            }
            CgroupSupport::V1 { cpu_dir, .. } => {
                let group = cpu_dir.file_name().unwrap_or_default().to_string_lossy();
                format!("cgroups v1 (cpu, memory) in {group}: agents get their own groups")
            }
            CgroupSupport::Unavailable { reason } => {
                format!("cgroups unavailable ({reason}): procfs measurement and termination only")
            }
        }
    }

    /// The platform group's directories (none when unavailable).
    pub fn platform_dirs(&self) -> Vec<PathBuf> {
        match self {
            CgroupSupport::V2 { dir } => vec![dir.clone()],
            CgroupSupport::V1 {
                cpu_dir,
                memory_dir,
                cpuacct_dir,
            } => [Some(cpu_dir), Some(memory_dir), cpuacct_dir.as_ref()]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            CgroupSupport::Unavailable { .. } => Vec::new(),
        }
    }

    /// Removes the platform group (at shutdown, after every agent group is gone). Best
    /// effort: a group still holding agent groups or processes (`EBUSY`) is kept, with a
    /// warning.
    pub fn remove_platform_group(&self) {
        for dir in self.platform_dirs() {
            remove_dir_quietly(&dir);
        }
    }
}

impl fmt::Display for CgroupSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What an agent's group is set up with (see the table in the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CgroupLimits {
    /// The agent's contracted CPU, in BogoMIPS (`None`: the default weight).
    pub cpu_mips: Option<f64>,
    /// The machine's BogoMIPS, all CPUs together
    /// ([`Machine::bogomips_total`](super::contract::Machine::bogomips_total)).
    pub total_mips: f64,
    /// How many CPUs `total_mips` adds up (0 is taken as 1).
    pub cpus: usize,
    /// The memory soft limit, in bytes.
    pub memory_soft_bytes: Option<u64>,
    /// A hard memory cap, in bytes (the kernel's OOM killer acts above it).
    pub memory_max_bytes: Option<u64>,
}

impl CgroupLimits {
    /// The BogoMIPS of one CPU, or `None` when unknown (no BogoMIPS reported).
    fn mips_per_cpu(&self) -> Option<f64> {
        let per_cpu = self.total_mips / self.cpus.max(1) as f64;
        (per_cpu.is_finite() && per_cpu > 0.0).then_some(per_cpu)
    }

    /// The v1 `cpu.shares` for [`cpu_mips`](Self::cpu_mips), if set (and the machine's
    /// BogoMIPS known).
    pub fn v1_cpu_shares(&self) -> Option<u64> {
        self.scaled_cpu(V1_SHARES_PER_CPU, V1_SHARES_RANGE)
    }

    /// The v2 `cpu.weight` for [`cpu_mips`](Self::cpu_mips), if set (and the machine's
    /// BogoMIPS known).
    pub fn v2_cpu_weight(&self) -> Option<u64> {
        self.scaled_cpu(V2_WEIGHT_PER_CPU, V2_WEIGHT_RANGE)
    }

    fn scaled_cpu(&self, per_cpu_value: f64, (low, high): (u64, u64)) -> Option<u64> {
        let mips = self.cpu_mips.filter(|m| m.is_finite() && *m >= 0.0)?;
        let value = (per_cpu_value * mips / self.mips_per_cpu()?).round();
        // A float-to-int `as` saturates; the clamp keeps it in the kernel's range.
        Some((value as u64).clamp(low, high))
    }
}

/// Why an agent's group could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Cgroups are unavailable ([`CgroupSupport::Unavailable`]).
    #[error("cgroups unavailable: {0}")]
    Unavailable(String),
    /// A platform name or identity that cannot name a group.
    #[error("{name:?} cannot name a cgroup (ASCII letters, digits, '.', '-' and '_' only)")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// A group directory or control file could not be made or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// What the group has accounted for its processes ([`CgroupAccounting::read`],
/// [`AgentCgroup::usage`]; see the table in the module docs); a figure the kernel does not
/// offer, or that could not be read (the group is gone), is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupUsage {
    /// CPU time used by the group's processes since the group was made, in nanoseconds
    /// (v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec`).
    pub cpu_nanos: Option<u64>,
    /// Memory charged to the group, page cache included, in bytes (v1
    /// `memory.usage_in_bytes`, v2 `memory.current`).
    pub memory_bytes: Option<u64>,
    /// Resident memory of the group's processes, comparable to their summed RSS, in bytes:
    /// anonymous memory plus mapped file pages, from `memory.stat` (v1 `total_rss` +
    /// `total_mapped_file`, v2 `anon` + `file_mapped`; see the module docs).
    pub resident_bytes: Option<u64>,
    /// How many processes are in the group (distinct pids in `cgroup.procs`).
    pub processes: Option<usize>,
}

/// Where to read an agent group's accounting ([`AgentCgroup::accounting`]): a cheap,
/// clonable value for the monitor's thread, independent of the [`AgentCgroup`] (which
/// stays with whoever removes the group). Once the group is removed every figure
/// [`read`](Self::read) gives is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupAccounting {
    /// Whether the group is v2 (`cpu_dir` and `memory_dir` are then the one directory).
    v2: bool,
    /// The group holding the CPU figure: v2 the group; v1 the `cpu` group (where `cpu`
    /// and `cpuacct` are one hierarchy).
    cpu_dir: PathBuf,
    /// v1: the group in a separate `cpuacct` hierarchy, read first.
    cpuacct_dir: Option<PathBuf>,
    /// The group holding the memory figures and `cgroup.procs`.
    memory_dir: PathBuf,
}

impl CgroupAccounting {
    /// The accounting of a v2 group at `dir`.
    #[cfg(test)]
    pub(crate) fn v2_at(dir: &Path) -> CgroupAccounting {
        CgroupAccounting {
            v2: true,
            cpu_dir: dir.to_path_buf(),
            cpuacct_dir: None,
            memory_dir: dir.to_path_buf(),
        }
    }

    /// Reads the group's figures (four small files: CPU, `memory.stat`, memory usage,
    /// `cgroup.procs`), best effort: what cannot be read is `None`.
    pub fn read(&self) -> CgroupUsage {
        let cpu_nanos = if self.v2 {
            read_string(&self.cpu_dir.join("cpu.stat")).and_then(|text| parse_v2_cpu_nanos(&text))
        } else {
            [self.cpuacct_dir.as_ref(), Some(&self.cpu_dir)]
                .into_iter()
                .flatten()
                .find_map(|dir| read_u64(&dir.join("cpuacct.usage")))
        };
        let usage_file = if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        CgroupUsage {
            cpu_nanos,
            memory_bytes: read_u64(&self.memory_dir.join(usage_file)),
            resident_bytes: read_string(&self.memory_dir.join("memory.stat"))
                .and_then(|text| parse_resident_bytes(&text, self.v2)),
            processes: read_string(&self.memory_dir.join("cgroup.procs")).map(|text| count_pids(&text)),
        }
    }
}

/// The CPU time in v2 `cpu.stat` text, in nanoseconds.
fn parse_v2_cpu_nanos(cpu_stat: &str) -> Option<u64> {
    stat_value(cpu_stat, "usage_usec").map(|usec| usec.saturating_mul(1000))
}

/// The value of `key` in a `memory.stat` or `cpu.stat` text (lines of `key value`).
fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Resident memory from `memory.stat` text (see the module docs): v2 `anon` +
/// `file_mapped`; v1 `total_rss` + `total_mapped_file`, else `rss` + `mapped_file`.
fn parse_resident_bytes(memory_stat: &str, v2: bool) -> Option<u64> {
    let sum =
        |a: &str, b: &str| Some(stat_value(memory_stat, a)?.saturating_add(stat_value(memory_stat, b)?));
    if v2 {
        sum("anon", "file_mapped")
    } else {
        sum("total_rss", "total_mapped_file").or_else(|| sum("rss", "mapped_file"))
    }
}

/// Distinct pids in `cgroup.procs` text (v1 may list one twice).
fn count_pids(procs: &str) -> usize {
    let mut pids: Vec<u32> = procs.lines().filter_map(|l| l.trim().parse().ok()).collect();
    pids.sort_unstable();
    pids.dedup();
    pids.len()
}

/// An agent's own group; removed (best effort) on drop.
#[derive(Debug)]
pub struct AgentCgroup {
    /// The group's directories: v2 one; v1 cpu, memory and possibly cpuacct.
    dirs: Vec<PathBuf>,
    /// Where its figures are read.
    accounting: CgroupAccounting,
}

impl AgentCgroup {
    /// Creates (or reuses, after a crash) the group `<platform group>/<identity>` and
    /// writes `limits` into it (see the module docs). On error whatever was created is
    /// removed again.
    pub fn create(
        support: &CgroupSupport,
        identity: &str,
        limits: &CgroupLimits,
    ) -> Result<AgentCgroup, CgroupError> {
        check_name(identity)?;
        let accounting = match support {
            CgroupSupport::V2 { dir } => CgroupAccounting {
                v2: true,
                cpu_dir: dir.join(identity),
                cpuacct_dir: None,
                memory_dir: dir.join(identity),
            },
            CgroupSupport::V1 {
                cpu_dir, memory_dir, ..
            } => CgroupAccounting {
                v2: false,
                cpu_dir: cpu_dir.join(identity),
                cpuacct_dir: None,
                memory_dir: memory_dir.join(identity),
            },
            CgroupSupport::Unavailable { reason } => return Err(CgroupError::Unavailable(reason.clone())),
        };
        let mut group = AgentCgroup {
            dirs: Vec::new(),
            accounting,
        };
        // Dirs are pushed as they are made, so that drop removes them on error.
        match support {
            CgroupSupport::V2 { dir } => {
                let dir = dir.join(identity);
                make_dir(&dir)?;
                group.dirs.push(dir.clone());
                if let Some(weight) = limits.v2_cpu_weight() {
                    write_file(&dir.join("cpu.weight"), weight)?;
                }
                if let Some(low) = limits.memory_soft_bytes {
                    write_file(&dir.join("memory.low"), low)?;
                }
                if let Some(max) = limits.memory_max_bytes {
                    write_file(&dir.join("memory.max"), max)?;
                }
            }
            CgroupSupport::V1 {
                cpu_dir,
                memory_dir,
                cpuacct_dir,
            } => {
                let cpu = cpu_dir.join(identity);
                make_dir(&cpu)?;
                group.dirs.push(cpu.clone());
                let memory = memory_dir.join(identity);
                make_dir(&memory)?;
                group.dirs.push(memory.clone());
                if let Some(dir) = cpuacct_dir.as_ref().map(|d| d.join(identity)) {
                    // Accounting only: best effort.
                    if make_dir(&dir).is_ok() {
                        group.dirs.push(dir.clone());
                        group.accounting.cpuacct_dir = Some(dir);
                    }
                }
                if let Some(shares) = limits.v1_cpu_shares() {
                    write_file(&cpu.join("cpu.shares"), shares)?;
                }
                if let Some(soft) = limits.memory_soft_bytes {
                    write_file(&memory.join("memory.soft_limit_in_bytes"), soft)?;
                }
                if let Some(max) = limits.memory_max_bytes {
                    write_file(&memory.join("memory.limit_in_bytes"), max)?;
                }
            }
            CgroupSupport::Unavailable { .. } => unreachable!("handled above"),
        }
        Ok(group)
    }

    /// The group's directories (v2: one; v1: `cpu`, `memory` and, when separate,
    /// `cpuacct`).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The `cgroup.procs` file of each of the group's directories: writing a pid (or `0`,
    /// the writer) to each puts the process in the group, as `volttron-sandbox --cgroup`
    /// does.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|dir| dir.join("cgroup.procs")).collect()
    }

    /// The processes in the group (from its first directory's `cgroup.procs`).
    pub fn pids(&self) -> Vec<u32> {
        self.dirs
            .first()
            .and_then(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Where the group's figures are read, for the monitor (see the module docs).
    pub fn accounting(&self) -> CgroupAccounting {
        self.accounting.clone()
    }

    /// The group's accounting, best effort ([`CgroupAccounting::read`]).
    pub fn usage(&self) -> CgroupUsage {
        self.accounting.read()
    }

    /// Removes the group, once its processes are gone: `rmdir` of each directory. One that
    /// still has processes (`EBUSY`) is kept, with a warning; one already gone is fine.
    /// Idempotent; drop does it too.
    pub fn remove(&mut self) {
        for dir in self.dirs.drain(..).rev() {
            remove_dir_quietly(&dir);
        }
    }
}

impl Drop for AgentCgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

fn check_name(name: &str) -> Result<(), CgroupError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// `mkdir`, fine when the directory exists.
fn make_dir(dir: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(dir) {
        Err(e) if !(e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir()) => Err(CgroupError::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn write_file(path: &Path, value: impl fmt::Display) -> Result<(), CgroupError> {
    std::fs::write(path, value.to_string()).map_err(|source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_trimmed(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .map_err(|source| CgroupError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn read_u64(path: &Path) -> Option<u64> {
    read_trimmed(path).ok()?.parse().ok()
}

fn read_string(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Enables `cpu` and `memory` for `dir`'s children, unless already enabled.
fn enable_v2_controllers(dir: &Path) -> Result<(), CgroupError> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = read_trimmed(&file)?;
    let missing: Vec<_> = ["cpu", "memory"]
        .into_iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write_file(&file, missing.join(" "))
}

/// Whether two v1 hierarchy names under `root` are the same mount (`cpu` and `cpuacct`
/// are often one `cpu,cpuacct` hierarchy, with symbolic links).
fn same_hierarchy(root: &Path, a: &str, b: &str) -> bool {
    match (root.join(a).canonicalize(), root.join(b).canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn remove_dir_quietly(dir: &Path) {
    match std::fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cgroup {} kept: {e}", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cpu_mips: f64) -> CgroupLimits {
        CgroupLimits {
            cpu_mips: Some(cpu_mips),
            total_mips: 8000.0,
            cpus: 2,
            ..CgroupLimits::default()
        }
    }

    #[test]
    fn a_v2_platform_group_that_cannot_be_set_up_is_not_left_behind() {
        // A fake v2 root: the platform group made in it is a plain directory, without
        // the kernel's cgroup.subtree_control, so enabling its controllers fails.
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu io memory\n").unwrap();
        std::fs::write(root.path().join("cgroup.subtree_control"), "cpu memory\n").unwrap();
        let support = CgroupSupport::detect(root.path(), "p-1");
        assert!(!support.is_available(), "{support}");
        assert!(!root.path().join("volttron-p-1").exists());
    }

    #[test]
    fn platform_group_names_differ_by_home_and_are_valid_names() {
        let a = platform_group_name("volttron1", Path::new("/home/a/.volttron"));
        let b = platform_group_name("volttron1", Path::new("/home/b/.volttron"));
        assert_ne!(a, b);
        assert!(
            a.starts_with("volttron1-") && a.len() == "volttron1-".len() + 8,
            "{a}"
        );
        assert_eq!(
            a,
            platform_group_name("volttron1", Path::new("/home/a/.volttron")),
            "stable"
        );
        let odd = platform_group_name("campus hq/2", Path::new("/v"));
        assert!(odd.starts_with("campus_hq_2-"), "{odd}");
        check_name(&odd).unwrap();
    }

    #[test]
    fn cpu_weights_are_proportional_to_bogomips() {
        assert_eq!(limits(4000.0).v1_cpu_shares(), Some(1024));
        assert_eq!(limits(2000.0).v1_cpu_shares(), Some(512));
        assert_eq!(limits(8000.0).v2_cpu_weight(), Some(200));
        assert_eq!(limits(0.0).v1_cpu_shares(), Some(2));
        assert_eq!(limits(0.0).v2_cpu_weight(), Some(1));
        assert_eq!(limits(1e12).v2_cpu_weight(), Some(10_000));
        assert_eq!(limits(1e12).v1_cpu_shares(), Some(262_144));
        assert_eq!(CgroupLimits::default().v1_cpu_shares(), None);
        let unknown = CgroupLimits {
            total_mips: 0.0,
            ..limits(100.0)
        };
        assert_eq!(unknown.v2_cpu_weight(), None);
    }

    #[test]
    fn names_must_stay_in_their_group() {
        for bad in ["", ".", "..", "a/b", "a b", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["platform.driver", "listener-1_x", ".hidden"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    /// Excerpts of a real v1 `memory.stat` (a group, with `use_hierarchy`).
    const V1_MEMORY_STAT: &str = "cache 12980224\nrss 4206592\nrss_huge 0\nshmem 8933376\n\
        mapped_file 7372800\ndirty 20480\nswap 0\ninactive_anon 0\nactive_anon 1531904\n\
        hierarchical_memory_limit 9223372036854771712\ntotal_cache 11799400448\n\
        total_rss 7106560\ntotal_rss_huge 0\ntotal_shmem 8933376\ntotal_mapped_file 10825728\n\
        total_dirty 147456\n";

    /// Excerpts of a real v2 `memory.stat`.
    const V2_MEMORY_STAT: &str = "anon 1826816\nfile 52817920\nkernel 2322432\n\
        kernel_stack 81920\npagetables 233472\nsock 0\nshmem 0\nfile_mapped 2867200\n\
        file_dirty 0\nfile_writeback 0\nswapcached 0\nanon_thp 0\ninactive_anon 1794048\n\
        active_anon 32768\ninactive_file 37122048\nactive_file 15695872\n";

    #[test]
    fn resident_memory_is_parsed_from_memory_stat_of_either_version() {
        // v1: the hierarchical figures, not the group's own nor the cache.
        assert_eq!(
            parse_resident_bytes(V1_MEMORY_STAT, false),
            Some(7_106_560 + 10_825_728)
        );
        // v1 without `total_` lines: the group's own.
        let own_only: String = V1_MEMORY_STAT
            .lines()
            .filter(|l| !l.starts_with("total_"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            parse_resident_bytes(&own_only, false),
            Some(4_206_592 + 7_372_800)
        );
        // v2: anon + file_mapped (not `anon_thp`, `file`, `active_anon`, ...).
        assert_eq!(
            parse_resident_bytes(V2_MEMORY_STAT, true),
            Some(1_826_816 + 2_867_200)
        );
        // The other version's text, empty text or nonsense: unknown.
        assert_eq!(parse_resident_bytes(V2_MEMORY_STAT, false), None);
        assert_eq!(parse_resident_bytes(V1_MEMORY_STAT, true), None);
        assert_eq!(parse_resident_bytes("", true), None);
        assert_eq!(parse_resident_bytes("anon x\nfile_mapped 1\n", true), None);
        assert_eq!(
            parse_resident_bytes("anon 18446744073709551615\nfile_mapped 1\n", true),
            Some(u64::MAX)
        );
    }

    #[test]
    fn cpu_time_and_processes_are_parsed() {
        let cpu_stat = "usage_usec 2500123\nuser_usec 2000000\nsystem_usec 500123\n\
                        nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n";
        assert_eq!(parse_v2_cpu_nanos(cpu_stat), Some(2_500_123_000));
        assert_eq!(parse_v2_cpu_nanos("user_usec 1\n"), None);
        assert_eq!(count_pids("12\n7\n12\n\n"), 2);
        assert_eq!(count_pids(""), 0);
    }

    #[test]
    fn accounting_reads_a_group_and_gives_none_once_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let group = dir.path().join("agent");
        std::fs::create_dir(&group).unwrap();
        std::fs::write(group.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        std::fs::write(group.join("memory.current"), "9000000\n").unwrap();
        std::fs::write(group.join("memory.stat"), V2_MEMORY_STAT).unwrap();
        std::fs::write(group.join("cgroup.procs"), "41\n42\n").unwrap();
        let accounting = CgroupAccounting::v2_at(&group);
        assert_eq!(
            accounting.read(),
            CgroupUsage {
                cpu_nanos: Some(1_500_000),
                memory_bytes: Some(9_000_000),
                resident_bytes: Some(1_826_816 + 2_867_200),
                processes: Some(2),
            }
        );
        std::fs::remove_dir_all(&group).unwrap();
        assert_eq!(accounting.read(), CgroupUsage::default());
    }

    #[test]
    fn unavailable_without_a_cgroup_layout() {
        let dir = tempfile::tempdir().unwrap();
        let support = CgroupSupport::detect(dir.path(), "p");
        assert!(!support.is_available(), "{support:?}");
        assert!(support.describe().starts_with("cgroups unavailable ("));
        assert!(matches!(
            AgentCgroup::create(&support, "a", &CgroupLimits::default()),
            Err(CgroupError::Unavailable(_))
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
