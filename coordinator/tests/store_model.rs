//! A model test of the run store: random sequences of writes, reads and restarts (closing and
//! reopening the sled database) against a plain in-memory model. After every step, everything
//! the store returns must equal the model.

use agents::Tick;
use coordinator::store::{JournalEntry, JournalInput, RunId, RunMeta, RunStatus, Store, TickEntry};
use engine::scenario;
use engine::world::WorldState;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug)]
enum Op {
    CreateRun,
    SetStatus(usize, u8),
    PutTick(usize, u32, u8),
    TruncateTicks(usize, u32),
    PutSnapshot(usize, u32),
    Journal(usize, u32),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::CreateRun),
        1 => (0..4usize, 0..4u8).prop_map(|(r, s)| Op::SetStatus(r, s)),
        4 => (0..4usize, 0..30u32, any::<u8>()).prop_map(|(r, t, b)| Op::PutTick(r, t, b)),
        1 => (0..4usize, 0..30u32).prop_map(|(r, t)| Op::TruncateTicks(r, t)),
        2 => (0..4usize, 0..30u32).prop_map(|(r, t)| Op::PutSnapshot(r, t)),
        2 => (0..4usize, 0..30u32).prop_map(|(r, t)| Op::Journal(r, t)),
        1 => Just(Op::Restart),
    ]
}

#[derive(Default)]
struct Model {
    runs: Vec<RunMeta>,
    ticks: BTreeMap<(u64, u32), TickEntry>,
    snapshots: BTreeMap<(u64, u32), WorldState>,
    journal: BTreeMap<(u64, u32, u32), JournalEntry>,
}

fn meta(n: usize) -> RunMeta {
    RunMeta {
        scenario_name: format!("s{n}"),
        scenario_path: "x.toml".into(),
        scenario_text: String::new(),
        seed: n as u64,
        ticks: 30,
        events: None,
        version: "test".into(),
        started_unix_ms: 0,
        status: RunStatus::Running,
        ticks_done: 0,
        snapshot_every: 5,
        parent: None,
        mode: "embedded".into(),
        out_dir: String::new(),
        error: None,
        exercise: (n % 2 == 1).then(|| coordinator::store::ExerciseMeta {
            players: vec!["AA".into()],
            turn_ticks: 13,
            token_hashes: vec![("control".into(), "00".into())],
            ai_from: None,
        }),
        ended_by: (n % 3 == 2).then(|| "control".into()),
        journal_actions: n.is_multiple_of(3),
    }
}

fn check(store: &Store, model: &Model) {
    let runs = store.runs().expect("runs");
    assert_eq!(runs.len(), model.runs.len());
    for (i, (id, m)) in runs.iter().enumerate() {
        assert_eq!(id.0, i as u64 + 1);
        assert_eq!(m, &model.runs[i]);
        let ticks = store.ticks(*id).expect("ticks");
        let want: Vec<(u32, TickEntry)> =
            model.ticks.range((id.0, 0)..(id.0 + 1, 0)).map(|((_, t), e)| (*t, e.clone())).collect();
        assert_eq!(ticks, want);
        let snaps = store.snapshot_ticks(*id).expect("snapshots");
        let want: Vec<u32> = model.snapshots.range((id.0, 0)..(id.0 + 1, 0)).map(|((_, t), _)| *t).collect();
        assert_eq!(snaps, want);
        for probe in [0u32, 7, 15, 29, u32::MAX] {
            let got = store.snapshot_at_or_before(*id, probe).expect("snapshot");
            let want = model.snapshots.range((id.0, 0)..=(id.0, probe)).next_back().map(|((_, t), s)| (*t, s.clone()));
            assert_eq!(got, want);
        }
        let journal = store.journal(*id).expect("journal");
        let want: Vec<JournalEntry> =
            model.journal.range((id.0, 0, 0)..(id.0 + 1, 0, 0)).map(|(_, e)| e.clone()).collect();
        assert_eq!(journal, want);
    }
}

fn run_ops(dir: &Path, ops: Vec<Op>, base: &WorldState, event: &scenario::Event) {
    let mut store = Some(Store::open(dir).expect("open"));
    let mut model = Model::default();
    let mut seq = 0u32;
    for op in ops {
        let s = store.as_ref().expect("open store");
        let pick = |r: usize| (!model.runs.is_empty()).then(|| RunId((r % model.runs.len()) as u64 + 1));
        match op {
            Op::CreateRun => {
                let m = meta(model.runs.len());
                let id = s.create_run(&m).expect("create");
                model.runs.push(m);
                assert_eq!(id.0, model.runs.len() as u64);
            }
            Op::SetStatus(r, st) => {
                if let Some(id) = pick(r) {
                    let status = [RunStatus::Running, RunStatus::Completed, RunStatus::Failed, RunStatus::Interrupted]
                        [st as usize % 4];
                    s.update_run(id, |m| m.status = status).expect("update");
                    model.runs[id.0 as usize - 1].status = status;
                }
            }
            Op::PutTick(r, t, b) => {
                if let Some(id) = pick(r) {
                    let e = TickEntry { digest: [b; 32], parts: vec![("clock".into(), [b; 16])] };
                    s.put_tick(id, t, &e).expect("put tick");
                    model.ticks.insert((id.0, t), e);
                }
            }
            Op::TruncateTicks(r, t) => {
                if let Some(id) = pick(r) {
                    s.truncate_ticks(id, t).expect("truncate");
                    model.ticks.retain(|(run, tick), _| *run != id.0 || *tick < t);
                }
            }
            Op::PutSnapshot(r, t) => {
                if let Some(id) = pick(r) {
                    let mut state = base.clone();
                    state.tick = Tick(t);
                    s.put_snapshot(id, t, &state).expect("snapshot");
                    model.snapshots.insert((id.0, t), state);
                }
            }
            Op::Journal(r, t) => {
                if let Some(id) = pick(r) {
                    let entry = JournalEntry {
                        tick: t,
                        seq,
                        source: "control".into(),
                        received_unix_ms: 1,
                        input: JournalInput::Inject(event.clone()),
                    };
                    seq += 1;
                    s.append_journal(id, &entry).expect("journal");
                    model.journal.insert((id.0, t, entry.seq), entry);
                }
            }
            Op::Restart => {
                // Close first: sled holds an exclusive lock while open.
                drop(store.take());
                store = Some(Store::open(dir).expect("reopen"));
            }
        }
        check(store.as_ref().expect("open store"), &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_store_behaves_like_a_map_across_restarts(ops in prop::collection::vec(op(), 1..40)) {
        let s = coordinator::load_scenario(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/tiny.toml")).expect("tiny");
        let base = WorldState::initial(&s);
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chokepoint-model-{}-{case}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        run_ops(&dir, ops, &base, &s.events[0]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Numbers the cases, so each gets a fresh directory.
static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
