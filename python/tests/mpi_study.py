"""A Workbench study on the Workbench's own MPI evaluator, for test_ema.py: run as
``mpirun -n 1 python mpi_study.py SCENARIO`` (the evaluator spawns its two workers); prints
the experiments' values and outcomes as JSON."""

import json
import sys

from ema_workbench import IntegerParameter, MPIEvaluator, RealParameter, perform_experiments

from chokepoint.ema import ChokepointModel

KEYS = ("capacity.CD.co.pct", "seed", "stockpile.US.co.target_days")

if __name__ == "__main__":
    m = ChokepointModel("cobalt", sys.argv[1], ticks=40)
    m.uncertainties = [RealParameter("capacity.CD.co.pct", 30, 100), IntegerParameter("seed", 1, 1000)]
    m.levers = [IntegerParameter("stockpile.US.co.target_days", 0, 180)]
    with MPIEvaluator(m, n_processes=2) as evaluator:
        experiments, outcomes = perform_experiments(m, scenarios=4, policies=1, evaluator=evaluator)
    rows = [{k: experiments.iloc[i][k].item() for k in KEYS} for i in range(len(experiments))]
    print(json.dumps({"experiments": rows, "outcomes": {k: [float(x) for x in v] for k, v in outcomes.items()}}))
