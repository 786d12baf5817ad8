//! A small simulated building, run by a host application that embeds a platform.
//!
//! ```text
//! cargo run --release --example building                  # until Ctrl-C
//! cargo run --release --example building -- --seconds 8   # exits by itself after 8 s
//! ```
//!
//! What it shows:
//!
//! - **Devices.** One [`DeviceSimulator`] agent per rooftop unit (`rtu1`..`rtu3` of building
//!   `hq` on campus `campus`) publishes a reading every 2 s on
//!   `devices/campus/hq/<unit>/all`, with a `TimeStamp` header, like a VOLTTRON driver.
//!   Its RPC `set_point(point, value)` changes the simulated unit, like VOLTTRON's actuator,
//!   and returns the previous value.
//! - **Control.** A [`ZoneController`] subscribes to `devices/campus/hq/`. When a zone is
//!   outside its setpoint ± deadband, an `async` handler calls the unit's `set_point` over
//!   RPC (with a timeout) and publishes the decision on
//!   `analysis/campus/hq/<unit>/decision`. It logs peers coming and going
//!   (`#[on_peerlist]`), publishes a summary at every minute (`#[schedule(cron)]`), and
//!   exports `setpoint(value)`.
//! - **The host.** A [`Printer`] agent prints one line per `devices/` and `analysis/`
//!   message. At 6 s the host itself calls the controller's `setpoint` RPC, then prints
//!   `platform.peers()` and `platform.query("instance-name")`. Ctrl-C or `--seconds N`
//!   shuts the platform down, and every agent's `on_stop` runs.
//! - **History.** VOLTTRON's SQLite historian (`volttron::agents::SqliteHistorian`) stores
//!   every reading under `devices/`; at the end the host queries rtu1's zone temperature.
//! - **The web.** The platform serves its status page and the controller's
//!   `#[route(GET, "/hq/zones")]` on a free loopback port, printed at start.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::SecondsFormat;
use volttron::prelude::*;
use volttron::{Clock, Map};

/// The rooftop units: identity, starting zone temperature (°C), heat gain per 2 s tick.
const UNITS: [(&str, f64, f64); 3] = [("rtu1", 22.4, 0.06), ("rtu2", 23.9, 0.12), ("rtu3", 21.8, 0.02)];

/// When the host calls the controller's RPC.
const HOST_STEP_AT: Duration = Duration::from_secs(6);

/// `[  12.3s]`: time since the platform started, to prefix every printed line.
fn stamp(clock: &Clock) -> String {
    format!("[{:>6.1}s]", clock.elapsed().as_secs_f64())
}

/// A `TimeStamp` header (UTC, ISO-8601), as VOLTTRON drivers put on device publishes.
fn timestamp(ctx: &AgentContext) -> Headers {
    let now = ctx.now().to_rfc3339_opts(SecondsFormat::Millis, true);
    Headers::from([("TimeStamp".to_owned(), Value::from(now))])
}

/// A simulated rooftop unit: a zone that warms up, an outdoor-air damper and staged cooling.
struct DeviceSimulator {
    /// Zone temperature, °C.
    zone: f64,
    /// How much the zone warms per tick with no cooling, °C.
    heat_gain: f64,
    /// Supply fan on?
    fan: bool,
    /// Outdoor-air damper position, % open (cool outdoor air is free cooling).
    damper: f64,
    /// Compressor cooling command, %.
    cooling: f64,
    /// xorshift64 state: deterministic noise without an extra crate.
    noise: u64,
}

