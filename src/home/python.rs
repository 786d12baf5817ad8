//! Python agents: the platform's Python environment, installing a package into it with
//! pip, and what VOLTTRON 11 reads from the installed distribution (name, version, entry
//! point, default identity).
//!
//! **The environment.** One per platform home: `$VOLTTRON_HOME/python/`, a virtual
//! environment made with `python3 -m venv` on first use (the interpreter is
//! `$VOLTTRON_PYTHON` if set, else `python3` on `PATH`). `$VOLTTRON_PYTHON_ENV=<dir>`
//! names an existing environment to use instead (it is never created or changed other
//! than by pip). Every Python agent of the home runs with the environment's interpreter;
//! instances of one package share its installed code. An installed agent records the
//! environment it was installed into ([`PythonProgram::env`]), so a later change of
//! `$VOLTTRON_PYTHON_ENV` does not move agents already installed.
//!
//! **Sources** ([`PackageSource::classify`]): an existing `*.whl` file is a wheel; an
//! existing directory with `pyproject.toml`, `setup.py` or `setup.cfg` (and no
//! `Cargo.toml`) a Python project; a text that names no existing file or directory and
//! looks like a requirement (`volttron-listener`, `volttron-listener==2.0.0rc3`,
//! `name[extra]>=1`) a package on the index. Anything else is not a Python package (for
//! `vctl`: a Rust agent's executable or a cargo project).
//!
//! **Installing** ([`PythonEnv::install_package`]): `<env>/bin/python -m pip install
//! --report <tmp> <source>` (pinned versions honoured; `--pre` on request). The
//! distribution is the one pip's report marks as requested, else the name in the
//! requirement or wheel file name (an already satisfied requirement installs nothing).
//! Then the environment itself is asked (`importlib.metadata`, run with its interpreter)
//! for the distribution's name, version, entry points and location, and
//! `<location>/<name>-default-vip-id` is read, as VOLTTRON 11 does:
//!
//! - identity: `--vip-identity` if given, else that file's content, else
//!   `<name>-<version>_<n>` (the first free `n`, from 1);
//! - entry point: the one named like the distribution, else the last listed (any group,
//!   as VOLTTRON 11's `aip.py` iterates them);
//! - `NAME`: `<name>-<version>`, the name normalized (lower case, runs of `-_.` as `-`).
//!
//! A missing interpreter, a failing pip (its last stderr lines are in the error), a
//! distribution without an entry point, or one whose entry point is not
//! `module:function` is a [`PythonError`]; nothing of the agent is installed then (what
//! pip itself left in the environment is pip's).
//!
//! **Launching** ([`PythonProgram::command`]): `[<env>/bin/python, "-c", "from <module>
//! import <function>; <function>()"]`, as VOLTTRON 11 does.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::VolttronHome;

/// Names an existing environment to use instead of `$VOLTTRON_HOME/python/`.
pub const ENV_PYTHON_ENV: &str = "VOLTTRON_PYTHON_ENV";

/// The interpreter that creates `$VOLTTRON_HOME/python/` (default `python3`).
pub const ENV_PYTHON: &str = "VOLTTRON_PYTHON";

/// The environment's directory under the home.
pub const ENV_DIR: &str = "python";

/// How many of pip's last stderr lines a [`PythonError::Pip`] keeps.
const PIP_TAIL_LINES: usize = 6;

/// Why a Python environment or package could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    /// The interpreter that makes the environment could not be run.
    #[error("cannot run the Python interpreter {}: {source} (set $VOLTTRON_PYTHON, or $VOLTTRON_PYTHON_ENV to an existing environment)", interpreter.display())]
    NoInterpreter {
        /// The interpreter.
        interpreter: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// `$VOLTTRON_PYTHON_ENV` (or the recorded environment) has no interpreter.
    #[error("{} is not a Python environment (no bin/python)", dir.display())]
    NotAnEnvironment {
        /// The directory.
        dir: PathBuf,
    },
    /// `python -m venv` failed.
    #[error("cannot create the Python environment {}: {tail}", dir.display())]
    Venv {
        /// The directory.
        dir: PathBuf,
        /// The last lines of its output.
        tail: String,
    },
    /// pip failed.
    #[error("pip install {source_text} failed ({status}): {tail}")]
    Pip {
        /// What was installed.
        source_text: String,
        /// How pip exited.
        status: String,
        /// The last lines of its stderr.
        tail: String,
    },
    /// The installed distribution is not in the environment.
    #[error("{name} is not installed in the Python environment {}", env.display())]
    NotInstalled {
        /// The distribution.
        name: String,
        /// The environment.
        env: PathBuf,
    },
    /// The distribution has no entry point to run.
    #[error(
        "{name} {version} has no entry point to run (VOLTTRON agents declare a console script, e.g. `{name} = <module>:<function>`)"
    )]
    NoEntryPoint {
        /// The distribution.
        name: String,
        /// Its version.
        version: String,
    },
    /// The chosen entry point is not `module:function`.
    #[error("{name}: entry point {value:?} is not `module:function`")]
    BadEntryPoint {
        /// The distribution.
        name: String,
        /// The entry point's value.
        value: String,
    },
    /// The source is not a wheel, a project or a requirement.
    #[error(
        "{text:?} is not a Python package: expected a *.whl file, a project directory (pyproject.toml or setup.py) or a requirement such as name==version"
    )]
    NotAPackage {
        /// What was given.
        text: String,
    },
    /// Running a helper or reading its answer failed.
    #[error("{what}: {message}")]
    Helper {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
}

