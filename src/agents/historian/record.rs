//! What a publication becomes: rows to store, as VOLTTRON's base historian captures them.
//!
//! | topic | rows | timestamp |
//! |-------|------|-----------|
//! | `devices/<path>/all`, message `[{point: v}, {point: meta}]` or `{point: v}` | one per point, topic `<path>/<point>`, metadata `meta[point]` (or `{}`) | `TimeStamp` header, else `Date`, else now |
//! | `devices/...` not ending in `/all` | none (VOLTTRON stores only `all` publications) | |
//! | `analysis/<path>[/all]`, same messages | one per point, topic `<path>/<point>` | as above |
//! | `record/...`, any message | one, the whole topic, metadata `{}` | `Date` header, else now |
//! | `datalogger/<path>`, `{point: {"Readings": r, "Units": u, "data_type"?: t, "tz"?: z}}` | one per point (a list of `[ts, v]` pairs: one per pair), topic `datalogger/<path>/<point>`, metadata `{"units": u, "type": t}` | `r = [ts, v]`: `ts`; a bare `r`: now |
//!
//! Values and metadata are stored as JSON text (`value_string`), as VOLTTRON's `jsonapi.dumps`.

use chrono::{DateTime, Utc};

use crate::core::{Map, Publication, Value};

use crate::agents::time::parse_timestamp;
use crate::config_store::format_timestamp;

/// One row to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `format_timestamp` of the reading's time.
    pub ts: String,
    /// The topic as stored (`<path>/<point>`).
    pub topic: String,
    /// The value, JSON text.
    pub value: String,
    /// The topic's metadata, JSON text.
    pub meta: String,
}

/// The rows of one publication (none for a topic the historian does not store).
pub fn records_of(p: &Publication, now: DateTime<Utc>, out: &mut Vec<Record>) {
    let topic = p.topic.as_str();
    let header_time = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| p.header(n).and_then(Value::as_str).and_then(parse_timestamp))
            .unwrap_or(now)
    };
    if let Some(rest) = topic.strip_prefix("devices/") {
        let Some(device) = rest
            .strip_suffix("/all")
            .or_else(|| (rest == "all").then_some(""))
        else {
            return;
        };
        points(
            device,
            &p.message,
            &format_timestamp(&header_time(&["TimeStamp", "Date"])),
            out,
        );
    } else if topic.starts_with("analysis/") || topic == "analysis" {
        let t = topic.trim_end_matches('/');
        let t = t.strip_suffix("/all").unwrap_or(t);
        let device = t.split_once('/').map_or("", |(_, d)| d);
        points(
            device,
            &p.message,
            &format_timestamp(&header_time(&["TimeStamp", "Date"])),
            out,
        );
    } else if topic.starts_with("record/") || topic == "record" {
        out.push(Record {
            ts: format_timestamp(&header_time(&["Date"])),
            topic: topic.to_owned(),
            value: p.message.to_json_string(),
            meta: "{}".to_owned(),
        });
    } else if topic.starts_with("datalogger/") || topic == "datalogger" {
        log_points(topic, &p.message, now, out);
    }
}

fn points(device: &str, message: &Value, ts: &str, out: &mut Vec<Record>) {
    let empty = Map::new();
    let (values, meta) = match message {
        Value::Map(v) => (v, &empty),
        Value::List(l) => match (l.first(), l.get(1)) {
            (Some(Value::Map(v)), Some(Value::Map(m))) => (v, m),
            (Some(Value::Map(v)), _) => (v, &empty),
            _ => return,
        },
        _ => return,
    };
    for (point, value) in values {
        let topic = if device.is_empty() {
            point.clone()
        } else {
            format!("{device}/{point}")
        };
        out.push(Record {
            ts: ts.to_owned(),
            topic,
            value: value.to_json_string(),
            meta: meta
                .get(point)
                .map_or_else(|| "{}".to_owned(), Value::to_json_string),
        });
    }
}

