//! One row of a BACnet registry: which object's which property a point is.
//!
//! | column | required | meaning |
//! |--------|----------|---------|
//! | `Volttron Point Name` | yes | the point's name on the bus |
//! | `BACnet Object Type` | yes | `analogValue`, `binaryInput`, ... (any spelling: `analog-value`, `ANALOG_VALUE`) |
//! | `Index` | yes | the object's instance number |
//! | `Property` | yes | `presentValue`, ... (any spelling, or the property's number) |
//! | `Writable` | no | `TRUE` lets `set_point` and `revert_point` write it |
//! | `Write Priority` | no (16) | 1 ..= 16, not below the device's `min_priority` |
//! | `Array Index` | no | read and write one element of an array property |
//! | `COV Flag` | no (`FALSE`) | `TRUE`: the driver subscribes to the object's changes of value (SubscribeCOV) |
//! | `Units`, `Unit Details`, `Reference Point Name`, `Notes` | no | published metadata, or informational |
//!
//! The point's published type follows VOLTTRON's `BACNET_TYPE_MAPPING` by object type:
//! analog objects are `float`, binary objects `boolean`, multi-state objects `integer`; the
//! value objects VOLTTRON's table lacks are mapped alike (`largeAnalogValue` `float`,
//! `integerValue` and `positiveIntegerValue` `integer`, `characterstringValue` `string`).
//! Any other object type is refused, naming the column.

use bacnet_types::enums::{ObjectType, PropertyIdentifier};
use bacnet_types::primitives::ObjectIdentifier;

use super::super::interface::{PointKind, PointMeta};
use super::super::registry::{RegistryError, RegistryRow};

/// The published type of each supported object type.
const OBJECT_KINDS: &[(ObjectType, PointKind)] = &[
    (ObjectType::ANALOG_INPUT, PointKind::Float),
    (ObjectType::ANALOG_OUTPUT, PointKind::Float),
    (ObjectType::ANALOG_VALUE, PointKind::Float),
    (ObjectType::LARGE_ANALOG_VALUE, PointKind::Float),
    (ObjectType::BINARY_INPUT, PointKind::Boolean),
    (ObjectType::BINARY_OUTPUT, PointKind::Boolean),
    (ObjectType::BINARY_VALUE, PointKind::Boolean),
    (ObjectType::MULTI_STATE_INPUT, PointKind::Integer),
    (ObjectType::MULTI_STATE_OUTPUT, PointKind::Integer),
    (ObjectType::MULTI_STATE_VALUE, PointKind::Integer),
    (ObjectType::INTEGER_VALUE, PointKind::Integer),
    (ObjectType::POSITIVE_INTEGER_VALUE, PointKind::Integer),
    (ObjectType::CHARACTERSTRING_VALUE, PointKind::String),
];

/// One point: its registry metadata and where it lives on the device.
#[derive(Debug, Clone, PartialEq)]
pub struct BacnetPoint {
    /// Name, units, type, writability.
    pub meta: PointMeta,
    /// The object.
    pub object: ObjectIdentifier,
    /// The property of the object.
    pub property: PropertyIdentifier,
    /// `Array Index`, if any.
    pub array_index: Option<u32>,
    /// `Write Priority`.
    pub priority: u8,
    /// `COV Flag`.
    pub cov: bool,
}

