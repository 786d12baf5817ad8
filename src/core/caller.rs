//! [`Caller`]: who sent the RPC request a handler is answering.
//!
//! VOLTTRON agents read `self.vip.rpc.context.vip_message.peer` for this (the actuator
//! agent checks that whoever sets a point holds the schedule). Here an `#[rpc]` method
//! asks for it with a parameter of type `Caller`, anywhere among its parameters; it is
//! filled from the request, is not an argument of the call, and is left out of the
//! method's `inspect` signature:
//!
//! ```
//! use volttron::prelude::*;
//!
//! struct Actuator {
//!     holder: Option<Identity>,
//! }
//!
//! #[volttron::agent]
//! impl Actuator {
//!     /// Reserves the device for the caller.
//!     #[rpc]
//!     fn reserve(&mut self, caller: Caller) -> bool {
//!         if self.holder.is_some() {
//!             return false;
//!         }
//!         self.holder = Some(caller.identity().clone());
//!         true
//!     }
//!
//!     /// Sets a point: only the holder may.
//!     #[rpc]
//!     fn set_point(&mut self, caller: Caller, point: String, value: f64) -> Result<(), String> {
//!         match &self.holder {
//!             Some(holder) if holder == caller.identity() => Ok(()),
//!             _ => Err(format!("'{caller}' does not hold the device; cannot set {point} to {value}")),
//!         }
//!     }
//! }
//! ```
//!
//! Through the bridge the platform passes the caller's identity along with the request,
//! so a bridged agent sees the same caller as an in-process one. A call from the
//! [`Platform`](crate::Platform) handle comes from the identity `platform`.

use std::fmt;
use std::ops::Deref;

use super::Identity;

/// The identity of the peer whose RPC request a handler is answering: see the [module
/// docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller(Identity);

impl Caller {
    /// The caller `identity`.
    pub fn new(identity: Identity) -> Caller {
        Caller(identity)
    }

    /// The caller's identity.
    pub fn identity(&self) -> &Identity {
        &self.0
    }

    /// The identity, owned.
    pub fn into_identity(self) -> Identity {
        self.0
    }
}

impl Deref for Caller {
    type Target = Identity;

    fn deref(&self) -> &Identity {
        &self.0
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
