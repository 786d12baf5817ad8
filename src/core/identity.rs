//! Peer identities (VOLTTRON's *VIP identity*).
//!
//! An identity names a peer on the bus: an agent (`listener`, `platform.driver`), a core
//! service, or an embedding application. VOLTTRON accepts identities matching
//! `^[A-Za-z0-9_.\-]+$`; so does this crate, and it also bounds the length so that a
//! hostile peer cannot make the router store megabytes of name.
//!
//! | input            | result                                   |
//! |------------------|------------------------------------------|
//! | `listener`       | ok                                       |
//! | `platform.driver`| ok                                       |
//! | `my-agent_2`     | ok                                       |
//! | `""`             | [`IdentityError::Empty`]                 |
//! | `bad id`         | [`IdentityError::InvalidCharacter`] (the space at 3) |
//! | 300 × `a`        | [`IdentityError::TooLong`]               |

use std::fmt;
use std::sync::Arc;

/// The longest identity accepted, in bytes.
pub const MAX_IDENTITY_LEN: usize = 256;

/// A validated peer identity. Cheap to clone (reference counted).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(Arc<str>);

/// Why a string is not a valid [`Identity`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The identity is the empty string.
    #[error("identity is empty")]
    Empty,
    /// The identity is longer than [`MAX_IDENTITY_LEN`].
    #[error("identity is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The identity holds a character outside `[A-Za-z0-9_.-]`.
    #[error(
        "identity {identity:?} has the character {character:?} at byte {position}; only A-Z, a-z, 0-9, '_', '.' and '-' are allowed"
    )]
    InvalidCharacter {
        /// The rejected input.
        identity: String,
        /// The first offending character.
        character: char,
        /// Its byte offset.
        position: usize,
    },
}

impl Identity {
    /// Validates `s` as a VIP identity.
    pub fn new(s: impl AsRef<str>) -> Result<Self, IdentityError> {
        let s = s.as_ref();
        validate(s)?;
        Ok(Identity(Arc::from(s)))
    }

    /// The identity as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate(s: &str) -> Result<(), IdentityError> {
    if s.is_empty() {
        return Err(IdentityError::Empty);
    }
    if s.len() > MAX_IDENTITY_LEN {
        return Err(IdentityError::TooLong {
            len: s.len(),
            max: MAX_IDENTITY_LEN,
        });
    }
    if let Some((position, character)) = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(IdentityError::InvalidCharacter {
            identity: s.to_owned(),
            character,
            position,
        });
    }
    Ok(())
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::ops::Deref for Identity {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Identity {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Identity {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Identity {
    type Error = IdentityError;
    fn try_from(s: &str) -> Result<Self, IdentityError> {
        Identity::new(s)
    }
}

impl TryFrom<String> for Identity {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, IdentityError> {
        validate(&s)?;
        Ok(Identity(Arc::from(s)))
    }
}

impl TryFrom<&String> for Identity {
    type Error = IdentityError;
    fn try_from(s: &String) -> Result<Self, IdentityError> {
        Identity::new(s)
    }
}

impl TryFrom<&Identity> for Identity {
    type Error = IdentityError;
    fn try_from(s: &Identity) -> Result<Self, IdentityError> {
        Ok(s.clone())
    }
}

impl std::str::FromStr for Identity {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, IdentityError> {
        Identity::new(s)
    }
}

impl PartialEq<str> for Identity {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Identity {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl serde::Serialize for Identity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Identity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Identity::try_from(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_volttron_identities() {
        for ok in [
            "listener",
            "platform.driver",
            "my-agent_2",
            "A",
            "control.connection",
        ] {
            assert_eq!(Identity::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_bad_identities() {
        assert_eq!(Identity::new(""), Err(IdentityError::Empty));
        match Identity::new("bad id") {
            Err(IdentityError::InvalidCharacter {
                character: ' ',
                position: 3,
                ..
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            Identity::new("a/b"),
            Err(IdentityError::InvalidCharacter { character: '/', .. })
        ));
        assert!(matches!(
            Identity::new("é"),
            Err(IdentityError::InvalidCharacter { character: 'é', .. })
        ));
        assert!(matches!(
            Identity::new("a".repeat(MAX_IDENTITY_LEN + 1)),
            Err(IdentityError::TooLong { .. })
        ));
        assert!(Identity::new("a".repeat(MAX_IDENTITY_LEN)).is_ok());
    }

    #[test]
    fn serde_validates() {
        let id: Identity = serde_json::from_str("\"listener\"").unwrap();
        assert_eq!(id, "listener");
        assert!(serde_json::from_str::<Identity>("\"no way\"").is_err());
    }
}