impl BacnetPoint {
    /// Reads one registry row; `min_priority` is the device's.
    pub fn from_row(row: &RegistryRow, min_priority: u8) -> Result<BacnetPoint, RegistryError> {
        const TYPE: &str = "BACnet Object Type";
        let type_text = row.required(TYPE)?;
        let object_type: ObjectType = type_text
            .parse()
            .map_err(|_| row.error(TYPE, format!("{type_text:?} is not a BACnet object type")))?;
        let kind = OBJECT_KINDS
            .iter()
            .find(|(t, _)| *t == object_type)
            .map(|(_, kind)| *kind)
            .ok_or_else(|| {
                let known: Vec<String> = OBJECT_KINDS.iter().map(|(t, _)| camel_case(*t)).collect();
                row.error(
                    TYPE,
                    format!("{type_text:?} is not supported; one of {}", known.join(", ")),
                )
            })?;
        let instance: u32 = match row.parse("Index")? {
            Some(instance) => instance,
            None => return Err(row.error("Index", "required, but empty or missing")),
        };
        let object = ObjectIdentifier::new(object_type, instance).map_err(|_| {
            row.error(
                "Index",
                format!("{instance} is not an object instance (0 ..= 4194303)"),
            )
        })?;
        let property_text = row.required("Property")?;
        let property = match property_text.parse::<u32>() {
            Ok(raw) => PropertyIdentifier::from_raw(raw),
            Err(_) => property_text
                .parse()
                .map_err(|_| row.error("Property", format!("{property_text:?} is not a BACnet property")))?,
        };
        let priority = match row.parse::<u8>("Write Priority")? {
            None => 16,
            Some(p @ 1..=16) if p >= min_priority => p,
            Some(p @ 1..=16) => {
                return Err(row.error(
                    "Write Priority",
                    format!("{p} is below the device's min_priority {min_priority}"),
                ));
            }
            Some(p) => return Err(row.error("Write Priority", format!("{p} is not in 1..=16"))),
        };
        let array_index = row.parse("Array Index")?;
        let cov = row.boolean("COV Flag", false)?;
        Ok(BacnetPoint {
            meta: row.point_meta(kind)?,
            object,
            property,
            array_index,
            priority,
            cov,
        })
    }
}

/// VOLTTRON's spelling of an object type: `ANALOG_VALUE` → `analogValue`.
pub fn camel_case(object_type: ObjectType) -> String {
    let name = object_type.name().unwrap_or("?").to_ascii_lowercase();
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::driver::registry::Registry;
    use crate::config_store::{ConfigType, parse};

    const HEADER: &str = "Reference Point Name,Volttron Point Name,Units,Unit Details,BACnet Object Type,Property,Writable,Index,Write Priority,Notes\n";

    fn points(rows: &str, min_priority: u8) -> Result<Vec<BacnetPoint>, RegistryError> {
        let value = parse(ConfigType::Csv, &format!("{HEADER}{rows}")).unwrap();
        let registry = Registry::parse("campus/b/ahu", "ahu.csv", &value, true).unwrap();
        registry
            .rows
            .iter()
            .map(|row| BacnetPoint::from_row(row, min_priority))
            .collect()
    }

    #[test]
    fn volttron_rows_read() {
        let p = points(
            "SP,Setpoint,degreesCelsius,,analogValue,presentValue,TRUE,1,,\n\
             F,Fan,,,binary-value,present-value,TRUE,3,10,\n\
             M,Mode,,,multiStateValue,85,FALSE,2,,\n",
            8,
        )
        .unwrap();
        assert_eq!(
            p[0].object,
            ObjectIdentifier::new(ObjectType::ANALOG_VALUE, 1).unwrap()
        );
        assert_eq!(p[0].property, PropertyIdentifier::PRESENT_VALUE);
        assert_eq!(
            (p[0].priority, p[0].meta.kind, p[0].meta.writable),
            (16, PointKind::Float, true)
        );
        assert_eq!((p[1].priority, p[1].meta.kind), (10, PointKind::Boolean));
        assert_eq!(
            (p[2].property, p[2].meta.kind),
            (PropertyIdentifier::PRESENT_VALUE, PointKind::Integer)
        );
    }

    #[test]
    fn bad_cells_name_their_column() {
        for (row, column, needle) in [
            (
                "a,A,,,analogBogus,presentValue,TRUE,1,,\n",
                "BACnet Object Type",
                "not a BACnet object type",
            ),
            (
                "a,A,,,device,presentValue,TRUE,1,,\n",
                "BACnet Object Type",
                "analogValue",
            ),
            ("a,A,,,analogValue,presentValue,TRUE,,,\n", "Index", "required"),
            (
                "a,A,,,analogValue,presentValue,TRUE,4194304,,\n",
                "Index",
                "object instance",
            ),
            (
                "a,A,,,analogValue,presentValu,TRUE,1,,\n",
                "Property",
                "not a BACnet property",
            ),
            (
                "a,A,,,analogValue,presentValue,TRUE,1,7,\n",
                "Write Priority",
                "min_priority 8",
            ),
            (
                "a,A,,,analogValue,presentValue,TRUE,1,17,\n",
                "Write Priority",
                "1..=16",
            ),
        ] {
            let e = points(row, 8).unwrap_err();
            assert_eq!((e.row, e.column.as_str()), (2, column), "{row}");
            assert!(e.reason.contains(needle), "{row}: {}", e.reason);
        }
    }
}
