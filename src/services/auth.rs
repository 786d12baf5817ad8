//! The auth service (`platform.auth`).
