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
