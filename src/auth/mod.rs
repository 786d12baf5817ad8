//! Authentication and authorization: agent keys, the platform's key, known hosts, and
//! `authz.json` (roles, groups, capabilities, protected topics).

pub mod keys;
