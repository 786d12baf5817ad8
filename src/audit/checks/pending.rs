//! Keys waiting for approval (a running platform's pending list).
//!
//! | condition | finding |
//! |-----------|---------|
//! | a peer tried to connect with a key nobody approved | medium, one per peer: an unknown party knows the address, or an agent is broken until someone decides |
//!
//! Only the running platform knows its pending peers: the `platform.audit` service reads
//! them from the authority, and `vctl audit` shows that service's report when a platform runs.

use crate::audit::report::{Check, Finding, Severity};
use crate::auth::pending::PendingPeer;

/// The findings about the pending `peers`.
pub(crate) fn check(peers: &[PendingPeer], out: &mut Vec<Finding>) {
    for peer in peers {
        out.push(Finding::new(
            Check::PendingKey,
            Severity::Medium,
            format!(
                "{:?} with key {} from {} is waiting for approval ({} attempt(s), {} .. {})",
                peer.identity,
                peer.public_key,
                peer.source,
                peer.attempts,
                peer.first_seen.to_rfc3339(),
                peer.last_seen.to_rfc3339()
            ),
            format!(
                "`vctl auth approve {}` if it is yours, else `vctl auth deny {}`",
                peer.identity, peer.public_key
            ),
        ));
    }
}
