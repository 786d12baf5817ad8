//! The interface between generated code and the agent runtime. Not for direct use.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::agent::config::ConfigUpdate;
use crate::core::{Args, Identity, Publication, Value, from_value, to_value};
use crate::platform::mailbox::PeerEvent;

/// Which handler to run.
#[derive(Debug)]
pub enum Invocation {
    /// `#[on_setup]`.
    Setup,
    /// `#[on_start]`.
    Start,
    /// `#[on_stop]`.
    Stop,
    /// `#[on_connected]`: an agent attached through the bridge reached its platform.
    Connected,
    /// `#[on_disconnected]`: an agent attached through the bridge lost its platform.
    Disconnected,
    /// The `index`th `#[subscribe]`.
    Publication {
        /// Index into the descriptor's subscriptions.
        index: usize,
        /// The publication.
        publication: Arc<Publication>,
    },
    /// The `index`th `#[rpc]`.
    Rpc {
        /// Index into the descriptor's RPC exports.
        index: usize,
        /// The arguments.
        args: Args,
        /// Who sent the request.
        caller: Identity,
    },
    /// The `index`th `#[periodic]`.
    Periodic {
        /// Index into the descriptor's periodics.
        index: usize,
    },
    /// The `index`th `#[schedule]`.
    Cron {
        /// Index into the descriptor's crons.
        index: usize,
    },
    /// The `index`th `#[on_config]`.
    Config {
        /// Index into the descriptor's config handlers.
        index: usize,
        /// The change.
        update: Arc<ConfigUpdate>,
    },
    /// `#[on_peerlist]`.
    Peer(PeerEvent),
    /// `#[on_health]`: this agent's health changed.
    Health(crate::core::Health),
}

impl Invocation {
    /// What the handler run is for, as counted (see [`crate::platform::counters`]).
    pub fn kind(&self) -> crate::platform::counters::HandlerKind {
        use crate::platform::counters::HandlerKind;
        match self {
            Invocation::Setup | Invocation::Start | Invocation::Stop => HandlerKind::Lifecycle,
            Invocation::Connected
            | Invocation::Disconnected
            | Invocation::Peer(_)
            | Invocation::Health(_) => HandlerKind::Event,
            Invocation::Publication { .. } => HandlerKind::Publication,
            Invocation::Rpc { .. } => HandlerKind::Rpc,
            Invocation::Periodic { .. } | Invocation::Cron { .. } => HandlerKind::Timer,
            Invocation::Config { .. } => HandlerKind::Config,
        }
    }
}

/// Why a handler failed.
#[derive(Debug, Clone, PartialEq)]
pub enum HandlerError {
    /// The handler returned an error.
    Failed(String),
    /// The RPC arguments did not fit.
    InvalidParams(String),
}

/// A handler's result: the RPC reply (`Null` for other handlers) or its error.
pub type Outcome = Result<Value, HandlerError>;

/// A future that owns the agent while an `async` handler runs, and gives it back.
pub type AsyncHandler<A> = Box<dyn FnOnce(A) -> Pin<Box<dyn Future<Output = (A, Outcome)>>>>;

/// What `__dispatch` did.
pub enum Dispatch<A> {
    /// The handler ran (or there is none).
    Done(Outcome),
    /// The handler is `async`: run this with the agent moved in.
    Async(AsyncHandler<A>),
}

impl<A> Dispatch<A> {
    /// No handler for this invocation.
    pub fn none() -> Self {
        Dispatch::Done(Ok(Value::Null))
    }
}

/// What hooks and subscription/timer handlers may return.
#[diagnostic::on_unimplemented(
    message = "an agent handler must return `()` or `Result<(), E>` where `E: Display`, not `{Self}`",
    label = "unsupported return type"
)]
pub trait HandlerReturn {
    /// Converts into an [`Outcome`].
    fn into_outcome(self) -> Outcome;
}

impl HandlerReturn for () {
    fn into_outcome(self) -> Outcome {
        Ok(Value::Null)
    }
}