/// What `vctl install` was given, for a Python agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageSource {
    /// A requirement for the package index (`name`, `name==version`, ...).
    Requirement(String),
    /// A wheel file.
    Wheel(PathBuf),
    /// A project directory.
    Project(PathBuf),
}

impl PackageSource {
    /// Classifies `text` (see the module docs); `None` if it is not a Python package.
    pub fn classify(text: &str) -> Option<PackageSource> {
        let path = Path::new(text);
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let has = |f: &str| path.join(f).is_file();
                (!has("Cargo.toml") && (has("pyproject.toml") || has("setup.py") || has("setup.cfg")))
                    .then(|| PackageSource::Project(path.to_owned()))
            }
            Ok(meta) if meta.is_file() => text
                .ends_with(".whl")
                .then(|| PackageSource::Wheel(path.to_owned())),
            Ok(_) => None,
            Err(_) => {
                looks_like_requirement(text).then(|| PackageSource::Requirement(text.trim().to_owned()))
            }
        }
    }

    /// What pip is given.
    pub fn pip_argument(&self) -> String {
        match self {
            PackageSource::Requirement(r) => r.clone(),
            PackageSource::Wheel(p) | PackageSource::Project(p) => absolute(p).display().to_string(),
        }
    }

    /// The distribution's name as far as the source tells it (a project's is only known
    /// once built).
    pub fn name_hint(&self) -> Option<String> {
        match self {
            PackageSource::Requirement(r) => {
                let end = r
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
                    .unwrap_or(r.len());
                Some(r[..end].to_owned()).filter(|n| !n.is_empty())
            }
            PackageSource::Wheel(p) => {
                let file = p.file_name()?.to_str()?;
                Some(file.split('-').next()?.to_owned()).filter(|n| !n.is_empty())
            }
            PackageSource::Project(_) => None,
        }
    }
}

/// A requirement names no path: no `/`, not a `.whl`, a name first.
fn looks_like_requirement(text: &str) -> bool {
    let text = text.trim();
    !text.is_empty()
        && !text.contains('/')
        && !text.ends_with(".whl")
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !text.contains(char::is_control)
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// PEP 503's normalized name: lower case, runs of `-`, `_` and `.` as one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if "-_.".contains(c) {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// An entry point of an installed distribution.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct EntryPoint {
    /// Its name (`volttron-listener-agent`).
    pub name: String,
    /// `module:function` (`listener.agent:main`), possibly with `[extras]`.
    pub value: String,
    /// Its group (`console_scripts`).
    pub group: String,
}

/// An installed distribution, as the environment describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// Its name (the metadata's `Name`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its entry points, in the order listed.
    pub entry_points: Vec<EntryPoint>,
    /// Where it is installed (site-packages).
    pub location: PathBuf,
    /// The content of `<location>/<name>-default-vip-id`, if there is one.
    pub default_identity: Option<String>,
}

impl Distribution {
    /// `NAME`: the normalized name and the version.
    pub fn agent_name(&self) -> String {
        format!("{}-{}", normalize_name(&self.name), self.version)
    }

    /// The entry point VOLTTRON 11 runs: the one named like the distribution, else the
    /// last listed.
    pub fn agent_entry_point(&self) -> Option<&EntryPoint> {
        let name = normalize_name(&self.name);
        self.entry_points
            .iter()
            .find(|e| normalize_name(&e.name) == name)
            .or_else(|| self.entry_points.last())
    }
}

