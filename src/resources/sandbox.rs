//! Agent sandbox: no capabilities, no new privileges, optionally a dedicated user, and
//! optionally only the agent's `data/` writable.
//!
//! An agent process is launched through the `volttron-sandbox` trampoline:
//!
//! ```text
//! volttron-sandbox [--cgroup FILE]... [--uid N] [--gid N] [--read-only-except DIR] [--die-with-parent PID] [--] PROGRAM [ARGS...]
//! ```
//!
//! [`sandbox_command`] builds that command line for a program and its arguments, and
//! [`find_trampoline`] finds the binary. The trampoline parses its arguments
//! ([`parse_args`]), calls [`enter`], which confines the trampoline process itself, and then
//! `exec`s the program: the agent is the same process (same pid, process group,
//! environment, working directory and open file descriptors), now confined. When the
//! set-up fails the trampoline prints one line to stderr and exits with status
//! [`EXIT_CANNOT_EXECUTE`] (126, as a shell does for "cannot execute"), so the agent never
//! runs unconfined; bad arguments exit with [`EXIT_USAGE`] (2) and the usage.
//!
//! # What [`enter`] does, in this order
//!
//! | step | how | when it cannot |
//! |---|---|---|
//! | refuses a process with more than one thread | counts `/proc/self/task` | error |
//! | with cgroups: joins each | writes `0` (the writing process) to each given `cgroup.procs` file | error |
//! | clears the ambient set | `caps::clear(None, CapSet::Ambient)` | error (skipped on kernels without ambient capabilities, before 4.3) |
//! | empties the bounding set | `caps::clear(None, CapSet::Bounding)`, then any capability newer than the `caps` crate knows, by number, with `PR_CAPBSET_DROP` | needs `CAP_SETPCAP`: a process without it (an unprivileged platform) keeps its bounding set, reported in [`Entered::bounding_set_kept`] |
//! | with a gid: clears the supplementary groups, sets real, effective and saved gid | `setgroups(0)`, `setresgid` | error |
//! | with a uid: sets real, effective and saved uid | `setresuid` | error |
//! | with a parent pid: dies with the platform | `prctl(PR_SET_PDEATHSIG, SIGTERM)`, then checks that the parent is still that pid (it may have died before) | error |
//! | clears the inheritable, effective and permitted sets | `caps::clear` | error |
//! | sets no-new-privs | `prctl(PR_SET_NO_NEW_PRIVS)` | error |
//! | with a writable directory: Landlock | see below | a kernel without Landlock: reported in [`Entered::landlock`] |
//!
//! The cgroups are joined first, while the process still has the platform's uid and
//! capabilities (a `cgroup.procs` file is typically writable by root only) and before
//! Landlock would forbid the write; the agent then starts inside its group, with no window
//! in which it runs outside it (see [`super::cgroup`]). A cgroup that was asked for and
//! cannot be joined is an error, like any other set-up step (exit 126): the platform passes
//! `--cgroup` only where it created the group, so failing to join it is unexpected, and
//! the agent must not run outside the limits it was given. Without `--cgroup` nothing is
//! joined (the platform's fallback: procfs measurement and termination).
//!
//! The bounding set is emptied before the uid changes because dropping from it needs
//! `CAP_SETPCAP`, which a process gives up when it leaves uid 0. With no-new-privs and
//! empty permitted, inheritable and ambient sets, a process that kept its bounding set
//! still cannot gain a capability: `execve` of a set-user-ID or file-capability binary no
//! longer grants anything.
//!
//! A uid without a gid is refused ([`SandboxError::UidWithoutGid`]): the agent would keep
//! the platform's group (group 0 for a platform running as root).
//!
//! # Only `data/` writable: Landlock
//!
//! With [`SandboxOptions::writable_only`], the process restricts itself with a Landlock
//! ruleset (the [`landlock`] crate; unprivileged, Linux ≥ 5.13) that handles the write
//! accesses of ABI v4 (write to a file, truncate it, create, remove, rename or link files,
//! directories, sockets, FIFOs, devices and symlinks) and allows them only beneath that
//! directory and on `/dev/null`, `/dev/zero` and `/dev/full`. Reading and executing are not
//! restricted, nor is connecting to Unix sockets (the platform's socket lies outside the
//! agent's directory), nor are files opened before the restriction (stdin, stdout, stderr).
//! `/tmp` is **not** writable: it is shared by every agent; an agent that needs temporary
//! files should be launched with `TMPDIR` under its data directory. The directory must
//! exist, or [`enter`] fails.
//!
//! Landlock is best effort, as its crate recommends: on a kernel without it (or with an
//! older ABI) the restriction is not (or only partly) enforced, [`enter`] still succeeds,
//! and [`Entered::landlock`] says so; the trampoline prints it as a warning line on stderr.
//!
//! # Reaching the program
//!
//! A program run as another user (`--uid`, or root without capabilities) must be
//! reachable by that user: every directory on its path searchable (`x`), and the program
//! executable. A clone in a home directory of mode `0700` is not, for any other uid; the
//! kernel then says only "Permission denied". Two checks name the directory instead
//! ([`Unreachable`]):
//!
//! * [`check_reachable`], from the modes, for a uid and gid with no supplementary groups
//!   (how the trampoline runs a program): the platform calls it before launching an agent
//!   in isolation mode, so that the start fails with that reason;
//! * [`check_executable`], with `faccessat(.., X_OK, AT_EACCESS)` as the calling process
//!   (ACLs and all): the trampoline calls it after [`enter`], just before `exec`, and exits
//!   126 with the reason.
//!
//! Only a program named with a `/` is checked (a bare name is looked up in `PATH` by
//! `exec`, which skips entries it may not execute).
//!
//! # Why a trampoline and not `pre_exec`
//!
//! Between `fork` and `exec` of a multi-threaded parent (the platform runs tokio and
//! actix), only async-signal-safe calls are allowed, and `CommandExt::pre_exec` is
//! `unsafe`, which this crate forbids. The trampoline is a separate, single-threaded
//! program: it is exec'ed first, so its set-up code runs in a fresh process image with
//! one thread, where allocating, formatting and opening files are all safe, and the
//! async-signal-safety concern of `pre_exec` does not arise. The set-up system calls
//! (capability sets, `setresuid`, `setresgid`, `setgroups`, no-new-privs, Landlock) act
//! on the calling *thread* at the kernel level, which is the whole process only when it
//! has one thread: hence [`enter`]'s check.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability};
use landlock::{ABI, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus};

