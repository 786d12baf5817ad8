use volttron::prelude::*;

struct Monitor;

#[volttron::agent]
impl Monitor {
    #[subscribe("devices/#/all")]
    fn on_all(&mut self, _msg: &Publication) {}
}

fn main() {}
