//! The Slurm scripts on a real (one-machine) Slurm cluster: the job-array sweep gives, task by
//! task, exactly the runs of a local sweep over the same seeds, in folders named by job and task
//! id; the multi-node script runs the coordinator and two agent nodes as job steps and reproduces
//! the embedded run bit for bit. Ignored unless asked for: .ci/run starts the cluster with
//! deploy/slurm/test-cluster.sh and runs them with --include-ignored.

mod common;
use common::{chokepoint, fresh_db, ok, scenario, temp_dir};
use std::path::Path;
use std::process::Command;

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/slurm").join(name).display().to_string()
}

/// `sbatch --wait ARGS SCRIPT` in `dir` with extra environment; returns the job id.
fn sbatch(dir: &Path, args: &[&str], script: &str, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new("sbatch");
    cmd.current_dir(dir).arg("--wait").arg("--export=ALL").args(args).arg(script);
    cmd.env("CHOKEPOINT_BIN", env!("CARGO_BIN_EXE_chokepoint")).env("AGENT_NODE_BIN", env!("CARGO_BIN_EXE_agent-node"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("sbatch runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "the job failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout.split_whitespace().last().expect("Submitted batch job N").to_string()
}

fn rows(csv: &str) -> Vec<String> {
    let mut r: Vec<String> = csv.lines().skip(1).map(String::from).collect();
    r.sort();
    r
}

#[test]
#[ignore = "needs a running Slurm cluster (deploy/slurm/test-cluster.sh); .ci/run starts one and runs it with --include-ignored"]
fn the_job_array_sweep_matches_a_local_sweep() {
    let dir = temp_dir("slurm-array");
    let out = dir.join("out");
    let job = sbatch(
        &dir,
        &["--array=0-1"],
        &script("sweep-array.sbatch"),
        &[
            ("SCENARIO", scenario("tiny.toml")),
            ("SEEDS_PER_TASK", "2".into()),
            ("SEED_BASE", "1".into()),
            ("OUT", out.display().to_string()),
        ],
    );
    let mut array_rows = Vec::new();
    for task in 0..2 {
        let folder = out.join(format!("sweep-{job}-{task}"));
        let text =
            std::fs::read_to_string(folder.join("runs.csv")).unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
        array_rows.extend(rows(&text));
    }
    array_rows.sort();
    let local = dir.join("local");
    ok(&chokepoint(
        &fresh_db(),
        &["sweep", &scenario("tiny.toml"), "--seeds", "1..4", "--quiet", "--out", &local.display().to_string()],
    ));
    assert_eq!(array_rows, rows(&std::fs::read_to_string(local.join("runs.csv")).unwrap()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[ignore = "needs a running Slurm cluster (deploy/slurm/test-cluster.sh); .ci/run starts one and runs it with --include-ignored"]
fn the_multi_node_script_reproduces_the_embedded_run() {
    let dir = temp_dir("slurm-run");
    let out = dir.join("run");
    sbatch(
        &dir,
        &["--nodes=1", "--ntasks=2"],
        &script("distributed.sbatch"),
        &[
            ("SCENARIO", scenario("tiny.toml")),
            ("AGENT_NODES", "2".into()),
            ("PORT", "7455".into()),
            ("OUT", out.display().to_string()),
        ],
    );
    let embedded = dir.join("embedded");
    ok(&chokepoint(&fresh_db(), &["run", &scenario("tiny.toml"), "--quiet", "--out", &embedded.display().to_string()]));
    for f in ["digests.csv", "markets.csv", "trades.csv"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(embedded.join(f)).unwrap(),
            "{f} differs under Slurm"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
