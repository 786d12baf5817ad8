//! Agent processes: launch, stop, watch.
//!
//! [`AgentProcess::launch`] runs an installed agent as a child process from a
//! [`LaunchSpec`]: the caller supplies the environment the remote runtime
//! ([`crate::remote`]) reads (`AGENT_VIP_IDENTITY`, `VOLTTRON_HOME`,
//! `VOLTTRON_PLATFORM_ADDRESS`, `AGENT_CREDENTIALS`, `AGENT_CONFIG`, `AGENT_UUID`,
//! `AGENT_TAG`), and the launcher adds [`ENV_PARENT_PID`] (this process's pid) for
//! [`parent_watch`](super::parent::parent_watch).
//!
//! | event | what happens |
//! |---|---|
//! | launch | the child runs in its agent directory, in a process group of its own (its pgid is its pid), stdin from `/dev/null`, the platform's environment plus the spec's |
//! | output | every line of stdout and stderr is logged with target [`OUTPUT_TARGET`] and fields `agent` (the identity) and `stream`; stdout at `info`, stderr at `info`, or `warn` when it looks like an error (`ERROR`, `Error`, `error:`, `CRITICAL`, `FATAL`, `Traceback`, `panicked`); lines longer than 16 KiB are split. With [`LaunchSpec::json_logs`] (Python agents), a stderr line that is a JSON log record is logged at its own level instead ([`super::pylog`]) |
//! | the agent exits | whatever is left of its process group is killed (SIGKILL), then the agent is reaped, its exit logged, [`wait`](AgentProcess::wait) returns, and an [`ExitReport`] goes to the spec's channel once the output is drained (at most 2 s later) |
//! | [`stop`](AgentProcess::stop)`(grace)` | SIGINT to the group, up to `grace`; SIGTERM to the group, up to `grace`; SIGKILL to the group; the [`StopOutcome`] says how it ended and which step ended it |
//! | the handle is dropped | the agent keeps running; its watcher still reaps it and sends its report |
//! | the platform is killed | agents polling [`parent_watch`](super::parent::parent_watch) see their parent change within the poll interval and stop themselves |
//!
//! Each agent has one watcher thread, blocked in `waitid` (off the actix arbiters), and
//! one reader thread per output stream. The watcher waits for the exit without reaping
//! (`WNOWAIT`): until it reaps, under the same lock that [`stop`](AgentProcess::stop)
//! takes to send a signal, the pid and the process group id cannot be reused, so no
//! signal ever reaches an unrelated process.
//!
//! [`ProcessKey`] pairs a pid with the process's start time (field 22 of
//! `/proc/<pid>/stat`, read with procfs), so a recorded pid can be told from a later
//! process that reuses the number.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use tokio::sync::{mpsc, watch};

/// The environment variable holding the launching platform's pid.
pub const ENV_PARENT_PID: &str = "VOLTTRON_PARENT_PID";

/// The `tracing` target of agents' output lines (filter with
/// `RUST_LOG=volttron::agent_output=warn`, for one).
pub const OUTPUT_TARGET: &str = "volttron::agent_output";

/// Output lines longer than this are logged in pieces.
const MAX_LINE: usize = 16 * 1024;

/// How long an exit report waits for the rest of the agent's output.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// How an agent process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// It exited with this status code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// Its status was lost: something else reaped it (SIGCHLD set to `SIG_IGN`, say).
    Unknown,
}

impl Exit {
    /// The exit of a status from `wait`.
    pub fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Unknown,
        }
    }

    /// Exit code 0: the agent finished on its own accord (and is not restarted).
    pub fn is_clean(self) -> bool {
        self == Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(signal) => match signal_name(signal) {
                Some(name) => write!(f, "signal {signal} ({name})"),
                None => write!(f, "signal {signal}"),
            },
            Exit::Unknown => f.write_str("unknown status"),
        }
    }
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// The step of [`AgentProcess::stop`] that ended the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopStep {
    /// It had exited before the stop.
    AlreadyExited,
    /// It exited after SIGINT, within the grace period.
    Interrupt,
    /// It exited after SIGTERM, within the second grace period.
    Terminate,
    /// SIGKILL.
    Kill,
}

/// How [`AgentProcess::stop`] ended an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StopOutcome {
    /// How the process ended.
    pub exit: Exit,
    /// The last step taken before it ended.
    pub step: StopStep,
}

