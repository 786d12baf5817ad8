//! Agent isolation mode (VOLTTRON's `agent-isolation-mode`): every agent runs as a user of
//! its own, so agents cannot read or change each other's files, nor the platform's.
//!
//! VOLTTRON creates a Unix account per agent (`useradd` through `sudo`) and records its
//! name in the agent's `USER_ID` file. Here an agent gets a **numeric** uid from a
//! configured range ([`UidRange`], default [`DEFAULT_UID_RANGE`]) and the gid of the same
//! number; nothing is added to `/etc/passwd` (the kernel needs no account for a uid), and
//! a number that *is* an account or a group on the machine (through NSS: local files,
//! LDAP, ...) is skipped. The uid is allocated at the agent's first start
//! ([`allocate`]), recorded in its `USER_ID` file, kept across `--force` reinstalls, and
//! freed when the agent is removed.
//!
//! Before each explicit start, [`prepare_agent`] sets up the agent's files for that uid
//! and [`open_home`] (idempotent) the platform's:
//!
//! | path | owner | mode | so that |
//! |---|---|---|---|
//! | `$VOLTTRON_HOME`, `run/`, `agents/` | platform | others may only traverse (`--x`; `0701` from `0700`, `0751` from `0755`) | agents can reach their directory and the socket, and list nothing |
//! | `run/vip.socket` | platform | `0666` | agents can connect; the platform then checks the uid (`SO_PEERCRED`, the range is allowed) and, with auth, the key |
//! | `agents/<identity>/` and its files | platform, group the agent's | `0750` / `+r` for the group | the agent reads its program, `config` and contract, and changes none of them |
//! | `agents/<identity>/data/` and everything in it | the agent | `0700` | the agent's own files |
//!
//! `configuration_store/` loses the others' bits (agents reach their configuration
//! through the `config.store` service). Everything else keeps its mode:
//! `credentials_store/` stays `0700` (an agent is given
//! its key pair in its environment, `AGENT_CREDENTIALS`, as VOLTTRON gives
//! `AGENT_PUBLICKEY`/`AGENT_SECRETKEY`), and the platform's files (`keystore.json`,
//! `auth.json`, the configuration store, ...) are written `0600`.
//!
//! The `data/` tree is handed over with file-descriptor-relative calls (`openat` with
//! `O_NOFOLLOW`, `fchownat` with `AT_SYMLINK_NOFOLLOW`), so a symbolic link planted in it
//! (by a process of the agent's that outlived it) is changed itself and never followed;
//! a regular file with more than one hard link is left alone, with a warning, since it
//! may be a link to a file outside `data/`.
//!
//! The switch needs the platform to hold `CAP_SETUID`, `CAP_SETGID`, `CAP_CHOWN`,
//! `CAP_FOWNER` and `CAP_DAC_OVERRIDE` (run it as root): [`check_privileges`].

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, chownat, fchmod, fchown, fstat, openat, statat};
use rustix::fs::{Gid, Uid};

use crate::home::VolttronHome;
use crate::home::install::{self, InstallError, InstalledAgent};

/// The default range agents' uids come from: 200000–299999, which systemd's
/// allocation leaves unused (between its dynamic users, below 65536, and its containers,
/// from 524288).
pub const DEFAULT_UID_RANGE: UidRange = UidRange {
    first: 200_000,
    last: 299_999,
};

/// The deepest `data/` tree [`prepare_agent`] walks.
const MAX_DEPTH: usize = 256;

/// A range of uids (and the gids of the same numbers) for agents, both ends included:
/// `200000-299999`, or one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UidRange {
    first: u32,
    last: u32,
}

impl UidRange {
    /// The uids `first..=last`. Refused: an empty range, uid 0 (root), and `u32::MAX`
    /// (`(uid_t) -1` means "unchanged" to the kernel).
    pub fn new(first: u32, last: u32) -> Result<UidRange, IsolationError> {
        let invalid = |reason| IsolationError::InvalidRange {
            text: format!("{first}-{last}"),
            reason,
        };
        if first == 0 {
            return Err(invalid("uid 0 is root"));
        }
        if first > last {
            return Err(invalid("the first uid is above the last"));
        }
        if last == u32::MAX {
            return Err(invalid("4294967295 is not a uid"));
        }
        Ok(UidRange { first, last })
    }

