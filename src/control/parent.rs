//! Orphan safety: an agent process notices that the platform that launched it is gone.
//!
//! A platform launches its agents with [`ENV_PARENT_PID`] (`VOLTTRON_PARENT_PID`) set to
//! its own pid. An agent process awaits [`parent_watch`] alongside its work, and stops
//! itself when it resolves: when the platform dies, even by
//! SIGKILL, the agent is re-parented (to init or a subreaper), `getppid()` changes, and
//! the next poll sees it. The agent then stops as on SIGINT, and its exit is reaped by
//! its new parent.
//!
//! Linux's `PR_SET_PDEATHSIG` delivers a signal at once, but it has to be set in the child
//! between `fork` and `exec` (`pre_exec`, which is `unsafe`, and this crate forbids
//! `unsafe`), or later with a check that the parent has not died meanwhile. The
//! `volttron-sandbox` trampoline does the latter (`--die-with-parent`,
//! [`SandboxOptions::die_with_parent`](crate::resources::sandbox::SandboxOptions::die_with_parent)),
//! so agents in any language get SIGTERM when the platform dies. Polling `getppid()` here
//! is the safe equivalent for agents launched without the trampoline, with a delay bounded
//! by the poll interval.
//!
//! [`ParentWatch::check`] decides on each poll:
//!
//! | `getppid()` | the platform seen as parent before | the platform's pid still alive | result |
//! |---|---|---|---|
//! | the platform's pid | — | — | [`ParentStatus::Present`] |
//! | another pid (or none: a parent outside the pid namespace) | yes | — | [`ParentStatus::Gone`] |
//! | another | no | no (or a zombie) | [`ParentStatus::Gone`]: the platform died before the watch began |
//! | another | no | yes | [`ParentStatus::NotOurParent`]: the variable was inherited from an ancestor (an agent's own child process); nothing to watch |

use std::time::Duration;

pub use super::process::ENV_PARENT_PID;
use super::process::process_state;

/// The pid of the platform that launched this process ([`ENV_PARENT_PID`]), if one did.
pub fn launching_platform() -> Option<u32> {
    std::env::var(ENV_PARENT_PID)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&pid| pid > 0)
}

/// Resolves when the platform that launched this process is gone, polling every
/// `interval`; never resolves when no platform launched it (no [`ENV_PARENT_PID`]) or
/// the platform is not its parent.
pub async fn parent_watch(interval: Duration) {
    let Some(platform) = launching_platform() else {
        return std::future::pending().await;
    };
    match watch_parent(platform, interval, parent_pid, pid_alive).await {
        ParentStatus::Gone => {
            tracing::warn!(platform, "the platform that launched this agent is gone");
        }
        _ => {
            tracing::debug!(
                platform,
                "the platform that launched this agent is not its parent"
            );
            std::future::pending().await
        }
    }
}

/// [`parent_watch`] for the platform `expected`, with `getppid` and the liveness probe
/// passed in: returns [`ParentStatus::Gone`] or [`ParentStatus::NotOurParent`], checking
/// at once, then every `interval`.
pub async fn watch_parent(
    expected: u32,
    interval: Duration,
    mut getppid: impl FnMut() -> Option<u32>,
    mut alive: impl FnMut(u32) -> bool,
) -> ParentStatus {
    let mut watch = ParentWatch::new(expected);
    loop {
        match watch.check(getppid(), || alive(expected)) {
            ParentStatus::Present => tokio::time::sleep(interval).await,
            done => return done,
        }
    }
}

/// This process's parent pid (`None` when the parent is outside its pid namespace).
pub fn parent_pid() -> Option<u32> {
    rustix::process::getppid().map(|pid| pid.as_raw_pid() as u32)
}

/// Whether process `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match process_state(pid) {
        Some(state) => !matches!(state, 'Z' | 'X'),
        None if std::path::Path::new("/proc/self/stat").exists() => false,
        // No /proc: ask the kernel (a zombie counts as alive then).
        None => match rustix::process::Pid::from_raw(pid as i32) {
            Some(pid) => !matches!(
                rustix::process::test_kill_process(pid),
                Err(rustix::io::Errno::SRCH)
            ),
            None => false,
        },
    }
}

/// What a poll of the parent found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParentStatus {
    /// The platform is still the parent.
    Present,
    /// The platform is gone: stop.
    Gone,
    /// The platform is alive but not the parent: the variable was inherited, nothing to
    /// watch.
    NotOurParent,
}

/// The comparison behind [`parent_watch`]; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentWatch {
    expected: u32,
    seen: bool,
}

impl ParentWatch {
    /// Watches for the platform `expected` (its pid).
    pub fn new(expected: u32) -> Self {
        ParentWatch {
            expected,
            seen: false,
        }
    }

    /// One poll: `ppid` is `getppid()` now; `expected_alive` probes the platform's pid,
    /// asked only before the platform has been seen as the parent.
    pub fn check(&mut self, ppid: Option<u32>, expected_alive: impl FnOnce() -> bool) -> ParentStatus {
        if ppid == Some(self.expected) {
            self.seen = true;
            ParentStatus::Present
        } else if self.seen || !expected_alive() {
            ParentStatus::Gone
        } else {
            ParentStatus::NotOurParent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_its_parent_are_alive() {
        assert!(pid_alive(std::process::id()));
        assert!(pid_alive(parent_pid().expect("a parent in this namespace")));
    }

    #[test]
    fn a_parent_change_after_the_first_poll_is_gone() {
        let mut watch = ParentWatch::new(40);
        assert_eq!(watch.check(Some(40), || unreachable!()), ParentStatus::Present);
        assert_eq!(watch.check(Some(1), || true), ParentStatus::Gone);
    }
}
