//! Batched reads: the points of a device grouped into one request per run of contiguous
//! registers (or bits) of one table.
//!
//! Points are sorted by table and address; a run grows while the next point starts at most
//! `max_gap` addresses past the run's end (overlapping points share registers) and the run
//! stays within the most one request may ask for (125 registers, 2000 bits, or the
//! device's `max_read_registers`). A scrape of N contiguous holding registers is then
//! ⌈N/125⌉ requests.

use super::point::{ModbusPoint, Table};

/// One read request and the points it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRun {
    /// The table read.
    pub table: Table,
    /// The first address read.
    pub start: u16,
    /// How many registers (or bits).
    pub count: u16,
    /// The indices (in the device's point list) of the points inside the run.
    pub points: Vec<usize>,
}

/// The read requests that cover `points` (see the [module docs](self)); `max_read` is the
/// most one request of a table may ask for, `max_gap` the unconfigured addresses a run may
/// span.
pub fn plan(points: &[ModbusPoint], max_read: impl Fn(Table) -> u16, max_gap: u16) -> Vec<ReadRun> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| (points[i].table, points[i].address, points[i].width()));
    let mut runs: Vec<ReadRun> = Vec::new();
    for i in order {
        let p = &points[i];
        let (start, end) = (u32::from(p.address), u32::from(p.address) + u32::from(p.width()));
        if let Some(run) = runs.last_mut().filter(|r| r.table == p.table) {
            let run_end = u32::from(run.start) + u32::from(run.count);
            let new_end = run_end.max(end);
            if start <= run_end + u32::from(max_gap)
                && new_end - u32::from(run.start) <= u32::from(max_read(p.table))
            {
                // Within 65536 by construction (a point never runs past address 65535).
                run.count = (new_end - u32::from(run.start)) as u16;
                run.points.push(i);
                continue;
            }
        }
        runs.push(ReadRun {
            table: p.table,
            start: p.address,
            count: p.width(),
            points: vec![i],
        });
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::driver::interface::{PointKind, PointMeta};
    use crate::agents::driver::modbus::codec::{DataType, Encoding};

    fn point(table: Table, address: u16, data_type: DataType) -> ModbusPoint {
        ModbusPoint {
            meta: PointMeta {
                name: format!("p{address}"),
                units: String::new(),
                kind: PointKind::Integer,
                writable: false,
            },
            table,
            address,
            encoding: Encoding {
                data_type,
                byte_order: Default::default(),
                word_order: Default::default(),
                scale: None,
            },
            default: None,
        }
    }

    #[test]
    fn contiguous_registers_are_one_request_up_to_the_limit() {
        let points: Vec<_> = (0..300)
            .map(|a| point(Table::Holding, a, DataType::U16))
            .collect();
        let runs = plan(&points, |_| 125, 0);
        let shape: Vec<_> = runs.iter().map(|r| (r.start, r.count, r.points.len())).collect();
        assert_eq!(shape, [(0, 125, 125), (125, 125, 125), (250, 50, 50)]);
    }

    #[test]
    fn gaps_tables_and_overlaps_split_or_join() {
        let points = vec![
            point(Table::Holding, 10, DataType::F32),
            point(Table::Holding, 0, DataType::U16),
            point(Table::Holding, 1, DataType::U32),
            point(Table::Holding, 1, DataType::U16),
            point(Table::Input, 3, DataType::U16),
            point(Table::Coil, 4, DataType::Bool),
            point(Table::Coil, 5, DataType::Bool),
        ];
        let runs = plan(&points, |_| 125, 0);
        let shape: Vec<_> = runs.iter().map(|r| (r.table, r.start, r.count)).collect();
        assert_eq!(
            shape,
            [
                (Table::Coil, 4, 2),
                (Table::Holding, 0, 3),
                (Table::Holding, 10, 2),
                (Table::Input, 3, 1)
            ]
        );
        let joined = plan(&points, |_| 125, 7);
        assert_eq!(
            (joined[1].start, joined[1].count, joined[1].points.len()),
            (0, 12, 4)
        );
        // A point never straddles two requests.
        let runs = plan(&points[..3], |_| 2, 0);
        assert!(runs.iter().all(|r| r.count <= 2), "{runs:?}");
    }
}
