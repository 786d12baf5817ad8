//! `$VOLTTRON_HOME`: its layout, the platform configuration file, installed agents.
//!
//! One directory holds everything a platform instance keeps between runs, as in VOLTTRON:
//!
//! | path | what | module |
//! |------|------|--------|
//! | `config` | the platform's INI configuration (`[volttron]` section) | [`config`] |
//! | `VOLTTRON_PID` | the running platform's pid | [`pid`] |
//! | `run/vip.socket` | the local socket agents and `vctl` connect to | |
//! | `agents/<identity>/` | one installed agent | [`install`] |
//! | `python/` | the Python environment of Python agents (unless `$VOLTTRON_PYTHON_ENV` names another) | [`python`] |
//! | `credentials_store/<identity>.json` | an agent's credentials (VOLTTRON 11's format) | `auth::keys` |
//! | `credentials_store/platform.json` | the serverkey for VOLTTRON 11 agents (no secret) | `auth::keys` |
//! | `keystore.json` | the platform's key pair | `auth::keys` |
//! | `authz.json` | authorization rules (this project's or VOLTTRON 11's format) | `auth::authz` |
//! | `configuration_store/<identity>.store` | an agent's configuration store | `config_store` |
//!
//! [`select`] implements `vctl`'s agent selection (identity, UUID prefix, name, tag, globs).
//!
//! The home is found as VOLTTRON finds it ([`VolttronHome::resolve`]): an explicit path
//! (`--volttron-home`), else `$VOLTTRON_HOME`, else `~/.volttron`. Unlike VOLTTRON, an
//! empty `$VOLTTRON_HOME` counts as unset (VOLTTRON turns it into the current directory).

pub mod config;
pub mod install;
pub mod pid;
pub mod python;
pub mod select;

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why no usable `$VOLTTRON_HOME` was found or created.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// Neither an explicit path, `$VOLTTRON_HOME` nor `$HOME` was given.
    #[error(
        "cannot find the VOLTTRON home: neither $VOLTTRON_HOME nor $HOME is set; pass --volttron-home <dir>"
    )]
    NoHome,
    /// The home path exists and is not a directory.
    #[error("the VOLTTRON home {} exists and is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A relative home path could not be made absolute.
    #[error("cannot make the VOLTTRON home {} absolute: {source}", path.display())]
    CurrentDir {
        /// The relative path.
        path: PathBuf,
        /// Why the current directory is unknown.
        source: io::Error,
    },
    /// Creating or inspecting a directory failed.
    #[error("cannot create {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

/// A `$VOLTTRON_HOME` directory: where each file of a platform instance lives.
///
/// Holding one does not create anything; [`ensure`](Self::ensure) does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VolttronHome {
    path: PathBuf,
}

/// The home directory's name under `$HOME` when nothing else is given.
pub const DEFAULT_HOME_DIR: &str = ".volttron";

impl VolttronHome {
    /// Finds the home: `explicit` (e.g. `--volttron-home`), else `$VOLTTRON_HOME`, else
    /// `$HOME/.volttron`. A leading `~` is expanded and a relative path is made absolute
    /// against the current directory. Nothing is created or checked on disk.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<VolttronHome, HomeError> {
        resolve_from(
            explicit,
            std::env::var_os("VOLTTRON_HOME"),
            std::env::var_os("HOME"),
        )
    }

    /// The home at `path`, taken as given (no environment, no `~` expansion).
    pub fn new(path: impl Into<PathBuf>) -> VolttronHome {
        VolttronHome { path: path.into() }
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `config`: the platform's INI configuration ([`config::PlatformConfig`]).
    pub fn config_file(&self) -> PathBuf {
        self.path.join("config")
    }

    /// `VOLTTRON_PID`: the running platform's pid ([`pid::PidFile`]).
    pub fn pid_file(&self) -> PathBuf {
        self.path.join("VOLTTRON_PID")
    }

    /// `run/`: sockets and other runtime files.
    pub fn run_dir(&self) -> PathBuf {
        self.path.join("run")
    }

    /// `run/vip.socket`: the platform's local socket (VOLTTRON's
    /// `ipc://@$VOLTTRON_HOME/run/vip.socket`, here a filesystem socket).
    pub fn socket_path(&self) -> PathBuf {
        self.run_dir().join("vip.socket")
    }

    /// `agents/`: one directory per installed agent ([`install`]).
    pub fn agents_dir(&self) -> PathBuf {
        self.path.join("agents")
    }

    /// `agents/<identity>/`: where the agent `identity` is (or would be) installed.
    /// (`.` and `..` are valid identities that lead elsewhere; [`install`] refuses them.)
    pub fn agent_dir(&self, identity: &crate::core::Identity) -> PathBuf {
        self.agents_dir().join(identity.as_str())
    }

    /// `volttron.log`: the platform's log file when `--log` names none.
    pub fn log_file_default(&self) -> PathBuf {
        self.path.join("volttron.log")
    }

    /// `credentials_store/`: one `<identity>.json` per agent (VOLTTRON 10+ layout).
    pub fn credentials_dir(&self) -> PathBuf {
        self.path.join("credentials_store")
    }

    /// `configuration_store/`: one `<identity>.store` per agent.
    pub fn configuration_store_dir(&self) -> PathBuf {
        self.path.join("configuration_store")
    }

    /// Creates the home (mode `0700`), `run/` (`0700`), `agents/`, `credentials_store/`
    /// (`0700`) and `configuration_store/` (`0700`) where missing. Existing directories
    /// keep their mode; a home readable by others is reported with a warning.
    pub fn ensure(&self) -> Result<(), HomeError> {
        match fs::metadata(&self.path) {
            Ok(meta) if !meta.is_dir() => {
                return Err(HomeError::NotADirectory {
                    path: self.path.clone(),
                });
            }
            Ok(meta) => warn_if_open(&self.path, &meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(HomeError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        }
        create_dir(&self.path, 0o700)?;
        create_dir(&self.run_dir(), 0o700)?;
        create_dir(&self.agents_dir(), 0o755)?;
        create_dir(&self.credentials_dir(), 0o700)?;
        create_dir(&self.configuration_store_dir(), 0o700)?;
        Ok(())
    }
}

impl AsRef<Path> for VolttronHome {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// [`VolttronHome::resolve`] with the environment passed in (tests cannot set variables).
fn resolve_from(
    explicit: Option<PathBuf>,
    volttron_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<VolttronHome, HomeError> {
    let home = home.filter(|h| !h.is_empty()).map(PathBuf::from);
    let chosen = match (explicit, volttron_home.filter(|v| !v.is_empty())) {
        (Some(path), _) => expand_tilde(path, home.as_deref())?,
        (None, Some(env)) => expand_tilde(PathBuf::from(env), home.as_deref())?,
        (None, None) => home.ok_or(HomeError::NoHome)?.join(DEFAULT_HOME_DIR),
    };
    let path = if chosen.is_absolute() {
        chosen
    } else {
        let cwd = std::env::current_dir().map_err(|source| HomeError::CurrentDir {
            path: chosen.clone(),
            source,
        })?;
        cwd.join(chosen)
    };
    Ok(VolttronHome {
        path: normalize(&path),
    })
}

/// `~` and `~/rest` become `$HOME` and `$HOME/rest`; anything else is kept.
fn expand_tilde(path: PathBuf, home: Option<&Path>) -> Result<PathBuf, HomeError> {
    let mut components = path.components();
    match components.next() {
        Some(std::path::Component::Normal(first)) if first == "~" => {
            let home = home.ok_or(HomeError::NoHome)?;
            Ok(home.join(components.as_path()))
        }
        _ => Ok(path),
    }
}

/// Drops `.` components and resolves `..` lexically (as Python's `normpath`).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn create_dir(path: &Path, mode: u32) -> Result<(), HomeError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder.create(path).map_err(|source| HomeError::Io {
        path: path.to_owned(),
        source,
    })?;
    if !fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false) {
        return Err(HomeError::NotADirectory {
            path: path.to_owned(),
        });
    }
    Ok(())
}

