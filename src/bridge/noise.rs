//! Noise protocol handshake and encrypted stream for bridge links.
//!
//! A bridge link is authenticated and encrypted with [Noise](https://noiseprotocol.org/)
//! [`NOISE_PARAMS`] (`Noise_XX_25519_ChaChaPoly_BLAKE2s`), both sides using the prologue
//! [`PROLOGUE`]. Each side has a static X25519 key pair ([`KeyPair`]); the server's public key
//! is the platform's *serverkey*, which a client may pin ([`client_handshake`]'s
//! `expected_server`).
//!
//! Handshake (every message is a 2-byte big-endian length, then the Noise message; payloads
//! are empty):
//!
//! | # | direction       | tokens            | bytes on the wire |
//! |---|-----------------|-------------------|-------------------|
//! | 1 | client → server | `e`               | 2 + 32            |
//! | 2 | server → client | `e, ee, s, es`    | 2 + 96            |
//! | 3 | client → server | `s, se`           | 2 + 64            |
//!
//! After message 2 the client knows the server's static key and, if it differs from the
//! expected serverkey, hangs up without sending message 3. After message 3 both sides know
//! each other's static key ([`NoiseSession::remote_key`]).
//!
//! Transport ([`NoiseStream`]), a sequence of records in each direction:
//!
//! | bytes      | field      | meaning                                                      |
//! |------------|------------|--------------------------------------------------------------|
//! | 0..2       | length     | ciphertext length `n`, `u16` big-endian, 16..=65535          |
//! | 2..2+n     | ciphertext | ChaCha20-Poly1305 of up to 65519 plaintext bytes + 16-byte tag |
//!
//! Record boundaries carry no meaning: the plaintext is a byte stream. Writes are buffered
//! and sealed into full records; [`flush`](tokio::io::AsyncWriteExt::flush) seals what is
//! buffered and writes everything in as few system calls as possible.
//!
//! Neither handshake function has a timeout: the caller wraps it in one
//! ([`tokio::time::timeout`]).
//!
//! ```
//! use volttron::auth::keys::KeyPair;
//! use volttron::bridge::noise::{client_handshake, server_handshake};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let (server_keys, client_keys) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
//! let (mut c, mut s) = tokio::io::duplex(64 * 1024);
//! let serverkey = server_keys.public;
//! let server = tokio::spawn(async move {
//!     let session = server_handshake(&mut s, &server_keys).await.unwrap();
//!     let mut stream = session.into_stream(s);
//!     let mut buf = [0u8; 5];
//!     stream.read_exact(&mut buf).await.unwrap();
//!     buf
//! });
//! let session = client_handshake(&mut c, &client_keys, Some(&serverkey)).await.unwrap();
//! assert_eq!(session.remote_key(), &serverkey);
//! let mut stream = session.into_stream(c);
//! stream.write_all(b"hello").await.unwrap();
//! stream.flush().await.unwrap();
//! assert_eq!(&server.await.unwrap(), b"hello");
//! # }
//! ```

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::auth::keys::{KeyPair, PublicKey};

/// The Noise protocol name of bridge links.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// The prologue both sides mix into the handshake: a different prologue fails the handshake.
pub const PROLOGUE: &[u8] = b"volttron-bridge/1";

/// The largest Noise message, handshake or transport record: 65535 bytes.
pub const MAX_MESSAGE_LEN: usize = 65535;

/// The authentication tag every transport record carries.
pub const TAG_LEN: usize = 16;

/// The most plaintext one transport record carries: 65519 bytes.
pub const MAX_PLAINTEXT_LEN: usize = MAX_MESSAGE_LEN - TAG_LEN;

/// A whole record on the wire: length prefix and the largest ciphertext.
const MAX_RECORD_LEN: usize = 2 + MAX_MESSAGE_LEN;

/// Sealed bytes a [`NoiseStream`] holds before `poll_write` first writes them out.
const WRITE_HIGH_WATER: usize = 2 * MAX_RECORD_LEN;

/// The size of a [`NoiseStream`]'s receive buffer: room for two whole records per read.
const READ_BUF_LEN: usize = 2 * MAX_RECORD_LEN;

