//! Values in Modbus registers: a [`DataType`] and the [`ByteOrder`] / [`WordOrder`] a
//! device stores it in, to and from 16-bit words.
//!
//! A value of N registers is laid out as VOLTTRON's Modbus driver reads it: the registers'
//! bytes in the order the device sent them (each register big-endian on the wire), the
//! registers reversed first when the word order is little (`Mixed Endian`), and the bytes
//! then read as one number in the byte order (`>` or `<` of a struct format). For a 32-bit
//! value whose bytes are `A B C D` (most significant first):
//!
//! | byte order | word order | registers on the wire |
//! |------------|------------|-----------------------|
//! | big | big | `AB CD` |
//! | big | little | `CD AB` |
//! | little | big | `DC BA` |
//! | little | little | `BA DC` |
//!
//! A [`Scale`] multiplies what is read and divides what is written (modbus_tk's
//! `scale(m)`: a float is published; integers written through it are rounded to the
//! nearest), or does so truncating to integers both ways (`scale_int(m)`, as modbus_tk's
//! `int()`). A multiplier below 1 whose inverse is a whole number (`0.1`, `0.01`) divides
//! by that number instead, so 734 × `0.1` reads 73.4, not 73.40000000000001.

use crate::core::Value;

/// The type of a point's value in the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// One coil or discrete input.
    Bool,
    /// One register, unsigned.
    U16,
    /// One register, two's complement.
    I16,
    /// Two registers, unsigned.
    U32,
    /// Two registers, two's complement.
    I32,
    /// Four registers, unsigned.
    U64,
    /// Four registers, two's complement.
    I64,
    /// Two registers, IEEE 754 single precision.
    F32,
    /// Four registers, IEEE 754 double precision.
    F64,
}

/// The order of the bytes of a value (after [`WordOrder`] is applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ByteOrder {
    /// Most significant byte first (`>`): Modbus's own order.
    #[default]
    Big,
    /// Least significant byte first (`<`).
    Little,
}

/// The order of the registers of a multi-register value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WordOrder {
    /// Most significant register first.
    #[default]
    Big,
    /// Least significant register first (VOLTTRON's `Mixed Endian`).
    Little,
}

/// A multiplier between the device's raw value and the published one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// The multiplier (not zero, finite).
    pub multiplier: f64,
    /// Whether both directions truncate to integers (`scale_int`).
    pub integer: bool,
}

impl Scale {
    /// The published value of raw value `raw`.
    pub fn read(self, raw: f64) -> Value {
        let inverse = 1.0 / self.multiplier;
        let x = if self.multiplier.abs() < 1.0 && (inverse - inverse.round()).abs() < 1e-9 {
            raw / inverse.round()
        } else {
            raw * self.multiplier
        };
        match self.integer {
            true => Value::Int(x.trunc() as i64),
            false => Value::Float(x),
        }
    }

    /// The raw value to write for published value `x`.
    fn write(self, x: f64) -> f64 {
        let raw = x / self.multiplier;
        match self.integer {
            true => raw.trunc(),
            false => raw,
        }
    }
}

/// How one point's value is stored: its type, orders and scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encoding {
    /// The stored type.
    pub data_type: DataType,
    /// Its byte order.
    pub byte_order: ByteOrder,
    /// Its word order.
    pub word_order: WordOrder,
    /// The multiplier applied to what is read, if any.
    pub scale: Option<Scale>,
}

impl DataType {
    /// The number of registers (or bits, for [`DataType::Bool`]) the value takes.
    pub fn width(self) -> u16 {
        match self {
            DataType::Bool | DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
        }
    }

    /// The type by its modbus_tk or pymodbus name (`uint16`, `int32`, `float`, `double`,
    /// `bool`, ...: any case), or by a one-value struct format of VOLTTRON's `Modbus Register`
    /// (`>f`, `<H`, `BOOL`). Struct formats carry their byte order.
    pub fn parse(text: &str) -> Result<(DataType, Option<ByteOrder>), String> {
        let lower = text.trim().to_ascii_lowercase();
        let named = match lower.as_str() {
            "bool" | "boolean" | "bit" | "bits" => Some(DataType::Bool),
            "uint16" | "ushort" | "word" => Some(DataType::U16),
            "int16" | "short" => Some(DataType::I16),
            "uint32" | "uint" | "ulong" | "dword" => Some(DataType::U32),
            "int32" | "int" | "long" => Some(DataType::I32),
            "uint64" | "ulonglong" => Some(DataType::U64),
            "int64" | "longlong" => Some(DataType::I64),
            "float" | "float32" | "real" => Some(DataType::F32),
            "double" | "float64" | "lreal" => Some(DataType::F64),
            _ => None,
        };
        if let Some(data_type) = named {
            return Ok((data_type, None));
        }
        Self::parse_struct(text.trim())
    }

