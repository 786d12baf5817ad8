//! The federation backlog (feature `mqtt`) loses nothing it acknowledged when its process
//! is SIGKILLed mid-push: this test binary re-executes itself as a child that pushes
//! entries (single pushes and batches) as fast as it can and prints every acknowledged
//! seq; the parent reads a few hundred acknowledgements, kills the child with SIGKILL
//! wherever it is, reopens the file and finds every acknowledged entry, in order, intact.
//! Twice, to see seqs keep increasing across a crash.
//!
//! Waits are on the child's output, with a deadline.

#![cfg(feature = "mqtt")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use volttron::mqtt::backlog::{Backlog, BacklogConfig, KeepPolicy, PrefixPolicy, Pushed};

/// The variable telling this test binary it runs as the child; its value is the file.
const CHILD: &str = "VOLTTRON_TEST_BACKLOG_CHILD";
/// Which run the child is (its records say so).
const RUN: &str = "VOLTTRON_TEST_BACKLOG_RUN";
const TEST: &str = "acknowledged_entries_survive_sigkill_in_order_and_intact";
/// Acknowledgements to read before the kill.
const ACKS_BEFORE_KILL: usize = 300;
/// Items of one batch push (so at most this many entries may be stored unacknowledged).
const BATCH: u64 = 10;

fn config(path: &Path) -> BacklogConfig {
    BacklogConfig {
        path: path.to_owned(),
        max_messages: 1_000_000,
        max_bytes: 1 << 30,
        policies: vec![],
        default_policy: PrefixPolicy::new("", KeepPolicy::DropOldest, 0),
    }
}

fn topic(run: u64, item: u64) -> String {
    format!("devices/run{run}/item{item}")
}

/// A record of a length that varies with the item, telling what it is.
fn record(run: u64, item: u64) -> Vec<u8> {
    format!("run {run} item {item};")
        .repeat(1 + (item % 7) as usize * 20)
        .into_bytes()
}

/// The child: pushes until killed (or, should the parent be gone, for at most a minute).
fn pusher(path: PathBuf, run: u64) {
    let mut backlog = Backlog::open(config(&path)).expect("the child opens the backlog");
    let stdout = std::io::stdout();
    let deadline = Instant::now() + Duration::from_secs(60);
    // libtest has printed `test <name> ... ` without a newline: end that line first.
    println!();
    let mut item = 0u64;
    while Instant::now() < deadline {
        let items: Vec<(String, Vec<u8>)> = if item % 4 == 3 {
            (item..item + BATCH)
                .map(|i| (topic(run, i), record(run, i)))
                .collect()
        } else {
            vec![(topic(run, item), record(run, item))]
        };
        let refs: Vec<(&str, &[u8])> = items.iter().map(|(t, r)| (t.as_str(), r.as_slice())).collect();
        let pushed = backlog.push_batch(&refs, item as i64).expect("push");
        let mut out = stdout.lock();
        for (k, p) in pushed.iter().enumerate() {
            let Pushed::Stored { seq, .. } = p else {
                panic!("refused below the bound: {p:?}")
            };
            writeln!(out, "ack {seq} {run} {}", item + k as u64).expect("print an ack");
        }
        out.flush().expect("flush the acks");
        item += items.len() as u64;
    }
    panic!("the parent never killed this child");
}

/// An acknowledged entry: seq, run, item.
type Ack = (u64, u64, u64);

/// Starts a child for `run`, reads its acknowledgements until `ACKS_BEFORE_KILL`, SIGKILLs
/// it and returns every acknowledgement it printed (those still in the pipe too).
fn run_and_kill(path: &Path, run: u64) -> Vec<Ack> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, path)
        .env(RUN, run.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            // A line cut by the kill has no newline: it was never a whole acknowledgement.
            match stdout.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if !line.ends_with('\n') => return,
                Ok(_) => {}
            }
            let Some(rest) = line.trim_end().strip_prefix("ack ") else {
                continue;
            };
            let f: Vec<u64> = rest.split(' ').map(|x| x.parse().expect("an ack line")).collect();
            if tx.send((f[0], f[1], f[2])).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut acks = Vec::new();
    while acks.len() < ACKS_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(ack) => acks.push(ack),
            Err(e) => {
                let _ = child.kill();
                panic!(
                    "the child gave {} acknowledgements, then {e:?} (status {:?})",
                    acks.len(),
                    child.wait()
                );
            }
        }
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed by SIGKILL: {status}"
    );
    reader.join().unwrap();
    acks.extend(rx.try_iter());
    acks
}

#[test]
fn acknowledged_entries_survive_sigkill_in_order_and_intact() {
    if let Some(path) = std::env::var_os(CHILD) {
        let run = std::env::var(RUN).unwrap().parse().unwrap();
        return pusher(PathBuf::from(path), run);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("federation/backlog.sqlite");
    let mut all_acks: Vec<Ack> = Vec::new();
    for run in 0..2 {
        let acks = run_and_kill(&path, run);
        assert!(acks.len() >= ACKS_BEFORE_KILL);
        let highest_before = all_acks.last().map_or(0, |a| a.0);
        assert!(
            acks.windows(2).all(|w| w[0].0 < w[1].0) && acks[0].0 > highest_before,
            "seqs increase, across the crash too"
        );
        all_acks.extend(acks);

        let backlog = Backlog::open(config(&path)).expect("reopen after SIGKILL");
        let entries = backlog.peek(usize::MAX).unwrap();
        let by_seq: HashMap<u64, usize> = entries.iter().enumerate().map(|(k, e)| (e.seq, k)).collect();
        // Every entry is whole and is what some push wrote.
        for e in &entries {
            let (r, i) = parse_topic(&e.topic);
            assert_eq!(e.record, record(r, i), "entry {} is intact", e.seq);
        }
        // Every acknowledged one is there, in the order acknowledged.
        let mut last = None;
        for &(seq, r, i) in &all_acks {
            let k = *by_seq
                .get(&seq)
                .unwrap_or_else(|| panic!("acknowledged seq {seq} (run {r} item {i}) is lost"));
            assert_eq!(entries[k].topic, topic(r, i));
            assert!(last < Some(k), "seq {seq} replays in order");
            last = Some(k);
        }
        // At most the batch in flight at the kill was stored without its acknowledgement.
        let unacked: Vec<u64> = entries
            .iter()
            .map(|e| e.seq)
            .filter(|s| !all_acks.iter().any(|a| a.0 == *s))
            .collect();
        assert!(
            unacked.len() as u64 <= BATCH,
            "stored but never acknowledged: {unacked:?}"
        );
        assert!(
            unacked.iter().all(|&s| s > all_acks.last().unwrap().0),
            "unacked {unacked:?}, last acks {:?}",
            &all_acks[all_acks.len().saturating_sub(12)..]
        );
        assert_eq!(backlog.len(), entries.len());
        // Those count as acknowledged for the next run's checks (they are in the file).
        for &s in &unacked {
            let e = &entries[by_seq[&s]];
            let (r, i) = parse_topic(&e.topic);
            all_acks.push((s, r, i));
        }
    }
}

fn parse_topic(topic: &str) -> (u64, u64) {
    let rest = topic.strip_prefix("devices/run").expect("a topic of this test");
    let (run, item) = rest.split_once("/item").expect("a topic of this test");
    (run.parse().unwrap(), item.parse().unwrap())
}
