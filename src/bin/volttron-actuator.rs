//! VOLTTRON's actuator as its own process: `vctl install` this binary
//! (`--vip-identity platform.actuator`). See `volttron::agents::actuator`.

fn main() -> std::process::ExitCode {
    volttron::agents::run_process("volttron-actuator", volttron::agents::Actuator::new())
}
