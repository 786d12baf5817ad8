//! Crash test of the configuration store: a writer process is killed with SIGKILL at arbitrary
//! points of its writes, and the store it leaves behind must load and hold every acknowledged
//! write.
//!
//! The test binary re-executes itself: `writer_child` does nothing unless
//! `VOLTTRON_STORE_WRITER` names a store file, in which case it applies a deterministic
//! sequence of sets and deletes (some of ~100 KB, so writes take a while) and prints
//! `ack <n>` after the n-th call has returned. The parent reads those acks from the child's
//! stdout (the only synchronisation; no sleeps), kills the child after a pseudo-randomly chosen
//! number of them, and checks that the store equals the state after some prefix of the
//! sequence at least as long as every ack it read.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{TimeZone, Utc};
use volttron::config_store::{AgentStore, ConfigType, StoreError, list_stores, store_path};

const ITERATIONS: u64 = 40;
const NAMES: [&str; 8] = [
    "config",
    "Registry",
    "points.csv",
    "big1",
    "big2",
    "notes",
    "a",
    "b",
];

/// splitmix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> usize {
        usize::try_from(self.next() % n).unwrap()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Set {
        name: String,
        data: String,
        config_type: ConfigType,
    },
    Delete(String),
    DeleteAll,
}

/// The operations of iteration `seed`, identical in parent and child.
fn ops(seed: u64, count: usize) -> Vec<Op> {
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x00C0_FFEE);
    (1..=count)
        .map(|n| {
            let mut name = NAMES[rng.below(NAMES.len() as u64)].to_string();
            if rng.below(4) == 0 {
                name = name.to_uppercase(); // the same configuration, another case
            }
            match rng.below(100) {
                0..=9 => Op::Delete(name),
                10..=11 => Op::DeleteAll,
                roll => {
                    let size = if roll < 35 {
                        80_000 + rng.below(60_000)
                    } else {
                        rng.below(300)
                    };
                    let pad: String = std::iter::repeat_n(char::from(b'a' + (n % 26) as u8), size).collect();
                    let (data, config_type) = match rng.below(3) {
                        0 => (
                            format!("{{\"seed\": {seed}, \"n\": {n}, // op\n \"pad\": \"{pad}\"}}"),
                            ConfigType::Json,
                        ),
                        1 => (
                            format!("key,value\nseed,{seed}\nn,{n}\npad,{pad}\n"),
                            ConfigType::Csv,
                        ),
                        _ => (format!("raw {seed} {n} {pad}"), ConfigType::Raw),
                    };
                    Op::Set {
                        name,
                        data,
                        config_type,
                    }
                }
            }
        })
        .collect()
}

/// Lowercase name -> (name as stored, type, data).
type State = BTreeMap<String, (String, ConfigType, String)>;

fn state_of(store: &AgentStore) -> State {
    store
        .entries()
        .map(|e| {
            (
                e.name.to_lowercase(),
                (e.name.clone(), e.config_type, e.data.clone()),
            )
        })
        .collect()
}

fn apply(state: &mut State, op: &Op) {
    match op {
        Op::Set {
            name,
            data,
            config_type,
        } => {
            state.insert(name.to_lowercase(), (name.clone(), *config_type, data.clone()));
        }
        Op::Delete(name) => {
            state.remove(&name.to_lowercase());
        }
        Op::DeleteAll => state.clear(),
    }
}

/// The child: applies the operations and acknowledges each one after it returned.
#[test]
fn writer_child() {
    let Ok(path) = std::env::var("VOLTTRON_STORE_WRITER") else {
        return;
    };
    let seed: u64 = std::env::var("VOLTTRON_STORE_SEED").unwrap().parse().unwrap();
    let count: usize = std::env::var("VOLTTRON_STORE_OPS").unwrap().parse().unwrap();
    let mut store = AgentStore::open(&path).unwrap();
    let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let mut out = std::io::stdout().lock();
    for (i, op) in ops(seed, count).iter().enumerate() {
        match op {
            Op::Set {
                name,
                data,
                config_type,
            } => {
                store.set(name, data, *config_type, now).unwrap();
            }
            Op::Delete(name) => match store.delete(name) {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => panic!("delete {name}: {e}"),
            },
            Op::DeleteAll => store.delete_all().unwrap(),
        }
        writeln!(out, "ack {}", i + 1).unwrap();
        out.flush().unwrap();
    }
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
}

