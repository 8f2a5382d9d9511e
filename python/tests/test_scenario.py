"""chokepoint.Scenario: loading, errors as Python exceptions carrying file, line and field, and
pickling (what the Workbench's multiprocessing evaluator needs)."""

import pickle

import pytest

import chokepoint
from conftest import TINY


def test_load_gives_the_scenario():
    s = chokepoint.Scenario.load(TINY)
    assert (s.name, s.seed, s.ticks) == ("tiny", 7, 60)
    assert s.nations == ["AA", "BB", "CC", "DD"]
    assert s.commodities == ["co", "dy"]
    assert ("CC", "dy") in s.stockpiles


def test_a_bad_field_is_reported_with_file_line_and_field(tmp_path):
    lines = TINY.read_text().splitlines()
    i = next(n for n, l in enumerate(lines) if l.startswith("target_days = 90"))
    lines[i] = "target_days = -5"
    bad = tmp_path / "bad.toml"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(chokepoint.ScenarioError) as caught:
        chokepoint.Scenario.load(bad)
    e = caught.value
    assert e.file == str(bad)
    assert e.line == i + 1
    assert "target_days" in e.field and "stockpiles" in e.field
    assert str(bad) in str(e) and isinstance(e, ValueError)


def test_a_missing_file_and_bad_toml_are_scenario_errors(tmp_path):
    with pytest.raises(chokepoint.ScenarioError) as caught:
        chokepoint.Scenario.load(tmp_path / "none.toml")
    assert caught.value.field == "(file)" and "none.toml" in caught.value.file
    with pytest.raises(chokepoint.ScenarioError) as caught:
        chokepoint.Scenario.parse("[scenario\nname = 1\n", file="inline.toml")
    assert caught.value.file == "inline.toml" and caught.value.line == 1


def test_configured_changes_a_copy_and_pickles_with_its_settings():
    s = chokepoint.Scenario.load(TINY)
    c = s.configured(seed=9, ticks=12, set=[("stockpile.CC.target_days", "120")])
    assert (s.seed, s.ticks, s.settings) == (7, 60, [])
    assert (c.seed, c.ticks, c.settings) == (9, 12, [("stockpile.CC.target_days", "120")])
    again = pickle.loads(pickle.dumps(c))
    assert (again.seed, again.ticks, again.settings, again.file) == (9, 12, c.settings, str(TINY))
    assert chokepoint.run(again).digests == chokepoint.run(c).digests


def test_errors_pickle():
    e = chokepoint.ScenarioError("f:1: x", file="f", line=1, column=2, field="a.b", reason="x")
    back = pickle.loads(pickle.dumps(e))
    assert (back.file, back.line, back.column, back.field, str(back)) == ("f", 1, 2, "a.b", "f:1: x")
