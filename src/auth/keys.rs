//! X25519 keys: agent credentials, the platform key (serverkey) and known hosts.
//!
//! Keys are Curve25519 (X25519) key pairs, the static keys of the bridge's Noise handshake
//! ([`crate::bridge::noise`]) and of ZeroMQ's CURVE. Their text form is VOLTTRON's CURVE key
//! encoding: URL-safe base64 of the 32 key bytes without the trailing `=`, 43 characters
//! (`PublicKey`'s `Display`, [`SecretKey::to_base64`]); the padded 44-character form is
//! accepted too.
//!
//! Files under the platform's home directory (`$VOLTTRON_HOME`):
//!
//! | path                                | contents                                           | mode   |
//! |-------------------------------------|----------------------------------------------------|--------|
//! | `credentials_store/`                | the directory of credentials; agents may traverse it, not list it | `0711` |
//! | `credentials_store/<identity>.json` | an agent's key pair, VOLTTRON 11's credentials JSON ([`CredentialStore`]) | `0600` |
//! | `credentials_store/platform.json`   | the serverkey for VOLTTRON 11 agents, **without** the secret ([`PlatformKey`]) | `0644` |
//! | `keystore.json`                     | the platform's key pair; its public key is the *serverkey* ([`PlatformKey`]) | `0600` |
//! | `known_hosts`                       | address → serverkey of remote platforms ([`KnownHosts`]) | `0600` |
//!
//! # Formats
//!
//! A credentials file is written as VOLTTRON 11 writes it, so that a home can go back to
//! VOLTTRON 11:
//!
//! ```text
//! {"identity": "listener", "publickey": "<key>", "secretkey": "<key>", "domain": "", "address": ""}
//! ```
//!
//! `keystore.json` keeps VOLTTRON's keystore form, `{"public": "<key>", "secret": "<key>"}`
//! ([`KeyPair`]'s serde form, also what `vctl auth keypair` prints). Reading accepts either
//! spelling in every file (`public`/`publickey`, `secret`/`secretkey`) and ignores other keys;
//! a file giving both spellings with different keys, a credentials file whose `identity` is
//! not its name, or a public key that does not belong to the secret key is malformed.
//! `known_hosts` is a JSON object mapping addresses to serverkeys.
//!
//! # The platform key and `platform.json`
//!
//! VOLTTRON 11 agents read the serverkey from the `publickey` of
//! `credentials_store/platform.json` (which must also have `identity` and `secretkey`, and
//! which every agent must be able to read); they never use its secret. Here the platform's
//! secret stays in `keystore.json` (`0600`), and [`PlatformKey::load_or_create`] (re)writes
//! `platform.json` `0644` with `identity` `"platform"`, the real `publickey` and, as
//! `secretkey`, the fixed marker [`PLATFORM_SECRET_PLACEHOLDER`] (a valid-looking key text that
//! is not the secret). The directory is made traversable (`0711`: others may open a file whose
//! name they know, and list nothing), every other file in it `0600` (VOLTTRON 11 leaves them
//! `0644` under a `0700` directory: the group and others bits are taken off first).
//!
//! A VOLTTRON 11 home has no `keystore.json` and keeps the platform's real secret in
//! `platform.json`. The first [`PlatformKey::load_or_create`] imports it: the key pair moves
//! into `keystore.json` (written first, so a crash in between loses nothing) and
//! `platform.json` is rewritten without the secret. The platform keeps its identity, so the
//! serverkey existing agents hold stays valid. To go back to VOLTTRON 11, put the secret back
//! with [`PlatformKey::write_volttron11_platform_file`].
//!
//! # Guarantees
//!
//! Every write is atomic and durable (temporary file in the same directory, `fsync`, rename,
//! `fsync` of the directory); files holding a secret are `0600` from their first byte. A
//! malformed file is reported as a [`KeyError`] naming it and is never overwritten.
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

/// The identity of the platform's own credentials in VOLTTRON 11 (`credentials_store/platform.json`).
/// [`CredentialStore`] refuses it as an agent identity.
pub const PLATFORM_IDENTITY: &str = "platform";