    /// The first uid.
    pub fn first(&self) -> u32 {
        self.first
    }

    /// The last uid.
    pub fn last(&self) -> u32 {
        self.last
    }

    /// Whether `uid` is in the range.
    pub fn contains(&self, uid: u32) -> bool {
        (self.first..=self.last).contains(&uid)
    }

    /// The range as a `RangeInclusive`.
    pub fn as_range(&self) -> std::ops::RangeInclusive<u32> {
        self.first..=self.last
    }
}

impl Default for UidRange {
    fn default() -> Self {
        DEFAULT_UID_RANGE
    }
}

impl fmt::Display for UidRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for UidRange {
    type Err = IsolationError;

    /// `FIRST-LAST` or a single uid (spaces around the numbers allowed).
    fn from_str(text: &str) -> Result<UidRange, IsolationError> {
        let number = |part: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| IsolationError::InvalidRange {
                    text: text.to_owned(),
                    reason: "expected FIRST-LAST, two uids",
                })
        };
        let (first, last) = match text.split_once('-') {
            Some((first, last)) => (number(first)?, number(last)?),
            None => {
                let uid = number(text)?;
                (uid, uid)
            }
        };
        UidRange::new(first, last).map_err(|e| match e {
            IsolationError::InvalidRange { reason, .. } => IsolationError::InvalidRange {
                text: text.to_owned(),
                reason,
            },
            other => other,
        })
    }
}

/// Why isolation could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IsolationError {
    /// A uid range that cannot be used.
    #[error("invalid uid range {text:?}: {reason}")]
    InvalidRange {
        /// As written.
        text: String,
        /// Why.
        reason: &'static str,
    },
    /// The platform lacks capabilities the mode needs.
    #[error("agent isolation mode needs {missing} (run the platform as root)")]
    NotPrivileged {
        /// The missing capabilities, comma-separated.
        missing: String,
    },
    /// Every uid of the range is taken.
    #[error("no free uid left in {range} for agent '{identity}'")]
    Exhausted {
        /// The range.
        range: UidRange,
        /// The agent.
        identity: String,
    },
    /// The agent's directory could not be read or its `USER_ID` written.
    #[error(transparent)]
    Install(#[from] InstallError),
    /// A file could not be changed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The agent's `data/` tree is deeper than [`prepare_agent`] walks.
    #[error("{}: deeper than {MAX_DEPTH} directories", path.display())]
    TooDeep {
        /// Where it stopped.
        path: PathBuf,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> IsolationError + '_ {
    move |source| IsolationError::Io {
        path: path.to_owned(),
        source,
    }
}

fn errno(path: &Path) -> impl FnOnce(rustix::io::Errno) -> IsolationError + '_ {
    move |e| IsolationError::Io {
        path: path.to_owned(),
        source: e.into(),
    }
}

/// Checks that this process may run agents as other users and hand files to them (see
/// the module docs).
pub fn check_privileges() -> Result<(), IsolationError> {
    use caps::{CapSet, Capability};
    let missing: Vec<String> = [
        Capability::CAP_SETUID,
        Capability::CAP_SETGID,
        Capability::CAP_CHOWN,
        Capability::CAP_FOWNER,
        Capability::CAP_DAC_OVERRIDE,
    ]
    .into_iter()
    .filter(|cap| !caps::has_cap(None, CapSet::Effective, *cap).unwrap_or(false))
    .map(|cap| cap.to_string())
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(IsolationError::NotPrivileged {
            missing: missing.join(", "),
        })
    }
}

/// Whether `id` is a user or a group known to the machine (through NSS).
fn is_account(id: u32) -> bool {
    uzers::get_user_by_uid(id).is_some() || uzers::get_group_by_gid(id).is_some()
}

/// The uid `identity` runs as: the one in its `USER_ID` if that is in `range`, else the
/// lowest uid of `range` that no other installed agent has and that is no user or group
/// of the machine, recorded in its `USER_ID`.
pub fn allocate(home: &VolttronHome, identity: &str, range: UidRange) -> Result<u32, IsolationError> {
    allocate_with(home, identity, range, is_account)
}

