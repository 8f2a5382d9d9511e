"""A US stockpile strategy written in Python, played against the AI nations.

The US agency keeps the project's own stockpiling rule, except that when an export restriction
that will hit the US is announced for a commodity it stockpiles, or the price runs 10 % above
the agency's own forecast, it buys ahead of the crowd: up to twice its target of days of
consumption, at up to three times the reference price. Every other agent (every other nation,
every mine, refinery and manufacturer) is the AI.

The script serves a scenario (by default the 2025 DRC cobalt export halt) with
``chokepoint serve`` on one node, joins it as that node,
compares the US reserves with the run the AI alone plays, and replays the run bit for bit
(``chokepoint replay``: the node's decisions were journaled because it says it is not
deterministic). Run it from the repository's root after ``cargo build``:

    python3 python/examples/us_stockpile_node.py [--scenario scenarios/cobalt-halt-2025.toml] [--ticks N]
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

import chokepoint
from chokepoint import node

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "cobalt-halt-2025.toml"


class BuyAhead(node.Agent):
    """Buys ahead of announced restrictions on the US and of rising prices; otherwise the
    default decision."""

    def __init__(self):
        self.bids = 0

    def decide(self, obs):
        threatened = {a.market.commodity for a in obs.public.announcements if obs.nation in a.affected}
        extra = []
        for pile in obs.raw.stockpiles:
            rising = obs.price(pile.commodity) * 100 > 110 * pile.price_forecast_cents_per_kg > 0
            if pile.commodity not in threatened and not rising:
                continue
            per_day = pile.consumption_per_tick_kg // max(obs.public.tick_days, 1)
            want = 2 * pile.target_days * per_day - pile.stock_kg
            market = obs.market(pile.commodity)
            limit = min(3 * market.reference_cents_per_kg, market.price_max_cents_per_kg)
            if want > 0 and obs.cash_cents > 0:
                extra.append(obs.buy(pile.commodity, kg=want, limit_cents=limit))
        self.bids += len(extra)
        return obs.actions(add=extra) if extra else None


def binary():
    explicit = os.environ.get("CHOKEPOINT_BIN")
    if explicit:
        return explicit
    for profile in ("release", "debug"):
        candidate = ROOT / "target" / profile / "chokepoint"
        if candidate.exists():
            return str(candidate)
    sys.exit("no chokepoint binary: run cargo build, or set CHOKEPOINT_BIN")


def serve_and_play(bin_, scenario, db, out, ticks, strategy):
    proc = subprocess.Popen([bin_, "--db", db, "serve", scenario, "--nodes", "1", "--ticks", str(ticks),
                             "--out", out, "--listen", "127.0.0.1:0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = secret = None
    for line in proc.stdout:
        if "listening on " in line:
            port = line.split("listening on ")[1].split(";")[0].rsplit(":", 1)[1].strip()
        if "CHOKEPOINT_NODE_SECRET=" in line:
            secret = line.split("CHOKEPOINT_NODE_SECRET=")[1].split()[0]
            break
    outcome = node.run(f"http://127.0.0.1:{port}", secret=secret, agents={"US": strategy}, scenario=scenario)
    if proc.wait(timeout=120) != 0:
        sys.exit("the coordinator failed")
    return outcome


def us_reserves(table):
    us = table[table.nation == "US"]
    return us.groupby("commodity").stock_kg.last() / 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default=str(SCENARIO))
    parser.add_argument("--ticks", type=int, default=None)
    args = parser.parse_args()
    scenario = chokepoint.Scenario.load(args.scenario)
    ticks = args.ticks or scenario.ticks
    bin_ = binary()
    with tempfile.TemporaryDirectory() as d:
        strategy = BuyAhead()
        outcome = serve_and_play(bin_, args.scenario, f"{d}/db", f"{d}/out", ticks, strategy)
        print(f"played {outcome.ticks} ticks of run {outcome.run_id} as {outcome.agents} agents; "
              f"the US bid ahead {strategy.bids} times")
        played = pd.read_csv(f"{d}/out/stockpiles.csv", dtype={"nation": str})
        ai = chokepoint.run(scenario, ticks=ticks).stockpiles
        print(pd.DataFrame({"AI alone (t)": us_reserves(ai), "Python US (t)": us_reserves(played)}).round(1))
        replay = subprocess.run([bin_, "--db", f"{d}/db", "replay", outcome.run_id], capture_output=True, text=True)
        print(replay.stdout.strip().splitlines()[-1] if replay.returncode == 0 else replay.stderr)


if __name__ == "__main__":
    main()