/// The `secretkey` written in `credentials_store/platform.json` instead of the platform's
/// secret: 43 characters of URL-safe base64 (agents check the field is there, and never use
/// it), which plainly is not a key anyone generated.
pub const PLATFORM_SECRET_PLACEHOLDER: &str = "NOT-the-secret_it-is-in-keystore-json-onlyA";

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
    /// There is no `keystore.json` and `credentials_store/platform.json` has the platform's
    /// public key but not its secret (the placeholder): the serverkey agents pin cannot be
    /// kept. Both files are left as they are.
    #[error(
        "{} has the platform's public key but not its secret, and there is no {PLATFORM_KEY_FILE}: \
         restore {PLATFORM_KEY_FILE}, or remove {} to make a new platform key (agents then need the new serverkey)",
        path.display(), path.display()
    )]
    PlatformSecretMissing {
        /// `credentials_store/platform.json`.
        path: PathBuf,
    },
    /// `credentials_store/platform.json` holds a real secret key of a different key pair than
    /// `keystore.json`; neither is overwritten.
    #[error(
        "{} holds a platform key pair other than the one in {}: remove the one that is not the \
         platform's serverkey",
        platform_json.display(), keystore.display()
    )]
    PlatformKeyConflict {
        /// `credentials_store/platform.json`.
        platform_json: PathBuf,
        /// `keystore.json`.
        keystore: PathBuf,
    },
}

impl KeyError {
    /// The file or directory the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            KeyError::Malformed { path, .. }
            | KeyError::Io { path, .. }
            | KeyError::PlatformSecretMissing { path } => Some(path),
            KeyError::PlatformKeyConflict { platform_json, .. } => Some(platform_json),
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

/// An X25519 key pair. Serializes as VOLTTRON's keystore JSON, `{"public": …, "secret": …}`
/// (serde; [`KeyPair::to_json`]); [`KeyPair::from_json`] also reads VOLTTRON 11's credentials
/// JSON, and [`KeyPair::to_credentials_json`] writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPair {
    /// The public half, shared with peers.
    pub public: PublicKey,
    /// The secret half.
    pub secret: SecretKey,
}

impl KeyPair {
    /// A fresh random key pair from the Noise backend's generator. As VOLTTRON does, a pair
    /// whose text form starts with `-` is drawn again (up to three times): such keys are
    /// taken for options on command lines.
    pub fn generate() -> Result<KeyPair, KeyError> {
        let mut keys = Self::generate_once()?;
        for _ in 0..3 {
            if !keys.public.to_string().starts_with('-') && !keys.secret.to_base64().starts_with('-') {
                break;
            }
            keys = Self::generate_once()?;
        }
        Ok(keys)
    }

