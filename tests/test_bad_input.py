"""Issue 13: what users (and hostile inputs) really do, case by case, through the real CLI.

Every case asserts the exit code, the one line that explains it, that no traceback was printed, that no
partial or temporary file was left and no input changed, and (where the call has several inputs) that
the other inputs were still processed. The models are the tests' official-format VGGish checkpoint
and a small seeded classifier, loaded once for the whole module (``audiotagger.cli.main`` runs in
process); only the kill/signal cases start subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiotagger.audio import ffmpeg_exe
from audiotagger.cli import main

from .conftest import ROOT

SR = 16000


# --- fixtures -------------------------------------------------------------------------------------


def _tone(seconds: float, freq: float = 440.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Good and bad inputs, made once; their digests are checked again when the module ends."""
    d = tmp_path_factory.mktemp("media")
    sf.write(d / "good.wav", _tone(3.0), SR)
    sf.write(d / "other.wav", _tone(2.0, 660), SR)
    sf.write(d / "short.wav", _tone(0.5), SR)
    sf.write(d / "tail7.wav", _tone(2.7), SR)
    sf.write(d / "tail3.wav", _tone(2.3), SR)
    sf.write(d / "zero.wav", np.zeros((0, 1)), SR)
    nan = _tone(2.0)
    nan[SR // 2] = np.nan
    sf.write(d / "nan.wav", nan, SR, subtype="FLOAT")
    (d / "empty.mp3").write_bytes(b"")
    (d / "notes.wav").write_text("this is not audio\n" * 50)
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=10:duration=3",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=500:duration=3",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        "-movflags",
        "+faststart",
        str(d / "clip.mp4"),
    )
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=10:duration=2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(d / "silent_video.mp4"),
    )
    data = (d / "clip.mp4").read_bytes()
    plain = d / "plain.mp4"  # moov at the end: a cut copy has no index at all
    _ffmpeg("-i", str(d / "clip.mp4"), "-c", "copy", str(plain))
    (d / "cut.mp4").write_bytes(plain.read_bytes()[: len(data) // 2])
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=8",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "64k",
        str(d / "long.mp3"),
    )
    mp3 = (d / "long.mp3").read_bytes()
    (d / "cut.mp3").write_bytes(mp3[:20_000])
    (d / "garbage.mp3").write_bytes(mp3[: len(mp3) // 2] + bytes(range(256)) * 32 + mp3[len(mp3) // 2 :])
    digests = {p: _digest(p) for p in d.iterdir()}
    yield d
    changed = [p.name for p, h in digests.items() if not p.exists() or _digest(p) != h]
    assert not changed, f"inputs changed by the CLI: {changed}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``--checkpoint ... --pca-params ... --model ...`` of seeded official-format models."""
    pytest.importorskip("tf_slim")
    import keras

    from audiotagger.classifier import build_model, model_config
    from audiotagger.classifier.store import write_model
    from tests.vggish_fixtures import cached_slim_checkpoint

    folder = tmp_path_factory.mktemp("models")
    basis, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((128, 128)))
    pca = folder / "vggish_pca_params.npz"
    np.savez(pca, pca_eigen_vectors=basis * 0.5, pca_means=np.zeros(128))
    keras.utils.set_random_seed(3)
    config = model_config(hidden_units=32)
    clf = write_model(folder / "small.npz", build_model(**config), {**config, "name": "test-small"})
    return {
        "ckpt": cached_slim_checkpoint(),
        "pca": pca,
        "clf": clf,
        "folder": folder,
        "args": [
            "--checkpoint",
            str(cached_slim_checkpoint()),
            "--pca-params",
            str(pca),
            "--model",
            str(clf),
        ],
    }


def cli(capsys, *argv) -> tuple[int, str, str]:
    """Run the CLI in process; return (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def check(code, err, expected_code, pattern=None, *, root: Path | None = None) -> None:
    """Exit code, one explaining line, no traceback, no temporary file left under ``root``."""
    assert code == expected_code, err
    assert "Traceback" not in err, err
    if pattern is not None:
        assert any(re.search(pattern, line) for line in err.splitlines()), err
    if root is not None:
        leftovers = [p for p in root.rglob("*") if ".part" in p.name]
        assert not leftovers, leftovers


def outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --- tag: one bad input among good ones (exit 1, the good ones written) -----------------------------

BAD_INPUTS = [
    ("missing", lambda m, t: m / "nope.wav", r"error: .*nope\.wav: no such file"),
    ("folder-without-media", lambda m, t: t.mkdir() or t, r"error: .*: no media files in this folder"),
    ("empty-file", lambda m, t: m / "empty.mp3", r"empty\.mp3: empty file \(0 bytes\)"),
    ("text-as-wav", lambda m, t: m / "notes.wav", r"notes\.wav: not a media file"),
    ("truncated-mp4", lambda m, t: m / "cut.mp4", r"cut\.mp4: truncated or corrupt"),
    ("video-without-audio", lambda m, t: m / "silent_video.mp4", r"silent_video\.mp4: no audio stream"),
    ("zero-length-audio", lambda m, t: m / "zero.wav", r"zero\.wav: no audio samples"),
    ("nan-samples", lambda m, t: m / "nan.wav", r"nan\.wav: 1 non-finite samples .*first at 0\.500 s"),
    ("glob-matching-nothing", lambda m, t: str(m / "*.nothing"), r"pattern matched no file"),
]


@pytest.mark.parametrize("name,make,pattern", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_tag_bad_input_fails_alone(name, make, pattern, media, models, tmp_path, capsys):
    out = tmp_path / "out"
    bad = make(media, tmp_path / "emptydir")
    code, _, err = cli(
        capsys, "tag", media / "good.wav", bad, media / "other.wav", "-o", out, "-q", *models["args"]
    )
    check(code, err, 1, pattern, root=tmp_path)
    assert outputs(out) == ["good.npz", "good.srt", "other.npz", "other.srt"]
    assert re.search(r"1 failed", err)


def test_strict_refuses_damaged_media_others_tagged(media, models, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = cli(
        capsys, "tag", media / "garbage.mp3", media / "good.wav", "--strict", "-o", out, "-q", *models["args"]
    )
    check(
        code,
        err,
        1,
        r"garbage\.mp3: damaged media: decoded [\d.]+ s of the [\d.]+ s .*refused \(--strict\)",
        root=tmp_path,
    )
    assert outputs(out) == ["good.npz", "good.srt"]


@pytest.mark.parametrize(
    "name,pattern",
    [
        (
            "garbage.mp3",
            r"warning: .*garbage\.mp3: damaged media: decoded [\d.]+ s of the [\d.]+ s the container "
            r"states \(Header missing\); keeping what decodes",
        ),
        (
            "cut.mp3",
            r"warning: .*cut\.mp3: damaged media: decoded 2\.\d+ s of the 8\.\d+ s the container states",
        ),
    ],
)
def test_damaged_media_keeps_what_decodes(name, pattern, media, models, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = cli(capsys, "tag", media / name, "-o", out, "-q", *models["args"])
    check(code, err, 0, pattern, root=tmp_path)
    assert outputs(out) == [f"{Path(name).stem}.npz", f"{Path(name).stem}.srt"]


@pytest.mark.parametrize(
    "name,steps,duration",
    [("short.wav", 1, 0.5), ("tail7.wav", 3, 2.7), ("tail3.wav", 2, 2.3), ("good.wav", 3, 3.0)],
)
def test_final_partial_second_rule(name, steps, duration, media, models, tmp_path, capsys):
    """A tail of at least 0.5 s is tagged (padded, as a short file is); a shorter one is not."""
    out = tmp_path / "out"
    code, _, err = cli(capsys, "tag", media / name, "-o", out, "-q", "-f", "npz,srt", *models["args"])
    check(code, err, 0, r"shorter than one VGGish example" if steps == 1 else None, root=tmp_path)
    with np.load(out / f"{Path(name).stem}.npz") as npz:
        assert npz["probs"].shape == (steps, 527)
        np.testing.assert_array_equal(npz["times"], np.arange(steps))
        assert float(npz["duration"]) == pytest.approx(duration, abs=1e-3)
    ends = re.findall(r"--> (\S+)", (out / f"{Path(name).stem}.srt").read_text())
    assert not ends or ends[-1] <= f"00:00:0{duration:.3f}".replace(".", ",")


# --- tag: outputs planned and checked per input ---------------------------------------------------


def test_output_name_too_long_fails_that_input_only(media, models, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    long = src / ("x" * 250 + ".mp4")
    shutil.copy(media / "clip.mp4", long)
    out = tmp_path / "out"
    code, _, err = cli(
        capsys, "tag", long, media / "good.wav", "-f", "srt,mp4", "-o", out, "-q", *models["args"]
    )
    check(
        code, err, 1, r"x{40}\.\.\. is 261 bytes, longer than the file system allows \(255\)", root=tmp_path
    )
    assert outputs(out) == ["good.srt"]


def test_longest_legal_output_name_works(media, models, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    stem = "y" * 251
    shutil.copy(media / "good.wav", src / f"{stem}.wav")
    out = tmp_path / "out"
    code, _, err = cli(capsys, "tag", src / f"{stem}.wav", "-f", "srt", "-o", out, "-q", *models["args"])
    check(code, err, 0, root=tmp_path)
    assert outputs(out) == [f"{stem}.srt"] and len(f"{stem}.srt") == 255


def test_never_writes_over_another_input(media, models, tmp_path, capsys):
    """Issue 13 fault 3: ``victim.srt`` was replaced by the SRT of ``victim.txt``."""
    work = tmp_path / "w"
    work.mkdir()
    (work / "victim.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nmy own subtitles\n\n")
    shutil.copy(media / "good.wav", work / "victim.txt")
    before = (work / "victim.srt").read_bytes()
    code, _, err = cli(
        capsys,
        "tag",
        work / "victim.srt",
        work / "victim.txt",
        media / "other.wav",
        "--overwrite",
        "-f",
        "srt",
        "-o",
        work,
        "-q",
        *models["args"],
    )
    check(
        code,
        err,
        1,
        r"victim\.txt: output .*victim\.srt is also an input of this call; not writing over it",
        root=tmp_path,
    )
    assert (work / "victim.srt").read_bytes() == before
    assert (work / "other.srt").is_file()


def test_two_inputs_with_one_output(media, models, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(media / "good.wav", a / "x.wav")
    shutil.copy(media / "other.wav", b / "x.flac")
    out = tmp_path / "out"
    code, _, err = cli(
        capsys, "tag", a / "x.wav", b / "x.flac", "-f", "srt", "-o", out, "-q", *models["args"]
    )
    check(code, err, 1, r"x\.flac: output .*x\.srt is also the output of .*x\.wav", root=tmp_path)
    assert outputs(out) == ["x.srt"]


@pytest.mark.parametrize("where", ["file", "not-a-dir"])
def test_output_folder_that_cannot_be(where, media, models, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    out = blocker if where == "file" else blocker / "sub"
    code, _, err = cli(capsys, "tag", media / "good.wav", "-o", out, "-q", *models["args"])
    check(code, err, 1, r"error: .*good\.wav: .*(Not a directory|File exists|not a directory)", root=tmp_path)
    assert blocker.read_text() == "a file"


def test_own_tagged_videos_and_hidden_files_are_not_inputs(media, models, tmp_path, capsys):
    work = tmp_path / "videos"
    work.mkdir()
    shutil.copy(media / "clip.mp4", work / "clip.mp4")
    code, _, err = cli(capsys, "tag", work, "-f", "mp4", "-o", work, "-q", *models["args"])
    check(code, err, 0, root=tmp_path)
    assert outputs(work) == ["clip.mp4", "clip.tagged.mp4"]
    (work / ".hidden.mp4").write_bytes(b"not a video")
    code, _, err = cli(capsys, "tag", work, "-f", "mp4", "-o", work, "--overwrite", *models["args"])
    check(code, err, 0, root=tmp_path)
    assert "clip.tagged.tagged" not in err and outputs(work) == [".hidden.mp4", "clip.mp4", "clip.tagged.mp4"]
    assert "1 done" not in err or "hidden" not in err


def test_stale_part_files_of_killed_runs_are_swept(media, models, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    stale = out / f".good.tagged.mp4.{dead}-abcd1234.part.tagged.mp4"
    stale.write_bytes(b"")
    download = out / ".vggish_model.ckpt.part"  # a resumable download: never ours to remove
    download.write_bytes(b"123")
    code, _, err = cli(capsys, "tag", media / "good.wav", "-o", out, "-q", *models["args"])
    assert code == 0 and not stale.exists() and download.exists(), err
    download.unlink()


def test_full_disk_leaves_nothing_of_the_failed_input(media, models, tmp_path, capsys):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(mnt)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here (not root, or no mount permission)")
    try:
        code, _, err = cli(
            capsys, "tag", media / "good.wav", "-f", "srt,json,npz", "-o", mnt, "-q", *models["args"]
        )
        check(code, err, 1, r"error: .*good\.wav: .*No space left on device", root=mnt)
        assert outputs(mnt) == []  # not the srt either: an input's outputs come together
        code, _, err = cli(capsys, "tag", media / "good.wav", "-f", "srt", "-o", mnt, "-q", *models["args"])
        check(code, err, 0, root=mnt)
        assert outputs(mnt) == ["good.srt"]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_png_without_media_says_where_it_looked(media, models, tmp_path, capsys):
    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(media / "good.wav", work / "moved.wav")
    code, _, err = cli(capsys, "tag", work / "moved.wav", "-f", "npz", "-o", work, "-q", *models["args"])
    assert code == 0
    (work / "moved.wav").unlink()
    code, _, err = cli(capsys, "tag", "--from-probs", work / "moved.npz", "-f", "png", "-o", work, "-q")
    check(
        code,
        err,
        0,
        r"warning: .*moved\.wav: png drawn without the spectrogram: the media file was not "
        r"found \(looked at .*moved\.wav",
        root=tmp_path,
    )
    assert (work / "moved.png").is_file()


# --- tag: usage errors (exit 2, before any work) ----------------------------------------------------

USAGE = [
    ("unknown-format", ["-f", "srt,docx"], r"-f: unknown output format 'docx'"),
    ("threshold-above-one", ["--threshold", "2"], r"--threshold.*: must be between 0 and 1, got 2"),
    ("negative-left", ["--left", "-1"], r"--left.*: must be >= 0, got -1"),
    ("right-not-a-number", ["--right", "x"], r"--right.*: invalid int value: 'x'"),
    (
        "vggish-with-sample-duration",
        ["--sample-duration", "2"],
        r"--sample-duration/--hop-duration: only for PANNs",
    ),
    (
        "sample-duration-huge",
        ["--model", "panns-cnn6", "--sample-duration", "100000"],
        r"--sample-duration: at most 60 s, got 100000",
    ),
    ("sample-duration-nan", ["--model", "panns-cnn6", "--sample-duration", "nan"], r"--sample-duration"),
    ("compat-truncate-panns", ["--model", "panns-cnn6", "--compat-truncate"], r"--compat-truncate: only for"),
    ("unknown-exclude", ["--exclude", "Unicorn"], r"--exclude"),
    ("smooth-word", ["--smooth", "lots"], r"--smooth.*: expected a number of steps or yes/no"),
    ("top-k-zero", ["--top-k", "0"], r"--top-k.*: must be >= 1, got 0"),
    ("batch-size-zero", ["--batch-size", "0"], r"--batch-size.*: must be >= 1, got 0"),
    (
        "threshold-word",
        ["--threshold", "foo"],
        r"--threshold: expected a number between 0 and 1 or auto, got 'foo'",
    ),
    (
        "threshold-auto-panns",
        ["--model", "panns-cnn6", "--threshold", "auto"],
        r"error: panns-cnn6: no per-class thresholds \(--threshold auto needs a model that stores them; "
        r"give a number\)$",
    ),
    (
        "threshold-auto-yamnet",
        ["--model", "yamnet", "--threshold", "auto"],
        r"error: yamnet: no per-class thresholds",
    ),
]


@pytest.mark.parametrize("name,flags,pattern", USAGE, ids=[c[0] for c in USAGE])
def test_tag_usage_errors(name, flags, pattern, media, tmp_path, capsys):
    code, _, err = cli(capsys, "tag", media / "good.wav", "-o", tmp_path / "out", *flags)
    check(code, err, 2, pattern, root=tmp_path)
    assert not (tmp_path / "out").exists()


def test_no_input_and_from_probs_with_inputs(media, tmp_path, capsys):
    code, _, err = cli(capsys, "tag")
    check(code, err, 2, r"no input given")
    code, _, err = cli(capsys, "tag", media / "good.wav", "--from-probs", tmp_path / "x.npz")
    check(code, err, 2, r"--from-probs: give the \.npz files to --from-probs, not as inputs")


def test_threshold_auto_without_stored_thresholds(media, models, tmp_path, capsys):
    """A classifier or probability file that stores no per-class thresholds: exit 2 before any work."""
    out = tmp_path / "out"
    code, _, err = cli(capsys, "tag", media / "good.wav", "-o", out, "--threshold", "auto", *models["args"])
    clf = re.escape(str(models["clf"]))
    line = (
        rf"^audiotagger: error: {clf}: no per-class thresholds \(--threshold auto needs a model that "
        r"stores them; give a number\)$"
    )
    check(code, err, 2, line, root=tmp_path)
    assert not out.exists()
    code, _, err = cli(
        capsys, "tag", media / "good.wav", "-o", tmp_path / "p", "-f", "npz", "-q", *models["args"]
    )
    assert code == 0, err
    npz = tmp_path / "p" / "good.npz"
    code, _, err = cli(capsys, "tag", "--from-probs", npz, "-o", out, "--threshold", "auto")
    check(code, err, 2, r"error: .*good\.npz: no per-class thresholds \(--threshold auto", root=tmp_path)
    assert not out.exists()
    # listen: before the source is opened (or the model loaded); alerts with =auto alike
    code, _, err = cli(capsys, "listen", "-", "--format", "s16le", "--threshold", "auto", *models["args"])
    check(code, err, 2, rf"error: {clf}: no per-class thresholds")
    code, _, err = cli(
        capsys, "listen", "-", "--format", "s16le", "--alert", "Dog=auto", "--model", "panns-cnn6"
    )
    check(code, err, 2, r"error: --alert/--on: panns-cnn6: no per-class thresholds")


# --- one validation rule for scores: tag --from-probs and parse ------------------------------------


def _probs_file(path: Path, probs: np.ndarray) -> Path:
    from audiotagger.tag.result import TagResult

    res = TagResult(
        source="x.wav",
        times=np.arange(3.0),
        probs=np.full((3, 527), 0.2, np.float32),
        hop=1.0,
        window=1.0,
        duration=3.0,
        meta={"model": "m", "left": 1, "right": 1},
    )
    arrays = res.npz_arrays({})
    arrays["probs"], arrays["times"] = probs, np.arange(len(probs), dtype=np.float64)
    np.savez(path, **arrays)
    return path


SCORES = [
    (
        "nan",
        lambda: np.where(np.arange(527) == 3, np.nan, 0.2).astype(np.float32)[None].repeat(3, 0),
        r"1?\d* of \d+ scores are NaN or infinite",
    ),
    ("inf", lambda: np.full((3, 527), np.inf, np.float32), r"scores are NaN or infinite"),
    ("zero-rows", lambda: np.zeros((0, 527), np.float32), r"no rows \(no time steps to render\)"),
]


@pytest.mark.parametrize("command", ["tag", "parse"])
@pytest.mark.parametrize("name,make,pattern", SCORES, ids=[c[0] for c in SCORES])
def test_bad_scores_one_rule(command, name, make, pattern, tmp_path, capsys):
    bad = _probs_file(tmp_path / "bad.npz", make())
    good = _probs_file(tmp_path / "good.npz", np.full((3, 527), 0.3, np.float32))
    out = tmp_path / "out"
    argv = (
        ["tag", "--from-probs", bad, "--from-probs", good, "-f", "srt"]
        if command == "tag"
        else ["parse", bad, good]
    )
    code, _, err = cli(capsys, *argv, "-o", out, "-q")
    check(code, err, 1, rf"bad\.npz: .*{pattern}", root=tmp_path)
    assert outputs(out) == (["good.srt"] if command == "tag" else ["good.txt"])


NPZ_FILES = [
    ("not-a-zip", lambda p: p.write_text("hello"), r"cannot read"),
    (
        "missing-arrays",
        lambda p: np.savez(p, probs=np.zeros((2, 527))),
        r"not an audiotagger probability file",
    ),
    (
        "pickled",
        lambda p: np.savez(
            p,
            probs=np.array([{"a": 1}], dtype=object),
            times=np.zeros(1),
            mids=np.array(["a"]),
            labels=np.array(["a"]),
            settings=np.array("{}"),
        ),
        r"cannot read|pickle",
    ),
    (
        "bad-settings-json",
        lambda p: np.savez(
            p,
            probs=np.zeros((1, 527), np.float32),
            times=np.zeros(1),
            mids=np.array(["a"] * 527),
            labels=np.array(["a"] * 527),
            settings=np.array("{nope"),
        ),
        r"'settings' is not valid JSON",
    ),
]


@pytest.mark.parametrize("name,write,pattern", NPZ_FILES, ids=[c[0] for c in NPZ_FILES])
def test_from_probs_unreadable_files(name, write, pattern, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    write(bad)
    good = _probs_file(tmp_path / "good.npz", np.full((3, 527), 0.3, np.float32))
    out = tmp_path / "out"
    code, _, err = cli(
        capsys, "tag", "--from-probs", bad, "--from-probs", good, "-f", "srt,json", "-o", out, "-q"
    )
    check(code, err, 1, rf"bad\.npz: .*({pattern})", root=tmp_path)
    assert outputs(out) == ["good.json", "good.srt"]


def test_mp4_from_probs_without_video_leaves_nothing(tmp_path, capsys):
    npz = _probs_file(tmp_path / "walk.npz", np.full((3, 527), 0.3, np.float32))
    out = tmp_path / "out"
    code, _, err = cli(capsys, "tag", "--from-probs", npz, "-f", "srt,mp4", "-o", out, "-q")
    check(code, err, 1, r"-f mp4 needs the input video, which is not there", root=tmp_path)
    assert outputs(out) == []


# --- models that are damaged ---------------------------------------------------------------------


def test_classifier_with_nan_weights(media, models, tmp_path, capsys):
    with np.load(models["clf"]) as npz:
        arrays = dict(npz)
    arrays["w000"] = np.full_like(arrays["w000"], np.nan)
    bad = tmp_path / "nan_model.npz"
    np.savez(bad, **arrays)
    args = [a if a != str(models["clf"]) else str(bad) for a in models["args"]]
    code, _, err = cli(capsys, "tag", media / "good.wav", "-o", tmp_path / "out", "-q", *args)
    check(code, err, 1, r"nan_model\.npz: weight .* holds NaN or infinite values", root=tmp_path)
    assert outputs(tmp_path / "out") == []


@pytest.mark.parametrize(
    "name,flag,pattern",
    [
        (
            "missing-checkpoint",
            "--checkpoint",
            r"nope\.ckpt: vggish file not found \(given with --checkpoint\)",
        ),
        ("missing-pca", "--pca-params", r"nope\.ckpt: vggish-pca file not found"),
        ("text-classifier", "--model", r"nope\.ckpt: classifier file not found"),
    ],
)
def test_missing_model_files(name, flag, pattern, media, models, tmp_path, capsys):
    args = list(models["args"])
    args[args.index(flag) + 1] = str(tmp_path / "nope.ckpt")
    code, _, err = cli(capsys, "tag", media / "good.wav", "-o", tmp_path / "out", "-q", *args)
    check(code, err, 1, pattern, root=tmp_path)
    assert outputs(tmp_path / "out") == []


@pytest.fixture(scope="module")
def corrupt_ckpt(models, tmp_path_factory):
    """The test checkpoint with 16 bytes changed inside a tensor (issue 13 fault 4)."""
    path = tmp_path_factory.mktemp("corrupt") / "vggish_model.ckpt"
    shutil.copy(models["ckpt"], path)
    with open(path, "r+b") as fh:
        fh.seek(100_000_000)
        fh.write(bytes(range(16)))
    return path


def test_models_import_and_verify_catch_a_corrupt_checkpoint(corrupt_ckpt, models, tmp_path, capsys):
    cache = tmp_path / "cache"
    code, _, err = cli(capsys, "models", "import", corrupt_ckpt, "--model-dir", cache)
    check(
        code,
        err,
        1,
        r"vggish_model\.ckpt: not a valid vggish file .*checksum mismatch in the data block",
        root=tmp_path,
    )
    assert not (cache / "vggish_model.ckpt").exists()
    cache.mkdir(exist_ok=True)
    shutil.copy(corrupt_ckpt, cache / "vggish_model.ckpt")  # copied in by hand
    code, _, err = cli(capsys, "models", "verify", "vggish", "--model-dir", cache)
    check(code, err, 1, r"vggish_model\.ckpt: vggish corrupt: .*checksum mismatch")
    code, out, err = cli(capsys, "models", "import", models["ckpt"], "--model-dir", cache)
    check(code, err, 0)
    code, out, err = cli(capsys, "models", "verify", "vggish", "--model-dir", cache)
    check(code, err, 0)
    assert "vggish: ok" in out


def test_tag_with_a_corrupt_checkpoint_is_one_line(corrupt_ckpt, models, media, tmp_path, capsys):
    args = list(models["args"])
    args[args.index("--checkpoint") + 1] = str(corrupt_ckpt)
    code, _, err = cli(
        capsys,
        "tag",
        media / "good.wav",
        "-o",
        tmp_path / "out",
        "-q",
        "--model-dir",
        tmp_path / "cache",
        *args,
    )
    check(
        code,
        err,
        1,
        r"vggish_model\.ckpt: (not a readable TensorFlow checkpoint|corrupt checkpoint)",
        root=tmp_path,
    )


def test_corrupt_npz_member_is_named(models, tmp_path, capsys):
    from audiotagger.errors import ModelError
    from audiotagger.filecheck import check_npz_arrays

    data = bytearray(Path(models["pca"]).read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the eigenvector data: only the member's CRC-32 can tell
    bad = tmp_path / "vggish_pca_params.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"member pca_eigen_vectors\.npy fails its CRC-32 check"):
        check_npz_arrays(bad)
    code, _, err = cli(capsys, "models", "import", bad, "--name", "vggish-pca", "--model-dir", tmp_path / "c")
    check(code, err, 1, r"vggish_pca_params\.npz: not a valid vggish-pca file", root=tmp_path)
    assert not (tmp_path / "c" / "vggish_pca_params.npz").exists()


def test_converted_cache_is_keyed_by_content_and_cleaned(models, tmp_path, capsys):
    from audiotagger.vggish.checkpoint import converted_path

    cache = tmp_path / "cache"
    copy = tmp_path / "elsewhere" / "renamed.ckpt"
    copy.parent.mkdir()
    os.link(models["ckpt"], copy) if os.stat(models["ckpt"]).st_dev == os.stat(
        copy.parent
    ).st_dev else shutil.copy(models["ckpt"], copy)
    assert converted_path(models["ckpt"], cache) == converted_path(copy, cache)
    stale = cache / "converted" / "vggish-0123456789abcdef0123.h5"
    stale.write_bytes(b"x" * 1000)
    code, out, err = cli(capsys, "models", "clean", "--model-dir", cache)
    check(code, err, 0, r"removed 2 file\(s\)")
    assert not stale.exists()


def test_malformed_mirror_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AUDIOTAGGER_MIRROR", "htp//mirror example")
    code, _, err = cli(capsys, "models", "download", "vggish-pca", "--model-dir", tmp_path, "-q")
    check(code, err, 1, r"AUDIOTAGGER_MIRROR: not an http://, https:// or file:// URL: 'htp//mirror example'")


def test_unknown_model_name(tmp_path, capsys):
    code, _, err = cli(capsys, "models", "verify", "vggishh", "--model-dir", tmp_path)
    check(code, err, 2, r"vggishh: unknown model")


# --- embed and parse --------------------------------------------------------------------------------


def test_embed_bad_inputs_and_clashes(media, models, tmp_path, capsys):
    args = models["args"][:4]
    other = tmp_path / "in"
    other.mkdir()
    shutil.copy(media / "other.wav", other / "good.flac")
    out = tmp_path / "out"
    code, _, err = cli(
        capsys,
        "embed",
        media / "good.wav",
        media / "notes.wav",
        other / "good.flac",
        media / "nope.wav",
        "-o",
        out,
        "-q",
        *args,
    )
    check(code, err, 1, r"good\.flac: output .*good\.npz is also the output of", root=tmp_path)
    assert re.search(r"notes\.wav: not a media file", err) and re.search(r"nope\.wav: no such file", err)
    assert outputs(out) == ["good.npz"]


@pytest.mark.parametrize(
    "flags,pattern",
    [
        (["-f", "tfrecord", "--save-logmel"], r"--save-logmel: only with -f npz"),
        (["--hop", "0.005"], r"--hop: must be a positive multiple of 0\.01 s \(1\.0 or 0\.96\)|--hop"),
        (["--hop", "0.96", "--compat-truncate"], r"--compat-truncate"),
    ],
)
def test_embed_usage_errors(flags, pattern, media, tmp_path, capsys):
    code, _, err = cli(capsys, "embed", media / "good.wav", "-o", tmp_path / "out", *flags)
    check(code, err, 2, pattern, root=tmp_path)


def test_embed_strict(media, models, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = cli(
        capsys,
        "embed",
        media / "cut.mp3",
        media / "good.wav",
        "--strict",
        "-o",
        out,
        "-q",
        *models["args"][:4],
    )
    check(code, err, 1, r"cut\.mp3: damaged media: .*refused \(--strict\)", root=tmp_path)
    assert outputs(out) == ["good.npz"]


@pytest.mark.parametrize(
    "flags,pattern",
    [
        (["--top-k", "0"], r"--top-k.*: must be >= 1, got 0"),
        (["--smooth", "maybe"], r"--smooth.*: expected a number of steps or yes/no"),
        (["--smooth-size", "0"], r"--smooth-size.*: must be >= 1, got 0"),
    ],
)
def test_parse_usage_errors(flags, pattern, tmp_path, capsys):
    good = _probs_file(tmp_path / "good.npz", np.full((3, 527), 0.3, np.float32))
    code, _, err = cli(capsys, "parse", good, "-o", tmp_path / "out", *flags)
    check(code, err, 2, pattern, root=tmp_path)


def test_parse_smooth_has_tags_syntax(tmp_path, capsys):
    good = _probs_file(tmp_path / "good.npz", np.random.default_rng(0).random((6, 527)).astype(np.float32))
    texts = []
    for flags in (["--smooth", "3"], ["--smooth", "--smooth-size", "3"], ["--smooth", "no"], []):
        out = tmp_path / f"o{len(texts)}"
        code, _, err = cli(capsys, "parse", good, "-o", out, "-q", *flags)
        check(code, err, 0)
        texts.append((out / "good.txt").read_text())
    assert texts[0] == texts[1] and texts[2] == texts[3] and texts[0] != texts[2]


# --- stats, evaluate, train: outputs checked before the work -----------------------------------------


@pytest.mark.parametrize(
    "argv,pattern",
    [
        (
            ["stats", "--workspace", "{ws}", "--tag", "t", "-o", "/dev/null/stats.txt"],
            r"-o /dev/null/stats\.txt: cannot write",
        ),
        (
            ["stats", "--workspace", "{ws}", "--tag", "t", "--plot", "/dev/null/p.png"],
            r"--plot /dev/null/p\.png: cannot write",
        ),
        (
            ["evaluate", "--data", "{ws}/none.h5", "--json", "/dev/null/e.json"],
            r"--json /dev/null/e\.json: cannot write",
        ),
        (["evaluate", "--data", "{ws}/none.h5", "--json", "{ws}"], r"--json .*: is a folder"),
        (["stats", "--workspace", "{ws}/nothing", "--tag", "t"], r"nothing"),
        (["evaluate", "--data", "{ws}/none.h5"], r"none\.h5"),
        (
            ["train", "--data-dir", "{ws}/none.h5", "--workspace", "{ws}/w", "--iterations", "1", "-q"],
            r"none\.h5",
        ),
    ],
)
def test_training_side_errors_are_one_line(argv, pattern, tmp_path, capsys):
    start = time.perf_counter()
    code, _, err = cli(capsys, *[a.replace("{ws}", str(tmp_path)) for a in argv])
    check(code, err, code if code in (1, 2) else 1, pattern, root=tmp_path)
    assert code in (1, 2)
    if "--json" in argv or "-o" in argv or "--plot" in argv:
        assert time.perf_counter() - start < 5  # found out before any work


# --- the library: waveforms ------------------------------------------------------------------------


def test_tag_waveform_layouts(models, media):
    from audiotagger.errors import ParameterError
    from audiotagger.tag.tagger import load_tagger

    tagger = load_tagger(str(models["clf"]), checkpoint=str(models["ckpt"]), pca_params=str(models["pca"]))
    x = np.stack([_tone(3.0), _tone(3.0, 880)], axis=1)  # (n, 2)
    a = tagger.tag_waveform(x, SR)
    b = tagger.tag_waveform(x.T, SR)  # (2, n): not misread
    c = tagger.tag_waveform(x.T.copy(), SR, channels_axis=0)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.probs, c.probs)
    assert a.num_steps == 3
    with pytest.raises(ParameterError, match="cannot tell samples from channels"):
        tagger.tag_waveform(np.zeros((4, 4), np.float32), SR)


# --- killed runs keep finished work ------------------------------------------------------------------


@pytest.fixture(scope="module")
def spawn_env(tmp_path_factory) -> dict:
    """Environment of the subprocesses: this tree, and one model cache shared by them (converted once)."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "AUDIOTAGGER_HOME": str(tmp_path_factory.mktemp("home"))}


def _spawn(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "audiotagger", *map(str, argv)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"exited early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def long_input(tmp_path_factory):
    """15 minutes of audio: long enough to still be running when the first file's outputs exist."""
    path = tmp_path_factory.mktemp("long") / "long.wav"
    with sf.SoundFile(path, "w", SR, 1, "PCM_16") as f:
        for _ in range(15):
            f.write(_tone(60.0, 220))
    return path


@pytest.mark.parametrize("how", ["kill-9", "sigterm"])
def test_killed_during_the_second_file_keeps_the_first(how, media, models, long_input, spawn_env, tmp_path):
    out = tmp_path / "out"
    proc = _spawn(
        ["tag", media / "good.wav", long_input, "-o", out, "-f", "srt,npz,json", "-q", *models["args"]],
        spawn_env,
    )
    _wait_for(out / "good.json", proc)
    time.sleep(0.5)
    assert proc.poll() is None, "the long file finished too soon to test anything"
    proc.send_signal(signal.SIGKILL if how == "kill-9" else signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if how == "kill-9":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 143, err
        assert "audiotagger: terminated (SIGTERM)" in err and "Traceback" not in err
        assert not [p for p in out.iterdir() if ".part" in p.name]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "good.json",
        "good.npz",
        "good.srt",
    ]
    with np.load(out / "good.npz") as npz:
        assert npz["probs"].shape == (3, 527)
    assert json.loads((out / "good.json").read_text())["steps"] == 3
    # the next run sweeps what the killed one left and finishes the job
    code = main(["tag", str(media / "good.wav"), "-o", str(out), "-f", "srt,npz,json", "-q", *models["args"]])
    assert code == 0 and not [p for p in out.iterdir() if p.name.startswith(".")]


def test_sigterm_during_burn_leaves_no_part_file(media, models, spawn_env, tmp_path):
    pytest.importorskip("moviepy")
    big = tmp_path / "big.mp4"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=30:duration=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=500:duration=30",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        str(big),
    )
    npz_dir = tmp_path / "probs"
    assert main(["tag", str(big), "-f", "npz", "-o", str(npz_dir), "-q", *models["args"]]) == 0
    out = tmp_path / "out"
    proc = _spawn(
        ["tag", "--from-probs", npz_dir / "big.npz", "-f", "mp4", "--burn", "-o", out, "-q"], spawn_env
    )
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(".part" in p.name for p in out.iterdir())):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert outputs(out) == []


def test_quiet_burn_says_nothing(media, models, tmp_path, capsys):
    """``-q`` silences moviepy too (issue 13): a clean --burn run prints nothing at all."""
    pytest.importorskip("moviepy")
    out = tmp_path / "out"
    code, stdout, err = cli(
        capsys, "tag", media / "clip.mp4", "-f", "mp4", "--burn", "-o", out, "-q", *models["args"]
    )
    check(code, err, 0, root=tmp_path)
    assert stdout == "" and err == ""
    assert outputs(out) == ["clip.tagged.mp4"]
