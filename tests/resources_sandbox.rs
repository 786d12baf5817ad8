//! The agent sandbox against real processes: programs launched through the
//! `volttron-sandbox` trampoline, checked from the outside through `/proc/<pid>/status`
//! (capability sets, no-new-privs, uid, gid, groups) and by what they can and cannot do
//! (write outside the writable directory under Landlock).
//!
//! Changing the uid and gid needs root; the tests that do skip, with a printed reason,
//! otherwise. What another user runs is copied where it can reach it (the clone may be in
//! a `0700` home directory). The Landlock test skips, with a printed reason, on a kernel without Landlock.
//! Every child is killed and reaped on drop.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use volttron::resources::sandbox::{
    EXIT_CANNOT_EXECUTE, EXIT_USAGE, SandboxError, SandboxOptions, USAGE, Unreachable, check_reachable,
    enter, find_trampoline, sandbox_command,
};

const TRAMPOLINE: &str = env!("CARGO_BIN_EXE_volttron-sandbox");
const NOBODY: u32 = 65534;
const ZERO_CAPS: &str = "0000000000000000";
const DEADLINE: Duration = Duration::from_secs(10);

/// A child killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

/// The fields of a `/proc/<pid>/status` text.
fn parse_status(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
        .collect()
}

fn status_of(pid: u32) -> HashMap<String, String> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default())
}

/// Whether this (test) process may empty a bounding set: `CAP_SETPCAP` (8) in its
/// effective set.
fn has_setpcap() -> bool {
    let status = status_of(std::process::id());
    u64::from_str_radix(&status["CapEff"], 16).is_ok_and(|eff| eff & (1 << 8) != 0)
}

fn sandbox(args: &[&str]) -> Command {
    let mut command = Command::new(TRAMPOLINE);
    command.args(args).stdin(Stdio::null());
    command
}

fn run(args: &[&str]) -> Output {
    sandbox(args).output().expect("run volttron-sandbox")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_confined(status: &HashMap<String, String>) {
    for key in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status[key], ZERO_CAPS, "{key} in {status:?}");
    }
    if has_setpcap() {
        assert_eq!(status["CapBnd"], ZERO_CAPS, "CapBnd in {status:?}");
    } else {
        eprintln!("CapBnd not checked: this test process lacks CAP_SETPCAP, so the trampoline keeps it");
    }
    assert_eq!(status["NoNewPrivs"], "1", "{status:?}");
}

