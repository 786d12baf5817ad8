//! RPC vocabulary: arguments and errors, with VOLTTRON's JSON-RPC 2.0 semantics.
//!
//! | situation                                  | error                                   | JSON-RPC code |
//! |--------------------------------------------|-----------------------------------------|---------------|
//! | no peer with that identity                 | [`RpcError::UnknownPeer`]               | -32000 (VIP `EHOSTUNREACH`) |
//! | the peer exports no such method            | [`RpcError::MethodNotFound`] (`method 'x' is not implemented`) | -32601 |
//! | missing, surplus or mistyped arguments     | [`RpcError::InvalidParams`]             | -32602 |
//! | the handler returned an error or panicked  | [`RpcError::Remote`]                    | -32000 |
//! | the caller lacks a capability the method requires | [`RpcError::Unauthorized`]       | -32001        |
//! | no reply before the deadline               | [`RpcError::Timeout`]                   | —             |
//! | the peer stopped before replying           | [`RpcError::PeerStopped`]               | —             |
//! | a bridged caller's link is down            | [`RpcError::NotConnected`]              | —             |
//! | the platform called (`on_platform`) cannot be reached | [`RpcError::Unreachable`]    | —             |
//! | the reply does not convert to the asked type | [`RpcError::InvalidReply`]            | —             |

use std::time::Duration;

use crate::core::{Map, Value, ValueError, to_value};

/// The parameters of an RPC call: positional and named, like JSON-RPC's `params` (a list,
/// a dict, or VOLTTRON's `{"*args": [...], "**kwargs": {...}}`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Args {
    /// Positional arguments, in order.
    pub positional: Vec<Value>,
    /// Named arguments.
    pub named: Map,
}

impl Args {
    /// No arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a positional argument.
    pub fn arg(mut self, value: impl Into<Value>) -> Self {
        self.positional.push(value.into());
        self
    }

    /// Adds a named argument.
    pub fn kwarg(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.named.insert(name.into(), value.into());
        self
    }

    /// Number of arguments, positional and named.
    pub fn len(&self) -> usize {
        self.positional.len() + self.named.len()
    }

    /// True when there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Anything usable as the arguments of an RPC call.
///
/// Implemented for `()` (no arguments), [`Args`], `Vec<Value>` (positional), [`Map`] (named),
/// a [`Value`] (a list is positional, a map is named, null is none, anything else is one
/// positional argument, like JSON-RPC `params`), and tuples of up to eight
/// `serde::Serialize` values (positional).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as RPC arguments",
    label = "not RPC arguments",
    note = "use `()`, a tuple of serializable values like `(1, \"a\")`, `Args::new().arg(..).kwarg(..)`, a `Vec<Value>` or a `Value`"
)]
pub trait IntoArgs {
    /// Converts into [`Args`]; fails if a value does not serialize.
    fn into_args(self) -> Result<Args, ValueError>;
}

impl IntoArgs for Args {
    fn into_args(self) -> Result<Args, ValueError> {
        Ok(self)
    }
}

impl IntoArgs for () {
    fn into_args(self) -> Result<Args, ValueError> {
        Ok(Args::new())
    }
}

impl IntoArgs for Vec<Value> {
    fn into_args(self) -> Result<Args, ValueError> {
        Ok(Args {
            positional: self,
            named: Map::new(),
        })
    }
}

impl IntoArgs for Map {
    fn into_args(self) -> Result<Args, ValueError> {
        Ok(Args {
            positional: Vec::new(),
            named: self,
        })
    }
}

impl IntoArgs for Value {
    fn into_args(self) -> Result<Args, ValueError> {
        Ok(match self {
            Value::Null => Args::new(),
            Value::List(positional) => Args {
                positional,
                named: Map::new(),
            },
            Value::Map(named) => Args {
                positional: Vec::new(),
                named,
            },
            other => Args::new().arg(other),
        })
    }
}

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: serde::Serialize),+> IntoArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_args(self) -> Result<Args, ValueError> {
                let ($($name,)+) = self;
                Ok(Args { positional: vec![$(to_value(&$name)?),+], named: Map::new() })
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);
tuple_args!(A, B, C, D, E, F, G);
tuple_args!(A, B, C, D, E, F, G, H);