    fn generate_once() -> Result<KeyPair, KeyError> {
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
    /// Parses a key pair given as JSON text (as in `AGENT_CREDENTIALS`): VOLTTRON's keystore
    /// JSON, `{"public": "<key>", "secret": "<key>"}`, or VOLTTRON 11's credentials JSON,
    /// `{"identity", "publickey", "secretkey", ...}`; other keys are ignored. Checks that the
    /// public key belongs to the secret key.
    pub fn from_json(text: &str) -> Result<KeyPair, KeyError> {
        let invalid = |message: String| KeyError::InvalidJson { message };
        let (keys, _) = parse_key_json(text.as_bytes()).map_err(invalid)?;
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

    /// VOLTTRON 11's credentials JSON of this pair for `identity`, on one line:
    /// `{"identity","publickey","secretkey","domain":"","address":""}` — what VOLTTRON 11
    /// passes inline in `AGENT_CREDENTIALS` and keeps in `credentials_store/<identity>.json`.
    ///
    /// VOLTTRON 11 agents also `stat()` the value of `AGENT_CREDENTIALS` as a path, and crash
    /// if a `/`-free piece of it is over 255 bytes: the text is 156 bytes plus the identity, so
    /// keep identities given inline under 100 bytes.
    pub fn to_agent_credentials(&self, identity: &str) -> String {
        // A struct of strings always serializes.
        serde_json::to_string(&Volttron11Credentials::new(identity, self)).unwrap_or_default()
    }

    /// The same as [`to_agent_credentials`](Self::to_agent_credentials), pretty-printed (as
    /// in a credentials file).
    pub fn to_credentials_json(&self, identity: &str) -> String {
        serde_json::to_string_pretty(&Volttron11Credentials::new(identity, self)).unwrap_or_default()
    }
}

/// VOLTTRON 11's credentials JSON (`VolttronCredentials`), fields in its order.
#[derive(Serialize)]
struct Volttron11Credentials<'a> {
    identity: &'a str,
    publickey: String,
    secretkey: String,
    domain: &'static str,
    address: &'static str,
}

impl<'a> Volttron11Credentials<'a> {
    fn new(identity: &'a str, keys: &KeyPair) -> Self {
        Volttron11Credentials {
            identity,
            publickey: keys.public.to_string(),
            secretkey: keys.secret.to_base64(),
            domain: "",
            address: "",
        }
    }
}

/// The fields of a key file in either spelling; other keys are ignored.
#[derive(Deserialize)]
struct KeyFields {
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    public: Option<PublicKey>,
    #[serde(default)]
    publickey: Option<PublicKey>,
    #[serde(default)]
    secret: Option<SecretKey>,
    #[serde(default)]
    secretkey: Option<SecretKey>,
}

/// One of two spellings of a field; both given must agree.
fn either<T: PartialEq>(a: Option<T>, b: Option<T>, names: &str) -> Result<T, String> {
    match (a, b) {
        (Some(a), Some(b)) if a != b => Err(format!("{names} are both given and differ")),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err(format!("missing field {names}")),
    }
}

/// A key pair (not yet checked for belonging together) and the `identity` field, from
/// keystore or credentials JSON.
fn parse_key_json(bytes: &[u8]) -> Result<(KeyPair, Option<String>), String> {
    let fields: KeyFields = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let public = either(fields.publickey, fields.public, "`publickey` (or `public`)")?;
    let secret = either(fields.secretkey, fields.secret, "`secretkey` (or `secret`)")?;
    Ok((KeyPair { public, secret }, fields.identity))
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

/// Parses a key pair file and checks that its public key belongs to its secret key and, if
/// `identity` is given and the file has an `identity`, that they are the same.
fn parse_key_file(path: &Path, bytes: &[u8], identity: Option<&str>) -> Result<KeyPair, KeyError> {
    let (keys, claimed) = parse_key_json(bytes).map_err(|e| KeyError::malformed(path, e))?;
    if let (Some(expected), Some(claimed)) = (identity, &claimed)
        && claimed != expected
    {
        return Err(KeyError::malformed(
            path,
            format!("its identity is {claimed:?}, not {expected:?}"),
        ));
    }
    let derived = KeyPair::from_secret(keys.secret.clone())?;
    if derived.public != keys.public {
        return Err(KeyError::malformed(
            path,
            "the public key does not belong to the secret key",
        ));
    }
    Ok(keys)
}

fn read_key_file(path: &Path, identity: Option<&str>) -> Result<Option<KeyPair>, KeyError> {
    match read_optional(path)? {
        None => Ok(None),
        Some(bytes) => parse_key_file(path, &bytes, identity).map(Some),
    }
}

/// How a key pair file is written.
#[derive(Clone, Copy)]
enum KeyFormat<'a> {
    /// `keystore.json`: `{"public", "secret"}`.
    Keystore,
    /// A credentials file: VOLTTRON 11's five keys.
    Credentials(&'a str),
}

fn key_file_bytes(keys: &KeyPair, format: KeyFormat<'_>) -> Vec<u8> {
    let mut bytes = match format {
        KeyFormat::Keystore => keys.to_json(),
        KeyFormat::Credentials(identity) => keys.to_credentials_json(identity),
    }
    .into_bytes();
    bytes.push(b'\n');
    bytes
}

/// Creates `dir` (and missing parents) `0711` if it does not exist, and adds the traverse
/// bits for group and others if it exists without them. First every file in it but
/// `platform.json` loses the group and others bits: VOLTTRON 11 leaves agents' secrets
/// `0644` under a `0700` `credentials_store/`, which traversable would expose.
fn create_traversable_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o711);
    }
    builder.create(dir).map_err(|e| KeyError::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tighten_secret_files(dir)?;
        let mode = fs::metadata(dir)
            .map_err(|e| KeyError::io(dir, e))?
            .permissions()
            .mode();
        if mode & 0o011 != 0o011 {
            fs::set_permissions(dir, fs::Permissions::from_mode((mode | 0o011) & 0o7777))
                .map_err(|e| KeyError::io(dir, e))?;
        }
    }
    Ok(())
}

