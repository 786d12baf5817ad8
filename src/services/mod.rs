//! The platform's own services, run as agents with VOLTTRON's identities under their own
//! `RestForOne` supervisor (started before, and stopped after, every user agent), on a
//! thread of their own so that a flood of user agents cannot starve them.
//!
//! | identity | service |
//! |----------|---------|
//! | `config.store` | [`config_store`]: per-agent configuration, persisted under the home (only with a home directory) |
//! | `platform.auth` | [`auth`]: pending keys, approved and denied peers, `authz.json` (only with auth on) |
//! | `control` | [`control`]: installed agents as child processes (only for platforms run by the `volttron` binary, or with `PlatformBuilder::control`) |
//! | `platform.health` | [`health`]: every peer's connection, last heartbeat and health |

pub mod auth;
pub mod config_store;
pub mod control;
pub mod health;

use std::path::Path;

use crate::platform::supervision::{ChildSpec, Strategy, Supervisor, SupervisorSpec};

/// Whether `identity` is one of the platform's services (they run on their own thread).
pub(crate) fn is_service(identity: &str) -> bool {
    [
        config_store::IDENTITY,
        health::IDENTITY,
        auth::IDENTITY,
        control::IDENTITY,
        // VOLTTRON 11's names for the same services (answered by the VIP listener).
        V11_CONFIG_STORE,
        V11_CONTROL,
    ]
    .contains(&identity)
}

/// VOLTTRON 11's identity for the configuration store (`config.store` here).
pub const V11_CONFIG_STORE: &str = "platform.config_store";

/// VOLTTRON 11's identity for the control service (`control` here).
pub const V11_CONTROL: &str = "platform.control";

/// The name VOLTTRON 11 gives `identity`: [`V11_CONFIG_STORE`] and [`V11_CONTROL`] for this
/// platform's store and control service (a VOLTTRON 11 `authz.json` names them so), else
/// `identity` itself.
pub(crate) fn volttron11_identity(identity: &str) -> &str {
    match identity {
        config_store::IDENTITY => V11_CONFIG_STORE,
        control::IDENTITY => V11_CONTROL,
        other => other,
    }
}

/// The services supervisor's name.
pub const SERVICES: &str = "platform.services";

/// The core services, in dependency order.
pub(crate) fn core_services(
    home: Option<&Path>,
    authority: Option<std::sync::Arc<crate::auth::Authority>>,
    control: Option<control::ControlConfig>,
) -> SupervisorSpec {
    let mut services = Supervisor::builder(SERVICES)
        .strategy(Strategy::RestForOne)
        .restart_limit(5, std::time::Duration::from_secs(60));
    if let Some(home) = home {
        let home = home.to_path_buf();
        services = services.child(ChildSpec::agent(config_store::IDENTITY, move || {
            config_store::ConfigStoreService::new(home.clone())
        }));
    }
    if let Some(authority) = authority {
        services = services.child(ChildSpec::agent(auth::IDENTITY, move || {
            auth::AuthService::new(authority.clone())
        }));
    }
    services = services.child(ChildSpec::agent(health::IDENTITY, health::HealthService::default));
    // Without the feature, `PlatformBuilder::start` refuses `control(true)` before this.
    #[cfg(feature = "control")]
    if let Some(config) = control {
        services = services.child(ChildSpec::agent(control::IDENTITY, move || {
            control::ControlService::new(config.clone())
        }));
    }
    #[cfg(not(feature = "control"))]
    let _ = control;
    services.build()
}
