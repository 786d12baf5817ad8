//! What a failed request answers: a status and a JSON body `{"error": message}`.
//!
//! | error | status |
//! |-------|--------|
//! | [`WebError::BadRequest`], malformed JSON | 400 |
//! | [`WebError::Unauthorized`] (no, bad or expired token; failed login) | 401 |
//! | [`WebError::Forbidden`] (a token without the capability) | 403 |
//! | [`WebError::NotFound`] | 404 |
//! | [`WebError::Conflict`] | 409 |
//! | [`WebError::TooLarge`] | 413 |
//! | an RPC error: unknown peer 404, bad arguments or unknown method 400 (VOLTTRON's), unauthorized 403, timeout 504, the agent's own error 500 | |

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::core::RpcError;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The request is not well formed.
    #[error("{0}")]
    BadRequest(String),
    /// No valid token.
    #[error("{0}")]
    Unauthorized(String),
    /// The token lacks a capability.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The resource exists.
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the limit.
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// An RPC to an agent failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// Something on the platform's side.
    #[error("{0}")]
    Internal(String),
}

impl WebError {
    /// A `403` for a missing capability.
    pub(crate) fn needs(capability: &str) -> WebError {
        WebError::Forbidden(format!("this needs the capability '{capability}'"))
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Rpc(e) => match e {
                RpcError::UnknownPeer { .. } => StatusCode::NOT_FOUND,
                RpcError::MethodNotFound { .. } | RpcError::InvalidParams { .. } => StatusCode::BAD_REQUEST,
                RpcError::Unauthorized { .. } => StatusCode::FORBIDDEN,
                RpcError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        if matches!(self, WebError::Unauthorized(_)) {
            r.insert_header(("WWW-Authenticate", "Bearer"));
        }
        r.json(serde_json::json!({"error": self.to_string()}))
    }
}
