//! A simulation's results as DOTS lays them out in InfluxDB: one point per ESDL object,
//! output and step; measurement = the object's ESDL type, tags simulation, model, ESDL
//! id and name, one field per output, the step's simulated time.
//!
//! Kept in memory while the run goes (each distinct key once), read sorted (step,
//! measurement, model, ESDL id, field) so that the same simulation gives the same table whatever order the models' messages
//! arrived in, and written as CSV (`<id>.results.csv`) when it ends.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One value of one output of one ESDL object in one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// The step, from 1.
    pub step: u64,
    /// The step's simulated start.
    pub time: DateTime<Utc>,
    /// The object's ESDL type.
    pub measurement: String,
    /// The simulation.
    pub simulation_id: String,
    /// The model that calculated it.
    pub model_id: String,
    /// The object.
    pub esdl_id: String,
    /// The object's name.
    pub esdl_name: String,
    /// The output's name.
    pub field: String,
    /// The value.
    pub value: f64,
}

/// What a result row is about: everything but its step, time and value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResultKey {
    /// The object's ESDL type.
    pub measurement: String,
    /// The simulation.
    pub simulation_id: String,
    /// The model that calculated it.
    pub model_id: String,
    /// The object.
    pub esdl_id: String,
    /// The object's name.
    pub esdl_name: String,
    /// The output's name.
    pub field: String,
}

impl ResultKey {
    /// The canonical order: measurement, model, ESDL id, field.
    fn order(&self) -> (&str, &str, &str, &str) {
        (&self.measurement, &self.model_id, &self.esdl_id, &self.field)
    }
}

/// The results of one simulation: each distinct [`ResultKey`] kept once, and a point
/// (step, time, key, value) per value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    keys: Vec<ResultKey>,
    by_key: std::collections::HashMap<ResultKey, u32>,
    points: Vec<(u64, DateTime<Utc>, u32, f64)>,
}

impl Results {
    /// The number of `key`, added if new (for [`push_point`](Self::push_point)).
    pub fn key(&mut self, key: ResultKey) -> u32 {
        if let Some(&k) = self.by_key.get(&key) {
            return k;
        }
        let k = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        self.keys.push(key.clone());
        self.by_key.insert(key, k);
        k
    }

    /// Adds a value of key `key` (from [`key`](Self::key)).
    pub fn push_point(&mut self, step: u64, time: DateTime<Utc>, key: u32, value: f64) {
        self.points.push((step, time, key, value));
    }

    /// Adds a row.
    pub fn push(&mut self, row: ResultRow) {
        let key = self.key(ResultKey {
            measurement: row.measurement,
            simulation_id: row.simulation_id,
            model_id: row.model_id,
            esdl_id: row.esdl_id,
            esdl_name: row.esdl_name,
            field: row.field,
        });
        self.push_point(row.step, row.time, key, row.value);
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The rows, sorted by step, measurement, model, ESDL id and field.
    pub fn rows(&self) -> Vec<ResultRow> {
        let mut rank: Vec<u32> = (0..self.keys.len() as u32).collect();
        rank.sort_by(|&a, &b| self.keys[a as usize].order().cmp(&self.keys[b as usize].order()));
        let mut position = vec![0u32; self.keys.len()];
        for (r, &k) in rank.iter().enumerate() {
            position[k as usize] = r as u32;
        }
        let mut points = self.points.clone();
        points.sort_by_key(|&(step, _, key, _)| (step, position[key as usize]));
        points
            .into_iter()
            .map(|(step, time, key, value)| {
                let k = &self.keys[key as usize];
                ResultRow {
                    step,
                    time,
                    measurement: k.measurement.clone(),
                    simulation_id: k.simulation_id.clone(),
                    model_id: k.model_id.clone(),
                    esdl_id: k.esdl_id.clone(),
                    esdl_name: k.esdl_name.clone(),
                    field: k.field.clone(),
                    value,
                }
            })
            .collect()
    }

    /// The rows as CSV with a header line.
    pub fn to_csv(&self) -> Result<Vec<u8>, String> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record([
            "step",
            "time",
            "measurement",
            "simulation_id",
            "model_id",
            "esdl_id",
            "esdl_name",
            "field",
            "value",
        ])
        .map_err(|e| e.to_string())?;
        for r in self.rows() {
            w.serialize(r).map_err(|e| e.to_string())?;
        }
        w.into_inner().map_err(|e| e.to_string())
    }

    /// Reads what [`to_csv`](Self::to_csv) wrote.
    pub fn from_csv(bytes: &[u8]) -> Result<Self, String> {
        let mut results = Results::default();
        for r in csv::Reader::from_reader(bytes).deserialize() {
            results.push(r.map_err(|e| e.to_string())?);
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: u64, model: &str, value: f64) -> ResultRow {
        ResultRow {
            step,
            time: DateTime::from_timestamp(1_674_604_800 + step as i64 * 3600, 0).unwrap(),
            measurement: "PVInstallation".into(),
            simulation_id: "s-1".into(),
            model_id: model.into(),
            esdl_id: "pv1".into(),
            esdl_name: "PV, \"one\"".into(),
            field: "power".into(),
            value,
        }
    }

    #[test]
    fn csv_round_trip_in_canonical_order() {
        let mut a = Results::default();
        a.push(row(2, "pv-1", 2.5));
        a.push(row(1, "pv-2", 1.0));
        a.push(row(1, "pv-1", 0.5));
        let csv = a.to_csv().unwrap();
        let text = String::from_utf8(csv.clone()).unwrap();
        assert!(text.starts_with("step,time,measurement,"), "{text}");
        let b = Results::from_csv(&csv).unwrap();
        assert_eq!(b.rows(), a.rows());
        assert_eq!(b.rows()[0].model_id, "pv-1");
        assert_eq!(b.rows()[2].step, 2);
        let empty = Results::default();
        assert!(
            String::from_utf8(empty.to_csv().unwrap())
                .unwrap()
                .starts_with("step,")
        );
    }
}
