//! Atomic, durable replacement and removal of a file.
//!
//! Replacement writes a temporary file in the same directory (`.<name>.<random>.tmp`), `fsync`s
//! it, renames it over the target and `fsync`s the directory, so after a crash at any point the
//! target holds either its old or its new contents, never a mix, and once the call has
//! returned the new contents survive a power loss. A temporary file left behind by a crash is
//! never read; it can be deleted at any time.
//!
//! An error before the rename leaves the target untouched. An error from the final directory
//! `fsync` is reported although the rename has happened: the new contents are then visible but
//! not guaranteed durable.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::error::StoreError;

/// A stage at which tests can make the next write on this thread fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailAt {
    /// After the temporary file is written and synced, before the rename.
    BeforeRename,
    /// Before a removal.
    Remove,
}

#[cfg(test)]
thread_local! {
    pub(crate) static FAIL_AT: std::cell::Cell<Option<FailAt>> = const { std::cell::Cell::new(None) };
}

#[cfg(test)]
fn injected(stage: FailAt) -> io::Result<()> {
    if FAIL_AT.with(|f| f.get()) == Some(stage) {
        FAIL_AT.with(|f| f.set(None));
        return Err(io::Error::other("injected failure"));
    }
    Ok(())
}

#[cfg(not(test))]
fn injected(_: FailAt) -> io::Result<()> {
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces the contents of `path` with `bytes`, atomically and durably; creates the parent
/// directory if needed. An existing file's permissions are kept; a new file gets the temporary
/// file's (owner read/write only).
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = parent(path);
    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("store");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| StoreError::io(dir, e))?;
    let tmp_path = tmp.path().to_owned();
    let write = |tmp: &mut tempfile::NamedTempFile| -> io::Result<()> {
        if let Ok(meta) = fs::metadata(path) {
            tmp.as_file().set_permissions(meta.permissions())?;
        }
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        injected(FailAt::BeforeRename)
    };
    // On error the temporary file is removed when `tmp` is dropped.
    write(&mut tmp).map_err(|e| StoreError::io(&tmp_path, e))?;
    tmp.persist(path).map_err(|e| StoreError::io(path, e.error))?;
    sync_dir(dir)
}

/// Removes `path` (if it exists) durably.
pub(crate) fn remove(path: &Path) -> Result<(), StoreError> {
    injected(FailAt::Remove).map_err(|e| StoreError::io(path, e))?;
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(dir, e))
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened for syncing here; the rename is still atomic.
        let _ = (dir, File::open);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_creates_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.store");
        replace(&path, b"one").unwrap();
        replace(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        FAIL_AT.with(|f| f.set(Some(FailAt::BeforeRename)));
        assert!(matches!(replace(&path, b"three"), Err(StoreError::Io { .. })));
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["a.store"], "no temporary file left behind");
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn replace_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.store");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        replace(&path, b"{ }").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    }
}