    fn parse_struct(text: &str) -> Result<(DataType, Option<ByteOrder>), String> {
        let unknown = || {
            format!(
                "{text:?} is not a type: use bool, int16, uint16, int32, uint32, int64, uint64, float or double, or a struct format such as >f, >H, <i, BOOL"
            )
        };
        let mut chars = text.chars();
        let order = match chars.next() {
            Some('>' | '!') => ByteOrder::Big,
            Some('<') => ByteOrder::Little,
            Some('=' | '@') => {
                return Err(format!(
                    "{text:?}: a native-order struct format depends on the machine; write >{} (Modbus's big-endian) or <{}",
                    &text[1..],
                    &text[1..]
                ));
            }
            Some(c) if c.is_ascii_alphabetic() && text.len() == 1 => {
                return Err(format!(
                    "{text:?}: a struct format without a byte order is native-order in Python; write >{text} (Modbus's big-endian) or <{text}"
                ));
            }
            _ => return Err(unknown()),
        };
        let code = chars.as_str();
        let data_type = match code {
            "h" => DataType::I16,
            "H" => DataType::U16,
            "i" | "l" => DataType::I32,
            "I" | "L" => DataType::U32,
            "q" => DataType::I64,
            "Q" => DataType::U64,
            "f" => DataType::F32,
            "d" => DataType::F64,
            "?" | "b" | "B" | "c" | "x" => {
                return Err(format!(
                    "{text:?} is one byte, not a whole register; use BOOL for a coil or discrete input, >H or >h for a register"
                ));
            }
            _ => return Err(unknown()),
        };
        Ok((data_type, Some(order)))
    }

    /// Whether values of this type are integers.
    pub fn is_integer(self) -> bool {
        !matches!(self, DataType::Bool | DataType::F32 | DataType::F64)
    }

    /// The inclusive range of an integer type, as `i128`.
    fn integer_range(self) -> (i128, i128) {
        match self {
            DataType::U16 => (0, u16::MAX.into()),
            DataType::I16 => (i16::MIN.into(), i16::MAX.into()),
            DataType::U32 => (0, u32::MAX.into()),
            DataType::I32 => (i32::MIN.into(), i32::MAX.into()),
            DataType::U64 => (0, u64::MAX.into()),
            DataType::I64 => (i64::MIN.into(), i64::MAX.into()),
            DataType::Bool | DataType::F32 | DataType::F64 => (0, 0),
        }
    }

    /// Its name in error messages and docs.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::U16 => "uint16",
            DataType::I16 => "int16",
            DataType::U32 => "uint32",
            DataType::I32 => "int32",
            DataType::U64 => "uint64",
            DataType::I64 => "int64",
            DataType::F32 => "float",
            DataType::F64 => "double",
        }
    }
}

impl Encoding {
    /// The bytes of a value, most significant first, from its registers as the device
    /// sent them.
    fn value_bytes(&self, words: &[u16]) -> Vec<u8> {
        let mut ordered: Vec<u16> = words.to_vec();
        if self.word_order == WordOrder::Little {
            ordered.reverse();
        }
        let mut bytes: Vec<u8> = ordered.iter().flat_map(|w| w.to_be_bytes()).collect();
        if self.byte_order == ByteOrder::Little {
            bytes.reverse();
        }
        bytes
    }

    /// The registers to send for a value whose bytes are `bytes`, most significant first.
    fn words_of(&self, mut bytes: Vec<u8>) -> Vec<u16> {
        if self.byte_order == ByteOrder::Little {
            bytes.reverse();
        }
        let mut words: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect();
        if self.word_order == WordOrder::Little {
            words.reverse();
        }
        words
    }

