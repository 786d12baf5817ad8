//! [`Value`]: the JSON-shaped payload carried by every message.
//!
//! VOLTTRON messages are JSON documents. Inside the platform they are held as a [`Value`], an
//! enum that mirrors JSON (plus a `Bytes` variant) and that serializes with **two faces**:
//!
//! * **Human-readable formats** (`serde_json`, and anything whose serializer reports
//!   [`is_human_readable`](serde::Serializer::is_human_readable) `== true`): a `Value` is written
//!   as natural JSON (`null`, `true`, `12`, `1.5`, `"s"`, `[..]`, `{..}`) and read back with
//!   `deserialize_any`, so any JSON document deserializes into a `Value`.
//! * **Binary formats** (bincode 2 through `bincode::serde`, whose serializer and deserializers
//!   report `is_human_readable() == false`): a `Value` is written as an externally tagged enum
//!   with stable variant indices (`Null = 0`, `Bool = 1`, `Int = 2`, `UInt = 3`, `Float = 4`,
//!   `String = 5`, `Bytes = 6`, `List = 7`, `Map = 8`) and read back with `deserialize_enum`,
//!   because bincode is not self-describing and cannot `deserialize_any`.
//!
//! Lossless guarantees:
//!
//! * JSON → [`Value`] → JSON is the identity for every JSON value (via
//!   `From<serde_json::Value>` / `From<Value> for serde_json::Value`, or through JSON text):
//!   integers that fit `i64` become [`Value::Int`], larger ones [`Value::UInt`], every other
//!   number [`Value::Float`].
//! * [`Value`] → bincode → [`Value`] is the identity for every value (floats compared bitwise).
//! * Typed data goes in and out with [`to_value`] and [`from_value`], which follow the
//!   `serde_json` data model (structs and maps become [`Value::Map`], enums are externally
//!   tagged, `None` and `()` become [`Value::Null`]) without going through JSON text.
//!
//! ```rust
//! use volttron::core::value::{Value, from_value, to_value};
//!
//! let v = to_value(&(1u8, "two", [3.5])).unwrap();
//! assert_eq!(v.to_json_string(), r#"[1,"two",[3.5]]"#);
//! let back: (u8, String, Vec<f64>) = from_value(v).unwrap();
//! assert_eq!(back, (1, "two".to_string(), vec![3.5]));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use serde::ser::{self, Impossible, SerializeMap as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The map type used by [`Value::Map`]: string keys in sorted order.
pub type Map = BTreeMap<String, Value>;

/// A JSON-shaped value: the payload of every VOLTTRON message.
///
/// Invariant: [`Value::UInt`] only holds integers greater than `i64::MAX`; every constructor and
/// conversion in this module normalises smaller unsigned integers to [`Value::Int`].
///
/// Conversion to JSON ([`serde_json::Value`], [`Value::to_json_string`], [`Display`](fmt::Display))
/// is lossless except for two cases JSON cannot express: [`Value::Bytes`] becomes an array of
/// integers (0–255), and non-finite floats (NaN, ±∞) become `null`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// JSON `null`; also `()`, unit structs and `Option::None`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer (every integer that fits `i64`).
    Int(i64),
    /// An unsigned integer greater than `i64::MAX`.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// A UTF-8 string.
    String(String),
    /// Raw bytes (a JSON array of integers when converted to JSON).
    Bytes(Vec<u8>),
    /// An ordered list of values (JSON array).
    List(Vec<Value>),
    /// A map from string keys to values (JSON object).
    Map(Map),
}

/// The error produced by [`to_value`], [`from_value`] and [`Value::from_json_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A message from serde or from a `Serialize`/`Deserialize` implementation
    /// (for example `invalid type: string "x", expected i32`).
    #[error("{0}")]
    Custom(String),
    /// An integer does not fit the requested numeric type.
    #[error("integer {value} is out of range for {target}")]
    OutOfRange {
        /// The integer, in decimal.
        value: String,
        /// The requested type, e.g. `"u8"`.
        target: &'static str,
    },
    /// A map key serialized as something other than a string, integer, bool or char.
    #[error("map key must be a string, integer, bool or char, found {0}")]
    InvalidKey(&'static str),
    /// Text that is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
}

impl ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::Custom(msg.to_string())
    }
}

impl de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::Custom(msg.to_string())
    }
}

fn out_of_range(value: impl fmt::Display, target: &'static str) -> ValueError {
    ValueError::OutOfRange {
        value: value.to_string(),
        target,
    }
}

static NULL: Value = Value::Null;

// ---------------------------------------------------------------------------------------------
// Accessors and helpers
// ---------------------------------------------------------------------------------------------

impl Value {
    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, if this is a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is a [`Value::Int`] (a [`Value::UInt`] never fits `i64`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The integer, if this is a non-negative [`Value::Int`] or a [`Value::UInt`].
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::UInt(u) => Some(*u),
            _ => None,
        }
    }

    /// The number as `f64`: a [`Value::Float`], or an integer converted (possibly rounded).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            _ => None,
        }
    }

    /// The string, if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is a [`Value::List`].
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The elements, mutably, if this is a [`Value::List`].
    pub fn as_list_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The entries, if this is a [`Value::Map`].
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The entries, mutably, if this is a [`Value::Map`].
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The entry under `key`, if this is a [`Value::Map`] holding it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// The element at `index`, if this is a [`Value::List`] that long.
    pub fn get_index(&self, index: usize) -> Option<&Value> {
        self.as_list().and_then(|l| l.get(index))
    }

    /// The variant's name: `"null"`, `"bool"`, `"int"` (both `Int` and `UInt`), `"float"`,
    /// `"string"`, `"bytes"`, `"list"` or `"map"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// Parses JSON text into a [`Value`] (numbers as described on [`Value`]).
    pub fn from_json_str(s: &str) -> Result<Value, ValueError> {
        serde_json::from_str(s).map_err(|e| ValueError::Json(e.to_string()))
    }

    /// Compact JSON text (bytes as arrays of integers, non-finite floats as `null`).
    pub fn to_json_string(&self) -> String {
        // Serializing a `Value` to JSON cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }

    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Value::Null => Unexpected::Unit,
            Value::Bool(b) => Unexpected::Bool(*b),
            Value::Int(i) => Unexpected::Signed(*i),
            Value::UInt(u) => Unexpected::Unsigned(*u),
            Value::Float(f) => Unexpected::Float(*f),
            Value::String(s) => Unexpected::Str(s),
            Value::Bytes(b) => Unexpected::Bytes(b),
            Value::List(_) => Unexpected::Seq,
            Value::Map(_) => Unexpected::Map,
        }
    }

    fn invalid_type(&self, exp: &dyn Expected) -> ValueError {
        de::Error::invalid_type(self.unexpected(), exp)
    }
}

