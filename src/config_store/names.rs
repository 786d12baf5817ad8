//! Configuration names: trimmed like VOLTTRON's `strip_config_name`, compared case-insensitively.

use super::error::StoreError;

/// The characters VOLTTRON strips from both ends of a name: Python's `string.whitespace` plus
/// `\` and `/`.
fn is_strippable(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c' | '\\' | '/')
}

/// Strips whitespace, `\` and `/` from both ends of `name` (as VOLTTRON's `strip_config_name`).
pub(crate) fn strip(name: &str) -> &str {
    name.trim_matches(is_strippable)
}

/// The lookup key of an already stripped name: its lowercase form.
pub(crate) fn key(stripped: &str) -> String {
    stripped.to_lowercase()
}

/// Validates a configuration name and returns it as it is stored: without surrounding ASCII
/// whitespace, `\` and `/` (VOLTTRON's `strip_config_name`). Case is kept; lookups ignore it.
///
/// # Errors
///
/// [`StoreError::InvalidName`] if nothing is left.
pub fn normalize_name(name: &str) -> Result<&str, StoreError> {
    let stripped = strip(name);
    if stripped.is_empty() {
        return Err(StoreError::InvalidName {
            name: name.to_owned(),
            reason: "empty after removing surrounding whitespace and slashes",
        });
    }
    Ok(stripped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stripped_of_whitespace_and_slashes() {
        assert_eq!(normalize_name("  Config \n").unwrap(), "Config");
        assert_eq!(normalize_name("/devices/rtu1/").unwrap(), "devices/rtu1");
        assert_eq!(normalize_name("\\a b\t").unwrap(), "a b");
        for bad in ["", "   ", "//", "\t/\\ "] {
            assert!(
                matches!(normalize_name(bad), Err(StoreError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(key("DeViCe"), "device");
    }
}