    /// The published value of a register value: `words` are exactly
    /// [`DataType::width`] registers.
    pub fn decode(&self, words: &[u16]) -> Value {
        debug_assert_eq!(words.len(), usize::from(self.data_type.width()));
        let b = self.value_bytes(words);
        let raw: Value = match self.data_type {
            DataType::Bool => Value::Bool(words[0] != 0),
            DataType::U16 => u16::from_be_bytes([b[0], b[1]]).into(),
            DataType::I16 => i16::from_be_bytes([b[0], b[1]]).into(),
            DataType::U32 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]).into(),
            DataType::I32 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]).into(),
            DataType::F32 => f32::from_be_bytes([b[0], b[1], b[2], b[3]]).into(),
            DataType::U64 => u64::from_be_bytes(eight(&b)).into(),
            DataType::I64 => i64::from_be_bytes(eight(&b)).into(),
            DataType::F64 => f64::from_be_bytes(eight(&b)).into(),
        };
        match (self.scale, raw.as_f64()) {
            (Some(scale), Some(x)) => scale.read(x),
            _ => raw,
        }
    }

    /// The registers to write for `value`, or why it cannot be written: not a number (or
    /// boolean), not an integer for an integer type, or out of the type's range once
    /// divided by the scale.
    pub fn encode(&self, value: &Value) -> Result<Vec<u16>, String> {
        let data_type = self.data_type;
        if data_type == DataType::Bool {
            return boolean(value).map(|b| vec![u16::from(b)]);
        }
        let number = Number::of(value)?;
        let number = match self.scale {
            Some(scale) => Number::Float(scale.write(number.as_f64())),
            None => number,
        };
        let bytes = match data_type {
            DataType::F32 => {
                let x = number.as_f64();
                if x.is_finite() && x.abs() > f64::from(f32::MAX) {
                    return Err(format!("{x} is out of range for a float"));
                }
                (x as f32).to_be_bytes().to_vec()
            }
            DataType::F64 => number.as_f64().to_be_bytes().to_vec(),
            _ => {
                let n = match (number, self.scale) {
                    (Number::Int(i), _) => i,
                    (Number::Float(x), Some(_)) if x.is_finite() => x.round() as i128,
                    (Number::Float(x), None) if x.is_finite() && x.fract() == 0.0 => x as i128,
                    (Number::Float(x), _) => {
                        return Err(format!("{x} is not an integer ({} point)", data_type.name()));
                    }
                };
                let (min, max) = data_type.integer_range();
                if !(min..=max).contains(&n) {
                    let scaled = if self.scale.is_some() { " once scaled" } else { "" };
                    return Err(format!(
                        "{n}{scaled} is out of range for {} ({min}..={max})",
                        data_type.name()
                    ));
                }
                // In range, so the casts below are exact.
                match data_type {
                    DataType::U16 => (n as u16).to_be_bytes().to_vec(),
                    DataType::I16 => (n as i16).to_be_bytes().to_vec(),
                    DataType::U32 => (n as u32).to_be_bytes().to_vec(),
                    DataType::I32 => (n as i32).to_be_bytes().to_vec(),
                    DataType::U64 => (n as u64).to_be_bytes().to_vec(),
                    _ => (n as i64).to_be_bytes().to_vec(),
                }
            }
        };
        Ok(self.words_of(bytes))
    }
}

