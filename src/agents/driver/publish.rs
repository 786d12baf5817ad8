//! What a scrape publishes, as VOLTTRON's platform driver publishes it.
//!
//! | setting | topic | message |
//! |---------|-------|---------|
//! | `publish_depth_first_all` | `devices/<campus>/<building>/<unit>/all` | `[{point: value, ..}, {point: {units, type, tz}, ..}]` |
//! | `publish_breadth_first_all` | `devices/all/<unit>/<building>/<campus>` | same |
//! | `publish_depth_first` | `devices/<campus>/<building>/<unit>/<point>` | `[value, {units, type, tz}]` |
//! | `publish_breadth_first` | `devices/<point>/<unit>/<building>/<campus>` | same |
//!
//! Headers: `Date` and `TimeStamp` (when the values were read) and `SynchronizedTimeStamp`
//! (the interval boundary the scrape belongs to, the same for every device of that round),
//! as `2024-06-01T12:00:00.000000+00:00`.
//!
//! A change the device reports on its own (BACnet COV) is published as VOLTTRON's
//! `publish_cov_value` does: the same topics, the `all` messages holding that point alone,
//! headers `Date` and `TimeStamp` only ([`DevicePublisher::change_messages`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config_store::format_timestamp;

use crate::core::{Headers, Map, Value};

use super::config::PublishSettings;
use super::interface::PointMeta;

/// Topics and metadata of one device, computed once.
#[derive(Debug, Clone)]
pub struct DevicePublisher {
    settings: PublishSettings,
    all_depth: String,
    all_breadth: String,
    /// Per point, in registry order: (name, depth topic, breadth topic, metadata).
    points: Vec<(String, String, String, Value)>,
    /// The metadata half of the `all` message.
    all_meta: Value,
}

impl DevicePublisher {
    /// The publisher of device `path` with these points.
    pub fn new(
        path: &str,
        points: &[PointMeta],
        timezone: &str,
        settings: PublishSettings,
    ) -> DevicePublisher {
        let reversed: Vec<&str> = path.rsplit('/').collect();
        let reversed = reversed.join("/");
        let mut all_meta = Map::new();
        let points = points
            .iter()
            .map(|p| {
                let meta = Value::Map(Map::from([
                    ("units".to_owned(), Value::from(p.units.as_str())),
                    ("type".to_owned(), Value::from(p.kind.as_str())),
                    ("tz".to_owned(), Value::from(timezone)),
                ]));
                all_meta.insert(p.name.clone(), meta.clone());
                (
                    p.name.clone(),
                    format!("devices/{path}/{}", p.name),
                    format!("devices/{}/{reversed}", p.name),
                    meta,
                )
            })
            .collect();
        DevicePublisher {
            settings,
            all_depth: format!("devices/{path}/all"),
            all_breadth: format!("devices/all/{reversed}"),
            points,
            all_meta: Value::Map(all_meta),
        }
    }

    /// The headers of a scrape read at `read_at` for the round starting at `round`.
    pub fn headers(read_at: DateTime<Utc>, round: DateTime<Utc>) -> Headers {
        let now = Value::from(format_timestamp(&read_at));
        Headers::from([
            ("Date".to_owned(), now.clone()),
            ("TimeStamp".to_owned(), now),
            (
                "SynchronizedTimeStamp".to_owned(),
                Value::from(format_timestamp(&round)),
            ),
        ])
    }

    /// The headers of a change the device reported at `at`.
    pub fn change_headers(at: DateTime<Utc>) -> Headers {
        let now = Value::from(format_timestamp(&at));
        Headers::from([("Date".to_owned(), now.clone()), ("TimeStamp".to_owned(), now)])
    }

    /// Every (topic, message) a change of `point` to `value` publishes; none for a point
    /// the device does not have.
    pub fn change_messages(&self, point: &str, value: Value) -> Vec<(&str, Value)> {
        let Some(meta) = self.points.iter().find(|p| p.0 == point).map(|p| p.3.clone()) else {
            return Vec::new();
        };
        let all_meta = Value::Map(Map::from([(point.to_owned(), meta)]));
        self.publish(BTreeMap::from([(point.to_owned(), value)]), all_meta)
    }