/// The trampoline's file name, next to the `volttron` binary.
pub const TRAMPOLINE_NAME: &str = "volttron-sandbox";

/// The environment variable that names the trampoline, overriding [`find_trampoline`]'s
/// search.
pub const ENV_TRAMPOLINE: &str = "VOLTTRON_SANDBOX";

/// The trampoline's exit status when it cannot confine itself or execute the program.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;

/// The trampoline's exit status for bad arguments.
pub const EXIT_USAGE: i32 = 2;

/// The trampoline's usage text.
pub const USAGE: &str = concat!(
    "usage: volttron-sandbox [--cgroup FILE]... [--uid N] [--gid N] [--read-only-except DIR] ",
    "[--die-with-parent PID] [--] PROGRAM [ARGS...]"
);

/// The Landlock ABI whose write accesses are handled (see the module docs).
const LANDLOCK_ABI: ABI = ABI::V4;

/// Files writable besides the data directory when Landlock is on (skipped when absent).
const ALWAYS_WRITABLE: [&str; 3] = ["/dev/null", "/dev/zero", "/dev/full"];

/// How an agent process is confined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxOptions {
    /// Run as this user (real, effective and saved uid); needs [`gid`](Self::gid) too.
    pub uid: Option<u32>,
    /// Run as this group (real, effective and saved gid), with no supplementary groups.
    pub gid: Option<u32>,
    /// Allow writes only beneath this directory (Landlock, best effort).
    pub writable_only: Option<PathBuf>,
    /// Join these cgroups first: write `0` to each of these `cgroup.procs` files
    /// ([`AgentCgroup::procs_files`](super::cgroup::AgentCgroup::procs_files)).
    pub cgroup_procs: Vec<PathBuf>,
    /// The platform's pid: the program gets SIGTERM when its parent dies (a platform
    /// killed before it could stop its agents), whatever the program is. The kernel sends
    /// it when the *thread* that started the process ends: the control service starts
    /// agents from its own thread, which lives as long as the platform.
    pub die_with_parent: Option<u32>,
}

