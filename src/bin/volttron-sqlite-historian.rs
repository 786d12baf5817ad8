//! VOLTTRON's SQLite historian as its own process: `vctl install` this binary
//! (`--vip-identity platform.historian`); its `config` in the configuration store as for
//! VOLTTRON's (`{"connection": {"type": "sqlite", "params": {"database": "history.sqlite"}}}`;
//! a relative path is in the agent's data directory). See `volttron::agents::historian`.

fn main() -> std::process::ExitCode {
    volttron::agents::run_process(
        "volttron-sqlite-historian",
        volttron::agents::SqliteHistorian::from_config_store(),
    )
}

/// The building data path allocates per point: with mimalloc the in-process site sustains
/// 200–212 k points/s against glibc's malloc's 159–185 k (README, Performance).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
