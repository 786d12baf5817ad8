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
//!
//! A [`RecordCache`] keeps, per device and point, the stored topic and its metadata's JSON:
//! a device publishing the same points every scrape costs one allocation per row (its
//! value's JSON), the timestamp, topic and metadata being shared (`Arc<str>`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::core::{Map, Publication, Value};

use crate::agents::time::parse_timestamp;
use crate::config_store::format_timestamp;

/// One row to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `format_timestamp` of the reading's time.
    pub ts: Arc<str>,
    /// The topic as stored (`<path>/<point>`).
    pub topic: Arc<str>,
    /// The value, JSON text.
    pub value: String,
    /// The topic's metadata, JSON text.
    pub meta: Arc<str>,
}

/// What [`records_of`] remembers between publications: per device (`<path>`) and point, the
/// stored topic and the metadata last seen with its JSON.
#[derive(Debug, Default)]
pub struct RecordCache {
    devices: HashMap<String, HashMap<String, CachedPoint>>,
}

#[derive(Debug)]
struct CachedPoint {
    topic: Arc<str>,
    meta: Option<Value>,
    meta_json: Arc<str>,
}

impl RecordCache {
    /// The topic of `device`'s `point` and the JSON of `meta` (`{}` for none), reusing what
    /// the last publication of that point left when the metadata is the same.
    fn point(&mut self, device: &str, point: &str, meta: Option<&Value>) -> (Arc<str>, Arc<str>) {
        if !self.devices.contains_key(device) {
            self.devices.insert(device.to_owned(), HashMap::new());
        }
        let points = self.devices.get_mut(device).expect("inserted above");
        if let Some(c) = points.get_mut(point) {
            if c.meta.as_ref() != meta {
                c.meta = meta.cloned();
                c.meta_json = meta_json(meta);
            }
            return (c.topic.clone(), c.meta_json.clone());
        }
        let topic: Arc<str> = if device.is_empty() {
            point.into()
        } else {
            format!("{device}/{point}").into()
        };
        let cached = CachedPoint {
            topic: topic.clone(),
            meta: meta.cloned(),
            meta_json: meta_json(meta),
        };
        let json = cached.meta_json.clone();
        points.insert(point.to_owned(), cached);
        (topic, json)
    }
}

fn meta_json(meta: Option<&Value>) -> Arc<str> {
    meta.map_or_else(|| "{}".into(), |m| m.to_json_string().into())
}

/// The rows of one publication (none for a topic the historian does not store).
pub fn records_of(p: &Publication, now: DateTime<Utc>, cache: &mut RecordCache, out: &mut Vec<Record>) {
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
            format_timestamp(&header_time(&["TimeStamp", "Date"])).into(),
            cache,
            out,
        );
    } else if topic.starts_with("analysis/") || topic == "analysis" {
        let t = topic.trim_end_matches('/');
        let t = t.strip_suffix("/all").unwrap_or(t);
        let device = t.split_once('/').map_or("", |(_, d)| d);
        points(
            device,
            &p.message,
            format_timestamp(&header_time(&["TimeStamp", "Date"])).into(),
            cache,
            out,
        );
    } else if topic.starts_with("record/") || topic == "record" {
        out.push(Record {
            ts: format_timestamp(&header_time(&["Date"])).into(),
            topic: topic.into(),
            value: p.message.to_json_string(),
            meta: "{}".into(),
        });
    } else if topic.starts_with("datalogger/") || topic == "datalogger" {
        log_points(topic, &p.message, now, out);
    }
}

fn points(device: &str, message: &Value, ts: Arc<str>, cache: &mut RecordCache, out: &mut Vec<Record>) {
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
    out.reserve(values.len());
    for (point, value) in values {
        let (topic, meta) = cache.point(device, point, meta.get(point));
        out.push(Record {
            ts: ts.clone(),
            topic,
            value: value.to_json_string(),
            meta,
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
        let meta: Arc<str> = Value::Map(meta).to_json_string().into();
        let topic: Arc<str> = format!("{topic}/{point}").into();
        let mut push = |ts: DateTime<Utc>, v: &Value| {
            out.push(Record {
                ts: format_timestamp(&ts).into(),
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
        records_of(
            p,
            parse_timestamp("2026-01-01T00:00:00Z").unwrap(),
            &mut RecordCache::default(),
            &mut out,
        );
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
        assert_eq!(&*r[1].topic, "campus/b1/ahu/zat");
        assert_eq!(r[1].value, "72.5");
        assert_eq!(&*r[1].ts, "2026-12-07T17:00:00.000000+00:00");
        assert_eq!(&*r[1].meta, r#"{"type":"float","tz":"UTC","units":"F"}"#);
        assert_eq!((&*r[0].topic, &*r[0].meta), ("campus/b1/ahu/fan", "{}"));
        assert!(rows(&publication("devices/campus/b1/ahu/zat", &[], "1")).is_empty());
    }

    #[test]
    fn record_analysis_and_log() {
        let r = rows(&publication("record/notes", &[], r#"{"a": 1}"#));
        assert_eq!(
            (&*r[0].topic, &*r[0].ts),
            ("record/notes", "2026-01-01T00:00:00.000000+00:00")
        );
        let r = rows(&publication("analysis/eco/ahu", &[], r#"{"score": 3}"#));
        assert_eq!(&*r[0].topic, "eco/ahu/score");
        let r = rows(&publication(
            "datalogger/site",
            &[],
            r#"{"kw": {"Readings": ["2026-12-07T17:00:00", 4.5], "Units": "kW", "data_type": "double"}}"#,
        ));
        assert_eq!(&*r[0].topic, "datalogger/site/kw");
        assert_eq!(&*r[0].meta, r#"{"type":"float","units":"kW"}"#);
        assert_eq!(&*r[0].ts, "2026-12-07T17:00:00.000000+00:00");
    }

    #[test]
    fn the_cache_shares_topics_and_metadata_and_sees_a_change() {
        let mut cache = RecordCache::default();
        let now = parse_timestamp("2026-01-01T00:00:00Z").unwrap();
        let mut rows = |meta: &str| {
            let p = publication(
                "devices/campus/b1/ahu/all",
                &[],
                &format!(r#"[{{"zat": 72.5}}, {{"zat": {meta}}}]"#),
            );
            let mut out = Vec::new();
            records_of(&p, now, &mut cache, &mut out);
            out.remove(0)
        };
        let a = rows(r#"{"units": "F"}"#);
        let b = rows(r#"{"units": "F"}"#);
        assert!(Arc::ptr_eq(&a.topic, &b.topic) && Arc::ptr_eq(&a.meta, &b.meta));
        let c = rows(r#"{"units": "C"}"#);
        assert_eq!(&*c.meta, r#"{"units":"C"}"#);
        assert_eq!(&*c.topic, "campus/b1/ahu/zat");
    }
}