/// A parsed trampoline command line: see [`parse_args`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// How to confine the program.
    pub options: SandboxOptions,
    /// The program to execute (looked up in `PATH` when it has no `/`).
    pub program: OsString,
    /// Its arguments, without the program itself.
    pub args: Vec<OsString>,
}

/// Why [`enter`] could not confine the process. The process may be partly confined: it
/// must not go on to run the agent.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The process has more than one thread; the set-up would confine only the calling one.
    #[error("the process has {threads} threads; the sandbox needs a single-threaded process")]
    MultiThreaded {
        /// How many threads it has.
        threads: usize,
    },
    /// A uid was given without a gid.
    #[error("a uid ({uid}) needs a gid too")]
    UidWithoutGid {
        /// The uid.
        uid: u32,
    },
    /// A capability set could not be changed.
    #[error("cannot clear the {set} capability set: {source}")]
    Capabilities {
        /// Which set: `ambient`, `bounding`, `inheritable`, `effective` or `permitted`.
        set: &'static str,
        /// What the `caps` crate said.
        source: caps::errors::CapsError,
    },
    /// A capability newer than the `caps` crate knows could not be dropped from the
    /// bounding set.
    #[error("cannot drop capability {number} from the bounding set: {source}")]
    BoundingSet {
        /// The capability's number.
        number: u32,
        /// The error.
        source: io::Error,
    },
    /// A cgroup could not be joined.
    #[error("cannot join the cgroup {}: {source}", file.display())]
    Cgroup {
        /// Its `cgroup.procs` file.
        file: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The supplementary groups, the gid or the uid could not be set.
    #[error("cannot set the {what} to {id}: {source}")]
    Identity {
        /// `supplementary groups`, `gid` or `uid`.
        what: &'static str,
        /// The id (0 for the supplementary groups: none).
        id: u32,
        /// The error.
        source: io::Error,
    },
    /// The parent-death signal could not be set.
    #[error("cannot ask for a signal when the platform dies: {0}")]
    ParentDeathSignal(#[source] io::Error),
    /// The parent (the platform) is not the expected process any more: it died before the
    /// program could be tied to it.
    #[error("the platform (pid {expected}) is gone")]
    ParentGone {
        /// The platform's pid.
        expected: u32,
    },
    /// No-new-privs could not be set.
    #[error("cannot set no-new-privs: {0}")]
    NoNewPrivs(#[source] io::Error),
    /// The writable directory could not be opened.
    #[error("cannot open the writable directory: {0}")]
    WritableDir(#[source] landlock::PathFdError),
    /// The Landlock ruleset could not be built or applied.
    #[error("cannot restrict writes to {}: {source}", dir.display())]
    Landlock {
        /// The writable directory.
        dir: PathBuf,
        /// What the `landlock` crate said.
        source: landlock::RulesetError,
    },
}

/// Why a user cannot execute a program: a directory on its path it may not traverse, or
/// the program itself (see the module docs, *Reaching the program*). The mode, owner and
/// group are those of that directory or of the program.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// A directory on the program's path is not searchable by the user.
    #[error(
        "{}: uid {uid} may not traverse {} (mode {mode:04o}, owner {owner}:{group})",
        program.display(),
        dir.display()
    )]
    Directory {
        /// The program.
        program: PathBuf,
        /// The first directory on its path the user may not traverse.
        dir: PathBuf,
        /// The user.
        uid: u32,
        /// The directory's permission bits.
        mode: u32,
        /// Its owner.
        owner: u32,
        /// Its group.
        group: u32,
    },
    /// The program is not executable by the user.
    #[error(
        "{}: uid {uid} may not execute it (mode {mode:04o}, owner {owner}:{group})",
        program.display()
    )]
    Program {
        /// The program.
        program: PathBuf,
        /// The user.
        uid: u32,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        owner: u32,
        /// Its group.
        group: u32,
    },
}

