//! RPC introspection, as VOLTTRON's `inspect` and `<method>.inspect`.
//!
//! | call               | reply                                                         |
//! |--------------------|---------------------------------------------------------------|
//! | `inspect`          | `{"methods": ["a", "b", ...]}` (sorted, `inspect` excluded)    |
//! | `<m>.inspect`      | `{"params": {"name": "type", ...}, "param_order": [...], "doc": "...", "return": "type"}` |
//! | anything else      | `method 'x' is not implemented`                               |

use crate::agent::descriptor::AgentDescriptor;
use crate::core::{Map, RpcError, Value};

/// Answers a call to a method the agent does not export itself.
pub(crate) fn answer(descriptor: &AgentDescriptor, method: &str) -> Result<Value, RpcError> {
    if method == "inspect" {
        let mut names: Vec<&str> = descriptor.rpcs.iter().map(|r| r.name).collect();
        names.sort_unstable();
        let mut m = Map::new();
        m.insert("methods".into(), names.into_iter().map(Value::from).collect());
        return Ok(Value::Map(m));
    }
    if let Some(name) = method.strip_suffix(".inspect")
        && let Some(spec) = descriptor.rpcs.iter().find(|r| r.name == name)
    {
        let params: Map = spec
            .params
            .iter()
            .map(|p| (p.name.to_owned(), Value::from(p.ty)))
            .collect();
        let order: Vec<Value> = spec.params.iter().map(|p| Value::from(p.name)).collect();
        let mut m = Map::new();
        m.insert("params".into(), Value::Map(params));
        m.insert("param_order".into(), Value::List(order));
        m.insert("doc".into(), Value::from(spec.doc));
        m.insert("return".into(), Value::from(spec.returns));
        return Ok(Value::Map(m));
    }
    Err(RpcError::MethodNotFound {
        method: method.to_owned(),
    })
}