impl DeviceSimulator {
    /// A unit starting at `zone` °C.
    fn new(zone: f64, heat_gain: f64, seed: u64) -> Self {
        DeviceSimulator {
            zone,
            heat_gain,
            fan: true,
            damper: 20.0,
            cooling: 0.0,
            noise: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// Pseudo-random in [-1, 1).
    fn jitter(&mut self) -> f64 {
        self.noise ^= self.noise << 13;
        self.noise ^= self.noise >> 7;
        self.noise ^= self.noise << 17;
        (self.noise >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

#[volttron::agent]
impl DeviceSimulator {
    /// Advances the simulation by one tick and publishes every point, like a driver scrape.
    #[periodic(secs = 2, wait = 0.5)]
    fn scrape(&mut self, ctx: &AgentContext) -> Result<(), PublishError> {
        let airflow = if self.fan { 1.0 } else { 0.0 };
        let cooling = airflow * (0.004 * self.cooling + 0.0008 * self.damper);
        self.zone += self.heat_gain - cooling + 0.03 * self.jitter();
        let supply = 18.0 - airflow * (0.06 * self.cooling + 0.01 * self.damper) + 0.2 * self.jitter();
        let all = Map::from([
            ("ZoneTemperature".to_owned(), Value::from(self.zone)),
            ("SupplyAirTemperature".to_owned(), Value::from(supply)),
            ("SupplyFanStatus".to_owned(), Value::from(self.fan)),
            ("OutdoorAirDamper".to_owned(), Value::from(self.damper)),
            ("CoolingCommand".to_owned(), Value::from(self.cooling)),
        ]);
        let topic = format!("devices/campus/hq/{}/all", ctx.identity());
        ctx.publish_with(topic, timestamp(ctx), all)?;
        Ok(())
    }

    /// Sets `damper` or `cooling` (0..=100 %) or `fan` (0 or 1); returns the previous value.
    #[rpc]
    fn set_point(&mut self, point: String, value: f64) -> Result<f64, String> {
        if !(0.0..=100.0).contains(&value) {
            return Err(format!("{point} = {value} is outside 0..=100"));
        }
        let previous = match point.as_str() {
            "damper" => std::mem::replace(&mut self.damper, value),
            "cooling" => std::mem::replace(&mut self.cooling, value),
            "fan" => f64::from(u8::from(std::mem::replace(&mut self.fan, value > 0.0))),
            _ => return Err(format!("no writable point `{point}`")),
        };
        Ok(previous)
    }

    /// Reports the final state.
    #[on_stop]
    fn stop(&mut self, ctx: &AgentContext) {
        println!(
            "{} {} stopped at {:.2}°C",
            stamp(ctx.clock()),
            ctx.identity(),
            self.zone
        );
    }
}

/// Keeps every zone within setpoint ± deadband by commanding the units over RPC.
struct ZoneController {
    /// Target zone temperature, °C.
    setpoint: f64,
    /// Tolerated distance from the setpoint, °C.
    deadband: f64,
    /// Latest zone temperature per unit.
    zones: BTreeMap<String, f64>,
    /// Commands sent so far.
    decisions: u64,
}

#[volttron::agent]
impl ZoneController {
    /// Every reading of every unit in the building. `async`: it awaits the unit's reply;
    /// readings arriving meanwhile wait their turn (one handler at a time per agent).
    #[subscribe("devices/campus/hq/")]
    async fn on_reading(&mut self, ctx: &AgentContext, msg: &Publication) -> Result<(), PublishError> {
        let (Some(unit), Some(zone)) = (msg.topic.levels().nth(3), msg.message["ZoneTemperature"].as_f64())
        else {
            return Ok(());
        };
        self.zones.insert(unit.to_owned(), zone);
        let damper = msg.message["OutdoorAirDamper"].as_f64().unwrap_or(0.0);
        let cooling = msg.message["CoolingCommand"].as_f64().unwrap_or(0.0);
        // Too warm: open the damper first (free cooling), then stage up cooling.
        // Too cool: stage cooling down, then close the damper back to its minimum.
        let (point, value) = if zone > self.setpoint + self.deadband {
            match (damper < 100.0, cooling < 100.0) {
                (true, _) => ("damper", 100.0),
                (false, true) => ("cooling", (cooling + 25.0).min(100.0)),
                (false, false) => return Ok(()),
            }
        } else if zone < self.setpoint - self.deadband {
            match (cooling > 0.0, damper > 20.0) {
                (true, _) => ("cooling", (cooling - 25.0).max(0.0)),
                (false, true) => ("damper", 20.0),
                (false, false) => return Ok(()),
            }
        } else {
            return Ok(());
        };
        let reply = ctx
            .call(unit, "set_point", (point, value))
            .timeout(Duration::from_secs(2))
            .returning::<f64>()
            .await;
        let band = format!("{zone:.2}°C vs {:.1} ± {:.1}", self.setpoint, self.deadband);
        let text = match &reply {
            Ok(previous) => format!("{band}: {point} {previous:.0}% -> {value:.0}%"),
            Err(e) => format!("{band}: {point} -> {value:.0}% failed: {e}"),
        };
        self.decisions += 1;
        let decision = Map::from([
            ("point".to_owned(), Value::from(point)),
            ("value".to_owned(), Value::from(value)),
            ("ok".to_owned(), Value::from(reply.is_ok())),
            ("text".to_owned(), Value::from(text)),
        ]);
        let topic = format!("analysis/campus/hq/{unit}/decision");
        ctx.publish_with(topic, timestamp(ctx), decision)?;
        Ok(())
    }

    /// The zones over HTTP, served by the platform's web service.
    #[route(GET, "/hq/zones")]
    fn zones(&mut self) -> serde_json::Value {
        serde_json::json!({
            "setpoint": self.setpoint,
            "deadband": self.deadband,
            "zones": self.zones,
            "decisions": self.decisions,
        })
    }

    /// Changes the setpoint (°C); returns the previous one.
    #[rpc]
    fn setpoint(&mut self, value: f64) -> Result<f64, String> {
        if !(15.0..=30.0).contains(&value) {
            return Err(format!("setpoint {value}°C is outside 15..=30"));
        }
        Ok(std::mem::replace(&mut self.setpoint, value))
    }

    /// At every minute (UTC): a summary of the building.
    #[schedule(cron = "*/1 * * * *")]
    fn summary(&mut self, ctx: &AgentContext) -> Result<(), PublishError> {
        let zones: Vec<String> = self.zones.iter().map(|(u, t)| format!("{u} {t:.2}°C")).collect();
        let text = format!(
            "setpoint {:.1}°C, commands sent: {}; {}",
            self.setpoint,
            self.decisions,
            zones.join(", ")
        );
        ctx.publish_with("analysis/campus/hq/summary", timestamp(ctx), text)?;
        Ok(())
    }

    /// Peers joining and leaving the platform.
    #[on_peerlist]
    fn peers(&mut self, ctx: &AgentContext, event: &PeerEvent) {
        let what = match event {
            PeerEvent::Added(_) => "joined",
            PeerEvent::Dropped(_) => "left",
        };
        println!("{} controller: peer {} {what}", stamp(ctx.clock()), event.peer());
    }

    /// Reports what it did.
    #[on_stop]
    fn stop(&mut self, ctx: &AgentContext) {
        println!(
            "{} controller stopped after {} commands",
            stamp(ctx.clock()),
            self.decisions
        );
    }
}

/// Prints one compact line per device reading and per analysis message.
struct Printer;

#[volttron::agent]
impl Printer {
    /// `devices/...`: the points of a reading.
    #[subscribe("devices/")]
    fn device(&mut self, ctx: &AgentContext, msg: &Publication) {
        let m = &msg.message;
        let num = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{} {:<32}  zone {:5.2}°C  supply {:4.1}°C  fan {:<3}  damper {:3.0}%  cooling {:3.0}%",
            stamp(ctx.clock()),
            // `Topic`'s `Display` ignores width; pad the `&str`.
            msg.topic.as_str(),
            num("ZoneTemperature"),
            num("SupplyAirTemperature"),
            if m["SupplyFanStatus"].as_bool() == Some(true) {
                "on"
            } else {
                "off"
            },
            num("OutdoorAirDamper"),
            num("CoolingCommand"),
        );
    }

    /// `analysis/...`: a decision's `text`, or a summary (a string).
    #[subscribe("analysis/")]
    fn analysis(&mut self, ctx: &AgentContext, msg: &Publication) {
        let text = msg.message["text"]
            .as_str()
            .or(msg.message.as_str())
            .unwrap_or("?");
        println!("{} {:<32}  {text}", stamp(ctx.clock()), msg.topic.as_str());
    }
}

/// What the host does at [`HOST_STEP_AT`]: an RPC into an agent, and two platform queries.
async fn host_step(platform: &Platform) {
    let at = stamp(platform.clock());
    match platform
        .call("controller", "setpoint", (22.0,))
        .returning::<f64>()
        .await
    {
        Ok(previous) => println!("{at} host: controller.setpoint(22.0) -> was {previous:.1}°C"),
        Err(e) => println!("{at} host: controller.setpoint(22.0) failed: {e}"),
    }
    // An out-of-range value comes back as the handler's error.
    if let Err(e) = platform.call("controller", "setpoint", (99.0,)).await {
        println!("{at} host: controller.setpoint(99.0) refused: {e}");
    }
    let peers: Vec<String> = platform.peers().iter().map(ToString::to_string).collect();
    println!("{at} host: peers = [{}]", peers.join(", "));
    let instance = platform.query("instance-name").unwrap_or_default();
    println!("{at} host: instance-name = {}", instance.as_str().unwrap_or("?"));
}

/// What the historian stored of rtu1's zone, queried as VOLTTRON's historian is.
#[cfg(feature = "historian")]
async fn print_history(platform: &Platform) {
    let historian = volttron::agents::historian::IDENTITY;
    let at = stamp(platform.clock());
    let _ = platform.call(historian, "flush", ()).await;
    match platform
        .call(historian, "query", ("campus/hq/rtu1/ZoneTemperature", "now -1h"))
        .await
    {
        Ok(answer) => {
            let values = answer["values"].as_list().unwrap_or_default();
            let last = values.last().map(|v| {
                format!(
                    "{:.2}°C at {}",
                    v[1].as_f64().unwrap_or(f64::NAN),
                    v[0].as_str().unwrap_or("?")
                )
            });
            println!(
                "{at} historian: {} readings of campus/hq/rtu1/ZoneTemperature, last {}",
                values.len(),
                last.unwrap_or_else(|| "none".into())
            );
        }
        Err(e) => println!("{at} historian: query failed: {e}"),
    }
}

/// Where the web service listens (its `platform.web` agent starts with the platform).
#[cfg(feature = "web")]
async fn print_web_address(platform: &Platform) {
    for _ in 0..200 {
        let answer = platform
            .call("platform.web", "get_bind_web_address", ())
            .returning::<String>()
            .await;
        if let Ok(address) = answer {
            println!(
                "{} status page: {address}/   the controller's route: {address}/hq/zones",
                stamp(platform.clock())
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `--seconds N` from the command line, if given.
fn seconds_arg() -> Result<Option<u64>, String> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(None),
        (Some("--seconds"), Some(n)) => n.parse().map(Some).map_err(|e| format!("--seconds {n}: {e}")),
        _ => Err("usage: building [--seconds N]".into()),
    }
}

#[volttron::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The platform reports handler errors and panics through `tracing`.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let seconds = seconds_arg()?;

    let builder = Platform::builder()
        .instance_name("hq-bms")
        .rpc_timeout(Duration::from_secs(5));
    // The web service on any free loopback port (no home, so no auth: a demo only).
    #[cfg(feature = "web")]
    let builder = builder.web(volttron::web::WebConfig::new("http://127.0.0.1:0")?);
    let platform = builder.start().await?;
    println!(
        "{} platform {} started; Ctrl-C to stop",
        stamp(platform.clock()),
        platform.instance_name()
    );
    #[cfg(feature = "web")]
    print_web_address(&platform).await;

    // Printer and controller first, so they see the units join and their first readings.
    platform.spawn("printer", Printer).await?;
    let controller = ZoneController {
        setpoint: 23.0,
        deadband: 0.5,
        zones: BTreeMap::new(),
        decisions: 0,
    };
    platform.spawn("controller", controller).await?;
    // VOLTTRON's SQLite historian stores every reading the units publish under `devices/`.
    #[cfg(feature = "historian")]
    let history = tempfile::tempdir()?;
    #[cfg(feature = "historian")]
    platform
        .spawn(
            volttron::agents::historian::IDENTITY,
            volttron::agents::SqliteHistorian::new(history.path().join("hq.sqlite")),
        )
        .await?;
    for (seed, (unit, zone, heat_gain)) in (1..).zip(UNITS) {
        platform
            .spawn(unit, DeviceSimulator::new(zone, heat_gain, seed))
            .await?;
    }

    let deadline = async {
        match seconds {
            Some(n) => tokio::time::sleep(Duration::from_secs(n)).await,
            None => std::future::pending().await,
        }
    };
    let host = async {
        tokio::time::sleep(HOST_STEP_AT).await;
        host_step(&platform).await;
        std::future::pending::<()>().await
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        () = deadline => {}
        () = host => {}
    }

    #[cfg(feature = "historian")]
    print_history(&platform).await;
    println!("{} shutting down", stamp(platform.clock()));
    platform.shutdown().await;
    Ok(())
}
