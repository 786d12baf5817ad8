//! Profiles of Python agents: `py-spy record` on the agent's process.
//!
//! | py-spy | answer |
//! |--------|--------|
//! | beside the agent's interpreter (`<env>/bin/py-spy`) or on `PATH` | its samples (`--format raw`, folded stacks, idle frames left out) as a [`Profile`] |
//! | neither | [`ProfileError::PySpyMissing`], saying how to install it |
//! | it runs and fails (no ptrace permission, the process ended) | [`ProfileError::PySpy`] with its standard error |
//!
//! py-spy reads another process's memory, so it needs ptrace permission over it: the
//! platform as root, the same user with `kernel.yama.ptrace_scope = 0`, or
//! `CAP_SYS_PTRACE`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Profile, ProfileError};

/// py-spy's samples per second (of wall-clock time; idle stacks are left out).
pub const PY_SPY_RATE: u32 = 100;

/// Where py-spy is looked for: beside `interpreter` (the agent's environment), then on
/// `PATH`.
pub fn find_py_spy(interpreter: &Path) -> Result<PathBuf, String> {
    let mut looked = Vec::new();
    if let Some(bin) = interpreter.parent() {
        let beside = bin.join("py-spy");
        if beside.is_file() {
            return Ok(beside);
        }
        looked.push(beside.display().to_string());
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join("py-spy");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    looked.push("PATH".into());
    Err(looked.join(", then "))
}

/// Profiles the Python agent `agent` (process `pid`, interpreter `interpreter`) for
/// `duration` with py-spy. Blocks for `duration`: run it on a blocking thread.
pub fn record_blocking(
    agent: &str,
    pid: u32,
    interpreter: &Path,
    duration: Duration,
) -> Result<Profile, ProfileError> {
    let py_spy = find_py_spy(interpreter).map_err(|looked_for| ProfileError::PySpyMissing {
        agent: agent.to_owned(),
        looked_for,
    })?;
    let failed = |message: String| ProfileError::PySpy {
        agent: agent.to_owned(),
        pid,
        message,
    };
    let dir = tempfile::tempdir().map_err(|e| failed(format!("no temporary directory: {e}")))?;
    let output = dir.path().join("profile.folded");
    let run = Command::new(&py_spy)
        .arg("record")
        .arg("--pid")
        .arg(pid.to_string())
        .arg("--duration")
        .arg(duration.as_secs().to_string())
        .arg("--rate")
        .arg(PY_SPY_RATE.to_string())
        .arg("--format")
        .arg("raw")
        .arg("--output")
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| failed(format!("{} does not run: {e}", py_spy.display())))?;
    if !run.status.success() {
        let stderr = String::from_utf8_lossy(&run.stderr);
        return Err(failed(format!("{} ({})", stderr.trim(), run.status)));
    }
    let text = std::fs::read_to_string(&output).map_err(|e| failed(format!("{}: {e}", output.display())))?;
    Ok(Profile::from_folded(agent, pid, duration, PY_SPY_RATE, &text))
}
