"""Shared paths: the repository's scenarios and golden digests, and the `chokepoint` binary
when one has been built (the tests that compare with it are skipped, saying why, without one)."""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
TINY = SCENARIOS / "tiny.toml"
GOLDEN = ROOT / "tests" / "golden" / "tiny.digests"


def binary():
    """The chokepoint binary: $CHOKEPOINT_BIN, or a build in target/, or one on PATH."""
    explicit = os.environ.get("CHOKEPOINT_BIN")
    if explicit:
        return Path(explicit)
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "chokepoint"
        if candidate.exists():
            return candidate
    found = shutil.which("chokepoint")
    return Path(found) if found else None


@pytest.fixture
def chokepoint_bin():
    b = binary()
    if b is None:
        pytest.skip("no chokepoint binary: build it (cargo build -p coordinator) or set CHOKEPOINT_BIN")
    return b