/// Takes the group and others bits off every regular file in `dir` but `platform.json`
/// (symbolic links are left alone), logging each.
#[cfg(unix)]
fn tighten_secret_files(dir: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let public = format!("{PLATFORM_IDENTITY}.json");
    for entry in fs::read_dir(dir).map_err(|e| KeyError::io(dir, e))? {
        let entry = entry.map_err(|e| KeyError::io(dir, e))?;
        if entry.file_name() == public.as_str() {
            continue;
        }
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(|e| KeyError::io(&path, e))?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_file() && mode & 0o077 != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o700))
                .map_err(|e| KeyError::io(&path, e))?;
            tracing::info!(
                file = %path.display(),
                "credentials were readable by others (as VOLTTRON 11 leaves them): now owner-only"
            );
        }
    }
    Ok(())
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

/// Writes `keys` to `path` unless it exists (creating the directory with `make_dir`); if
/// another process created the file first, its key pair is the one returned.
fn create_at(
    path: &Path,
    keys: KeyPair,
    format: KeyFormat<'_>,
    make_dir: fn(&Path) -> Result<(), KeyError>,
) -> Result<KeyPair, KeyError> {
    make_dir(parent(path))?;
    let identity = match format {
        KeyFormat::Keystore => None,
        KeyFormat::Credentials(identity) => Some(identity),
    };
    if write_private(path, &key_file_bytes(&keys, format), IfExists::Keep)? {
        Ok(keys)
    } else {
        read_key_file(path, identity)?
            .ok_or_else(|| KeyError::io(path, io::Error::new(io::ErrorKind::NotFound, "key file vanished")))
    }
}

/// Loads the key pair at `path`, or generates one and writes it there.
fn load_or_create_at(
    path: &Path,
    format: KeyFormat<'_>,
    make_dir: fn(&Path) -> Result<(), KeyError>,
) -> Result<KeyPair, KeyError> {
    let identity = match format {
        KeyFormat::Keystore => None,
        KeyFormat::Credentials(identity) => Some(identity),
    };
    if let Some(keys) = read_key_file(path, identity)? {
        return Ok(keys);
    }
    create_at(path, KeyPair::generate()?, format, make_dir)
}

// ---------------------------------------------------------------------------------------------
// Agents' credentials