fn warn_if_open(path: &Path, meta: &fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                home = %path.display(),
                mode = format_args!("{mode:o}"),
                "the VOLTTRON home is accessible to other users; `chmod 700` it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_prefers_explicit_then_env_then_home() {
        let h = resolve_from(
            Some("/srv/v1".into()),
            Some("/srv/env".into()),
            Some("/home/u".into()),
        )
        .unwrap();
        assert_eq!(h.path(), Path::new("/srv/v1"));
        let h = resolve_from(None, Some("/srv/env/".into()), Some("/home/u".into())).unwrap();
        assert_eq!(h.path(), Path::new("/srv/env"));
        let h = resolve_from(None, None, Some("/home/u".into())).unwrap();
        assert_eq!(h.path(), Path::new("/home/u/.volttron"));
        // An empty $VOLTTRON_HOME is unset, not the current directory.
        let h = resolve_from(None, Some("".into()), Some("/home/u".into())).unwrap();
        assert_eq!(h.path(), Path::new("/home/u/.volttron"));
    }

    #[test]
    fn resolve_expands_tilde_and_normalizes() {
        let h = resolve_from(Some("~/vh/./a/../b".into()), None, Some("/home/u".into())).unwrap();
        assert_eq!(h.path(), Path::new("/home/u/vh/b"));
        let h = resolve_from(None, Some("~".into()), Some("/home/u".into())).unwrap();
        assert_eq!(h.path(), Path::new("/home/u"));
        let h = resolve_from(Some("rel".into()), None, None).unwrap();
        assert!(h.path().is_absolute());
        assert!(h.path().ends_with("rel"));
    }

    #[test]
    fn resolve_without_any_home_is_a_typed_error() {
        let err = resolve_from(None, None, None).unwrap_err();
        assert!(matches!(err, HomeError::NoHome));
        assert!(err.to_string().contains("--volttron-home"));
        let err = resolve_from(Some("~/x".into()), None, None).unwrap_err();
        assert!(matches!(err, HomeError::NoHome));
    }

    #[test]
    fn layout_paths() {
        let h = VolttronHome::new("/v");
        assert_eq!(h.config_file(), Path::new("/v/config"));
        assert_eq!(h.pid_file(), Path::new("/v/VOLTTRON_PID"));
        assert_eq!(h.run_dir(), Path::new("/v/run"));
        assert_eq!(h.socket_path(), Path::new("/v/run/vip.socket"));
        assert_eq!(h.agents_dir(), Path::new("/v/agents"));
        assert_eq!(h.credentials_dir(), Path::new("/v/credentials_store"));
        let id = crate::core::Identity::new("listener").unwrap();
        assert_eq!(h.agent_dir(&id), Path::new("/v/agents/listener"));
    }

    #[cfg(unix)]
    #[test]
    fn ensure_creates_private_home_and_rejects_a_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let h = VolttronHome::new(dir.path().join("home"));
        h.ensure().unwrap();
        h.ensure().unwrap();
        let mode = fs::metadata(h.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(h.run_dir().is_dir() && h.agents_dir().is_dir() && h.credentials_dir().is_dir());
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        let err = VolttronHome::new(&file).ensure().unwrap_err();
        assert!(matches!(err, HomeError::NotADirectory { .. }), "{err}");
    }
}
