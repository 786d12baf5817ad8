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

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::core::TraceContext;

thread_local! {
    static CURRENT: RefCell<Option<TraceContext>> = const { RefCell::new(None) };
}

/// The trace context current on this thread, if any (inside a handler of a traced
/// publication or request).
pub fn current_trace() -> Option<TraceContext> {
    CURRENT.with(|slot| slot.borrow().clone())
}

/// Runs `f` with `trace` current (nothing to do for `None`), restored even if `f` unwinds.
pub(crate) fn with<R>(trace: Option<&TraceContext>, f: impl FnOnce() -> R) -> R {
    let Some(trace) = trace else {
        return f();
    };
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

/// A future polled with `trace` current (an async handler of a traced envelope).
pub(crate) struct Traced<F> {
    trace: Option<TraceContext>,
    inner: F,
}

impl<F> Traced<F> {
    pub(crate) fn new(trace: Option<TraceContext>, inner: F) -> Self {
        Traced { trace, inner }
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