/// Why an RPC call failed. See the module docs for the mapping to JSON-RPC codes.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum RpcError {
    /// No peer with that identity is connected.
    #[error("peer '{peer}' is not connected")]
    UnknownPeer {
        /// The identity asked for.
        peer: String,
    },
    /// The peer exports no method of that name.
    #[error("method '{method}' is not implemented")]
    MethodNotFound {
        /// The method asked for.
        method: String,
    },
    /// The arguments did not fit the method's parameters.
    #[error("invalid parameters for '{method}': {message}")]
    InvalidParams {
        /// The method called.
        method: String,
        /// What did not fit.
        message: String,
    },
    /// The remote handler failed: it returned an error or panicked.
    #[error("remote error in '{method}': {message}")]
    Remote {
        /// The method called.
        method: String,
        /// The handler's error message.
        message: String,
        /// The kind of failure: `"error"` for a returned error, `"panic"` for a panic.
        kind: String,
    },
    /// The caller is not authorized to call the method (VOLTTRON's `-32001`): it lacks a
    /// required capability, or its arguments fall outside the capability's restriction.
    #[error("unauthorized call to '{method}': {message}")]
    Unauthorized {
        /// The method called.
        method: String,
        /// Which capability was missing, or which argument was refused.
        message: String,
    },
    /// No reply arrived before the deadline.
    #[error("no reply from '{peer}' to '{method}' within {timeout:?}")]
    Timeout {
        /// The peer called.
        peer: String,
        /// The method called.
        method: String,
        /// The deadline that passed.
        timeout: Duration,
    },
    /// The peer stopped (or crashed) before it replied.
    #[error("peer '{peer}' stopped before replying")]
    PeerStopped {
        /// The peer called.
        peer: String,
    },
    /// The caller is an agent attached through the bridge whose link to the platform is
    /// down (it is reconnecting).
    #[error("not connected to the platform")]
    NotConnected,
    /// The caller could not convert its arguments, or the reply, to or from [`Value`].
    #[error("value conversion failed: {message}")]
    InvalidReply {
        /// The conversion error.
        message: String,
    },
    /// The call was addressed to another platform
    /// ([`on_platform`](crate::platform::endpoint::RpcCall::on_platform)) that cannot be
    /// reached: it is not federated with this one, it is down or left, or the broker
    /// between them is.
    #[error("platform '{platform}' is unreachable: {reason}")]
    Unreachable {
        /// The platform called.
        platform: String,
        /// Why.
        reason: String,
    },
}

impl RpcError {
    /// The JSON-RPC 2.0 error code VOLTTRON uses for this failure, where there is one.
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcError::MethodNotFound { .. } => Some(-32601),
            RpcError::InvalidParams { .. } => Some(-32602),
            RpcError::Remote { .. } | RpcError::UnknownPeer { .. } => Some(-32000),
            RpcError::Unauthorized { .. } => Some(-32001),
            _ => None,
        }
    }
}

impl From<ValueError> for RpcError {
    fn from(e: ValueError) -> Self {
        RpcError::InvalidReply {
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn into_args_shapes() {
        let a = (1, "x", 2.5).into_args().unwrap();
        assert_eq!(
            a.positional,
            vec![Value::from(1), Value::from("x"), Value::from(2.5)]
        );
        assert!(().into_args().unwrap().is_empty());
        let v: Value = serde_json::json!({"a": 1}).into();
        assert_eq!(v.into_args().unwrap().named.len(), 1);
        let v: Value = serde_json::json!([1, 2]).into();
        assert_eq!(v.into_args().unwrap().positional.len(), 2);
        assert_eq!(
            Value::from(7).into_args().unwrap().positional,
            vec![Value::from(7)]
        );
        let b = Args::new().arg(1).kwarg("k", "v");
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn messages_and_codes() {
        let e = RpcError::MethodNotFound { method: "x".into() };
        assert_eq!(e.to_string(), "method 'x' is not implemented");
        assert_eq!(e.code(), Some(-32601));
        assert_eq!(
            RpcError::InvalidParams {
                method: "m".into(),
                message: "bad".into()
            }
            .code(),
            Some(-32602)
        );
    }
}
