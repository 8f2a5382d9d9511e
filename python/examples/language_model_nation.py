"""A nation decided by a language model: where the model would be called, with a stub.

Each tick the CC agency's observation becomes a prompt (its reserve, its target, the market's
price and bounds); the model's answer is parsed for lines ``BUY <tonnes> <US$/kg>``; an answer
that does not parse, or a model that is not there, falls back to the default decision. The stub
below calls no model: it answers by a rule, and now and then with nonsense, to show the
fallback. Replace ``ask_model`` with a call to a model of your choice; the run stays replayable
bit for bit whatever the model says, because the node's decisions are journaled.

    python3 python/examples/language_model_nation.py
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from chokepoint import node

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "tiny.toml"
ANSWER = re.compile(r"^\s*BUY\s+(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s*$", re.IGNORECASE | re.MULTILINE)


def prompt(obs):
    pile, market = obs.stockpile("dy"), obs.market("dy")
    per_day = pile.consumption_per_tick_kg / max(obs.public.tick_days, 1)
    return (f"You run the strategic reserve of nation {obs.nation_code}. Week {obs.tick}.\n"
            f"Refined dysprosium: reserve {pile.stock_kg / 1000:.1f} t, "
            f"{pile.stock_kg / per_day if per_day else 0:.0f} days of use (target {pile.target_days} days).\n"
            f"Last price US$ {obs.price('dy') / 100:.2f}/kg (bounds {market.price_min_cents_per_kg / 100:.0f}"
            f" to {market.price_max_cents_per_kg / 100:.0f}). Treasury US$ {obs.cash_cents / 1e8:.1f} M.\n"
            "Answer with lines 'BUY <tonnes> <US$ per kg>', or 'HOLD'.")


def ask_model(text, tick):
    """The stub where a model would be called: a rule, and nonsense every seventh week."""
    if tick % 7 == 6:
        return "I think the market looks interesting this week."
    days = float(re.search(r"(\d+) days of use", text).group(1))
    price = float(re.search(r"Last price US\$ ([\d.]+)", text).group(1))
    return f"BUY 0.5 {price * 1.2:.2f}" if days < 60 else "HOLD"


class ModelNation(node.Agent):
    def __init__(self):
        self.fallbacks = self.bids = 0

    def decide(self, obs):
        answer = ask_model(prompt(obs), obs.tick)
        if answer.strip().upper() == "HOLD":
            return obs.actions(orders=[])
        orders = [obs.buy("dy", kg=round(float(t) * 1000), limit_cents=round(float(p) * 100))
                  for t, p in ANSWER.findall(answer)]
        if not orders:
            self.fallbacks += 1
            return None          # unparsable: the default decision
        self.bids += len(orders)
        return orders


def main():
    bin_ = os.environ.get("CHOKEPOINT_BIN") or next(
        (str(p) for p in (ROOT / "target/release/chokepoint", ROOT / "target/debug/chokepoint") if p.exists()), None)
    if bin_ is None:
        sys.exit("no chokepoint binary: run cargo build, or set CHOKEPOINT_BIN")
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([bin_, "--db", f"{d}/db", "serve", SCENARIO, "--nodes", "1", "--out", f"{d}/out",
                                 "--listen", "127.0.0.1:0", "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        port = secret = None
        for line in proc.stdout:
            if "listening on " in line:
                port = line.split("listening on ")[1].split(";")[0].rsplit(":", 1)[1].strip()
            if "CHOKEPOINT_NODE_SECRET=" in line:
                secret = line.split("CHOKEPOINT_NODE_SECRET=")[1].split()[0]
                break
        nation = ModelNation()
        outcome = node.run(f"http://127.0.0.1:{port}", secret=secret, agents={"CC": nation}, scenario=SCENARIO)
        proc.wait(timeout=120)
        print(f"{outcome.ticks} ticks: the model bid {nation.bids} times; {nation.fallbacks} answers fell back")
        replay = subprocess.run([bin_, "--db", f"{d}/db", "replay", outcome.run_id], capture_output=True, text=True)
        print(replay.stdout.strip().splitlines()[-1] if replay.returncode == 0 else replay.stderr)


if __name__ == "__main__":
    main()
