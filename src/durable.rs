//! Atomic, durable replacement and removal of a file: every file the platform keeps
//! (configuration stores, keys, `auth.json`, `known_hosts`) is written through here.
//!
//! Replacement writes a temporary file in the same directory (`.<name>.<random>.tmp`),
//! `fsync`s it, renames it over the target and `fsync`s the directory, so after a crash at
//! any point the target holds either its old or its new contents, never a mix, and once
//! the call has returned the new contents survive a power loss. A temporary file left
//! behind by a crash is never read; it can be deleted at any time.
//!
//! | [`Perms`] | the new file's mode |
//! |---|---|
//! | `KeepExisting` | the replaced file's mode; `0600` for a new file |
//! | `OwnerOnly` | `0600`, set on the temporary file before any byte is written (secrets never sit in a readable file) |
//! | `WorldReadable` | `0644`, set on the temporary file (for files every agent must read, holding no secret) |
//!
//! With [`IfExists::Keep`] the temporary file is linked to the target only if the target
//! does not exist, so two processes creating the same file agree on one.
//!
//! An error before the rename leaves the target untouched. An error from the final
//! directory `fsync` is reported although the rename has happened: the new contents are
//! then visible but not guaranteed durable.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A failed step, with the path it was about.
#[derive(Debug)]
pub(crate) struct DurableError {
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

impl DurableError {
    fn at(path: &Path, source: io::Error) -> Self {
        DurableError {
            path: path.to_owned(),
            source,
        }
    }
}

/// The mode of a written file. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Perms {
    KeepExisting,
    OwnerOnly,
    WorldReadable,
}

/// What to do when the target exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfExists {
    /// Replace it.
    Replace,
    /// Leave it (the write reports `false`).
    Keep,
}

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

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically and durably, creating the parent directory if
/// needed. Returns whether `path` was written (false only with [`IfExists::Keep`]).
pub(crate) fn write(
    path: &Path,
    bytes: &[u8],
    perms: Perms,
    if_exists: IfExists,
) -> Result<bool, DurableError> {
    let dir = parent(path);
    fs::create_dir_all(dir).map_err(|e| DurableError::at(dir, e))?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| DurableError::at(dir, e))?;
    let tmp_path = tmp.path().to_owned();
    let fill = |tmp: &mut tempfile::NamedTempFile| -> io::Result<()> {
        match perms {
            Perms::KeepExisting => {
                if let Ok(meta) = fs::metadata(path) {
                    tmp.as_file().set_permissions(meta.permissions())?;
                }
            }
            Perms::OwnerOnly => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    tmp.as_file().set_permissions(fs::Permissions::from_mode(0o600))?;
                }
            }
            Perms::WorldReadable => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    tmp.as_file().set_permissions(fs::Permissions::from_mode(0o644))?;
                }
            }
        }
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        injected(FailAt::BeforeRename)
    };
    // On error the temporary file is removed when `tmp` is dropped.
    fill(&mut tmp).map_err(|e| DurableError::at(&tmp_path, e))?;
    match if_exists {
        IfExists::Replace => {
            tmp.persist(path).map_err(|e| DurableError::at(path, e.error))?;
        }
        IfExists::Keep => match tmp.persist_noclobber(path) {
            Ok(_) => {}
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(DurableError::at(path, e.error)),
        },
    }
    sync_dir(dir)?;
    Ok(true)
}

/// Removes `path` durably; returns whether it existed.
pub(crate) fn remove(path: &Path) -> Result<bool, DurableError> {
    injected(FailAt::Remove).map_err(|e| DurableError::at(path, e))?;
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent(path)).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(DurableError::at(path, e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), DurableError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| DurableError::at(dir, e))
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

    fn replace(path: &Path, bytes: &[u8]) -> Result<bool, DurableError> {
        write(path, bytes, Perms::KeepExisting, IfExists::Replace)
    }

    #[test]
    fn replace_creates_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.store");
        replace(&path, b"one").unwrap();
        replace(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        FAIL_AT.with(|f| f.set(Some(FailAt::BeforeRename)));
        assert!(replace(&path, b"three").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["a.store"], "no temporary file left behind");
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn modes_kept_or_owner_only_and_no_clobber() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.store");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        replace(&path, b"{ }").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        write(&path, b"secret", Perms::OwnerOnly, IfExists::Replace).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!write(&path, b"other", Perms::OwnerOnly, IfExists::Keep).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"secret");
    }
}