impl<E: Display> HandlerReturn for Result<(), E> {
    fn into_outcome(self) -> Outcome {
        self.map(|()| Value::Null)
            .map_err(|e| HandlerError::Failed(e.to_string()))
    }
}

/// What RPC handlers may return: a serializable value, or a `Result` of one.
pub struct RpcReturn;

impl RpcReturn {
    /// A plain return value.
    pub fn value<T: Serialize>(value: &T) -> Outcome {
        to_value(value).map_err(|e| HandlerError::Failed(format!("reply does not serialize: {e}")))
    }

    /// A `Result` return value.
    pub fn result<T: Serialize, E: Display>(result: Result<T, E>) -> Outcome {
        match result {
            Ok(v) => Self::value(&v),
            Err(e) => Err(HandlerError::Failed(e.to_string())),
        }
    }
}

/// Takes RPC arguments by position or by name.
pub struct ArgReader {
    method: &'static str,
    names: &'static [&'static str],
    positional: std::vec::IntoIter<Value>,
    named: crate::core::Map,
}

impl ArgReader {
    /// Checks the argument count and names against the parameter list.
    pub fn new(
        method: &'static str,
        names: &'static [&'static str],
        args: Args,
    ) -> Result<Self, HandlerError> {
        if args.positional.len() > names.len() {
            return Err(HandlerError::InvalidParams(format!(
                "{method}() takes {} argument{} but {} were given",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                args.positional.len()
            )));
        }
        if let Some(unknown) = args.named.keys().find(|k| !names.contains(&k.as_str())) {
            return Err(HandlerError::InvalidParams(format!(
                "{method}() got an unexpected keyword argument '{unknown}'"
            )));
        }
        for name in &names[..args.positional.len()] {
            if args.named.contains_key(*name) {
                return Err(HandlerError::InvalidParams(format!(
                    "{method}() got multiple values for argument '{name}'"
                )));
            }
        }
        Ok(ArgReader {
            method,
            names,
            positional: args.positional.into_iter(),
            named: args.named,
        })
    }

    /// The next parameter, converted to `T`. Call once per parameter, in order.
    pub fn next<T: DeserializeOwned>(&mut self, index: usize) -> Result<T, HandlerError> {
        let name = self.names[index];
        let (value, given) = match self.positional.next() {
            Some(v) => (v, true),
            None => match self.named.remove(name) {
                Some(v) => (v, true),
                None => (Value::Null, false),
            },
        };
        from_value(value).map_err(|e| {
            HandlerError::InvalidParams(if given {
                format!("{}() argument '{name}': {e}", self.method)
            } else {
                format!("{}() missing required argument '{name}'", self.method)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_reader_positional_named_and_errors() {
        let names: &'static [&'static str] = &["a", "b"];
        let mut r = ArgReader::new("m", names, Args::new().arg(1).kwarg("b", "x")).unwrap();
        assert_eq!(r.next::<i32>(0).unwrap(), 1);
        assert_eq!(r.next::<String>(1).unwrap(), "x");

        let too_many = ArgReader::new("m", names, Args::new().arg(1).arg(2).arg(3));
        assert!(
            matches!(too_many, Err(HandlerError::InvalidParams(m)) if m.contains("takes 2 arguments but 3"))
        );
        let unknown = ArgReader::new("m", names, Args::new().kwarg("z", 1));
        assert!(matches!(unknown, Err(HandlerError::InvalidParams(m)) if m.contains("'z'")));
        let dup = ArgReader::new("m", names, Args::new().arg(1).kwarg("a", 1));
        assert!(matches!(dup, Err(HandlerError::InvalidParams(m)) if m.contains("multiple values")));

        let mut r = ArgReader::new("m", names, Args::new()).unwrap();
        assert!(
            matches!(r.next::<i32>(0), Err(HandlerError::InvalidParams(m)) if m.contains("missing required argument 'a'"))
        );
        assert_eq!(r.next::<Option<i32>>(1).unwrap(), None);

        let mut r = ArgReader::new("m", names, Args::new().arg("nope")).unwrap();
        assert!(
            matches!(r.next::<i32>(0), Err(HandlerError::InvalidParams(m)) if m.contains("argument 'a'"))
        );
    }
}
