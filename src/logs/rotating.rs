//! [`RotatingFile`]: the log file, reopened on request (SIGHUP, for logrotate) and rotated
//! by size.
//!
//! | event | what happens |
//! |-------|--------------|
//! | [`ReopenHandle::request`] (the platform does on SIGHUP) | the next record reopens `FILE` by name (creating it, mode 0600): after logrotate renamed it, records go to the new file |
//! | a record would take `FILE` past `max_bytes` | `FILE.{N-1}` → `FILE.N`, ..., `FILE` → `FILE.1` (the oldest beyond `keep` replaced), a new `FILE` |
//! | `keep = 0` | the full file is removed and started anew |
//! | a rename or reopen fails | said once on stderr; records go on into the file already open |
//!
//! A record is written whole into one file (each `write` is one record: tracing-subscriber
//! writes a formatted line at once). The writer blocks on the disk: run it behind
//! `tracing_appender::non_blocking`, as [`crate::logs::install`] does, so that the
//! platform's arbiter threads only queue lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::logs::LogError;

/// The log file (see the module docs).
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: Option<u64>,
    keep: usize,
    reopen: Arc<AtomicBool>,
}

/// Asks a [`RotatingFile`] to reopen its file by name before its next record.
#[derive(Debug, Clone)]
pub struct ReopenHandle(Arc<AtomicBool>);

impl ReopenHandle {
    /// The next record goes to a file opened anew at the path.
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl RotatingFile {
    /// Opens (appends to, or creates with mode 0600) `path`; `max_bytes` turns size
    /// rotation on, keeping `keep` rotated files.
    pub fn open(
        path: impl Into<PathBuf>,
        max_bytes: Option<u64>,
        keep: usize,
    ) -> Result<RotatingFile, LogError> {
        let path = path.into();
        let file = open(&path).map_err(|source| LogError::Open {
            path: path.clone(),
            source,
        })?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingFile {
            path,
            file,
            written,
            max_bytes,
            keep,
            reopen: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A handle that makes the file reopen (for the SIGHUP handler).
    pub fn reopen_handle(&self) -> ReopenHandle {
        ReopenHandle(self.reopen.clone())
    }

    /// The path of `FILE.n`.
    pub fn rotated_path(path: &Path, n: usize) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn reopen(&mut self) {
        match open(&self.path) {
            Ok(file) => {
                self.written = file.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = file;
            }
            Err(e) => eprintln!(
                "volttron: cannot reopen the log file {}: {e}",
                self.path.display()
            ),
        }
    }

    fn rotate(&mut self) {
        let result = if self.keep == 0 {
            std::fs::remove_file(&self.path)
        } else {
            (1..self.keep)
                .rev()
                .try_for_each(|n| {
                    match std::fs::rename(
                        Self::rotated_path(&self.path, n),
                        Self::rotated_path(&self.path, n + 1),
                    ) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                        _ => Ok(()),
                    }
                })
                .and_then(|()| std::fs::rename(&self.path, Self::rotated_path(&self.path, 1)))
        };
        match result {
            Ok(()) => self.reopen(),
            Err(e) => {
                eprintln!(
                    "volttron: cannot rotate the log file {}: {e}",
                    self.path.display()
                );
                // Do not try again before the file has grown by another `max_bytes`.
                self.written = 0;
            }
        }
    }
}

fn open(path: &Path) -> io::Result<File> {
    // The log may name agents, keys' owners and topics: the platform's user only.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl Write for RotatingFile {
    fn write(&mut self, record: &[u8]) -> io::Result<usize> {
        if self.reopen.swap(false, Ordering::AcqRel) {
            self.reopen();
        }
        if let Some(max) = self.max_bytes
            && self.written > 0
            && self.written + record.len() as u64 > max
        {
            self.rotate();
        }
        self.file.write_all(record)?;
        self.written += record.len() as u64;
        Ok(record.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_keeping_n() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let mut f = RotatingFile::open(&path, Some(25), 2).unwrap();
        for i in 0..10 {
            f.write_all(format!("record {i:02}\n").as_bytes()).unwrap();
        }
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(path.clone()), "record 08\nrecord 09\n");
        assert_eq!(
            read(RotatingFile::rotated_path(&path, 1)),
            "record 06\nrecord 07\n"
        );
        assert_eq!(
            read(RotatingFile::rotated_path(&path, 2)),
            "record 04\nrecord 05\n"
        );
        assert!(!RotatingFile::rotated_path(&path, 3).exists());
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn keep_zero_starts_the_file_anew() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let mut f = RotatingFile::open(&path, Some(10), 0).unwrap();
        f.write_all(b"first rec\n").unwrap();
        f.write_all(b"second\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
        assert!(!RotatingFile::rotated_path(&path, 1).exists());
    }

    #[test]
    fn reopens_by_name_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let mut f = RotatingFile::open(&path, None, 5).unwrap();
        f.write_all(b"before\n").unwrap();
        let moved = dir.path().join("v.log.old");
        std::fs::rename(&path, &moved).unwrap();
        f.write_all(b"still old\n").unwrap();
        f.reopen_handle().request();
        f.write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read_to_string(&moved).unwrap(), "before\nstill old\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
    }
}
