//! `volttron-sandbox`: runs an agent program confined, as
//! [`volttron::resources::sandbox`] describes.
//!
//! ```text
//! volttron-sandbox [--cgroup FILE]... [--uid N] [--gid N] [--read-only-except DIR] [--die-with-parent PID] [--] PROGRAM [ARGS...]
//! ```
//!
//! It confines itself ([`enter`]: first joins each `--cgroup` (writes `0` to that
//! `cgroup.procs` file), then empty capability sets and bounding set, no-new-privs,
//! optionally the uid and gid, optionally a SIGTERM when the platform dies, optionally
//! Landlock) and then `exec`s the program, which
//! keeps its pid, process group, environment, working directory and file descriptors.
//! Best-effort steps that fell short print a warning line on stderr. Before the `exec`,
//! a program the (new) user may not reach is refused, naming the directory it may not
//! traverse ([`check_executable`]). Any failure prints one line on stderr and exits 126;
//! bad arguments exit 2 with the usage.
//!
//! Deliberately tiny (no clap, no tracing, no runtime): it runs once per agent launch,
//! single-threaded, which is what makes its set-up safe between the platform's `fork` and
//! the agent's `exec`.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};

use volttron::resources::sandbox::{
    EXIT_CANNOT_EXECUTE, EXIT_USAGE, USAGE, check_executable, enter, parse_args,
};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let invocation = match parse_args(args) {
        Ok(invocation) => invocation,
        Err(message) => {
            eprintln!("volttron-sandbox: {message}\n{USAGE}");
            return exit(EXIT_USAGE);
        }
    };
    match enter(&invocation.options) {
        Ok(entered) => {
            for line in entered.warnings(&invocation.options) {
                eprintln!("volttron-sandbox: warning: {line}");
            }
        }
        Err(error) => {
            eprintln!("volttron-sandbox: {error}");
            return exit(EXIT_CANNOT_EXECUTE);
        }
    }
    // As the user the program runs as: a directory on its path it may not traverse is
    // named, rather than exec's bare "Permission denied".
    if let Err(unreachable) = check_executable(Path::new(&invocation.program)) {
        eprintln!("volttron-sandbox: cannot execute {unreachable}");
        return exit(EXIT_CANNOT_EXECUTE);
    }
    let error = Command::new(&invocation.program).args(&invocation.args).exec();
    eprintln!(
        "volttron-sandbox: cannot execute {}: {error}",
        invocation.program.to_string_lossy()
    );
    exit(EXIT_CANNOT_EXECUTE)
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
