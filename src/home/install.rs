//! Installed agents: `$VOLTTRON_HOME/agents/<identity>/`.
//!
//! | file | what |
//! |------|------|
//! | `UUID` | the installation's UUID (v4), kept across `--force` reinstalls |
//! | `NAME` | the agent's name and version (`listeneragent-3.0`) |
//! | `TAG` | optional user tag (at most 64 characters) |
//! | `PRIORITY` | optional start priority (a number; [`DEFAULT_PRIORITY`] when absent) |
//! | `AUTOSTART` | present: started with the platform. Holds the priority, as in VOLTTRON |
//! | `config` | the agent's initial configuration (loaded into its configuration store) |
//! | `exereqs.json` | optional execution requirements |
//! | *the executable*, or `COMMAND`, or `PYTHON` | what to run: a copy of the agent binary (mode `0755`, under its own file name), or a JSON array with the command line, or for a Python agent a JSON object `{"env", "entry_point", "distribution", "version"}` ([`PythonProgram`]: the environment it was installed into and the `module:function` to run; see [`super::python`]) |
//! | `data/` | the agent's own writable directory, kept across `--force` reinstalls |
//! | `USER_ID` | in agent isolation mode, the uid (and gid) the agent runs as; allocated at its first start ([`crate::control::isolation`]), kept across `--force` reinstalls |
//!
//! This is VOLTTRON 10's layout (`agents/<vip-identity>/{UUID,NAME,TAG,AUTOSTART,config,data/}`)
//! plus `PRIORITY`, `COMMAND` and the executable. Reading also accepts VOLTTRON's
//! spelling `execreqs.json`, a priority inside `AUTOSTART` when `PRIORITY` is absent, and
//! a `COMMAND` that is a plain line (split at whitespace).
//!
//! The executable is the one file in the directory whose name is none of the above, does
//! not start with `.`, and has an execute bit. A `PYTHON` file takes precedence, then a
//! `COMMAND` file. A directory with none of them but a `data/` is one VOLTTRON 11
//! installed ([`Program::Volttron11`]): listed, not started.
//!
//! A Python agent's directory is VOLTTRON 11's (`UUID`, `NAME` = `<dist>-<version>`,
//! `config`, `data/`) plus `PYTHON`; its code lives in the environment, shared by every
//! instance of the package.
//!
//! Every file is written through `crate::durable` (atomic replacement, `fsync`). A fresh
//! install is assembled in a hidden directory `agents/.<identity>.*` and renamed into
//! place, so a crash never leaves a half-installed agent visible; [`remove`] renames the
//! directory to a hidden name before deleting it. Hidden directories in `agents/` are
//! never listed. A `--force` reinstall replaces the files one by one in place (each
//! atomically), then deletes what the new installation does not have, except `data/`.
//!
//! Priorities are numbers: [`autostart_order`] starts the lowest first (9 before 50
//! before 100). VOLTTRON keeps them as strings and sorts the strings, so an unpadded "9"
//! sorted after "50" and "100" there.
//!
//! Credentials (`credentials_store/<identity>.json`) and authorization entries belong to
//! the auth module: nothing here reads or removes them.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::VolttronHome;
pub use super::python::PythonProgram;
use crate::core::{Identity, IdentityError};
use crate::durable::{self, IfExists, Perms};

/// The priority of an agent without a `PRIORITY` file (VOLTTRON's default).
pub const DEFAULT_PRIORITY: u32 = 50;

/// The longest tag, in characters (VOLTTRON's limit).
pub const MAX_TAG_LEN: usize = 64;

/// File names of the layout; an executable may not take one of them.
const RESERVED: &[&str] = &[
    "UUID",
    "NAME",
    "TAG",
    "AUTOSTART",
    "PRIORITY",
    "COMMAND",
    "PYTHON",
    "IDENTITY",
    "USER_ID",
    "config",
    "exereqs.json",
    "execreqs.json",
    "data",
];

/// What runs the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// An executable file. In an [`InstallSpec`], the file to copy; in an
    /// [`InstalledAgent`], the copy in the agent's directory.
    Executable(PathBuf),
    /// A command line (program and arguments), run as is (no shell).
    Command(Vec<String>),
    /// A Python agent: an entry point of a distribution installed in an environment.
    Python(PythonProgram),
    /// An agent VOLTTRON 11 installed: its directory has `data/` and no program of ours,
    /// its code is in VOLTTRON 11's own environment (`poetry add` into the venv that ran
    /// VOLTTRON 11), which this platform does not know. Listed, never started: reinstall it
    /// with `vctl install <package> --vip-identity <identity> --force`, which keeps its
    /// UUID, `data/` and credentials. Not installable.
    Volttron11,
}

impl From<PathBuf> for Program {
    fn from(path: PathBuf) -> Self {
        Program::Executable(path)
    }
}

impl From<&Path> for Program {
    fn from(path: &Path) -> Self {
        Program::Executable(path.to_owned())
    }
}

/// An agent directory that cannot be read as an installed agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentDirError {
    /// The directory (or one of its files) cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The path is not a directory.
    #[error("{} is not an agent directory", dir.display())]
    NotADirectory {
        /// The path.
        dir: PathBuf,
    },
    /// The directory's name is not a valid identity.
    #[error("{}: the directory name is not an agent identity: {source}", dir.display())]
    BadIdentity {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: IdentityError,
    },
    /// A required file is missing.
    #[error("{}: the agent has no {file} file", dir.display())]
    MissingFile {
        /// The directory.
        dir: PathBuf,
        /// The file's name.
        file: &'static str,
    },
    /// A file holds something unusable.
    #[error("{}: {value:?} is not {expected}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// Its content (trimmed).
        value: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// Neither an executable nor a `COMMAND` file.
    #[error("{}: the agent has neither an executable nor a COMMAND file", dir.display())]
    NoProgram {
        /// The directory.
        dir: PathBuf,
    },
    /// Several files could be the executable.
    #[error("{}: several files could be the agent's executable: {}", dir.display(), names.join(", "))]
    SeveralPrograms {
        /// The directory.
        dir: PathBuf,
        /// The candidates' names.
        names: Vec<String>,
    },
}

