//! SVG flame graphs of folded stacks (feature `flamegraph`), drawn by inferno.
//!
//! inferno is CDDL-1.0, a file-level copyleft licence: this feature is opt-in and not in
//! `cli`, so the default `volttron` and `vctl` binaries carry none of its code. A build
//! without it still writes the folded stacks, which any flame graph tool draws.

use super::{Profile, ProfileError};

/// The SVG flame graph of `profile`'s stacks, titled with what was profiled.
pub fn render(profile: &Profile) -> Result<String, ProfileError> {
    if profile.folded.trim().is_empty() {
        return Err(ProfileError::Render(format!(
            "no samples: {} used no CPU while it was sampled",
            profile.source
        )));
    }
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!(
        "CPU profile of {} (pid {}), {} s",
        profile.source, profile.pid, profile.seconds
    );
    options.subtitle = Some(format!("{} samples at {} Hz", profile.samples, profile.frequency));
    options.count_name = "samples".into();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, profile.folded.lines(), &mut svg)
        .map_err(|e| ProfileError::Render(e.to_string()))?;
    String::from_utf8(svg).map_err(|e| ProfileError::Render(e.to_string()))
}
