//! Plain MQTT for other systems (a SCADA, a cloud service): rules that map bus topics to
//! MQTT topics and back on the federation's connection, with the message as the JSON
//! payload, so they read device data and write commands without a VOLTTRON agent.
//!
//! | rule | written as | does |
//! |------|------------|------|
//! | [`ExportRule`] | `mqtt-export = devices/ -> bms/devices qos=1 retain=true` | a publication on `devices/campus/ahu1` goes to `bms/devices/campus/ahu1`, payload the message's JSON |
//! | [`ImportRule`] | `mqtt-import = scada/commands/# -> commands/scada qos=1` | an MQTT message on `scada/commands/ahu1/sp` is published on the bus at `commands/scada/ahu1/sp`; a JSON payload becomes its value, other UTF-8 text a string |
//!
//! With `payload=raw` a rule carries bytes as they are instead: an export sends a bytes
//! message (protobuf, say) as the payload, an import publishes the payload as bytes
//! (`mqtt-export = /lifecycle/dots-so/ -> /lifecycle/dots-so payload=raw`: a simulation's
//! lifecycle messages for calculation services with a plain MQTT client).
//!
//! A publication the import made is never exported again (no loops); MQTT topics of
//! imports may not lie under the federation's own `volttron/`.

use rumqttc::v5::mqttbytes::QoS;

use crate::core::{Value, json};
use crate::mqtt::config::{FederationConfigError, bad};

/// A bus prefix published to plain MQTT. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRule {
    /// The VOLTTRON prefix on the bus.
    pub prefix: String,
    /// The MQTT topic the rest of the bus topic is appended to.
    pub mqtt_base: String,
    /// 0 or 1.
    pub qos: u8,
    /// Published retained (the broker keeps the last value per topic).
    pub retain: bool,
    /// How the message becomes the payload.
    pub payload: Payload,
}

/// How a rule turns messages into MQTT payloads and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Payload {
    /// The message's JSON; a payload that is JSON, else UTF-8 text (`payload=json`, the default).
    #[default]
    Json,
    /// Bytes as they are: a bytes message is the payload, a payload a bytes message
    /// (`payload=raw`); an export of another message sends its JSON.
    Raw,
}

/// A plain MQTT filter published on the bus. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRule {
    /// The MQTT filter (`+`/`#` allowed).
    pub filter: String,
    /// The bus prefix the MQTT topic's levels below the filter's fixed ones go under.
    pub prefix: String,
    /// 0 or 1.
    pub qos: u8,
    /// How the payload becomes the message.
    pub payload: Payload,
}

fn options(key: &str, item: &str, words: &[&str]) -> Result<(u8, bool, Payload), FederationConfigError> {
    let (mut qos, mut retain, mut payload) = (0, false, Payload::Json);
    for w in words {
        match w.split_once('=') {
            Some(("qos", v @ ("0" | "1"))) => qos = v.parse().unwrap_or(0),
            Some(("retain", "true")) => retain = true,
            Some(("retain", "false")) => retain = false,
            Some(("payload", "json")) => payload = Payload::Json,
            Some(("payload", "raw")) => payload = Payload::Raw,
            _ => {
                return Err(bad(
                    key,
                    item,
                    format!("unknown option {w:?}: expected qos=0|1, retain=true|false, payload=json|raw"),
                ));
            }
        }
    }
    Ok((qos, retain, payload))
}

fn arrow<'a>(key: &str, item: &'a str) -> Result<(&'a str, &'a str, Vec<&'a str>), FederationConfigError> {
    let (from, rest) = item
        .split_once("->")
        .ok_or_else(|| bad(key, item, "expected FROM -> TO [qos=N] [retain=B]"))?;
    let mut words = rest.split_whitespace();
    let to = words.next().ok_or_else(|| bad(key, item, "nothing after ->"))?;
    Ok((from.trim(), to, words.collect()))
}

impl std::str::FromStr for ExportRule {
    type Err = FederationConfigError;

    fn from_str(item: &str) -> Result<Self, Self::Err> {
        let (prefix, base, words) = arrow("mqtt-export", item)?;
        let (qos, retain, payload) = options("mqtt-export", item, &words)?;
        if prefix.contains(['+', '#']) || base.contains(['+', '#']) || base.is_empty() {
            return Err(bad(
                "mqtt-export",
                item,
                "a bus prefix and an MQTT topic, without wildcards",
            ));
        }
        if base.starts_with(crate::mqtt::topics::ROOT) {
            return Err(bad(
                "mqtt-export",
                item,
                "volttron/ is the federation's own topic tree",
            ));
        }
        Ok(ExportRule {
            prefix: prefix.to_owned(),
            mqtt_base: base.trim_end_matches('/').to_owned(),
            qos,
            retain,
            payload,
        })
    }
}

impl std::str::FromStr for ImportRule {
    type Err = FederationConfigError;