/// The sandboxed program, read from the outside: the child is the trampoline until it
/// execs `sleep`, with the same pid; its status is read once `Name` is `sleep`.
#[test]
fn spawned_child_has_no_capabilities_and_no_new_privs() {
    let child = Reaped(
        sandbox(&["--", "sleep", "30"])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn volttron-sandbox"),
    );
    let pid = child.0.id();
    let started = Instant::now();
    let status = loop {
        let status = status_of(pid);
        if status.get("Name").is_some_and(|name| name == "sleep") {
            break status;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "pid {pid} never became sleep: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_confined(&status);
    if is_root() {
        // Nothing changed but the capabilities: still root, still root's groups.
        assert!(status["Uid"].starts_with("0\t"), "{status:?}");
    }
}

/// The same, read by the program itself, through `sh`, with the environment, the working
/// directory and the arguments passed through.
#[test]
fn program_keeps_environment_directory_and_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = sandbox(&[
        "/bin/sh",
        "-c",
        "echo \"$SANDBOX_TEST_VAR|$(pwd)|$1|$$\"; cat /proc/self/status",
        "sh",
        "first arg",
    ])
    .env("SANDBOX_TEST_VAR", "kept")
    .current_dir(dir.path())
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    let (first, rest) = stdout.split_once('\n').unwrap();
    let cwd = dir.path().canonicalize().unwrap();
    let fields: Vec<&str> = first.split('|').collect();
    assert_eq!(
        fields[..3],
        ["kept", cwd.to_str().unwrap(), "first arg"],
        "{stdout}"
    );
    assert_confined(&parse_status(rest));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// As root: `--uid 65534 --gid 65534` runs the program as nobody, in nogroup, with no
/// supplementary groups, and still with no capabilities.
#[test]
fn dedicated_uid_and_gid() {
    if !is_root() {
        eprintln!(
            "skipped: changing the uid and gid needs root (this test runs as uid {})",
            { rustix::process::getuid().as_raw() }
        );
        return;
    }
    let nobody = NOBODY.to_string();
    let out = run(&[
        "--uid",
        &nobody,
        "--gid",
        &nobody,
        "--",
        "cat",
        "/proc/self/status",
    ]);
    assert!(out.status.success(), "{out:?}");
    let status = parse_status(&text(&out.stdout));
    let all = format!("{NOBODY}\t{NOBODY}\t{NOBODY}\t{NOBODY}");
    assert_eq!(status["Uid"], all, "{status:?}");
    assert_eq!(status["Gid"], all, "{status:?}");
    assert_eq!(status["Groups"], "", "{status:?}");
    assert_confined(&status);
}

/// A directory under `/tmp` (mode `0755`) holding a copy (mode `0755`) of `program`: what
/// another user can execute wherever the clone is (under a `0700` home directory, the
/// build's own binaries are out of its reach).
fn reachable_copy(program: &str) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("volttron-sandbox-test-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join(Path::new(program).file_name().unwrap());
    // Copied by another process: a file this one had open for writing could be inherited
    // by a child another test forks meanwhile, and executing it would then fail with
    // ETXTBSY until that child execs.
    let status = Command::new("cp").arg(program).arg(&copy).status().unwrap();
    assert!(status.success(), "cp {program} {}", copy.display());
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    check_reachable(&copy, NOBODY, NOBODY).expect("nobody can execute the copy");
    (dir, copy)
}

/// As root: a trampoline already running as nobody (no `CAP_SETPCAP`, an empty bounding
/// set) runs a second one, which confines itself without privileges and without warnings.
/// The second one is a copy nobody can reach, wherever the clone is.
#[test]
fn unprivileged_trampoline_still_confines() {
    if !is_root() {
        eprintln!("skipped: dropping to nobody first needs root");
        return;
    }
    let nobody = NOBODY.to_string();
    let (_dir, inner) = reachable_copy(TRAMPOLINE);
    let out = run(&[
        "--uid",
        &nobody,
        "--gid",
        &nobody,
        "--",
        inner.to_str().unwrap(),
        "--",
        "cat",
        "/proc/self/status",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let status = parse_status(&text(&out.stdout));
    assert!(status["Uid"].starts_with(&nobody), "{status:?}");
    assert_confined(&status);
}

/// A program under a directory its user may not traverse (here: `0700`, root's, as a
/// clone in root's home directory is for any other user): [`check_reachable`] names that
/// directory, and so does the trampoline, as that user, instead of running it (exit 126,
/// one line).
#[test]
fn a_program_its_user_cannot_reach_is_refused_naming_the_directory() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let closed = tempfile::tempdir().unwrap();
    let bin = closed.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let program = bin.join("agent");
    std::fs::write(&program, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let me = rustix::process::geteuid().as_raw();
    let my_group = std::fs::metadata(closed.path()).unwrap().gid();

    // From the modes: the owner may; nobody may not pass the 0700 directory.
    assert_eq!(check_reachable(&program, me, my_group), Ok(()));
    assert_eq!(
        check_reachable(&program, NOBODY, NOBODY),
        Err(Unreachable::Directory {
            program: program.clone(),
            dir: closed.path().to_owned(),
            uid: NOBODY,
            mode: 0o700,
            owner: me,
            group: my_group,
        })
    );
    // A program without execute bits for the user, in a directory it may traverse.
    let (_open, copy) = reachable_copy(program.to_str().unwrap());
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o744)).unwrap();
    let err = check_reachable(&copy, NOBODY, NOBODY).unwrap_err();
    assert!(matches!(err, Unreachable::Program { mode: 0o744, .. }), "{err:?}");
    assert!(err.to_string().contains("may not execute it (mode 0744"), "{err}");

    if !is_root() {
        eprintln!("trampoline part skipped: running it as nobody needs root");
        return;
    }
    let nobody = NOBODY.to_string();
    let out = run(&[
        "--uid",
        &nobody,
        "--gid",
        &nobody,
        "--",
        program.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(EXIT_CANNOT_EXECUTE), "{out:?}");
    assert!(out.stdout.is_empty(), "it ran: {out:?}");
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "volttron-sandbox: cannot execute {}: uid {NOBODY} may not traverse {} (mode 0700, owner 0:0)",
            program.display(),
            closed.path().display()
        )
    );
    // The same program, reachable, runs.
    let out = run(&["--uid", &nobody, "--gid", &nobody, "--", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(EXIT_CANNOT_EXECUTE), "0744: {out:?}");
    assert!(
        text(&out.stderr).contains("may not execute it (mode 0744, owner 0:0)"),
        "{out:?}"
    );
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(&["--uid", &nobody, "--gid", &nobody, "--", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "ran\n");
}

/// A program that is missing, not executable or a directory: exit 126 and one line on
/// stderr naming it.
#[test]
fn missing_program_exits_126_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("agent.txt");
    std::fs::write(&not_executable, "not a program").unwrap();
    for args in [
        &["--", "/nonexistent/agent"][..],
        &["no-such-agent-program-anywhere-on-path"],
        &["--", not_executable.to_str().unwrap()],
        &["--", dir.path().to_str().unwrap()],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(EXIT_CANNOT_EXECUTE), "{args:?}: {out:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("volttron-sandbox: cannot execute "),
            "{stderr}"
        );
        assert!(stderr.contains(args.last().unwrap()), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// A set-up failure (here a writable directory that does not exist) also exits 126 with
/// one line, and the program never runs.
#[test]
fn setup_failure_exits_126_without_running_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let missing = dir.path().join("missing");
    let script = format!("touch {}", marker.display());
    let out = run(&[
        "--read-only-except",
        missing.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(EXIT_CANNOT_EXECUTE), "{out:?}");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("missing"), "{stderr}");
    assert!(!marker.exists());
}

/// Bad arguments: exit 2, the reason and the usage on stderr; `--help` prints the usage.
#[test]
fn bad_arguments_exit_2_with_usage() {
    for args in [
        &[][..],
        &["--"],
        &["--uid"],
        &["--uid", "nobody", "--gid", "1", "--", "true"],
        &["--uid", "1", "--", "true"],
        &["--frobnicate", "--", "true"],
        &["--read-only-except"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(EXIT_USAGE), "{args:?}: {out:?}");
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {stderr}");
        assert!(lines[0].starts_with("volttron-sandbox: "), "{stderr}");
        assert_eq!(lines[1], USAGE);
    }
    let out = run(&["--help"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim_end(), USAGE);
}

/// `--read-only-except DIR`: writes beneath DIR (and to `/dev/null`) succeed; creating,
/// truncating, removing or renaming anything elsewhere fails, even as root; reading
/// elsewhere still works.
#[test]
fn writes_only_beneath_the_writable_directory() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let outside = root.path().join("outside.txt");
    std::fs::write(&outside, "before").unwrap();
    let data_arg = data.to_str().unwrap();

    let check = |script: &str| -> Output {
        run(&[
            "--read-only-except",
            data_arg,
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
        ])
    };
    let probe = check("true");
    let stderr = text(&probe.stderr);
    if stderr.contains("Landlock not supported") {
        eprintln!("skipped: this kernel has no Landlock ({})", stderr.trim());
        return;
    }
    assert!(probe.status.success() && stderr.is_empty(), "{probe:?}");

    let root_dir = root.path().display();
    let allowed = [
        format!("echo x > {data_arg}/new && test \"$(cat {data_arg}/new)\" = x"),
        format!("mkdir -p {data_arg}/a/b && echo y > {data_arg}/a/b/f && mv {data_arg}/a/b/f {data_arg}/g"),
        format!("rm -r {data_arg}/a"),
        "echo x > /dev/null".to_owned(),
        format!("test \"$(cat {})\" = before", outside.display()),
        "cat /proc/self/status > /dev/null".to_owned(),
    ];
    for script in &allowed {
        let out = check(script);
        assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    }
    let denied = [
        format!("echo x > {root_dir}/created"),
        format!("echo x > {}", outside.display()),
        format!("echo x >> {}", outside.display()),
        format!("mkdir {root_dir}/dir"),
        format!("rm {}", outside.display()),
        format!("mv {} {data_arg}/moved", outside.display()),
        format!("ln -s /etc {root_dir}/link"),
    ];
    for script in &denied {
        let out = check(script);
        assert!(!out.status.success(), "{script} succeeded");
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "before");
    let mut left: Vec<PathBuf> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    left.sort();
    assert_eq!(left, [data.clone(), outside.clone()]);
}

/// [`enter`] refuses a process with more than one thread (it would confine only the
/// calling thread) before changing anything.
#[test]
fn enter_refuses_a_multithreaded_process() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || rx.recv());
    let result = enter(&SandboxOptions::default());
    drop(tx);
    other.join().unwrap().unwrap_err();
    match result {
        Err(SandboxError::MultiThreaded { threads }) => assert!(threads >= 2),
        other => panic!("expected MultiThreaded, got {other:?}"),
    }
    let status = status_of(std::process::id());
    assert_eq!(status["NoNewPrivs"], "0", "the test process was confined");
}

/// [`sandbox_command`] and [`find_trampoline`]: the command they make runs the program
/// confined.
#[test]
fn sandbox_command_runs_through_the_found_trampoline() {
    let trampoline = find_trampoline().expect("volttron-sandbox next to the test binary");
    assert_eq!(
        trampoline.file_name(),
        Path::new(TRAMPOLINE).file_name(),
        "{}",
        trampoline.display()
    );
    let args: Vec<OsString> = vec!["/proc/self/status".into()];
    let (program, argv) = sandbox_command(&trampoline, &SandboxOptions::default(), Path::new("cat"), &args);
    assert_eq!(program, trampoline);
    let out = Command::new(&program).args(&argv).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_confined(&parse_status(&text(&out.stdout)));
}

/// `--die-with-parent PID`: the program gets SIGTERM when its parent dies (a platform
/// killed before it could stop its agents), and the trampoline refuses to start one whose
/// parent is not that pid any more.
#[test]
fn a_program_dies_with_its_parent() {
    // A shell stands for the platform: it starts the trampoline with its own pid, prints
    // the program's pid, then waits.
    let script = format!("\"{TRAMPOLINE}\" --die-with-parent $$ -- sleep 600 & echo $!; exec sleep 600");
    let mut parent = Reaped(
        Command::new("/bin/sh")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the parent"),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(parent.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let program: u32 = line.trim().parse().unwrap();
    // Should the test fail, no orphan is left behind (it also holds the test's stderr).
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(pid) = rustix::process::Pid::from_raw(self.0 as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
    let _program = Kill(program);
    // Confined and running as `sleep`, then orphaned by SIGKILL to its parent.
    let started = Instant::now();
    while status_of(program).get("Name").is_none_or(|n| n != "sleep") {
        assert!(started.elapsed() < DEADLINE, "pid {program} never became sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
    parent.0.kill().unwrap();
    parent.0.wait().unwrap();
    let started = Instant::now();
    // Gone (or a zombie until init reaps it), not re-parented and sleeping on.
    while status_of(program)
        .get("State")
        .is_some_and(|s| !s.starts_with('Z'))
    {
        assert!(
            started.elapsed() < DEADLINE,
            "pid {program} outlived its parent: {:?}",
            status_of(program)
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // A parent that is not the given pid: refused before the program runs.
    let out = run(&["--die-with-parent", "1", "--", "true"]);
    assert_eq!(out.status.code(), Some(EXIT_CANNOT_EXECUTE), "{out:?}");
    assert!(
        text(&out.stderr).contains("the platform (pid 1) is gone"),
        "{out:?}"
    );
}
