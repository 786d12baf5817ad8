//! JSON as Python's `json` module reads and writes it, over the raw bytes of a VIP frame.
//!
//! The VOLTTRON client JSON-encodes lists and dicts with `json.dumps` (`ensure_ascii`, so the
//! text is ASCII) and then latin-1 encodes the text; on receipt it latin-1 decodes **every**
//! frame and tries `json.loads`, keeping the string when that fails ([`decode_frame`]).
//! Python's JSON is wider than strict JSON, so `serde_json` cannot read it: this module has
//! its own small recursive-descent parser.
//!
//! Reading ([`parse`]):
//!
//! | input | [`Value`] |
//! |-------|-----------|
//! | `null`, `true`, `false` | `Null`, `Bool` |
//! | an integer that fits `i64` | `Int` |
//! | an integer in `i64::MAX+1 ..= u64::MAX` | `UInt` |
//! | a wider integer (Python `int`) | `Float`, the nearest `f64` (**lossy**; `±∞` beyond the `f64` range) |
//! | a number with a fraction or exponent, `-0.0` | `Float` (`1e400` is `∞`, as in Python) |
//! | `NaN`, `Infinity`, `-Infinity` | `Float` |
//! | a string | `String`; each byte that is not part of an escape is one latin-1 character (`0xE9` → `é`) |
//! | `\uXXXX` escapes | the character; a surrogate pair is combined, a lone surrogate becomes U+FFFD |
//! | an object | `Map`; a repeated key keeps its last value, as in Python |
//! | more than [`MAX_DEPTH`] nested arrays or objects | error (never a stack overflow) |
//! | a control character (below U+0020) inside a string | error, as Python's strict default |
//! | leading or trailing space, tab, CR, LF | skipped; anything else after the value is an error |
//!
//! Writing ([`to_vec`], [`write()`]) gives what `json.dumps(value, ensure_ascii=True)` reads back
//! as the same value:
//!
//! | [`Value`] | output |
//! |-----------|--------|
//! | `Int`, `UInt` | decimal |
//! | finite `Float` | the shortest text that reads back as the same `f64`, formatted like Python's `repr` (`10.0`, `0.0001`, `1e-05`, `1e+16`): always with `.` or an exponent, so it stays a float |
//! | `NaN`, `∞`, `-∞` | `NaN`, `Infinity`, `-Infinity` |
//! | `String` | `"…"`; `"` `\` and `\b\f\n\r\t` escaped, other characters below U+0020 and from U+007F as `\u00XX`, above the BMP as a surrogate pair: the output is ASCII |
//! | `Bytes` | an array of integers 0–255 |
//! | `Map` | an object, keys in the map's (sorted) order |
//!
//! Float text matches Python's byte for byte except in rare 17-digit ties, where Python rounds
//! the last digit half-even and Rust does not (`111659285584252.125` is `…252.12` in Python,
//! `…252.13` here); both texts read back as the same `f64`. (Checked against Python 3.11 on
//! 23,000 floats: 7 such ties, no other difference.)
//!
//! The output is compact (no spaces after `,` and `:`, unlike `json.dumps`' default); Python
//! reads both the same.

use std::fmt::Write as _;

use crate::core::{Map, Value};

/// How deeply arrays and objects may nest before [`parse`] gives up ([`JsonErrorKind::TooDeep`]).
pub(crate) const MAX_DEPTH: usize = 128;

/// Why [`parse`] rejected its input, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {kind}")]
pub(crate) struct JsonError {
    /// Offset into the input of the byte where parsing failed.
    pub(crate) offset: usize,
    /// What was wrong there.
    pub(crate) kind: JsonErrorKind,
}

/// What [`parse`] found wrong, in [`JsonError::kind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JsonErrorKind {
    /// The input ended inside a value (or was empty).
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// A byte that cannot start or continue the value expected there.
    #[error("unexpected byte 0x{0:02x}")]
    UnexpectedByte(u8),
    /// A number that does not follow the JSON grammar (`01`, `1.`, `.5`, `1e`, `-`).
    #[error("malformed number")]
    BadNumber,
    /// A backslash escape other than `\" \\ \/ \b \f \n \r \t \uXXXX`.
    #[error("invalid escape")]
    BadEscape,
    /// A raw control character (below U+0020) inside a string.
    #[error("control character 0x{0:02x} in a string")]
    ControlCharacter(u8),
    /// An object key that is not a string.
    #[error("object key is not a string")]
    KeyNotString,
    /// Arrays and objects nested more than [`MAX_DEPTH`] deep.
    #[error("nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    /// Something other than whitespace after the value.
    #[error("trailing data after the value")]
    TrailingData,
}

