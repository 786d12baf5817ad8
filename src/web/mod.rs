//! The web service (feature `web`): VOLTTRON's `platform.web` over HTTP and WebSocket, on
//! actix-web running on the platform's own arbiters.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use volttron::web::{WebConfig, WebService};
//! let web = WebService::new(WebConfig::new("http://127.0.0.1:8080")?)
//!     .vip_address("tcp://192.0.2.10:22916");
//! let platform = volttron::Platform::builder()
//!     .home("/var/lib/volttron")
//!     .service(web) // or `.web(WebConfig::new(..)?)`
//!     .start()
//!     .await?;
//! # platform.shutdown().await; Ok(()) }
//! ```
//!
//! | route | what | module |
//! |-------|------|--------|
//! | `GET /discovery/` | `{"serverkey", "vip-address", "instance-name"}`, as VOLTTRON serves it | here |
//! | `POST`, `PUT`, `DELETE /authenticate` | log in (JWTs), refresh, log out | [`auth`] |
//! | `/vui/...` | VOLTTRON 9's REST API | [`vui`] |
//! | `POST /jsonrpc` | JSON-RPC 2.0 to agents, batches included | [`jsonrpc`] |
//! | `GET /ws` | WebSocket pub/sub | [`ws`] |
//! | `GET /` , `GET /status.json`, `POST /login`, `POST /logout` | the operators' status page | [`status`] |
//! | `GET /openapi.json` | the OpenAPI 3 document of every route | [`openapi`] |
//! | anything else | agents' routes and sockets, their files, `/static/` from `web-root-dir` | [`routes`] |
//!
//! | limit | answer |
//! |-------|--------|
//! | a body larger than [`WebConfig::max_body`] | `413`, before it is read when `Content-Length` says so |
//! | malformed JSON | `400` with a JSON (or JSON-RPC) error body |
//! | an unknown route | `404` |
//! | no token, or an expired or revoked one (auth on) | `401` |
//! | a token without the capability | `403` |
//! | a cross-site request | no CORS headers unless its origin is in `web-cors-origins` |
//!
//! Nothing changes without a token unless the platform runs with auth off (`--no-auth`).
//! Responses never carry secret keys or password hashes. The service installs no signal
//! handler and stops first at [`Platform::shutdown`](crate::Platform::shutdown): it closes
//! its sockets, then lets requests in flight finish (at most 2 s).

pub(crate) mod agent;
pub mod auth;
pub mod config;
mod endpoint;
pub mod error;
mod hs256;
pub mod jsonrpc;
pub mod openapi;
pub mod routes;
pub(crate) mod state;
pub mod status;
pub mod token;
pub mod users;
pub mod vui;
pub mod ws;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures::future::{Either, ready};

pub use config::{RpcAllowList, WebAddress, WebConfig, WebConfigError};
pub use error::WebError;
pub use state::{ADMIN, IDENTITY, VUI};
pub use token::{Claims, TokenError};
pub use users::{WebUser, WebUserError, WebUsers};

use crate::core::{Identity, Map, Value};
use crate::durable::{self, IfExists, Perms};
use crate::platform::service::{BindContext, PlatformService, ServiceContext, ServiceError, ServiceStop};
use state::WebState;

const NAME: &str = "web";

/// The web service, to plug into a platform with
/// [`PlatformBuilder::service`](crate::PlatformBuilder::service).
pub struct WebService {
    config: WebConfig,
    vip_address: Option<String>,
    endpoints: Vec<endpoint::PluggedEndpoint>,
    bound: Option<Bound>,
}

struct Bound {
    listener: std::net::TcpListener,
    tls: Option<rustls::ServerConfig>,
    secret: Vec<u8>,
    users_file: Option<PathBuf>,
    discovery: Value,
    address: String,
}

impl WebService {
    /// A web service with `config`.
    pub fn new(config: WebConfig) -> WebService {
        WebService {
            config,
            vip_address: None,
            endpoints: Vec::new(),
            bound: None,
        }
    }

    /// The VIP address `/discovery/` tells VOLTTRON's tools (`tcp://HOST:PORT`).
    pub fn vip_address(mut self, address: impl Into<String>) -> Self {
        self.vip_address = Some(address.into());
        self
    }

