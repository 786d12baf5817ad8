use volttron::prelude::*;

struct Monitor;

#[volttron::agent]
impl Monitor {
    #[subscribe("devices/")]
    fn on_reading(&mut self, _ctx: &AgentContext) {}

    #[periodic(secs = 5)]
    fn poll(&mut self, _ctx: &AgentContext, _interval: u64) {}

    #[on_start]
    fn start(_ctx: &AgentContext) {}
}

fn main() {}
