//! BACnet application-tagged values to and from the bus's [`Value`]s.
//!
//! Reading (what the device sends → what is published):
//!
//! | BACnet | published |
//! |--------|-----------|
//! | Null | `null` |
//! | Boolean | `true`/`false` |
//! | Unsigned, Signed | an integer |
//! | Enumerated | its number (binary present-value `active` is `1`, as VOLTTRON's proxy gives) |
//! | Real | a float, the shortest decimal that is that `f32` (21.1, not 21.100000381469727) |
//! | Double | a float |
//! | CharacterString | a string |
//! | ObjectIdentifier | `"analogValue,1"` |
//! | OctetString | bytes |
//! | BitString | a list of booleans |
//! | Date, Time | their text |
//! | several values (an array read whole) | a list |
//!
//! Writing: the encoding is chosen by the object type for its commandable value properties
//! (`presentValue`, `relinquishDefault`): analog objects take a Real, binary objects an
//! Enumerated (from `true`/`false`, `0`/`1`, `"active"`/`"inactive"`), multi-state and
//! positive-integer objects an Unsigned, integer objects a Signed, character-string
//! objects a CharacterString. Other properties take what the value is: a float a Real,
//! an integer an Unsigned (a negative one a Signed), a boolean a Boolean, a string a
//! CharacterString. `null` is Null: it relinquishes the point's priority.

use bacnet_types::enums::{ObjectType, PropertyIdentifier};
use bacnet_types::primitives::PropertyValue;
use bytes::BytesMut;

use crate::core::Value;

use super::super::interface::DriverError;
use super::point::{BacnetPoint, camel_case};

/// Decodes a property's application-tagged bytes.
pub fn decode(data: &[u8]) -> Result<Value, DriverError> {
    let mut values = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let (value, next) = bacnet_encoding::primitives::decode_application_value(data, offset)
            .map_err(|e| DriverError::Protocol(format!("undecodable property value: {e}")))?;
        values.push(to_value(value));
        offset = next;
    }
    match values.len() {
        0 => Err(DriverError::Protocol("empty property value".into())),
        1 => Ok(values.pop().unwrap_or_default()),
        _ => Ok(Value::List(values)),
    }
}

fn to_value(value: PropertyValue) -> Value {
    match value {
        PropertyValue::Null => Value::Null,
        PropertyValue::Boolean(b) => Value::Bool(b),
        PropertyValue::Unsigned(u) => i64::try_from(u).map_or(Value::UInt(u), Value::Int),
        PropertyValue::Signed(i) => Value::Int(i.into()),
        PropertyValue::Real(f) => Value::Float(shortest(f)),
        PropertyValue::Double(f) => Value::Float(f),
        PropertyValue::OctetString(bytes) => Value::Bytes(bytes),
        PropertyValue::CharacterString(s) => Value::String(s),
        PropertyValue::BitString { unused_bits, data } => {
            let bits = (data.len() * 8).saturating_sub(unused_bits.into());
            Value::List(
                (0..bits)
                    .map(|i| Value::Bool(data[i / 8] & (0x80 >> (i % 8)) != 0))
                    .collect(),
            )
        }
        PropertyValue::Enumerated(e) => Value::Int(e.into()),
        PropertyValue::Date(d) => Value::String(format!("{d:?}")),
        PropertyValue::Time(t) => Value::String(format!("{t:?}")),
        PropertyValue::ObjectIdentifier(id) => Value::String(format!(
            "{},{}",
            camel_case(id.object_type()),
            id.instance_number()
        )),
        PropertyValue::List(values) => Value::List(values.into_iter().map(to_value).collect()),
        PropertyValue::ApplicationData(bytes) => Value::Bytes(bytes),
    }
}

/// The `f64` whose decimal is the shortest one that reads back as `f`.
fn shortest(f: f32) -> f64 {
    f.to_string().parse().unwrap_or(f64::from(f))
}

/// Encodes `value` for writing to `point`; see the [module docs](self).
pub fn encode(point: &BacnetPoint, value: &Value) -> Result<Vec<u8>, DriverError> {
    let bad = |reason: String| DriverError::BadValue {
        point: point.meta.name.clone(),
        reason,
    };
    let property_value = if value.is_null() {
        PropertyValue::Null
    } else if matches!(
        point.property,
        PropertyIdentifier::PRESENT_VALUE | PropertyIdentifier::RELINQUISH_DEFAULT
    ) {
        by_object_type(point.object.object_type(), value).map_err(bad)?
    } else {
        by_value(value).map_err(bad)?
    };
    let mut buf = BytesMut::new();
    bacnet_encoding::primitives::encode_property_value(&mut buf, &property_value)
        .map_err(|e| bad(format!("cannot encode {value:?}: {e}")))?;
    Ok(buf.to_vec())
}

