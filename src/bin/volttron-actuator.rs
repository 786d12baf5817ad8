//! VOLTTRON's actuator as its own process: `vctl install` this binary
//! (`--vip-identity platform.actuator`). See `volttron::agents::actuator`.

fn main() -> std::process::ExitCode {
    volttron::agents::run_process("volttron-actuator", volttron::agents::Actuator::new())
}

/// The building data path allocates per point: mimalloc sustains about a fifth more than
/// glibc's malloc (README, Performance).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
