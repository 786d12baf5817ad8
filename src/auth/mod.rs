//! Authentication and authorization: agent keys, the platform's key, known hosts, and
//! `authz.json` (roles, groups, capabilities, protected topics).

pub mod authz;
pub mod entries;
pub mod keys;
pub mod pending;

mod authority;
pub use authority::AuthError;
pub(crate) use authority::{Authority, KeyVerdict};

/// The first ```` ```json ```` block of a module's `//!` docs (tests check that the
/// documented examples parse).
#[cfg(test)]
pub(crate) fn doc_json_example(source: &str) -> String {
    source
        .split("//! ```json\n")
        .nth(1)
        .expect("a json example in the module docs")
        .split("//! ```\n")
        .next()
        .unwrap_or_default()
        .lines()
        .map(|l| l.strip_prefix("//!").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}
