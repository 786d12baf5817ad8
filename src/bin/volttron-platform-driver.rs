//! VOLTTRON's platform driver as its own process: `vctl install` this binary
//! (`--vip-identity platform.driver`), store the driver's configuration in its
//! configuration store as for VOLTTRON's, and start it. See `volttron::agents::driver`.

fn main() -> std::process::ExitCode {
    volttron::agents::run_process(
        "volttron-platform-driver",
        volttron::agents::PlatformDriver::new(),
    )
}