/// Parses JSON text, like [`Value::from_json_str`].
impl FromStr for Value {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Value::from_json_str(s)
    }
}

/// Writes compact JSON, like [`Value::to_json_string`].
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json_string())
    }
}

/// `value["key"]`: the entry, or `&Value::Null` when absent or when `value` is not a map.
impl std::ops::Index<&str> for Value {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

/// `value[i]`: the element, or `&Value::Null` when out of range or when `value` is not a list.
impl std::ops::Index<usize> for Value {
    type Output = Value;

    fn index(&self, index: usize) -> &Value {
        self.get_index(index).unwrap_or(&NULL)
    }
}

// ---------------------------------------------------------------------------------------------
// From conversions
// ---------------------------------------------------------------------------------------------

macro_rules! from_signed {
    ($($ty:ty),*) => {$(
        /// A [`Value::Int`].
        impl From<$ty> for Value {
            fn from(v: $ty) -> Self {
                Value::Int(v as i64)
            }
        }
    )*};
}
from_signed!(i8, i16, i32, i64, isize);

macro_rules! from_unsigned {
    ($($ty:ty),*) => {$(
        /// A [`Value::Int`], or a [`Value::UInt`] when greater than `i64::MAX`.
        impl From<$ty> for Value {
            fn from(v: $ty) -> Self {
                let v = v as u64;
                match i64::try_from(v) {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::UInt(v),
                }
            }
        }
    )*};
}
from_unsigned!(u8, u16, u32, u64, usize);

/// A [`Value::Bool`].
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// A [`Value::Float`] (widened exactly to `f64`).
impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Float(f64::from(v))
    }
}

/// A [`Value::Float`].
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

/// A [`Value::String`].
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}

/// A [`Value::String`].
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}

/// [`Value::Null`].
impl From<()> for Value {
    fn from((): ()) -> Self {
        Value::Null
    }
}

/// A [`Value::List`] (a `Vec<u8>` becomes a list of integers; build [`Value::Bytes`] directly
/// for raw bytes).
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

/// `None` becomes [`Value::Null`], `Some(v)` becomes `v.into()`.
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A [`Value::Map`].
impl<V: Into<Value>> From<BTreeMap<String, V>> for Value {
    fn from(v: BTreeMap<String, V>) -> Self {
        Value::Map(v.into_iter().map(|(k, v)| (k, v.into())).collect())
    }
}

/// A [`Value::Map`] (keys sorted).
impl<V: Into<Value>, S> From<HashMap<String, V, S>> for Value {
    fn from(v: HashMap<String, V, S>) -> Self {
        Value::Map(v.into_iter().map(|(k, v)| (k, v.into())).collect())
    }
}

/// Collects into a [`Value::List`].
impl FromIterator<Value> for Value {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        Value::List(iter.into_iter().collect())
    }
}

/// Collects into a [`Value::Map`] (a repeated key keeps the last value).
impl FromIterator<(String, Value)> for Value {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Value::Map(iter.into_iter().collect())
    }
}

