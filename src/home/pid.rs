//! `$VOLTTRON_HOME/VOLTTRON_PID`: one platform per home.
//!
//! [`PidFile::acquire`] refuses to start a second platform on a home and otherwise
//! writes the running platform's pid (as decimal text, like VOLTTRON); dropping the
//! [`PidFile`] removes it.
//!
//! Two checks decide whether a platform already runs:
//!
//! 1. An exclusive `flock` on `VOLTTRON_PID.lock` next to the PID file, held for as long
//!    as the [`PidFile`] lives. The kernel releases it when the process dies, so it is
//!    never stale, and two platforms starting at the same instant cannot both pass. The
//!    lock file stays in place (removing it would reopen that race).
//! 2. For platforms that do not take the lock (VOLTTRON itself, older builds): the pid
//!    in an existing PID file is alive, and (against pid reuse) its
//!    `/proc/<pid>/cmdline` contains `volttron`. A process whose command line cannot be
//!    read counts as a platform (no `/proc` here, or another user's hidden process).
//!    Our own pid counts as stale: we hold the lock, so the file was left by an earlier
//!    process that had the same pid (a container's platform is often pid 1 on every
//!    start). A pid that is not alive, a zombie, or an unparsable file is stale and
//!    replaced, with a log line.
//!
//! The first check is what makes a second [`PidFile::acquire`] in the same process fail
//! (the test binaries are not named `volttron`, so the second check alone would not).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::durable::{self, IfExists, Perms};

/// Why the PID file could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PidError {
    /// Another platform runs on this home.
    #[error(
        "a platform is already running on {}{}; stop it with `vctl shutdown --platform`",
        home.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    AlreadyRunning {
        /// Its pid, when the PID file names it.
        pid: Option<u32>,
        /// The home (the PID file's directory).
        home: PathBuf,
    },
    /// Reading, writing or locking a file failed.
    #[error("cannot use the PID file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

impl PidError {
    fn io(path: &Path, source: io::Error) -> Self {
        PidError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The PID file of the running platform; removed when dropped (if it still holds our pid).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
    /// Holds the `flock`; closing it releases the lock.
    _lock: File,
}

impl PidFile {
    /// Takes `path` (normally [`VolttronHome::pid_file`](super::VolttronHome::pid_file))
    /// for this process, creating its directory if needed. Fails with
    /// [`PidError::AlreadyRunning`] while another platform holds it.
    pub fn acquire(path: impl Into<PathBuf>) -> Result<PidFile, PidError> {
        let path = path.into();
        let own = std::process::id();
        let home = durable::parent(&path).to_owned();
        let lock_path = lock_path(&path);
        durable::write(&lock_path, b"", Perms::KeepExisting, IfExists::Keep)
            .map_err(|e| PidError::io(&e.path, e.source))?;
        let lock = File::open(&lock_path).map_err(|e| PidError::io(&lock_path, e))?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(PidError::AlreadyRunning {
                    pid: read_pid_soon(&path),
                    home,
                });
            }
            Err(e) => return Err(PidError::io(&lock_path, e.into())),
        }
        match read_pid(&path) {
            Ok(Some(pid)) if pid != own && is_platform(pid) => {
                return Err(PidError::AlreadyRunning { pid: Some(pid), home });
            }
            Ok(Some(pid)) => {
                tracing::info!(file = %path.display(), pid, "replacing a stale PID file");
            }
            Ok(None) => {}
            Err(PidFileContent::Unparsable(text)) => {
                tracing::warn!(file = %path.display(), content = ?text, "replacing an unreadable PID file");
            }
            Err(PidFileContent::Io(e)) => return Err(PidError::io(&path, e)),
        }
        durable::write(
            &path,
            own.to_string().as_bytes(),
            Perms::KeepExisting,
            IfExists::Replace,
        )
        .map_err(|e| PidError::io(&e.path, e.source))?;
        Ok(PidFile {
            path,
            pid: own,
            _lock: lock,
        })
    }

    /// The PID file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid written (this process's).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The pid of a platform running on the PID file `path`, if the file names a live
    /// process that looks like one (check 2 of the module docs; the lock is not probed,
    /// since probing it could make a platform starting at that instant fail).
    pub fn running(path: impl AsRef<Path>) -> Result<Option<u32>, PidError> {
        let path = path.as_ref();
        match read_pid(path) {
            Ok(Some(pid)) => Ok(is_platform(pid).then_some(pid)),
            Ok(None) | Err(PidFileContent::Unparsable(_)) => Ok(None),
            Err(PidFileContent::Io(e)) => Err(PidError::io(path, e)),
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if matches!(read_pid(&self.path), Ok(Some(pid)) if pid == self.pid)
            && let Err(e) = durable::remove(&self.path)
        {
            tracing::warn!(file = %e.path.display(), error = %e.source, "cannot remove the PID file");
        }
        // The lock is released when `_lock` closes, after the file is gone.
    }
}

