"""chokepoint.run and the tables: the digests are the binary's (the golden file, and a fresh
`chokepoint run` of the same scenario and seed), and every table has the CSV file's columns and
rows."""

import subprocess

import pandas as pd
import pytest

import chokepoint
from conftest import GOLDEN, TINY, SCENARIOS


def golden():
    return [line.split()[1] for line in GOLDEN.read_text().splitlines()]


def test_tiny_digests_equal_the_golden_file():
    result = chokepoint.run(TINY)
    assert result.digests == golden()
    assert list(result.tables["digests"]["tick"]) == list(range(60))


def test_every_table_is_there_with_the_files_columns():
    result = chokepoint.run(TINY, ticks=10)
    assert set(result.tables) == set(chokepoint.TABLES)
    assert list(result.markets.columns) == ["tick", "commodity", "stage", "price_cents_per_kg", "volume_kg", "traded"]
    assert len(result.markets) > 0 and result.markets["tick"].max() == 9


@pytest.mark.parametrize("scenario,seed,ticks,setting", [
    ("tiny.toml", 7, 60, None),
    ("tiny.toml", 11, 30, ("stockpile.CC.target_days", "150")),
    ("cobalt-halt-2025.toml", 3, 40, None),
])
def test_tables_and_digests_equal_chokepoint_run(tmp_path, chokepoint_bin, scenario, seed, ticks, setting):
    path = SCENARIOS / scenario
    set_ = dict([setting]) if setting else None
    result = chokepoint.run(path, seed=seed, ticks=ticks, set=set_)
    if setting:
        # The binary has no --set on run: give it the same change written into the file.
        text = path.read_text().replace("target_days = 90", "target_days = 150", 1)
        path = tmp_path / "changed.toml"
        path.write_text(text)
    out = tmp_path / "out"
    subprocess.run([chokepoint_bin, "--db", tmp_path / "db", "run", path, "--seed", str(seed), "--ticks", str(ticks),
                    "--out", out, "--quiet"], check=True, capture_output=True)
    for name in chokepoint.TABLES:
        want = pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
        got = result.tables[name].astype(str).replace({"nan": ""})
        assert list(got.columns) == list(want.columns), name
        assert got.shape == want.shape, name
        # Values compared as the CSV's text (floats printed as the file prints them).
        for col in want.columns:
            g = [v[:-2] if v.endswith(".0") and not w.endswith(".0") else v for v, w in zip(got[col], want[col])]
            g = ["true" if v == "True" else "false" if v == "False" else v for v in g]
            assert g == list(want[col]), f"{name}.{col}"
    assert result.digests == list(pd.read_csv(out / "digests.csv", dtype=str)["digest"])


def test_set_applies_sweep_keys_and_changes_the_run():
    base = chokepoint.run(TINY, ticks=20)
    more = chokepoint.run(TINY, ticks=20, set={"stockpile.CC.target_days": 200})
    assert base.digests != more.digests
    assert set(more.stockpiles[more.stockpiles.nation == "CC"].target_days) == {200}


def test_unknown_sweep_keys_and_bad_values_are_refused():
    with pytest.raises(ValueError, match="unknown parameter nope"):
        chokepoint.run(TINY, set={"nope": 1})
    with pytest.raises(ValueError, match="unknown nation ZZ"):
        chokepoint.run(TINY, set={"stockpile.ZZ.target_days": 1})
    with pytest.raises(ValueError, match="not a number"):
        chokepoint.run(TINY, set={"stockpile.CC.target_days": "lots"})
    with pytest.raises(ValueError, match="ticks must be at least 1"):
        chokepoint.run(TINY, ticks=0)


def test_outcomes_are_the_sweeps_measures():
    o = chokepoint.outcomes(TINY, ticks=20)
    assert list(o.columns) == ["outcome", "subject", "value"]
    assert {"peak_price_usd_per_kg", "shortage_days", "unmet_demand_t", "stockpile_cost_usd",
            "first_restriction_tick"} <= set(o.outcome)
    assert set(o[o.outcome == "shortage_days"].subject) == {"AA", "BB", "CC", "DD"}


def test_outcomes_equal_chokepoint_sweeps_runs_csv(tmp_path, chokepoint_bin):
    out = tmp_path / "sweep"
    subprocess.run([chokepoint_bin, "sweep", SCENARIOS / "cobalt-halt-2025.toml", "--seeds", "3,4", "--ticks", "30",
                    "--set", "capacity.CD.co.pct=60", "--set", "stockpile.US.co.target_days=90",
                    "--jobs", "1", "--out", out, "--quiet"], check=True, capture_output=True)
    runs = pd.read_csv(out / "runs.csv", keep_default_na=False, na_values=[""])
    for seed in (3, 4):
        got = chokepoint.outcomes(SCENARIOS / "cobalt-halt-2025.toml", seed=seed, ticks=30,
                                  set={"capacity.CD.co.pct": 60, "stockpile.US.co.target_days": 90})
        # runs.csv is sorted at the end of a sweep: compare in that order.
        want = runs[runs.seed == seed][["outcome", "subject", "value"]].sort_values(["outcome", "subject"])
        got = got.sort_values(["outcome", "subject"])
        assert len(got) == len(want) > 0
        assert list(got.outcome) == list(want.outcome) and list(got.subject) == list(want.subject)
        assert [float(v) for v in got.value] == pytest.approx([float(v) for v in want.value], rel=1e-12, nan_ok=True)