/// Lossless: integers that fit `i64` become [`Value::Int`], larger ones [`Value::UInt`], every
/// other number [`Value::Float`].
impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::UInt(u)
                } else {
                    n.as_f64().map_or(Value::Null, Value::Float)
                }
            }
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::List(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Map(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

/// Lossless except that [`Value::Bytes`] becomes an array of integers and non-finite floats
/// become `null`.
impl From<Value> for serde_json::Value {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Int(i) => serde_json::Value::Number(i.into()),
            Value::UInt(u) => serde_json::Value::Number(u.into()),
            Value::Float(f) => {
                serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Value::String(s) => serde_json::Value::String(s),
            Value::Bytes(b) => serde_json::Value::Array(
                b.into_iter()
                    .map(|x| serde_json::Value::Number(x.into()))
                    .collect(),
            ),
            Value::List(l) => serde_json::Value::Array(l.into_iter().map(serde_json::Value::from).collect()),
            Value::Map(m) => serde_json::Value::Object(
                m.into_iter()
                    .map(|(k, v)| (k, serde_json::Value::from(v)))
                    .collect(),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Serialize / Deserialize for Value (the two faces)
// ---------------------------------------------------------------------------------------------

const VALUE_NAME: &str = "Value";
const VARIANTS: &[&str] = &[
    "Null", "Bool", "Int", "UInt", "Float", "String", "Bytes", "List", "Map",
];

/// Serializes a byte slice with `serialize_bytes` (the content of the tagged `Bytes` variant).
struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            match self {
                Value::Null => serializer.serialize_unit(),
                Value::Bool(b) => serializer.serialize_bool(*b),
                Value::Int(i) => serializer.serialize_i64(*i),
                Value::UInt(u) => serializer.serialize_u64(*u),
                Value::Float(f) => serializer.serialize_f64(*f),
                Value::String(s) => serializer.serialize_str(s),
                Value::Bytes(b) => serializer.serialize_bytes(b),
                Value::List(l) => serializer.collect_seq(l),
                Value::Map(m) => {
                    let mut map = serializer.serialize_map(Some(m.len()))?;
                    for (k, v) in m {
                        map.serialize_entry(k, v)?;
                    }
                    map.end()
                }
            }
        } else {
            match self {
                Value::Null => serializer.serialize_unit_variant(VALUE_NAME, 0, "Null"),
                Value::Bool(b) => serializer.serialize_newtype_variant(VALUE_NAME, 1, "Bool", b),
                Value::Int(i) => serializer.serialize_newtype_variant(VALUE_NAME, 2, "Int", i),
                Value::UInt(u) => serializer.serialize_newtype_variant(VALUE_NAME, 3, "UInt", u),
                Value::Float(f) => serializer.serialize_newtype_variant(VALUE_NAME, 4, "Float", f),
                Value::String(s) => serializer.serialize_newtype_variant(VALUE_NAME, 5, "String", s),
                Value::Bytes(b) => serializer.serialize_newtype_variant(VALUE_NAME, 6, "Bytes", &BytesRef(b)),
                Value::List(l) => serializer.serialize_newtype_variant(VALUE_NAME, 7, "List", l),
                Value::Map(m) => serializer.serialize_newtype_variant(VALUE_NAME, 8, "Map", m),
            }
        }
    }
}

/// Accepts every self-described shape (the human-readable face).
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON-shaped value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        if let Ok(i) = i64::try_from(v) {
            Ok(Value::Int(i))
        } else if let Ok(u) = u64::try_from(v) {
            Ok(Value::UInt(u))
        } else {
            Err(E::custom(out_of_range(v, "Value")))
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(Value::from)
            .map_err(|_| E::custom(out_of_range(v, "Value")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            list.push(v);
        }
        Ok(Value::List(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some((k, v)) = access.next_entry::<String, Value>()? {
            map.insert(k, v);
        }
        Ok(Value::Map(map))
    }
}

/// The variant tag of the binary face: accepts the index or the name.
enum Tag {
    Null,
    Bool,
    Int,
    UInt,
    Float,
    String,
    Bytes,
    List,
    Map,
}

impl Tag {
    const ALL: [Tag; 9] = [
        Tag::Null,
        Tag::Bool,
        Tag::Int,
        Tag::UInt,
        Tag::Float,
        Tag::String,
        Tag::Bytes,
        Tag::List,
        Tag::Map,
    ];
}

struct TagVisitor;

impl Visitor<'_> for TagVisitor {
    type Value = Tag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Value variant index (0..=8) or name")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tag, E> {
        usize::try_from(v)
            .ok()
            .and_then(|i| Tag::ALL.into_iter().nth(i))
            .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
        VARIANTS
            .iter()
            .position(|name| *name == v)
            .and_then(|i| Tag::ALL.into_iter().nth(i))
            .ok_or_else(|| E::unknown_variant(v, VARIANTS))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Tag, E> {
        match std::str::from_utf8(v) {
            Ok(s) => self.visit_str(s),
            Err(_) => Err(E::invalid_value(Unexpected::Bytes(v), &self)),
        }
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(TagVisitor)
    }
}

/// Reads the content of the tagged `Bytes` variant.
struct BytesSeed;

impl<'de> DeserializeSeed<'de> for BytesSeed {
    type Value = Vec<u8>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        Ok(v.as_bytes().to_vec())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Vec<u8>, E> {
        Ok(v.into_bytes())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// How deeply lists and maps may nest in the binary face. Decoding is recursive, so an
/// unbounded depth would let a few bytes from a peer overflow the stack.
pub const MAX_BINARY_DEPTH: usize = 128;

thread_local! {
    static BINARY_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one level of binary nesting while alive.
struct DepthGuard;

impl DepthGuard {
    fn enter<E: de::Error>() -> Result<Self, E> {
        BINARY_DEPTH.with(|d| {
            if d.get() >= MAX_BINARY_DEPTH {
                Err(E::custom(format!(
                    "Value lists and maps nest deeper than {MAX_BINARY_DEPTH} levels"
                )))
            } else {
                d.set(d.get() + 1);
                Ok(DepthGuard)
            }
        })
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        BINARY_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Reads the externally tagged enum (the binary face).
struct TaggedVisitor;

impl<'de> Visitor<'de> for TaggedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tagged Value")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, variant) = data.variant::<Tag>()?;
        Ok(match tag {
            Tag::Null => {
                variant.unit_variant()?;
                Value::Null
            }
            Tag::Bool => Value::Bool(variant.newtype_variant()?),
            Tag::Int => Value::Int(variant.newtype_variant()?),
            // Normalise, in case a peer sent a UInt that fits i64.
            Tag::UInt => Value::from(variant.newtype_variant::<u64>()?),
            Tag::Float => Value::Float(variant.newtype_variant()?),
            Tag::String => Value::String(variant.newtype_variant()?),
            Tag::Bytes => Value::Bytes(variant.newtype_variant_seed(BytesSeed)?),
            Tag::List => {
                let _depth = DepthGuard::enter::<A::Error>()?;
                Value::List(variant.newtype_variant()?)
            }
            Tag::Map => {
                let _depth = DepthGuard::enter::<A::Error>()?;
                Value::Map(variant.newtype_variant()?)
            }
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(ValueVisitor)
        } else {
            deserializer.deserialize_enum(VALUE_NAME, VARIANTS, TaggedVisitor)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// to_value: a Serializer that builds a Value
// ---------------------------------------------------------------------------------------------

/// Converts any `Serialize` type into a [`Value`], following the `serde_json` data model:
/// structs and maps become [`Value::Map`] (integer, bool and char keys are stringified; other
/// keys are an error), enums are externally tagged (a unit variant is its name as a string,
/// other variants `{"Variant": content}`), `None`, `()` and unit structs become [`Value::Null`],
/// sequences and tuples become [`Value::List`], and `serialize_bytes` becomes [`Value::Bytes`].
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ValueSerializer)
}

/// Converts a [`Value`] into any `Deserialize` type (the inverse of [`to_value`]).
///
/// Integers convert to any integer type they fit (otherwise [`ValueError::OutOfRange`]) and to
/// floats; floats convert only to floats. `Null` is `None` for options; enums are read from a
/// string (unit variant) or a single-key map; bytes are read from `Bytes`, a string or a list
/// of integers.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    T::deserialize(value)
}

struct ValueSerializer;

impl Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = ListBuilder;
    type SerializeTuple = ListBuilder;
    type SerializeTupleStruct = ListBuilder;
    type SerializeTupleVariant = TupleVariantBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = StructVariantBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::Int(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        ValueVisitor.visit_i128(v)
    }

    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        u64::try_from(v)
            .map(Value::from)
            .map_err(|_| out_of_range(v, "Value"))
    }

    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::Float(v))
    }

    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_string()))
    }

    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_owned()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::String(variant.to_owned()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        let mut map = Map::new();
        map.insert(variant.to_owned(), value.serialize(self)?);
        Ok(Value::Map(map))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<ListBuilder, ValueError> {
        Ok(ListBuilder(Vec::with_capacity(len.unwrap_or(0).min(4096))))
    }

    fn serialize_tuple(self, len: usize) -> Result<ListBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<ListBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<TupleVariantBuilder, ValueError> {
        Ok(TupleVariantBuilder {
            variant,
            list: Vec::with_capacity(len.min(4096)),
        })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder {
            map: Map::new(),
            next_key: None,
        })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, ValueError> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<StructVariantBuilder, ValueError> {
        Ok(StructVariantBuilder {
            variant,
            map: Map::new(),
        })
    }
}

struct ListBuilder(Vec<Value>);

impl ser::SerializeSeq for ListBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.0.push(to_value(value)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::List(self.0))
    }
}

