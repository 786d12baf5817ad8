//! The byte-level half of a bridge connection, shared by the platform and agent sides:
//! an [`Outbox`] that any thread encodes frames into, and the writer task that empties it
//! with one write per batch.
//!
//! Syscalls, not bytes, are the cost of a socket link (one write per 64-byte frame runs
//! about 100 times slower than 64 KiB writes), so senders never write: they append the
//! encoded frame to the outbox buffer and wake the writer only when the buffer goes from
//! empty to non-empty. The writer swaps the whole buffer out, lets its owner add more
//! (the platform side turns queued mailbox envelopes into frames there), and writes it all
//! before flushing once.

use std::sync::Arc;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::codec::Encoder;

use super::codec::{FrameCodec, FrameError};
use super::frame::Frame;

/// Bytes a link buffers for sending before senders are refused (32 MiB).
pub(crate) const OUTBOX_LIMIT: usize = 32 * 1024 * 1024;

/// Why a frame was not queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The link is down.
    #[error("the bridge link is closed")]
    Closed,
    /// More than [`OUTBOX_LIMIT`] bytes are waiting to be written.
    #[error("the bridge link has {0} bytes waiting to be written")]
    Full(usize),
    /// The frame does not encode (too large, or not serializable).
    #[error(transparent)]
    Encode(#[from] FrameError),
}

struct OutState {
    buf: BytesMut,
    codec: FrameCodec,
    closed: bool,
}

/// Frames waiting to be written on one link. See the module docs.
pub(crate) struct Outbox {
    state: Mutex<OutState>,
    wake: Notify,
}

impl Outbox {
    pub(crate) fn new(max_frame: usize) -> Arc<Outbox> {
        Arc::new(Outbox {
            state: Mutex::new(OutState {
                buf: BytesMut::with_capacity(64 * 1024),
                codec: FrameCodec::default().with_max_frame(max_frame),
                closed: false,
            }),
            wake: Notify::new(),
        })
    }

    /// Encodes `frame` into the buffer and wakes the writer if it was idle.
    pub(crate) fn send(&self, frame: &Frame) -> Result<(), SendError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(SendError::Closed);
        }
        if st.buf.len() > OUTBOX_LIMIT {
            return Err(SendError::Full(st.buf.len()));
        }
        let was_empty = st.buf.is_empty();
        let OutState { buf, codec, .. } = &mut *st;
        let before = buf.len();
        if let Err(e) = codec.encode(frame, buf) {
            buf.truncate(before);
            return Err(e.into());
        }
        drop(st);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Wakes the writer (something besides the buffer has work for it).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Refuses further frames and wakes the writer so it can finish.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.wake.notify_one();
    }

    /// Accepts frames again (a reconnected link), dropping whatever the old one left.
    pub(crate) fn reopen(&self) {
        let mut st = self.state.lock();
        st.closed = false;
        st.buf.clear();
    }

    /// Moves the buffered bytes into `out`; returns whether the outbox is closed.
    fn take(&self, out: &mut BytesMut) -> bool {
        let mut st = self.state.lock();
        if out.is_empty() {
            std::mem::swap(out, &mut st.buf);
        } else {
            out.extend_from_slice(&st.buf);
            st.buf.clear();
        }
        st.closed
    }
}

/// Writes everything sent to `outbox` until it is closed and drained, or the write fails.
/// Before each write, `fill` may append more bytes (it returns true while it has more).
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    outbox: Arc<Outbox>,
    mut writer: W,
    mut fill: impl FnMut(&mut BytesMut) -> bool,
) -> std::io::Result<()> {
    let mut batch = BytesMut::with_capacity(64 * 1024);
    loop {
        let notified = outbox.wake.notified();
        futures::pin_mut!(notified);
        notified.as_mut().enable();
        let closed = outbox.take(&mut batch);
        let more = fill(&mut batch);
        if !batch.is_empty() {
            writer.write_all(&batch).await?;
            batch.clear();
            if !more {
                writer.flush().await?;
            }
            continue;
        }
        if closed {
            let _ = writer.shutdown().await;
            return Ok(());
        }
        if !more {
            notified.await;
        }
    }
}

/// A stream with bytes already read from it put back in front: lets a listener look at
/// the first byte of a connection to tell a handshake from a plain hello.
pub(crate) struct Rewind<S> {
    prefix: Option<BytesMut>,
    inner: S,
}

impl<S> Rewind<S> {
    pub(crate) fn new(prefix: &[u8], inner: S) -> Self {
        Rewind {
            prefix: (!prefix.is_empty()).then(|| BytesMut::from(prefix)),
            inner,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if let Some(prefix) = self.prefix.as_mut() {
            let n = prefix.len().min(buf.remaining());
            buf.put_slice(&prefix.split_to(n));
            if prefix.is_empty() {
                self.prefix = None;
            }
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::frame::{Publish, RpcNotify};
    use crate::core::{Args, Identity, Map, Topic, Value};

    #[test]
    fn senders_are_refused_past_the_limit_and_once_closed() {
        let outbox = Outbox::new(8 * 1024 * 1024);
        let frame = Frame::Publish(Publish {
            id: 0,
            bus: String::new(),
            topic: Topic::new("big").unwrap(),
            headers: Map::new(),
            message: Value::from("x".repeat(1024 * 1024)),
        });
        // Nothing drains the outbox: past the limit it refuses, saying how much waits.
        let mut sent = 0;
        let queued = loop {
            match outbox.send(&frame) {
                Ok(()) => sent += 1,
                Err(SendError::Full(queued)) => break queued,
                Err(e) => panic!("{e}"),
            }
        };
        assert!(queued > OUTBOX_LIMIT, "{queued}");
        assert!(sent <= OUTBOX_LIMIT / (1024 * 1024) + 1, "{sent}");
        outbox.close();
        let small = Frame::RpcNotify(RpcNotify {
            peer: Identity::new("p").unwrap(),
            method: "m".into(),
            args: Args::new(),
            trace: None,
        });
        assert!(matches!(outbox.send(&small), Err(SendError::Closed)));
        outbox.reopen();
        assert!(
            outbox.send(&small).is_ok(),
            "a reopened outbox accepts frames again"
        );
    }
}
