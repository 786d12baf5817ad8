//! Access and refresh tokens: JWTs (HS256) with VOLTTRON 9's claims, plus a session id so
//! that a revoked login ends every token it issued at once.
//!
//! | claim | value |
//! |-------|-------|
//! | `groups` | the user's groups (capabilities), as VOLTTRON's |
//! | `iat`, `nbf`, `exp` | seconds since the epoch; `exp` 15 min (access) or 240 min (refresh) later by default |
//! | `grant_type` | `access_token` or `refresh_token`, as VOLTTRON's |
//! | `sub` | the user name (ours) |
//! | `sid` | the login session (ours): `DELETE /authenticate` ends it |
//!
//! Sessions live in memory: a restarted platform asks its users to log in again.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// Its groups (capabilities).
    pub groups: Vec<String>,
    /// Issued at.
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Expires at.
    pub exp: u64,
    /// `access_token` or `refresh_token`.
    pub grant_type: String,
    /// The login session.
    pub sid: String,
}

impl Claims {
    /// Whether the token carries `capability` (`admin` carries every one).
    pub fn has(&self, capability: &str) -> bool {
        self.groups.iter().any(|g| g == capability || g == "admin")
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this platform, or tampered with.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Past its `exp`.
    #[error("the token has expired")]
    Expired,
    /// An access token where a refresh token is needed, or the other way round.
    #[error("a {expected} is needed")]
    WrongKind {
        /// The kind needed.
        expected: &'static str,
    },
    /// Its login was revoked (or the platform restarted since).
    #[error("the login was revoked")]
    Revoked,
}

/// Issues and checks tokens.
pub(crate) struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    access: Duration,
    refresh: Duration,
    /// Live sessions: id → (user, expiry of the refresh token).
    sessions: Mutex<HashMap<String, (String, u64)>>,
}

pub(crate) const ACCESS: &str = "access_token";
pub(crate) const REFRESH: &str = "refresh_token";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Tokens {
    pub(crate) fn new(secret: &[u8], access: Duration, refresh: Duration) -> Tokens {
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access,
            refresh,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_else(|e| unreachable!("HS256 signing cannot fail: {e}"))
    }

    fn claims(&self, user: &str, groups: &[String], kind: &str, sid: &str, at: u64) -> Claims {
        let life = if kind == ACCESS { self.access } else { self.refresh };
        Claims {
            sub: user.to_owned(),
            groups: groups.to_vec(),
            iat: at,
            nbf: at,
            exp: at.saturating_add(life.as_secs()),
            grant_type: kind.to_owned(),
            sid: sid.to_owned(),
        }
    }

    /// A new login: `(access, refresh)`.
    pub(crate) fn login(&self, user: &str, groups: &[String]) -> (String, String) {
        let at = now();
        let sid = uuid::Uuid::new_v4().simple().to_string();
        let refresh = self.claims(user, groups, REFRESH, &sid, at);
        {
            let mut sessions = self.sessions.lock();
            sessions.retain(|_, (_, exp)| *exp >= at);
            sessions.insert(sid.clone(), (user.to_owned(), refresh.exp));
        }
        (
            self.sign(&self.claims(user, groups, ACCESS, &sid, at)),
            self.sign(&refresh),
        )
    }

    /// A fresh access token for a refresh token, with `groups` (the user's current ones).
    pub(crate) fn refresh(&self, refresh: &Claims, groups: &[String]) -> String {
        self.sign(&self.claims(&refresh.sub, groups, ACCESS, &refresh.sid, now()))
    }

    /// Checks `token` and that it is of kind `kind` and its session is live.
    pub(crate) fn check(&self, token: &str, kind: &'static str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid(e.to_string()),
        })?;
        let claims = data.claims;
        if claims.grant_type != kind {
            return Err(TokenError::WrongKind { expected: kind });
        }
        if !self.sessions.lock().contains_key(&claims.sid) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// Ends a session; true if it was live.
    pub(crate) fn revoke(&self, sid: &str) -> bool {
        self.sessions.lock().remove(sid).is_some()
    }

    /// Ends every session of `user` (removed from the users file).
    pub(crate) fn revoke_user(&self, user: &str) {
        self.sessions.lock().retain(|_, (u, _)| u != user);
    }
}

/// A fresh random key for HS256 (32 bytes, URL-safe base64).
pub(crate) fn random_secret() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    use base64::Engine;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(b"k", Duration::from_secs(900), Duration::from_secs(14400))
    }

    #[test]
    fn logins_refresh_and_revoke() {
        let t = tokens();
        let (access, refresh) = t.login("ann", &["vui".into()]);
        let a = t.check(&access, ACCESS).unwrap();
        assert_eq!(a.sub, "ann");
        assert!(a.has("vui") && !a.has("admin"));
        assert_eq!(a.exp - a.iat, 900);
        assert_eq!(
            t.check(&access, REFRESH),
            Err(TokenError::WrongKind { expected: REFRESH })
        );
        let r = t.check(&refresh, REFRESH).unwrap();
        let again = t.refresh(&r, &["vui".into(), "x".into()]);
        assert_eq!(t.check(&again, ACCESS).unwrap().groups, ["vui", "x"]);
        assert!(t.revoke(&r.sid));
        assert_eq!(t.check(&access, ACCESS), Err(TokenError::Revoked));
        assert_eq!(t.check(&again, ACCESS), Err(TokenError::Revoked));
    }

    #[test]
    fn foreign_expired_and_garbage_tokens_are_refused() {
        let t = tokens();
        let (access, _) = t.login("ann", &[]);
        let other = Tokens::new(b"other", Duration::from_secs(900), Duration::from_secs(900));
        assert!(matches!(
            other.check(&access, ACCESS),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(t.check("garbage", ACCESS), Err(TokenError::Invalid(_))));
        let sid = t.check(&access, ACCESS).unwrap().sid;
        let mut old = t.claims("ann", &[], ACCESS, &sid, now() - 2000);
        old.exp = now() - 1000;
        assert_eq!(t.check(&t.sign(&old), ACCESS), Err(TokenError::Expired));
        assert!(random_secret().len() >= 43);
    }
}
