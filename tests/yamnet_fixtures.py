"""Session fixtures for the YAMNet tests: the real TFLite model imported once, like a user would.

``yamnet_home`` runs ``audiotagger models import ../shared/models/yamnet/yamnet.tflite --model-dir DIR``
(the CLI path: TFLite → official-layout ``yamnet.h5`` in the cache); ``yamnet_backend`` then loads
``--model yamnet`` from that cache offline, exactly as after a download. Both skip cleanly without
``../shared``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
YAMNET_TFLITE = ROOT.parent / "shared" / "models" / "yamnet" / "yamnet.tflite"


def yamnet_tflite() -> Path:
    """The real YAMNet TFLite model, or skip."""
    if not YAMNET_TFLITE.is_file():
        pytest.skip(f"{YAMNET_TFLITE} not available (../shared is only beside CI and dev checkouts)")
    return YAMNET_TFLITE


@pytest.fixture(scope="session")
def yamnet_home(tmp_path_factory) -> Path:
    """A model cache holding ``yamnet.h5`` imported from the real TFLite model through the CLI."""
    from audiotagger.cli import main

    tflite = yamnet_tflite()
    home = tmp_path_factory.mktemp("yamnet-home")
    assert main(["models", "import", str(tflite), "--model-dir", str(home)]) == 0
    assert (home / "yamnet.h5").is_file()
    return home


@pytest.fixture(scope="session")
def yamnet_backend(yamnet_home):
    """``load_backend("yamnet")`` from that cache, offline (loaded once per session)."""
    from audiotagger.tag.tagger import load_backend

    return load_backend("yamnet", model_dir=yamnet_home, offline=True)
