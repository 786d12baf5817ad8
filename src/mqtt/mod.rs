//! Federation over an MQTT 5 broker (cargo feature `mqtt`, on in the binaries).
//!
//! | piece | what |
//! |-------|------|
//! | [`backlog`] | the crash-safe, bounded store-and-forward queue of outgoing publications while the broker is away |

pub mod backlog;
