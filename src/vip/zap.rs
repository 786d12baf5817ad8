//! ZeroMQ's authentication protocol (ZAP, RFC 27) as the VIP listener answers it.
//!
//! libzmq asks the handler bound at [`ENDPOINT`] about every CURVE handshake on a socket
//! with a ZAP domain. Without a handler bound, libzmq accepts any key, so the listener
//! binds this one before its ROUTER socket.
//!
//! | request | answer |
//! |---------|--------|
//! | `CURVE`, a 32-byte client key | `200`, user id = the key as VOLTTRON writes it (43 characters of URL-safe base64) |
//! | any other mechanism, or a malformed request | `400` |
//!
//! The handshake only proves the client holds the key. Which identity the key may use is
//! decided on the peer's first VIP message, which names the identity (ZAP requests carry
//! no routing id): the listener checks the pair against `credentials_store/` and the
//! approved entries, and an unknown key goes to the pending list (see
//! [`crate::auth::Authority`]). A key that belongs to another identity is refused there.

use crate::auth::keys::PublicKey;

/// Where libzmq sends ZAP requests.
pub(crate) const ENDPOINT: &str = "inproc://zeromq.zap.01";

/// ZAP's protocol version.
const VERSION: &[u8] = b"1.0";

/// What a ZAP request asked, when it can be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ZapRequest {
    pub(crate) request_id: Vec<u8>,
    pub(crate) domain: Vec<u8>,
    pub(crate) address: Vec<u8>,
    /// The client's CURVE key, when the mechanism is CURVE.
    pub(crate) curve_key: Option<PublicKey>,
    pub(crate) mechanism: Vec<u8>,
}

/// Reads a ZAP request (`version, request id, domain, address, identity, mechanism,
/// credentials...`); `None` when it is not one.
pub(crate) fn parse(frames: &[Vec<u8>]) -> Option<ZapRequest> {
    if frames.len() < 6 || frames[0] != VERSION {
        return None;
    }
    let mechanism = frames[5].clone();
    let curve_key = if mechanism == b"CURVE" {
        frames.get(6).and_then(|k| PublicKey::from_slice(k))
    } else {
        None
    };
    Some(ZapRequest {
        request_id: frames[1].clone(),
        domain: frames[2].clone(),
        address: frames[3].clone(),
        curve_key,
        mechanism,
    })
}

/// The answer to `request` (or to an unreadable request, whose id is unknown).
pub(crate) fn reply(request: Option<&ZapRequest>) -> Vec<Vec<u8>> {
    let id = request.map(|r| r.request_id.clone()).unwrap_or_default();
    match request.and_then(|r| r.curve_key.as_ref()) {
        Some(key) => vec![
            VERSION.to_vec(),
            id,
            b"200".to_vec(),
            b"OK".to_vec(),
            key.to_string().into_bytes(),
            Vec::new(),
        ],
        None => vec![
            VERSION.to_vec(),
            id,
            b"400".to_vec(),
            b"only CURVE clients may connect".to_vec(),
            Vec::new(),
            Vec::new(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(mechanism: &[u8], credentials: &[u8]) -> Vec<Vec<u8>> {
        vec![
            b"1.0".to_vec(),
            b"7".to_vec(),
            b"vip".to_vec(),
            b"127.0.0.1".to_vec(),
            Vec::new(),
            mechanism.to_vec(),
            credentials.to_vec(),
        ]
    }

    #[test]
    fn a_curve_key_is_accepted_with_the_key_as_user_id() {
        let key = [9u8; 32];
        let r = parse(&request(b"CURVE", &key)).unwrap();
        let answer = reply(Some(&r));
        assert_eq!(answer[1], b"7");
        assert_eq!(answer[2], b"200");
        let user = String::from_utf8(answer[4].clone()).unwrap();
        assert_eq!(user.len(), 43);
        assert_eq!(user, PublicKey::from_slice(&key).unwrap().to_string());
    }

    #[test]
    fn other_mechanisms_and_garbage_are_refused() {
        let r = parse(&request(b"NULL", b"")).unwrap();
        assert_eq!(reply(Some(&r))[2], b"400");
        // A short CURVE key.
        let r = parse(&request(b"CURVE", &[1, 2, 3])).unwrap();
        assert_eq!(reply(Some(&r))[2], b"400");
        assert!(parse(&[b"2.0".to_vec()]).is_none());
        assert!(parse(&[]).is_none());
        assert_eq!(reply(None)[2], b"400");
    }
}
