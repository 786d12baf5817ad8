//! The building data path, as agents of this crate: what every VOLTTRON deployment runs.
//!
//! | agent | identity | feature | what it does |
//! |-------|----------|---------|--------------|
//! | [`PlatformDriver`] | `platform.driver` | `driver` (+ `modbus`, `bacnet`) | scrapes devices on VOLTTRON's configuration, publishes `devices/<path>/all`, exports `get_point` / `set_point` / `scrape_all` / ... |
//! | [`SqliteHistorian`] | `platform.historian` | `historian` | stores what is published under `devices/` (and `analysis/`, `record/`, `datalogger/`) in VOLTTRON's SQLite schema, answers `query` |
//! | [`Actuator`] | `platform.actuator` | `actuator` | schedules of devices, and writes only from the holder of the current slot |
//!
//! Each reads VOLTTRON's configuration formats from its configuration store, so existing
//! configurations, scripts and user interfaces keep working. Each runs in-process
//! (`platform.spawn(IDENTITY, agent)`) or as its own process (`vctl install` of its
//! binary; see the README's "A building").

#[cfg(feature = "actuator")]
pub mod actuator;
pub mod device_path;
#[cfg(feature = "driver")]
pub mod driver;
#[cfg(feature = "historian")]
pub mod historian;
pub mod time;

#[cfg(feature = "actuator")]
pub use actuator::Actuator;

#[cfg(feature = "driver")]
pub use driver::PlatformDriver;
#[cfg(feature = "historian")]
pub use historian::SqliteHistorian;

/// The platform driver's identity (VOLTTRON's `platform.driver`).
pub const DRIVER_IDENTITY: &str = "platform.driver";
/// The actuator's identity (VOLTTRON's `platform.actuator`).
pub const ACTUATOR_IDENTITY: &str = "platform.actuator";
/// The historian's identity (VOLTTRON's `platform.historian`).
pub const HISTORIAN_IDENTITY: &str = "platform.historian";

/// Runs `agent` as its own process attached to a platform (what the `volttron-platform-driver`,
/// `volttron-sqlite-historian` and `volttron-actuator` binaries do): logs to stderr at the
/// level in `RUST_LOG` (default `info`), then [`remote::run`](crate::remote::run) with the
/// environment the platform launches agents with. Returns the process's exit code.
#[cfg(feature = "logs")]
pub fn run_process<A: crate::Agent>(name: &str, agent: A) -> std::process::ExitCode {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match crate::remote::run(agent) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