/// How an installed Python agent runs (`agents/<identity>/PYTHON`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PythonProgram {
    /// The environment (its interpreter is `bin/python`).
    pub env: PathBuf,
    /// `module:function`.
    pub entry_point: String,
    /// The distribution's name.
    pub distribution: String,
    /// Its version.
    pub version: String,
}

impl PythonProgram {
    /// The environment's interpreter (not resolved: a venv's `python` is a symlink that
    /// must keep its path for the environment to be found).
    pub fn interpreter(&self) -> PathBuf {
        self.env.join("bin").join("python")
    }

    /// The module and the function (dotted identifiers), if the entry point is
    /// `module:function` (an `[extras]` suffix is dropped).
    pub fn module_function(&self) -> Option<(&str, &str)> {
        parse_entry_point(&self.entry_point)
    }

    /// The command line: `[python, "-c", "from <module> import <f>; <f>()"]`; `None` if
    /// the entry point is not `module:function`.
    pub fn command(&self) -> Option<Vec<String>> {
        let (module, function) = self.module_function()?;
        let first = function.split('.').next().unwrap_or(function);
        Some(vec![
            self.interpreter().display().to_string(),
            "-c".into(),
            format!("from {module} import {first}; {function}()"),
        ])
    }
}

/// `module:function [extras]` → (module, function), both dotted Python identifiers.
fn parse_entry_point(value: &str) -> Option<(&str, &str)> {
    let value = value.split('[').next().unwrap_or(value).trim();
    let (module, function) = value.split_once(':')?;
    let (module, function) = (module.trim(), function.trim());
    let dotted = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    };
    (dotted(module) && dotted(function)).then_some((module, function))
}

/// A Python package installed for an agent: what [`PythonEnv::install_package`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// The distribution.
    pub distribution: Distribution,
    /// How to run it.
    pub program: PythonProgram,
}

/// A Python environment (a venv directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    dir: PathBuf,
}

impl PythonEnv {
    /// `$VOLTTRON_PYTHON_ENV` if set (it must exist), else `$VOLTTRON_HOME/python/`,
    /// created on first use.
    pub fn resolve(home: &VolttronHome) -> Result<PythonEnv, PythonError> {
        match std::env::var_os(ENV_PYTHON_ENV).filter(|v| !v.is_empty()) {
            Some(dir) => PythonEnv::open(dir),
            None => PythonEnv::open_or_create(home.path().join(ENV_DIR)),
        }
    }

    /// An existing environment.
    pub fn open(dir: impl Into<PathBuf>) -> Result<PythonEnv, PythonError> {
        let dir = absolute(&dir.into());
        let env = PythonEnv { dir };
        if !env.interpreter().exists() {
            return Err(PythonError::NotAnEnvironment { dir: env.dir });
        }
        Ok(env)
    }

