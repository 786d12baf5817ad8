//! One file per family of checks; each pushes its `Finding`s.

pub(crate) mod agents;
pub(crate) mod authz;
pub(crate) mod exposure;
pub(crate) mod files;
pub(crate) mod known_hosts;
pub(crate) mod pending;
