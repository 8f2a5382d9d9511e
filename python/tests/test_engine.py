"""chokepoint.Engine: stepping, the state, forks that go on exactly as the run they came from
and leave it alone, and a finished run refusing another step."""

import pytest

import chokepoint
from conftest import GOLDEN, TINY


def test_steps_give_the_golden_digests_and_the_state_agrees():
    want = [line.split()[1] for line in GOLDEN.read_text().splitlines()]
    sim = chokepoint.Engine(TINY, seed=7)
    assert (sim.tick, sim.finished) == (0, False)
    first = sim.step()
    assert first == chokepoint.Tick(0, want[0])
    state = sim.state()
    assert state["tick"] == 1 and state["digest"] == want[0]
    assert len(state["agents"]) == 16 and state["agents"][0]["kind"] == "nation"
    assert isinstance(state["encoded"], bytes) and "co/refined" in state["prices"]
    sim.run()
    assert sim.finished and sim.state()["digest"] == want[-1]


def test_a_fork_goes_on_as_the_original_and_leaves_it_alone():
    whole = chokepoint.run(TINY)
    sim = chokepoint.Engine(TINY)
    sim.run(ticks=25)
    fork = sim.fork()
    assert fork.tick == 25 and fork.state()["encoded"] == sim.state()["encoded"]
    fork.run(ticks=5)
    assert sim.tick == 25
    sim.run()
    fork.run()
    assert sim.result().digests == whole.digests
    assert fork.result().digests == whole.digests
    for name in chokepoint.TABLES:
        assert fork.tables()[name].equals(whole.tables[name]), name


def test_a_fork_before_any_tick_is_a_fresh_run():
    whole = chokepoint.run(TINY)
    fork = chokepoint.Engine(TINY).fork()
    fork.run()
    for name in chokepoint.TABLES:
        assert fork.tables()[name].equals(whole.tables[name]), name


def test_a_finished_run_refuses_another_step():
    sim = chokepoint.Engine(TINY, ticks=3)
    assert sim.run() == 3
    with pytest.raises(chokepoint.SimulationError, match="complete") as caught:
        sim.step()
    assert caught.value.tick == 3


def test_engine_takes_a_scenario_object_and_set():
    s = chokepoint.Scenario.load(TINY)
    a = chokepoint.Engine(s, seed=3, ticks=5, set={"stockpile.BB.target_days": 60})
    assert a.scenario.seed == 3 and a.scenario.ticks == 5
    with pytest.raises(TypeError):
        chokepoint.Engine(42)
