//! Authentication and authorization: agent keys, the platform's key, known hosts, and
//! `authz.json` (roles, groups, capabilities, protected topics).

pub mod authz;
pub mod entries;
pub mod keys;
pub mod pending;

mod authority;
pub use authority::AuthError;
pub(crate) use authority::{Authority, KeyVerdict};