/// Whether `uid` (in group `gid`, with no supplementary groups and no capabilities) may
/// execute `program`, from the modes and owners of the directories on its path (as
/// written and, when it differs, with symbolic links resolved) and of the program. A
/// relative path is taken from the current directory, which is not checked; a bare name
/// (no `/`) is not checked at all. A file or directory with a POSIX ACL, and one that
/// cannot be read (missing: `exec` will say so), counts as reachable: the trampoline's
/// [`check_executable`] is exact.
pub fn check_reachable(program: &Path, uid: u32, gid: u32) -> Result<(), Unreachable> {
    if !has_slash(program) {
        return Ok(());
    }
    let denied = |path: &Path| -> Option<(u32, u32, u32)> {
        let meta = std::fs::metadata(path).ok()?;
        if has_acl(path) {
            return None;
        }
        let mode = meta.mode() & 0o7777;
        let bit = if meta.uid() == uid {
            0o100
        } else if meta.gid() == gid {
            0o010
        } else {
            0o001
        };
        (mode & bit == 0).then_some((mode, meta.uid(), meta.gid()))
    };
    let resolved = program.canonicalize().ok().filter(|r| r != program);
    let paths: Vec<&Path> = std::iter::once(program).chain(resolved.as_deref()).collect();
    first_denied(program, &paths, uid, denied)
}

/// The first directory on any of `paths`, then `program` itself, that `denied` refuses
/// (with its mode, owner and group), as the error naming it.
fn first_denied(
    program: &Path,
    paths: &[&Path],
    uid: u32,
    denied: impl Fn(&Path) -> Option<(u32, u32, u32)>,
) -> Result<(), Unreachable> {
    for path in paths {
        for dir in directories_on(path) {
            if let Some((mode, owner, group)) = denied(dir) {
                return Err(Unreachable::Directory {
                    program: program.to_owned(),
                    dir: dir.to_owned(),
                    uid,
                    mode,
                    owner,
                    group,
                });
            }
        }
    }
    match denied(program) {
        Some((mode, owner, group)) => Err(Unreachable::Program {
            program: program.to_owned(),
            uid,
            mode,
            owner,
            group,
        }),
        None => Ok(()),
    }
}

/// Whether the calling process may execute `program`: `faccessat(X_OK, AT_EACCESS)` on
/// each directory on its path, then on the program (the kernel's own answer: modes,
/// ACLs, capabilities). Only "permission denied" is reported; a missing file or any other
/// failure is left to `exec` to report. A bare name (no `/`) is not checked.
pub fn check_executable(program: &Path) -> Result<(), Unreachable> {
    use rustix::fs::{Access, AtFlags, CWD, accessat, statat};
    if !has_slash(program) {
        return Ok(());
    }
    let uid = rustix::process::geteuid().as_raw();
    let denied = |path: &Path| -> Option<(u32, u32, u32)> {
        match accessat(CWD, path, Access::EXEC_OK, AtFlags::EACCESS) {
            Err(rustix::io::Errno::ACCESS) => {
                // Its parent was searchable, so it can be stat'ed; if not (a symbolic
                // link on the way), `exec`'s own error is all there is to say.
                let stat = statat(CWD, path, AtFlags::empty()).ok()?;
                Some((stat.st_mode & 0o7777, stat.st_uid, stat.st_gid))
            }
            _ => None,
        }
    };
    first_denied(program, &[program], uid, denied)
}

fn has_slash(path: &Path) -> bool {
    path.as_os_str().as_bytes().contains(&b'/')
}

/// The directories `path`'s lookup searches, outermost first: `/`, `/a`, `/a/b` for
/// `/a/b/c`; `.` and `a` for `a/c`.
fn directories_on(path: &Path) -> Vec<&Path> {
    let mut dirs: Vec<&Path> = path
        .ancestors()
        .skip(1)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }
        })
        .collect();
    dirs.reverse();
    // `./c`: `.`, then the empty path, also `.`.
    dirs.dedup();
    dirs
}

/// Whether `path` has a POSIX access ACL (its modes then do not tell who may search it).
fn has_acl(path: &Path) -> bool {
    rustix::fs::getxattr_query(path, "system.posix_acl_access").is_ok()
}

/// How far Landlock confined writes (see [`Entered::landlock`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteConfinement {
    /// Every handled write access is restricted.
    Full,
    /// The kernel's Landlock ABI is older than v4: some write accesses (truncation,
    /// renaming or linking across directories) are not restricted.
    Partial,
    /// The kernel has no Landlock (or it is disabled): writes are not restricted.
    None,
}

