//! VOLTTRON's platform driver as its own process: `vctl install` this binary
//! (`--vip-identity platform.driver`), store the driver's configuration in its
//! configuration store as for VOLTTRON's, and start it. See `volttron::agents::driver`.

fn main() -> std::process::ExitCode {
    volttron::agents::run_process(
        "volttron-platform-driver",
        volttron::agents::PlatformDriver::new(),
    )
}

/// The building data path allocates per point: mimalloc sustains about a fifth more than
/// glibc's malloc (README, Performance).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
