use volttron::prelude::*;

struct Monitor;

#[volttron::agent]
impl Monitor {
    #[subscrbe("devices/")]
    fn on_reading(&mut self, _msg: &Publication) {}
}

// Only the typo is reported: `Monitor` still counts as an agent here.
async fn start(platform: &Platform) {
    platform.spawn("monitor", Monitor).await.unwrap();
}

fn main() {}
