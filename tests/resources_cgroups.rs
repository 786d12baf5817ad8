//! Agents' own cgroups ([`volttron::resources::cgroup`]) against the real cgroup file
//! systems: the platform group and an agent group made under `/sys/fs/cgroup`, their
//! control files, and a program launched through `volttron-sandbox --cgroup` that starts
//! inside the agent's group, checked from the outside through `/proc/<pid>/cgroup`; and
//! the monitor's accounting from the group, which counts a CPU burner that left the
//! agent's process tree, checked against `/proc/<burner>/stat`.
//!
//! Where cgroups cannot be created here (not root, a read-only or absent cgroup file
//! system, no cpu and memory controllers) the tests that need them skip with a printed
//! reason. The fallback (no cgroup layout: [`CgroupSupport::Unavailable`]) is always
//! tested. Every group made is removed on drop, and every child killed and reaped; every
//! process left in a group (the escaped burner) is killed on drop.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use volttron::resources::cgroup::{AgentCgroup, CGROUP_ROOT, CgroupError, CgroupLimits, CgroupSupport};
use volttron::resources::monitor::{Accounting, MonitoredAgent, ProcessKey, Sampler, bogomips_per_core};
use volttron::resources::sandbox::{SandboxOptions, sandbox_command};

const TRAMPOLINE: &str = env!("CARGO_BIN_EXE_volttron-sandbox");
const DEADLINE: Duration = Duration::from_secs(10);
const MIB: u64 = 1 << 20;
/// How long CPU is measured over.
const WINDOW: Duration = Duration::from_millis(500);
/// Tolerance on CPU, in percentage points of a core: the independent figure is read in
/// 10 ms ticks, and its bracket is slightly wider than the sampler's window.
const CPU_TOLERANCE: f64 = 10.0;

/// A child killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The platform group, removed on drop (after the agent groups, declared later, are).
struct PlatformGroup(CgroupSupport);

impl Drop for PlatformGroup {
    fn drop(&mut self) {
        self.0.remove_platform_group();
    }
}

/// A platform name of this test run's own.
fn platform_name(test: &str) -> String {
    format!("test-{test}-{}", std::process::id())
}

/// The real cgroup support, or why these tests skip.
fn real_support(test: &str) -> Result<PlatformGroup, String> {
    let support = CgroupSupport::detect(Path::new(CGROUP_ROOT), &platform_name(test));
    match support {
        CgroupSupport::Unavailable { reason } => Err(reason),
        support => Ok(PlatformGroup(support)),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The group paths of `pid` by hierarchy (v1: controller name, v2: `""`), from
/// `/proc/<pid>/cgroup`.
fn proc_cgroups(pid: u32) -> Vec<(String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            Some((controllers.to_owned(), path.to_owned()))
        })
        .collect()
}

fn group_of(pid: u32, controller: &str) -> Option<String> {
    proc_cgroups(pid)
        .into_iter()
        .find(|(controllers, _)| controllers.split(',').any(|c| c == controller))
        .map(|(_, path)| path)
}

/// The fallback: a directory without any cgroup layout gives `Unavailable`, with a reason
/// for the log, creates nothing, and refuses agent groups.
#[test]
fn unavailable_where_there_is_no_cgroup_layout() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("cpu")).unwrap();
    let support = CgroupSupport::detect(root.path(), "p");
    let CgroupSupport::Unavailable { reason } = &support else {
        panic!("expected Unavailable, got {support:?}");
    };
    assert!(reason.contains(&root.path().display().to_string()), "{reason}");
    let line = support.describe();
    assert!(line.starts_with("cgroups unavailable ("), "{line}");
    assert!(
        line.ends_with("procfs measurement and termination only"),
        "{line}"
    );
    assert!(support.platform_dirs().is_empty());
    let error = AgentCgroup::create(&support, "agent", &CgroupLimits::default()).unwrap_err();
    assert!(matches!(error, CgroupError::Unavailable(_)), "{error}");
    assert!(!root.path().join("cpu").join("volttron-p").exists());
    // An invalid platform name is unavailable too, never a path outside the root.
    let support = CgroupSupport::detect(root.path(), "../x");
    assert!(!support.is_available(), "{support:?}");
}

