//! The trace context current on this thread: the host makes the context of what a handler
//! handles (a publication's `traceparent` header, an RPC request's trace) current while the
//! handler runs (and while each poll of an async handler runs), so that what the handler
//! publishes or calls carries it on (see [`crate::core::trace`]).
//!
//! | where | current |
//! |-------|---------|
//! | a handler of a publication or request that carried a trace | that trace (or, with an exporter, the handler's span) |
//! | any other handler, the platform handle, other threads | none: publishes and calls carry no trace unless given one ([`RpcCall::trace`](crate::platform::RpcCall::trace), a `traceparent` header) |
//!
//! Nothing is read or written when nothing is traced: the slot is an `Option` swapped
//! only when a traced envelope is handled.
//!
//! A [`SpanFactory`] (the `otel` feature's, installed process-wide with
//! [`set_span_factory`]) turns traced work into spans: each handler run of a traced
//! envelope becomes a span, child of the context received, and each call a handler makes
//! becomes a client span, child of the handler's, whose context the request carries. Without
//! one, the context is passed on as received.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::OnceLock;

use crate::core::{Identity, TraceContext};
use crate::platform::counters::HandlerKind;

/// A span in progress: its context (what the work it covers passes on) and whatever keeps
/// it open (it ends when dropped).
pub struct ActiveSpan {
    /// The span's own context: same trace, its span id.
    pub context: TraceContext,
    /// Ends the span when dropped.
    pub guard: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for ActiveSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveSpan")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// Makes spans of traced work (see the module docs). `None`: no span (the context is
/// passed on as received).
pub trait SpanFactory: Send + Sync + 'static {
    /// A handler run of agent `identity` for an envelope traced with `parent`.
    fn handler(&self, identity: &Identity, kind: HandlerKind, parent: &TraceContext) -> Option<ActiveSpan>;
    /// A call from `caller` to `callee`'s `method`, made inside `parent`.
    fn call(
        &self,
        caller: &Identity,
        callee: &str,
        method: &str,
        parent: &TraceContext,
    ) -> Option<ActiveSpan>;
}

static SPANS: OnceLock<Box<dyn SpanFactory>> = OnceLock::new();

/// Installs the process's span factory (once; false if one is installed already).
pub fn set_span_factory(factory: impl SpanFactory) -> bool {
    SPANS.set(Box::new(factory)).is_ok()
}

/// The process's span factory, if one is installed.
#[inline]
pub(crate) fn spans() -> Option<&'static dyn SpanFactory> {
    SPANS.get().map(|b| &**b)
}

/// The context traced work passes on, and its span if a factory made one: inside a span,
/// the span's own context; else the context received (passed on as it came).
#[inline]
pub(crate) fn continued(
    received: Option<TraceContext>,
    make: impl FnOnce(&dyn SpanFactory, &TraceContext) -> Option<ActiveSpan>,
) -> (Option<TraceContext>, Option<ActiveSpan>) {
    let span = received.as_ref().and_then(|t| make(spans()?, t));
    match &span {
        Some(s) => (Some(s.context.clone()), span),
        None => (received, None),
    }
}

thread_local! {
    static CURRENT: RefCell<Option<TraceContext>> = const { RefCell::new(None) };
}

/// The trace context current on this thread, if any (inside a handler of a traced
/// publication or request).
#[inline]
pub fn current_trace() -> Option<TraceContext> {
    CURRENT.with(|slot| slot.borrow().clone())
}

/// Runs `f` with `trace` current (nothing to do for `None`), restored even if `f` unwinds.
#[inline]
pub(crate) fn with<R>(trace: Option<&TraceContext>, f: impl FnOnce() -> R) -> R {
    match trace {
        None => f(),
        Some(trace) => with_trace(trace, f),
    }
}

fn with_trace<R>(trace: &TraceContext, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<TraceContext>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|slot| *slot.borrow_mut() = previous);
        }
    }
    let _restore = Restore(CURRENT.with(|slot| slot.borrow_mut().replace(trace.clone())));
    f()
}

/// A future polled with `trace` current (an async handler of a traced envelope), holding
/// its span, if any, open until it completes.
pub(crate) struct Traced<F> {
    trace: Option<TraceContext>,
    _span: Option<ActiveSpan>,
    inner: F,
}

impl<F> Traced<F> {
    pub(crate) fn new(trace: Option<TraceContext>, span: Option<ActiveSpan>, inner: F) -> Self {
        Traced {
            trace,
            _span: span,
            inner,
        }
    }
}

impl<F: Future + Unpin> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        with(this.trace.as_ref(), || Pin::new(&mut this.inner).poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_inside_and_restored_after_even_on_unwind() {
        let t = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None).unwrap();
        assert_eq!(current_trace(), None);
        with(Some(&t), || assert_eq!(current_trace().as_ref(), Some(&t)));
        assert_eq!(current_trace(), None);
        let caught = std::panic::catch_unwind(|| with(Some(&t), || panic!("boom")));
        assert!(caught.is_err());
        assert_eq!(current_trace(), None);
        with(None, || assert_eq!(current_trace(), None));
    }
}
