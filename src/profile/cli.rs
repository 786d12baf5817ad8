//! `vctl profile`: asks the platform for a profile and writes it to a file.

use std::path::{Path, PathBuf};

use crate::remote::Connection;

use super::service::{ANSWER_MARGIN, IDENTITY, METHOD};
use super::{Profile, ProfileError, checked_seconds};

/// What `vctl profile -o FILE` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Folded stacks (the text of [`Profile::folded`]).
    Folded,
    /// An SVG flame graph (feature `flamegraph`).
    Svg,
}

impl OutputFormat {
    /// The format a file name asks for: `*.svg` is [`Svg`](Self::Svg), anything else
    /// [`Folded`](Self::Folded).
    pub fn for_path(path: &Path) -> OutputFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("svg") => OutputFormat::Svg,
            _ => OutputFormat::Folded,
        }
    }
}

/// One `vctl profile` command, checked before the platform is asked.
#[derive(Debug, Clone)]
pub struct ProfileRequest {
    seconds: u64,
    agent: Option<String>,
    output: PathBuf,
    format: OutputFormat,
}

impl ProfileRequest {
    /// `vctl profile [--agent AGENT] --seconds SECONDS -o OUTPUT`: refuses a bad duration,
    /// and an SVG from a build without the `flamegraph` feature, before anything runs.
    pub fn new(seconds: u64, agent: Option<String>, output: PathBuf) -> Result<ProfileRequest, ProfileError> {
        checked_seconds(seconds)?;
        let format = OutputFormat::for_path(&output);
        if format == OutputFormat::Svg && !cfg!(feature = "flamegraph") {
            return Err(ProfileError::FlamegraphDisabled);
        }
        Ok(ProfileRequest {
            seconds,
            agent,
            output,
            format,
        })
    }

    /// Fetches the profile over `conn` and writes it.
    pub async fn run(&self, conn: &Connection) -> Result<Profile, ProfileError> {
        let profile = fetch(conn, self.seconds, self.agent.as_deref()).await?;
        write(&profile, &self.output, self.format)?;
        Ok(profile)
    }

    /// What `vctl` prints once `profile` is written: JSON (`--json`) and a line of text.
    pub fn summary(&self, profile: &Profile) -> (serde_json::Value, String) {
        let json = serde_json::json!({
            "source": profile.source,
            "pid": profile.pid,
            "seconds": profile.seconds,
            "frequency": profile.frequency,
            "samples": profile.samples,
            "stacks": profile.folded.lines().count(),
            "output": self.output.display().to_string(),
            "format": match self.format { OutputFormat::Folded => "folded", OutputFormat::Svg => "svg" },
        });
        let text = format!(
            "{} samples of {} (pid {}) over {} s written to {}",
            profile.samples,
            profile.source,
            profile.pid,
            profile.seconds,
            self.output.display()
        );
        (json, text)
    }
}

/// Asks the platform behind `conn` for a CPU profile of itself, or of `agent`'s
/// process, over `seconds`; waits for it (`seconds` plus a margin).
pub async fn fetch(conn: &Connection, seconds: u64, agent: Option<&str>) -> Result<Profile, ProfileError> {
    let duration = checked_seconds(seconds)?;
    let answer = conn
        .call(IDENTITY, METHOD, (seconds, agent))
        .timeout(duration + ANSWER_MARGIN * 2)
        .await?;
    crate::from_value(answer).map_err(|e| ProfileError::Reply(e.to_string()))
}

/// Writes `profile` to `path` as `format`, atomically (a failed write leaves no half
/// file behind).
pub fn write(profile: &Profile, path: &Path, format: OutputFormat) -> Result<(), ProfileError> {
    let text = match format {
        OutputFormat::Folded => profile.folded.clone(),
        OutputFormat::Svg => svg(profile)?,
    };
    crate::durable::write(
        path,
        text.as_bytes(),
        crate::durable::Perms::KeepExisting,
        crate::durable::IfExists::Replace,
    )
    .map(|_| ())
    .map_err(|e| ProfileError::Write {
        path: e.path,
        source: e.source,
    })
}

#[cfg(feature = "flamegraph")]
fn svg(profile: &Profile) -> Result<String, ProfileError> {
    super::flamegraph::render(profile)
}

#[cfg(not(feature = "flamegraph"))]
fn svg(_: &Profile) -> Result<String, ProfileError> {
    Err(ProfileError::FlamegraphDisabled)
}