/// What [`enter`] did, where it was best effort.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entered {
    /// The bounding set was not empty and the process lacked `CAP_SETPCAP` to empty it
    /// (an unprivileged platform): it was kept. No-new-privs and the empty capability
    /// sets still keep the program from gaining any capability.
    pub bounding_set_kept: bool,
    /// With [`SandboxOptions::writable_only`], how far writes are confined.
    pub landlock: Option<WriteConfinement>,
}

impl Entered {
    /// One line per best-effort step that fell short, for the log.
    pub fn warnings(&self, options: &SandboxOptions) -> Vec<String> {
        let mut lines = Vec::new();
        if self.bounding_set_kept {
            lines.push(
                "capability bounding set kept (no CAP_SETPCAP); no-new-privs is set and no capability \
                 is held"
                    .to_owned(),
            );
        }
        let dir = options
            .writable_only
            .as_deref()
            .unwrap_or(Path::new(""))
            .display();
        match self.landlock {
            Some(WriteConfinement::Partial) => lines.push(format!(
                "Landlock only partly enforced (old kernel ABI): writes outside {dir} are only partly \
                 restricted"
            )),
            Some(WriteConfinement::None) => lines.push(format!(
                "Landlock not supported by this kernel: writes outside {dir} are not restricted"
            )),
            Some(WriteConfinement::Full) | None => {}
        }
        lines
    }
}

/// The program and arguments that run `program` with `args` through the trampoline at
/// `trampoline`, confined as `options` say.
pub fn sandbox_command(
    trampoline: &Path,
    options: &SandboxOptions,
    program: &Path,
    args: &[OsString],
) -> (PathBuf, Vec<OsString>) {
    let mut out = Vec::with_capacity(args.len() + 8 + 2 * options.cgroup_procs.len());
    for file in &options.cgroup_procs {
        out.push("--cgroup".into());
        out.push(file.as_os_str().to_owned());
    }
    if let Some(uid) = options.uid {
        out.push("--uid".into());
        out.push(uid.to_string().into());
    }
    if let Some(gid) = options.gid {
        out.push("--gid".into());
        out.push(gid.to_string().into());
    }
    if let Some(dir) = &options.writable_only {
        out.push("--read-only-except".into());
        out.push(dir.as_os_str().to_owned());
    }
    if let Some(pid) = options.die_with_parent {
        out.push("--die-with-parent".into());
        out.push(pid.to_string().into());
    }
    out.push("--".into());
    out.push(program.as_os_str().to_owned());
    out.extend(args.iter().cloned());
    (trampoline.to_path_buf(), out)
}

/// The trampoline binary. When `$VOLTTRON_SANDBOX` is set (non-empty), that path if it is
/// a file and `None` otherwise; else `volttron-sandbox` next to the running executable, else
/// one directory up (a test binary in `target/debug/deps` finds
/// `target/debug/volttron-sandbox`).
pub fn find_trampoline() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(ENV_TRAMPOLINE).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(TRAMPOLINE_NAME))
        .find(|candidate| candidate.is_file())
}

/// Parses the trampoline's arguments (without `argv[0]`): options, an optional `--`, the
/// program, its arguments. Options are `--cgroup FILE` (repeatable), `--uid N`, `--gid N`
/// and `--read-only-except DIR`, each also as `--opt=value`; the first argument that is not an option is the program.
/// The error is a one-line message for the usage.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, String> {
    let mut options = SandboxOptions::default();
    let mut args = args.into_iter();
    let program = loop {
        let Some(arg) = args.next() else {
            return Err("no program to execute".to_owned());
        };
        if arg == "--" {
            break args.next().ok_or("no program to execute after --")?;
        }
        let Some(text) = arg.to_str().filter(|t| t.starts_with('-')) else {
            break arg;
        };
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) => (name, Some(OsString::from(value))),
            None => (text, None),
        };
        let mut value = |name: &str| -> Result<OsString, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--uid" => options.uid = Some(parse_id(name, &value(name)?)?),
            "--die-with-parent" => options.die_with_parent = Some(parse_id(name, &value(name)?)?),
            "--gid" => options.gid = Some(parse_id(name, &value(name)?)?),
            "--cgroup" => {
                let file = value(name)?;
                if file.is_empty() {
                    return Err(format!("{name} needs a cgroup.procs file"));
                }
                options.cgroup_procs.push(file.into());
            }
            "--read-only-except" => {
                let dir = value(name)?;
                if dir.is_empty() {
                    return Err(format!("{name} needs a directory"));
                }
                options.writable_only = Some(dir.into());
            }
            _ => return Err(format!("unknown option {text}")),
        }
    };
    if let (Some(uid), None) = (options.uid, options.gid) {
        return Err(SandboxError::UidWithoutGid { uid }.to_string());
    }
    Ok(Invocation {
        options,
        program,
        args: args.collect(),
    })
}

