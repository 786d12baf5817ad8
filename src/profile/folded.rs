//! [`Profile`]: a CPU profile as folded stacks, the text flame graph tools read.
//!
//! One line per distinct stack, root first, frames separated by `;`, then a space and
//! the number of samples: `volttron-agent-0;std::thread::..;my_agent::busy 42`. The first
//! frame is the thread's name. Lines are sorted, so two profiles of the same stacks are
//! the same text. Inferno's `inferno-flamegraph`, Brendan Gregg's `flamegraph.pl` and
//! speedscope read it as it is.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A CPU profile of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// What was profiled: `platform`, or the agent's identity.
    pub source: String,
    /// The process's id.
    pub pid: u32,
    /// How long it was sampled, in seconds.
    pub seconds: u64,
    /// Samples per second of CPU time (pprof's `ITIMER_PROF`; py-spy's wall-clock rate).
    pub frequency: u32,
    /// How many samples the stacks hold.
    pub samples: u64,
    /// The stacks, folded (see the module docs).
    pub folded: String,
}

impl Profile {
    /// The profile of `stacks` (each a thread name and its frames, root first, with its
    /// sample count), merged and sorted.
    pub(crate) fn from_stacks(
        source: &str,
        duration: Duration,
        frequency: u32,
        stacks: impl IntoIterator<Item = (Vec<String>, u64)>,
    ) -> Profile {
        let mut merged: BTreeMap<String, u64> = BTreeMap::new();
        for (frames, count) in stacks {
            let line = frames.iter().map(|f| clean(f)).collect::<Vec<_>>().join(";");
            *merged.entry(line).or_default() += count;
        }
        Profile::from_lines(source, duration, frequency, merged)
    }

    /// The profile of folded text another tool wrote (py-spy's `--format raw`): its lines
    /// merged and sorted, the others (blank, malformed) dropped.
    pub(crate) fn from_folded(
        source: &str,
        pid: u32,
        duration: Duration,
        frequency: u32,
        text: &str,
    ) -> Profile {
        let mut merged: BTreeMap<String, u64> = BTreeMap::new();
        for line in text.lines() {
            if let Some((stack, count)) = line.trim_end().rsplit_once(' ')
                && let Ok(count) = count.parse::<u64>()
                && !stack.is_empty()
            {
                *merged.entry(stack.to_owned()).or_default() += count;
            }
        }
        let mut profile = Profile::from_lines(source, duration, frequency, merged);
        profile.pid = pid;
        profile
    }

    fn from_lines(
        source: &str,
        duration: Duration,
        frequency: u32,
        merged: BTreeMap<String, u64>,
    ) -> Profile {
        let mut folded = String::new();
        let mut samples = 0;
        for (stack, count) in merged {
            samples += count;
            folded.push_str(&stack);
            folded.push(' ');
            folded.push_str(&count.to_string());
            folded.push('\n');
        }
        Profile {
            source: source.to_owned(),
            pid: std::process::id(),
            seconds: duration.as_secs(),
            frequency,
            samples,
            folded,
        }
    }

    /// The folded lines whose stack has a frame containing `name`.
    pub fn stacks_with<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.folded.lines().filter(move |l| {
            l.rsplit_once(' ')
                .is_some_and(|(stack, _)| stack.split(';').any(|f| f.contains(name)))
        })
    }
}

/// A frame's name as one folded field: no `;` (the separator; Rust names have them, as
/// in `[u8; 4]`) and no line breaks.
fn clean(frame: &str) -> String {
    frame.replace(';', ",").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_merge_sort_and_keep_their_separator() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let p = Profile::from_stacks(
            "platform",
            Duration::from_secs(2),
            99,
            [
                (s(&["worker", "main", "busy"]), 3),
                (s(&["worker", "main", "<[u8; 4] as Debug>::fmt"]), 1),
                (s(&["worker", "main", "busy"]), 2),
            ],
        );
        assert_eq!(
            p.folded,
            "worker;main;<[u8, 4] as Debug>::fmt 1\nworker;main;busy 5\n"
        );
        assert_eq!(p.samples, 6);
        assert_eq!(p.stacks_with("busy").collect::<Vec<_>>(), ["worker;main;busy 5"]);
        assert_eq!(p.stacks_with("nothing").count(), 0);
    }

    #[test]
    fn folded_text_of_other_tools_is_read_line_by_line() {
        let p = Profile::from_folded(
            "py",
            7,
            Duration::from_secs(1),
            100,
            "a;b 2\n\nnot a line\na;b 1\nc 4\n",
        );
        assert_eq!(p.folded, "a;b 3\nc 4\n");
        assert_eq!((p.pid, p.samples), (7, 7));
    }
}
