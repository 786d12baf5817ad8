//! RPC methods every agent exports, as VOLTTRON's subsystems do: `health.*` and
//! `heartbeat.*`. An agent's own `#[rpc]` of the same name takes precedence.
//!
//! | method | arguments | reply |
//! |--------|-----------|-------|
//! | `health.get_status` | — | `{"status", "context", "last_updated"}` |
//! | `health.set_status` | `status` ("GOOD", "BAD", ...), `context` (optional) | null |
//! | `health.send_alert` | `alert_key`, `statusobj` (`{"status", "context"}`) | subscribers reached |
//! | `heartbeat.start` / `.stop` / `.restart` | — | null |
//! | `heartbeat.start_with_period` / `.set_period` | `period` (seconds) | null |

use std::time::Duration;

use crate::agent::{AgentContext, ArgReader, HandlerError};
use crate::core::{Args, RpcError, Status, Value};

/// Answers `method` if it is a built-in; `None` otherwise.
pub(crate) fn answer(ctx: &AgentContext, method: &str, args: Args) -> Option<Result<Value, RpcError>> {
    let result = match method {
        "health.get_status" => no_args(method, args).map(|()| Value::from(&ctx.health())),
        "health.set_status" => read("health.set_status", &["status", "context"], args, |r| {
            let status: Status = r.next(0)?;
            let context: Option<String> = r.next(1)?;
            ctx.set_health(status, context.as_deref());
            Ok(Value::Null)
        }),
        "health.send_alert" => read("health.send_alert", &["alert_key", "statusobj"], args, |r| {
            let key: String = r.next(0)?;
            let status: Value = r.next(1)?;
            let level: Status = crate::core::from_value(status["status"].clone())
                .map_err(|e| HandlerError::InvalidParams(format!("statusobj.status: {e}")))?;
            let reached = ctx
                .send_alert(&key, level, status["context"].as_str())
                .map_err(|e| HandlerError::Failed(e.to_string()))?;
            Ok(Value::from(reached))
        }),
        "heartbeat.start" => no_args(method, args).map(|()| {
            ctx.heartbeat().start();
            Value::Null
        }),
        "heartbeat.stop" => no_args(method, args).map(|()| {
            ctx.heartbeat().stop();
            Value::Null
        }),
        "heartbeat.restart" => no_args(method, args).map(|()| {
            ctx.heartbeat().restart();
            Value::Null
        }),
        "heartbeat.start_with_period" => read("heartbeat.start_with_period", &["period"], args, |r| {
            ctx.heartbeat().start_with_period(period(r.next(0)?)?);
            Ok(Value::Null)
        }),
        "heartbeat.set_period" => read("heartbeat.set_period", &["period"], args, |r| {
            ctx.heartbeat().set_period(period(r.next(0)?)?);
            Ok(Value::Null)
        }),
        _ => return None,
    };
    Some(result.map_err(|e| match e {
        HandlerError::InvalidParams(message) => RpcError::InvalidParams {
            method: method.to_owned(),
            message,
        },
        HandlerError::Failed(message) => RpcError::Remote {
            method: method.to_owned(),
            message,
            kind: "error".into(),
        },
    }))
}

fn period(seconds: f64) -> Result<Duration, HandlerError> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            HandlerError::InvalidParams(format!(
                "period must be a positive number of seconds, not {seconds}"
            ))
        })
}

fn no_args(method: &str, args: Args) -> Result<(), HandlerError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(HandlerError::InvalidParams(format!(
            "{method}() takes no arguments"
        )))
    }
}

fn read(
    method: &'static str,
    names: &'static [&'static str],
    args: Args,
    f: impl FnOnce(&mut ArgReader) -> Result<Value, HandlerError>,
) -> Result<Value, HandlerError> {
    let mut reader = ArgReader::new(method, names, args)?;
    f(&mut reader)
}