fn allocate_with(
    home: &VolttronHome,
    identity: &str,
    range: UidRange,
    is_account: impl Fn(u32) -> bool,
) -> Result<u32, IsolationError> {
    let agent = install::find(home, identity)?;
    if let Some(uid) = agent.user_id.filter(|u| range.contains(*u)) {
        return Ok(uid);
    }
    let taken: HashSet<u32> = install::list(home)?
        .iter()
        .filter(|a| a.identity != agent.identity)
        .filter_map(|a| a.user_id)
        .collect();
    let uid = range
        .as_range()
        .find(|uid| !taken.contains(uid) && !is_account(*uid))
        .ok_or_else(|| IsolationError::Exhausted {
            range,
            identity: identity.to_owned(),
        })?;
    install::set_user_id(home, identity, uid)?;
    Ok(uid)
}

/// Lets agents reach their directories and the socket, and no more: others may only
/// traverse the home, `run/` and `agents/`; the socket is `0666` (see the module docs).
pub fn open_home(home: &VolttronHome) -> Result<(), IsolationError> {
    for dir in [home.path().to_owned(), home.run_dir(), home.agents_dir()] {
        // Others (the agents' users among them): traverse, no listing; the group's bits
        // are the administrator's.
        set_others(&dir, 0o001)?;
    }
    // The platform's alone (the agents reach their configuration through the service):
    // not even the names of the stores.
    let store = home.configuration_store_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&store)
        .map_err(io_error(&store))?;
    set_others(&store, 0)?;
    let socket = home.socket_path();
    if socket.exists() {
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))
            .map_err(io_error(&socket))?;
    }
    Ok(())
}

/// Sets the "others" bits of `path`'s mode to `others`, keeping the rest.
fn set_others(path: &Path, others: u32) -> Result<(), IsolationError> {
    let mode = std::fs::metadata(path)
        .map_err(io_error(path))?
        .permissions()
        .mode()
        & 0o7777;
    let wanted = (mode & !0o007) | others;
    if wanted != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted)).map_err(io_error(path))?;
    }
    Ok(())
}

/// Sets up `agent`'s files for running as `uid` (and the gid of the same number): its
/// directory and files readable by the group, `data/` and everything in it owned by the
/// agent (see the module docs). With `tmp`, also makes `data/tmp/` (the agent's
/// `TMPDIR` when only `data/` is writable).
pub fn prepare_agent(agent: &InstalledAgent, uid: u32, tmp: bool) -> Result<(), IsolationError> {
    let (owner, group) = (Uid::from_raw(uid), Gid::from_raw(uid));
    let dir = &agent.dir;
    let fd = open_dir(CWD, dir, dir)?;
    fchown(&fd, None, Some(group)).map_err(errno(dir))?;
    fchmod(&fd, Mode::from_raw_mode(0o750)).map_err(errno(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        if entry.file_name() == "data" {
            continue;
        }
        let meta = entry.metadata().map_err(io_error(&path))?;
        // The platform's own files: group-readable, executable where the owner may.
        if meta.is_file() {
            let name = entry.file_name();
            chownat(
                &fd,
                name.as_os_str(),
                None,
                Some(group),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(errno(&path))?;
            let mode = meta.mode() & 0o7777;
            let wanted = mode | 0o040 | if mode & 0o100 != 0 { 0o010 } else { 0 };
            if wanted != mode {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted))
                    .map_err(io_error(&path))?;
            }
        }
    }
    let data = agent.data_dir();
    if !data.exists() {
        std::fs::create_dir(&data).map_err(io_error(&data))?;
    }
    if tmp {
        // Before the hand-over, which gives it to the agent with the rest.
        make_tmp(&data)?;
    }
    let data_fd = open_dir(&fd, "data", &data)?;
    fchmod(&data_fd, Mode::from_raw_mode(0o700)).map_err(errno(&data))?;
    hand_over(data_fd, &data, owner, group, 0)
}

/// Makes `data/tmp/` (`0700`) where missing: the agent's `TMPDIR` when only `data/` is
/// writable.
pub fn make_tmp(data: &Path) -> Result<(), IsolationError> {
    let tmp = data.join("tmp");
    match std::fs::DirBuilder::new().mode(0o700).create(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(io_error(&tmp)(e)),
        _ => Ok(()),
    }
}