fn ack_number(line: &str) -> Option<usize> {
    line.strip_prefix("ack ").map(|n| n.trim().parse().unwrap())
}

/// Busy work of pseudo-random length between reading an ack and the kill, so that the kill
/// lands at different points of the writer's next operation (parsing, encoding, writing,
/// syncing, renaming) rather than always just after the ack. It only spreads the kill points;
/// nothing waits on it and any kill point is a valid outcome.
fn jitter(rounds: usize) -> u64 {
    let mut rng = Rng(rounds as u64);
    (0..rounds).fold(0, |acc, _| acc ^ std::hint::black_box(rng.next()))
}

fn run_iteration(dir: &Path, path: &Path, seed: u64, kill_after: usize, jitter_rounds: usize) {
    let extra = 30;
    let count = kill_after + extra;
    let initial = state_of(&AgentStore::open(path).unwrap());
    let sequence = ops(seed, count);
    let mut states = vec![initial];
    for op in &sequence {
        let mut next = states.last().unwrap().clone();
        apply(&mut next, op);
        states.push(next);
    }

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "writer_child",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env("VOLTTRON_STORE_WRITER", path)
        .env("VOLTTRON_STORE_SEED", seed.to_string())
        .env("VOLTTRON_STORE_OPS", count.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = 0;
    while acked < kill_after {
        match lines.next() {
            Some(line) => {
                if let Some(n) = ack_number(&line.unwrap()) {
                    assert_eq!(n, acked + 1, "acks in order");
                    acked = n;
                }
            }
            None => panic!(
                "seed {seed}: writer exited after {acked} acks: {:?}",
                child.wait()
            ),
        }
    }
    std::hint::black_box(jitter(jitter_rounds));
    child.kill().unwrap(); // SIGKILL: lands wherever the writer is
    child.wait().unwrap();
    // Acks printed between our last read and the kill are still in the pipe.
    for line in lines {
        if let Some(n) = ack_number(&line.unwrap()) {
            acked = n;
        }
    }
    assert!(
        acked < count,
        "seed {seed}: the writer finished before it was killed; raise `extra`"
    );

    let store = AgentStore::open(path).unwrap_or_else(|e| panic!("seed {seed}: store does not load: {e}"));
    let found = state_of(&store);
    let matching = (acked..=count).find(|&m| states[m] == found);
    assert!(
        matching.is_some(),
        "seed {seed}: after {acked} acks the store matches no state at or after the last ack; names {:?}",
        found
            .values()
            .map(|(n, _, d)| (n.clone(), d.len()))
            .collect::<Vec<_>>()
    );
    for name in store.names() {
        store.get(&name).unwrap();
    }
    let identities = list_stores(dir).unwrap();
    assert!(identities.is_empty() || identities == ["agent"], "{identities:?}");
}

#[test]
fn killed_writer_leaves_every_acknowledged_write() {
    if std::env::var_os("VOLTTRON_STORE_WRITER").is_some() {
        return; // in the child, only `writer_child` runs
    }
    let home = tempfile::tempdir().unwrap();
    let path = store_path(home.path(), "agent");
    let dir = path.parent().unwrap().to_owned();
    let mut rng = Rng(20_240_101);
    for iteration in 0..ITERATIONS {
        let kill_after = 1 + rng.below(12);
        let jitter_rounds = rng.below(400_000);
        run_iteration(&dir, &path, iteration, kill_after, jitter_rounds);
    }
}