    /// The environment in `dir`, made with `<$VOLTTRON_PYTHON or python3> -m venv` if it
    /// has no interpreter yet. A failed creation removes what it made.
    pub fn open_or_create(dir: impl Into<PathBuf>) -> Result<PythonEnv, PythonError> {
        let dir = dir.into();
        if dir.join("bin").join("python").exists() {
            return PythonEnv::open(dir);
        }
        let interpreter = std::env::var_os(ENV_PYTHON)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("python3"));
        let existed = dir.exists();
        let output = Command::new(&interpreter)
            .args(["-m", "venv"])
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| PythonError::NoInterpreter {
                interpreter: interpreter.clone(),
                source,
            })?;
        if !output.status.success() {
            if !existed {
                let _ = std::fs::remove_dir_all(&dir);
            }
            let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stdout));
            return Err(PythonError::Venv {
                dir,
                tail: tail(&text, PIP_TAIL_LINES),
            });
        }
        PythonEnv::open(dir)
    }

    /// The environment's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its interpreter, `bin/python`.
    pub fn interpreter(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    /// Installs `source` with pip, then describes the distribution and checks that it
    /// has an entry point to run (see the module docs). Blocks (pip may download).
    pub fn install_package(
        &self,
        source: &PackageSource,
        pre: bool,
    ) -> Result<InstalledPackage, PythonError> {
        let requested = self.pip_install(source, pre)?;
        let name = requested
            .or_else(|| source.name_hint())
            .ok_or_else(|| PythonError::Helper {
                what: "pip install",
                message: format!(
                    "pip's report names no package installed from {}",
                    source.pip_argument()
                ),
            })?;
        let distribution = self.distribution(&name)?;
        let entry = distribution
            .agent_entry_point()
            .ok_or_else(|| PythonError::NoEntryPoint {
                name: distribution.name.clone(),
                version: distribution.version.clone(),
            })?;
        let program = PythonProgram {
            env: self.dir.clone(),
            entry_point: entry.value.clone(),
            distribution: distribution.name.clone(),
            version: distribution.version.clone(),
        };
        if program.module_function().is_none() {
            return Err(PythonError::BadEntryPoint {
                name: distribution.name.clone(),
                value: entry.value.clone(),
            });
        }
        Ok(InstalledPackage {
            distribution,
            program,
        })
    }

    /// Runs pip; returns the name of the distribution its report marks as requested
    /// (none when the requirement was already satisfied).
    fn pip_install(&self, source: &PackageSource, pre: bool) -> Result<Option<String>, PythonError> {
        let report = tempfile::Builder::new()
            .prefix("pip-report.")
            .suffix(".json")
            .tempfile()
            .map_err(|e| PythonError::Helper {
                what: "pip report file",
                message: e.to_string(),
            })?;
        let argument = source.pip_argument();
        let mut command = Command::new(self.interpreter());
        command
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
            ])
            .arg("--report")
            .arg(report.path());
        if pre {
            command.arg("--pre");
        }
        command.arg(&argument).stdin(Stdio::null());
        let output = command.output().map_err(|source| PythonError::NoInterpreter {
            interpreter: self.interpreter(),
            source,
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let text = if stderr.trim().is_empty() {
                String::from_utf8_lossy(&output.stdout).into_owned()
            } else {
                stderr.into_owned()
            };
            return Err(PythonError::Pip {
                source_text: argument,
                status: output.status.to_string(),
                tail: pip_errors(&text),
            });
        }
        let mut text = String::new();
        let _ = std::fs::File::open(report.path()).and_then(|mut f| f.read_to_string(&mut text));
        Ok(requested_name(&text))
    }

    /// Asks the environment about an installed distribution.
    pub fn distribution(&self, name: &str) -> Result<Distribution, PythonError> {
        let output = Command::new(self.interpreter())
            .args(["-c", INSPECT, name])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| PythonError::NoInterpreter {
                interpreter: self.interpreter(),
                source,
            })?;
        let helper = |message: String| PythonError::Helper {
            what: "reading the installed distribution",
            message,
        };
        if !output.status.success() {
            return Err(helper(tail(
                &String::from_utf8_lossy(&output.stderr),
                PIP_TAIL_LINES,
            )));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            found: bool,
            #[serde(default)]
            name: String,
            #[serde(default)]
            version: String,
            #[serde(default)]
            entry_points: Vec<EntryPoint>,
            #[serde(default)]
            location: String,
        }
        let answer: Answer = serde_json::from_slice(&output.stdout).map_err(|e| helper(e.to_string()))?;
        if !answer.found {
            return Err(PythonError::NotInstalled {
                name: name.to_owned(),
                env: self.dir.clone(),
            });
        }
        let location = PathBuf::from(answer.location);
        let default_identity = default_identity(&location, &[name, &answer.name]);
        Ok(Distribution {
            name: answer.name,
            version: answer.version,
            entry_points: answer.entry_points,
            location,
            default_identity,
        })
    }
}

/// Describes one distribution as JSON (run with the environment's interpreter).
const INSPECT: &str = r#"
import json, sys
from importlib import metadata
try:
    d = metadata.distribution(sys.argv[1])
except metadata.PackageNotFoundError:
    print(json.dumps({"found": False}))
    sys.exit(0)
print(json.dumps({
    "found": True,
    "name": d.metadata["Name"] or sys.argv[1],
    "version": d.version,
    "entry_points": [{"name": e.name, "value": e.value, "group": e.group} for e in d.entry_points],
    "location": str(d.locate_file("")),
}))
"#;

/// `<location>/<name>-default-vip-id`, trying the name as given, as in the metadata, and
/// normalized.
fn default_identity(location: &Path, names: &[&str]) -> Option<String> {
    let mut candidates: Vec<String> = Vec::new();
    for name in names {
        for n in [name.to_string(), normalize_name(name), name.replace('_', "-")] {
            if !candidates.contains(&n) {
                candidates.push(n);
            }
        }
    }
    candidates.iter().find_map(|n| {
        let text = std::fs::read_to_string(location.join(format!("{n}-default-vip-id"))).ok()?;
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    })
}