    /// Every (topic, message) a scrape with these values publishes.
    pub fn messages(&self, values: BTreeMap<String, Value>) -> Vec<(&str, Value)> {
        self.publish(values, self.all_meta.clone())
    }

    fn publish(&self, values: BTreeMap<String, Value>, all_meta: Value) -> Vec<(&str, Value)> {
        let s = self.settings;
        let mut out = Vec::new();
        if s.depth_first || s.breadth_first {
            for (name, depth, breadth, meta) in &self.points {
                let Some(v) = values.get(name) else { continue };
                let message = Value::List(vec![v.clone(), meta.clone()]);
                if s.depth_first {
                    out.push((depth.as_str(), message.clone()));
                }
                if s.breadth_first {
                    out.push((breadth.as_str(), message));
                }
            }
        }
        if s.depth_first_all || s.breadth_first_all {
            let all = Value::List(vec![Value::Map(values.into_iter().collect()), all_meta]);
            if s.depth_first_all && s.breadth_first_all {
                out.push((self.all_breadth.as_str(), all.clone()));
            } else if s.breadth_first_all {
                out.push((self.all_breadth.as_str(), all));
                return out;
            }
            if s.depth_first_all {
                out.push((self.all_depth.as_str(), all));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::driver::PointKind;

    #[test]
    fn topics_and_messages_as_volttron() {
        let points = [PointMeta {
            name: "Temp".into(),
            units: "degF".into(),
            kind: PointKind::Float,
            writable: false,
        }];
        let settings = PublishSettings {
            depth_first_all: true,
            breadth_first_all: true,
            depth_first: true,
            breadth_first: true,
        };
        let p = DevicePublisher::new("campus/b/rtu1", &points, "UTC", settings);
        let out = p.messages(BTreeMap::from([("Temp".to_owned(), Value::Float(71.5))]));
        let topics: Vec<&str> = out.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            topics,
            [
                "devices/campus/b/rtu1/Temp",
                "devices/Temp/rtu1/b/campus",
                "devices/all/rtu1/b/campus",
                "devices/campus/b/rtu1/all"
            ]
        );
        assert_eq!(
            out[3].1.to_json_string(),
            r#"[{"Temp":71.5},{"Temp":{"type":"float","tz":"UTC","units":"degF"}}]"#
        );
        let t: DateTime<Utc> = "2024-06-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            DevicePublisher::headers(t, t)["TimeStamp"],
            Value::from("2024-06-01T12:00:00.000000+00:00")
        );
    }

    #[test]
    fn a_change_publishes_its_point_alone_with_date_and_timestamp() {
        let points = [
            PointMeta {
                name: "Temp".into(),
                units: "degF".into(),
                kind: PointKind::Float,
                writable: false,
            },
            PointMeta {
                name: "Fan".into(),
                units: "".into(),
                kind: PointKind::Boolean,
                writable: true,
            },
        ];
        let settings = PublishSettings {
            depth_first_all: true,
            breadth_first_all: false,
            depth_first: true,
            breadth_first: false,
        };
        let p = DevicePublisher::new("campus/b/ahu", &points, "UTC", settings);
        let out = p.change_messages("Temp", Value::Float(70.0));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, "devices/campus/b/ahu/Temp");
        assert_eq!(
            out[1].1.to_json_string(),
            r#"[{"Temp":70.0},{"Temp":{"type":"float","tz":"UTC","units":"degF"}}]"#
        );
        assert!(p.change_messages("Nope", Value::Null).is_empty());
        let t: DateTime<Utc> = "2024-06-01T12:00:00Z".parse().unwrap();
        let h = DevicePublisher::change_headers(t);
        assert_eq!(h.len(), 2);
        assert_eq!(h["Date"], h["TimeStamp"]);
    }
}