fn eight(b: &[u8]) -> [u8; 8] {
    [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// A number given to be written.
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn of(value: &Value) -> Result<Number, String> {
        match value {
            Value::Int(i) => Ok(Number::Int((*i).into())),
            Value::UInt(u) => Ok(Number::Int((*u).into())),
            Value::Float(x) => Ok(Number::Float(*x)),
            Value::Bool(b) => Ok(Number::Int((*b).into())),
            Value::String(s) => {
                let s = s.trim();
                s.parse::<i128>()
                    .map(Number::Int)
                    .or_else(|_| s.parse::<f64>().map(Number::Float))
                    .map_err(|_| format!("{s:?} is not a number"))
            }
            other => Err(format!("{other} is not a number")),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(x) => x,
        }
    }
}

fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Int(0) => Ok(false),
        Value::Int(1) => Ok(true),
        Value::Float(x) if *x == 0.0 => Ok(false),
        Value::Float(x) if *x == 1.0 => Ok(true),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "1" => Ok(true),
            "false" | "off" | "0" => Ok(false),
            _ => Err(format!("{s:?} is not a boolean")),
        },
        other => Err(format!("{other} is not a boolean (true, false, 1 or 0)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(data_type: DataType, byte_order: ByteOrder, word_order: WordOrder) -> Encoding {
        Encoding {
            data_type,
            byte_order,
            word_order,
            scale: None,
        }
    }

    #[test]
    fn the_four_orders_of_a_32_bit_value() {
        use ByteOrder as B;
        use WordOrder as W;
        let x = 0x0102_0304_u32;
        for (b, w, words) in [
            (B::Big, W::Big, [0x0102, 0x0304]),
            (B::Big, W::Little, [0x0304, 0x0102]),
            (B::Little, W::Big, [0x0403, 0x0201]),
            (B::Little, W::Little, [0x0201, 0x0403]),
        ] {
            let e = enc(DataType::U32, b, w);
            assert_eq!(e.encode(&Value::from(x)).unwrap(), words, "{b:?} {w:?}");
            assert_eq!(e.decode(&words), Value::from(x), "{b:?} {w:?}");
        }
    }

    #[test]
    fn types_round_trip() {
        for (t, v) in [
            (DataType::I16, Value::from(-2i16)),
            (DataType::I64, Value::from(i64::MIN)),
            (DataType::U64, Value::from(u64::MAX)),
            (DataType::F32, Value::from(1.5f32)),
            (DataType::F64, Value::from(-1e300)),
            (DataType::Bool, Value::Bool(true)),
        ] {
            let e = enc(t, ByteOrder::Big, WordOrder::Little);
            let words = e.encode(&v).unwrap();
            assert_eq!(words.len(), usize::from(t.width()));
            assert_eq!(e.decode(&words), v, "{t:?}");
        }
    }

    #[test]
    fn writes_are_range_checked_and_scaled_back() {
        let e = enc(DataType::U16, ByteOrder::Big, WordOrder::Big);
        assert!(e.encode(&Value::Int(65536)).unwrap_err().contains("out of range"));
        assert!(e.encode(&Value::Int(-1)).unwrap_err().contains("out of range"));
        assert!(
            e.encode(&Value::Float(1.5))
                .unwrap_err()
                .contains("not an integer")
        );
        assert!(e.encode(&"x".into()).unwrap_err().contains("not a number"));
        assert_eq!(e.encode(&Value::Float(7.0)).unwrap(), [7]);
        let scaled = Encoding {
            scale: Some(Scale {
                multiplier: 0.1,
                integer: false,
            }),
            ..e
        };
        assert_eq!(scaled.encode(&Value::Float(72.5)).unwrap(), [725]);
        assert_eq!(scaled.decode(&[734]), Value::Float(73.4));
        let truncated = Encoding {
            scale: Some(Scale {
                multiplier: 2.5,
                integer: true,
            }),
            ..e
        };
        assert_eq!(truncated.decode(&[3]), Value::Int(7));
        assert_eq!(truncated.encode(&Value::Int(9)).unwrap(), [3]);
        assert!(
            scaled
                .encode(&Value::Float(6553.6))
                .unwrap_err()
                .contains("once scaled")
        );
        let f = enc(DataType::F32, ByteOrder::Big, WordOrder::Big);
        assert!(f.encode(&Value::Float(1e39)).is_err());
    }

    #[test]
    fn type_names_and_struct_formats() {
        assert_eq!(DataType::parse("UINT32"), Ok((DataType::U32, None)));
        assert_eq!(DataType::parse(">f"), Ok((DataType::F32, Some(ByteOrder::Big))));
        assert_eq!(
            DataType::parse("<q"),
            Ok((DataType::I64, Some(ByteOrder::Little)))
        );
        assert_eq!(DataType::parse("BOOL"), Ok((DataType::Bool, None)));
        assert!(DataType::parse("H").unwrap_err().contains(">H"));
        assert!(DataType::parse(">B").unwrap_err().contains("one byte"));
        assert!(DataType::parse("string").unwrap_err().contains("not a type"));
    }
}