/// A handshake failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoiseError {
    /// Reading or writing the stream failed.
    #[error("I/O error during the Noise handshake: {0}")]
    Io(#[from] io::Error),
    /// The Noise state machine rejected a message (garbage, a tampered message, a different
    /// prologue or protocol) or could not be set up.
    #[error("Noise handshake failed: {0}")]
    Snow(String),
    /// The server's static key is not the expected serverkey; the client hung up before
    /// sending its own static key.
    #[error("server key mismatch: expected {expected}, the server has {actual}")]
    ServerKeyMismatch {
        /// The serverkey the client pinned.
        expected: PublicKey,
        /// The server's actual static key.
        actual: PublicKey,
    },
    /// The peer hung up in the middle of the handshake.
    #[error("the peer closed the connection during the Noise handshake")]
    Closed,
    /// A handshake message longer than the 65535 bytes its length prefix can express.
    #[error("handshake message of {len} bytes is longer than {MAX_MESSAGE_LEN}")]
    TooLong {
        /// The message length.
        len: usize,
    },
}

fn snow_error(e: snow::Error) -> NoiseError {
    NoiseError::Snow(e.to_string())
}

/// EOF and a reset both mean the peer went away.
fn io_error(e: io::Error) -> NoiseError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => NoiseError::Closed,
        _ => NoiseError::Io(e),
    }
}

/// A finished handshake: the peer's static key and the transport cipher states.
pub struct NoiseSession {
    remote: PublicKey,
    handshake_hash: Vec<u8>,
    transport: snow::TransportState,
}

impl NoiseSession {
    /// The peer's static public key, as proven in the handshake.
    pub fn remote_key(&self) -> &PublicKey {
        &self.remote
    }

    /// The handshake hash, identical on both sides and unique to this session (for channel
    /// binding).
    pub fn handshake_hash(&self) -> &[u8] {
        &self.handshake_hash
    }

    /// The transport cipher states.
    pub fn transport(&self) -> &snow::TransportState {
        &self.transport
    }

    /// Encrypts and authenticates `stream` (the one the handshake ran over) with this session.
    pub fn into_stream<S>(self, stream: S) -> NoiseStream<S> {
        NoiseStream {
            inner: stream,
            transport: self.transport,
            remote: self.remote,
            plain_out: Vec::new(),
            sealed: Vec::new(),
            sealed_pos: 0,
            raw_in: Vec::new(),
            raw_start: 0,
            raw_end: 0,
            plain_in: Vec::new(),
            plain_start: 0,
            plain_end: 0,
            read_eof: false,
            read_failed: None,
        }
    }
}

impl fmt::Debug for NoiseSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoiseSession")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

fn handshake_state(local: &KeyPair, initiator: bool) -> Result<snow::HandshakeState, NoiseError> {
    let params = NOISE_PARAMS.parse().map_err(snow_error)?;
    let builder = snow::Builder::new(params)
        .local_private_key(local.secret.as_bytes())
        .prologue(PROLOGUE);
    let state = if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    };
    state.map_err(snow_error)
}

/// Writes the next handshake message (empty payload) with its length prefix, and flushes.
async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    state: &mut snow::HandshakeState,
) -> Result<(), NoiseError> {
    // The largest XX message with an empty payload is 96 bytes.
    let mut buf = [0u8; 2 + 256];
    let n = state.write_message(&[], &mut buf[2..]).map_err(snow_error)?;
    let len = u16::try_from(n).map_err(|_| NoiseError::TooLong { len: n })?;
    buf[..2].copy_from_slice(&len.to_be_bytes());
    stream.write_all(&buf[..2 + n]).await.map_err(io_error)?;
    stream.flush().await.map_err(io_error)
}

/// Reads the next handshake message and feeds it to `state`; `buf` is reused.
async fn receive<S: AsyncRead + Unpin>(
    stream: &mut S,
    state: &mut snow::HandshakeState,
    buf: &mut Vec<u8>,
) -> Result<(), NoiseError> {
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).await.map_err(io_error)?;
    let len = usize::from(u16::from_be_bytes(prefix));
    // The message, then room for its payload, which is never longer than the message.
    buf.clear();
    buf.resize(2 * len, 0);
    let (message, payload) = buf.split_at_mut(len);
    stream.read_exact(message).await.map_err(io_error)?;
    state.read_message(message, payload).map_err(snow_error)?;
    Ok(())
}

