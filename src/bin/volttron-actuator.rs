//! VOLTTRON's actuator as its own process: `vctl install` this binary
//! (`--vip-identity platform.actuator`). See `volttron::agents::actuator`.

fn main() -> std::process::ExitCode {
    volttron::agents::run_process("volttron-actuator", volttron::agents::Actuator::new())
}

/// The building data path allocates per point: with mimalloc the in-process site sustains
/// 200–212 k points/s against glibc's malloc's 159–185 k (README, Performance).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