    /// Answers `GET path` with what `answer` makes of the platform and the request's
    /// `Accept` header: a content type and a body (how the `volttron` binary serves
    /// `/metrics`). Such an endpoint needs no token, like agents' `GET` routes; a path the
    /// service answers itself wins. A path that is not absolute, or has parameters, fails
    /// the platform's start.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use volttron::web::{WebConfig, WebService};
    /// let web = WebService::new(WebConfig::new("http://127.0.0.1:8080")?).endpoint(
    ///     "/peers.txt",
    ///     "the connected peers, one a line",
    ///     |platform, _accept| async move {
    ///         let text: String = platform.peers().iter().map(|p| format!("{p}\n")).collect();
    ///         ("text/plain; charset=utf-8".to_owned(), text)
    ///     },
    /// );
    /// # let _ = web; Ok(()) }
    /// ```
    pub fn endpoint<F, Fut>(mut self, path: &str, summary: &str, answer: F) -> Self
    where
        F: Fn(crate::Platform, Option<String>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = (String, String)> + 'static,
    {
        self.endpoints
            .push(endpoint::PluggedEndpoint::new(path, summary, answer));
        self
    }

    /// The address bound, once bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.bound.as_ref().and_then(|b| b.listener.local_addr().ok())
    }
}

impl crate::PlatformBuilder {
    /// Serves the web service with `config` (feature `web`): the same as
    /// `.service(WebService::new(config))`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use volttron::web::WebConfig;
    /// let platform = volttron::Platform::builder()
    ///     .home("/var/lib/volttron")
    ///     .web(WebConfig::new("http://127.0.0.1:8080")?)
    ///     .start()
    ///     .await?;
    /// # platform.shutdown().await; Ok(()) }
    /// ```
    pub fn web(self, config: WebConfig) -> Self {
        self.service(WebService::new(config))
    }
}

/// The file keeping the generated token key.
pub const SECRET_FILE: &str = "web-secret-key";

/// `web-secret-key`, or the one kept in the home (made once), or a fresh one for a
/// platform without a home.
fn secret(config: &WebConfig, home: Option<&Path>) -> Result<Vec<u8>, String> {
    if let Some(key) = &config.secret_key {
        return Ok(key.as_bytes().to_vec());
    }
    let Some(home) = home else {
        return Ok(token::random_secret().into_bytes());
    };
    let path = home.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let key = token::random_secret();
    durable::write(&path, key.as_bytes(), Perms::OwnerOnly, IfExists::Keep)
        .map_err(|e| format!("{}: {}", e.path.display(), e.source))?;
    // Another process may have written it first: use what is there.
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.trim().as_bytes().to_vec())
}

/// The TLS configuration of a certificate chain and key (PEM files).
fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let certs: Vec<_> = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let key_der = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| format!("{}: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key in the file", key.display()))?;
    #[allow(
        deprecated,
        reason = "ring builds without a C toolchain beyond cc; its lack of post-quantum key exchange is accepted"
    )]
    let provider = rustls::crypto::ring::default_provider();
    rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("{} / {}: {e}", cert.display(), key.display()))
}