/// A string holds a character that latin-1 cannot encode (above U+00FF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("character {ch:?} at byte {offset} is not latin-1")]
pub(crate) struct NotLatin1 {
    /// The character.
    pub(crate) ch: char,
    /// Its byte offset in the (UTF-8) string.
    pub(crate) offset: usize,
}

// ---------------------------------------------------------------------------------------------
// latin-1
// ---------------------------------------------------------------------------------------------

/// Decodes latin-1: each byte becomes the character U+0000..=U+00FF of the same number. Total.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Encodes `s` as latin-1, one byte per character; a character above U+00FF is an error
/// (Python's `str.encode("latin-1")` raises there).
pub(crate) fn to_latin1(s: &str) -> Result<Vec<u8>, NotLatin1> {
    s.char_indices()
        .map(|(offset, ch)| u8::try_from(u32::from(ch)).map_err(|_| NotLatin1 { ch, offset }))
        .collect()
}

/// What the VOLTTRON client makes of a received frame: latin-1 decode, then `json.loads`,
/// keeping the string when that fails. So `123` is an `Int`, `1796586285.8733369081601` a
/// `Float`, `"x"` (with quotes) the string `x`, `connect.hello.0` and the empty frame strings.
pub(crate) fn decode_frame(bytes: &[u8]) -> Value {
    parse(bytes).unwrap_or_else(|_| Value::String(latin1(bytes)))
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Parses one JSON document, leniently like Python's `json.loads` (see the module docs).
/// Never panics, whatever the bytes.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut p = Parser { b: bytes, pos: 0 };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos < p.b.len() {
        return Err(p.err(JsonErrorKind::TrailingData));
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, kind: JsonErrorKind) -> JsonError {
        JsonError {
            offset: self.pos,
            kind,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// The error for the byte at `pos`: end of input or an unexpected byte.
    fn unexpected(&self) -> JsonError {
        match self.peek() {
            None => self.err(JsonErrorKind::UnexpectedEnd),
            Some(c) => self.err(JsonErrorKind::UnexpectedByte(c)),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `word` if the input continues with it.
    fn eat(&mut self, word: &[u8]) -> bool {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// One value; `depth` is the number of arrays and objects around it.
    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            None => Err(self.err(JsonErrorKind::UnexpectedEnd)),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => {
                let literals: [(&[u8], Value); 5] = [
                    (b"null", Value::Null),
                    (b"true", Value::Bool(true)),
                    (b"false", Value::Bool(false)),
                    (b"NaN", Value::Float(f64::NAN)),
                    (b"Infinity", Value::Float(f64::INFINITY)),
                ];
                for (word, v) in literals {
                    if self.eat(word) {
                        return Ok(v);
                    }
                }
                Err(self.unexpected())
            }
        }
    }

    fn enter(&self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            Err(self.err(JsonErrorKind::TooDeep))
        } else {
            Ok(())
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::List(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::List(items));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.enter(depth)?;
        self.pos += 1; // '{'
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Map(map));
        }
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'"') => {}
                None => return Err(self.err(JsonErrorKind::UnexpectedEnd)),
                Some(_) => return Err(self.err(JsonErrorKind::KeyNotString)),
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.unexpected());
            }
            self.pos += 1;
            self.skip_ws();
            let v = self.value(depth)?;
            map.insert(key, v);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Map(map));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// A string; `pos` is at the opening quote.
    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // '"'
        let mut s = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(JsonErrorKind::UnexpectedEnd));
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(s);
                }
                b'\\' => {
                    self.pos += 1;
                    self.escape(&mut s)?;
                }
                0..=0x1f => return Err(self.err(JsonErrorKind::ControlCharacter(c))),
                _ => {
                    s.push(char::from(c));
                    self.pos += 1;
                }
            }
        }
    }

    /// One escape; `pos` is just after the backslash.
    fn escape(&mut self, s: &mut String) -> Result<(), JsonError> {
        let Some(c) = self.peek() else {
            return Err(self.err(JsonErrorKind::UnexpectedEnd));
        };
        let simple = match c {
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'u' => None,
            _ => return Err(self.err(JsonErrorKind::BadEscape)),
        };
        self.pos += 1;
        if let Some(ch) = simple {
            s.push(ch);
            return Ok(());
        }
        let unit = self.hex4()?;
        let ch = match unit {
            0xD800..=0xDBFF => {
                // A high surrogate: combine with a following `\u` low surrogate, if any.
                let save = self.pos;
                if self.eat(b"\\u") {
                    match self.hex4()? {
                        low @ 0xDC00..=0xDFFF => {
                            let code =
                                0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                        }
                        _ => {
                            // Not a low surrogate: the high one stands alone, and the next
                            // escape is read on its own.
                            self.pos = save;
                            char::REPLACEMENT_CHARACTER
                        }
                    }
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            }
            // A lone low surrogate has no character; every other unit is one.
            _ => char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER),
        };
        s.push(ch);
        Ok(())
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Result<u16, JsonError> {
        let mut unit = 0u16;
        for _ in 0..4 {
            let Some(c) = self.peek() else {
                return Err(self.err(JsonErrorKind::UnexpectedEnd));
            };
            let digit = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(self.err(JsonErrorKind::BadEscape)),
            };
            unit = (unit << 4) | u16::from(digit);
            self.pos += 1;
        }
        Ok(unit)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A number, or `-Infinity`; `pos` is at `-` or a digit.
    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
            if self.eat(b"Infinity") {
                return Ok(Value::Float(f64::NEG_INFINITY));
            }
        }
        // Integer part: `0` or a nonzero digit and more digits. A `0` followed by digits is
        // the number 0 with trailing data, as in Python.
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err(JsonErrorKind::BadNumber)),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err(JsonErrorKind::BadNumber));
            }
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err(JsonErrorKind::BadNumber));
            }
            integer = false;
        }
        // The slice holds only ASCII `-+.eE0-9`.
        let text = std::str::from_utf8(&self.b[start..self.pos]).map_err(|_| JsonError {
            offset: start,
            kind: JsonErrorKind::BadNumber,
        })?;
        if integer {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Int(i));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Value::UInt(u));
            }
        }
        text.parse::<f64>().map(Value::Float).map_err(|_| JsonError {
            offset: start,
            kind: JsonErrorKind::BadNumber,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// `value` as JSON text that Python's `json.loads` reads back as the same value (see the
/// module docs). ASCII only.
pub(crate) fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

/// Appends `value` as JSON text to `out`, as [`to_vec`] does.
pub(crate) fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::UInt(u) => out.extend_from_slice(u.to_string().as_bytes()),
        Value::Float(f) => write_float(*f, out),
        Value::String(s) => write_string(s, out),
        Value::Bytes(bytes) => {
            out.push(b'[');
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b.to_string().as_bytes());
            }
            out.push(b']');
        }
        Value::List(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(v, out);
            }
            out.push(b']');
        }
        Value::Map(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write(v, out);
            }
            out.push(b'}');
        }
    }
}