fn remote_static(state: &snow::HandshakeState) -> Result<PublicKey, NoiseError> {
    state
        .get_remote_static()
        .and_then(PublicKey::from_slice)
        .ok_or_else(|| NoiseError::Snow("the peer's static key is missing".into()))
}

fn finish(state: snow::HandshakeState, remote: PublicKey) -> Result<NoiseSession, NoiseError> {
    let handshake_hash = state.get_handshake_hash().to_vec();
    let transport = state.into_transport_mode().map_err(snow_error)?;
    Ok(NoiseSession {
        remote,
        handshake_hash,
        transport,
    })
}

/// Runs the client (initiator) side of the handshake over `stream` with the static key pair
/// `local`.
///
/// If `expected_server` is given and the server's static key differs, fails with
/// [`NoiseError::ServerKeyMismatch`] before revealing `local`'s public key, after shutting
/// down `stream`'s write side so the server sees the connection end. The stream is unusable
/// after any error.
pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: &KeyPair,
    expected_server: Option<&PublicKey>,
) -> Result<NoiseSession, NoiseError> {
    let mut state = handshake_state(local, true)?;
    let mut buf = Vec::new();
    send(stream, &mut state).await?;
    receive(stream, &mut state, &mut buf).await?;
    let remote = remote_static(&state)?;
    if let Some(&expected) = expected_server
        && expected != remote
    {
        // Best effort: the error to report is the mismatch.
        let _ = stream.shutdown().await;
        return Err(NoiseError::ServerKeyMismatch {
            expected,
            actual: remote,
        });
    }
    send(stream, &mut state).await?;
    finish(state, remote)
}

/// Runs the server (responder) side of the handshake over `stream` with the static key pair
/// `local` (the platform key). The client's static key is [`NoiseSession::remote_key`]; deciding
/// whether it may connect is the caller's business. The stream is unusable after any error.
pub async fn server_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: &KeyPair,
) -> Result<NoiseSession, NoiseError> {
    let mut state = handshake_state(local, false)?;
    let mut buf = Vec::new();
    receive(stream, &mut state, &mut buf).await?;
    send(stream, &mut state).await?;
    receive(stream, &mut state, &mut buf).await?;
    let remote = remote_static(&state)?;
    finish(state, remote)
}

/// A byte stream encrypted and authenticated with a [`NoiseSession`]; see the
/// [module documentation](self) for the record layout.
///
/// Writes are buffered: `poll_write` seals a record only once a full record's worth of
/// plaintext is buffered, and writes sealed records to the inner stream only when more than
/// two records are waiting. Call `flush` (or `shutdown`) to send what is buffered; bytes still
/// buffered when the stream is dropped are lost.
///
/// A record that fails to authenticate fails the read with [`io::ErrorKind::InvalidData`],
/// and the stream ends in the middle of a record with [`io::ErrorKind::UnexpectedEof`]; every
/// later read fails the same way.
pub struct NoiseStream<S> {
    inner: S,
    transport: snow::TransportState,
    remote: PublicKey,
    /// Plaintext not yet sealed; shorter than [`MAX_PLAINTEXT_LEN`].
    plain_out: Vec<u8>,
    /// Sealed records not yet written, from `sealed_pos`.
    sealed: Vec<u8>,
    sealed_pos: usize,
    /// Bytes read from `inner` and not yet decrypted: `raw_in[raw_start..raw_end]`.
    raw_in: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    /// Decrypted bytes not yet returned: `plain_in[plain_start..plain_end]`.
    plain_in: Vec<u8>,
    plain_start: usize,
    plain_end: usize,
    read_eof: bool,
    read_failed: Option<io::ErrorKind>,
}

