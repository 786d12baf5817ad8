//! Agents' own cgroups ([`volttron::resources::cgroup`]) against the real cgroup file
//! systems: the platform group and an agent group made under `/sys/fs/cgroup`, their
//! control files, and a program launched through `volttron-sandbox --cgroup` that starts
//! inside the agent's group, checked from the outside through `/proc/<pid>/cgroup`.
//!
//! Where cgroups cannot be created here (not root, a read-only or absent cgroup file
//! system, no cpu and memory controllers) the tests that need them skip with a printed
//! reason. The fallback (no cgroup layout: [`CgroupSupport::Unavailable`]) is always
//! tested. Every group made is removed on drop, and every child killed and reaped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use volttron::resources::cgroup::{AgentCgroup, CGROUP_ROOT, CgroupError, CgroupLimits, CgroupSupport};
use volttron::resources::sandbox::{SandboxOptions, sandbox_command};

const TRAMPOLINE: &str = env!("CARGO_BIN_EXE_volttron-sandbox");
const DEADLINE: Duration = Duration::from_secs(10);
const MIB: u64 = 1 << 20;

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