/// A float as Python's `repr` writes it: the shortest digits that read back as `f` (Rust's
/// `{:e}` gives them), in positional notation when the decimal exponent is in `-5..16`,
/// else as `d.ddde±XX`.
fn write_float(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    let sci = format!("{f:e}"); // e.g. "-1.2345e-7", "1e300", "0e0"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut s = String::with_capacity(digits.len() + 8);
    if negative {
        s.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = usize::try_from(exp).unwrap_or(0) + 1;
            if digits.len() > int_len {
                s.push_str(&digits[..int_len]);
                s.push('.');
                s.push_str(&digits[int_len..]);
            } else {
                s.push_str(&digits);
                s.extend(std::iter::repeat_n('0', int_len - digits.len()));
                s.push_str(".0");
            }
        } else {
            s.push_str("0.");
            s.extend(std::iter::repeat_n('0', usize::try_from(-exp - 1).unwrap_or(0)));
            s.push_str(&digits);
        }
    } else {
        s.push_str(&digits[..1.min(digits.len())]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let _ = write!(s, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    }
    out.extend_from_slice(s.as_bytes());
}

/// A string as `json.dumps(ensure_ascii=True)` writes it.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(ch as u8),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Value {
        parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn text(v: &Value) -> String {
        String::from_utf8(to_vec(v)).expect("output is ASCII")
    }

    fn kind(s: &[u8]) -> JsonErrorKind {
        parse(s).expect_err("should not parse").kind
    }

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect())
    }

    #[test]
    fn scalars() {
        assert_eq!(p("null"), Value::Null);
        assert_eq!(p("true"), Value::Bool(true));
        assert_eq!(p("false"), Value::Bool(false));
        assert_eq!(p("0"), Value::Int(0));
        assert_eq!(p("-0"), Value::Int(0));
        assert_eq!(p("-12"), Value::Int(-12));
        assert_eq!(p("1.5"), Value::Float(1.5));
        assert_eq!(p("1e3"), Value::Float(1000.0));
        assert_eq!(p("1E+3"), Value::Float(1000.0));
        assert_eq!(p("25e-1"), Value::Float(2.5));
        assert_eq!(p(r#""abc""#), Value::from("abc"));
        assert!(matches!(p("-0.0"), Value::Float(f) if f == 0.0 && f.is_sign_negative()));
    }

    #[test]
    fn python_specials() {
        assert!(matches!(p("NaN"), Value::Float(f) if f.is_nan()));
        assert_eq!(p("Infinity"), Value::Float(f64::INFINITY));
        assert_eq!(p("-Infinity"), Value::Float(f64::NEG_INFINITY));
        assert_eq!(p("1e400"), Value::Float(f64::INFINITY));
        assert_eq!(
            p("[NaN,Infinity]").as_list().map(<[Value]>::len),
            Some(2),
            "inside containers too"
        );
        // Python rejects these too.
        assert_eq!(kind(b"+Infinity"), JsonErrorKind::UnexpectedByte(b'+'));
        assert_eq!(kind(b"-NaN"), JsonErrorKind::BadNumber);
        assert_eq!(kind(b"nan"), JsonErrorKind::UnexpectedByte(b'n'));
        assert_eq!(kind(b"Infinit"), JsonErrorKind::UnexpectedByte(b'I'));
    }

    #[test]
    fn integer_widths() {
        assert_eq!(p("9223372036854775807"), Value::Int(i64::MAX));
        assert_eq!(p("-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(p("9223372036854775808"), Value::UInt(1 << 63));
        assert_eq!(p("18446744073709551615"), Value::UInt(u64::MAX));
        // Wider than u64: the nearest float (lossy).
        assert_eq!(p("18446744073709551616"), Value::Float(18446744073709551616.0));
        assert_eq!(p("-9223372036854775809"), Value::Float(-9223372036854775808.0));
        assert_eq!(
            p("123456789012345678901234567890"),
            Value::Float(1.2345678901234568e29)
        );
        assert_eq!(p(&"9".repeat(400)), Value::Float(f64::INFINITY));
    }

    #[test]
    fn bad_numbers() {
        for s in ["-", "1.", ".5", "1e", "1e+", "-a", "1.e5"] {
            assert!(parse(s.as_bytes()).is_err(), "{s}");
        }
        assert_eq!(kind(b"01"), JsonErrorKind::TrailingData);
        assert_eq!(kind(b"1.x"), JsonErrorKind::BadNumber);
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            p(r#""a\"b\\c\/d\b\f\n\r\t""#),
            Value::from("a\"b\\c/d\u{8}\u{c}\n\r\t")
        );
        assert_eq!(p(r#""\u00e9\u00E9""#), Value::from("éé"));
        assert_eq!(p(r#""\ud83d\ude00""#), Value::from("😀"));
        // Lone surrogates: U+FFFD, and the text after them is kept.
        assert_eq!(p(r#""\ud800""#), Value::from("\u{fffd}"));
        assert_eq!(p(r#""\udc00x""#), Value::from("\u{fffd}x"));
        assert_eq!(p(r#""\ud800\u0041""#), Value::from("\u{fffd}A"));
        assert_eq!(p(r#""\ud800\ud800\udc00""#), Value::from("\u{fffd}\u{10000}"));
        assert_eq!(p(r#""\ud800\n""#), Value::from("\u{fffd}\n"));
        assert_eq!(kind(br#""\x""#), JsonErrorKind::BadEscape);
        assert_eq!(kind(br#""\u12g4""#), JsonErrorKind::BadEscape);
        assert_eq!(kind(br#""\u12"#), JsonErrorKind::UnexpectedEnd);
        assert_eq!(kind(br#""\ud800\u12"#), JsonErrorKind::UnexpectedEnd);
        assert_eq!(kind(br#""abc"#), JsonErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"\"a\nb\""), JsonErrorKind::ControlCharacter(b'\n'));
        assert_eq!(kind(b"\"a\x00b\""), JsonErrorKind::ControlCharacter(0));
        // DEL and latin-1 bytes are plain characters.
        assert_eq!(p("\"\x7f\""), Value::from("\u{7f}"));
    }

    #[test]
    fn latin1_bytes_in_strings() {
        assert_eq!(parse(b"\"caf\xe9\"").ok(), Some(Value::from("café")));
        assert_eq!(parse(b"\"\xff\x80\"").ok(), Some(Value::from("\u{ff}\u{80}")));
        // Outside a string a non-ASCII byte is an error.
        assert_eq!(kind(b"\xe9"), JsonErrorKind::UnexpectedByte(0xe9));
    }

    #[test]
    fn containers_and_whitespace() {
        assert_eq!(
            p(" \t\r\n{ \"a\" : [ 1 , 2.5 , \"x\" ] , \"b\" : { } , \"c\" : [ ] } \n"),
            map(&[
                (
                    "a",
                    Value::List(vec![Value::Int(1), Value::Float(2.5), Value::from("x")])
                ),
                ("b", map(&[])),
                ("c", Value::List(vec![])),
            ])
        );
        assert_eq!(
            p(r#"{"k":1,"k":2}"#),
            map(&[("k", Value::Int(2))]),
            "last key wins"
        );
        assert_eq!(kind(b"{1:2}"), JsonErrorKind::KeyNotString);
        assert_eq!(kind(b"[1,]"), JsonErrorKind::UnexpectedByte(b']'));
        assert_eq!(kind(b"[1 2]"), JsonErrorKind::UnexpectedByte(b'2'));
        assert_eq!(kind(b"{\"a\" 1}"), JsonErrorKind::UnexpectedByte(b'1'));
        assert_eq!(kind(b"{\"a\":1,}"), JsonErrorKind::KeyNotString);
        assert_eq!(kind(b"[1"), JsonErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"{"), JsonErrorKind::UnexpectedEnd);
        assert_eq!(kind(b""), JsonErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"   "), JsonErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"1 2"), JsonErrorKind::TrailingData);
        assert_eq!(
            kind(b"\x0b1"),
            JsonErrorKind::UnexpectedByte(0x0b),
            "only JSON whitespace"
        );
        assert_eq!(parse(b"[1,2] x").unwrap_err().offset, 6);
    }

    #[test]
    fn depth_limit() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(kind(nested(MAX_DEPTH + 1).as_bytes()), JsonErrorKind::TooDeep);
        let objects = format!(
            "{}1{}",
            "{\"a\":".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(kind(objects.as_bytes()), JsonErrorKind::TooDeep);
        // Far deeper than any stack: an error, not an overflow.
        assert_eq!(kind("[".repeat(1_000_000).as_bytes()), JsonErrorKind::TooDeep);
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            parse(b"[1,x]").unwrap_err().to_string(),
            "invalid JSON at byte 3: unexpected byte 0x78"
        );
        assert_eq!(
            parse(b"").unwrap_err().to_string(),
            "invalid JSON at byte 0: unexpected end of input"
        );
    }

    #[test]
    fn writes_floats_like_python_repr() {
        // Expected strings are Python 3.11's `json.dumps(x)`.
        let cases: [(f64, &str); 22] = [
            (10.0, "10.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (0.0000123, "1.23e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1e300, "1e+300"),
            (-1e-300, "-1e-300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1796586285.8733368, "1796586285.8733368"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, want) in cases {
            assert_eq!(text(&Value::Float(f)), want, "{f:e}");
        }
    }

    #[test]
    fn writes_ascii_strings() {
        assert_eq!(text(&Value::from("a\"b\\c")), r#""a\"b\\c""#);
        assert_eq!(text(&Value::from("\n\r\t\u{8}\u{c}")), r#""\n\r\t\b\f""#);
        assert_eq!(text(&Value::from("\u{1}\u{1f}\u{7f}")), r#""\u0001\u001f\u007f""#);
        assert_eq!(text(&Value::from("café")), r#""caf\u00e9""#);
        assert_eq!(text(&Value::from("€")), r#""\u20ac""#);
        assert_eq!(text(&Value::from("😀")), r#""\ud83d\ude00""#);
        assert_eq!(text(&Value::from("/")), r#""/""#);
    }

    #[test]
    fn writes_containers() {
        let v = map(&[
            (
                "b",
                Value::List(vec![Value::Null, Value::Bool(true), Value::Int(-3)]),
            ),
            ("a", Value::UInt(u64::MAX)),
            ("c", Value::Bytes(vec![0, 255, 7])),
            ("d", map(&[])),
        ]);
        assert_eq!(
            text(&v),
            r#"{"a":18446744073709551615,"b":[null,true,-3],"c":[0,255,7],"d":{}}"#
        );
        assert_eq!(text(&Value::Bytes(vec![])), "[]");
        assert_eq!(text(&Value::List(vec![])), "[]");
        let mut out = b"x".to_vec();
        write(&Value::Int(1), &mut out);
        assert_eq!(out, b"x1");
    }

    #[test]
    fn latin1_both_ways() {
        let all: Vec<u8> = (0..=255).collect();
        let s = latin1(&all);
        assert_eq!(s.chars().count(), 256);
        assert_eq!(s.chars().nth(0xe9), Some('é'));
        assert_eq!(to_latin1(&s), Ok(all));
        assert_eq!(to_latin1(""), Ok(vec![]));
        assert_eq!(to_latin1("aé€"), Err(NotLatin1 { ch: '€', offset: 3 }));
        assert_eq!(
            NotLatin1 { ch: '€', offset: 3 }.to_string(),
            "character '€' at byte 3 is not latin-1"
        );
    }

    #[test]
    fn decode_frame_typing_quirks() {
        assert_eq!(decode_frame(b""), Value::from(""));
        assert_eq!(decode_frame(b"123"), Value::Int(123));
        assert_eq!(decode_frame(b"true"), Value::Bool(true));
        assert_eq!(decode_frame(b"null"), Value::Null);
        assert_eq!(decode_frame(b"\"123\""), Value::from("123"));
        assert_eq!(
            decode_frame(b"1796586285.8733369081601"),
            Value::Float(1_796_586_285.873_336_8), // the nearest f64
        );
        assert_eq!(decode_frame(b"connect.hello.0"), Value::from("connect.hello.0"));
        assert_eq!(
            decode_frame(b"1.000000.-42.000000"),
            Value::from("1.000000.-42.000000")
        );
        assert_eq!(decode_frame(b"listener"), Value::from("listener"));
        assert_eq!(decode_frame(b"devices/caf\xe9"), Value::from("devices/café"));
        assert_eq!(decode_frame(b"\x01\x00\x00\x00"), Value::from("\u{1}\0\0\0"));
        assert_eq!(
            decode_frame(b"[1, 2]"),
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(decode_frame(b" 7 "), Value::Int(7));
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Value::UInt),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::Float),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                proptest::collection::btree_map(any::<String>(), inner, 0..6).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn prop_round_trip(v in arb_value()) {
            let bytes = to_vec(&v);
            prop_assert!(bytes.is_ascii());
            let back = parse(&bytes);
            prop_assert_eq!(back.as_ref(), Ok(&v), "{}", String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn prop_bytes_become_lists(b in proptest::collection::vec(any::<u8>(), 0..32)) {
            let back = parse(&to_vec(&Value::Bytes(b.clone())));
            let want = Value::List(b.into_iter().map(|x| Value::Int(i64::from(x))).collect());
            prop_assert_eq!(back, Ok(want));
        }

        #[test]
        fn prop_floats_stay_floats(f in any::<f64>()) {
            let back = parse(&to_vec(&Value::Float(f)));
            match back {
                Ok(Value::Float(g)) => prop_assert!(g.to_bits() == f.to_bits() || (f.is_nan() && g.is_nan())),
                other => prop_assert!(false, "{f:e} came back as {other:?}"),
            }
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = parse(&b) {
                // What parses writes back to text that parses to the same value (NaN aside:
                // compare the texts).
                let again = to_vec(&v);
                prop_assert_eq!(parse(&again).map(|w| to_vec(&w)), Ok(again));
            }
            let _ = decode_frame(&b);
        }

        #[test]
        fn prop_json_shaped_bytes_never_panic(s in r#"[\[\]{}",:0-9eE+\-.\\u tnrfalsNIiy]{0,40}"#) {
            let _ = parse(s.as_bytes());
        }

        #[test]
        fn prop_latin1_round_trip(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(to_latin1(&latin1(&b)), Ok(b));
        }
    }
}
