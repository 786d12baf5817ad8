//! X25519 keys: agent credentials, the platform key (serverkey) and known hosts.
//!
//! Keys are Curve25519 (X25519) key pairs, the static keys of the bridge's Noise handshake
//! ([`crate::bridge::noise`]). Their text form is VOLTTRON's CURVE key encoding: URL-safe base64
//! of the 32 key bytes without the trailing `=`, 43 characters (`PublicKey`'s `Display`,
//! [`SecretKey::to_base64`]); the padded 44-character form is accepted too.
//!
//! Files under the platform's home directory (`$VOLTTRON_HOME`):
//!
//! | path                                | contents                                           | mode   |
//! |-------------------------------------|----------------------------------------------------|--------|
//! | `credentials_store/<identity>.json` | an agent's key pair ([`CredentialStore`])          | `0600` |
//! | `keystore.json`                     | the platform's key pair; its public key is the *serverkey* ([`PlatformKey`]) | `0600` |
//! | `known_hosts`                       | address → serverkey of remote platforms ([`KnownHosts`]) | `0600` |
//!
//! A key pair file is VOLTTRON's keystore JSON, `{"public": "<key>", "secret": "<key>"}`;
//! `known_hosts` is a JSON object mapping addresses to serverkeys. Every write is atomic and
//! durable (temporary file in the same directory, `fsync`, rename, `fsync` of the directory)
//! and the files are created owner-read/write only; `credentials_store/` is created `0700`.
//! A malformed file is reported as a [`KeyError`] naming it and is never overwritten.
//!
//! ```
//! use volttron::auth::keys::{CredentialStore, KnownHosts, PlatformKey};
//!
//! let home = tempfile::tempdir().unwrap();
//! let platform = PlatformKey::load_or_create(home.path()).unwrap();
//! let store = CredentialStore::new(home.path());
//! let agent = store.load_or_create("platform.driver").unwrap();
//! assert_eq!(store.public_key("platform.driver").unwrap(), Some(agent.public));
//!
//! let mut hosts = KnownHosts::load(home.path()).unwrap();
//! hosts.add("tcp://10.0.0.2:22916", platform.serverkey()).unwrap();
//! let reloaded = KnownHosts::load(home.path()).unwrap();
//! assert_eq!(reloaded.get("10.0.0.2:22916"), Some(platform.serverkey()));
//! assert_eq!(platform.serverkey().to_string().len(), 43);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bridge::noise::NOISE_PARAMS;
use crate::durable::{self, IfExists, Perms, parent};

/// The length of a key in bytes.
pub const KEY_LEN: usize = 32;

/// The length of a key's text form: URL-safe base64 without padding.
pub const ENCODED_KEY_LEN: usize = 43;

/// The directory, under the platform's home, holding agents' key pairs.
pub const CREDENTIALS_DIR: &str = "credentials_store";

/// The file, under the platform's home, holding the platform's own key pair.
pub const PLATFORM_KEY_FILE: &str = "keystore.json";

/// The file, under the platform's home, mapping remote platforms' addresses to their serverkeys.
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";

