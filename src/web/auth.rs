//! Logging in, as VOLTTRON 9's `/authenticate`, plus the status page's form login.
//!
//! | request | answer |
//! |---------|--------|
//! | `POST /authenticate` with `{"username","password"}` (JSON or a form) | `200 {"access_token","refresh_token"}`; a wrong user or password: `401 {"error":"Not Authorized"}` |
//! | `PUT /authenticate` with `Authorization: Bearer <refresh token>` | `200 {"access_token"}` with the user's current groups; `401` for a bad, expired or revoked refresh token or a removed user |
//! | `DELETE /authenticate` with `Authorization: Bearer <refresh or access token>` | `204`: the login and every token it issued end (VOLTTRON answers 501) |
//! | `POST /login` (a form: `username`, `password`) | `303` to `/` with an HttpOnly, SameSite=Strict `Bearer` cookie |
//! | `POST /logout` | `303` to `/`, the cookie cleared and its login ended |
//!
//! Each failed login from an address makes that address's next attempt wait longer (as the
//! bridge's failed handshakes do); password checks run on the blocking pool, never on an
//! arbiter thread.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::web::error::WebError;
use crate::web::state::{WebState, header_token};
use crate::web::token::{ACCESS, REFRESH};

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

fn source(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "web:unknown".into(), |a| format!("web:{}", a.ip()))
}

fn credentials(req: &HttpRequest, body: &[u8]) -> Result<Credentials, WebError> {
    let json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if json {
        serde_json::from_slice(body).map_err(|e| WebError::BadRequest(format!("malformed JSON: {e}")))
    } else {
        serde_urlencoded_like(body)
    }
}

/// `username=..&password=..` (a form).
fn serde_urlencoded_like(body: &[u8]) -> Result<Credentials, WebError> {
    let text = std::str::from_utf8(body).map_err(|_| WebError::BadRequest("the form is not UTF-8".into()))?;
    let form = crate::agent::route::WebRequest {
        query: text.to_owned(),
        ..Default::default()
    };
    Ok(Credentials {
        username: form.query_param("username").unwrap_or_default(),
        password: form.query_param("password").unwrap_or_default(),
    })
}

/// Checks a user's password (after the delay the address has earned): its groups.
async fn check_password(
    state: &web::Data<WebState>,
    req: &HttpRequest,
    c: Credentials,
) -> Result<(String, Vec<String>), WebError> {
    let from = source(req);
    let delay = state.login_delay(&from);
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    if c.username.is_empty() || c.password.is_empty() {
        state.login_failed(&from);
        return Err(WebError::Unauthorized("Not Authorized".into()));
    }
    let users = state.users()?;
    let name = c.username.clone();
    let verdict = web::block(move || users.verify(&c.username, &c.password))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    match verdict {
        Some(groups) => {
            state.login_succeeded(&from);
            Ok((name, groups))
        }
        None => {
            state.login_failed(&from);
            tracing::warn!(user = name.as_str(), source = from.as_str(), "web: failed login");
            Err(WebError::Unauthorized("Not Authorized".into()))
        }
    }
}

/// Checks the credentials of a login request (JSON or a form): the access and refresh
/// tokens of a new session.
async fn password_login(
    state: &web::Data<WebState>,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(String, String), WebError> {
    let c = credentials(req, body)?;
    let (user, groups) = check_password(state, req, c).await?;
    tracing::info!(user = user.as_str(), path = req.path(), "web: login");
    Ok(state.tokens.login(&user, &groups))
}

/// `POST /authenticate`.
pub(crate) async fn login(
    state: web::Data<WebState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (access, refresh) = password_login(&state, &req, &body).await?;
    Ok(tokens_response(
        serde_json::json!({"access_token": access, "refresh_token": refresh}),
    ))
}

/// `200` with tokens: never cached.
fn tokens_response(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

/// The OAuth2 password grant on a path of [`WebConfig::oauth2_token_path`](crate::web::WebConfig::oauth2_token_path).
pub(crate) async fn oauth2_token(
    state: web::Data<WebState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (access, refresh) = password_login(&state, &req, &body).await?;
    Ok(tokens_response(
        serde_json::json!({"access_token": access, "token_type": "bearer", "refresh_token": refresh}),
    ))
}

/// `PUT /authenticate`.
pub(crate) async fn refresh(state: web::Data<WebState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let token = header_token(&req).ok_or_else(|| {
        WebError::Unauthorized("send the refresh token as `Authorization: Bearer <token>`".into())
    })?;
    let claims = state
        .tokens
        .check(&token, REFRESH)
        .map_err(|e| WebError::Unauthorized(e.to_string()))?;
    let users = state.users()?;
    let Some(groups) = users.groups(&claims.sub) else {
        state.tokens.revoke_user(&claims.sub);
        return Err(WebError::Unauthorized(format!(
            "web user '{}' no longer exists",
            claims.sub
        )));
    };
    let access = state.tokens.refresh(&claims, groups);
    Ok(tokens_response(serde_json::json!({"access_token": access})))
}

/// `DELETE /authenticate`.
pub(crate) async fn revoke(state: web::Data<WebState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let token = header_token(&req)
        .ok_or_else(|| WebError::Unauthorized("send a token as `Authorization: Bearer <token>`".into()))?;
    let claims = state
        .tokens
        .check(&token, REFRESH)
        .or_else(|_| state.tokens.check(&token, ACCESS))
        .map_err(|e| WebError::Unauthorized(e.to_string()))?;
    state.tokens.revoke(&claims.sid);
    tracing::info!(user = claims.sub.as_str(), "web: logout");
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /login`: the status page's form.
pub(crate) async fn form_login(
    state: web::Data<WebState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let c = serde_urlencoded_like(&body)?;
    match check_password(&state, &req, c).await {
        Ok((user, groups)) => {
            let (access, _refresh) = state.tokens.login(&user, &groups);
            let cookie = Cookie::build("Bearer", access)
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(state.config.bind.https)
                .max_age(actix_web::cookie::time::Duration::seconds(
                    i64::try_from(state.config.access_lifetime.as_secs()).unwrap_or(i64::MAX),
                ))
                .finish();
            Ok(HttpResponse::SeeOther()
                .insert_header(("Location", "/"))
                .cookie(cookie)
                .finish())
        }
        Err(WebError::Unauthorized(_)) => Ok(HttpResponse::Unauthorized()
            .content_type(ContentType::html())
            .body(crate::web::status::login_page(Some(
                "Wrong user name or password.",
            )))),
        Err(e) => Err(e),
    }
}

/// `POST /logout`.
pub(crate) async fn form_logout(state: web::Data<WebState>, req: HttpRequest) -> HttpResponse {
    if let Some(c) = req.cookie("Bearer")
        && let Ok(claims) = state.tokens.check(c.value(), ACCESS)
    {
        state.tokens.revoke(&claims.sid);
    }
    let mut gone = Cookie::build("Bearer", "").path("/").finish();
    gone.make_removal();
    HttpResponse::SeeOther()
        .insert_header(("Location", "/"))
        .cookie(gone)
        .finish()
}