fn log_points(topic: &str, message: &Value, now: DateTime<Utc>, out: &mut Vec<Record>) {
    let Some(items) = message.as_map() else { return };
    for (point, item) in items {
        let (Some(readings), Some(units)) = (item.get("Readings"), item.get("Units")) else {
            tracing::warn!("historian: logging request for {topic} missing Readings or Units");
            continue;
        };
        let mut dtype = item
            .get("data_type")
            .cloned()
            .unwrap_or_else(|| Value::from("float"));
        if dtype.as_str() == Some("double") {
            dtype = Value::from("float");
        }
        let mut meta = Map::new();
        meta.insert("units".into(), units.clone());
        meta.insert("type".into(), dtype);
        if let Some(tz) = item.get("tz").filter(|t| !matches!(t, Value::Null)) {
            meta.insert("tz".into(), tz.clone());
        }
        let meta = Value::Map(meta).to_json_string();
        let topic = format!("{topic}/{point}");
        let mut push = |ts: DateTime<Utc>, v: &Value| {
            out.push(Record {
                ts: format_timestamp(&ts),
                topic: topic.clone(),
                value: v.to_json_string(),
                meta: meta.clone(),
            })
        };
        match readings {
            Value::List(l) => match (l.first(), l.get(1)) {
                (Some(Value::String(ts)), Some(v)) => push(parse_timestamp(ts).unwrap_or(now), v),
                _ => {
                    for pair in l {
                        if let Some([Value::String(ts), v]) = pair.as_list() {
                            push(parse_timestamp(ts).unwrap_or(now), v);
                        }
                    }
                }
            },
            v => push(now, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Headers, Identity, Topic};

    fn publication(topic: &str, headers: &[(&str, &str)], message: &str) -> Publication {
        let mut h = Headers::new();
        for (k, v) in headers {
            h.insert((*k).into(), Value::from(*v));
        }
        Publication {
            sender: Identity::new("driver").unwrap(),
            bus: String::new(),
            topic: Topic::new(topic).unwrap(),
            headers: h,
            message: Value::from_json_str(message).unwrap(),
            origin: None,
        }
    }

    fn rows(p: &Publication) -> Vec<Record> {
        let mut out = Vec::new();
        records_of(p, parse_timestamp("2026-01-01T00:00:00Z").unwrap(), &mut out);
        out
    }

    #[test]
    fn device_all_is_one_row_per_point() {
        let p = publication(
            "devices/campus/b1/ahu/all",
            &[("TimeStamp", "2026-12-07T17:00:00+00:00")],
            r#"[{"zat": 72.5, "fan": true}, {"zat": {"units": "F", "type": "float", "tz": "UTC"}}]"#,
        );
        let r = rows(&p);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].topic, "campus/b1/ahu/zat");
        assert_eq!(r[1].value, "72.5");
        assert_eq!(r[1].ts, "2026-12-07T17:00:00.000000+00:00");
        assert_eq!(r[1].meta, r#"{"type":"float","tz":"UTC","units":"F"}"#);
        assert_eq!(
            (r[0].topic.as_str(), r[0].meta.as_str()),
            ("campus/b1/ahu/fan", "{}")
        );
        assert!(rows(&publication("devices/campus/b1/ahu/zat", &[], "1")).is_empty());
    }

    #[test]
    fn record_analysis_and_log() {
        let r = rows(&publication("record/notes", &[], r#"{"a": 1}"#));
        assert_eq!(
            (r[0].topic.as_str(), r[0].ts.as_str()),
            ("record/notes", "2026-01-01T00:00:00.000000+00:00")
        );
        let r = rows(&publication("analysis/eco/ahu", &[], r#"{"score": 3}"#));
        assert_eq!(r[0].topic, "eco/ahu/score");
        let r = rows(&publication(
            "datalogger/site",
            &[],
            r#"{"kw": {"Readings": ["2026-12-07T17:00:00", 4.5], "Units": "kW", "data_type": "double"}}"#,
        ));
        assert_eq!(r[0].topic, "datalogger/site/kw");
        assert_eq!(r[0].meta, r#"{"type":"float","units":"kW"}"#);
        assert_eq!(r[0].ts, "2026-12-07T17:00:00.000000+00:00");
    }
}
