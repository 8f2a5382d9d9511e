"""Chokepoint from Python: the simulation engine in this process.

    import chokepoint
    result = chokepoint.run("scenarios/tiny.toml", seed=7, set={"stockpile.USA.target_days": 90})
    result.markets            # a pandas DataFrame with the columns of markets.csv

    sim = chokepoint.Engine("scenarios/tiny.toml", seed=7)
    sim.step()                # -> Tick(tick=0, digest='...')
    other = sim.fork()        # an independent copy at this tick
    sim.state()["agents"][0]["cash_cents"]

Everything runs in process (no subprocess, no files written): the native module steps the
coordinator's embedded simulation and keeps the CSV files' text in memory, so the digests and the
tables are those of ``chokepoint run`` for the same scenario and seed.
"""

import io
from collections import namedtuple
from os import PathLike

import pandas as pd

from . import _native
from .errors import (ChokepointError, DisconnectedError, NodeError, RefusedError, ScenarioError, SimulationError,
                     StrategyError)

__all__ = ["Scenario", "Engine", "Result", "Tick", "run", "outcomes", "TABLES",
           "ChokepointError", "ScenarioError", "SimulationError", "NodeError", "RefusedError", "DisconnectedError",
           "StrategyError"]

Scenario = _native.Scenario
"""A validated scenario: ``Scenario.load(path)``, ``Scenario.parse(text)``, and
``configured(seed=, ticks=, set=[(key, value), ...])`` for a changed copy."""

Tick = namedtuple("Tick", ["tick", "digest"])

#: The tables of a run, named after the CSV files `chokepoint run` writes (without ``.csv``).
TABLES = ("production", "markets", "domestic_prices", "trades", "stockpiles", "shortages", "nations",
          "digests", "events", "emissions", "investments", "recycling", "rejections")

# Columns that are text whatever they look like (a digest of digits only, a nation coded "NA").
_TEXT = {"digest": str, "nation": str, "commodity": str, "stage": str, "from": str, "to": str,
         "sector": str, "event": str, "site": str, "owner": str, "agent_name": str, "reason": str}


def _scenario(scenario, seed=None, ticks=None, set=None):
    """A Scenario from a path or a Scenario, with seed, ticks and sweep parameters applied."""
    if isinstance(scenario, (str, PathLike)):
        scenario = Scenario.load(scenario)
    elif not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a path or a chokepoint.Scenario, not {type(scenario).__name__}")
    pairs = [(str(k), _value(v)) for k, v in (set or {}).items()]
    if seed is None and ticks is None and not pairs:
        return scenario
    return scenario.configured(seed=seed, ticks=ticks, set=pairs)


def _value(v):
    """A parameter value as the sweep's --set reads it (3.0 -> "3", 2.5 -> "2.5")."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _frame(text):
    header = text.split("\n", 1)[0].split(",")
    dtype = {c: t for c, t in _TEXT.items() if c in header}
    return pd.read_csv(io.StringIO(text), dtype=dtype, keep_default_na=False, na_values=[""])


class Result:
    """A finished run: ``tables`` (name -> DataFrame, the CSV files' columns), each table also
    as an attribute (``result.markets``), ``digests`` (one hex digest per tick) and
    ``final_digest``."""

    def __init__(self, scenario, texts):
        self.scenario = scenario
        self.tables = {name[:-len(".csv")]: _frame(text) for name, text in texts.items()}

    def __getattr__(self, name):
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    @property
    def digests(self):
        return list(self.tables["digests"]["digest"])

    @property
    def final_digest(self):
        d = self.digests
        return d[-1] if d else None

    def __repr__(self):
        return f"Result({self.scenario!r}, {len(self.digests)} ticks, final digest {self.final_digest})"


class Engine:
    """A run stepped from Python. ``Engine(scenario, seed=None, ticks=None, set=None)`` takes a
    path or a Scenario; ``step()`` runs one tick, ``run()`` runs to the end, ``state()`` gives
    the world state as plain values, ``fork()`` an independent copy, ``tables()`` the rows so
    far as DataFrames."""

    def __init__(self, scenario, seed=None, ticks=None, set=None, *, _native_engine=None):
        if _native_engine is not None:
            self._engine = _native_engine
        else:
            self._engine = _native.Engine(_scenario(scenario, seed, ticks, set))

    @property
    def scenario(self):
        return self._engine.scenario

    @property
    def tick(self):
        """The next tick to run."""
        return self._engine.tick

    @property
    def finished(self):
        return self._engine.finished

    def step(self):
        """Runs one tick; returns Tick(tick, digest)."""
        return Tick(*self._engine.step())

    def run(self, ticks=None):
        """Runs to the end (or `ticks` more ticks); returns how many ran."""
        return self._engine.run(ticks)

    def state(self):
        """The world state now: tick, digest, agents (name, kind, nation, cash_cents,
        holdings_kg), prices (cents per kg by "COMMODITY/stage") and encoded (the exact bytes
        the digest hashes)."""
        return self._engine.state()

    def fork(self):
        """An independent copy at this tick, with the tables so far."""
        return Engine(None, _native_engine=self._engine.fork())

    def tables(self):
        """The rows so far, name -> DataFrame."""
        return Result(self.scenario, self._engine.tables()).tables

    def result(self):
        """The rows so far as a Result."""
        return Result(self.scenario, self._engine.tables())

    def __repr__(self):
        return repr(self._engine)


def run(scenario, seed=None, ticks=None, set=None):
    """Runs `scenario` (a path or a Scenario) to its end in this process and returns a Result.
    `set` maps sweep keys (those of ``chokepoint sweep --set``, e.g.
    ``stockpile.USA.target_days``) to values."""
    engine = Engine(scenario, seed=seed, ticks=ticks, set=set)
    engine.run()
    return engine.result()


def outcomes(scenario, seed=None, ticks=None, set=None):
    """Runs `scenario` to its end as one sweep job and returns the sweep's outcome measures as a
    DataFrame with the columns outcome, subject, value (those of the sweep's runs.csv)."""
    s = _scenario(scenario, seed, ticks, set)
    rows = _native.run_outcomes(s)
    return pd.DataFrame(rows, columns=["outcome", "subject", "value"])
