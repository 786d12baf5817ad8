//! Comment stripping for `json` configurations, after VOLTTRON's `jsonapi.strip_comments`.
//!
//! VOLTTRON removes `//` and `#` line comments (up to, not including, the end of the line) and
//! `/* ... */` block comments, and leaves text inside single- or double-quoted strings alone
//! (backslash escapes honoured). An unterminated block comment or string is left as it is, so
//! the JSON parser reports it.
//!
//! Unlike VOLTTRON, which deletes comments, every byte of a comment is replaced by a space
//! (newlines kept), so lines, columns and byte offsets in the stripped text are those of the
//! original and JSON errors point into the text the user wrote.

/// `text` with its comments blanked out (same length, same line breaks).
pub(crate) fn strip_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            quote @ (b'"' | b'\'') => {
                let end = string_end(b, i + 1, quote).unwrap_or(b.len());
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => match find(b, i + 2, b"*/") {
                Some(close) => {
                    blank(&mut out, &b[i..close + 2]);
                    i = close + 2;
                }
                None => {
                    out.push(b'/');
                    i += 1;
                }
            },
            b'#' => i = line_comment(b, i, &mut out),
            b'/' if b.get(i + 1) == Some(&b'/') => i = line_comment(b, i, &mut out),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Only whole comments (which start and end on ASCII bytes) were replaced byte for byte by
    // ASCII spaces, so `out` is still UTF-8; the fallback is never taken.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The index just past the quote closing a string whose body starts at `from`, if any.
fn string_end(b: &[u8], from: usize, quote: u8) -> Option<usize> {
    let mut j = from;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == quote => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Blanks a line comment starting at `start`; returns the index of the end of line.
fn line_comment(b: &[u8], start: usize, out: &mut Vec<u8>) -> usize {
    let end = b[start..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| start + p);
    blank(out, &b[start..end]);
    end
}

fn blank(out: &mut Vec<u8>, comment: &[u8]) {
    out.extend(
        comment
            .iter()
            .map(|&c| if c == b'\n' || c == b'\r' { c } else { b' ' }),
    );
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::strip_comments;

    #[test]
    fn strips_all_three_comment_kinds_and_keeps_positions() {
        let text = "{\n  # hash\n  \"a\": 1, // slash\n  /* block\n  é */ \"b\": 2\n}";
        let out = strip_comments(text);
        assert_eq!(out.len(), text.len());
        assert_eq!(out.lines().count(), text.lines().count());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1, "b": 2}));
        assert!(!out.contains("hash") && !out.contains("slash") && !out.contains("block"));
    }

    #[test]
    fn comment_markers_inside_strings_are_kept() {
        let text = r#"{"url": "http://x/#frag", 'q': "a \" // b", "c": "/* no */"} // yes"#;
        let out = strip_comments(text);
        assert!(out.contains(r#""http://x/#frag""#));
        assert!(out.contains(r#""a \" // b""#));
        assert!(out.contains(r#""/* no */""#));
        assert!(!out.contains("yes"));
    }

    #[test]
    fn unterminated_constructs_are_left_alone() {
        assert_eq!(strip_comments("[1] /* open"), "[1] /* open");
        assert_eq!(strip_comments("\"open // x"), "\"open // x");
        assert_eq!(strip_comments("a\\"), "a\\");
        assert_eq!(strip_comments("\"\\"), "\"\\");
    }
}
