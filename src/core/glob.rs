//! Shell-style wildcards, shared by configuration callbacks (Python's `fnmatch`),
//! `authz.json` argument restrictions and `vctl`'s agent selection.
//!
//! | syntax | matches | enabled by |
//! |---|---|---|
//! | `*` | any run of characters, also none | always |
//! | `?` | one character | always |
//! | `[abc]`, `[a-z]`, `[!abc]` | one character in (or, with `!`, not in) the set | [`Syntax::classes`] |
//! | `\*`, `\?`, `\\` | the character itself | [`Syntax::escapes`] |
//!
//! Matching is iterative with one backtrack point: linear in practice, no recursion.

/// Which optional syntax a pattern uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Syntax {
    /// `[...]` character sets.
    pub(crate) classes: bool,
    /// `\` makes the next character literal.
    pub(crate) escapes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    AnyOne,
    AnyRun,
    Class { negate: bool, ranges: Vec<(char, char)> },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == c,
            Token::AnyOne => true,
            Token::AnyRun => false,
            Token::Class { negate, ranges } => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negate,
        }
    }
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern`. An unclosed `[` is a literal `[`; a trailing `\` a literal `\`.
    pub(crate) fn new(pattern: &str, syntax: Syntax) -> Glob {
        let p: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < p.len() {
            let token = match p[i] {
                '*' => Token::AnyRun,
                '?' => Token::AnyOne,
                '\\' if syntax.escapes => {
                    i += 1;
                    Token::Char(p.get(i).copied().unwrap_or('\\'))
                }
                '[' if syntax.classes => match class(&p[i..]) {
                    Some((token, len)) => {
                        i += len;
                        tokens.push(token);
                        continue;
                    }
                    None => Token::Char('['),
                },
                c => Token::Char(c),
            };
            tokens.push(token);
            i += 1;
        }
        Glob { tokens }
    }

    /// Whether the pattern matches all of `text`.
    pub(crate) fn matches(&self, text: &str) -> bool {
        wildcard(&self.tokens, &text.chars().collect::<Vec<_>>())
    }

    /// Whether the pattern matches the start of `text` (as if it ended in `*`).
    pub(crate) fn matches_prefix(&self, text: &str) -> bool {
        let mut tokens = self.tokens.clone();
        tokens.push(Token::AnyRun);
        wildcard(&tokens, &text.chars().collect::<Vec<_>>())
    }
}

/// Parses `[...]` at the start of `p`: the token and how many characters it took. The
/// first character after `[` (or `[!`) belongs to the set even if it is `]`.
fn class(p: &[char]) -> Option<(Token, usize)> {
    let mut start = 1;
    let negate = p.get(1) == Some(&'!');
    if negate {
        start += 1;
    }
    let close = start + 1 + p.get(start + 1..)?.iter().position(|&c| c == ']')?;
    let set = &p[start..close];
    let mut ranges = Vec::new();
    let mut k = 0;
    while k < set.len() {
        if k + 2 < set.len() && set[k + 1] == '-' {
            ranges.push((set[k], set[k + 2]));
            k += 3;
        } else {
            ranges.push((set[k], set[k]));
            k += 1;
        }
    }
    Some((Token::Class { negate, ranges }, close + 1))
}

fn wildcard(tokens: &[Token], text: &[char]) -> bool {
    let (mut t, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < text.len() {
        match tokens.get(t) {
            Some(Token::AnyRun) => {
                star = Some((t, s));
                t += 1;
            }
            Some(token) if token.matches(text[s]) => {
                t += 1;
                s += 1;
            }
            _ => match star {
                Some((st, ss)) => {
                    t = st + 1;
                    s = ss + 1;
                    star = Some((st, ss + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Syntax = Syntax {
        classes: true,
        escapes: true,
    };

    #[test]
    fn wildcards_classes_and_escapes() {
        let m = |p: &str, t: &str| Glob::new(p, ALL).matches(t);
        assert!(m("*", "") && m("a*b*c", "axxbyyc") && !m("a*b*c", "axxbyy"));
        assert!(m("?", "é") && !m("?", "") && m("**x", "x"));
        assert!(m("rtu[0-9]", "rtu7") && !m("rtu[!0-9]", "rtu7") && m("[!]]", "a") && !m("[!]]", "]"));
        assert!(m("a[", "a[") && m(r"a\*", "a*") && !m(r"a\*", "ab"));
        let plain = Syntax::default();
        assert!(Glob::new("[ab]", plain).matches("[ab]") && Glob::new(r"a\b", plain).matches(r"a\b"));
        assert!(
            Glob::new("ab", plain).matches_prefix("abc") && !Glob::new("abc", plain).matches_prefix("ab")
        );
    }
}