impl ser::SerializeTuple for ListBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for ListBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

struct TupleVariantBuilder {
    variant: &'static str,
    list: Vec<Value>,
}

impl ser::SerializeTupleVariant for TupleVariantBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.list.push(to_value(value)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        let mut map = Map::new();
        map.insert(self.variant.to_owned(), Value::List(self.list));
        Ok(Value::Map(map))
    }
}

struct MapBuilder {
    map: Map,
    next_key: Option<String>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.next_key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self
            .next_key
            .take()
            .ok_or_else(|| ValueError::Custom("map value serialized before its key".into()))?;
        self.map.insert(key, to_value(value)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Map(self.map))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.map.insert(key.to_owned(), to_value(value)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Map(self.map))
    }
}

struct StructVariantBuilder {
    variant: &'static str,
    map: Map,
}

impl ser::SerializeStructVariant for StructVariantBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.map.insert(key.to_owned(), to_value(value)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        let mut outer = Map::new();
        outer.insert(self.variant.to_owned(), Value::Map(self.map));
        Ok(Value::Map(outer))
    }
}

/// Serializes a map key to a string: strings, chars, integers and bools (stringified).
struct KeySerializer;

macro_rules! key_to_string {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<String, ValueError> {
            Ok(v.to_string())
        }
    )*};
}

macro_rules! key_rejected {
    ($($method:ident: $ty:ty => $what:literal),*) => {$(
        fn $method(self, _v: $ty) -> Result<String, ValueError> {
            Err(ValueError::InvalidKey($what))
        }
    )*};
}

impl Serializer for KeySerializer {
    type Ok = String;
    type Error = ValueError;
    type SerializeSeq = Impossible<String, ValueError>;
    type SerializeTuple = Impossible<String, ValueError>;
    type SerializeTupleStruct = Impossible<String, ValueError>;
    type SerializeTupleVariant = Impossible<String, ValueError>;
    type SerializeMap = Impossible<String, ValueError>;
    type SerializeStruct = Impossible<String, ValueError>;
    type SerializeStructVariant = Impossible<String, ValueError>;