/// The name of the requested item in pip's installation report.
fn requested_name(report: &str) -> Option<String> {
    let report: serde_json::Value = serde_json::from_str(report).ok()?;
    report["install"]
        .as_array()?
        .iter()
        .find(|item| item["requested"].as_bool() == Some(true))
        .and_then(|item| item["metadata"]["name"].as_str())
        .map(str::to_owned)
}

/// What pip's stderr says went wrong, on one line: its last error lines (`ERROR: ...`,
/// `error: ...`, a Python exception such as `RuntimeError: ...` from a build backend),
/// else its last lines.
fn pip_errors(text: &str) -> String {
    let is_error = |line: &&str| {
        let head = line.split(':').next().unwrap_or_default();
        line.contains(':')
            && (head.eq_ignore_ascii_case("error")
                || (!head.is_empty()
                    && !head.contains(' ')
                    && (head.ends_with("Error") || head.ends_with("Exception"))))
    };
    let errors: Vec<&str> = text.lines().map(str::trim).filter(is_error).collect();
    if errors.is_empty() {
        return tail(text, PIP_TAIL_LINES);
    }
    errors[errors.len().saturating_sub(4)..].join(" | ")
}

/// The last `n` non-empty lines of `text`, joined with ` | ` (one line for an error).
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(n)..].join(" | ");
    if tail.is_empty() { "no output".into() } else { tail }
}

/// The longest identity a Python agent may have: its `AGENT_CREDENTIALS` JSON is
/// `stat()`ed as a path first, and a piece of a path over 255 bytes crashes the agent
/// (ENAMETOOLONG) before it tries the JSON.
pub const MAX_IDENTITY_LEN: usize = 255 - CREDENTIALS_OVERHEAD;

/// `agent_credentials`'s length without the identity (two 43-character keys).
const CREDENTIALS_OVERHEAD: usize = 156;

/// `AGENT_CREDENTIALS` as VOLTTRON 11 passes it: compact JSON
/// `{"identity","publickey","secretkey","domain":"","address":""}`; `None` if a
/// `/`-separated piece of it would exceed 255 bytes.
pub fn agent_credentials(identity: &str, publickey: &str, secretkey: &str) -> Option<String> {
    let json = serde_json::json!({
        "identity": identity,
        "publickey": publickey,
        "secretkey": secretkey,
        "domain": "",
        "address": "",
    })
    .to_string();
    json.split('/').all(|piece| piece.len() <= 255).then_some(json)
}

