use volttron::prelude::*;

struct Loader;

#[volttron::agent]
impl Loader {
    #[on_setup]
    async fn setup(&mut self, _ctx: &AgentContext) {}
}

fn main() {}