impl<S> NoiseStream<S> {
    /// The peer's static public key, as proven in the handshake.
    pub fn remote_key(&self) -> &PublicKey {
        &self.remote
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The underlying stream. Reading or writing it directly corrupts the session.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Bytes written but not yet sent to the underlying stream.
    pub fn buffered_write_len(&self) -> usize {
        self.plain_out.len() + (self.sealed.len() - self.sealed_pos)
    }

    fn pending_sealed(&self) -> usize {
        self.sealed.len() - self.sealed_pos
    }

    /// Seals `plain_out` as one record, if it holds anything.
    fn seal_buffered(&mut self) -> io::Result<()> {
        if !self.plain_out.is_empty() {
            seal(
                &mut self.transport,
                &mut self.sealed,
                &mut self.sealed_pos,
                &self.plain_out,
            )?;
            self.plain_out.clear();
        }
        Ok(())
    }
}

/// Appends one record holding `plaintext` (at most [`MAX_PLAINTEXT_LEN`] bytes) to `sealed`.
fn seal(
    transport: &mut snow::TransportState,
    sealed: &mut Vec<u8>,
    sealed_pos: &mut usize,
    plaintext: &[u8],
) -> io::Result<()> {
    // Drop what has been written once it is at least as long as what has not, so the buffer
    // stays within twice the high-water mark and each byte moves at most once on average.
    if *sealed_pos > 0 && *sealed_pos >= sealed.len() - *sealed_pos {
        sealed.drain(..*sealed_pos);
        *sealed_pos = 0;
    }
    let start = sealed.len();
    sealed.resize(start + 2 + plaintext.len() + TAG_LEN, 0);
    match transport.write_message(plaintext, &mut sealed[start + 2..]) {
        Ok(n) => {
            // `n` is at most MAX_MESSAGE_LEN: snow refuses anything longer.
            let len = u16::try_from(n).unwrap_or(u16::MAX);
            sealed[start..start + 2].copy_from_slice(&len.to_be_bytes());
            sealed.truncate(start + 2 + n);
            Ok(())
        }
        Err(e) => {
            sealed.truncate(start);
            Err(io::Error::other(format!("Noise encryption failed: {e}")))
        }
    }
}

impl<S: AsyncWrite + Unpin> NoiseStream<S> {
    /// Writes sealed records to the inner stream until none is left.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sealed_pos < self.sealed.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.sealed[self.sealed_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sealed_pos += n;
        }
        self.sealed.clear();
        self.sealed_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for NoiseStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.pending_sealed() >= WRITE_HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        let mut taken = 0;
        while taken < buf.len() && this.pending_sealed() < WRITE_HIGH_WATER {
            let rest = &buf[taken..];
            if this.plain_out.is_empty() && rest.len() >= MAX_PLAINTEXT_LEN {
                // A whole record straight from the caller's buffer, without copying it first.
                let record = &rest[..MAX_PLAINTEXT_LEN];
                if let Err(e) = seal(
                    &mut this.transport,
                    &mut this.sealed,
                    &mut this.sealed_pos,
                    record,
                ) {
                    return Poll::Ready(if taken > 0 { Ok(taken) } else { Err(e) });
                }
                taken += MAX_PLAINTEXT_LEN;
            } else {
                let n = rest.len().min(MAX_PLAINTEXT_LEN - this.plain_out.len());
                this.plain_out.extend_from_slice(&rest[..n]);
                taken += n;
                if this.plain_out.len() == MAX_PLAINTEXT_LEN {
                    // The bytes are accepted; an encryption failure shows on the next call.
                    if let Err(e) = this.seal_buffered() {
                        this.plain_out.truncate(this.plain_out.len() - n);
                        taken -= n;
                        return Poll::Ready(if taken > 0 { Ok(taken) } else { Err(e) });
                    }
                }
            }
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.seal_buffered()?;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for NoiseStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // Decrypted bytes left over from an earlier record.
            if this.plain_start < this.plain_end {
                let n = buf.remaining().min(this.plain_end - this.plain_start);
                buf.put_slice(&this.plain_in[this.plain_start..this.plain_start + n]);
                this.plain_start += n;
                return Poll::Ready(Ok(()));
            }
            if let Some(kind) = this.read_failed {
                return Poll::Ready(Err(read_error(kind)));
            }
            // A whole record in the receive buffer?
            let avail = this.raw_end - this.raw_start;
            let mut needed = 2;
            if avail >= 2 {
                let prefix = [this.raw_in[this.raw_start], this.raw_in[this.raw_start + 1]];
                let len = usize::from(u16::from_be_bytes(prefix));
                needed = 2 + len;
                if avail >= needed {
                    let record = &this.raw_in[this.raw_start + 2..this.raw_start + needed];
                    this.raw_start += needed;
                    let plain_len = len.saturating_sub(TAG_LEN);
                    let result = if plain_len > 0 && buf.remaining() >= plain_len {
                        // Straight into the caller's buffer.
                        let out = buf.initialize_unfilled_to(plain_len);
                        this.transport.read_message(record, out).map(|n| {
                            buf.advance(n);
                            true
                        })
                    } else {
                        if this.plain_in.len() < MAX_PLAINTEXT_LEN {
                            this.plain_in.resize(MAX_PLAINTEXT_LEN, 0);
                        }
                        this.transport.read_message(record, &mut this.plain_in).map(|n| {
                            this.plain_start = 0;
                            this.plain_end = n;
                            false
                        })
                    };
                    match result {
                        Ok(true) => return Poll::Ready(Ok(())),
                        // Served from `plain_in` above; an empty record is skipped.
                        Ok(false) => continue,
                        Err(_) => {
                            this.read_failed = Some(io::ErrorKind::InvalidData);
                            return Poll::Ready(Err(read_error(io::ErrorKind::InvalidData)));
                        }
                    }
                }
            }
            if this.read_eof {
                if avail == 0 {
                    return Poll::Ready(Ok(()));
                }
                this.read_failed = Some(io::ErrorKind::UnexpectedEof);
                return Poll::Ready(Err(read_error(io::ErrorKind::UnexpectedEof)));
            }
            // Make room for the rest of the record, then read as much as the buffer holds.
            if this.raw_in.is_empty() {
                this.raw_in.resize(READ_BUF_LEN, 0);
            }
            if avail == 0 {
                this.raw_start = 0;
                this.raw_end = 0;
            } else if this.raw_start + needed > this.raw_in.len() {
                this.raw_in.copy_within(this.raw_start..this.raw_end, 0);
                this.raw_start = 0;
                this.raw_end = avail;
            }
            let mut space = ReadBuf::new(&mut this.raw_in[this.raw_end..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut space))?;
            let n = space.filled().len();
            if n == 0 {
                this.read_eof = true;
            } else {
                this.raw_end += n;
            }
        }
    }
}