/// Anything that can go wrong with keys and key files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Key text that is not 43 (or, padded, 44) characters long.
    #[error("a key is {ENCODED_KEY_LEN} characters of URL-safe base64, got {length}")]
    WrongLength {
        /// The length of the text given, in bytes.
        length: usize,
    },
    /// Key text of the right length that is not URL-safe base64.
    #[error("a key is URL-safe base64: {message}")]
    BadBase64 {
        /// What the decoder found.
        message: String,
    },
    /// An agent identity that cannot name a file in the credentials directory.
    #[error("identity {identity:?} cannot name a credentials file: {reason}")]
    InvalidIdentity {
        /// The identity as given.
        identity: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A key file that exists but is not valid (bad JSON, a missing field, a bad key, a public
    /// key that does not belong to the secret key); it is left untouched.
    #[error("malformed key file {}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Key pair JSON given as text (not read from a file) that is not valid.
    #[error("invalid key pair JSON: {message}")]
    InvalidJson {
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing a key file or directory failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The cryptographic backend could not generate or derive a key.
    #[error("key generation failed: {message}")]
    Generate {
        /// The backend's message.
        message: String,
    },
}

impl KeyError {
    /// The file or directory the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            KeyError::Malformed { path, .. } | KeyError::Io { path, .. } => Some(path),
            _ => None,
        }
    }

    fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        KeyError::Io {
            path: path.into(),
            source,
        }
    }

    fn malformed(path: &Path, message: impl fmt::Display) -> Self {
        KeyError::Malformed {
            path: path.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Decodes the text form of a key: 43 characters of URL-safe base64, or 44 ending in `=`.
fn decode_key(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let unpadded = match text.len() {
        ENCODED_KEY_LEN => text,
        44 if text.ends_with('=') => &text[..ENCODED_KEY_LEN],
        length => return Err(KeyError::WrongLength { length }),
    };
    let mut out = [0u8; KEY_LEN];
    let bytes = URL_SAFE_NO_PAD
        .decode(unpadded)
        .map_err(|e| KeyError::BadBase64 {
            message: e.to_string(),
        })?;
    // 43 valid base64 characters always decode to 32 bytes; checked rather than assumed.
    if bytes.len() != KEY_LEN {
        return Err(KeyError::WrongLength { length: text.len() });
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

fn encode_key(bytes: &[u8; KEY_LEN]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An X25519 public key. Its text form (`Display`, `FromStr`, serde) is VOLTTRON's encoding:
/// URL-safe base64 without padding, 43 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl PublicKey {
    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key from a slice, which must be 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<PublicKey> {
        bytes.try_into().ok().map(PublicKey)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_key(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_key(s).map(PublicKey)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An X25519 secret key.
///
/// `Debug` prints `<redacted>` and there is deliberately no `Display`: the text form is
/// produced only on request ([`SecretKey::to_base64`]) or by serde, when writing a key file.
/// The bytes are overwritten with zeros when the key is dropped (best effort: copies made
/// while encoding or parsing are not).
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// The key with these bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> SecretKey {
        SecretKey(bytes)
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key's text form: URL-safe base64 without padding, 43 characters.
    pub fn to_base64(&self) -> String {
        encode_key(&self.0)
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0 = [0; KEY_LEN];
        std::hint::black_box(&self.0);
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Compares in time independent of where the keys differ.
impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for SecretKey {}

impl FromStr for SecretKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_key(s).map(SecretKey)
    }
}

impl Serialize for SecretKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An X25519 key pair. Serializes as VOLTTRON's keystore JSON, `{"public": …, "secret": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPair {
    /// The public half, shared with peers.
    pub public: PublicKey,
    /// The secret half.
    pub secret: SecretKey,
}

impl KeyPair {
    /// A fresh random key pair from the Noise backend's generator.
    pub fn generate() -> Result<KeyPair, KeyError> {
        let generate = || -> Result<snow::Keypair, snow::Error> {
            snow::Builder::new(NOISE_PARAMS.parse()?).generate_keypair()
        };
        let keys = generate().map_err(|e| KeyError::Generate {
            message: e.to_string(),
        })?;
        let public = PublicKey::from_slice(&keys.public);
        let secret = <[u8; KEY_LEN]>::try_from(keys.private.as_slice()).ok();
        match (public, secret) {
            (Some(public), Some(secret)) => Ok(KeyPair {
                public,
                secret: SecretKey(secret),
            }),
            _ => Err(KeyError::Generate {
                message: "the backend returned keys of the wrong length".into(),
            }),
        }
    }

    /// The key pair whose secret half is `secret` (the public key is derived from it).
    pub fn from_secret(secret: SecretKey) -> Result<KeyPair, KeyError> {
        use snow::resolvers::{CryptoResolver, DefaultResolver};
        let mut dh = DefaultResolver
            .resolve_dh(&snow::params::DHChoice::Curve25519)
            .ok_or_else(|| KeyError::Generate {
                message: "no X25519 implementation in the Noise backend".into(),
            })?;
        dh.set(secret.as_bytes());
        let public = PublicKey::from_slice(dh.pubkey()).ok_or_else(|| KeyError::Generate {
            message: "the backend returned a public key of the wrong length".into(),
        })?;
        Ok(KeyPair { public, secret })
    }
}

impl KeyPair {
    /// Parses VOLTTRON's keystore JSON, `{"public": "<key>", "secret": "<key>"}` (as in
    /// `AGENT_CREDENTIALS`), and checks that the public key belongs to the secret key.
    pub fn from_json(text: &str) -> Result<KeyPair, KeyError> {
        let invalid = |message: String| KeyError::InvalidJson { message };
        let keys: KeyPair = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if KeyPair::from_secret(keys.secret.clone())?.public != keys.public {
            return Err(invalid("the public key does not belong to the secret key".into()));
        }
        Ok(keys)
    }

    /// The keystore JSON of this pair (pretty-printed, with the secret key).
    pub fn to_json(&self) -> String {
        // A struct of two strings always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// Reads `path`; `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, KeyError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(KeyError::io(path, e)),
    }
}

/// Parses a key pair file and checks that its public key belongs to its secret key.
fn parse_key_file(path: &Path, bytes: &[u8]) -> Result<KeyPair, KeyError> {
    let keys: KeyPair = serde_json::from_slice(bytes).map_err(|e| KeyError::malformed(path, e))?;
    let derived = KeyPair::from_secret(keys.secret.clone())?;
    if derived.public != keys.public {
        return Err(KeyError::malformed(
            path,
            "the public key does not belong to the secret key",
        ));
    }
    Ok(keys)
}

fn read_key_file(path: &Path) -> Result<Option<KeyPair>, KeyError> {
    match read_optional(path)? {
        None => Ok(None),
        Some(bytes) => parse_key_file(path, &bytes).map(Some),
    }
}

fn key_file_bytes(keys: &KeyPair) -> Vec<u8> {
    let mut bytes = keys.to_json().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// Creates `dir` (and missing parents) owner-only (`0700`) if it does not exist.
fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| KeyError::io(dir, e))
}

/// Writes `bytes` to `path` atomically and durably with mode `0600` from the start, so
/// secret bytes never sit in a file others can read ([`crate::durable`]). With
/// [`IfExists::Keep`] an existing file is left alone (two processes creating the same key
/// agree on one). Returns whether `path` was written.
fn write_private(path: &Path, bytes: &[u8], if_exists: IfExists) -> Result<bool, KeyError> {
    durable::write(path, bytes, Perms::OwnerOnly, if_exists).map_err(|e| KeyError::io(e.path, e.source))
}

fn remove_file(path: &Path) -> Result<bool, KeyError> {
    durable::remove(path).map_err(|e| KeyError::io(e.path, e.source))
}

/// Loads the key pair at `path`, or generates one and writes it there (creating the directory
/// owner-only). If another process creates the file first, its key pair is the one returned.
fn load_or_create_at(path: &Path) -> Result<KeyPair, KeyError> {
    if let Some(keys) = read_key_file(path)? {
        return Ok(keys);
    }
    create_private_dir(parent(path))?;
    let keys = KeyPair::generate()?;
    if write_private(path, &key_file_bytes(&keys), IfExists::Keep)? {
        Ok(keys)
    } else {
        read_key_file(path)?
            .ok_or_else(|| KeyError::io(path, io::Error::new(io::ErrorKind::NotFound, "key file vanished")))
    }
}

// ---------------------------------------------------------------------------------------------
// Agents' credentials

/// Agents' key pairs, one file per identity: `<home>/credentials_store/<identity>.json`.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    dir: PathBuf,
}

impl CredentialStore {
    /// The store under the platform home `home`. Nothing is read or created until used.
    pub fn new(home: &Path) -> CredentialStore {
        CredentialStore {
            dir: home.join(CREDENTIALS_DIR),
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `identity`'s key pair. Refuses an identity that is empty, is `.` or
    /// `..`, or contains `/`, `\` or NUL, as it could name a file outside the directory.
    pub fn path(&self, identity: &str) -> Result<PathBuf, KeyError> {
        let reason = if identity.is_empty() {
            Some("it is empty")
        } else if identity == "." || identity == ".." {
            Some("it is a relative directory name")
        } else if identity.contains(['/', '\\']) {
            Some("it contains a path separator")
        } else if identity.contains('\0') {
            Some("it contains a NUL character")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(KeyError::InvalidIdentity {
                identity: identity.to_owned(),
                reason,
            }),
            None => Ok(self.dir.join(format!("{identity}.json"))),
        }
    }

    /// `identity`'s key pair, or `None` if it has none.
    pub fn load(&self, identity: &str) -> Result<Option<KeyPair>, KeyError> {
        read_key_file(&self.path(identity)?)
    }

    /// `identity`'s key pair, generated and stored if it has none yet.
    pub fn load_or_create(&self, identity: &str) -> Result<KeyPair, KeyError> {
        load_or_create_at(&self.path(identity)?)
    }

    /// Stores `keys` as `identity`'s key pair, replacing any previous one.
    pub fn store(&self, identity: &str, keys: &KeyPair) -> Result<(), KeyError> {
        let path = self.path(identity)?;
        create_private_dir(&self.dir)?;
        write_private(&path, &key_file_bytes(keys), IfExists::Replace).map(|_| ())
    }

    /// Removes `identity`'s key pair; `false` if it had none.
    pub fn remove(&self, identity: &str) -> Result<bool, KeyError> {
        remove_file(&self.path(identity)?)
    }

    /// `identity`'s public key, or `None` if it has no key pair.
    pub fn public_key(&self, identity: &str) -> Result<Option<PublicKey>, KeyError> {
        Ok(self.load(identity)?.map(|keys| keys.public))
    }

    /// The identities with a key pair, sorted. Files not named `<identity>.json` (such as
    /// temporary files) are skipped.
    pub fn identities(&self) -> Result<Vec<String>, KeyError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(KeyError::io(&self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| KeyError::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(identity) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if !identity.starts_with('.') && self.path(identity).is_ok() {
                out.push(identity.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// The platform's key

/// The platform's own key pair, at `<home>/keystore.json`. Its public key is the *serverkey*
/// that agents and remote platforms pin.
#[derive(Debug, Clone)]
pub struct PlatformKey {
    path: PathBuf,
    keys: KeyPair,
}

impl PlatformKey {
    /// The file holding the platform key under `home`.
    pub fn path_in(home: &Path) -> PathBuf {
        home.join(PLATFORM_KEY_FILE)
    }

    /// The platform key under `home`, or `None` if there is none yet.
    pub fn load(home: &Path) -> Result<Option<PlatformKey>, KeyError> {
        let path = Self::path_in(home);
        Ok(read_key_file(&path)?.map(|keys| PlatformKey { path, keys }))
    }

    /// The serverkey stored under `home`, or `None` if there is no platform key yet.
    pub fn public_key(home: &Path) -> Result<Option<PublicKey>, KeyError> {
        Ok(Self::load(home)?.map(|key| key.serverkey()))
    }

    /// The platform key under `home`, generated and stored if there is none yet.
    pub fn load_or_create(home: &Path) -> Result<PlatformKey, KeyError> {
        let path = Self::path_in(home);
        let keys = load_or_create_at(&path)?;
        Ok(PlatformKey { path, keys })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The serverkey: the platform's public key.
    pub fn serverkey(&self) -> PublicKey {
        self.keys.public
    }

    /// The whole key pair, for the platform's side of a handshake.
    pub fn key_pair(&self) -> &KeyPair {
        &self.keys
    }
}

// ---------------------------------------------------------------------------------------------
// Known hosts

/// Remote platforms' serverkeys by address, at `<home>/known_hosts`: a JSON object mapping
/// each address to a serverkey.
///
/// Addresses are normalized as VOLTTRON's `KnownHostsStore` does: a URL's scheme and path are
/// dropped, so `tcp://10.0.0.2:22916` and `10.0.0.2:22916` are the same entry; an address with
/// no authority (`ipc:///run/vip.socket`) keeps its path.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
    hosts: BTreeMap<String, PublicKey>,
}

impl KnownHosts {
    /// The known hosts under `home`; empty if the file does not exist or is blank.
    pub fn load(home: &Path) -> Result<KnownHosts, KeyError> {
        let path = home.join(KNOWN_HOSTS_FILE);
        let hosts = match read_optional(&path)? {
            None => BTreeMap::new(),
            Some(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => BTreeMap::new(),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| KeyError::malformed(&path, e))?,
        };
        Ok(KnownHosts { path, hosts })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The address as it is keyed in the file (see the type's documentation).
    pub fn normalize_address(address: &str) -> &str {
        match address.split_once("://") {
            Some((_, rest)) => {
                let authority = rest.split('/').next().unwrap_or("");
                if authority.is_empty() { rest } else { authority }
            }
            None => address,
        }
    }

    /// The serverkey recorded for `address`.
    pub fn get(&self, address: &str) -> Option<PublicKey> {
        self.hosts.get(Self::normalize_address(address)).copied()
    }

    /// Records `key` as `address`'s serverkey (replacing any previous one) and writes the file.
    /// If the write fails, the entry is as it was.
    pub fn add(&mut self, address: &str, key: PublicKey) -> Result<(), KeyError> {
        let address = Self::normalize_address(address).to_owned();
        let previous = self.hosts.insert(address.clone(), key);
        self.save().inspect_err(|_| match previous {
            Some(old) => {
                self.hosts.insert(address, old);
            }
            None => {
                self.hosts.remove(&address);
            }
        })
    }

    /// Forgets `address` and writes the file; `false` (and no write) if it was not known.
    pub fn remove(&mut self, address: &str) -> Result<bool, KeyError> {
        let address = Self::normalize_address(address).to_owned();
        let Some(old) = self.hosts.remove(&address) else {
            return Ok(false);
        };
        match self.save() {
            Ok(()) => Ok(true),
            Err(e) => {
                self.hosts.insert(address, old);
                Err(e)
            }
        }
    }

    /// The entries, by address.
    pub fn iter(&self) -> impl Iterator<Item = (&str, PublicKey)> + '_ {
        self.hosts.iter().map(|(a, k)| (a.as_str(), *k))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    fn save(&self) -> Result<(), KeyError> {
        // A map of strings always serializes.
        let mut bytes = serde_json::to_vec_pretty(&self.hosts).unwrap_or_default();
        bytes.push(b'\n');
        create_private_dir(parent(&self.path))?;
        write_private(&self.path, &bytes, IfExists::Replace).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_round_trip_and_volttron_encoding() {
        let keys = KeyPair::generate().unwrap();
        let text = keys.public.to_string();
        assert_eq!(text.len(), ENCODED_KEY_LEN);
        assert!(!text.contains(['=', '+', '/']));
        assert_eq!(text.parse::<PublicKey>().unwrap(), keys.public);
        // The padded form (Python's `urlsafe_b64encode` before VOLTTRON strips the `=`).
        assert_eq!(format!("{text}=").parse::<PublicKey>().unwrap(), keys.public);
        let secret = keys.secret.to_base64();
        assert_eq!(secret.parse::<SecretKey>().unwrap(), keys.secret);
        // A known vector: 32 zero bytes.
        let zero = PublicKey([0; KEY_LEN]);
        assert_eq!(zero.to_string(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn bad_key_text_is_typed() {
        assert!(matches!(
            "abc".parse::<PublicKey>(),
            Err(KeyError::WrongLength { length: 3 })
        ));
        assert!(matches!(
            "".parse::<SecretKey>(),
            Err(KeyError::WrongLength { length: 0 })
        ));
        let bad = "!".repeat(ENCODED_KEY_LEN);
        assert!(matches!(
            bad.parse::<PublicKey>(),
            Err(KeyError::BadBase64 { .. })
        ));
        // Standard-alphabet characters are not URL-safe base64.
        let std_alphabet = "+".repeat(ENCODED_KEY_LEN);
        assert!(matches!(
            std_alphabet.parse::<PublicKey>(),
            Err(KeyError::BadBase64 { .. })
        ));
        // 44 characters without the padding character.
        assert!(matches!(
            "A".repeat(44).parse::<PublicKey>(),
            Err(KeyError::WrongLength { length: 44 })
        ));
        // Multi-byte text never panics on slicing.
        assert!("é".repeat(22).parse::<PublicKey>().is_err());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let keys = KeyPair::generate().unwrap();
        let debug = format!("{keys:?}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains(&keys.secret.to_base64()));
        assert!(debug.contains(&keys.public.to_string()));
    }

    #[test]
    fn from_secret_derives_the_public_key() {
        let keys = KeyPair::generate().unwrap();
        assert_eq!(KeyPair::from_secret(keys.secret.clone()).unwrap(), keys);
    }

    #[test]
    fn key_pair_json_is_volttron_keystore_format() {
        let keys = KeyPair::generate().unwrap();
        let json = serde_json::to_value(&keys).unwrap();
        assert_eq!(json["public"], keys.public.to_string());
        assert_eq!(json["secret"], keys.secret.to_base64());
        assert_eq!(json.as_object().unwrap().len(), 2);
    }

    #[test]
    fn key_pair_from_json() {
        let keys = KeyPair::generate().unwrap();
        assert_eq!(KeyPair::from_json(&keys.to_json()).unwrap(), keys);
        assert!(matches!(
            KeyPair::from_json("{"),
            Err(KeyError::InvalidJson { .. })
        ));
        let other = KeyPair::generate().unwrap();
        let mixed = format!(
            r#"{{"public": "{}", "secret": "{}"}}"#,
            other.public,
            keys.secret.to_base64()
        );
        assert!(matches!(
            KeyPair::from_json(&mixed),
            Err(KeyError::InvalidJson { .. })
        ));
    }

    #[test]
    fn identities_lists_stored_keys_only() {
        let home = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(home.path());
        assert!(store.identities().unwrap().is_empty());
        store.load_or_create("b.agent").unwrap();
        store.load_or_create("a").unwrap();
        fs::write(store.dir().join("notes.txt"), "x").unwrap();
        assert_eq!(store.identities().unwrap(), ["a", "b.agent"]);
        assert!(store.remove("a").unwrap());
        assert!(!store.remove("a").unwrap());
        assert_eq!(store.identities().unwrap(), ["b.agent"]);
    }

    #[test]
    fn load_or_create_keeps_an_existing_file() {
        let home = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(home.path());
        let first = store.load_or_create("x").unwrap();
        assert_eq!(store.load_or_create("x").unwrap(), first);
        // The no-clobber path: a file that appears between the read and the write wins.
        let other = KeyPair::generate().unwrap();
        let path = store.path("x").unwrap();
        assert!(!write_private(&path, &key_file_bytes(&other), IfExists::Keep).unwrap());
        assert_eq!(store.load("x").unwrap(), Some(first));
    }

    #[test]
    fn mismatched_public_key_is_malformed() {
        let home = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(home.path());
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        let path = store.path("agent").unwrap();
        fs::create_dir_all(store.dir()).unwrap();
        fs::write(
            &path,
            format!(
                r#"{{"public": "{}", "secret": "{}"}}"#,
                a.public,
                b.secret.to_base64()
            ),
        )
        .unwrap();
        let err = store.load("agent").unwrap_err();
        assert!(
            matches!(&err, KeyError::Malformed { path: p, .. } if *p == path),
            "{err}"
        );
        assert_eq!(err.path(), Some(path.as_path()));
    }

    #[test]
    fn known_hosts_normalizes_addresses() {
        assert_eq!(
            KnownHosts::normalize_address("tcp://10.0.0.2:22916"),
            "10.0.0.2:22916"
        );
        assert_eq!(
            KnownHosts::normalize_address("tcp://10.0.0.2:22916/x"),
            "10.0.0.2:22916"
        );
        assert_eq!(KnownHosts::normalize_address("10.0.0.2:22916"), "10.0.0.2:22916");
        assert_eq!(
            KnownHosts::normalize_address("ipc:///run/vip.socket"),
            "/run/vip.socket"
        );
        let home = tempfile::tempdir().unwrap();
        let mut hosts = KnownHosts::load(home.path()).unwrap();
        assert!(hosts.is_empty());
        let key = KeyPair::generate().unwrap().public;
        hosts.add("tcp://h:1", key).unwrap();
        assert_eq!(hosts.get("h:1"), Some(key));
        assert_eq!(hosts.iter().collect::<Vec<_>>(), [("h:1", key)]);
        assert!(hosts.remove("tcp://h:1").unwrap());
        assert!(!hosts.remove("h:1").unwrap());
        assert!(KnownHosts::load(home.path()).unwrap().is_empty());
    }

    #[test]
    fn known_hosts_blank_file_is_empty_and_bad_value_is_malformed() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join(KNOWN_HOSTS_FILE);
        fs::write(&path, "  \n").unwrap();
        assert!(KnownHosts::load(home.path()).unwrap().is_empty());
        fs::write(&path, r#"{"h:1": "not a key"}"#).unwrap();
        let err = KnownHosts::load(home.path()).unwrap_err();
        assert_eq!(err.path(), Some(path.as_path()));
        assert!(err.to_string().contains("known_hosts"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn store_tightens_an_existing_files_mode() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(home.path());
        let keys = KeyPair::generate().unwrap();
        store.store("a", &keys).unwrap();
        let path = store.path("a").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        store.store("a", &keys).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let dir_mode = fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
    }
}
