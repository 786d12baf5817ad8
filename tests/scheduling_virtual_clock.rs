//! Scheduling on the virtual clock: periodic (with `wait`, no catch-up, no backlog), cron,
//! one-shot, run-time timers and cancellation, ordering across agents.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use volttron::prelude::*;
use volttron::testing::TestPlatform;

type Log = Arc<Mutex<Vec<String>>>;

fn secs(tp: &TestPlatform) -> i64 {
    (tp.now()
        - "2024-01-01T00:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap())
    .num_seconds()
}

struct Ticker {
    name: &'static str,
    log: Log,
}

#[volttron::agent]
impl Ticker {
    #[periodic(secs = 2)]
    fn every_two(&mut self, ctx: &AgentContext) {
        self.log
            .lock()
            .push(format!("{}@{}", self.name, ctx.now().format("%M:%S")));
    }
}

fn ticker(name: &'static str, log: &Log) -> Ticker {
    Ticker {
        name,
        log: log.clone(),
    }
}

struct Waiter {
    log: Log,
}

#[volttron::agent]
impl Waiter {
    #[periodic(secs = 10, wait = 1)]
    fn tick(&mut self, ctx: &AgentContext) {
        self.log.lock().push(ctx.now().format("%M:%S").to_string());
    }
}

#[volttron::test]
async fn periodic_fires_on_period_and_wait_sets_the_first_run(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("w", Waiter { log: log.clone() }).await.unwrap();
    tp.advance(Duration::from_millis(999)).await;
    assert!(log.lock().is_empty());
    tp.advance(Duration::from_millis(1)).await;
    assert_eq!(*log.lock(), ["00:01"]);
    tp.advance(Duration::from_secs(25)).await;
    assert_eq!(*log.lock(), ["00:01", "00:11", "00:21"]);
    assert_eq!(secs(&tp), 26);
    tp.shutdown().await;
}

#[volttron::test]
async fn timers_of_several_agents_fire_in_time_order(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("a", ticker("a", &log)).await.unwrap();
    tp.spawn("w", Waiter { log: log.clone() }).await.unwrap();
    tp.advance(Duration::from_secs(6)).await;
    // `Ticker` has no `wait`: its first run is right after start, as VOLTTRON's.
    assert_eq!(*log.lock(), ["a@00:00", "00:01", "a@00:02", "a@00:04", "a@00:06"]);
    tp.shutdown().await;
}

struct SlowTicker {
    log: Log,
}

#[volttron::agent]
impl SlowTicker {
    /// Each run takes 3.5 s of virtual time.
    #[periodic(secs = 1)]
    async fn tick(&mut self, ctx: &AgentContext) {
        self.log.lock().push(format!("start {}", ctx.now().format("%S")));
        ctx.clock().sleep(Duration::from_millis(3500)).await;
    }
}

#[volttron::test]
async fn a_slow_periodic_handler_builds_no_backlog(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("slow", SlowTicker { log: log.clone() }).await.unwrap();
    tp.advance(Duration::from_secs(10)).await;
    // Runs at 0 (busy until 3.5), 1..3 skipped, 4 (busy until 7.5), 5..7 skipped, 8.
    assert_eq!(*log.lock(), ["start 00", "start 04", "start 08"]);
    tp.shutdown().await;
}

struct Cron {
    log: Log,
}

#[volttron::agent]
impl Cron {
    #[schedule(cron = "*/15 * * * *")]
    fn quarter(&mut self, ctx: &AgentContext) {
        self.log.lock().push(ctx.now().format("%H:%M:%S").to_string());
    }

    #[schedule(cron = "0 9 * * mon-fri")]
    fn workday(&mut self, ctx: &AgentContext) {
        self.log
            .lock()
            .push(ctx.now().format("workday %a %H:%M").to_string());
    }
}

#[volttron::test]
async fn cron_fires_on_matching_minutes(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("cron", Cron { log: log.clone() }).await.unwrap();
    tp.advance(Duration::from_secs(3600)).await;
    assert_eq!(*log.lock(), ["00:15:00", "00:30:00", "00:45:00", "01:00:00"]);
    log.lock().clear();
    // 2024-01-01 is a Monday: across a week, five workday runs.
    tp.advance(Duration::from_secs(7 * 24 * 3600)).await;
    let workdays: Vec<String> = log
        .lock()
        .iter()
        .filter(|l| l.starts_with("workday"))
        .cloned()
        .collect();
    assert_eq!(
        workdays,
        [
            "workday Mon 09:00",
            "workday Tue 09:00",
            "workday Wed 09:00",
            "workday Thu 09:00",
            "workday Fri 09:00"
        ]
    );
    tp.shutdown().await;
}

#[derive(Default)]
struct Dynamic {
    log: Log,
    every: Option<volttron::TimerId>,
}

#[volttron::agent]
impl Dynamic {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) {
        ctx.schedule_once(Duration::from_secs(5), |me: &mut Dynamic, ctx| {
            me.log.lock().push(format!("once@{}", ctx.now().format("%S")));
        })
        .unwrap();
        self.every = Some(
            ctx.schedule_every(Duration::from_secs(3), |me: &mut Dynamic, ctx| {
                me.log.lock().push(format!("every@{}", ctx.now().format("%S")));
            })
            .unwrap(),
        );
        let at = ctx.now() + chrono::Duration::seconds(7);
        ctx.schedule_at(at, |me: &mut Dynamic, _| me.log.lock().push("at".into()))
            .unwrap();
    }

    #[rpc]
    fn cancel_every(&mut self, ctx: &AgentContext) -> bool {
        ctx.cancel(self.every.take().unwrap())
    }

    #[rpc]
    fn bad_cron(&mut self, ctx: &AgentContext) -> Result<(), String> {
        ctx.schedule_cron("61 * * * *", |_: &mut Dynamic, _| {})
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[volttron::test]
async fn run_time_timers_and_cancel(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn(
        "dyn",
        Dynamic {
            log: log.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tp.advance(Duration::from_secs(7)).await;
    assert_eq!(*log.lock(), ["every@03", "once@05", "every@06", "at"]);
    assert_eq!(
        tp.call("dyn", "cancel_every", ()).await.unwrap(),
        Value::Bool(true)
    );
    log.lock().clear();
    tp.advance(Duration::from_secs(30)).await;
    assert!(log.lock().is_empty(), "{:?}", log.lock());
    let e = tp.call("dyn", "bad_cron", ()).await.unwrap_err();
    assert!(e.to_string().contains("minute"), "{e}");
    tp.shutdown().await;
}

#[volttron::test]
async fn a_stopped_agent_leaves_no_timers(tp: TestPlatform) {
    let log = Log::default();
    let a = tp.spawn("a", ticker("a", &log)).await.unwrap();
    tp.spawn(
        "dyn",
        Dynamic {
            log: log.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(tp.clock().pending_timers() >= 4);
    a.stop().await;
    tp.stop_agent("dyn").await;
    assert_eq!(tp.clock().pending_timers(), 0);
    log.lock().clear();
    tp.advance(Duration::from_secs(60)).await;
    assert!(log.lock().is_empty());
    tp.shutdown().await;
}

#[volttron::test]
async fn periodic_without_wait_runs_right_after_start(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("a", ticker("a", &log)).await.unwrap();
    tp.advance(Duration::ZERO).await;
    assert_eq!(*log.lock(), ["a@00:00"]);
    tp.advance(Duration::from_millis(1999)).await;
    assert_eq!(log.lock().len(), 1);
    tp.advance(Duration::from_millis(1)).await;
    assert_eq!(*log.lock(), ["a@00:00", "a@00:02"]);
    tp.shutdown().await;
}

/// Schedules a cron job at run time.
struct RuntimeCron {
    log: Log,
}

#[volttron::agent]
impl RuntimeCron {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) {
        ctx.schedule_cron("30 * * * *", |me: &mut RuntimeCron, ctx| {
            me.log.lock().push(ctx.now().format("%H:%M").to_string());
        })
        .unwrap();
    }
}

#[volttron::test]
async fn a_run_time_cron_schedule_fires_on_matching_minutes(tp: TestPlatform) {
    let log = Log::default();
    tp.spawn("c", RuntimeCron { log: log.clone() }).await.unwrap();
    tp.advance(Duration::from_secs(3 * 3600)).await;
    assert_eq!(*log.lock(), ["00:30", "01:30", "02:30"]);
    tp.shutdown().await;
}