fn read_error(kind: io::ErrorKind) -> io::Error {
    let message = match kind {
        io::ErrorKind::InvalidData => "a Noise record failed to authenticate",
        io::ErrorKind::UnexpectedEof => "the stream ended in the middle of a Noise record",
        _ => "the Noise stream failed earlier",
    };
    io::Error::new(kind, message)
}

impl<S: fmt::Debug> fmt::Debug for NoiseStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoiseStream")
            .field("inner", &self.inner)
            .field("remote", &self.remote)
            .field("buffered_write_len", &self.buffered_write_len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (
        NoiseStream<tokio::io::DuplexStream>,
        NoiseStream<tokio::io::DuplexStream>,
    ) {
        let (mut c, mut s) = tokio::io::duplex(1 << 20);
        let (ck, sk) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        let (client, server) =
            tokio::join!(client_handshake(&mut c, &ck, None), server_handshake(&mut s, &sk));
        (client.unwrap().into_stream(c), server.unwrap().into_stream(s))
    }

    #[tokio::test]
    async fn handshake_messages_have_the_documented_sizes() {
        let (mut c, mut s) = tokio::io::duplex(1 << 16);
        let (ck, sk) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        let client = tokio::spawn(async move { client_handshake(&mut c, &ck, None).await.map(|_| c) });
        let mut state = handshake_state(&sk, false).unwrap();
        let mut prefix = [0u8; 2];
        s.read_exact(&mut prefix).await.unwrap();
        assert_eq!(u16::from_be_bytes(prefix), 32);
        let mut msg = [0u8; 32];
        s.read_exact(&mut msg).await.unwrap();
        state.read_message(&msg, &mut [0u8; 64]).unwrap();
        let mut out = [0u8; 256];
        let n = state.write_message(&[], &mut out).unwrap();
        assert_eq!(n, 96);
        s.write_all(&(n as u16).to_be_bytes()).await.unwrap();
        s.write_all(&out[..n]).await.unwrap();
        s.read_exact(&mut prefix).await.unwrap();
        assert_eq!(u16::from_be_bytes(prefix), 64);
        client.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn small_writes_are_sealed_into_one_record_on_flush() {
        let (mut client, server) = pair().await;
        for _ in 0..100 {
            client.write_all(b"0123456789").await.unwrap();
        }
        assert_eq!(client.pending_sealed(), 0, "nothing sealed before a full record");
        assert_eq!(client.buffered_write_len(), 1000);
        client.flush().await.unwrap();
        assert_eq!(client.buffered_write_len(), 0);
        // One record: 2 + 1000 + 16 bytes.
        let mut raw = server.inner;
        let mut prefix = [0u8; 2];
        raw.read_exact(&mut prefix).await.unwrap();
        assert_eq!(u16::from_be_bytes(prefix), 1016);
    }

    #[tokio::test]
    async fn full_records_and_high_water() {
        let (mut client, mut server) = pair().await;
        let data: Vec<u8> = (0..3 * MAX_PLAINTEXT_LEN + 7).map(|i| i as u8).collect();
        let n = Pin::new(&mut client)
            .poll_write(&mut Context::from_waker(std::task::Waker::noop()), &data)
            .map(Result::unwrap);
        // Two full records reach the high-water mark; the rest waits for the next call.
        assert_eq!(n, Poll::Ready(2 * MAX_PLAINTEXT_LEN));
        assert_eq!(client.pending_sealed(), 2 * MAX_RECORD_LEN);
        client.write_all(&data[2 * MAX_PLAINTEXT_LEN..]).await.unwrap();
        client.flush().await.unwrap();
        let mut got = vec![0u8; data.len()];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, data);
    }

    #[tokio::test]
    async fn small_reads_are_served_from_the_buffer() {
        let (mut client, mut server) = pair().await;
        client.write_all(b"abcdef").await.unwrap();
        client.shutdown().await.unwrap();
        let mut one = [0u8; 1];
        let mut got = Vec::new();
        loop {
            let n = server.read(&mut one).await.unwrap();
            if n == 0 {
                break;
            }
            got.push(one[0]);
        }
        assert_eq!(got, b"abcdef");
        // EOF stays EOF.
        assert_eq!(server.read(&mut one).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn empty_and_short_records() {
        let (client, mut server) = pair().await;
        let mut raw = client.inner;
        let mut transport = client.transport;
        // An empty record (tag only) is skipped; then a real one.
        let mut sealed = Vec::new();
        let mut pos = 0;
        seal(&mut transport, &mut sealed, &mut pos, b"").unwrap();
        seal(&mut transport, &mut sealed, &mut pos, b"x").unwrap();
        raw.write_all(&sealed).await.unwrap();
        let mut one = [0u8; 1];
        server.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"x");
        // A record shorter than a tag cannot authenticate.
        raw.write_all(&[0, 3, 1, 2, 3]).await.unwrap();
        let err = server.read(&mut one).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = server.read(&mut one).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "the stream stays failed");
    }

    #[tokio::test]
    async fn eof_mid_record_is_unexpected_eof() {
        let (client, mut server) = pair().await;
        let mut raw = client.inner;
        raw.write_all(&[0, 40, 1, 2, 3]).await.unwrap();
        raw.shutdown().await.unwrap();
        let err = server.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_different_prologue_fails() {
        let (mut c, mut s) = tokio::io::duplex(1 << 16);
        let (ck, sk) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        let client = tokio::spawn(async move {
            let params = NOISE_PARAMS.parse().unwrap();
            let mut state = snow::Builder::new(params)
                .local_private_key(ck.secret.as_bytes())
                .prologue(b"something else")
                .build_initiator()
                .unwrap();
            let mut buf = Vec::new();
            send(&mut c, &mut state).await?;
            receive(&mut c, &mut state, &mut buf).await
        });
        assert!(matches!(
            server_handshake(&mut s, &sk).await,
            Err(NoiseError::Closed)
        ));
        assert!(matches!(client.await.unwrap(), Err(NoiseError::Snow(_))));
    }
}
