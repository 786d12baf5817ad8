//! The platform's own services, run as agents with VOLTTRON's identities under their own
//! `RestForOne` supervisor (started before, and stopped after, every user agent).
//!
//! | identity | service |
//! |----------|---------|
//! | `platform.health` | [`health`]: every peer's connection, last heartbeat and health |

pub mod health;

use crate::platform::supervision::{ChildSpec, Strategy, Supervisor, SupervisorSpec};

/// The services supervisor's name.
pub const SERVICES: &str = "platform.services";

/// The core services, in dependency order.
pub(crate) fn core_services() -> SupervisorSpec {
    Supervisor::builder(SERVICES)
        .strategy(Strategy::RestForOne)
        .restart_limit(5, std::time::Duration::from_secs(60))
        .child(ChildSpec::agent(health::IDENTITY, health::HealthService::default))
        .build()
}
