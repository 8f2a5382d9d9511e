"""An EMA Workbench model of a Chokepoint scenario.

    from ema_workbench import RealParameter, IntegerParameter, perform_experiments
    from chokepoint.ema import ChokepointModel

    model = ChokepointModel("cobalt", "scenarios/cobalt-halt-2025.toml", ticks=104)
    model.uncertainties = [RealParameter("capacity.CD.co.pct", 40, 100)]   # supply shortfall
    model.levers = [IntegerParameter("stockpile.US.target_days", 0, 180)]
    experiments, outcomes = perform_experiments(model, scenarios=50, policies=4)

Uncertainties, levers and constants are named by scenario keys, the keys of ``chokepoint sweep
--set`` (``stockpile.NATION[.COMMODITY].target_days``, ``...release_price_pct``,
``...buy_max_price_pct``, ``capacity.NATION.COMMODITY.pct``, ``ticks``), plus ``seed``. The
outcomes are the sweep's outcome measures, one ScalarOutcome per (measure, subject), named
``measure.subject``: ``shortage_days.US``, ``peak_price_usd_per_kg.co``, ... (``outcome_names``
lists them for a scenario). Each experiment is one embedded run, as one sweep job; the model and
its function pickle (the scenario travels as its text), so the Workbench's multiprocessing and
MPI evaluators run it (the MPI one with mpi4py 3.1: see python/README.md).
"""

import builtins

from ema_workbench import Model, ScalarOutcome

from . import _native, _scenario, _value

__all__ = ["ChokepointModel", "outcome_names", "run_experiment"]


def outcome_names(scenario):
    """The names of the sweep's outcome measures for `scenario` (a path or a Scenario), in the
    order the sweep writes them. They depend on the world (its nations, commodities and
    stockpiles), not on the run: a one-tick run gives them."""
    s = _scenario(scenario)
    return [f"{o}.{subject}" for o, subject, _ in _native.run_outcomes(s.configured(ticks=1))]


def run_experiment(scenario, values):
    """One experiment: `scenario` (a Scenario) with `values` (scenario key -> value, ``seed``
    included) applied, run to its end; returns {``measure.subject``: value}."""
    values = dict(values)
    seed = values.pop("seed", None)
    pairs = [(k, _value(v)) for k, v in values.items()]
    s = scenario.configured(seed=None if seed is None else int(seed), set=pairs)
    return {f"{o}.{subject}": v for o, subject, v in _native.run_outcomes(s)}


class _Experiment:
    """The model's function: picklable (it holds only the Scenario, which pickles as its text
    and settings)."""

    def __init__(self, scenario):
        self.scenario = scenario

    def __call__(self, **values):
        return run_experiment(self.scenario, values)


class ChokepointModel(Model):
    """A Workbench Model running `scenario` (a path or a chokepoint.Scenario; `seed`, `ticks`
    and `set` change it as for ``chokepoint.run``). Its outcomes are set to every sweep measure
    (`outcomes` narrows them to the names given); set ``uncertainties``, ``levers`` and
    ``constants`` with scenario keys as names."""

    def __init__(self, name, scenario, *, seed=None, ticks=None, set=None, outcomes=None):
        s = _scenario(scenario, seed, ticks, set)
        super().__init__(name, function=_Experiment(s))
        names = outcome_names(s)
        if outcomes is not None:
            unknown = sorted(builtins.set(outcomes) - builtins.set(names))
            if unknown:
                raise ValueError(f"unknown outcomes {unknown}; this scenario has {names}")
            names = [n for n in names if n in builtins.set(outcomes)]
        self.outcomes = [ScalarOutcome(n) for n in names]