/// Why an install, removal or change failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The identity is not a valid VIP identity.
    #[error("invalid agent identity: {source}")]
    BadIdentity {
        /// The rejected identity.
        identity: String,
        /// Why.
        source: IdentityError,
    },
    /// The identity is valid on the bus but cannot name a directory here: `.`, `..`
    /// and identities starting with `.` (hidden directories are never listed).
    #[error(
        "agent identity '{identity}' cannot be installed: '.', '..' and identities starting with '.' are reserved"
    )]
    ReservedIdentity {
        /// The identity.
        identity: Identity,
    },
    /// An agent with this identity is installed and `force` was not given.
    #[error(
        "an agent is already installed as '{identity}' ({}); pass --force to reinstall it (its data/ and credentials are kept)",
        dir.display()
    )]
    Exists {
        /// The identity.
        identity: Identity,
        /// Its directory.
        dir: PathBuf,
    },
    /// No agent is installed under this identity.
    #[error("no agent is installed as '{identity}' in {}", home.display())]
    NotInstalled {
        /// The identity.
        identity: Identity,
        /// The home searched.
        home: PathBuf,
    },
    /// A source file (executable, config, execution requirements) cannot be read.
    #[error("cannot read the agent's {what} {}: {source}", path.display())]
    Source {
        /// Which source.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A field of the request is unusable.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The field (`name`, `tag`, `executable`, `command`).
        field: &'static str,
        /// The value given.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The installed agent's directory is unreadable.
    #[error(transparent)]
    Broken(#[from] AgentDirError),
    /// Writing or removing a file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

impl InstallError {
    fn io(path: &Path, source: io::Error) -> Self {
        InstallError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

impl From<durable::DurableError> for InstallError {
    fn from(e: durable::DurableError) -> Self {
        InstallError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// One installed agent, as read from its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledAgent {
    /// The VIP identity (the directory's name).
    pub identity: Identity,
    /// `UUID`.
    pub uuid: Uuid,
    /// `NAME`: name and version.
    pub name: String,
    /// `TAG`.
    pub tag: Option<String>,
    /// `PRIORITY`, else the number in `AUTOSTART` (which [`enable`] writes, so an enabled
    /// agent has one); see [`effective_priority`](Self::effective_priority).
    pub priority: Option<u32>,
    /// Whether `AUTOSTART` exists: the platform starts the agent.
    pub autostart: bool,
    /// The agent's directory.
    pub dir: PathBuf,
    /// What runs it.
    pub program: Program,
    /// `config`, if present.
    pub config: Option<PathBuf>,
    /// `exereqs.json` (or `execreqs.json`), if present.
    pub exereqs: Option<PathBuf>,
    /// `USER_ID`: the uid and gid it runs as in agent isolation mode, once allocated.
    pub user_id: Option<u32>,
}

impl InstalledAgent {
    /// Reads the agent installed in `dir` (`agents/<identity>/`).
    pub fn load(dir: impl AsRef<Path>) -> Result<InstalledAgent, AgentDirError> {
        let dir = dir.as_ref();
        let meta = fs::metadata(dir).map_err(|source| AgentDirError::Io {
            path: dir.to_owned(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(AgentDirError::NotADirectory { dir: dir.to_owned() });
        }
        let dir_name = dir.file_name().unwrap_or_default().to_string_lossy();
        let identity = Identity::new(&*dir_name).map_err(|source| AgentDirError::BadIdentity {
            dir: dir.to_owned(),
            source,
        })?;
        let required = |file: &'static str| -> Result<String, AgentDirError> {
            read_trimmed(&dir.join(file))?.ok_or_else(|| AgentDirError::MissingFile {
                dir: dir.to_owned(),
                file,
            })
        };
        let invalid = |file: &str, value: &str, expected| AgentDirError::InvalidFile {
            path: dir.join(file),
            value: value.to_owned(),
            expected,
        };
        let uuid_text = required("UUID")?;
        let uuid = Uuid::parse_str(&uuid_text).map_err(|_| invalid("UUID", &uuid_text, "a UUID"))?;
        let name = required("NAME")?;
        if name.is_empty() || name.contains(char::is_control) {
            return Err(invalid("NAME", &name, "an agent name"));
        }
        let tag = read_trimmed(&dir.join("TAG"))?.filter(|t| !t.is_empty());
        let mut priority = match read_trimmed(&dir.join("PRIORITY"))? {
            Some(p) => Some(
                p.parse::<u32>()
                    .map_err(|_| invalid("PRIORITY", &p, "a priority (a number >= 0)"))?,
            ),
            None => None,
        };
        let autostart = read_trimmed(&dir.join("AUTOSTART"))?;
        if priority.is_none() {
            priority = autostart.as_deref().and_then(|a| a.parse::<u32>().ok());
        }
        let user_id = match read_trimmed(&dir.join("USER_ID"))? {
            Some(u) => Some(
                u.parse::<u32>()
                    .map_err(|_| invalid("USER_ID", &u, "a uid (a number)"))?,
            ),
            None => None,
        };
        let present = |file: &str| Some(dir.join(file)).filter(|p| p.is_file());
        Ok(InstalledAgent {
            user_id,
            program: read_program(dir)?,
            config: present("config"),
            exereqs: present("exereqs.json").or_else(|| present("execreqs.json")),
            identity,
            uuid,
            name,
            tag,
            priority,
            autostart: autostart.is_some(),
            dir: dir.to_owned(),
        })
    }

    /// `data/`: the agent's writable directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The priority, or [`DEFAULT_PRIORITY`].
    pub fn effective_priority(&self) -> u32 {
        self.priority.unwrap_or(DEFAULT_PRIORITY)
    }
}

/// What to install; see [`install`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSpec {
    /// The VIP identity (validated by [`Identity::new`]).
    pub identity: String,
    /// Name and version, written to `NAME`.
    pub name: String,
    /// The executable to copy, or the command line to write to `COMMAND`.
    pub program: Program,
    /// A file to copy as `config`.
    pub config: Option<PathBuf>,
    /// A file to copy as `exereqs.json`.
    pub exereqs: Option<PathBuf>,
    /// The tag.
    pub tag: Option<String>,
    /// The priority (`PRIORITY`).
    pub priority: Option<u32>,
    /// Start the agent with the platform (`AUTOSTART`).
    pub enable: bool,
    /// Reinstall over an installed agent of the same identity.
    pub force: bool,
}

impl InstallSpec {
    /// A spec with nothing optional set.
    pub fn new(identity: impl Into<String>, name: impl Into<String>, program: impl Into<Program>) -> Self {
        InstallSpec {
            identity: identity.into(),
            name: name.into(),
            program: program.into(),
            config: None,
            exereqs: None,
            tag: None,
            priority: None,
            enable: false,
            force: false,
        }
    }
}

/// The installed agents, sorted by identity. A directory that cannot be read as an agent
/// is skipped with a warning; a missing `agents/` means none.
pub fn list(home: &VolttronHome) -> Result<Vec<InstalledAgent>, InstallError> {
    let agents_dir = home.agents_dir();
    let entries = match fs::read_dir(&agents_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(AgentDirError::Io {
                path: agents_dir,
                source: e,
            }
            .into());
        }
    };
    let mut agents = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| AgentDirError::Io {
            path: agents_dir.clone(),
            source,
        })?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        if !path.is_dir() {
            tracing::debug!(path = %path.display(), "not an agent directory; ignored");
            continue;
        }
        match InstalledAgent::load(&path) {
            Ok(agent) => agents.push(agent),
            Err(e) => tracing::warn!("skipping a broken agent directory: {e}"),
        }
    }
    agents.sort_by(|a, b| a.identity.cmp(&b.identity));
    Ok(agents)
}

/// The agent installed as `identity`.
pub fn find(home: &VolttronHome, identity: &str) -> Result<InstalledAgent, InstallError> {
    let identity = parse_identity(identity)?;
    let dir = home.agent_dir(&identity);
    if fs::symlink_metadata(&dir).is_err() {
        return Err(InstallError::NotInstalled {
            identity,
            home: home.path().to_owned(),
        });
    }
    Ok(InstalledAgent::load(&dir)?)
}

/// Installs `spec` as `agents/<identity>/`.
///
/// An installed identity is an [`InstallError::Exists`] unless `spec.force`; then the
/// agent keeps its UUID and `data/` and everything else is replaced by `spec`'s (even a
/// broken directory is repaired). Credentials are not touched.
pub fn install(home: &VolttronHome, spec: &InstallSpec) -> Result<InstalledAgent, InstallError> {
    let identity = parse_identity(&spec.identity)?;
    if spec.name.trim().is_empty() || spec.name.contains(char::is_control) {
        return Err(invalid(
            "name",
            &spec.name,
            "expected a non-empty single-line name-version",
        ));
    }
    let tag = checked_tag(spec.tag.as_deref())?;
    // Read every source before touching the home.
    let files = Files {
        program: match &spec.program {
            Program::Executable(path) => {
                ProgramFile::Executable(executable_name(path)?, read_source("executable", path)?)
            }
            Program::Command(argv) => ProgramFile::Command(command_bytes(argv)?),
            Program::Python(python) => ProgramFile::Python(python_bytes(python, &identity)?),
            Program::Volttron11 => {
                return Err(invalid(
                    "program",
                    "VOLTTRON 11's",
                    "a VOLTTRON 11 agent directory is only read, not installed",
                ));
            }
        },
        config: spec
            .config
            .as_deref()
            .map(|p| read_source("config", p))
            .transpose()?,
        exereqs: spec
            .exereqs
            .as_deref()
            .map(|p| read_source("exereqs.json", p))
            .transpose()?,
        name: spec.name.trim().to_owned(),
        tag,
        priority: spec.priority,
        enable: spec.enable,
    };
    let agents_dir = home.agents_dir();
    fs::create_dir_all(&agents_dir).map_err(|e| InstallError::io(&agents_dir, e))?;
    let dir = home.agent_dir(&identity);
    if fs::symlink_metadata(&dir).is_ok() {
        if !spec.force {
            return Err(InstallError::Exists { identity, dir });
        }
        reinstall(&dir, &files)?;
    } else {
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{identity}."))
            .suffix(".install")
            .tempdir_in(&agents_dir)
            .map_err(|e| InstallError::io(&agents_dir, e))?;
        write_uuid(staging.path(), Uuid::new_v4())?;
        files.write(staging.path())?;
        match fs::rename(staging.path(), &dir) {
            Ok(()) => {
                let _ = staging.keep();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
                ) =>
            {
                return Err(InstallError::Exists { identity, dir });
            }
            Err(e) => return Err(InstallError::io(&dir, e)),
        }
        sync_dir(&agents_dir)?;
    }
    Ok(InstalledAgent::load(&dir)?)
}

/// Deletes the agent's directory (its `data/` included). Its credentials and
/// authorization entries are the caller's to remove.
pub fn remove(home: &VolttronHome, identity: &str) -> Result<(), InstallError> {
    let identity = parse_identity(identity)?;
    let dir = home.agent_dir(&identity);
    if fs::symlink_metadata(&dir).is_err() {
        return Err(InstallError::NotInstalled {
            identity,
            home: home.path().to_owned(),
        });
    }
    let agents_dir = home.agents_dir();
    let doomed = agents_dir.join(format!(".{identity}.{}.removed", Uuid::new_v4().simple()));
    fs::rename(&dir, &doomed).map_err(|e| InstallError::io(&dir, e))?;
    sync_dir(&agents_dir)?;
    if let Err(e) = fs::remove_dir_all(&doomed) {
        // The agent is gone from the listing already; only space is left behind.
        tracing::warn!(path = %doomed.display(), error = %e, "cannot delete a removed agent's files");
    }
    Ok(())
}

/// Sets (or with `None` or an empty string, removes) the agent's tag.
pub fn set_tag(
    home: &VolttronHome,
    identity: &str,
    tag: Option<&str>,
) -> Result<InstalledAgent, InstallError> {
    let agent = find(home, identity)?;
    match checked_tag(tag)? {
        Some(tag) => write_file(&agent.dir.join("TAG"), tag.as_bytes())?,
        None => remove_file(&agent.dir.join("TAG"))?,
    }
    Ok(InstalledAgent::load(&agent.dir)?)
}

/// Records the uid (and gid) the agent runs as in agent isolation mode (`USER_ID`).
pub fn set_user_id(home: &VolttronHome, identity: &str, uid: u32) -> Result<InstalledAgent, InstallError> {
    let agent = find(home, identity)?;
    write_file(&agent.dir.join("USER_ID"), uid.to_string().as_bytes())?;
    Ok(InstalledAgent::load(&agent.dir)?)
}

/// Sets the agent's priority, without enabling or disabling it.
pub fn set_priority(
    home: &VolttronHome,
    identity: &str,
    priority: u32,
) -> Result<InstalledAgent, InstallError> {
    let agent = find(home, identity)?;
    write_file(&agent.dir.join("PRIORITY"), priority.to_string().as_bytes())?;
    if agent.autostart {
        write_file(&agent.dir.join("AUTOSTART"), priority.to_string().as_bytes())?;
    }
    Ok(InstalledAgent::load(&agent.dir)?)
}

/// Makes the platform start the agent (`vctl enable`), with `priority` if given (else
/// the agent keeps its priority).
pub fn enable(
    home: &VolttronHome,
    identity: &str,
    priority: Option<u32>,
) -> Result<InstalledAgent, InstallError> {
    let agent = find(home, identity)?;
    if let Some(p) = priority {
        write_file(&agent.dir.join("PRIORITY"), p.to_string().as_bytes())?;
    }
    let effective = priority.unwrap_or(agent.effective_priority());
    write_file(&agent.dir.join("AUTOSTART"), effective.to_string().as_bytes())?;
    Ok(InstalledAgent::load(&agent.dir)?)
}

/// Stops the platform from starting the agent (`vctl disable`); its priority is kept.
pub fn disable(home: &VolttronHome, identity: &str) -> Result<InstalledAgent, InstallError> {
    let agent = find(home, identity)?;
    remove_file(&agent.dir.join("AUTOSTART"))?;
    Ok(InstalledAgent::load(&agent.dir)?)
}

/// The agents to start with the platform, in start order: lowest priority number first
/// (numerically: 9, 50, 100), then by identity.
pub fn autostart_order(agents: &[InstalledAgent]) -> Vec<&InstalledAgent> {
    let mut enabled: Vec<&InstalledAgent> = agents.iter().filter(|a| a.autostart).collect();
    enabled.sort_by(|a, b| (a.effective_priority(), &a.identity).cmp(&(b.effective_priority(), &b.identity)));
    enabled
}

/// The contents of a new installation, all sources read.
struct Files {
    program: ProgramFile,
    config: Option<Vec<u8>>,
    exereqs: Option<Vec<u8>>,
    name: String,
    tag: Option<String>,
    priority: Option<u32>,
    enable: bool,
}

enum ProgramFile {
    Executable(std::ffi::OsString, Vec<u8>),
    Command(Vec<u8>),
    Python(Vec<u8>),
}

impl Files {
    /// Writes every file except `UUID` into `dir`; returns the names written.
    fn write(&self, dir: &Path) -> Result<Vec<std::ffi::OsString>, InstallError> {
        let mut written = vec!["UUID".into(), "data".into(), "USER_ID".into()];
        let mut put = |name: &OsStr, bytes: Option<&[u8]>| -> Result<(), InstallError> {
            let path = dir.join(name);
            match bytes {
                Some(bytes) => {
                    write_file(&path, bytes)?;
                    written.push(name.to_owned());
                }
                None => remove_file(&path)?,
            }
            Ok(())
        };
        match &self.program {
            ProgramFile::Executable(name, bytes) => {
                put(name, Some(bytes))?;
                set_mode(&dir.join(name), 0o755)?;
                put("COMMAND".as_ref(), None)?;
                put("PYTHON".as_ref(), None)?;
            }
            ProgramFile::Command(bytes) => {
                put("COMMAND".as_ref(), Some(bytes))?;
                put("PYTHON".as_ref(), None)?;
            }
            ProgramFile::Python(bytes) => {
                put("PYTHON".as_ref(), Some(bytes))?;
                put("COMMAND".as_ref(), None)?;
            }
        }
        put("config".as_ref(), self.config.as_deref())?;
        put("exereqs.json".as_ref(), self.exereqs.as_deref())?;
        put("execreqs.json".as_ref(), None)?;
        put("NAME".as_ref(), Some(self.name.as_bytes()))?;
        put("TAG".as_ref(), self.tag.as_deref().map(str::as_bytes))?;
        let priority = self.priority.map(|p| p.to_string());
        put("PRIORITY".as_ref(), priority.as_deref().map(str::as_bytes))?;
        let autostart = self.priority.unwrap_or(DEFAULT_PRIORITY).to_string();
        put("AUTOSTART".as_ref(), self.enable.then_some(autostart.as_bytes()))?;
        let data = dir.join("data");
        if !data.is_dir() {
            let mut builder = fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(&data).map_err(|e| InstallError::io(&data, e))?;
        }
        Ok(written)
    }
}

/// Replaces an installation in place: keeps `UUID` (unless unreadable) and `data/`.
fn reinstall(dir: &Path, files: &Files) -> Result<(), InstallError> {
    if !dir.is_dir() {
        return Err(AgentDirError::NotADirectory { dir: dir.to_owned() }.into());
    }
    let uuid = read_trimmed(&dir.join("UUID"))
        .ok()
        .flatten()
        .and_then(|u| Uuid::parse_str(&u).ok());
    match uuid {
        Some(_) => {}
        None => {
            tracing::warn!(dir = %dir.display(), "the reinstalled agent had no valid UUID; it gets one");
            write_uuid(dir, Uuid::new_v4())?;
        }
    }
    let written = files.write(dir)?;
    // Whatever the new installation does not have goes, except data/.
    let entries = fs::read_dir(dir).map_err(|e| InstallError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| InstallError::io(dir, e))?;
        if written.contains(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            fs::remove_dir_all(&path).map_err(|e| InstallError::io(&path, e))?;
        } else {
            remove_file(&path)?;
        }
    }
    sync_dir(dir)
}

fn parse_identity(identity: &str) -> Result<Identity, InstallError> {
    let identity = Identity::new(identity).map_err(|source| InstallError::BadIdentity {
        identity: identity.to_owned(),
        source,
    })?;
    if identity.starts_with('.') {
        return Err(InstallError::ReservedIdentity { identity });
    }
    Ok(identity)
}

fn invalid(field: &'static str, value: &str, reason: &'static str) -> InstallError {
    InstallError::Invalid {
        field,
        value: value.to_owned(),
        reason,
    }
}

fn checked_tag(tag: Option<&str>) -> Result<Option<String>, InstallError> {
    let Some(tag) = tag.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if tag.chars().count() > MAX_TAG_LEN {
        return Err(invalid("tag", tag, "tags are at most 64 characters"));
    }
    if tag.contains(char::is_control) {
        return Err(invalid("tag", tag, "a tag is one line of text"));
    }
    Ok(Some(tag.to_owned()))
}

/// The executable's file name in the agent directory: its own.
fn executable_name(path: &Path) -> Result<std::ffi::OsString, InstallError> {
    let shown = path.display().to_string();
    let name = path
        .file_name()
        .ok_or_else(|| invalid("executable", &shown, "expected a path to a file"))?;
    let text = name.to_string_lossy();
    if text.starts_with('.') || RESERVED.contains(&&*text) {
        return Err(invalid(
            "executable",
            &shown,
            "the agent directory uses that file name itself (or it is hidden); rename the executable",
        ));
    }
    Ok(name.to_owned())
}

fn read_source(what: &'static str, path: &Path) -> Result<Vec<u8>, InstallError> {
    let err = |source| InstallError::Source {
        what,
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(err)?;
    if !meta.is_file() {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    fs::read(path).map_err(err)
}

fn python_bytes(python: &PythonProgram, identity: &Identity) -> Result<Vec<u8>, InstallError> {
    if python.module_function().is_none() {
        return Err(invalid(
            "entry_point",
            &python.entry_point,
            "expected module:function (dotted Python identifiers)",
        ));
    }
    if !python.env.is_absolute() {
        return Err(invalid(
            "python environment",
            &python.env.display().to_string(),
            "expected an absolute path",
        ));
    }
    if identity.len() > super::python::MAX_IDENTITY_LEN {
        return Err(invalid(
            "identity",
            identity.as_str(),
            "a Python agent's identity is at most 99 bytes (its AGENT_CREDENTIALS must fit a file name)",
        ));
    }
    serde_json::to_vec_pretty(python).map_err(|e| InstallError::io(Path::new("PYTHON"), io::Error::other(e)))
}

fn command_bytes(argv: &[String]) -> Result<Vec<u8>, InstallError> {
    if argv.first().is_none_or(|p| p.trim().is_empty()) {
        return Err(invalid(
            "command",
            &format!("{argv:?}"),
            "expected a program and its arguments",
        ));
    }
    serde_json::to_vec(argv).map_err(|e| InstallError::io(Path::new("COMMAND"), io::Error::other(e)))
}

/// `PYTHON`, else `COMMAND`, else the executable, else (with `data/`) VOLTTRON 11's
/// layout (module docs).
fn read_program(dir: &Path) -> Result<Program, AgentDirError> {
    let python_path = dir.join("PYTHON");
    if let Some(text) = read_trimmed(&python_path)? {
        let python: PythonProgram = serde_json::from_str(&text)
            .ok()
            .filter(|p: &PythonProgram| p.module_function().is_some())
            .ok_or(AgentDirError::InvalidFile {
                path: python_path,
                value: text,
                expected: "a Python agent's {\"env\", \"entry_point\" (module:function), \"distribution\", \"version\"}",
            })?;
        return Ok(Program::Python(python));
    }
    let command_path = dir.join("COMMAND");
    if let Some(text) = read_trimmed(&command_path)? {
        let argv: Vec<String> = if text.starts_with('[') {
            serde_json::from_str(&text).map_err(|_| AgentDirError::InvalidFile {
                path: command_path.clone(),
                value: text.clone(),
                expected: "a JSON array of strings",
            })?
        } else {
            text.split_whitespace().map(str::to_owned).collect()
        };
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(AgentDirError::InvalidFile {
                path: command_path,
                value: text,
                expected: "a command line",
            });
        }
        return Ok(Program::Command(argv));
    }
    let io_err = |source| AgentDirError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut candidates = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with('.') || RESERVED.contains(&&*text) {
            continue;
        }
        let path = entry.path();
        if fs::metadata(&path).is_ok_and(|m| m.is_file() && is_executable(&m)) {
            candidates.push(path);
        }
    }
    match candidates.len() {
        // VOLTTRON 11's layout: `UUID`, `NAME`, `config`, `data/`, the code elsewhere.
        0 if dir.join("data").is_dir() => Ok(Program::Volttron11),
        0 => Err(AgentDirError::NoProgram { dir: dir.to_owned() }),
        1 => Ok(Program::Executable(candidates.remove(0))),
        _ => {
            let mut names: Vec<String> = candidates
                .iter()
                .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
                .collect();
            names.sort();
            Err(AgentDirError::SeveralPrograms {
                dir: dir.to_owned(),
                names,
            })
        }
    }
}

fn is_executable(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

/// The file's text, trimmed; `None` if it does not exist.
fn read_trimmed(path: &Path) -> Result<Option<String>, AgentDirError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AgentDirError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_uuid(dir: &Path, uuid: Uuid) -> Result<(), InstallError> {
    write_file(&dir.join("UUID"), uuid.to_string().as_bytes())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    durable::write(path, bytes, Perms::KeepExisting, IfExists::Replace)?;
    Ok(())
}

fn remove_file(path: &Path) -> Result<(), InstallError> {
    durable::remove(path)?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), InstallError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| InstallError::io(path, e))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), InstallError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| InstallError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        home: VolttronHome,
        exe: PathBuf,
        config: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let home = VolttronHome::new(dir.path().join("home"));
        home.ensure().unwrap();
        let exe = dir.path().join("listener");
        fs::write(&exe, b"#!/bin/sh\necho listening\n").unwrap();
        let config = dir.path().join("listener.json");
        fs::write(&config, br#"{"message": "hello"}"#).unwrap();
        Fixture {
            _dir: dir,
            home,
            exe,
            config,
        }
    }

    #[test]
    fn install_writes_the_layout() {
        let f = fixture();
        let mut spec = InstallSpec::new("listener", "listeneragent-3.0", f.exe.clone());
        spec.config = Some(f.config.clone());
        spec.tag = Some("hq".into());
        spec.priority = Some(9);
        spec.enable = true;
        let agent = install(&f.home, &spec).unwrap();
        let dir = f.home.agents_dir().join("listener");
        assert_eq!(agent.dir, dir);
        assert_eq!(agent.identity.as_str(), "listener");
        assert_eq!(agent.name, "listeneragent-3.0");
        assert_eq!(agent.tag.as_deref(), Some("hq"));
        assert_eq!((agent.priority, agent.autostart), (Some(9), true));
        assert_eq!(agent.program, Program::Executable(dir.join("listener")));
        assert_eq!(agent.config, Some(dir.join("config")));
        assert_eq!(agent.exereqs, None);
        assert_eq!(
            fs::read_to_string(dir.join("UUID")).unwrap(),
            agent.uuid.to_string()
        );
        assert_eq!(agent.uuid.get_version_num(), 4);
        assert_eq!(fs::read_to_string(dir.join("AUTOSTART")).unwrap(), "9");
        assert_eq!(
            fs::read(dir.join("config")).unwrap(),
            fs::read(&f.config).unwrap()
        );
        assert!(agent.data_dir().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("listener")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
        }
        // No staging directory left behind.
        let names: Vec<_> = fs::read_dir(f.home.agents_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["listener"]);
        assert_eq!(list(&f.home).unwrap(), vec![agent]);
    }

    #[test]
    fn command_agents_and_plain_command_lines() {
        let f = fixture();
        let spec = InstallSpec::new(
            "py.agent",
            "pyagent-1.0",
            Program::Command(vec!["python3".into(), "-m".into(), "agent x".into()]),
        );
        let agent = install(&f.home, &spec).unwrap();
        assert_eq!(
            agent.program,
            Program::Command(vec!["python3".into(), "-m".into(), "agent x".into()])
        );
        fs::write(agent.dir.join("COMMAND"), "/usr/bin/env  run-it --fast\n").unwrap();
        let agent = InstalledAgent::load(&agent.dir).unwrap();
        assert_eq!(
            agent.program,
            Program::Command(vec!["/usr/bin/env".into(), "run-it".into(), "--fast".into()])
        );
        let bad = InstallSpec::new("x", "x-1", Program::Command(vec![]));
        assert!(matches!(
            install(&f.home, &bad).unwrap_err(),
            InstallError::Invalid { field: "command", .. }
        ));
    }

    #[test]
    fn python_agents_have_a_python_file() {
        let f = fixture();
        let python = PythonProgram {
            env: PathBuf::from("/opt/venv"),
            entry_point: "listener.agent:main".into(),
            distribution: "volttron-listener".into(),
            version: "2.0.0rc3".into(),
        };
        let mut spec = InstallSpec::new(
            "listener",
            "volttron-listener-2.0.0rc3",
            Program::Python(python.clone()),
        );
        spec.config = Some(f.config.clone());
        let agent = install(&f.home, &spec).unwrap();
        assert_eq!(agent.program, Program::Python(python.clone()));
        assert_eq!(agent.config, Some(agent.dir.join("config")));
        let names: std::collections::BTreeSet<String> = fs::read_dir(&agent.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["NAME", "PYTHON", "UUID", "config", "data"]
                .map(String::from)
                .into()
        );
        // Replaced by an executable with --force: PYTHON goes.
        let mut exe = InstallSpec::new("listener", "l-1", f.exe.clone());
        exe.force = true;
        let again = install(&f.home, &exe).unwrap();
        assert!(!again.dir.join("PYTHON").exists());
        assert_eq!(again.uuid, agent.uuid);
        // Bad entry points, relative environments and over-long identities are refused.
        for (identity, program, field) in [
            (
                "a",
                PythonProgram {
                    entry_point: "listener.agent".into(),
                    ..python.clone()
                },
                "entry_point",
            ),
            (
                "a",
                PythonProgram {
                    env: "venv".into(),
                    ..python.clone()
                },
                "python environment",
            ),
            (&*"i".repeat(100), python.clone(), "identity"),
        ] {
            let err = install(
                &f.home,
                &InstallSpec::new(identity, "x-1", Program::Python(program)),
            )
            .unwrap_err();
            assert!(
                matches!(err, InstallError::Invalid { field: f, .. } if f == field),
                "{err}"
            );
        }
        fs::write(again.dir.join("PYTHON"), "{}").unwrap();
        assert!(matches!(
            InstalledAgent::load(&again.dir).unwrap_err(),
            AgentDirError::InvalidFile { .. }
        ));
    }

    #[test]
    fn reinstall_needs_force_and_keeps_uuid_and_data() {
        let f = fixture();
        let mut spec = InstallSpec::new("listener", "listeneragent-3.0", f.exe.clone());
        spec.tag = Some("old".into());
        spec.config = Some(f.config.clone());
        let first = install(&f.home, &spec).unwrap();
        assert_eq!(first.user_id, None);
        fs::write(first.data_dir().join("state.db"), b"precious").unwrap();
        let first = set_user_id(&f.home, "listener", 200_007).unwrap();
        assert_eq!(first.user_id, Some(200_007));

        let err = install(&f.home, &spec).unwrap_err();
        assert!(matches!(&err, InstallError::Exists { identity, .. } if identity.as_str() == "listener"));
        assert!(err.to_string().contains("--force"), "{err}");

        // A new executable under a new name, no config, no tag, enabled.
        let exe2 = f.exe.with_file_name("listener2");
        fs::write(&exe2, b"#!/bin/sh\necho v2\n").unwrap();
        let mut spec2 = InstallSpec::new("listener", "listeneragent-4.0", exe2);
        spec2.force = true;
        spec2.enable = true;
        let second = install(&f.home, &spec2).unwrap();
        assert_eq!(second.uuid, first.uuid);
        assert_eq!(second.name, "listeneragent-4.0");
        assert_eq!((second.tag.clone(), second.config.clone()), (None, None));
        assert_eq!(second.program, Program::Executable(second.dir.join("listener2")));
        assert!(!second.dir.join("listener").exists());
        assert!(second.autostart);
        assert_eq!(fs::read(second.data_dir().join("state.db")).unwrap(), b"precious");
        assert_eq!(second.user_id, Some(200_007), "USER_ID is kept like UUID");

        fs::write(second.dir.join("USER_ID"), "root").unwrap();
        assert!(matches!(
            InstalledAgent::load(&second.dir).unwrap_err(),
            AgentDirError::InvalidFile { .. }
        ));
    }

    #[test]
    fn remove_deletes_the_directory() {
        let f = fixture();
        let agent = install(&f.home, &InstallSpec::new("listener", "l-1", f.exe.clone())).unwrap();
        fs::write(agent.data_dir().join("x"), b"x").unwrap();
        remove(&f.home, "listener").unwrap();
        assert!(!agent.dir.exists());
        assert_eq!(fs::read_dir(f.home.agents_dir()).unwrap().count(), 0);
        let err = remove(&f.home, "listener").unwrap_err();
        assert!(matches!(err, InstallError::NotInstalled { .. }), "{err}");
        assert!(err.to_string().contains("no agent is installed as 'listener'"));
    }

    #[test]
    fn tag_priority_enable_disable() {
        let f = fixture();
        install(&f.home, &InstallSpec::new("a", "a-1", f.exe.clone())).unwrap();
        let a = set_tag(&f.home, "a", Some(" zone1 ")).unwrap();
        assert_eq!(a.tag.as_deref(), Some("zone1"));
        let a = set_tag(&f.home, "a", None).unwrap();
        assert_eq!(a.tag, None);
        let long = "t".repeat(MAX_TAG_LEN + 1);
        assert!(matches!(
            set_tag(&f.home, "a", Some(&long)).unwrap_err(),
            InstallError::Invalid { field: "tag", .. }
        ));
        assert_eq!(find(&f.home, "a").unwrap().priority, None);
        // Enabling writes the effective priority to AUTOSTART, as VOLTTRON does.
        let a = enable(&f.home, "a", None).unwrap();
        assert_eq!(
            (a.autostart, a.priority, a.effective_priority()),
            (true, Some(50), 50)
        );
        assert!(!a.dir.join("PRIORITY").exists());
        let a = set_priority(&f.home, "a", 7).unwrap();
        assert_eq!((a.autostart, a.priority), (true, Some(7)));
        assert_eq!(fs::read_to_string(a.dir.join("AUTOSTART")).unwrap(), "7");
        let a = disable(&f.home, "a").unwrap();
        assert_eq!((a.autostart, a.priority), (false, Some(7)));
        let a = enable(&f.home, "a", Some(20)).unwrap();
        assert_eq!((a.autostart, a.priority), (true, Some(20)));
        assert!(matches!(
            enable(&f.home, "nope", None).unwrap_err(),
            InstallError::NotInstalled { .. }
        ));
    }

    #[test]
    fn autostart_order_is_numeric() {
        let f = fixture();
        for (id, priority) in [
            ("c", Some(100)),
            ("b", Some(50)),
            ("a", Some(9)),
            ("d", None),
            ("off", Some(1)),
        ] {
            let mut spec = InstallSpec::new(id, format!("{id}-1"), f.exe.clone());
            spec.priority = priority;
            spec.enable = id != "off";
            install(&f.home, &spec).unwrap();
        }
        let agents = list(&f.home).unwrap();
        let order: Vec<&str> = autostart_order(&agents)
            .iter()
            .map(|a| a.identity.as_str())
            .collect();
        // 9 < 50 (b, then d with the default 50, by identity) < 100; "off" is not enabled.
        assert_eq!(order, ["a", "b", "d", "c"]);
        // VOLTTRON compared the strings: "9" > "50" > "100".
        assert!("9" > "50" && "50" > "100");
    }

    #[test]
    fn bad_identities_and_missing_sources_are_typed_errors() {
        let f = fixture();
        for bad in ["", "bad id", "../etc", "a/b", "\u{e9}t\u{e9}"] {
            let err = install(&f.home, &InstallSpec::new(bad, "x-1", f.exe.clone())).unwrap_err();
            assert!(matches!(err, InstallError::BadIdentity { .. }), "{bad:?}: {err}");
            assert!(matches!(
                remove(&f.home, bad).unwrap_err(),
                InstallError::BadIdentity { .. }
            ));
        }
        // Valid identities that would escape agents/ or hide from the listing.
        for reserved in [".", "..", ".hidden"] {
            let err = install(&f.home, &InstallSpec::new(reserved, "x-1", f.exe.clone())).unwrap_err();
            assert!(
                matches!(err, InstallError::ReservedIdentity { .. }),
                "{reserved:?}: {err}"
            );
            let err = remove(&f.home, reserved).unwrap_err();
            assert!(
                matches!(err, InstallError::ReservedIdentity { .. }),
                "{reserved:?}: {err}"
            );
        }
        assert!(f.home.path().is_dir());
        let missing = f.exe.with_file_name("nope");
        let err = install(&f.home, &InstallSpec::new("x", "x-1", missing)).unwrap_err();
        assert!(
            matches!(
                err,
                InstallError::Source {
                    what: "executable",
                    ..
                }
            ),
            "{err}"
        );
        let mut spec = InstallSpec::new("x", "x-1", f.exe.clone());
        spec.config = Some(f.exe.with_file_name("missing.json"));
        let err = install(&f.home, &spec).unwrap_err();
        assert!(
            matches!(err, InstallError::Source { what: "config", .. }),
            "{err}"
        );
        // A directory is not an executable.
        let err = install(&f.home, &InstallSpec::new("x", "x-1", f.home.path().to_owned())).unwrap_err();
        assert!(matches!(err, InstallError::Source { .. }), "{err}");
        let config_named = f.exe.with_file_name("config");
        fs::write(&config_named, b"x").unwrap();
        let err = install(&f.home, &InstallSpec::new("x", "x-1", config_named)).unwrap_err();
        assert!(
            matches!(
                err,
                InstallError::Invalid {
                    field: "executable",
                    ..
                }
            ),
            "{err}"
        );
        let err = install(&f.home, &InstallSpec::new("x", "two\nlines", f.exe.clone())).unwrap_err();
        assert!(
            matches!(err, InstallError::Invalid { field: "name", .. }),
            "{err}"
        );
        // Nothing was installed by any of these.
        assert!(list(&f.home).unwrap().is_empty());
    }

    #[test]
    fn broken_directories_are_skipped_and_reported() {
        let f = fixture();
        install(&f.home, &InstallSpec::new("good", "good-1", f.exe.clone())).unwrap();
        let agents = f.home.agents_dir();
        fs::create_dir(agents.join("empty")).unwrap();
        fs::create_dir(agents.join("bad id")).unwrap();
        fs::create_dir(agents.join(".staging.install")).unwrap();
        fs::write(agents.join("stray-file"), b"").unwrap();
        let nouuid = agents.join("baduuid");
        fs::create_dir(&nouuid).unwrap();
        fs::write(nouuid.join("UUID"), "not-a-uuid").unwrap();
        let ids: Vec<String> = list(&f.home)
            .unwrap()
            .iter()
            .map(|a| a.identity.to_string())
            .collect();
        assert_eq!(ids, ["good"]);

        assert!(matches!(
            InstalledAgent::load(agents.join("empty")).unwrap_err(),
            AgentDirError::MissingFile { file: "UUID", .. }
        ));
        assert!(matches!(
            InstalledAgent::load(agents.join("bad id")).unwrap_err(),
            AgentDirError::BadIdentity { .. }
        ));
        assert!(matches!(
            InstalledAgent::load(&nouuid).unwrap_err(),
            AgentDirError::InvalidFile { .. }
        ));
        assert!(matches!(
            InstalledAgent::load(agents.join("missing")).unwrap_err(),
            AgentDirError::Io { .. }
        ));
        let good = agents.join("good");
        fs::write(good.join("PRIORITY"), "high").unwrap();
        let err = InstalledAgent::load(&good).unwrap_err();
        assert!(err.to_string().contains("\"high\""), "{err}");
        fs::remove_file(good.join("PRIORITY")).unwrap();
        // Broken directories are what --force repairs; without it they are Exists.
        fs::remove_file(good.join("UUID")).unwrap();
        assert!(matches!(
            find(&f.home, "good").unwrap_err(),
            InstallError::Broken(AgentDirError::MissingFile { .. })
        ));
        let mut spec = InstallSpec::new("good", "good-2", f.exe.clone());
        assert!(matches!(
            install(&f.home, &spec).unwrap_err(),
            InstallError::Exists { .. }
        ));
        spec.force = true;
        assert_eq!(install(&f.home, &spec).unwrap().name, "good-2");
    }

    #[test]
    fn reads_volttron_style_autostart_priority() {
        let f = fixture();
        let a = install(&f.home, &InstallSpec::new("a", "a-1", f.exe.clone())).unwrap();
        fs::write(a.dir.join("AUTOSTART"), "30\n").unwrap();
        fs::write(a.dir.join("execreqs.json"), "{}").unwrap();
        let a = InstalledAgent::load(&a.dir).unwrap();
        assert_eq!((a.autostart, a.priority), (true, Some(30)));
        assert_eq!(a.exereqs, Some(a.dir.join("execreqs.json")));
        // A second executable makes the program ambiguous.
        let extra = a.dir.join("helper");
        fs::write(&extra, b"").unwrap();
        set_mode(&extra, 0o755).unwrap();
        assert!(matches!(
            InstalledAgent::load(&a.dir).unwrap_err(),
            AgentDirError::SeveralPrograms { .. }
        ));
    }
}
