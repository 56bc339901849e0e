"""The README is a contract (issue 13): every ```python block runs as written, and every option its console
examples use is listed by ``--help``.

The runner is generic, so sections other people add are run too. All blocks run in order in one scratch
folder (a block may use what an earlier one wrote), each in a fresh namespace. Before a block runs, every
file name it mentions (a string literal) that is not there yet is made: a short video or audio file of that
format, the tests' official-format VGGish checkpoint for a ``.ckpt``, the official PCA file for
``vggish_pca_params.npz``. The model cache holds the same two files and ``AUDIOTAGGER_OFFLINE=1`` is set, so
nothing is downloaded.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from .conftest import ROOT, shared_file

README = ROOT / "README.md"
VIDEO = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"}
AUDIO = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus"}


def code_blocks(language: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of every fenced block of ``language`` in the README."""
    blocks, lines = [], README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{language}":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start + 1, "\n".join(body) + "\n"))
        i += 1
    return blocks


PYTHON = code_blocks("python")


def _ffmpeg(*args: str) -> None:
    from audiotagger.audio import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The scratch folder the blocks run in, with an offline model cache holding the test models."""
    pytest.importorskip("tf_slim")
    from tests.vggish_fixtures import cached_slim_checkpoint

    pca = shared_file("vggish", "vggish_pca_params.npz")  # the official file: the cache checks its sha256
    work = tmp_path_factory.mktemp("readme")
    home = work / ".home"
    home.mkdir()
    ckpt = cached_slim_checkpoint()
    (home / "vggish_model.ckpt").symlink_to(ckpt)
    shutil.copy(pca, home / "vggish_pca_params.npz")
    media = work / ".media"
    media.mkdir()
    t = np.arange(3 * 44100) / 44100
    sf.write(media / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=10:duration=3",
        "-i",
        str(media / "tone.wav"),
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        str(media / "video.mp4"),
    )
    return {"work": work, "home": home, "media": media, "ckpt": ckpt, "pca": pca}


def _literals(code: str) -> list[str]:
    return [
        n.value for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def provide_files(code: str, env: dict) -> None:
    """Make every file the block names that is not there yet (see the module docstring)."""
    for name in _literals(code):
        if not name or "\n" in name or len(name) > 200 or "{" in name:
            continue
        path = env["work"] / name
        suffix = Path(name).suffix.lower()
        if path.exists() or not suffix or "," in name:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix in VIDEO:
            _ffmpeg("-i", str(env["media"] / "video.mp4"), "-c", "copy", str(path)) if suffix in (
                ".mp4",
                ".m4v",
                ".mov",
            ) else _ffmpeg("-i", str(env["media"] / "video.mp4"), str(path))
        elif suffix in AUDIO:
            _ffmpeg("-i", str(env["media"] / "tone.wav"), str(path))
        elif suffix == ".ckpt":
            path.symlink_to(env["ckpt"])
        elif path.name == "vggish_pca_params.npz":
            shutil.copy(env["pca"], path)


@pytest.mark.parametrize("line,code", PYTHON, ids=[f"README.md:{line}" for line, _ in PYTHON])
def test_python_block_runs_as_written(line, code, workdir, monkeypatch):
    monkeypatch.chdir(workdir["work"])
    monkeypatch.setenv("AUDIOTAGGER_HOME", str(workdir["home"]))
    monkeypatch.setenv("AUDIOTAGGER_OFFLINE", "1")
    provide_files(code, workdir)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})  # noqa: S102


def test_the_readme_has_python_blocks():
    assert len(PYTHON) >= 3


def test_python_blocks_do_what_they_say(workdir):
    """The first blocks' files: tag_file wrote srt+json into out/, vtt into ., load_result read the npz."""
    work = workdir["work"]
    if not (work / "out" / "video.srt").exists():
        pytest.skip("runs after the README blocks")
    assert (work / "out" / "video.json").is_file() and (work / "video.vtt").is_file()
    assert (work / "out" / "video.npz").is_file()


# --- console examples: every option they use is documented by --help ---------------------------------


def _commands() -> list[list[str]]:
    """The ``audiotagger ...`` command lines of the console blocks (continuations joined, comments cut)."""
    out = []
    for _, block in code_blocks("console"):
        text = block.replace("\\\n", " ")
        for raw in text.splitlines():
            line = raw.split("  #")[0].strip().removeprefix("$ ")
            if "audiotagger " not in line or line.startswith("#"):
                continue
            try:
                words = shlex.split(line[line.index("audiotagger ") :])
            except ValueError:
                continue
            out.append(words[1:])
    return out


def _help_text(words: list[str]) -> str | None:
    from audiotagger.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    if not words or words[0] not in sub.choices:
        return None
    p = sub.choices[words[0]]
    nested = [a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"]
    if nested and len(words) > 1 and words[1] in nested[0].choices:
        p = nested[0].choices[words[1]]
    return p.format_help()


def test_every_readme_option_is_in_help():
    missing = []
    commands = _commands()
    assert len(commands) > 10
    for words in commands:
        text = _help_text(words)
        if text is None:
            continue
        for word in words:
            flag = word.split("=")[0]
            if re.fullmatch(r"--?[A-Za-z][\w-]*", flag) and not re.search(
                rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text
            ):
                missing.append(f"audiotagger {words[0]} {flag}")
    assert not missing, f"options used in the README but hidden from --help: {sorted(set(missing))}"


def test_help_option_check_can_fail():
    assert _help_text(["tag"]) is not None and "--no-such-option" not in _help_text(["tag"])
    assert os.path.basename(README) == "README.md"
