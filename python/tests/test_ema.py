"""chokepoint.ema: a Workbench study of 20 experiments over scenario keys completes with every
outcome present and each experiment equal to running its values alone; the same model runs on
the Workbench's multiprocessing evaluator; unknown keys and outcomes are refused."""

import math
import pickle

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


def test_unknown_keys_and_outcomes_are_refused():
    with pytest.raises(ValueError, match="unknown outcomes"):
        ChokepointModel("cobalt", COBALT, outcomes=["no_such.US"])
    with pytest.raises(ValueError, match="unknown parameter"):
        run_experiment(chokepoint.Scenario.load(COBALT), {"nope": 1})