/// Agents' key pairs, one file per identity: `<home>/credentials_store/<identity>.json`, in
/// VOLTTRON 11's credentials format (see the module docs). The directory is created `0711`.
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
        } else if identity == PLATFORM_IDENTITY {
            Some("its file is the platform's own (credentials_store/platform.json)")
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
        read_key_file(&self.path(identity)?, Some(identity))
    }

    /// `identity`'s key pair, generated and stored if it has none yet.
    pub fn load_or_create(&self, identity: &str) -> Result<KeyPair, KeyError> {
        let path = self.path(identity)?;
        load_or_create_at(&path, KeyFormat::Credentials(identity), create_traversable_dir)
    }

    /// Stores `keys` as `identity`'s key pair, replacing any previous one.
    pub fn store(&self, identity: &str, keys: &KeyPair) -> Result<(), KeyError> {
        let path = self.path(identity)?;
        create_traversable_dir(&self.dir)?;
        write_private(
            &path,
            &key_file_bytes(keys, KeyFormat::Credentials(identity)),
            IfExists::Replace,
        )
        .map(|_| ())
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
    /// temporary files) and `platform.json` (the platform's) are skipped.
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
/// that agents and remote platforms pin; VOLTTRON 11 agents read it from
/// `credentials_store/platform.json`, which [`load_or_create`](Self::load_or_create) keeps
/// up to date without the secret (see the module docs).
#[derive(Debug, Clone)]
pub struct PlatformKey {
    home: PathBuf,
    path: PathBuf,
    keys: KeyPair,
}

/// What `credentials_store/platform.json` holds.
enum PlatformFile {
    Missing,
    /// A real key pair (a VOLTTRON 11 home, or one put back for VOLTTRON 11).
    Secret(KeyPair),
    /// The public key and [`PLATFORM_SECRET_PLACEHOLDER`].
    PublicOnly(PublicKey),
}

fn read_platform_file(path: &Path) -> Result<PlatformFile, KeyError> {
    let Some(bytes) = read_optional(path)? else {
        return Ok(PlatformFile::Missing);
    };
    let fields: KeyFields = serde_json::from_slice(&bytes).map_err(|e| KeyError::malformed(path, e))?;
    if let Some(identity) = &fields.identity
        && identity != PLATFORM_IDENTITY
    {
        return Err(KeyError::malformed(
            path,
            format!("its identity is {identity:?}, not {PLATFORM_IDENTITY:?}"),
        ));
    }
    let public = either(fields.publickey, fields.public, "`publickey` (or `public`)")
        .map_err(|e| KeyError::malformed(path, e))?;
    let secret = either(fields.secretkey, fields.secret, "`secretkey` (or `secret`)")
        .map_err(|e| KeyError::malformed(path, e))?;
    if secret.to_base64() == PLATFORM_SECRET_PLACEHOLDER {
        return Ok(PlatformFile::PublicOnly(public));
    }
    let keys = KeyPair::from_secret(secret)?;
    if keys.public != public {
        return Err(KeyError::malformed(
            path,
            "the public key does not belong to the secret key",
        ));
    }
    Ok(PlatformFile::Secret(keys))
}

impl PlatformKey {
    /// The file holding the platform key under `home`.
    pub fn path_in(home: &Path) -> PathBuf {
        home.join(PLATFORM_KEY_FILE)
    }

    /// `credentials_store/platform.json` under `home`, where VOLTTRON 11 agents read the
    /// serverkey.
    pub fn platform_file_in(home: &Path) -> PathBuf {
        home.join(CREDENTIALS_DIR)
            .join(format!("{PLATFORM_IDENTITY}.json"))
    }

    /// The platform key under `home`, or `None` if there is none yet. Reads `keystore.json`,
    /// else a VOLTTRON 11 `credentials_store/platform.json` holding the secret; writes nothing.
    pub fn load(home: &Path) -> Result<Option<PlatformKey>, KeyError> {
        let path = Self::path_in(home);
        if let Some(keys) = read_key_file(&path, None)? {
            return Ok(Some(PlatformKey {
                home: home.to_owned(),
                path,
                keys,
            }));
        }
        let platform_file = Self::platform_file_in(home);
        Ok(match read_platform_file(&platform_file)? {
            PlatformFile::Secret(keys) => Some(PlatformKey {
                home: home.to_owned(),
                path: platform_file,
                keys,
            }),
            PlatformFile::Missing | PlatformFile::PublicOnly(_) => None,
        })
    }

    /// The serverkey stored under `home` (`keystore.json`, else the `publickey` of
    /// `credentials_store/platform.json`), or `None` if there is no platform key yet.
    pub fn public_key(home: &Path) -> Result<Option<PublicKey>, KeyError> {
        if let Some(key) = Self::load(home)? {
            return Ok(Some(key.serverkey()));
        }
        Ok(match read_platform_file(&Self::platform_file_in(home))? {
            PlatformFile::PublicOnly(public) => Some(public),
            PlatformFile::Secret(keys) => Some(keys.public),
            PlatformFile::Missing => None,
        })
    }

    /// The platform key under `home`, with `credentials_store/platform.json` (re)written
    /// `0644` for VOLTTRON 11 agents, holding the public key and
    /// [`PLATFORM_SECRET_PLACEHOLDER`] (`credentials_store/` made traversable, `0711`):
    ///
    /// * `keystore.json` exists: its key pair;
    /// * else `platform.json` holds a real key pair (a VOLTTRON 11 home): that pair, moved
    ///   into `keystore.json` (the serverkey stays the same);
    /// * else `platform.json` holds only the public key: [`KeyError::PlatformSecretMissing`];
    /// * else a new key pair, stored in `keystore.json`.
    ///
    /// A `platform.json` with a real key pair other than `keystore.json`'s is
    /// [`KeyError::PlatformKeyConflict`]; a malformed one is an error and left untouched.
    pub fn load_or_create(home: &Path) -> Result<PlatformKey, KeyError> {
        let path = Self::path_in(home);
        let platform_file = Self::platform_file_in(home);
        let conflict = || KeyError::PlatformKeyConflict {
            platform_json: platform_file.clone(),
            keystore: path.clone(),
        };
        let keys = match read_key_file(&path, None)? {
            Some(keys) => {
                if let PlatformFile::Secret(other) = read_platform_file(&platform_file)?
                    && other != keys
                {
                    return Err(conflict());
                }
                keys
            }
            None => match read_platform_file(&platform_file)? {
                PlatformFile::Secret(imported) => {
                    let kept = create_at(&path, imported.clone(), KeyFormat::Keystore, create_private_dir)?;
                    if kept != imported {
                        return Err(conflict());
                    }
                    tracing::info!(
                        from = %platform_file.display(),
                        to = %path.display(),
                        serverkey = %kept.public,
                        "imported VOLTTRON 11's platform key"
                    );
                    kept
                }
                PlatformFile::PublicOnly(_) => {
                    return Err(KeyError::PlatformSecretMissing { path: platform_file });
                }
                PlatformFile::Missing => load_or_create_at(&path, KeyFormat::Keystore, create_private_dir)?,
            },
        };
        write_platform_public_file(&platform_file, &keys)?;
        Ok(PlatformKey {
            home: home.to_owned(),
            path,
            keys,
        })
    }

    /// Puts the platform's secret back into `credentials_store/platform.json` (mode `0600`),
    /// as VOLTTRON 11 keeps it, for a home going back to VOLTTRON 11 (whose agents run as
    /// the platform's user). The next [`load_or_create`](Self::load_or_create) takes it out
    /// again. Returns the file.
    pub fn write_volttron11_platform_file(&self) -> Result<PathBuf, KeyError> {
        let file = Self::platform_file_in(&self.home);
        create_traversable_dir(parent(&file))?;
        let bytes = key_file_bytes(&self.keys, KeyFormat::Credentials(PLATFORM_IDENTITY));
        write_private(&file, &bytes, IfExists::Replace)?;
        Ok(file)
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

/// Writes `platform.json` with the public key and the placeholder, `0644`, unless it already
/// has exactly that content and mode.
fn write_platform_public_file(file: &Path, keys: &KeyPair) -> Result<(), KeyError> {
    create_traversable_dir(parent(file))?;
    let content = Volttron11Credentials {
        identity: PLATFORM_IDENTITY,
        publickey: keys.public.to_string(),
        secretkey: PLATFORM_SECRET_PLACEHOLDER.to_owned(),
        domain: "",
        address: "",
    };
    // A struct of strings always serializes.
    let mut bytes = serde_json::to_vec_pretty(&content).unwrap_or_default();
    bytes.push(b'\n');
    if read_optional(file)?.as_deref() == Some(bytes.as_slice()) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(file)
                .map_err(|e| KeyError::io(file, e))?
                .permissions()
                .mode();
            if mode & 0o777 == 0o644 {
                return Ok(());
            }
        }
    }
    durable::write(file, &bytes, Perms::WorldReadable, IfExists::Replace)
        .map(|_| ())
        .map_err(|e| KeyError::io(e.path, e.source))
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
        assert!(
            !write_private(
                &path,
                &key_file_bytes(&other, KeyFormat::Credentials("x")),
                IfExists::Keep
            )
            .unwrap()
        );
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
        assert_eq!(dir_mode, 0o711, "traversable, not listable");
    }

    #[test]
    fn credentials_files_are_written_in_volttron11_form_and_read_in_both() {
        let home = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(home.path());
        let keys = store.load_or_create("listener").unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(store.path("listener").unwrap()).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"identity": "listener", "publickey": keys.public.to_string(),
                               "secretkey": keys.secret.to_base64(), "domain": "", "address": ""})
        );
        // The old keystore spelling, and VOLTTRON 11's with extra keys, both read.
        let other = KeyPair::generate().unwrap();
        fs::write(store.path("old").unwrap(), other.to_json()).unwrap();
        assert_eq!(store.load("old").unwrap(), Some(other.clone()));
        fs::write(
            store.path("v11").unwrap(),
            format!(
                r#"{{"identity":"v11","publickey":"{}","secretkey":"{}","domain":"VIP","address":"","x":1}}"#,
                other.public,
                other.secret.to_base64()
            ),
        )
        .unwrap();
        assert_eq!(store.load("v11").unwrap(), Some(other.clone()));
        assert_eq!(
            KeyPair::from_json(&other.to_credentials_json("a")).unwrap(),
            other
        );
    }

    #[test]
    fn credentials_files_that_disagree_are_malformed_and_untouched() {
        let home = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(home.path());
        fs::create_dir_all(store.dir()).unwrap();
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        let cases = [
            (
                format!(
                    r#"{{"identity":"other","publickey":"{}","secretkey":"{}"}}"#,
                    a.public,
                    a.secret.to_base64()
                ),
                "its identity is \"other\"",
            ),
            (
                format!(
                    r#"{{"public":"{}","publickey":"{}","secretkey":"{}"}}"#,
                    b.public,
                    a.public,
                    a.secret.to_base64()
                ),
                "are both given and differ",
            ),
            (
                format!(r#"{{"identity":"x","publickey":"{}"}}"#, a.public),
                "missing field `secretkey`",
            ),
        ];
        let path = store.path("x").unwrap();
        for (text, expected) in cases {
            fs::write(&path, &text).unwrap();
            for err in [
                store.load("x").unwrap_err(),
                store.load_or_create("x").unwrap_err(),
            ] {
                assert!(matches!(err, KeyError::Malformed { .. }), "{err:?}");
                assert!(err.to_string().contains(expected), "{err}");
            }
            assert_eq!(fs::read_to_string(&path).unwrap(), text, "left untouched");
        }
        assert!(matches!(
            store.path(PLATFORM_IDENTITY),
            Err(KeyError::InvalidIdentity { .. })
        ));
    }

    #[test]
    fn agent_credentials_inline_json() {
        let keys = KeyPair::generate().unwrap();
        let text = keys.to_agent_credentials("listener");
        assert!(!text.contains('\n'));
        assert_eq!(text.len(), 156 + "listener".len());
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"identity": "listener", "publickey": keys.public.to_string(),
                               "secretkey": keys.secret.to_base64(), "domain": "", "address": ""})
        );
        assert_eq!(KeyPair::from_json(&text).unwrap(), keys);
    }

    #[test]
    fn placeholder_is_key_shaped() {
        assert_eq!(PLATFORM_SECRET_PLACEHOLDER.len(), ENCODED_KEY_LEN);
        assert!(PLATFORM_SECRET_PLACEHOLDER.parse::<SecretKey>().is_ok());
        for _ in 0..20 {
            let keys = KeyPair::generate().unwrap();
            assert!(!keys.public.to_string().starts_with('-') || !keys.secret.to_base64().starts_with('-'));
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn platform_json_is_public_and_holds_no_secret() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let key = PlatformKey::load_or_create(home.path()).unwrap();
        let file = PlatformKey::platform_file_in(home.path());
        let text = fs::read_to_string(&file).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["identity"], PLATFORM_IDENTITY);
        assert_eq!(json["publickey"], key.serverkey().to_string());
        assert_eq!(json["secretkey"], PLATFORM_SECRET_PLACEHOLDER);
        assert!(!text.contains(&key.key_pair().secret.to_base64()));
        assert_eq!(mode(&file), 0o644);
        assert_eq!(mode(file.parent().unwrap()), 0o711);
        assert_eq!(mode(&PlatformKey::path_in(home.path())), 0o600);
        // Stable: a second start keeps the key and the file.
        let again = PlatformKey::load_or_create(home.path()).unwrap();
        assert_eq!(again.key_pair(), key.key_pair());
        assert_eq!(fs::read_to_string(&file).unwrap(), text);
        assert_eq!(
            PlatformKey::public_key(home.path()).unwrap(),
            Some(key.serverkey())
        );
        // A mode changed by hand is put back; a tightened directory is made traversable.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(file.parent().unwrap(), fs::Permissions::from_mode(0o700)).unwrap();
        PlatformKey::load_or_create(home.path()).unwrap();
        assert_eq!(mode(&file), 0o644);
        assert_eq!(mode(file.parent().unwrap()), 0o711);
        // The store skips it.
        assert!(CredentialStore::new(home.path()).identities().unwrap().is_empty());
    }

    #[test]
    fn a_volttron11_platform_key_is_imported() {
        let home = tempfile::tempdir().unwrap();
        let v11 = KeyPair::generate().unwrap();
        let file = PlatformKey::platform_file_in(home.path());
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, v11.to_credentials_json(PLATFORM_IDENTITY)).unwrap();
        assert_eq!(
            PlatformKey::load(home.path()).unwrap().unwrap().serverkey(),
            v11.public
        );
        assert!(!PlatformKey::path_in(home.path()).exists(), "load writes nothing");

        let key = PlatformKey::load_or_create(home.path()).unwrap();
        assert_eq!(key.key_pair(), &v11, "the platform keeps its identity");
        let keystore =
            KeyPair::from_json(&fs::read_to_string(PlatformKey::path_in(home.path())).unwrap()).unwrap();
        assert_eq!(keystore, v11);
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&v11.secret.to_base64()),
            "the secret left platform.json"
        );
        assert!(text.contains(&v11.public.to_string()));

        // Back to VOLTTRON 11, and here again.
        let written = key.write_volttron11_platform_file().unwrap();
        assert!(
            fs::read_to_string(&written)
                .unwrap()
                .contains(&v11.secret.to_base64())
        );
        assert_eq!(PlatformKey::load_or_create(home.path()).unwrap().key_pair(), &v11);
        assert!(
            !fs::read_to_string(&file)
                .unwrap()
                .contains(&v11.secret.to_base64())
        );
    }

    #[test]
    fn platform_json_without_secret_or_with_another_key_is_refused() {
        let home = tempfile::tempdir().unwrap();
        let key = PlatformKey::load_or_create(home.path()).unwrap();
        let file = PlatformKey::platform_file_in(home.path());
        let public_only = fs::read_to_string(&file).unwrap();
        // keystore.json lost: the secret is nowhere.
        fs::remove_file(PlatformKey::path_in(home.path())).unwrap();
        let err = PlatformKey::load_or_create(home.path()).unwrap_err();
        assert!(matches!(err, KeyError::PlatformSecretMissing { .. }), "{err:?}");
        assert_eq!(err.path(), Some(file.as_path()));
        assert_eq!(fs::read_to_string(&file).unwrap(), public_only, "untouched");
        assert_eq!(
            PlatformKey::public_key(home.path()).unwrap(),
            Some(key.serverkey())
        );

        // Another real key pair in platform.json than in keystore.json.
        let home = tempfile::tempdir().unwrap();
        PlatformKey::load_or_create(home.path()).unwrap();
        let other = KeyPair::generate().unwrap();
        let file = PlatformKey::platform_file_in(home.path());
        fs::write(&file, other.to_credentials_json(PLATFORM_IDENTITY)).unwrap();
        let err = PlatformKey::load_or_create(home.path()).unwrap_err();
        assert!(matches!(err, KeyError::PlatformKeyConflict { .. }), "{err:?}");
        assert!(
            fs::read_to_string(&file)
                .unwrap()
                .contains(&other.secret.to_base64())
        );

        // Malformed: an error, untouched.
        fs::write(&file, r#"{"identity": "platform"}"#).unwrap();
        let err = PlatformKey::load_or_create(home.path()).unwrap_err();
        assert!(matches!(err, KeyError::Malformed { .. }), "{err:?}");
        assert_eq!(fs::read_to_string(&file).unwrap(), r#"{"identity": "platform"}"#);
    }
}
