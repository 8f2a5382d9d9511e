"""The library runs in process: a run, a stepped engine, a fork and a sweep job start no process
through Python's process calls and write no file, neither in the working folder nor in the
temporary folder."""

import os
import subprocess
import tempfile

import chokepoint
from conftest import TINY


def test_a_run_starts_no_process_and_writes_no_file(tmp_path, monkeypatch):
    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def refuse(*args, **kwargs):
        raise AssertionError(f"the library started a process: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)
    result = chokepoint.run(TINY, ticks=20)
    sim = chokepoint.Engine(TINY, ticks=20)
    sim.run(ticks=5)
    sim.fork().run()
    chokepoint.outcomes(TINY, ticks=5)
    assert len(result.digests) == 20
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []
