//! HS256 for `jsonwebtoken`, on `ring`'s HMAC (already linked for TLS).
//!
//! `jsonwebtoken`'s own `rust_crypto` backend brings every JWT algorithm (RSA with its
//! big-integer code, P-256, P-384, Ed25519): about 0.5 MiB of machine code that this
//! service, which signs and checks only HS256, would map into every platform process.
//! This provider answers HS256 and refuses every other algorithm with
//! `InvalidAlgorithm`, so a token signed any other way is refused as invalid.
//!
//! [`install`] makes it the process's `jsonwebtoken` provider unless the host application
//! installed one first; [`Tokens::new`](super::token) then checks that whichever provider
//! is installed signs and verifies HS256.

use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::hmac;

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    jwk_utils: JwkUtils::new_unimplemented(),
};

/// Installs the HS256 provider as the process default, unless one is installed already.
pub(crate) fn install() {
    // `Err` means another provider came first (the host's, or this one from an earlier
    // service): that one is used.
    let _ = PROVIDER.install_default();
}

struct Hs256(hmac::Key);

fn key(secret: &[u8]) -> Hs256 {
    Hs256(hmac::Key::new(hmac::HMAC_SHA256, secret))
}

fn signer(algorithm: &Algorithm, key_: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(key(key_.try_get_hmac_secret()?))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn verifier(algorithm: &Algorithm, key_: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(key(key_.try_get_hmac_secret()?))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(hmac::sign(&self.0, msg).as_ref().to_vec())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], tag: &Vec<u8>) -> Result<(), signature::Error> {
        // Constant-time comparison.
        hmac::verify(&self.0, msg, tag).map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signature::{Signer, Verifier};

    #[test]
    fn matches_rfc_4231_and_refuses_other_tags() {
        // RFC 4231, test case 2.
        let k = key(b"Jefe");
        let tag = k.try_sign(b"what do ya want for nothing?").unwrap();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(k.verify(b"what do ya want for nothing?", &tag).is_ok());
        let mut bad = tag.clone();
        bad[0] ^= 1;
        assert!(k.verify(b"what do ya want for nothing?", &bad).is_err());
        assert!(
            k.verify(b"what do ya want for nothing?", &tag[..31].to_vec())
                .is_err()
        );
    }

    #[test]
    fn other_algorithms_are_refused() {
        let e = EncodingKey::from_secret(b"k");
        let d = DecodingKey::from_secret(b"k");
        for alg in [
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::RS256,
            Algorithm::ES256,
        ] {
            assert_eq!(
                signer(&alg, &e).err().map(|e| e.into_kind()),
                Some(ErrorKind::InvalidAlgorithm)
            );
            assert_eq!(
                verifier(&alg, &d).err().map(|e| e.into_kind()),
                Some(ErrorKind::InvalidAlgorithm)
            );
        }
    }
}