/// An agent process ended (sent to [`LaunchSpec::exits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitReport {
    /// The agent's identity.
    pub identity: String,
    /// The process's pid (reaped: the number may already name another process).
    pub pid: u32,
    /// The process's start time, as in [`ProcessKey::start_time`].
    pub start_time: Option<u64>,
    /// How it ended.
    pub exit: Exit,
}

/// What to run for an agent.
///
/// Its `Debug` output names the environment variables but not their values (which may
/// hold credentials).
#[derive(Clone)]
pub struct LaunchSpec {
    /// The agent's identity: the log tag of its output, and the name in reports.
    pub identity: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// The working directory (the agent's directory).
    pub working_dir: PathBuf,
    /// Environment variables added to the platform's own.
    pub env: Vec<(String, String)>,
    /// Where to send the report of the process's exit.
    pub exits: Option<mpsc::UnboundedSender<ExitReport>>,
    /// Stderr lines that are JSON log records (a Python agent's) are logged as records.
    pub json_logs: bool,
    /// A file every output line is also appended to (`<stream>: <line>`), created if
    /// missing (mode 0600).
    pub output_file: Option<PathBuf>,
}

impl LaunchSpec {
    /// Runs `program` without arguments in `working_dir`.
    pub fn new(
        identity: impl Into<String>,
        program: impl Into<PathBuf>,
        working_dir: impl Into<PathBuf>,
    ) -> Self {
        LaunchSpec {
            identity: identity.into(),
            program: program.into(),
            args: Vec::new(),
            working_dir: working_dir.into(),
            env: Vec::new(),
            exits: None,
            json_logs: false,
            output_file: None,
        }
    }

    /// Runs a command line (the executable, then its arguments); `None` if it is empty.
    pub fn from_command(
        identity: impl Into<String>,
        command: Vec<String>,
        working_dir: impl Into<PathBuf>,
    ) -> Option<Self> {
        let mut words = command.into_iter();
        let program = words.next()?;
        Some(LaunchSpec::new(identity, program, working_dir).args(words))
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Reads stderr lines that are JSON log records as records (see [`super::pylog`]).
    pub fn json_logs(mut self, on: bool) -> Self {
        self.json_logs = on;
        self
    }

    /// Also appends every output line to `path`.
    pub fn output_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.output_file = Some(path.into());
        self
    }

    /// Sends the report of the process's exit to `exits`.
    pub fn report_exits(mut self, exits: mpsc::UnboundedSender<ExitReport>) -> Self {
        self.exits = Some(exits);
        self
    }
}

impl fmt::Debug for LaunchSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchSpec")
            .field("identity", &self.identity)
            .field("program", &self.program)
            .field("args", &self.args)
            .field("working_dir", &self.working_dir)
            .field("env", &self.env.iter().map(|(key, _)| key).collect::<Vec<_>>())
            .field("exits", &self.exits.is_some())
            .field("json_logs", &self.json_logs)
            .field("output_file", &self.output_file)
            .finish()
    }
}

/// Why an agent could not be launched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The program could not be started.
    #[error("agent {identity}: cannot run {}: {source}", program.display())]
    Spawn {
        /// The agent's identity.
        identity: String,
        /// The program.
        program: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// A thread to watch the process could not be started (nothing was launched).
    #[error("agent {identity}: cannot start a watcher thread: {source}")]
    Thread {
        /// The agent's identity.
        identity: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

pub use crate::resources::monitor::ProcessKey;

/// The start time of process `pid`: clock ticks after boot, field 22 of
/// `/proc/<pid>/stat`; `None` if there is no such process (or no `/proc`).
pub fn process_start_time(pid: u32) -> Option<u64> {
    ProcessKey::of(pid).map(|k| k.start_time)
}

/// The state of process `pid`, field 3 of `/proc/<pid>/stat` (`R`, `S`, `D`, `Z`
/// for a zombie, ...); `None` if there is no such process (or no `/proc`).
pub fn process_state(pid: u32) -> Option<char> {
    let process = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
    Some(process.stat().ok()?.state)
}

/// What the watcher shares with the handle.
#[derive(Debug)]
struct Shared {
    /// Set, under this lock, when the process is reaped; signals are sent only while
    /// it is `None`, so never to a reused pid.
    reaped: Mutex<Option<Exit>>,
    /// Notified when `reaped` is set.
    cond: Condvar,
    /// The same, for async waits.
    exit_tx: watch::Sender<Option<Exit>>,
}

/// An agent running as a child process.
#[derive(Debug)]
pub struct AgentProcess {
    identity: String,
    pid: Pid,
    start_time: Option<u64>,
    shared: Arc<Shared>,
}

/// The watcher's part, handed over once the child runs.
struct Watched {
    child: Child,
    start_time: Option<u64>,
}

impl AgentProcess {
    /// Starts the agent, its watcher thread and its output readers.
    pub fn launch(spec: &LaunchSpec) -> Result<AgentProcess, LaunchError> {
        let identity = spec.identity.clone();
        let thread_error = |source| LaunchError::Thread {
            identity: identity.clone(),
            source,
        };
        let tag: String = identity.chars().filter(|&c| c != '\0').collect();

        // The threads start first, waiting for their parts: if one cannot start, no
        // process has been launched yet.
        let (done_tx, done_rx) = std_mpsc::channel::<()>();
        let mut readers = Vec::new();
        let copy = match &spec.output_file {
            Some(path) => {
                use std::os::unix::fs::OpenOptionsExt;
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| LaunchError::Spawn {
                        identity: spec.identity.clone(),
                        program: spec.program.clone(),
                        source: io::Error::new(e.kind(), format!("its output file {}: {e}", path.display())),
                    })?;
                Some(Arc::new(Mutex::new(file)))
            }
            None => None,
        };
        for stream in ["stdout", "stderr"] {
            let (tx, rx) = std_mpsc::channel::<Box<dyn Read + Send>>();
            let (tag, done) = (tag.clone(), done_tx.clone());
            let records = spec.json_logs && stream == "stderr";
            let copy = copy.clone();
            std::thread::Builder::new()
                .name(format!("agent-{stream}:{tag}"))
                .spawn(move || {
                    if let Ok(source) = rx.recv() {
                        pump(source, |line| {
                            if let Some(file) = &copy {
                                use std::io::Write;
                                let _ = writeln!(file.lock(), "{stream}: {line}");
                            }
                            if records {
                                super::pylog::log_stderr_line(&tag, line, |l| log_line(&tag, stream, l));
                            } else {
                                log_line(&tag, stream, line);
                            }
                        });
                        let _ = done.send(());
                    }
                })
                .map_err(thread_error)?;
            readers.push(tx);
        }
        drop(done_tx);

        let (exit_tx, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            reaped: Mutex::new(None),
            cond: Condvar::new(),
            exit_tx,
        });
        let (watched_tx, watched_rx) = std_mpsc::channel::<Watched>();
        {
            let (shared, tag, exits) = (shared.clone(), tag.clone(), spec.exits.clone());
            std::thread::Builder::new()
                .name(format!("agent-watch:{tag}"))
                .spawn(move || {
                    if let Ok(watched) = watched_rx.recv() {
                        watch_child(watched, &tag, &shared, &done_rx, 2, exits);
                    }
                })
                .map_err(thread_error)?;
        }

        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .current_dir(&spec.working_dir)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env(ENV_PARENT_PID, std::process::id().to_string())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| LaunchError::Spawn {
            identity: identity.clone(),
            program: spec.program.clone(),
            source,
        })?;
        let pid = Pid::from_child(&child);
        // Not reaped before the watcher has it, so this is the child's own entry.
        let start_time = process_start_time(child.id());
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for (tx, stream) in readers.iter().zip(streams) {
            if let Some(stream) = stream {
                let _ = tx.send(stream);
            }
        }
        tracing::info!(agent = %identity, pid = child.id(), program = %spec.program.display(), "agent process started");
        // The watcher thread is running and waiting: it cannot have gone.
        if let Err(std_mpsc::SendError(mut watched)) = watched_tx.send(Watched { child, start_time }) {
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            let _ = watched.child.wait();
            return Err(thread_error(io::Error::other("the watcher thread ended")));
        }
        Ok(AgentProcess {
            identity,
            pid,
            start_time,
            shared,
        })
    }

    /// The agent's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The process's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw_pid() as u32
    }

    /// The process's start time (field 22 of `/proc/<pid>/stat`), if `/proc` is there.
    pub fn start_time(&self) -> Option<u64> {
        self.start_time
    }

    /// The pid and start time together.
    pub fn process_key(&self) -> Option<ProcessKey> {
        Some(ProcessKey {
            pid: self.pid(),
            start_time: self.start_time?,
        })
    }

    /// How the process ended, if it has (and has been reaped).
    pub fn try_exit(&self) -> Option<Exit> {
        *self.shared.reaped.lock()
    }

    /// Waits until the process ends.
    pub async fn wait(&self) -> Exit {
        let mut rx = self.shared.exit_tx.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(exit) => exit.unwrap_or(Exit::Unknown),
            // The sender lives in `shared`, as long as `self`.
            Err(_) => Exit::Unknown,
        }
    }

    /// Waits (blocking the thread) up to `timeout` for the process to end.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Exit> {
        let mut reaped = self.shared.reaped.lock();
        self.shared
            .cond
            .wait_while_for(&mut reaped, |r| r.is_none(), timeout);
        *reaped
    }

    /// Stops the agent: SIGINT to its process group, up to `grace` for it to exit,
    /// SIGTERM, up to `grace` again, then SIGKILL; returns once it is reaped.
    pub async fn stop(&self, grace: Duration) -> StopOutcome {
        self.escalate(
            &[
                (StopStep::Interrupt, Signal::INT),
                (StopStep::Terminate, Signal::TERM),
            ],
            grace,
        )
        .await
    }

    /// Terminates the agent (what the enforcer does to an agent over its contract):
    /// SIGTERM to its process group, up to `grace` for it to exit, then SIGKILL; returns
    /// once it is reaped.
    pub async fn terminate(&self, grace: Duration) -> StopOutcome {
        self.escalate(&[(StopStep::Terminate, Signal::TERM)], grace).await
    }

    /// Sends each signal in turn, waiting up to `grace` after each, then SIGKILL.
    async fn escalate(&self, steps: &[(StopStep, Signal)], grace: Duration) -> StopOutcome {
        let mut step = StopStep::AlreadyExited;
        for &(next, signal) in steps {
            if let Some(exit) = self.signal_unless_reaped(signal) {
                return StopOutcome { exit, step };
            }
            step = next;
            if let Ok(exit) = tokio::time::timeout(grace, self.wait()).await {
                return StopOutcome { exit, step };
            }
        }
        if let Some(exit) = self.signal_unless_reaped(Signal::KILL) {
            return StopOutcome { exit, step };
        }
        StopOutcome {
            exit: self.wait().await,
            step: StopStep::Kill,
        }
    }

    /// [`stop`](Self::stop), blocking the thread (for shutdown paths without a runtime).
    pub fn stop_blocking(&self, grace: Duration) -> StopOutcome {
        let mut reaped = self.shared.reaped.lock();
        let mut step = StopStep::AlreadyExited;
        for (next, signal) in [
            (StopStep::Interrupt, Signal::INT),
            (StopStep::Terminate, Signal::TERM),
            (StopStep::Kill, Signal::KILL),
        ] {
            if let Some(exit) = *reaped {
                return StopOutcome { exit, step };
            }
            self.send(signal);
            step = next;
            if next == StopStep::Kill {
                self.shared.cond.wait_while(&mut reaped, |r| r.is_none());
            } else {
                self.shared
                    .cond
                    .wait_while_for(&mut reaped, |r| r.is_none(), grace);
            }
        }
        StopOutcome {
            exit: reaped.unwrap_or(Exit::Unknown),
            step,
        }
    }

    /// Sends `signal` to the process group unless the process has been reaped (then
    /// its exit).
    fn signal_unless_reaped(&self, signal: Signal) -> Option<Exit> {
        let reaped = self.shared.reaped.lock();
        if reaped.is_none() {
            self.send(signal);
        }
        *reaped
    }

    /// Sends `signal` to the process group; the caller holds `reaped`, unset.
    fn send(&self, signal: Signal) {
        tracing::debug!(agent = %self.identity, pid = self.pid(), signal = signal.as_raw(), "signalling the agent's process group");
        if let Err(e) = rustix::process::kill_process_group(self.pid, signal) {
            tracing::debug!(agent = %self.identity, pid = self.pid(), error = %e, "cannot signal the agent's process group");
        }
    }
}

/// The watcher thread: waits for the exit, clears the group, reaps, reports.
fn watch_child(
    watched: Watched,
    identity: &str,
    shared: &Shared,
    done: &std_mpsc::Receiver<()>,
    readers: usize,
    exits: Option<mpsc::UnboundedSender<ExitReport>>,
) {
    let Watched {
        mut child,
        start_time,
    } = watched;
    let pid = Pid::from_child(&child);
    // Wait without reaping: until the reap below, the pid and the group id stay ours.
    let exited = loop {
        match rustix::process::waitid(WaitId::Pid(pid), WaitIdOptions::EXITED | WaitIdOptions::NOWAIT) {
            Ok(_) => break true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::warn!(agent = %identity, pid = child.id(), error = %e, "cannot wait for the agent process");
                break false;
            }
        }
    };
    let exit = {
        let mut reaped = shared.reaped.lock();
        if exited {
            // Nothing of the agent outlives it: helpers it left in its group go too.
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        }
        let exit = match child.wait() {
            Ok(status) => Exit::from_status(status),
            Err(_) => Exit::Unknown,
        };
        *reaped = Some(exit);
        shared.cond.notify_all();
        exit
    };
    shared.exit_tx.send_replace(Some(exit));

    let deadline = Instant::now() + DRAIN_LIMIT;
    for _ in 0..readers {
        if done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_err()
        {
            break;
        }
    }
    if exit.is_clean() {
        tracing::info!(agent = %identity, pid = child.id(), %exit, "agent process exited");
    } else {
        tracing::warn!(agent = %identity, pid = child.id(), %exit, "agent process exited");
    }
    if let Some(exits) = exits {
        let _ = exits.send(ExitReport {
            identity: identity.to_owned(),
            pid: child.id(),
            start_time,
            exit,
        });
    }
}