fn parse_id(name: &str, value: &OsStr) -> Result<u32, String> {
    value
        .to_str()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{name}: not an id: {}", value.to_string_lossy()))
}

/// Confines the calling process as `options` say (see the module docs for the steps and
/// their order). Call it only in a single-threaded process that is about to `exec` the
/// program to confine: it is refused ([`SandboxError::MultiThreaded`]) when
/// `/proc/self/task` lists more than one thread. On error the process may be partly
/// confined and must not run the program.
pub fn enter(options: &SandboxOptions) -> Result<Entered, SandboxError> {
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        let threads = tasks.count();
        if threads > 1 {
            return Err(SandboxError::MultiThreaded { threads });
        }
    }
    if let (Some(uid), None) = (options.uid, options.gid) {
        return Err(SandboxError::UidWithoutGid { uid });
    }
    let mut entered = Entered::default();

    for file in &options.cgroup_procs {
        std::fs::write(file, "0").map_err(|source| SandboxError::Cgroup {
            file: file.clone(),
            source,
        })?;
    }
    if caps::runtime::ambient_set_supported().is_ok() {
        caps::clear(None, CapSet::Ambient).map_err(caps_error("ambient"))?;
    }
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        caps::clear(None, CapSet::Bounding).map_err(caps_error("bounding"))?;
        drop_newer_from_bounding_set()?;
    } else {
        entered.bounding_set_kept = !caps::read(None, CapSet::Bounding).unwrap_or_default().is_empty();
    }

    if let Some(gid) = options.gid {
        let id_error = |what, id| {
            move |e: rustix::io::Errno| SandboxError::Identity {
                what,
                id,
                source: e.into(),
            }
        };
        rustix::thread::set_thread_groups(&[]).map_err(id_error("supplementary groups", 0))?;
        let gid = rustix::process::Gid::from_raw(gid);
        rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(id_error("gid", gid.as_raw()))?;
        if let Some(uid) = options.uid {
            let uid = rustix::process::Uid::from_raw(uid);
            rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(id_error("uid", uid.as_raw()))?;
        }
    }

    // After the uid change, which resets it.
    if let Some(expected) = options.die_with_parent {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
            .map_err(|e| SandboxError::ParentDeathSignal(e.into()))?;
        let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_pid() as u32);
        if parent != expected {
            return Err(SandboxError::ParentGone { expected });
        }
    }

    for (set, name) in [
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
    ] {
        caps::clear(None, set).map_err(caps_error(name))?;
    }
    rustix::thread::set_no_new_privs(true).map_err(|e| SandboxError::NoNewPrivs(e.into()))?;

    if let Some(dir) = &options.writable_only {
        entered.landlock = Some(restrict_writes(dir)?);
    }
    Ok(entered)
}

fn caps_error(set: &'static str) -> impl FnOnce(caps::errors::CapsError) -> SandboxError {
    move |source| SandboxError::Capabilities { set, source }
}