impl PlatformService for WebService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn bind(&mut self, ctx: &BindContext<'_>) -> Result<(), ServiceError> {
        let fail = |m: String| ServiceError::new(NAME, m);
        for e in &self.endpoints {
            e.check().map_err(fail)?;
        }
        let tls = match &self.config.tls {
            Some((cert, key)) => Some(tls_config(cert, key).map_err(fail)?),
            None if self.config.bind.https => return Err(fail("https needs a certificate and a key".into())),
            None => None,
        };
        let secret = secret(&self.config, ctx.home()).map_err(fail)?;
        let listener = std::net::TcpListener::bind(self.config.bind.addr)
            .map_err(|e| fail(format!("cannot listen on {}: {e}", self.config.bind)))?;
        listener.set_nonblocking(true).map_err(|e| fail(e.to_string()))?;
        let local = listener.local_addr().map_err(|e| fail(e.to_string()))?;
        let address = WebAddress {
            https: self.config.bind.https,
            addr: local,
        }
        .to_string();
        let mut discovery = Map::new();
        discovery.insert("instance-name".into(), Value::from(ctx.instance_name()));
        discovery.insert(
            "serverkey".into(),
            Value::from(ctx.server_key().public.to_string()),
        );
        if let Some(vip) = &self.vip_address {
            discovery.insert("vip-address".into(), Value::from(vip.as_str()));
        }
        tracing::info!(address = address.as_str(), "web: listening");
        self.bound = Some(Bound {
            listener,
            tls,
            secret,
            users_file: ctx.home().map(users::WebUsers::path_in),
            discovery: Value::Map(discovery),
            address,
        });
        Ok(())
    }

    fn addresses(&self) -> Vec<String> {
        self.bound
            .as_ref()
            .map(|b| vec![b.address.clone()])
            .unwrap_or_default()
    }

    fn start(self: Box<Self>, ctx: ServiceContext) -> Result<ServiceStop, ServiceError> {
        let WebService {
            config,
            bound,
            endpoints,
            ..
        } = *self;
        let bound = bound.ok_or_else(|| ServiceError::new(NAME, "started before it was bound"))?;
        let identity = Identity::new(IDENTITY).expect("a valid identity");
        let tokens = token::Tokens::new(&bound.secret, config.access_lifetime, config.refresh_lifetime)
            .map_err(|e| ServiceError::new(NAME, e))?;
        let state = web::Data::new(WebState {
            platform: ctx.platform().clone(),
            endpoint: ctx.trusted_endpoint(identity),
            authority: ctx.authority().cloned(),
            tokens,
            users_file: bound.users_file,
            failures: Default::default(),
            routes: Default::default(),
            hub: Default::default(),
            discovery: bound.discovery,
            address: bound.address,
            endpoints,
            config,
        });
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let listener = bound.listener;
        let tls = bound.tls;
        let app_state = state.clone();
        let agent_state = Arc::new(state.clone());
        let started = ctx.spawn(async move {
            let server = {
                let factory = move || app(app_state.clone());
                let server = HttpServer::new(factory)
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(2);
                let server = match tls {
                    Some(tls) => server.listen_rustls_0_23(listener, tls),
                    None => server.listen(listener),
                };
                match server {
                    Ok(s) => s.run(),
                    Err(e) => {
                        tracing::error!("web: cannot serve: {e}");
                        let _ = handle_tx.send(None);
                        return;
                    }
                }
            };
            let _ = handle_tx.send(Some(server.handle()));
            if let Err(e) = server.await {
                tracing::error!("web: the server failed: {e}");
            }
        });
        ctx.spawn_agent(IDENTITY, agent::WebAgent { state: agent_state })?;
        if !started {
            return Err(ServiceError::new(NAME, "the platform is stopping"));
        }
        let handle = handle_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .ok()
            .flatten()
            .ok_or_else(|| ServiceError::new(NAME, "the HTTP server did not start"))?;
        let edge = ctx.edge.clone();
        Ok(Box::new(move || {
            state.hub.close_all();
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            edge.spawn(async move {
                handle.stop(true).await;
                let _ = done_tx.send(());
            });
            let _ = done_rx.recv_timeout(std::time::Duration::from_secs(5));
        }))
    }
}

