//! What the building data path's tests share: an agent that calls the actuator (or the
//! driver) as itself, and schedule requests.

use volttron::agents::{actuator, driver};
use volttron::prelude::*;
use volttron::testing::TestPlatform;

/// Calls the actuator (`ask`) or the driver (`ask_driver`) on request, so the calls carry
/// its identity.
pub(crate) struct Operator;

#[volttron::agent]
impl Operator {
    #[rpc]
    async fn ask(&mut self, ctx: &AgentContext, method: String, args: Vec<Value>) -> Result<Value, RpcError> {
        ctx.call(actuator::IDENTITY, &method, positional(args)).await
    }

    #[rpc]
    async fn ask_driver(
        &mut self,
        ctx: &AgentContext,
        method: String,
        args: Vec<Value>,
    ) -> Result<Value, RpcError> {
        ctx.call(driver::IDENTITY, &method, positional(args)).await
    }
}

fn positional(args: Vec<Value>) -> Args {
    Args {
        positional: args,
        ..Args::new()
    }
}

/// `who` (an [`Operator`]) calls the actuator's `method`.
pub(crate) async fn ask(
    tp: &TestPlatform,
    who: &str,
    method: &str,
    args: Vec<Value>,
) -> Result<Value, RpcError> {
    tp.call(who, "ask", (method, args)).await
}

/// A schedule request of one slot: `[[device, start, end]]`.
pub(crate) fn requests(device: &str, start: String, end: String) -> Value {
    Value::List(vec![Value::List(vec![
        Value::from(device),
        Value::from(start),
        Value::from(end),
    ])])
}

/// `secs` from the platform's now, as schedules write times (with the offset: a time
/// without one is the host's local time, as VOLTTRON's actuator reads it).
pub(crate) fn at(tp: &TestPlatform, secs: i64) -> String {
    (tp.now() + chrono::Duration::seconds(secs))
        .format("%Y-%m-%d %H:%M:%S+00:00")
        .to_string()
}