/// Drops from the bounding set the capabilities past the last one the `caps` crate knows,
/// up to the kernel's last (`PR_CAPBSET_READ` fails with `EINVAL` past it).
fn drop_newer_from_bounding_set() -> Result<(), SandboxError> {
    use rustix::thread::{CapabilitySet, capability_is_in_bounding_set, remove_capability_from_bounding_set};
    let first = caps::all()
        .iter()
        .map(|c| u32::from(c.index()) + 1)
        .max()
        .unwrap_or(0);
    for number in first..u64::BITS {
        let cap = CapabilitySet::from_bits_retain(1 << number);
        match capability_is_in_bounding_set(cap) {
            Ok(true) => remove_capability_from_bounding_set(cap).map_err(|e| SandboxError::BoundingSet {
                number,
                source: e.into(),
            })?,
            Ok(false) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// Restricts writes to beneath `dir` (and [`ALWAYS_WRITABLE`]), best effort.
fn restrict_writes(dir: &Path) -> Result<WriteConfinement, SandboxError> {
    let write = AccessFs::from_write(LANDLOCK_ABI);
    let dir_fd = PathFd::new(dir).map_err(SandboxError::WritableDir)?;
    let landlock_error = |source: landlock::RulesetError| SandboxError::Landlock {
        dir: dir.to_path_buf(),
        source,
    };
    let status = Ruleset::default()
        .handle_access(write)
        .and_then(|ruleset| ruleset.create())
        .and_then(|ruleset| ruleset.add_rule(PathBeneath::new(dir_fd, write)))
        .and_then(|ruleset| ruleset.add_rules(landlock::path_beneath_rules(ALWAYS_WRITABLE, write)))
        .and_then(|ruleset| ruleset.restrict_self())
        .map_err(landlock_error)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => WriteConfinement::Full,
        RulesetStatus::PartiallyEnforced => WriteConfinement::Partial,
        RulesetStatus::NotEnforced => WriteConfinement::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn command_round_trips_through_parse_args() {
        let options = SandboxOptions {
            uid: Some(65534),
            gid: Some(65533),
            writable_only: Some("/var/lib/agent/data".into()),
            cgroup_procs: vec![
                "/cg/cpu/a/cgroup.procs".into(),
                "/cg/memory/a/cgroup.procs".into(),
            ],
            die_with_parent: Some(4242),
        };
        let args = os(&["--uid", "-x", "--"]);
        let (program, argv) = sandbox_command(
            Path::new("/t/volttron-sandbox"),
            &options,
            Path::new("/bin/a"),
            &args,
        );
        assert_eq!(program, Path::new("/t/volttron-sandbox"));
        let parsed = parse_args(argv).unwrap();
        assert_eq!(parsed.options, options);
        assert_eq!(parsed.program, "/bin/a");
        assert_eq!(parsed.args, args);
    }

    #[test]
    fn directories_on_a_path_outermost_first() {
        let dirs = |p: &str| -> Vec<PathBuf> {
            directories_on(Path::new(p))
                .into_iter()
                .map(Path::to_owned)
                .collect()
        };
        assert_eq!(
            dirs("/a/b/c"),
            [Path::new("/"), Path::new("/a"), Path::new("/a/b")]
        );
        assert_eq!(dirs("a/c"), [Path::new("."), Path::new("a")]);
        assert_eq!(dirs("./c"), [Path::new(".")]);
    }

    #[test]
    fn bare_names_are_not_checked() {
        assert_eq!(check_reachable(Path::new("sleep"), 65534, 65534), Ok(()));
        assert_eq!(check_executable(Path::new("sleep")), Ok(()));
    }

    #[test]
    fn parse_args_forms_and_errors() {
        let parsed = parse_args(os(&["--gid=7", "prog", "--uid", "1"])).unwrap();
        assert_eq!(parsed.options.gid, Some(7));
        assert_eq!(parsed.options.uid, None);
        assert_eq!(parsed.program, "prog");
        assert_eq!(parsed.args, os(&["--uid", "1"]));
        assert!(parse_args(os(&[])).is_err());
        assert!(parse_args(os(&["--"])).is_err());
        assert!(parse_args(os(&["--uid"])).is_err());
        assert!(parse_args(os(&["--uid", "x", "p"])).is_err());
        assert!(parse_args(os(&["--uid", "1", "p"])).unwrap_err().contains("gid"));
        assert!(parse_args(os(&["--bogus", "p"])).is_err());
        assert!(parse_args(os(&["--read-only-except=", "p"])).is_err());
        assert!(parse_args(os(&["--cgroup", "p"])).is_err());
        assert!(parse_args(os(&["--cgroup=", "p"])).is_err());
        assert!(parse_args(os(&["--die-with-parent", "me", "p"])).is_err());
        assert_eq!(
            parse_args(os(&["--die-with-parent=7", "p"]))
                .unwrap()
                .options
                .die_with_parent,
            Some(7)
        );
        let parsed = parse_args(os(&["--cgroup", "/a", "--cgroup=/b", "p"])).unwrap();
        assert_eq!(
            parsed.options.cgroup_procs,
            [PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(parsed.program, "p");
    }
}
