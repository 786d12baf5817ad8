//! `Caller`: an `#[rpc]` method learns who called it (VOLTTRON's
//! `rpc.context.vip_message.peer`), in-process and through the bridge alike; the
//! parameter is not an argument of the call and is not in `inspect`.

use std::time::Duration;

use volttron::prelude::*;
use volttron::remote::Remote;
use volttron::testing::TestPlatform;

/// Answers with who called, and guards a point by the caller's identity.
#[derive(Default)]
struct Actuator {
    holder: Option<Identity>,
}

#[volttron::agent]
impl Actuator {
    /// Who is asking.
    #[rpc]
    fn whoami(&mut self, caller: Caller) -> String {
        caller.to_string()
    }

    /// Reserves the device for the caller.
    #[rpc]
    fn reserve(&mut self, caller: Caller) -> bool {
        if self.holder.is_some() {
            return false;
        }
        self.holder = Some(caller.into_identity());
        true
    }

    /// The caller among the arguments: `point` and `value` are the call's arguments.
    #[rpc]
    fn set_point(&mut self, point: String, caller: Caller, value: f64) -> Result<String, String> {
        match &self.holder {
            Some(h) if h == caller.identity() => Ok(format!("{point}={value}")),
            _ => Err(format!("'{caller}' does not hold the device")),
        }
    }
}

/// Calls the actuator on request.
struct Operator;

#[volttron::agent]
impl Operator {
    #[rpc]
    async fn ask(&mut self, ctx: &AgentContext, method: String, args: Vec<Value>) -> Result<Value, RpcError> {
        let args = Args {
            positional: args,
            ..Args::new()
        };
        ctx.call("actuator", &method, args).await
    }
}

#[volttron::test]
async fn an_rpc_learns_its_caller_in_process(tp: TestPlatform) {
    tp.spawn("actuator", Actuator::default()).await.unwrap();
    tp.spawn("operator", Operator).await.unwrap();
    tp.spawn("intruder", Operator).await.unwrap();
    let me: String = tp.call("actuator", "whoami", ()).returning().await.unwrap();
    assert_eq!(me, "platform", "calls from the platform handle");
    let me: Value = tp
        .call("operator", "ask", ("whoami", Vec::<Value>::new()))
        .await
        .unwrap();
    assert_eq!(me, Value::from("operator"));

    let reserved: Value = tp
        .call("operator", "ask", ("reserve", Vec::<Value>::new()))
        .await
        .unwrap();
    assert_eq!(reserved, Value::from(true));
    // Positional arguments skip the caller: ("ahu1/setpoint", 21.5).
    let set = tp
        .call(
            "operator",
            "ask",
            ("set_point", vec![Value::from("ahu1/setpoint"), Value::from(21.5)]),
        )
        .await
        .unwrap();
    assert_eq!(set, Value::from("ahu1/setpoint=21.5"));
    let refused = tp
        .call(
            "intruder",
            "ask",
            ("set_point", vec![Value::from("ahu1/setpoint"), Value::from(30.0)]),
        )
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("'intruder' does not hold"),
        "{refused}"
    );

    // inspect shows the call's parameters only.
    let one = tp.call("actuator", "set_point.inspect", ()).await.unwrap();
    assert_eq!(one["param_order"], Value::from(vec!["point", "value"]));
    assert_eq!(one["params"]["caller"], Value::Null);
    tp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridged_agent_sees_the_same_caller() {
    let tp = TestPlatform::builder().bridge(true).start().await;
    let addr = tp.addresses().into_iter().next().expect("listens on its socket");
    tp.spawn("operator", Operator).await.unwrap();
    let remote = Remote::new(addr)
        .identity("actuator")
        .start(Actuator::default())
        .await
        .unwrap();
    // The in-process operator calls the bridged actuator.
    let me = tokio::time::timeout(
        Duration::from_secs(10),
        tp.call("operator", "ask", ("whoami", Vec::<Value>::new()))
            .into_future(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(me, Value::from("operator"));
    let me: String = tp.call("actuator", "whoami", ()).returning().await.unwrap();
    assert_eq!(me, "platform");
    remote.shutdown().await;
    tp.shutdown().await;
}
