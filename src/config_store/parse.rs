//! [`ConfigType`] and [`parse`]: from the raw text of a configuration to its [`Value`].
//!
//! As VOLTTRON's `process_raw_config`:
//! * `json`: comments stripped (`//`, `#`, `/* */`), then parsed; the result must be a list or
//!   an object.
//! * `csv`: the first row is the header; every further row becomes a map from header to cell
//!   (a `csv.DictReader`). A short row gets `null` for its missing cells (DictReader's
//!   `restval`); a row longer than the header is an error (DictReader would file the extra
//!   cells under a `None` key, which JSON cannot express). Blank lines are skipped.
//! * `raw`: the text itself, as a string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::comments::strip_comments;
use crate::core::value::{Map, Value};

/// The declared type of a configuration, stored as `"json"`, `"csv"` or `"raw"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigType {
    /// JSON (comments allowed), a list or an object.
    Json,
    /// CSV with a header row, parsed to a list of maps.
    Csv,
    /// Text kept as a string.
    Raw,
}

impl ConfigType {
    /// `"json"`, `"csv"` or `"raw"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigType::Json => "json",
            ConfigType::Csv => "csv",
            ConfigType::Raw => "raw",
        }
    }
}

impl fmt::Display for ConfigType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration type other than `json`, `csv` or `raw` (VOLTTRON's "Unsupported
/// configuration type").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported configuration type {0:?} (expected \"json\", \"csv\" or \"raw\")")]
pub struct UnknownConfigType(pub String);

impl FromStr for ConfigType {
    type Err = UnknownConfigType;

    /// Exactly `"json"`, `"csv"` or `"raw"`, as VOLTTRON compares them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(ConfigType::Json),
            "csv" => Ok(ConfigType::Csv),
            "raw" => Ok(ConfigType::Raw),
            _ => Err(UnknownConfigType(s.to_owned())),
        }
    }
}

/// Why configuration data does not parse as its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Invalid JSON. Line and column (1-based, column in bytes) refer to the original text,
    /// comments included.
    #[error("line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected or found.
        message: String,
    },
    /// Valid JSON that is neither a list nor an object.
    #[error("a json configuration must be a list or an object, found {found}")]
    NotListOrMap {
        /// The type found ([`Value::type_name`]: `"string"`, `"int"`, ...).
        found: &'static str,
    },
    /// Invalid CSV.
    #[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Csv {
        /// 1-based line, where known.
        line: Option<u64>,
        /// What is wrong.
        message: String,
    },
}

/// Parses the raw text of a configuration of type `config_type`.
///
/// # Errors
///
/// [`ParseError`] describing the first problem; never panics.
pub fn parse(config_type: ConfigType, data: &str) -> Result<Value, ParseError> {
    match config_type {
        ConfigType::Raw => Ok(Value::String(data.to_owned())),
        ConfigType::Json => parse_json(data),
        ConfigType::Csv => parse_csv(data),
    }
}

fn parse_json(data: &str) -> Result<Value, ParseError> {
    let stripped = strip_comments(data);
    let value: Value = serde_json::from_str(&stripped).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        ParseError::Json {
            line,
            column,
            message,
        }
    })?;
    match value {
        Value::List(_) | Value::Map(_) => Ok(value),
        other => Err(ParseError::NotListOrMap {
            found: other.type_name(),
        }),
    }
}

fn parse_csv(data: &str) -> Result<Value, ParseError> {
    let csv_error = |e: csv::Error| ParseError::Csv {
        line: e.position().map(|p| p.line()),
        message: e.to_string(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(data.as_bytes());
    let header = reader.headers().map_err(csv_error)?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        if record.len() > header.len() {
            return Err(ParseError::Csv {
                line: record.position().map(|p| p.line()),
                message: format!(
                    "row has {} fields but the header has {}",
                    record.len(),
                    header.len()
                ),
            });
        }
        let row: Map = header
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let cell = record.get(i).map_or(Value::Null, |c| Value::String(c.to_owned()));
                (column.to_owned(), cell)
            })
            .collect();
        rows.push(Value::Map(row));
    }
    Ok(Value::List(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Value {
        Value::from_json_str(text).unwrap()
    }

    #[test]
    fn config_type_text_forms() {
        for t in [ConfigType::Json, ConfigType::Csv, ConfigType::Raw] {
            assert_eq!(t.to_string().parse::<ConfigType>().unwrap(), t);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        assert!("JSON".parse::<ConfigType>().is_err());
        assert!("yaml".parse::<ConfigType>().is_err());
    }

    #[test]
    fn json_with_comments_parses() {
        let text =
            "# header\n{\n  \"a\": [1, 2.5, \"x # y\"], // trailing\n  /* gone */ \"b\": {\"c\": null}\n}\n";
        assert_eq!(
            parse(ConfigType::Json, text).unwrap(),
            json(r#"{"a":[1,2.5,"x # y"],"b":{"c":null}}"#)
        );
        assert_eq!(parse(ConfigType::Json, "[1, 2] // list").unwrap(), json("[1,2]"));
    }

    #[test]
    fn json_must_be_list_or_map() {
        for (text, found) in [
            ("1", "int"),
            ("2.5", "float"),
            ("\"s\"", "string"),
            ("null", "null"),
            ("true", "bool"),
        ] {
            match parse(ConfigType::Json, text) {
                Err(ParseError::NotListOrMap { found: f }) => assert_eq!(f, found, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn json_errors_point_into_the_original_text() {
        let text = "{\n  // a comment with é\n  \"a\": 1,\n  \"b\": oops\n}";
        match parse(ConfigType::Json, text) {
            Err(ParseError::Json {
                line,
                column,
                message,
            }) => {
                assert_eq!(line, 4);
                assert_eq!(column, 8);
                assert!(message.contains("expected value"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(ConfigType::Json, ""),
            Err(ParseError::Json { .. })
        ));
        assert!(matches!(
            parse(ConfigType::Json, "[1] /* open"),
            Err(ParseError::Json { .. })
        ));
        let e = parse(ConfigType::Json, "{\"a\": }").unwrap_err().to_string();
        assert!(e.starts_with("line 1, column 7: "), "{e}");
    }

    #[test]
    fn csv_becomes_a_list_of_maps() {
        let text = "Point Name,Units,Writable\nzat,degF,FALSE\n\"a, quoted\",\"multi\nline\",TRUE\n\nshort\n";
        let value = parse(ConfigType::Csv, text).unwrap();
        assert_eq!(
            value,
            json(
                r#"[{"Point Name":"zat","Units":"degF","Writable":"FALSE"},
                    {"Point Name":"a, quoted","Units":"multi\nline","Writable":"TRUE"},
                    {"Point Name":"short","Units":null,"Writable":null}]"#
            )
        );
        assert_eq!(parse(ConfigType::Csv, "").unwrap(), json("[]"));
        assert_eq!(parse(ConfigType::Csv, "a,b\r\n").unwrap(), json("[]"));
        assert_eq!(
            parse(ConfigType::Csv, "a,b\r\n1,2\r\n").unwrap(),
            json(r#"[{"a":"1","b":"2"}]"#)
        );
        match parse(ConfigType::Csv, "a,b\n1,2\n1,2,3\n") {
            Err(ParseError::Csv {
                line: Some(3),
                message,
            }) => assert!(message.contains("3 fields"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn raw_is_kept_verbatim() {
        let text = "anything { not json\n# at all";
        assert_eq!(parse(ConfigType::Raw, text).unwrap(), Value::String(text.into()));
    }
}
