//! The agent whose code runs is the thread's current agent (what `volttron::logs` puts on
//! each record as `agent`): in `on_setup`, in a sync RPC handler, and in an async one
//! before and after it awaits another agent's handler (which sees its own identity); the
//! platform's side (the test's thread) has none.

use std::sync::Arc;

use parking_lot::Mutex;
use volttron::agent::log_scope::current_agent;
use volttron::prelude::*;
use volttron::testing::TestPlatform;

type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

fn note(seen: &Seen, what: &str) {
    let current = current_agent().map(|a| a.as_str().to_owned());
    seen.lock().push((what.to_owned(), current));
}

struct Teller {
    seen: Seen,
}

#[volttron::agent]
impl Teller {
    #[on_setup]
    fn setup(&mut self) {
        note(&self.seen, "setup");
    }

    #[rpc]
    fn sync_call(&mut self) {
        note(&self.seen, "sync");
    }

    #[rpc]
    async fn async_call(&mut self, ctx: &AgentContext) -> Result<(), RpcError> {
        note(&self.seen, "async before");
        ctx.call("other", "sync_call", ()).await?;
        note(&self.seen, "async after");
        Ok(())
    }
}

#[volttron::test]
async fn handlers_run_with_their_agent_current(tp: TestPlatform) {
    let seen = Seen::default();
    tp.spawn("teller", Teller { seen: seen.clone() }).await.unwrap();
    tp.spawn("other", Teller { seen: seen.clone() }).await.unwrap();
    tp.call("teller", "sync_call", ()).await.unwrap();
    tp.call("teller", "async_call", ()).await.unwrap();
    assert_eq!(current_agent(), None, "the platform's side");
    let teller = Some("teller".to_owned());
    let other = Some("other".to_owned());
    assert_eq!(
        *seen.lock(),
        vec![
            ("setup".to_owned(), teller.clone()),
            ("setup".to_owned(), other.clone()),
            ("sync".to_owned(), teller.clone()),
            ("async before".to_owned(), teller.clone()),
            ("sync".to_owned(), other),
            ("async after".to_owned(), teller),
        ]
    );
    tp.shutdown().await;
}
