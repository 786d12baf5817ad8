//! [`FederationService`]: the federation as a [`PlatformService`].
//!
//! | phase | what it does |
//! |-------|--------------|
//! | bind | checks the instance name, opens the backlog (`$VOLTTRON_HOME/federation/backlog.sqlite`), prepares the MQTT client (last will: this platform offline, retained) |
//! | start | attaches the link to the routing table (calls `on_platform`), runs the connection on the edge thread, starts `platform.federation` |
//! | stop | announces this platform offline (retained), disconnects, waits up to 3 s for that |

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::LastWill;
use rumqttc::v5::{AsyncClient, EventLoop, MqttOptions};

use crate::core::Identity;
use crate::mqtt::agent::{FederationAgent, IDENTITY};
use crate::mqtt::backlog::{BacklogConfig, KeepPolicy, PrefixPolicy};
use crate::mqtt::config::FederationConfig;
use crate::mqtt::link::Link;
use crate::mqtt::outbox::Outbox;
use crate::mqtt::{topics, wire};
use crate::platform::service::{BindContext, PlatformService, ServiceContext, ServiceError, ServiceStop};

const NAME: &str = "federation";

/// Requests the MQTT client queues before the link backlogs instead.
const CLIENT_QUEUE: usize = 10_000;

/// The federation service (see the [module docs](self) and [`crate::mqtt`]).
pub struct FederationService {
    config: FederationConfig,
    bound: Option<Bound>,
}

struct Bound {
    me: String,
    client: AsyncClient,
    events: EventLoop,
    outbox: Outbox,
}

impl FederationService {
    /// A service joining the federation `config` describes.
    pub fn new(config: FederationConfig) -> Self {
        FederationService { config, bound: None }
    }

    fn options(&self, me: &str) -> Result<MqttOptions, String> {
        let broker = &self.config.broker;
        let mut o = MqttOptions::new(format!("volttron-{me}"), broker.host.clone(), broker.port);
        o.set_keep_alive(self.config.keepalive);
        // The broker keeps this platform's subscriptions and QoS 1 messages for it while
        // it restarts (an hour; rumqttc does not subscribe again by itself).
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(3600));
        let max = u32::try_from(self.config.max_message_bytes + 64 * 1024).unwrap_or(u32::MAX);
        o.set_max_packet_size(Some(max));
        o.set_connection_timeout(5);
        o.set_request_channel_capacity(CLIENT_QUEUE);
        if let Some((user, password)) = &self.config.credentials {
            o.set_credentials(user.clone(), password.clone());
        }
        let offline = wire::status(
            me,
            &wire::Status {
                online: false,
                boot: 0,
                version: crate::platform::endpoint::PLATFORM_VERSION.into(),
                exports: self.config.export.clone(),
            },
        );
        o.set_last_will(LastWill::new(
            topics::status(me),
            offline,
            QoS::AtLeastOnce,
            true,
            None,
        ));
        if broker.tls {
            o.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
                Arc::new(self.tls()?),
            )));
        }
        Ok(o)
    }

    fn tls(&self) -> Result<rustls::ClientConfig, String> {
        let Some(ca) = &self.config.ca_file else {
            return Err("mqtts:// needs ca-file (the CA that signed the broker's certificate)".into());
        };
        let pem = std::fs::read(ca).map_err(|e| format!("ca-file {}: {e}", ca.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("ca-file {}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("ca-file {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("ca-file {}: no certificate in it", ca.display()));
        }
        #[allow(
            deprecated,
            reason = "ring, as the web service: no post-quantum key exchange, accepted"
        )]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }

    fn backlog_config(&self, ctx: &BindContext<'_>) -> Result<BacklogConfig, String> {
        let path = match (&self.config.backlog_path, ctx.home()) {
            (Some(p), _) => p.clone(),
            (None, Some(home)) => home.join("federation").join("backlog.sqlite"),
            (None, None) => {
                return Err("the platform has no home: set FederationConfig::backlog_path".into());
            }
        };
        Ok(BacklogConfig {
            path,
            max_messages: self.config.backlog_max_messages,
            max_bytes: self.config.backlog_max_bytes,
            policies: self.config.backlog_policies.clone(),
            default_policy: PrefixPolicy {
                prefix: String::new(),
                keep: KeepPolicy::DropOldest,
                priority: 0,
            },
        })
    }
}

/// `PlatformBuilder::federation(..)`: joins a federation when the platform starts (the
/// same as `.service(FederationService::new(config))`).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use volttron::mqtt::{FederationConfig, FederationExt};
/// let platform = volttron::Platform::builder()
///     .instance_name("site1")
///     .federation(
///         FederationConfig::new("mqtt://127.0.0.1:1883")?
///             .export(["devices/"])
///             .backlog_path("/var/lib/bms/federation.sqlite"),
///     )
///     .start()
///     .await?;
/// # let _ = platform; Ok(()) }
/// ```
pub trait FederationExt {
    /// Joins the federation `config` describes.
    fn federation(self, config: FederationConfig) -> Self;
}

impl FederationExt for crate::PlatformBuilder {
    fn federation(self, config: FederationConfig) -> Self {
        self.service(FederationService::new(config))
    }
}

impl PlatformService for FederationService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn bind(&mut self, ctx: &BindContext<'_>) -> Result<(), ServiceError> {
        let me = ctx.instance_name().to_owned();
        topics::check_instance_name(&me)
            .map_err(|e| ServiceError::new(NAME, format!("instance name {me:?}: {e}")))?;
        let options = self.options(&me).map_err(|e| ServiceError::new(NAME, e))?;
        let backlog = self.backlog_config(ctx).map_err(|e| ServiceError::new(NAME, e))?;
        let (client, events) = AsyncClient::new(options, CLIENT_QUEUE);
        let outbox = Outbox::open(client.clone(), backlog).map_err(|e| ServiceError::new(NAME, e))?;
        self.bound = Some(Bound {
            me,
            client,
            events,
            outbox,
        });
        Ok(())
    }

    fn addresses(&self) -> Vec<String> {
        vec![self.config.broker.to_string()]
    }

    fn start(self: Box<Self>, ctx: ServiceContext) -> Result<ServiceStop, ServiceError> {
        let bound = self
            .bound
            .ok_or_else(|| ServiceError::new(NAME, "started before it was bound"))?;
        let identity = Identity::new(IDENTITY).map_err(|e| ServiceError::new(NAME, e.to_string()))?;
        let link = Arc::new(Link::new(
            bound.me,
            self.config,
            bound.client,
            bound.outbox,
            ctx.trusted_endpoint(identity),
        ));
        let router = ctx.endpoint().router.clone();
        if router.external.set(Arc::new(link.clone())).is_err() {
            return Err(ServiceError::new(
                NAME,
                "another federation service runs on this platform",
            ));
        }
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let interest = router.remote_interest();
        let runner = link.clone();
        let events = bound.events;
        if !ctx.spawn(async move {
            runner.run(events, interest, stop_rx).await;
            let _ = done_tx.send(());
        }) {
            return Err(ServiceError::new(NAME, "the platform is stopping"));
        }
        ctx.spawn_agent(IDENTITY, FederationAgent { link })?;
        Ok(Box::new(move || {
            let _ = stop_tx.send(());
            let _ = done_rx.recv_timeout(Duration::from_secs(3));
        }))
    }
}