/// The identity for a Python agent: `explicit`, else the distribution's default, else
/// `<name>-<version>_<n>` with the first `n` from 1 that `taken` rejects not.
pub fn choose_identity(
    explicit: Option<&str>,
    distribution: &Distribution,
    taken: impl Fn(&str) -> bool,
) -> String {
    if let Some(id) = explicit.or(distribution.default_identity.as_deref()) {
        return id.to_owned();
    }
    let name = distribution.agent_name();
    (1u64..)
        .map(|n| format!("{name}_{n}"))
        .find(|id| !taken(id))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(entry_points: &[(&str, &str)]) -> Distribution {
        Distribution {
            name: "Volttron_Listener".into(),
            version: "2.0.0rc3".into(),
            entry_points: entry_points
                .iter()
                .map(|(n, v)| EntryPoint {
                    name: (*n).into(),
                    value: (*v).into(),
                    group: "console_scripts".into(),
                })
                .collect(),
            location: PathBuf::from("/nowhere"),
            default_identity: None,
        }
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize_name("Volttron_Listener"), "volttron-listener");
        assert_eq!(normalize_name("a.-_b"), "a-b");
        assert_eq!(dist(&[]).agent_name(), "volttron-listener-2.0.0rc3");
    }

    #[test]
    fn entry_point_named_like_the_distribution_else_the_last() {
        let d = dist(&[
            ("a", "x:a"),
            ("volttron-listener", "listener.agent:main"),
            ("b", "y:b"),
        ]);
        assert_eq!(d.agent_entry_point().unwrap().value, "listener.agent:main");
        let d = dist(&[
            ("volttron-listener-agent", "listener.agent:main"),
            ("z", "z.m:run"),
        ]);
        assert_eq!(d.agent_entry_point().unwrap().value, "z.m:run");
        assert!(dist(&[]).agent_entry_point().is_none());
    }

    #[test]
    fn commands_from_entry_points() {
        let p = |e: &str| PythonProgram {
            env: PathBuf::from("/v"),
            entry_point: e.into(),
            distribution: "d".into(),
            version: "1".into(),
        };
        assert_eq!(
            p("listener.agent:main").command().unwrap(),
            ["/v/bin/python", "-c", "from listener.agent import main; main()"]
        );
        assert_eq!(
            p("m:Cls.run [extra]").command().unwrap()[2],
            "from m import Cls; Cls.run()"
        );
        for bad in [
            "listener.agent",
            "m:",
            ":f",
            "m:f()",
            "m; import os:f",
            "1m:f",
            "m:f;x",
        ] {
            assert!(p(bad).command().is_none(), "{bad}");
        }
    }

    #[test]
    fn identities_follow_volttron() {
        let mut d = dist(&[]);
        assert_eq!(choose_identity(Some("x"), &d, |_| false), "x");
        assert_eq!(
            choose_identity(None, &d, |id| id == "volttron-listener-2.0.0rc3_1"),
            "volttron-listener-2.0.0rc3_2"
        );
        d.default_identity = Some("default-listener-vip".into());
        assert_eq!(choose_identity(None, &d, |_| true), "default-listener-vip");
    }

    #[test]
    fn credentials_fit_a_path_piece() {
        let key = "k".repeat(43);
        let json = agent_credentials("listener", &key, &key).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["identity"], "listener");
        assert_eq!(
            (v["domain"].as_str(), v["address"].as_str()),
            (Some(""), Some(""))
        );
        assert_eq!(json.len(), CREDENTIALS_OVERHEAD + "listener".len());
        let longest = "i".repeat(MAX_IDENTITY_LEN);
        assert_eq!(agent_credentials(&longest, &key, &key).unwrap().len(), 255);
        assert!(agent_credentials(&format!("{longest}x"), &key, &key).is_none());
    }

    #[test]
    fn sources_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("tiny_agent-0.1.0-py3-none-any.whl");
        std::fs::write(&wheel, b"").unwrap();
        let exe = dir.path().join("agent");
        std::fs::write(&exe, b"").unwrap();
        let project = dir.path().join("proj");
        std::fs::create_dir(&project).unwrap();
        assert_eq!(PackageSource::classify(project.to_str().unwrap()), None);
        std::fs::write(project.join("pyproject.toml"), b"").unwrap();
        assert_eq!(
            PackageSource::classify(project.to_str().unwrap()),
            Some(PackageSource::Project(project.clone()))
        );
        std::fs::write(project.join("Cargo.toml"), b"").unwrap();
        assert_eq!(PackageSource::classify(project.to_str().unwrap()), None);
        let w = PackageSource::classify(wheel.to_str().unwrap()).unwrap();
        assert_eq!(w.name_hint().as_deref(), Some("tiny_agent"));
        assert_eq!(PackageSource::classify(exe.to_str().unwrap()), None);
        let r = PackageSource::classify("volttron-listener==2.0.0rc3").unwrap();
        assert_eq!(r.name_hint().as_deref(), Some("volttron-listener"));
        assert_eq!(
            PackageSource::classify("x[extra]>=1")
                .unwrap()
                .name_hint()
                .as_deref(),
            Some("x")
        );
        for not in ["./missing", "missing.whl", "", "-x", "/abs/none"] {
            assert_eq!(PackageSource::classify(not), None, "{not}");
        }
    }

    #[test]
    fn pip_reports_and_tails() {
        let report = r#"{"install":[{"requested":false,"metadata":{"name":"dep"}},{"requested":true,"metadata":{"name":"tiny-agent"}}]}"#;
        assert_eq!(requested_name(report).as_deref(), Some("tiny-agent"));
        assert_eq!(requested_name(r#"{"install":[]}"#), None);
        assert_eq!(requested_name("not json"), None);
        assert_eq!(tail("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(tail("", 2), "no output");
        let broken = "  error: subprocess-exited-with-error\n  x\n      Traceback (most recent call last):\n        File \"b.py\", line 2\n      RuntimeError: broken on purpose\n  note: not pip\nerror: metadata-generation-failed\nhint: See above";
        assert_eq!(
            pip_errors(broken),
            "error: subprocess-exited-with-error | RuntimeError: broken on purpose | error: metadata-generation-failed"
        );
        assert_eq!(
            pip_errors("ERROR: Invalid requirement: 'x===='\n"),
            "ERROR: Invalid requirement: 'x===='"
        );
        assert_eq!(pip_errors("something\nelse"), "something | else");
    }
}
