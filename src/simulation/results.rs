//! A simulation's results as DOTS lays them out in InfluxDB: one point per ESDL object,
//! output and step; measurement = the object's ESDL type, tags simulation, model, ESDL
//! id and name, one field per output, the step's simulated time.
//!
//! Kept in memory while the run goes, sorted (step, measurement, model, ESDL id, field)
//! so that the same simulation gives the same table whatever order the models' messages
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

/// The results of one simulation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    rows: Vec<ResultRow>,
    sorted: bool,
}

impl Results {
    /// Adds a row.
    pub fn push(&mut self, row: ResultRow) {
        self.rows.push(row);
        self.sorted = false;
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, sorted.
    pub fn rows(&mut self) -> &[ResultRow] {
        if !self.sorted {
            self.rows.sort_by(|a, b| {
                (a.step, &a.measurement, &a.model_id, &a.esdl_id, &a.field).cmp(&(
                    b.step,
                    &b.measurement,
                    &b.model_id,
                    &b.esdl_id,
                    &b.field,
                ))
            });
            self.sorted = true;
        }
        &self.rows
    }

    /// The rows as CSV with a header line.
    pub fn to_csv(&mut self) -> Result<Vec<u8>, String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in self.rows() {
            w.serialize(r).map_err(|e| e.to_string())?;
        }
        if self.rows.is_empty() {
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
        }
        w.into_inner().map_err(|e| e.to_string())
    }

    /// Reads what [`to_csv`](Self::to_csv) wrote.
    pub fn from_csv(bytes: &[u8]) -> Result<Self, String> {
        let mut rows = Vec::new();
        for r in csv::Reader::from_reader(bytes).deserialize() {
            rows.push(r.map_err(|e| e.to_string())?);
        }
        Ok(Results { rows, sorted: false })
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
        let mut b = Results::from_csv(&csv).unwrap();
        assert_eq!(b.rows(), a.rows());
        assert_eq!(b.rows()[0].model_id, "pv-1");
        assert_eq!(b.rows()[2].step, 2);
        let mut empty = Results::default();
        assert!(
            String::from_utf8(empty.to_csv().unwrap())
                .unwrap()
                .starts_with("step,")
        );
    }
}
