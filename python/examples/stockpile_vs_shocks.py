"""Stockpile targets against supply shocks, explored with the EMA Workbench, and PRIM on "a
nation goes short".

The world is the 2025 cobalt export halt (scenarios/cobalt-halt-2025.toml). Uncertain: how much
of its cobalt capacity the DRC and Indonesia keep (``capacity.CD.co.pct``,
``capacity.ID.co.pct``, a supply shortfall from the start on top of the halt) and the run's
seed (forecast noise, outages). Levers: the US and Japanese cobalt stockpile targets in days of
cover. Every experiment is one in-process run; PRIM then looks for the region of the
uncertainties and levers where some nation's industry goes short of cobalt.

    python examples/stockpile_vs_shocks.py                  # 200 experiments, every core
    python examples/stockpile_vs_shocks.py --experiments 40 --processes 1
"""

import argparse
from pathlib import Path

from ema_workbench import (IntegerParameter, MultiprocessingEvaluator, RealParameter, SequentialEvaluator,
                           perform_experiments)
from ema_workbench.analysis import prim

from chokepoint.ema import ChokepointModel

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "cobalt-halt-2025.toml"


def model():
    m = ChokepointModel("cobalthalt", SCENARIO)
    m.uncertainties = [
        RealParameter("capacity.CD.co.pct", 20, 100),
        RealParameter("capacity.ID.co.pct", 50, 120),
        IntegerParameter("seed", 1, 10_000),
    ]
    m.levers = [
        IntegerParameter("stockpile.US.co.target_days", 0, 180),
        IntegerParameter("stockpile.JP.co.target_days", 0, 180),
    ]
    return m


def study(experiments, processes):
    m = model()
    scenarios, policies = max(experiments // 4, 1), 4
    if processes == 1:
        with SequentialEvaluator(m) as evaluator:
            return m, perform_experiments(m, scenarios=scenarios, policies=policies, evaluator=evaluator)
    with MultiprocessingEvaluator(m, n_processes=processes) as evaluator:
        return m, perform_experiments(m, scenarios=scenarios, policies=policies, evaluator=evaluator)


def goes_short(outcomes):
    """Per experiment: whether any nation had a day of shortage."""
    shortage = [v for name, v in outcomes.items() if name.startswith("shortage_days.")]
    return sum(shortage) > 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--processes", type=int, default=-1, help="-1: every core; 1: no worker processes")
    parser.add_argument("--threshold", type=float, default=0.6, help="PRIM's density threshold")
    args = parser.parse_args()
    m, (experiments, outcomes) = study(args.experiments, args.processes)
    y = goes_short(outcomes)
    print(f"{len(experiments)} experiments; a nation goes short in {int(y.sum())} of them")
    if y.sum() == 0 or y.all():
        print("PRIM needs both outcomes; widen the ranges or run more experiments")
        return
    # As floats: PRIM's pasting writes fractional bounds into the columns, which pandas 3 refuses
    # for integer columns (the seed and the targets).
    x = experiments[[p.name for p in m.uncertainties + m.levers]].astype(float)
    box = prim.Prim(x, y, threshold=args.threshold, mass_min=0.02).find_box()
    print(box.peeling_trajectory.tail(5).to_string())
    box.inspect()


if __name__ == "__main__":
    main()
