"""Shared fixtures: the real data in ../shared (skipped cleanly when absent) and generated audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.vggish_fixtures import vggish_checkpoint, vggish_reference  # noqa: F401  (shared fixtures)
from tests.yamnet_fixtures import yamnet_backend, yamnet_home  # noqa: F401  (shared fixtures)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"


def shared_file(*parts: str) -> Path:
    """Return a path under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is only beside CI and dev checkouts)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's model cache or the network's defaults from a test."""
    monkeypatch.setenv("AUDIOTAGGER_HOME", str(tmp_path_factory.mktemp("cache")))


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    state = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            state[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return state


@pytest.fixture(scope="session", autouse=True)
def _shared_data_untouched():
    """The suite must never write into ../shared (issue 13): no file added, changed or removed there."""
    if not SHARED.is_dir():
        yield
        return
    before = _tree_state(SHARED)
    yield
    after = _tree_state(SHARED)
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert not changed, f"the tests wrote into {SHARED}: {sorted({name for name, _ in changed})[:10]}"