fn by_object_type(object_type: ObjectType, value: &Value) -> Result<PropertyValue, String> {
    let wrong = |expected: &str| format!("{expected} expected, not {value:?}");
    match object_type {
        ObjectType::ANALOG_INPUT
        | ObjectType::ANALOG_OUTPUT
        | ObjectType::ANALOG_VALUE
        | ObjectType::LARGE_ANALOG_VALUE => {
            let f = number(value).ok_or_else(|| wrong("a number"))?;
            if object_type == ObjectType::LARGE_ANALOG_VALUE {
                Ok(PropertyValue::Double(f))
            } else if f.is_finite() && f.abs() <= f64::from(f32::MAX) {
                Ok(PropertyValue::Real(f as f32))
            } else {
                Err(format!("{f} does not fit a BACnet Real"))
            }
        }
        ObjectType::BINARY_INPUT | ObjectType::BINARY_OUTPUT | ObjectType::BINARY_VALUE => match value {
            Value::Bool(b) => Ok(PropertyValue::Enumerated((*b).into())),
            Value::Int(0) => Ok(PropertyValue::Enumerated(0)),
            Value::Int(1) => Ok(PropertyValue::Enumerated(1)),
            Value::Float(f) if *f == 0.0 || *f == 1.0 => Ok(PropertyValue::Enumerated(*f as u32)),
            Value::String(s) if s.eq_ignore_ascii_case("active") => Ok(PropertyValue::Enumerated(1)),
            Value::String(s) if s.eq_ignore_ascii_case("inactive") => Ok(PropertyValue::Enumerated(0)),
            _ => Err(wrong("true/false, 0/1 or \"active\"/\"inactive\"")),
        },
        ObjectType::MULTI_STATE_INPUT
        | ObjectType::MULTI_STATE_OUTPUT
        | ObjectType::MULTI_STATE_VALUE
        | ObjectType::POSITIVE_INTEGER_VALUE => match whole(value) {
            Some(i) if i >= 0 => Ok(PropertyValue::Unsigned(i as u64)),
            _ => Err(wrong("a non-negative integer")),
        },
        ObjectType::INTEGER_VALUE => match whole(value).map(i32::try_from) {
            Some(Ok(i)) => Ok(PropertyValue::Signed(i)),
            _ => Err(wrong("a 32-bit integer")),
        },
        ObjectType::CHARACTERSTRING_VALUE => match value {
            Value::String(s) => Ok(PropertyValue::CharacterString(s.clone())),
            _ => Err(wrong("a string")),
        },
        _ => by_value(value),
    }
}

fn by_value(value: &Value) -> Result<PropertyValue, String> {
    match value {
        Value::Bool(b) => Ok(PropertyValue::Boolean(*b)),
        Value::Int(i) if *i >= 0 => Ok(PropertyValue::Unsigned(*i as u64)),
        Value::Int(i) => i32::try_from(*i)
            .map(PropertyValue::Signed)
            .map_err(|_| format!("{i} does not fit a BACnet Signed")),
        Value::UInt(u) => Ok(PropertyValue::Unsigned(*u)),
        Value::Float(f) if f.is_finite() && f.abs() <= f64::from(f32::MAX) => {
            Ok(PropertyValue::Real(*f as f32))
        }
        Value::String(s) => Ok(PropertyValue::CharacterString(s.clone())),
        other => Err(format!("cannot write a {} to BACnet", other.type_name())),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => value.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn whole(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::driver::interface::{PointKind, PointMeta};
    use bacnet_types::primitives::ObjectIdentifier;

    fn point(object_type: ObjectType) -> BacnetPoint {
        BacnetPoint {
            meta: PointMeta {
                name: "P".into(),
                units: String::new(),
                kind: PointKind::Float,
                writable: true,
            },
            object: ObjectIdentifier::new(object_type, 1).unwrap(),
            property: PropertyIdentifier::PRESENT_VALUE,
            array_index: None,
            priority: 16,
            cov: false,
        }
    }

    #[test]
    fn values_round_trip_by_object_type() {
        let cases = [
            (ObjectType::ANALOG_VALUE, Value::Float(21.1), Value::Float(21.1)),
            (ObjectType::ANALOG_VALUE, Value::Int(3), Value::Float(3.0)),
            (ObjectType::BINARY_VALUE, Value::Bool(true), Value::Int(1)),
            (
                ObjectType::BINARY_VALUE,
                Value::String("inactive".into()),
                Value::Int(0),
            ),
            (ObjectType::MULTI_STATE_VALUE, Value::Int(2), Value::Int(2)),
            (ObjectType::INTEGER_VALUE, Value::Int(-4), Value::Int(-4)),
            (
                ObjectType::CHARACTERSTRING_VALUE,
                Value::String("hi".into()),
                Value::String("hi".into()),
            ),
            (ObjectType::ANALOG_VALUE, Value::Null, Value::Null),
        ];
        for (object_type, written, read) in cases {
            let bytes = encode(&point(object_type), &written).unwrap();
            assert_eq!(decode(&bytes).unwrap(), read, "{object_type:?} {written:?}");
        }
    }

    #[test]
    fn wrong_values_are_bad_values() {
        for (object_type, value) in [
            (ObjectType::ANALOG_VALUE, Value::String("warm".into())),
            (ObjectType::ANALOG_VALUE, Value::Float(1e300)),
            (ObjectType::BINARY_VALUE, Value::Int(2)),
            (ObjectType::MULTI_STATE_VALUE, Value::Int(-1)),
            (ObjectType::CHARACTERSTRING_VALUE, Value::Int(1)),
        ] {
            let e = encode(&point(object_type), &value).unwrap_err();
            assert!(matches!(e, DriverError::BadValue { .. }), "{e:?}");
        }
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        assert!(matches!(decode(&[]), Err(DriverError::Protocol(_))));
        assert!(matches!(decode(&[0x44, 0x41]), Err(DriverError::Protocol(_))));
    }
}
