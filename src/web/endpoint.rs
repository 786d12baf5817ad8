//! Endpoints that the host application (or the `volttron` binary, for `/metrics`) plugs
//! into the web service with [`WebService::endpoint`](super::WebService::endpoint): a `GET`
//! path answered by a function of the platform, with no agent in between.
//!
//! | request | answer |
//! |---------|--------|
//! | `GET path` (any query) | `200`, the function's content type and text (it is given the request's `Accept` header) |
//! | another method | `405` |
//!
//! Plugged endpoints answer without a token, like the `GET` routes of agents: put nothing
//! there that must stay private. A path the service answers itself wins over one plugged.

use std::future::Future;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::future::LocalBoxFuture;

use crate::platform::Platform;
use crate::web::state::WebState;

type Answer =
    Arc<dyn Fn(Platform, Option<String>) -> LocalBoxFuture<'static, (String, String)> + Send + Sync>;

/// One plugged endpoint.
#[derive(Clone)]
pub(crate) struct PluggedEndpoint {
    pub(crate) path: String,
    pub(crate) summary: String,
    answer: Answer,
}

impl PluggedEndpoint {
    pub(crate) fn new<F, Fut>(path: &str, summary: &str, answer: F) -> PluggedEndpoint
    where
        F: Fn(Platform, Option<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (String, String)> + 'static,
    {
        PluggedEndpoint {
            path: path.to_owned(),
            summary: summary.to_owned(),
            answer: Arc::new(move |platform, accept| Box::pin(answer(platform, accept))),
        }
    }

    /// Why `path` cannot be plugged, if it cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        let p = &self.path;
        if !p.starts_with('/') || p.contains(['{', '}', '?', '#', ' ']) || p.contains("//") {
            return Err(format!(
                "endpoint {p:?}: expected an absolute path without parameters, e.g. /metrics"
            ));
        }
        Ok(())
    }

    /// The actix handler.
    pub(crate) fn route(&self) -> actix_web::Route {
        let answer = self.answer.clone();
        web::get().to(move |state: web::Data<WebState>, req: HttpRequest| {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .map(str::to_owned);
            let fut = answer(state.platform.clone(), accept);
            async move {
                let (content_type, body) = fut.await;
                HttpResponse::Ok().content_type(content_type).body(body)
            }
        })
    }
}