/// Where cgroups are writable: the platform and agent groups are made with the contracted
/// CPU weight and memory soft limit, a program launched with `--cgroup` starts in the
/// agent's group (in the cpu and memory hierarchies on v1), and the group is removed once
/// the program is gone.
#[test]
fn agent_runs_in_its_own_cgroup_where_writable() {
    let platform = match real_support("agent") {
        Ok(platform) => platform,
        Err(reason) => {
            eprintln!("skipped: cgroups not writable here: {reason}");
            return;
        }
    };
    let support = &platform.0;
    eprintln!("{}", support.describe());
    let limits = CgroupLimits {
        cpu_mips: Some(1000.0),
        total_mips: 8000.0,
        cpus: 2,
        memory_soft_bytes: Some(64 * MIB),
        memory_max_bytes: Some(512 * MIB),
    };
    let mut group = AgentCgroup::create(support, "listener-1", &limits).expect("create the agent group");
    // Made again (after a crash) it is reused; forgotten, so that only `group` removes it.
    std::mem::forget(AgentCgroup::create(support, "listener-1", &limits).expect("reuse the agent group"));
    let first = group.dirs()[0].clone();
    match support {
        CgroupSupport::V1 {
            cpu_dir, memory_dir, ..
        } => {
            let (cpu, memory) = (cpu_dir.join("listener-1"), memory_dir.join("listener-1"));
            assert_eq!(read(&cpu.join("cpu.shares")), "256"); // 1024 × 1000 / 4000
            assert_eq!(
                read(&memory.join("memory.soft_limit_in_bytes")),
                (64 * MIB).to_string()
            );
            assert_eq!(
                read(&memory.join("memory.limit_in_bytes")),
                (512 * MIB).to_string()
            );
        }
        CgroupSupport::V2 { dir } => {
            let dir = dir.join("listener-1");
            assert_eq!(read(&dir.join("cpu.weight")), "25"); // 100 × 1000 / 4000
            assert_eq!(read(&dir.join("memory.low")), (64 * MIB).to_string());
            assert_eq!(read(&dir.join("memory.max")), (512 * MIB).to_string());
        }
        CgroupSupport::Unavailable { .. } => unreachable!(),
    }

    let options = SandboxOptions {
        cgroup_procs: group.procs_files(),
        ..SandboxOptions::default()
    };
    let (program, args) = sandbox_command(
        Path::new(TRAMPOLINE),
        &options,
        Path::new("/bin/sleep"),
        &["30".into()],
    );
    let mut child = Reaped(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn volttron-sandbox"),
    );
    let pid = child.0.id();
    // Wait for the exec: the cgroup is joined before it, so then it must show.
    let start = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        != "sleep"
    {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the trampoline exited early"
        );
        assert!(start.elapsed() < DEADLINE, "sleep never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let name = platform_name("agent");
    let expected_suffix = format!("/volttron-{name}/listener-1");
    let controllers: &[&str] = match support {
        CgroupSupport::V2 { .. } => &[""],
        _ => &["cpu", "memory"],
    };
    for controller in controllers {
        let path = if controller.is_empty() {
            proc_cgroups(pid)
                .into_iter()
                .find(|(c, _)| c.is_empty())
                .map(|(_, p)| p)
        } else {
            group_of(pid, controller)
        };
        let path = path.unwrap_or_else(|| panic!("no {controller} line in /proc/{pid}/cgroup"));
        assert!(path.ends_with(&expected_suffix), "{controller}: {path}");
    }
    assert!(group.pids().contains(&pid), "{:?}", group.pids());
    let usage = group.usage();
    eprintln!("usage: {usage:?}");
    assert!(usage.memory_bytes.is_some(), "{usage:?}");

    drop(child);
    let start = Instant::now();
    while !group.pids().is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "the group still has {:?}",
            group.pids()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    group.remove();
    assert!(!first.exists(), "{} left behind", first.display());
}

/// A `--cgroup` file that cannot be written: the trampoline exits 126 with one line and
/// never runs the program.
#[test]
fn trampoline_refuses_a_cgroup_it_cannot_join() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-group").join("cgroup.procs");
    let output = Command::new(TRAMPOLINE)
        .arg("--cgroup")
        .arg(&missing)
        .args(["--", "/bin/echo", "ran"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(126), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot join the cgroup"), "{stderr}");
}

/// An agent started in `group` (leading a process group of its own), and everything in
/// the group: on drop the agent's process group and every process in the group are
/// killed, the agent is reaped, and the group is waited for until empty, so that no
/// escaped process outlives the test, failed or not.
struct KillAll<'a> {
    group: &'a AgentCgroup,
    child: Child,
}

impl Drop for KillAll<'_> {
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process, kill_process_group};
        if let Some(leader) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process_group(leader, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let start = Instant::now();
        loop {
            let pids = self.group.pids();
            if pids.is_empty() || start.elapsed() > DEADLINE {
                return;
            }
            for pid in pids {
                if let Some(pid) = Pid::from_raw(pid as i32) {
                    let _ = kill_process(pid, Signal::KILL);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The fields of `/proc/<pid>/stat` after the command name (field 3 first; the state, a
/// letter, reads as 0).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect())
}

/// Field `number` (as numbered in proc(5)) of `pid`'s stat.
fn stat_field(pid: u32, number: usize) -> Option<u64> {
    stat_fields(pid)?.get(number - 3).copied()
}

/// `utime + stime` of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let (utime, stime) = (stat_field(pid, 14), stat_field(pid, 15));
    utime.zip(stime).map(|(u, s)| u + s).expect("the burner's stat")
}

fn clock_ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A `kB` figure of `/proc/<pid>/status` (`VmRSS`, `RssAnon`), in bytes; 0 for a process
/// without one, or gone.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Where cgroups are writable: an agent whose CPU burner left its process tree (its
/// parent exited, so it was re-parented; it is in a session of its own, as a daemon is).
/// Measured through procfs the agent is idle, a `sleep`; measured from its cgroup it burns
/// a core, as the burner's own `/proc/<pid>/stat` says, with two processes and a plausible
/// resident memory.
#[test]
fn cgroup_accounting_counts_a_process_that_left_the_tree_where_writable() {
    let platform = match real_support("escape") {
        Ok(platform) => platform,
        Err(reason) => {
            eprintln!("skipped: cgroups not writable here: {reason}");
            return;
        }
    };
    let support = &platform.0;
    let group =
        AgentCgroup::create(support, "daemonizer", &CgroupLimits::default()).expect("create the agent group");
    // The subshell forks the burner and exits at once; the agent then becomes `sleep`.
    let script = "(setsid /bin/sh -c 'while :; do :; done' &); exec sleep 600";
    let options = SandboxOptions {
        cgroup_procs: group.procs_files(),
        ..SandboxOptions::default()
    };
    let (program, args) = sandbox_command(
        Path::new(TRAMPOLINE),
        &options,
        Path::new("/bin/sh"),
        &["-c".into(), script.into()],
    );
    let mut command = Command::new(program);
    command
        .args(args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut agent = KillAll {
        group: &group,
        child: command.spawn().expect("spawn volttron-sandbox"),
    };
    let pid = agent.child.id();

    // Until the agent is `sleep` and the group holds it and one other process: the burner,
    // whose parent is not the agent.
    let start = Instant::now();
    let burner = loop {
        assert!(
            agent.child.try_wait().unwrap().is_none(),
            "the agent exited early"
        );
        let pids = group.pids();
        let others: Vec<u32> = pids.iter().copied().filter(|p| *p != pid).collect();
        if comm(pid) == "sleep" && pids.contains(&pid) && others.len() == 1 && comm(others[0]) == "sh" {
            break others[0];
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no escaped burner: group {pids:?}, agent {}",
            comm(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let burner_parent = stat_field(burner, 4).expect("the burner's parent");
    assert_ne!(
        burner_parent,
        u64::from(pid),
        "the burner is still the agent's child"
    );
    eprintln!("agent {pid} (sleep), burner {burner} (parent {burner_parent}, not the agent)");

    let key = ProcessKey::of(pid).expect("the agent's key");
    let agents = [
        MonitoredAgent::from(("procfs".to_owned(), key)),
        MonitoredAgent {
            identity: "cgroup".to_owned(),
            key,
            cgroup: Some(group.accounting()),
        },
    ];
    let mut sampler = Sampler::new(bogomips_per_core().unwrap_or(0.0));
    let (start, before) = (Instant::now(), cpu_ticks(burner));
    let first = sampler.sample(&agents, Instant::now());
    std::thread::sleep(WINDOW);
    let second = sampler.sample(&agents, Instant::now());
    let (end, after) = (Instant::now(), cpu_ticks(burner));
    let independent =
        (after - before) as f64 / clock_ticks_per_second() / (end - start).as_secs_f64() * 100.0;
    let group_pids = group.pids();
    let summed = |field| group_pids.iter().map(|p| status_bytes(*p, field)).sum::<u64>();
    let (summed_rss, summed_anon) = (summed("VmRSS"), summed("RssAnon"));
    let usage = group.usage();
    eprintln!("first round: {first:#?}");
    eprintln!("second round: {second:#?}");
    eprintln!(
        "burner per /proc/{burner}/stat: {independent:.1}% of a core; group {group_pids:?} summed VmRSS {summed_rss} bytes, RssAnon {summed_anon} bytes; {usage:?}"
    );

    assert_eq!(
        (first[0].accounting, first[1].accounting),
        (Accounting::Procfs, Accounting::Cgroup)
    );
    assert!(first.iter().all(|u| !u.gone && u.cpu_percent_of_core.is_none()));

    // procfs: the tree is the idle `sleep` alone.
    let procfs = &second[0];
    assert_eq!(procfs.accounting, Accounting::Procfs);
    assert!(!procfs.gone);
    assert_eq!(procfs.processes, 1, "{procfs:?}");
    let procfs_cpu = procfs.cpu_percent_of_core.expect("a procfs rate");
    assert!(procfs_cpu < 5.0, "the tree walk saw the burner: {procfs_cpu:.1}%");

    // The cgroup: the burner too.
    let cgroup = &second[1];
    assert_eq!(cgroup.accounting, Accounting::Cgroup);
    assert!(!cgroup.gone);
    assert_eq!(cgroup.processes, 2, "{cgroup:?}");
    let cpu = cgroup.cpu_percent_of_core.expect("a cgroup rate");
    assert!(independent > 50.0, "the burner hardly ran: {independent:.1}%");
    assert!(cpu > 50.0, "cgroup accounting missed the burner: {cpu:.1}%");
    assert!(
        (cpu - independent).abs() <= CPU_TOLERANCE,
        "cgroup {cpu:.1}% vs /proc/{burner}/stat {independent:.1}% of a core"
    );
    if let Some(bogomips) = bogomips_per_core() {
        let mips = cgroup.cpu_mips.expect("BogoMIPS from the cgroup rate");
        assert!((mips - cpu * bogomips / 100.0).abs() < 1e-6 * mips.max(1.0));
    }

    // Memory: the group's resident figure holds the processes' anonymous memory (at least
    // half their summed RssAnon, allowing for pages they share, which the group counts
    // once) and is no more than their summed RSS (library pages cached before the group
    // existed are charged elsewhere), give or take the reads not being at one instant.
    assert!(cgroup.rss_bytes > 0, "{cgroup:?}");
    assert!(
        cgroup.rss_bytes >= summed_anon / 2 && cgroup.rss_bytes <= summed_rss + MIB,
        "group resident {} vs summed RssAnon {summed_anon}, VmRSS {summed_rss}",
        cgroup.rss_bytes
    );
    assert_eq!(usage.processes, Some(2), "{usage:?}");
    let resident = usage.resident_bytes.expect("the group's resident memory");
    assert!(resident > 0 && resident <= summed_rss + MIB, "{usage:?}");
    assert!(usage.memory_bytes.is_some(), "{usage:?}");

    drop(agent);
    assert!(group.pids().is_empty(), "left in the group: {:?}", group.pids());
    assert!(
        ProcessKey::of(burner).is_none_or(|k| !k.is_running()),
        "the burner survived"
    );
}