/// The application: every route of the service (see the module docs).
fn app(
    state: web::Data<WebState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<EitherBody<actix_web::body::BoxBody>>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let max = state.config.max_body;
    let origins = state.config.cors_origins.clone();
    let endpoints = state.endpoints.clone();
    let token_paths = state.config.oauth2_token_paths.clone();
    App::new()
        .app_data(state)
        .app_data(web::PayloadConfig::new(max))
        .app_data(
            web::QueryConfig::default().error_handler(|e, _| WebError::BadRequest(e.to_string()).into()),
        )
        .app_data(web::PathConfig::default().error_handler(|e, _| WebError::BadRequest(e.to_string()).into()))
        .route("/", web::get().to(status::page))
        .route("/status.json", web::get().to(status::status_json))
        .route("/login", web::post().to(auth::form_login))
        .configure(move |cfg| {
            for path in &token_paths {
                cfg.route(path, web::post().to(auth::oauth2_token));
            }
        })
        .route("/logout", web::post().to(auth::form_logout))
        .route("/discovery/", web::get().to(discovery))
        .route("/openapi.json", web::get().to(openapi::serve))
        .service(
            web::resource("/authenticate")
                .route(web::post().to(auth::login))
                .route(web::put().to(auth::refresh))
                .route(web::delete().to(auth::revoke)),
        )
        .route("/jsonrpc", web::post().to(jsonrpc::handle))
        .route("/ws", web::get().to(ws::pubsub_socket))
        .route("/vui", web::get().to(vui::root))
        .route("/vui/", web::get().to(vui::root))
        .route("/vui/platforms", web::get().to(vui::platforms))
        .route("/vui/platforms/{p}", web::get().to(vui::platform_links))
        .route("/vui/platforms/{p}/status", web::get().to(vui::platform_status))
        .route("/vui/platforms/{p}/agents", web::get().to(vui::agents))
        .route("/vui/platforms/{p}/agents/{id}", web::get().to(vui::agent_links))
        .service(
            web::resource("/vui/platforms/{p}/agents/{id}/running")
                .route(web::get().to(vui::running))
                .route(web::put().to(vui::running))
                .route(web::delete().to(vui::running)),
        )
        .route(
            "/vui/platforms/{p}/agents/{id}/status",
            web::get().to(vui::agent_status),
        )
        .route(
            "/vui/platforms/{p}/agents/{id}/health",
            web::get().to(vui::agent_health),
        )
        .service(
            web::resource("/vui/platforms/{p}/agents/{id}/enabled")
                .route(web::get().to(vui::enabled))
                .route(web::put().to(vui::enabled))
                .route(web::delete().to(vui::enabled)),
        )
        .service(
            web::resource("/vui/platforms/{p}/agents/{id}/tag")
                .route(web::get().to(vui::tag))
                .route(web::put().to(vui::tag))
                .route(web::delete().to(vui::tag)),
        )
        .service(
            web::resource("/vui/platforms/{p}/agents/{id}/configs")
                .route(web::get().to(vui::configs))
                .route(web::post().to(vui::configs)),
        )
        .service(
            web::resource("/vui/platforms/{p}/agents/{id}/configs/{name}")
                .route(web::get().to(vui::config))
                .route(web::put().to(vui::config))
                .route(web::delete().to(vui::config)),
        )
        .route(
            "/vui/platforms/{p}/agents/{id}/rpc",
            web::get().to(vui::rpc_methods),
        )
        .service(
            web::resource("/vui/platforms/{p}/agents/{id}/rpc/{method}")
                .route(web::get().to(vui::rpc_call))
                .route(web::post().to(vui::rpc_call)),
        )
        .route("/vui/platforms/{p}/pubsub", web::get().to(vui::pubsub))
        .service(
            web::resource("/vui/platforms/{p}/pubsub/{topic:.*}")
                .route(web::get().to(vui::pubsub_topic))
                .route(web::put().to(vui::pubsub_topic)),
        )
        .configure(|cfg| {
            for e in &endpoints {
                cfg.route(&e.path, e.route());
            }
        })
        .default_service(web::to(routes::serve))
        .wrap_fn(move |req: ServiceRequest, srv| {
            let origin = req
                .headers()
                .get(header::ORIGIN)
                .and_then(|o| o.to_str().ok())
                .filter(|o| origins.iter().any(|a| a == o))
                .map(str::to_owned);
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > max) {
                let mut response = WebError::TooLarge(max).error_response_json();
                common_headers(response.headers_mut(), origin.as_deref());
                return Either::Left(ready(Ok(req.into_response(response).map_into_right_body())));
            }
            if origin.is_some() && req.method() == actix_web::http::Method::OPTIONS {
                let mut response = HttpResponse::NoContent().finish();
                common_headers(response.headers_mut(), origin.as_deref());
                return Either::Left(ready(Ok(req.into_response(response).map_into_right_body())));
            }
            let fut = srv.call(req);
            Either::Right(async move {
                let mut response = fut.await?;
                common_headers(response.headers_mut(), origin.as_deref());
                Ok(response.map_into_left_body())
            })
        })
}

/// The headers of every answer, the early ones (413, preflight) included.
fn common_headers(headers: &mut header::HeaderMap, origin: Option<&str>) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    cors_headers(headers, origin);
}

fn cors_headers(headers: &mut header::HeaderMap, origin: Option<&str>) {
    let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
}

impl WebError {
    fn error_response_json(&self) -> HttpResponse {
        actix_web::ResponseError::error_response(self)
    }
}

/// `GET /discovery/`.
async fn discovery(state: web::Data<WebState>, _req: HttpRequest) -> HttpResponse {
    HttpResponse::Ok().json(&state.discovery)
}
