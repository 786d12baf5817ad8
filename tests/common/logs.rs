//! The platform's JSON log (`volttron --log-format json`) read back by the `logs_*` tests:
//! every line parsed as one JSON object, and waits on a record against a deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::DEADLINE;

/// A script agent: one line on stdout, one error-looking line on stderr, then a `tick N`
/// line on stdout every 50 ms until stopped.
pub(crate) const TALKER: &str = "#!/bin/sh\ntrap 'exit 0' INT TERM\necho \"hello from $1\"\necho \"ERROR: trouble in $1\" >&2\ni=0\nwhile :; do i=$((i+1)); echo \"tick $i\"; sleep 0.05; done\n";

/// Every line of the JSON log at `path`; panics naming the line that is not one JSON
/// object (nothing half-written, nothing else in the file).
pub(crate) fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            assert!(value.is_object(), "not a JSON object: {line}");
            value
        })
        .collect()
}

/// Waits until the log at `path` has a record for which `f` holds; returns it.
pub(crate) fn wait_for_record(path: &Path, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        // A record being written may be cut at the end: read only whole lines.
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        if let Some(found) = whole
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|r| f(r))
        {
            return found;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no record {what} in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `record`'s `message` is `text`.
pub(crate) fn message_is(record: &Value, text: &str) -> bool {
    record["message"] == text
}