/// `VOLTTRON_PID` → `VOLTTRON_PID.lock`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_owned()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

enum PidFileContent {
    Unparsable(String),
    Io(io::Error),
}

/// The pid in the file; `None` if there is no file.
fn read_pid(path: &Path) -> Result<Option<u32>, PidFileContent> {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            match text.trim().parse::<u32>() {
                Ok(pid) if pid > 0 => Ok(Some(pid)),
                _ => Err(PidFileContent::Unparsable(text.chars().take(40).collect())),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PidFileContent::Io(e)),
    }
}

/// The pid of the platform holding the lock, for the error message; it may be between
/// taking the lock and writing the file, so look a few times.
fn read_pid_soon(path: &Path) -> Option<u32> {
    for _ in 0..10 {
        if let Ok(Some(pid)) = read_pid(path) {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Whether `pid` is a live process that looks like a platform (module docs, check 2).
fn is_platform(pid: u32) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    match rustix::process::test_kill_process(raw) {
        // EPERM: it exists, as another user.
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::PERM => {}
        Err(_) => return false,
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        // A zombie has an empty command line, and is not running anything.
        Ok(cmdline) => String::from_utf8_lossy(&cmdline)
            .to_ascii_lowercase()
            .contains("volttron"),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_writes_our_pid_and_drop_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home").join("VOLTTRON_PID");
        let pid = PidFile::acquire(&path).unwrap();
        assert_eq!(pid.pid(), std::process::id());
        assert_eq!(fs::read_to_string(&path).unwrap(), std::process::id().to_string());
        drop(pid);
        assert!(!path.exists());
        // Taken again after release.
        let again = PidFile::acquire(&path).unwrap();
        assert!(path.exists());
        drop(again);
    }

    #[test]
    fn second_acquire_fails_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("VOLTTRON_PID");
        let first = PidFile::acquire(&path).unwrap();
        let err = PidFile::acquire(&path).unwrap_err();
        match &err {
            PidError::AlreadyRunning { pid, home } => {
                assert_eq!(*pid, Some(std::process::id()));
                assert_eq!(home, dir.path());
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&format!("(pid {})", std::process::id())), "{msg}");
        assert!(msg.contains("vctl shutdown --platform"), "{msg}");
        // The failed attempt left the holder's file alone.
        assert_eq!(fs::read_to_string(&path).unwrap(), std::process::id().to_string());
        drop(first);
    }

    #[test]
    fn stale_and_garbage_files_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("VOLTTRON_PID");
        // The largest pid Linux allows is 2^22; this one cannot be alive.
        for stale in ["4194304999", "0", "not a pid", "", "1234567890\n"] {
            fs::write(&path, stale).unwrap();
            let held = PidFile::acquire(&path).unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), std::process::id().to_string());
            drop(held);
        }
        // Our own pid, left over without the lock: stale (pid reuse), replaced.
        fs::write(&path, std::process::id().to_string()).unwrap();
        drop(PidFile::acquire(&path).unwrap());
    }

    #[test]
    fn liveness_needs_a_volttron_command_line() {
        // pid 1 is alive but is init/systemd (or, in a container, something else).
        let init_is_volttron = fs::read("/proc/1/cmdline")
            .map(|c| String::from_utf8_lossy(&c).to_lowercase().contains("volttron"))
            .unwrap_or(true);
        assert_eq!(is_platform(1), init_is_volttron);
        assert!(!is_platform(0));
        assert!(!is_platform(u32::MAX));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("VOLTTRON_PID");
        assert_eq!(PidFile::running(&path).unwrap(), None);
        fs::write(&path, "4194304999").unwrap();
        assert_eq!(PidFile::running(&path).unwrap(), None);
    }

    #[test]
    fn drop_leaves_a_file_that_is_no_longer_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("VOLTTRON_PID");
        let held = PidFile::acquire(&path).unwrap();
        fs::write(&path, "12345").unwrap();
        drop(held);
        assert_eq!(fs::read_to_string(&path).unwrap(), "12345");
    }
}
