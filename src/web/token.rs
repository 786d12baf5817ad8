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
    /// Tokens whose signature was checked, with their claims: a client sends the same
    /// access token with every request, and checking it again (base64, HMAC, two JSON
    /// parses) is most of a small request's cost. Times and the session are still checked
    /// on every use; at most [`VERIFIED_MAX`] entries.
    verified: Mutex<HashMap<String, Claims>>,
}

/// The most verified tokens remembered (about 0.5 KiB each).
const VERIFIED_MAX: usize = 1024;

pub(crate) const ACCESS: &str = "access_token";
pub(crate) const REFRESH: &str = "refresh_token";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Tokens {
    /// Tokens signed with `secret`. Fails only when the host application installed a
    /// `jsonwebtoken` provider that cannot sign or check HS256.
    pub(crate) fn new(secret: &[u8], access: Duration, refresh: Duration) -> Result<Tokens, String> {
        super::hs256::install();
        let tokens = Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access,
            refresh,
            sessions: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
        };
        let probe = tokens.claims("probe", &[], ACCESS, "probe", now());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &probe, &tokens.encoding)
            .and_then(|t| {
                let mut v = Validation::new(Algorithm::HS256);
                v.set_required_spec_claims(&["exp"]);
                jsonwebtoken::decode::<Claims>(&t, &tokens.decoding, &v)
            })
            .map_err(|e| format!("the installed jsonwebtoken provider cannot do HS256: {e}"))?;
        Ok(tokens)
    }

    fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_else(|e| unreachable!("HS256 signing was checked in Tokens::new: {e}"))
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
        let at = now();
        let known = self.verified.lock().get(token).cloned();
        let claims = match known {
            // As jsonwebtoken's validation with no leeway: expired once `exp` is past.
            Some(claims) if claims.exp < at => return Err(TokenError::Expired),
            Some(claims) if claims.nbf > at => {
                return Err(TokenError::Invalid("the token is not valid yet".into()));
            }
            Some(claims) => claims,
            None => {
                let claims = self.verify(token)?;
                let mut verified = self.verified.lock();
                if verified.len() >= VERIFIED_MAX {
                    verified.retain(|_, c| c.exp >= at);
                    if verified.len() >= VERIFIED_MAX {
                        verified.clear();
                    }
                }
                verified.insert(token.to_owned(), claims.clone());
                claims
            }
        };
        if claims.grant_type != kind {
            return Err(TokenError::WrongKind { expected: kind });
        }
        if !self.sessions.lock().contains_key(&claims.sid) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// The claims of `token` once its signature and times are checked.
    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            })
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
        Tokens::new(b"k", Duration::from_secs(900), Duration::from_secs(14400)).unwrap()
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
        let other = Tokens::new(b"other", Duration::from_secs(900), Duration::from_secs(900)).unwrap();
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

    #[test]
    fn remembered_tokens_still_expire_are_revoked_and_are_bounded() {
        let t = tokens();
        let (access, _) = t.login("ann", &[]);
        let mut claims = t.check(&access, ACCESS).unwrap();
        assert_eq!(t.verified.lock().len(), 1);
        // What was verified once is not trusted past its `exp` or before its `nbf`.
        claims.exp = now() - 1;
        t.verified.lock().insert(access.clone(), claims.clone());
        assert_eq!(t.check(&access, ACCESS), Err(TokenError::Expired));
        claims.exp = now() + 60;
        claims.nbf = now() + 30;
        t.verified.lock().insert(access.clone(), claims.clone());
        assert!(matches!(t.check(&access, ACCESS), Err(TokenError::Invalid(_))));
        claims.nbf = now();
        t.verified.lock().insert(access.clone(), claims.clone());
        assert!(t.check(&access, ACCESS).is_ok());
        assert!(t.revoke(&claims.sid));
        assert_eq!(t.check(&access, ACCESS), Err(TokenError::Revoked));
        for i in 0..VERIFIED_MAX + 10 {
            let (a, _) = t.login(&format!("u{i}"), &[]);
            t.check(&a, ACCESS).unwrap();
        }
        assert!(t.verified.lock().len() <= VERIFIED_MAX);
    }
}
