//! The InfluxDB 1.x results sink: a simulation's results written, when it ends, as DOTS's
//! calculation services write them — measurement = the ESDL type, tags `simulation_id`,
//! `model_id`, `esdl_id`, `esdl_name`, one field per output, the step's simulated time in
//! seconds — in line protocol over HTTP (`POST /write?db=..&precision=s`, 5,000 lines a
//! request), from a thread of its own (the HTTP client blocks).
//!
//! The database is created if it is missing (`CREATE DATABASE`, which does nothing for
//! one that exists). Values that InfluxDB cannot store (NaN, infinities) are left out, and
//! so are tags with an empty value (an object without a name).

use crate::simulation::results::{ResultRow, Results};

/// Lines per write request.
const CHUNK: usize = 5_000;

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfluxSink {
    url: String,
    database: String,
}

impl InfluxSink {
    /// The server at `url` (`http://127.0.0.1:8086`), database `database`.
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        InfluxSink {
            url: url.into().trim_end_matches('/').to_owned(),
            database: database.into(),
        }
    }

    /// Writes `results`; how many lines (points) were written. Blocks.
    pub fn write(&self, results: &Results) -> Result<usize, String> {
        let lines = line_protocol(&results.rows());
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .build()
            .into();
        let create = format!("CREATE DATABASE \"{}\"", self.database.replace('"', "\\\""));
        let r = http
            .post(format!("{}/query", self.url))
            .query("q", &create)
            .send_empty()
            .map_err(|e| format!("{}: {e}", self.url))?;
        if r.status() != 200 {
            return Err(format!("{}: CREATE DATABASE answered {}", self.url, r.status()));
        }
        for chunk in lines.chunks(CHUNK) {
            let mut r = http
                .post(format!("{}/write", self.url))
                .query("db", &self.database)
                .query("precision", "s")
                .send(chunk.join("\n"))
                .map_err(|e| format!("{}: {e}", self.url))?;
            if r.status() != 204 {
                let body = r.body_mut().read_to_string().unwrap_or_default();
                return Err(format!(
                    "{}: write answered {}: {}",
                    self.url,
                    r.status(),
                    body.trim()
                ));
            }
        }
        Ok(lines.len())
    }

    /// `influxdb <url> <database>`, for the status.
    pub(crate) fn describe(&self) -> String {
        format!("influxdb {} {}", self.url, self.database)
    }
}

fn escape(s: &str, also: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ',' || c == ' ' || c == '\\' || also.contains(&c) {
            out.push('\\');
        }
        if c == '\n' {
            out.push_str("\\n");
            continue;
        }
        out.push(c);
    }
    out
}

/// Rows (sorted as [`Results::rows`] sorts them) as line-protocol lines: one per step,
/// measurement, model and ESDL object, with a field per output.
pub fn line_protocol(rows: &[ResultRow]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let r = &rows[i];
        let mut line = escape(&r.measurement, &[]);
        for (k, v) in [
            ("esdl_id", &r.esdl_id),
            ("esdl_name", &r.esdl_name),
            ("model_id", &r.model_id),
            ("simulation_id", &r.simulation_id),
        ] {
            if !v.is_empty() {
                line.push_str(&format!(",{k}={}", escape(v, &['='])));
            }
        }
        let mut fields = Vec::new();
        while i < rows.len()
            && (
                rows[i].step,
                &rows[i].measurement,
                &rows[i].model_id,
                &rows[i].esdl_id,
            ) == (r.step, &r.measurement, &r.model_id, &r.esdl_id)
        {
            let f = &rows[i];
            if f.value.is_finite() {
                fields.push(format!("{}={:?}", escape(&f.field, &['=']), f.value));
            }
            i += 1;
        }
        if fields.is_empty() {
            continue;
        }
        line.push(' ');
        line.push_str(&fields.join(","));
        line.push_str(&format!(" {}", r.time.timestamp()));
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn row(step: u64, esdl_id: &str, name: &str, field: &str, value: f64) -> ResultRow {
        ResultRow {
            step,
            time: DateTime::from_timestamp(1_717_200_000 + (step as i64 - 1) * 900, 0).unwrap(),
            measurement: "PVInstallation".into(),
            simulation_id: "s-1".into(),
            model_id: "pv-1".into(),
            esdl_id: esdl_id.into(),
            esdl_name: name.into(),
            field: field.into(),
            value,
        }
    }

    #[test]
    fn one_line_per_object_and_step_with_a_field_per_output() {
        let rows = [
            row(1, "pv1", "PV 1, roof", "power", 10.0),
            row(1, "pv1", "PV 1, roof", "voltage", 230.5),
            row(1, "pv2", "", "power", f64::NAN),
            row(2, "pv1", "PV 1, roof", "power", 11.0),
        ];
        assert_eq!(
            line_protocol(&rows),
            [
                r"PVInstallation,esdl_id=pv1,esdl_name=PV\ 1\,\ roof,model_id=pv-1,simulation_id=s-1 power=10.0,voltage=230.5 1717200000",
                r"PVInstallation,esdl_id=pv1,esdl_name=PV\ 1\,\ roof,model_id=pv-1,simulation_id=s-1 power=11.0 1717200900",
            ]
        );
    }
}