    key_to_string!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
        serialize_str: &str
    );

    key_rejected!(
        serialize_f32: f32 => "a float", serialize_f64: f64 => "a float",
        serialize_bytes: &[u8] => "bytes"
    );

    fn serialize_none(self) -> Result<String, ValueError> {
        Err(ValueError::InvalidKey("None"))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, ValueError> {
        Err(ValueError::InvalidKey("an option"))
    }

    fn serialize_unit(self) -> Result<String, ValueError> {
        Err(ValueError::InvalidKey("unit"))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, ValueError> {
        Err(ValueError::InvalidKey("a unit struct"))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, ValueError> {
        Ok(variant.to_owned())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, ValueError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, ValueError> {
        Err(ValueError::InvalidKey("an enum newtype variant"))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, ValueError> {
        Err(ValueError::InvalidKey("a sequence"))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, ValueError> {
        Err(ValueError::InvalidKey("a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, ValueError> {
        Err(ValueError::InvalidKey("a tuple struct"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueError> {
        Err(ValueError::InvalidKey("an enum tuple variant"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, ValueError> {
        Err(ValueError::InvalidKey("a map"))
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, ValueError> {
        Err(ValueError::InvalidKey("a struct"))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, ValueError> {
        Err(ValueError::InvalidKey("an enum struct variant"))
    }
}

// ---------------------------------------------------------------------------------------------
// from_value: Value as a Deserializer
// ---------------------------------------------------------------------------------------------

/// Lets a [`Value`] be used wherever serde expects `IntoDeserializer`.
impl<'de> IntoDeserializer<'de, ValueError> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

macro_rules! deserialize_integer {
    ($($method:ident => $visit:ident: $ty:ident),* $(,)?) => {$(
        #[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            let n = match self {
                Value::Int(i) => $ty::try_from(i).map_err(|_| out_of_range(i, stringify!($ty)))?,
                Value::UInt(u) => $ty::try_from(u).map_err(|_| out_of_range(u, stringify!($ty)))?,
                other => return Err(other.invalid_type(&visitor)),
            };
            visitor.$visit(n)
        }
    )*};
}

fn visit_list<'de, V: Visitor<'de>>(list: Vec<Value>, visitor: V) -> Result<V::Value, ValueError> {
    let len = list.len();
    let mut access = ListAccess(list.into_iter());
    let out = visitor.visit_seq(&mut access)?;
    if access.0.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in the list"))
    }
}

fn visit_map<'de, V: Visitor<'de>>(map: Map, visitor: V) -> Result<V::Value, ValueError> {
    let len = map.len();
    let mut access = MapAccessor {
        iter: map.into_iter(),
        value: None,
    };
    let out = visitor.visit_map(&mut access)?;
    if access.iter.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer entries in the map"))
    }
}

impl<'de> Deserializer<'de> for Value {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::UInt(u) => visitor.visit_u64(u),
            Value::Float(f) => visitor.visit_f64(f),
            Value::String(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::List(l) => visit_list(l, visitor),
            Value::Map(m) => visit_map(m, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Bool(b) => visitor.visit_bool(b),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    deserialize_integer!(
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Float(f) => visitor.visit_f64(f),
            Value::Int(i) => visitor.visit_f64(i as f64),
            Value::UInt(u) => visitor.visit_f64(u as f64),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::String(s) => visitor.visit_string(s),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::String(s) => visitor.visit_string(s),
            Value::List(l) => {
                let bytes = l
                    .iter()
                    .map(|v| match v {
                        Value::Int(i) => u8::try_from(*i).map_err(|_| out_of_range(i, "u8")),
                        Value::UInt(u) => Err(out_of_range(u, "u8")),
                        other => Err(other.invalid_type(&"a byte (integer 0..=255)")),
                    })
                    .collect::<Result<Vec<u8>, ValueError>>()?;
                visitor.visit_byte_buf(bytes)
            }
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::List(l) => visit_list(l, visitor),
            Value::Bytes(b) => visit_list(b.into_iter().map(Value::from).collect(), visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Map(m) => visit_map(m, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::Map(m) => visit_map(m, visitor),
            Value::List(l) => visit_list(l, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::String(variant) => visitor.visit_enum(EnumAccessor {
                variant,
                content: None,
            }),
            Value::Map(m) => {
                let mut entries = m.into_iter();
                match (entries.next(), entries.next()) {
                    (Some((variant, content)), None) => visitor.visit_enum(EnumAccessor {
                        variant,
                        content: Some(content),
                    }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"a map with exactly one key (the enum variant)",
                    )),
                }
            }
            other => Err(other.invalid_type(&"a string or a single-key map (an enum)")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        drop(self);
        visitor.visit_unit()
    }
}

struct ListAccess(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for ListAccess {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        self.0.next().map(|v| seed.deserialize(v)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapAccessor {
    iter: std::collections::btree_map::IntoIter<String, Value>,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for MapAccessor {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ValueError> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(KeyDeserializer(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ValueError> {
        match self.value.take() {
            Some(v) => seed.deserialize(v),
            None => Err(ValueError::Custom("map value requested before its key".into())),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct EnumAccessor {
    variant: String,
    content: Option<Value>,
}

impl<'de> EnumAccess<'de> for EnumAccessor {
    type Error = ValueError;
    type Variant = VariantAccessor;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccessor), ValueError> {
        let tag = seed.deserialize(KeyDeserializer(self.variant))?;
        Ok((tag, VariantAccessor(self.content)))
    }
}

struct VariantAccessor(Option<Value>);

impl<'de> VariantAccess<'de> for VariantAccessor {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.0 {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(other.invalid_type(&"unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, ValueError> {
        match self.0 {
            Some(v) => seed.deserialize(v),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Some(Value::List(l)) => visit_list(l, visitor),
            Some(other) => Err(other.invalid_type(&"tuple variant")),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Some(Value::Map(m)) => visit_map(m, visitor),
            Some(Value::List(l)) => visit_list(l, visitor),
            Some(other) => Err(other.invalid_type(&"struct variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

/// Deserializes a map key (always a string), parsing it when a number or bool is requested.
struct KeyDeserializer(String);

macro_rules! deserialize_parsed_key {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self.0.parse::<$ty>() {
                Ok(v) => visitor.$visit(v),
                Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&self.0), &visitor)),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for KeyDeserializer {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_string(self.0)
    }

    deserialize_parsed_key!(
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_enum(EnumAccessor {
            variant: self.0,
            content: None,
        })
    }

    serde::forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_binary_nesting_is_refused_not_a_stack_overflow() {
        let cfg = bincode::config::standard();
        // [List, len 1] repeated, then Null: tags 7 and 0, lengths as varints.
        let nested = |depth: usize| -> Vec<u8> {
            let mut bytes: Vec<u8> = std::iter::repeat_n([7u8, 1u8], depth).flatten().collect();
            bytes.push(0);
            bytes
        };
        let ok: Value = bincode::serde::decode_from_slice(&nested(MAX_BINARY_DEPTH), cfg)
            .unwrap()
            .0;
        assert!(matches!(ok, Value::List(_)));
        let err = bincode::serde::decode_from_slice::<Value, _>(&nested(100_000), cfg).unwrap_err();
        assert!(err.to_string().contains("nest deeper"), "{err}");
        // The counter is back to zero: a shallow value still decodes afterwards.
        let v: Value = bincode::serde::decode_from_slice(&nested(3), cfg).unwrap().0;
        assert!(matches!(v, Value::List(_)));
    }
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    fn bincode_round_trip(v: &Value) -> Value {
        let bytes = bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap();
        let (back, used): (Value, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(used, bytes.len());
        back
    }

    fn sample() -> Value {
        let mut inner = Map::new();
        inner.insert("bytes".into(), Value::Bytes(vec![0, 1, 255]));
        inner.insert("empty".into(), Value::List(vec![]));
        inner.insert("m".into(), Value::Map(Map::new()));
        Value::from_iter([
            ("null".to_string(), Value::Null),
            ("t".to_string(), Value::Bool(true)),
            ("i".to_string(), Value::Int(i64::MIN)),
            ("u".to_string(), Value::UInt(u64::MAX)),
            ("f".to_string(), Value::Float(-2.5)),
            ("s".to_string(), Value::from("héllo")),
            (
                "l".to_string(),
                Value::List(vec![Value::Int(1), Value::Map(inner), Value::Null]),
            ),
        ])
    }

    #[test]
    fn bincode_round_trips_every_variant() {
        let variants = [
            Value::Null,
            Value::Bool(false),
            Value::Bool(true),
            Value::Int(0),
            Value::Int(-7),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::UInt(i64::MAX as u64 + 1),
            Value::Float(1.5),
            Value::Float(f64::MAX),
            Value::Float(f64::INFINITY),
            Value::String(String::new()),
            Value::String("topic/a".into()),
            Value::Bytes(vec![]),
            Value::Bytes(vec![1, 2, 3]),
            Value::List(vec![Value::Null, Value::Int(1)]),
            Value::Map(Map::new()),
            sample(),
            Value::List(vec![sample(), sample()]),
        ];
        for v in variants {
            assert_eq!(bincode_round_trip(&v), v);
        }
        let nan = bincode_round_trip(&Value::Float(f64::NAN));
        assert!(matches!(nan, Value::Float(f) if f.is_nan()));
    }

    #[test]
    fn bincode_uses_tagged_face() {
        // is_human_readable() == false for bincode: the variant index comes first.
        let enc = |v: &Value| bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap();
        assert_eq!(enc(&Value::Null), vec![0]);
        assert_eq!(enc(&Value::Bool(true)), vec![1, 1]);
        assert_eq!(enc(&Value::Int(1)), vec![2, 2]); // zigzag varint
        assert_eq!(enc(&Value::Bytes(vec![9])), vec![6, 1, 9]);
        assert_eq!(enc(&Value::List(vec![])), vec![7, 0]);
        // An out-of-range tag is an error, not a panic.
        let bad: Result<(Value, usize), _> =
            bincode::serde::decode_from_slice(&[9], bincode::config::standard());
        assert!(bad.is_err());
    }

    #[test]
    fn serde_json_output_is_natural() {
        let v = Value::from_iter([(
            "a".to_string(),
            Value::List(vec![
                Value::Int(1),
                Value::Float(2.5),
                Value::from("x"),
                Value::Null,
            ]),
        )]);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"a":[1,2.5,"x",null]}"#);
        assert_eq!(v.to_json_string(), r#"{"a":[1,2.5,"x",null]}"#);
        assert_eq!(v.to_string(), r#"{"a":[1,2.5,"x",null]}"#);
        assert_eq!(Value::Bytes(vec![1, 2]).to_json_string(), "[1,2]");
        assert_eq!(Value::Float(f64::NAN).to_json_string(), "null");
        assert_eq!(Value::UInt(u64::MAX).to_json_string(), "18446744073709551615");
        assert_eq!(Value::Float(3.0).to_json_string(), "3.0");
    }

    #[test]
    fn json_text_parses() {
        let v = Value::from_json_str(r#"{"a":[1,-2,2.5,18446744073709551615,true,null,"s"]}"#).unwrap();
        assert_eq!(
            v["a"],
            Value::List(vec![
                Value::Int(1),
                Value::Int(-2),
                Value::Float(2.5),
                Value::UInt(u64::MAX),
                Value::Bool(true),
                Value::Null,
                Value::from("s"),
            ])
        );
        let parsed: Value = "[1, 2]".parse().unwrap();
        assert_eq!(parsed, Value::from(vec![1, 2]));
        let err = Value::from_json_str("{nope").unwrap_err();
        assert!(matches!(err, ValueError::Json(_)));
        assert!(err.to_string().starts_with("invalid JSON"));
    }

    #[test]
    fn json_value_identity() {
        let j: serde_json::Value = serde_json::json!({
            "i": i64::MIN, "max": i64::MAX, "u": u64::MAX, "f": 1.0, "neg": -0.5,
            "s": "x", "n": null, "b": false, "l": [1, [2.5], {}], "m": {"k": [] }
        });
        let v = Value::from(j.clone());
        assert_eq!(v["u"], Value::UInt(u64::MAX));
        assert_eq!(v["max"], Value::Int(i64::MAX));
        assert_eq!(v["f"], Value::Float(1.0));
        assert_eq!(serde_json::Value::from(v.clone()), j);
        // Through text too.
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(Value::from_json_str(&text).unwrap(), v);
        // Lossy corners.
        assert_eq!(
            serde_json::Value::from(Value::Bytes(vec![7, 8])),
            serde_json::json!([7, 8])
        );
        assert_eq!(
            serde_json::Value::from(Value::Float(f64::INFINITY)),
            serde_json::Value::Null
        );
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Kind {
        Unit,
        Newtype(u32),
        Tuple(i8, String),
        Struct { a: Option<bool>, b: Vec<u8> },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        name: String,
        values: Vec<Vec<f64>>,
        maybe: Option<i32>,
        nothing: Option<String>,
        table: HashMap<String, u16>,
        by_id: BTreeMap<u32, String>,
        kinds: Vec<Kind>,
        pair: (char, f32),
        big: u64,
        small: i64,
        unit: Unit,
        empty: (),
    }

    fn record() -> Record {
        Record {
            name: "dev".into(),
            values: vec![vec![1.0, 2.5], vec![]],
            maybe: Some(-3),
            nothing: None,
            table: HashMap::from([("x".to_string(), 1), ("y".to_string(), 65535)]),
            by_id: BTreeMap::from([(7, "seven".to_string()), (10, "ten".to_string())]),
            kinds: vec![
                Kind::Unit,
                Kind::Newtype(5),
                Kind::Tuple(-1, "t".into()),
                Kind::Struct {
                    a: Some(true),
                    b: vec![1, 2],
                },
                Kind::Struct { a: None, b: vec![] },
            ],
            pair: ('é', 0.1),
            big: u64::MAX,
            small: i64::MIN,
            unit: Unit,
            empty: (),
        }
    }

    #[test]
    fn typed_round_trip() {
        let r = record();
        let v = to_value(&r).unwrap();
        assert_eq!(v["big"], Value::UInt(u64::MAX));
        assert_eq!(v["small"], Value::Int(i64::MIN));
        assert_eq!(v["nothing"], Value::Null);
        assert_eq!(v["unit"], Value::Null);
        assert_eq!(v["by_id"]["7"], Value::from("seven"));
        assert_eq!(v["kinds"][0], Value::from("Unit"));
        assert_eq!(v["kinds"][1], Value::from_json_str(r#"{"Newtype":5}"#).unwrap());
        assert_eq!(
            v["kinds"][2],
            Value::from_json_str(r#"{"Tuple":[-1,"t"]}"#).unwrap()
        );
        assert_eq!(
            v["kinds"][3],
            Value::from_json_str(r#"{"Struct":{"a":true,"b":[1,2]}}"#).unwrap()
        );
        assert_eq!(v["pair"][0], Value::from("é"));
        assert_eq!(v["pair"][1], Value::Float(f64::from(0.1f32)));
        let back: Record = from_value(v.clone()).unwrap();
        assert_eq!(back, r);
        // Same shape as serde_json produces.
        assert_eq!(
            serde_json::Value::from(v.clone()),
            serde_json::to_value(&r).unwrap()
        );
        // And it survives bincode in between.
        let back: Record = from_value(bincode_round_trip(&v)).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn typed_scalars_and_tuples() {
        assert_eq!(to_value(&u64::MAX).unwrap(), Value::UInt(u64::MAX));
        assert_eq!(to_value(&5u64).unwrap(), Value::Int(5));
        assert_eq!(from_value::<u64>(Value::UInt(u64::MAX)).unwrap(), u64::MAX);
        assert_eq!(from_value::<i64>(Value::Int(i64::MIN)).unwrap(), i64::MIN);
        assert_eq!(from_value::<f32>(Value::Float(1.5)).unwrap(), 1.5f32);
        assert_eq!(from_value::<f64>(Value::Int(3)).unwrap(), 3.0);
        assert_eq!(from_value::<char>(Value::from("z")).unwrap(), 'z');
        assert_eq!(from_value::<Unit>(Value::Null).unwrap(), Unit);
        assert_eq!(from_value::<()>(Value::Null).unwrap(), ());
        let t = (1u8, -2i16, "three".to_string(), Some(4.5f64), None::<u8>);
        let v = to_value(&t).unwrap();
        assert_eq!(v.as_list().unwrap().len(), 5);
        assert_eq!(
            from_value::<(u8, i16, String, Option<f64>, Option<u8>)>(v).unwrap(),
            t
        );
        assert_eq!(to_value(&128u128).unwrap(), Value::Int(128));
        assert_eq!(from_value::<i128>(Value::Int(-9)).unwrap(), -9);
        // Any value round-trips through to_value / from_value.
        let s = sample();
        assert_eq!(to_value(&s).unwrap(), s);
        assert_eq!(from_value::<Value>(s.clone()).unwrap(), s);
        assert_eq!(
            from_value::<serde_json::Value>(Value::from(vec![1, 2])).unwrap(),
            serde_json::json!([1, 2])
        );
    }

    #[test]
    fn typed_errors_name_the_problem() {
        let err = from_value::<i32>(Value::from("abc")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("invalid type") && msg.contains("\"abc\""), "{msg}");
        assert!(msg.contains("i32"), "{msg}");

        let err = from_value::<u8>(Value::Int(300)).unwrap_err();
        assert_eq!(
            err,
            ValueError::OutOfRange {
                value: "300".into(),
                target: "u8"
            }
        );
        assert_eq!(err.to_string(), "integer 300 is out of range for u8");
        assert!(from_value::<u32>(Value::Int(-1)).is_err());
        assert!(from_value::<i64>(Value::UInt(u64::MAX)).is_err());
        // Floats never become integers.
        assert!(from_value::<i32>(Value::Float(3.0)).is_err());
        // Inside a struct, too.
        let mut v = to_value(&record()).unwrap();
        v.as_map_mut().unwrap().insert("maybe".into(), Value::from("x"));
        assert!(from_value::<Record>(v).is_err());
        // Missing field.
        let err = from_value::<Record>(Value::Map(Map::new())).unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
        // Bad enum shapes.
        assert!(from_value::<Kind>(Value::from("Nope")).is_err());
        assert!(from_value::<Kind>(Value::from("Newtype")).is_err());
        assert!(from_value::<Kind>(Value::Int(1)).is_err());
        let two = Value::from_json_str(r#"{"Unit":null,"Newtype":1}"#).unwrap();
        assert!(from_value::<Kind>(two).is_err());
        assert_eq!(
            from_value::<Kind>(Value::from_json_str(r#"{"Unit":null}"#).unwrap()).unwrap(),
            Kind::Unit
        );
        // Too many elements for a tuple.
        assert!(from_value::<(u8,)>(Value::from(vec![1, 2])).is_err());
    }

    #[test]
    fn map_keys() {
        let m: HashMap<i32, bool> = HashMap::from([(-1, true), (2, false)]);
        let v = to_value(&m).unwrap();
        assert_eq!(v["-1"], Value::Bool(true));
        assert_eq!(from_value::<HashMap<i32, bool>>(v).unwrap(), m);
        let b: BTreeMap<bool, char> = BTreeMap::from([(true, 'c')]);
        let v = to_value(&b).unwrap();
        assert_eq!(v["true"], Value::from("c"));
        assert_eq!(from_value::<BTreeMap<bool, char>>(v).unwrap(), b);
        let c: BTreeMap<char, u8> = BTreeMap::from([('k', 1)]);
        assert_eq!(
            from_value::<BTreeMap<char, u8>>(to_value(&c).unwrap()).unwrap(),
            c
        );
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        enum Key {
            A,
        }
        let e = BTreeMap::from([(Key::A, 1u8)]);
        assert_eq!(from_value::<BTreeMap<Key, u8>>(to_value(&e).unwrap()).unwrap(), e);

        let err = to_value(&vec![(vec![1u8], 2u8)].into_iter().collect::<BTreeMap<_, _>>()).unwrap_err();
        assert!(matches!(err, ValueError::InvalidKey(_)));
        assert!(err.to_string().contains("map key must be a string"));
        let mut floats = HashMap::new();
        floats.insert(FloatKey(1.5), 1);
        assert!(matches!(
            to_value(&floats),
            Err(ValueError::InvalidKey("a float"))
        ));
        assert!(from_value::<HashMap<u8, u8>>(Value::from_json_str(r#"{"x":1}"#).unwrap()).is_err());
    }

    #[derive(PartialEq)]
    struct FloatKey(f64);
    impl Eq for FloatKey {}
    impl std::hash::Hash for FloatKey {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            self.0.to_bits().hash(state);
        }
    }
    impl Serialize for FloatKey {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_f64(self.0)
        }
    }

    /// A byte buffer that uses serialize_bytes / deserialize_byte_buf.
    #[derive(Debug, PartialEq)]
    struct Buf(Vec<u8>);
    impl Serialize for Buf {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
    impl<'de> Deserialize<'de> for Buf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_byte_buf(BytesVisitor).map(Buf)
        }
    }

    #[test]
    fn bytes() {
        let v = to_value(&Buf(vec![1, 2, 3])).unwrap();
        assert_eq!(v, Value::Bytes(vec![1, 2, 3]));
        assert_eq!(from_value::<Buf>(v.clone()).unwrap(), Buf(vec![1, 2, 3]));
        assert_eq!(from_value::<Vec<u8>>(v).unwrap(), vec![1, 2, 3]);
        assert_eq!(
            from_value::<Buf>(Value::from(vec![4u8, 5])).unwrap(),
            Buf(vec![4, 5])
        );
        assert_eq!(from_value::<Buf>(Value::from("hi")).unwrap(), Buf(b"hi".to_vec()));
        let err = from_value::<Buf>(Value::from(vec![256])).unwrap_err();
        assert!(err.to_string().contains("256"), "{err}");
        assert!(from_value::<Buf>(Value::from(vec![Value::from("a")])).is_err());
        assert!(from_value::<Buf>(Value::Int(1)).is_err());
        // Value::Bytes through serde_json: an array, read back as a list of ints.
        let text = serde_json::to_string(&Value::Bytes(vec![1, 2])).unwrap();
        assert_eq!(text, "[1,2]");
    }

    #[test]
    fn ignored_any_and_into_deserializer() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Small {
            name: String,
        }
        let v = to_value(&record()).unwrap();
        assert_eq!(from_value::<Small>(v.clone()).unwrap().name, "dev");
        let ignored: de::IgnoredAny = from_value(v.clone()).unwrap();
        let _ = ignored;
        let de = v.clone().into_deserializer();
        let back = Record::deserialize(de).unwrap();
        assert_eq!(back, record());
        // Struct from a list (like serde_json).
        #[derive(Debug, PartialEq, Deserialize)]
        struct P {
            x: i32,
            y: i32,
        }
        assert_eq!(
            from_value::<P>(Value::from(vec![1, 2])).unwrap(),
            P { x: 1, y: 2 }
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(Value::from(true), Value::Bool(true));
        assert_eq!(Value::from(-1i8), Value::Int(-1));
        assert_eq!(Value::from(-2i16), Value::Int(-2));
        assert_eq!(Value::from(-3i32), Value::Int(-3));
        assert_eq!(Value::from(-4i64), Value::Int(-4));
        assert_eq!(Value::from(-5isize), Value::Int(-5));
        assert_eq!(Value::from(1u8), Value::Int(1));
        assert_eq!(Value::from(2u16), Value::Int(2));
        assert_eq!(Value::from(3u32), Value::Int(3));
        assert_eq!(Value::from(i64::MAX as u64), Value::Int(i64::MAX));
        assert_eq!(Value::from(i64::MAX as u64 + 1), Value::UInt(1 << 63));
        assert_eq!(Value::from(usize::MAX), Value::from(usize::MAX as u64));
        assert_eq!(Value::from(4usize), Value::Int(4));
        assert_eq!(Value::from(0.5f32), Value::Float(0.5));
        assert_eq!(Value::from(0.25f64), Value::Float(0.25));
        assert_eq!(Value::from("s"), Value::String("s".into()));
        assert_eq!(Value::from(String::from("t")), Value::String("t".into()));
        assert_eq!(Value::from(()), Value::Null);
        assert_eq!(
            Value::from(vec![1, 2]),
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(Value::from(None::<i32>), Value::Null);
        assert_eq!(Value::from(Some("x")), Value::from("x"));
        let bt = BTreeMap::from([("k".to_string(), 1)]);
        assert_eq!(Value::from(bt)["k"], Value::Int(1));
        let hm = HashMap::from([("k".to_string(), vec![true])]);
        assert_eq!(Value::from(hm)["k"][0], Value::Bool(true));
        let list: Value = (0..3).map(Value::from).collect();
        assert_eq!(list, Value::from(vec![0, 1, 2]));
        let map: Value = [("a".to_string(), Value::Null)].into_iter().collect();
        assert_eq!(map.as_map().unwrap().len(), 1);
        assert_eq!(Value::default(), Value::Null);
    }

    #[test]
    fn accessors() {
        let mut v = sample();
        assert!(v["null"].is_null());
        assert!(v["absent"].is_null());
        assert!(!v["t"].is_null());
        assert_eq!(v["t"].as_bool(), Some(true));
        assert_eq!(v["i"].as_bool(), None);
        assert_eq!(v["i"].as_i64(), Some(i64::MIN));
        assert_eq!(v["u"].as_i64(), None);
        assert_eq!(v["u"].as_u64(), Some(u64::MAX));
        assert_eq!(v["i"].as_u64(), None);
        assert_eq!(Value::Int(7).as_u64(), Some(7));
        assert_eq!(v["f"].as_f64(), Some(-2.5));
        assert_eq!(Value::Int(2).as_f64(), Some(2.0));
        assert_eq!(Value::UInt(1 << 63).as_f64(), Some(9_223_372_036_854_775_808.0));
        assert_eq!(v["s"].as_f64(), None);
        assert_eq!(v["s"].as_str(), Some("héllo"));
        assert_eq!(v["f"].as_str(), None);
        assert_eq!(v["l"][1]["bytes"].as_bytes(), Some(&[0u8, 1, 255][..]));
        assert_eq!(v["s"].as_bytes(), None);
        assert_eq!(v["l"].as_list().map(<[Value]>::len), Some(3));
        assert_eq!(v["s"].as_list(), None);
        assert!(v.as_map().is_some());
        assert!(v["l"].as_map().is_none());
        assert_eq!(v.get("t"), Some(&Value::Bool(true)));
        assert_eq!(v.get("zzz"), None);
        assert_eq!(v["l"].get("t"), None);
        assert_eq!(v["l"].get_index(0), Some(&Value::Int(1)));
        assert_eq!(v["l"].get_index(9), None);
        assert_eq!(v.get_index(0), None);
        assert!(v["l"][99].is_null());
        assert!(v[0].is_null());
        v.as_map_mut()
            .unwrap()
            .get_mut("l")
            .and_then(Value::as_list_mut)
            .unwrap()
            .push(Value::from(9));
        assert_eq!(v["l"][3], Value::Int(9));
        assert!(Value::Null.as_list_mut().is_none());
        assert!(Value::Null.as_map_mut().is_none());
        let names: Vec<&str> = [
            Value::Null,
            Value::Bool(true),
            Value::Int(1),
            Value::UInt(u64::MAX),
            Value::Float(1.0),
            Value::from(""),
            Value::Bytes(vec![]),
            Value::List(vec![]),
            Value::Map(Map::new()),
        ]
        .iter()
        .map(Value::type_name)
        .collect();
        assert_eq!(
            names,
            [
                "null", "bool", "int", "int", "float", "string", "bytes", "list", "map"
            ]
        );
    }

    // ---- property tests ----

    fn finite_f64() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("finite", |f| f.is_finite())
    }

    /// Floats with short exact decimal forms (exact through JSON text without float_roundtrip).
    fn short_f64() -> impl Strategy<Value = f64> {
        (any::<i32>(), 0..10i32).prop_map(|(m, e)| f64::from(m) / 2f64.powi(e))
    }

    fn arb_value(bytes: bool, float: BoxedStrategy<f64>) -> impl Strategy<Value = Value> {
        let bytes_strategy = if bytes {
            proptest::collection::vec(any::<u8>(), 0..16)
                .prop_map(Value::Bytes)
                .boxed()
        } else {
            Just(Value::Null).boxed()
        };
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Value::UInt),
            float.prop_map(Value::Float),
            ".{0,12}".prop_map(Value::String),
            bytes_strategy,
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                proptest::collection::btree_map(".{0,8}", inner, 0..6).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn prop_bincode_round_trip(v in arb_value(true, finite_f64().boxed())) {
            prop_assert_eq!(bincode_round_trip(&v), v);
        }

        #[test]
        fn prop_typed_round_trip(v in arb_value(true, finite_f64().boxed())) {
            prop_assert_eq!(&to_value(&v).unwrap(), &v);
            prop_assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
        }

        #[test]
        fn prop_json_value_round_trip(v in arb_value(false, finite_f64().boxed())) {
            let j = serde_json::Value::from(v.clone());
            prop_assert_eq!(Value::from(j.clone()), v.clone());
            prop_assert_eq!(serde_json::Value::from(Value::from(j.clone())), j);
            prop_assert_eq!(serde_json::to_value(&v).unwrap(), serde_json::Value::from(v));
        }

        #[test]
        fn prop_json_text_round_trip(v in arb_value(false, short_f64().boxed())) {
            let text = v.to_json_string();
            prop_assert_eq!(Value::from_json_str(&text).unwrap(), v.clone());
            let j: serde_json::Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(Value::from(j), v);
        }
    }
}
