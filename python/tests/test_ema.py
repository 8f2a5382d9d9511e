"""chokepoint.ema: a Workbench study of 20 experiments over scenario keys completes with every
outcome present and each experiment equal to running its values alone; the same model runs on
the Workbench's multiprocessing evaluator and on its MPI evaluator (under a real `mpirun`);
unknown keys and outcomes are refused."""

import json
import math
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ema_workbench = pytest.importorskip("ema_workbench")
from ema_workbench import (IntegerParameter, MultiprocessingEvaluator, RealParameter,  # noqa: E402
                           SequentialEvaluator, perform_experiments)

import chokepoint  # noqa: E402
from chokepoint.ema import ChokepointModel, outcome_names, run_experiment  # noqa: E402
from conftest import SCENARIOS  # noqa: E402

COBALT = SCENARIOS / "cobalt-halt-2025.toml"


def model():
    m = ChokepointModel("cobalt", COBALT, ticks=40)
    m.uncertainties = [RealParameter("capacity.CD.co.pct", 30, 100), IntegerParameter("seed", 1, 1000)]
    m.levers = [IntegerParameter("stockpile.US.co.target_days", 0, 180)]
    return m


def test_twenty_experiments_complete_with_every_outcome():
    m = model()
    names = outcome_names(COBALT)
    assert "shortage_days.US" in names and "peak_price_usd_per_kg.co" in names
    assert [o.name for o in m.outcomes] == names
    with SequentialEvaluator(m) as evaluator:
        experiments, outcomes = perform_experiments(m, scenarios=10, policies=2, evaluator=evaluator)
    assert len(experiments) == 20
    assert set(outcomes) == set(names)
    for name in names:
        assert len(outcomes[name]) == 20
        assert all(math.isfinite(v) for v in outcomes[name]), name
    # Each experiment is the run of its values alone (the sweep's measures).
    row = experiments.iloc[3]
    values = {k: row[k] for k in ("capacity.CD.co.pct", "seed", "stockpile.US.co.target_days")}
    alone = run_experiment(chokepoint.Scenario.load(COBALT).configured(ticks=40), values)
    for name in names:
        assert alone[name] == outcomes[name][3], name
    # The uncertainties matter: less Congolese capacity, higher peak prices.
    peaks = outcomes["peak_price_usd_per_kg.co"]
    assert len(set(peaks)) > 1


def test_the_model_runs_on_the_multiprocessing_evaluator():
    m = model()
    pickle.loads(pickle.dumps(m))
    with MultiprocessingEvaluator(m, n_processes=2) as evaluator:
        experiments, outcomes = perform_experiments(m, scenarios=4, policies=1, evaluator=evaluator)
    assert len(experiments) == 4 and all(len(v) == 4 for v in outcomes.values())
    # What the worker processes computed is what this process computes for the same values.
    base = chokepoint.Scenario.load(COBALT).configured(ticks=40)
    for i, row in experiments.iterrows():
        values = {k: row[k] for k in ("capacity.CD.co.pct", "seed", "stockpile.US.co.target_days")}
        alone = run_experiment(base, values)
        assert all(alone[name] == outcomes[name][i] for name in outcomes), i


def test_the_model_runs_on_the_mpi_evaluator():
    """Under `mpirun -n 1`, the Workbench's MPIEvaluator spawns two MPI workers that run the
    experiments; each equals this process's run of the same values. Needs an MPI runtime and
    mpi4py (.ci/run installs Open MPI and mpi4py 3.1, which the Workbench's evaluator is written
    for, and sets CHOKEPOINT_REQUIRE_MPI so a missing one fails there instead of skipping)."""
    mpirun = shutil.which("mpirun")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpi4py = None
    if mpirun is None or mpi4py is None:
        missing = "mpirun" if mpirun is None else "mpi4py"
        if os.environ.get("CHOKEPOINT_REQUIRE_MPI"):
            pytest.fail(f"CHOKEPOINT_REQUIRE_MPI is set but {missing} is missing")
        pytest.skip(f"no {missing}: install an MPI runtime and mpi4py<4 to run the MPI evaluator's test")
    # Open MPI refuses root (CI runs as root) and a machine with fewer cores than processes.
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    study = Path(__file__).with_name("mpi_study.py")
    done = subprocess.run([mpirun, "-n", "1", sys.executable, str(study), str(COBALT)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rows, outcomes = result["experiments"], result["outcomes"]
    assert len(rows) == 4 and set(outcomes) == set(outcome_names(COBALT))
    base = chokepoint.Scenario.load(COBALT).configured(ticks=40)
    for i, values in enumerate(rows):
        alone = run_experiment(base, values)
        assert all(alone[name] == outcomes[name][i] for name in outcomes), (i, values)


def test_unknown_keys_and_outcomes_are_refused():
    with pytest.raises(ValueError, match="unknown outcomes"):
        ChokepointModel("cobalt", COBALT, outcomes=["no_such.US"])
    with pytest.raises(ValueError, match="unknown parameter"):
        run_experiment(chokepoint.Scenario.load(COBALT), {"nope": 1})
