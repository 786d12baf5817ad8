//! `volttron::metrics` embedded: the host's own registry gets the platform's series beside
//! its own; an agent's series registered through a `Metrics` clone; mailbox depth and drops
//! of a slow subscriber read at scrape time (virtual clock, no sleeps).

#![cfg(feature = "metrics")]

use std::time::Duration;

use volttron::metrics::Metrics;
use volttron::metrics::prometheus_client::metrics::counter::Counter;
use volttron::metrics::prometheus_client::metrics::family::Family;
use volttron::metrics::prometheus_client::registry::Registry;
use volttron::prelude::*;
use volttron::testing::TestPlatform;

/// Counts its commands in a series of its own, labelled with its identity.
struct Hvac {
    commands: Family<Vec<(String, String)>, Counter>,
}

#[volttron::agent]
impl Hvac {
    #[rpc]
    fn set_point(&mut self, ctx: &AgentContext, _value: f64) -> bool {
        self.commands
            .get_or_create(&vec![("identity".into(), ctx.identity().to_string())])
            .inc();
        true
    }
}

/// Busy for a virtual second per reading; drops the newest when full.
struct Slow;

#[volttron::agent]
impl Slow {
    #[subscribe("readings/", overflow = "drop_newest")]
    async fn reading(&mut self, ctx: &AgentContext, _msg: &Publication) {
        ctx.clock().sleep(Duration::from_secs(1)).await;
    }
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[volttron::test]
async fn the_hosts_registry_holds_the_platforms_series_and_the_agents_own() {
    let mut registry = Registry::default();
    let host_requests = Counter::<u64>::default();
    registry.register("bms_requests", "The host's own requests.", host_requests.clone());
    host_requests.inc_by(7);
    let metrics = Metrics::with_registry(registry);
    let commands = Family::<Vec<(String, String)>, Counter>::default();
    metrics.register(
        "hvac_commands",
        "Set-point commands the HVAC agent took.",
        commands.clone(),
    );

    let tp = TestPlatform::builder().mailbox_capacity(10).start().await;
    tp.spawn("hvac", Hvac { commands }).await.unwrap();
    tp.spawn("slow", Slow).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            tp.call("hvac", "set_point", (21.5,)).await.unwrap(),
            Value::from(true)
        );
    }
    tp.publish("readings/a", 0).unwrap();
    tp.settle().await; // inside the handler for 0
    for n in 1..=25 {
        tp.publish("readings/a", n).unwrap();
    }

    let text = metrics.encode(tp.platform()).await;
    assert_eq!(value(&text, "bms_requests_total"), Some(7.0), "{text}");
    assert_eq!(
        value(&text, "volttron_hvac_commands_total{identity=\"hvac\"}"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "volttron_agent_up{identity=\"slow\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "volttron_agent_mailbox_depth{identity=\"slow\"}"),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "volttron_agent_mailbox_capacity{identity=\"slow\"}"),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "volttron_agent_publications_dropped_total{identity=\"slow\",policy=\"drop_newest\"}"
        ),
        Some(15.0),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");

    // Drained, the depth is read again at the next scrape.
    tp.advance(Duration::from_secs(30)).await;
    let text = metrics.encode(tp.platform()).await;
    assert_eq!(
        value(&text, "volttron_agent_mailbox_depth{identity=\"slow\"}"),
        Some(0.0),
        "{text}"
    );
    // A stopped agent's series go with it.
    assert!(tp.stop_agent("hvac").await);
    let text = metrics.encode(tp.platform()).await;
    assert_eq!(
        value(&text, "volttron_agent_up{identity=\"hvac\"}"),
        None,
        "{text}"
    );
}
