//! Every handler attribute, sync and async, on one agent that a `#[volttron::main]` runs.

use std::time::Duration;
use volttron::prelude::*;

#[derive(Default)]
struct Everything {
    readings: u32,
}

#[volttron::agent]
impl Everything {
    #[on_setup]
    fn setup(&mut self, _ctx: &AgentContext) {}

    #[on_start]
    async fn start(&mut self, ctx: &AgentContext) {
        ctx.publish("everything/status", "online").unwrap();
    }

    #[on_stop]
    fn stop(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Other attributes on a handler are kept.
    #[allow(clippy::needless_pass_by_ref_mut)]
    #[subscribe("devices/")]
    #[subscribe("campus/+/alarm/#", bus = "alarms")]
    fn on_reading(&mut self, msg: &Publication) {
        let _ = &msg.topic;
        self.readings += 1;
    }

    /// How many readings so far.
    #[rpc]
    fn count(&mut self) -> u32 {
        self.readings
    }

    #[rpc(name = "add")]
    async fn add_numbers(&mut self, _ctx: &AgentContext, a: i64, b: Option<i64>) -> Result<i64, String> {
        Ok(a + b.unwrap_or(0))
    }

    #[periodic(secs = 0.5, wait = 1)]
    fn tick(&mut self, _ctx: &AgentContext) {}

    #[schedule(cron = "*/5 * * * *")]
    async fn every_five_minutes(&mut self) {}

    #[on_peerlist]
    fn peers(&mut self, _ctx: &AgentContext, _event: &PeerEvent) {}
}

#[volttron::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let platform = Platform::builder().rpc_timeout(Duration::from_secs(5)).start().await?;
    platform.spawn("everything", Everything::default()).await?;
    let sum: i64 = platform.call("everything", "add", (2, 3)).returning().await?;
    assert_eq!(sum, 5);
    platform.shutdown().await;
    Ok(())
}