fn open_dir(at: impl AsFd, name: impl rustix::path::Arg, shown: &Path) -> Result<OwnedFd, IsolationError> {
    openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno(shown))
}

/// Gives the directory `fd` (at `path`) and everything beneath it to `owner`:`group`,
/// without following symbolic links.
fn hand_over(fd: OwnedFd, path: &Path, owner: Uid, group: Gid, depth: usize) -> Result<(), IsolationError> {
    if depth > MAX_DEPTH {
        return Err(IsolationError::TooDeep {
            path: path.to_owned(),
        });
    }
    let stat = fstat(&fd).map_err(errno(path))?;
    if stat.st_uid != owner.as_raw() || stat.st_gid != group.as_raw() {
        fchown(&fd, Some(owner), Some(group)).map_err(errno(path))?;
    }
    let mut dir = Dir::read_from(&fd).map_err(errno(path))?;
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(errno(path))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let child = path.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
            name.to_bytes(),
        ));
        let stat = match statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // Removed meanwhile.
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(errno(&child)(e)),
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => match openat(
                &fd,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(child_fd) => hand_over(child_fd, &child, owner, group, depth + 1)?,
                // Replaced meanwhile: by a symbolic link (not followed), a file, or nothing.
                Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR | rustix::io::Errno::NOENT) => {
                    tracing::warn!(path = %child.display(), "changed while being handed to the agent; skipped");
                }
                Err(e) => return Err(errno(&child)(e)),
            },
            _ if stat.st_uid == owner.as_raw() && stat.st_gid == group.as_raw() => {}
            FileType::RegularFile if stat.st_nlink > 1 => {
                tracing::warn!(
                    path = %child.display(),
                    "a file with several hard links is not handed to the agent (it may be a link to a file outside data/)"
                );
            }
            _ => match chownat(&fd, name, Some(owner), Some(group), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(errno(&child)(e)),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::install::{InstallSpec, Program};

    #[test]
    fn ranges_parse_and_refuse_root_and_empty_ranges() {
        let range: UidRange = "200000-299999".parse().unwrap();
        assert_eq!((range.first(), range.last()), (200_000, 299_999));
        assert_eq!(range, DEFAULT_UID_RANGE);
        assert_eq!(range.to_string(), "200000-299999");
        assert!(range.contains(200_000) && range.contains(299_999) && !range.contains(300_000));
        assert_eq!(" 7 - 9 ".parse::<UidRange>().unwrap().as_range(), 7..=9);
        assert_eq!("42".parse::<UidRange>().unwrap().as_range(), 42..=42);
        for (text, reason) in [
            ("0-10", "root"),
            ("10-5", "above"),
            ("1-4294967295", "not a uid"),
            ("a-b", "FIRST-LAST"),
            ("", "FIRST-LAST"),
            ("-5", "FIRST-LAST"),
        ] {
            let err = text.parse::<UidRange>().unwrap_err().to_string();
            assert!(
                err.contains(reason) && err.contains(&format!("{text:?}")),
                "{text}: {err}"
            );
        }
    }

    fn home_with(agents: &[&str]) -> (tempfile::TempDir, VolttronHome) {
        let dir = tempfile::tempdir().unwrap();
        let home = VolttronHome::new(dir.path().join("home"));
        home.ensure().unwrap();
        for identity in agents {
            let spec = InstallSpec::new(*identity, "a-1", Program::Command(vec!["/bin/true".into()]));
            install::install(&home, &spec).unwrap();
        }
        (dir, home)
    }

    #[test]
    fn uids_are_allocated_once_skipping_taken_ones_and_accounts() {
        let (_dir, home) = home_with(&["a", "b", "c"]);
        let range = UidRange::new(500_000, 500_003).unwrap();
        // 500000 is an account of the machine in this test.
        let accounts = |id: u32| id == 500_000;
        assert_eq!(allocate_with(&home, "a", range, accounts).unwrap(), 500_001);
        assert_eq!(allocate_with(&home, "b", range, accounts).unwrap(), 500_002);
        // Stable: the same uid again, from USER_ID.
        assert_eq!(allocate_with(&home, "a", range, accounts).unwrap(), 500_001);
        assert_eq!(install::find(&home, "a").unwrap().user_id, Some(500_001));
        // A uid outside the (changed) range is replaced.
        let other = UidRange::new(500_002, 500_003).unwrap();
        assert_eq!(allocate_with(&home, "a", other, accounts).unwrap(), 500_003);
        // Exhausted: a's and b's uids fill it.
        let err = allocate_with(&home, "c", other, accounts).unwrap_err();
        assert!(matches!(err, IsolationError::Exhausted { .. }));
        assert_eq!(err.to_string(), "no free uid left in 500002-500003 for agent 'c'");
        // Removing an agent frees its uid.
        install::remove(&home, "b").unwrap();
        assert_eq!(allocate_with(&home, "c", other, accounts).unwrap(), 500_002);
    }

    #[test]
    fn prepare_hands_data_to_the_agent_without_following_links() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: changing owners needs root");
            return;
        }
        let (dir, home) = home_with(&["a"]);
        let agent = install::find(&home, "a").unwrap();
        let data = agent.data_dir();
        std::fs::create_dir_all(data.join("deep/er")).unwrap();
        std::fs::write(data.join("deep/er/state.db"), "x").unwrap();
        // Outside data/: must keep its owner though data/ links to it.
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "platform's").unwrap();
        std::os::unix::fs::symlink(&outside, data.join("link")).unwrap();
        std::fs::hard_link(&outside, data.join("hard")).unwrap();
        let outside_dir = dir.path().join("outside-dir");
        std::fs::create_dir(&outside_dir).unwrap();
        std::os::unix::fs::symlink(&outside_dir, data.join("dirlink")).unwrap();

        prepare_agent(&agent, 500_123, true).unwrap();

        let owner = |p: &Path| {
            let m = std::fs::symlink_metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        for p in [
            "",
            "deep",
            "deep/er",
            "deep/er/state.db",
            "link",
            "dirlink",
            "tmp",
        ] {
            assert_eq!(owner(&data.join(p)), (500_123, 500_123), "{p}");
        }
        assert_eq!(mode(&data), 0o700);
        assert_eq!(owner(&outside), (0, 0), "a symlink is not followed");
        assert_eq!(
            owner(&outside_dir),
            (0, 0),
            "a symlink to a directory is not followed"
        );
        assert_eq!(
            owner(&data.join("hard")),
            (0, 0),
            "a hard-linked file is left alone"
        );
        // The agent's directory: platform-owned, the agent's group may read.
        assert_eq!(owner(&agent.dir), (0, 500_123));
        assert_eq!(mode(&agent.dir), 0o750);
        assert_eq!(owner(&agent.dir.join("NAME")), (0, 500_123));
        assert_eq!(mode(&agent.dir.join("NAME")) & 0o060, 0o040);
        // Idempotent.
        prepare_agent(&agent, 500_123, true).unwrap();

        std::fs::create_dir_all(home.configuration_store_dir()).unwrap();
        std::fs::set_permissions(
            home.configuration_store_dir(),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        open_home(&home).unwrap();
        assert_eq!(
            mode(&home.configuration_store_dir()),
            0o750,
            "store names hidden from agents"
        );
        assert_eq!(mode(home.path()), 0o701);
        assert_eq!(
            mode(&home.agents_dir()),
            0o751,
            "group bits kept, others traverse only"
        );
        assert_eq!(mode(&home.credentials_dir()), 0o700, "credentials stay closed");
    }

    #[test]
    fn real_accounts_are_skipped() {
        // uid 0 is an account everywhere; this checks is_account reads NSS.
        assert!(is_account(0));
    }

    #[test]
    fn without_privileges_the_error_names_the_capabilities() {
        let err = IsolationError::NotPrivileged {
            missing: "CAP_SETUID, CAP_CHOWN".into(),
        };
        assert_eq!(
            err.to_string(),
            "agent isolation mode needs CAP_SETUID, CAP_CHOWN (run the platform as root)"
        );
        if rustix::process::geteuid().is_root() {
            check_privileges().unwrap();
        }
    }
}