/// Reads `source` to its end, calling `line` with each line (without its line end;
/// invalid UTF-8 replaced; longer than [`MAX_LINE`] in pieces).
fn pump(source: impl Read, mut line: impl FnMut(&str)) {
    let mut reader = BufReader::new(source);
    let mut buf = Vec::new();
    let mut emit = |buf: &mut Vec<u8>| {
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        line(&String::from_utf8_lossy(buf));
        buf.clear();
    };
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let room = MAX_LINE - buf.len();
        let (take, complete) = match chunk.iter().position(|&b| b == b'\n') {
            Some(end) if end <= room => (end + 1, true),
            _ => (chunk.len().min(room), chunk.len() >= room),
        };
        buf.extend_from_slice(&chunk[..take]);
        reader.consume(take);
        if complete {
            emit(&mut buf);
        }
    }
    if !buf.is_empty() {
        emit(&mut buf);
    }
}

/// Logs one line of an agent's output.
fn log_line(identity: &str, stream: &'static str, line: &str) {
    const ERROR_MARKS: [&str; 7] = [
        "ERROR",
        "Error",
        "error:",
        "CRITICAL",
        "FATAL",
        "Traceback",
        "panicked",
    ];
    if stream == "stderr" && ERROR_MARKS.iter().any(|mark| line.contains(mark)) {
        tracing::warn!(target: OUTPUT_TARGET, agent = %identity, stream, "{line}");
    } else {
        tracing::info!(target: OUTPUT_TARGET, agent = %identity, stream, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_start_time() {
        let me = ProcessKey::of(std::process::id()).expect("/proc is mounted");
        assert!(me.is_running());
        assert!(
            !ProcessKey {
                start_time: me.start_time + 1,
                ..me
            }
            .is_running()
        );
    }

    #[test]
    fn exits_from_wait_statuses() {
        assert_eq!(Exit::from_status(ExitStatus::from_raw(3 << 8)), Exit::Code(3));
        assert_eq!(Exit::from_status(ExitStatus::from_raw(9)), Exit::Signal(9));
        assert!(Exit::Code(0).is_clean());
        assert!(!Exit::Code(1).is_clean() && !Exit::Signal(15).is_clean() && !Exit::Unknown.is_clean());
        assert_eq!(Exit::Signal(15).to_string(), "signal 15 (SIGTERM)");
        assert_eq!(Exit::Code(2).to_string(), "exit code 2");
    }

    #[test]
    fn output_is_split_into_lines() {
        let long = "x".repeat(MAX_LINE + 10);
        let input = format!("one\r\ntwo\n\n{long}\nlast");
        let mut lines = Vec::new();
        pump(input.as_bytes(), |l| lines.push(l.to_owned()));
        assert_eq!(lines.len(), 6);
        assert_eq!(&lines[..3], ["one", "two", ""]);
        assert_eq!(lines[3].len(), MAX_LINE);
        assert_eq!(lines[4], "x".repeat(10));
        assert_eq!(lines[5], "last");
        let mut lines = Vec::new();
        pump(&b"bad \xff byte\n"[..], |l| lines.push(l.to_owned()));
        assert_eq!(lines, ["bad \u{fffd} byte"]);
    }
}