    fn from_str(item: &str) -> Result<Self, Self::Err> {
        let (filter, prefix, words) = arrow("mqtt-import", item)?;
        let (qos, retain, payload) = options("mqtt-import", item, &words)?;
        if retain {
            return Err(bad("mqtt-import", item, "retain is for exports"));
        }
        crate::core::topic::classify_subscription(filter)
            .map_err(|e| bad("mqtt-import", item, e.to_string()))?;
        if filter.is_empty() || filter.starts_with(crate::mqtt::topics::ROOT) || filter.starts_with('#') {
            return Err(bad(
                "mqtt-import",
                item,
                "the filter must name a topic tree other than volttron/",
            ));
        }
        if prefix.contains(['+', '#']) {
            return Err(bad("mqtt-import", item, "the bus prefix cannot have wildcards"));
        }
        Ok(ImportRule {
            filter: filter.to_owned(),
            prefix: prefix.trim_end_matches('/').to_owned(),
            qos,
            payload,
        })
    }
}

pub(crate) fn qos(q: u8) -> QoS {
    if q == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce }
}

impl ExportRule {
    /// The MQTT topic of bus topic `topic`, if this rule exports it.
    pub(crate) fn mqtt_topic(&self, topic: &str) -> Option<String> {
        let rest = topic.strip_prefix(self.prefix.as_str())?;
        let rest = rest.trim_start_matches('/');
        Some(if rest.is_empty() {
            self.mqtt_base.clone()
        } else {
            format!("{}/{rest}", self.mqtt_base)
        })
    }

    /// The payload of a message: its JSON, or its bytes with `payload=raw`.
    pub(crate) fn payload_of(&self, message: &Value) -> Vec<u8> {
        match (self.payload, message) {
            (Payload::Raw, Value::Bytes(b)) => b.clone(),
            _ => json::to_vec(message),
        }
    }
}

impl ImportRule {
    /// The bus topic of MQTT topic `topic`, if it matches this rule's filter.
    pub(crate) fn bus_topic(&self, topic: &str) -> Option<String> {
        if !crate::core::topic::pattern_matches(&self.filter, topic) {
            return None;
        }
        let fixed = self
            .filter
            .split('/')
            .take_while(|l| *l != "+" && *l != "#")
            .count();
        let rest: Vec<&str> = topic.split('/').skip(fixed).collect();
        Some(if rest.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}/{}", self.prefix, rest.join("/"))
        })
    }

    /// The bus value of an MQTT payload: its JSON, else its UTF-8 text; `None` for
    /// other bytes. With `payload=raw`, the bytes.
    pub(crate) fn value_of(&self, payload: &[u8]) -> Option<Value> {
        match self.payload {
            Payload::Raw => Some(Value::Bytes(payload.to_vec())),
            Payload::Json => json::parse(payload)
                .ok()
                .or_else(|| std::str::from_utf8(payload).ok().map(Value::from)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_map() {
        let e: ExportRule = "devices/ -> bms/devices qos=1 retain=true".parse().unwrap();
        assert_eq!((e.qos, e.retain), (1, true));
        assert_eq!(
            e.mqtt_topic("devices/campus/ahu1").as_deref(),
            Some("bms/devices/campus/ahu1")
        );
        assert_eq!(e.mqtt_topic("alerts/x"), None);
        let i: ImportRule = "scada/commands/# -> commands/scada qos=1".parse().unwrap();
        assert_eq!(
            i.bus_topic("scada/commands/ahu1/sp").as_deref(),
            Some("commands/scada/ahu1/sp")
        );
        assert_eq!(i.bus_topic("scada/other"), None);
        assert_eq!(i.value_of(b"21.5"), Some(Value::from(21.5)));
        assert_eq!(i.value_of(b"on"), Some(Value::from("on")));
        assert_eq!(i.value_of(&[0xff, 0xfe]), None);
        let raw: ImportRule = "/data/# -> /data payload=raw".parse().unwrap();
        assert_eq!(
            raw.bus_topic("/data/pv/model/s/pv1/power").as_deref(),
            Some("/data/pv/model/s/pv1/power")
        );
        assert_eq!(raw.value_of(&[0xff, 0xfe]), Some(Value::Bytes(vec![0xff, 0xfe])));
        let out: ExportRule = "/lifecycle/dots-so/ -> /lifecycle/dots-so payload=raw"
            .parse()
            .unwrap();
        assert_eq!(
            out.mqtt_topic("/lifecycle/dots-so/model/s/m/NewStep").as_deref(),
            Some("/lifecycle/dots-so/model/s/m/NewStep")
        );
        assert_eq!(out.payload_of(&Value::Bytes(vec![8, 1])), vec![8, 1]);
        assert_eq!(e.payload_of(&Value::Bytes(vec![8, 1])), b"[8,1]".to_vec());
        assert!("x/ -> y payload=xml".parse::<ExportRule>().is_err());
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "devices/",
            "devices/ ->",
            "devices/# -> x",
            "devices/ -> volttron/x",
            "devices/ -> x qos=2",
            "devices/ -> x color=red",
        ] {
            assert!(bad.parse::<ExportRule>().is_err(), "{bad}");
        }
        for bad in [
            "# -> x",
            "volttron/# -> x",
            "a/#/b -> x",
            "a/# -> x/+",
            "a/# -> x retain=true",
        ] {
            assert!(bad.parse::<ImportRule>().is_err(), "{bad}");
        }
    }
}
