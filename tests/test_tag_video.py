"""``-f mp4``: soft subtitle track (stream copy) and ``--burn``, on a tiny video made by the test."""

import subprocess

import numpy as np
import pytest

from audiotagger.cli import main
from audiotagger.labels import load_labels
from audiotagger.tag.result import TagResult
from audiotagger.tag.select import DisplayOptions, Selection
from audiotagger.tag.writers import get_writer

L = load_labels()


def ffmpeg():
    from audiotagger.audio import ffmpeg_exe

    return ffmpeg_exe()


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi",
                    "-i", "color=c=gray:size=160x120:rate=10:d=3", "-f", "lavfi",
                    "-i", "sine=frequency=1000:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def saved_probs(video, folder):
    p = np.zeros((3, 527), np.float32)
    p[1:, L.index("Dog")] = 0.9
    result = TagResult(str(video), np.arange(3.0), p, 1.0, 5.0, 3.0, {"model": "t", "path": str(video)})
    return get_writer("npz").write(Selection(result, DisplayOptions(threshold=0.5)), folder / "clip.npz")


def probe(path):
    return subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def frame(path, t):
    raw = subprocess.run([ffmpeg(), "-v", "error", "-ss", str(t), "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(120, 160)


def test_soft_subtitles_are_muxed_without_reencoding(small_video, tmp_path):
    npz = saved_probs(small_video, tmp_path)
    assert main(["tag", "--from-probs", str(npz), "-f", "mp4,srt", "-o", str(tmp_path / "o"), "-q"]) == 0
    out = tmp_path / "o" / "clip.tagged.mp4"
    info = probe(out)
    assert "Subtitle: mov_text" in info and "Video: h264" in info and "Audio: aac" in info
    subs = subprocess.run([ffmpeg(), "-v", "error", "-i", str(out), "-map", "0:s:0", "-f", "srt", "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "00:00:01,000 --> 00:00:03,000" in subs and "Dog" in subs
    # the video stream is a copy: the same packets as the source
    def packets(path):
        cmd = [ffmpeg(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-30:]

    assert packets(out) == packets(small_video)


def test_burn_draws_tags_only_while_they_are_shown(small_video, tmp_path):
    pytest.importorskip("moviepy")
    npz = saved_probs(small_video, tmp_path)
    out_dir = tmp_path / "o"
    assert main(["tag", "--from-probs", str(npz), "-f", "mp4", "--burn", "-o", str(out_dir), "-q"]) == 0
    out = tmp_path / "o" / "clip.tagged.mp4"
    info = probe(out)
    assert "Video: h264" in info and "Audio: aac" in info and "Subtitle" not in info
    before, during = frame(out, 0.5), frame(out, 2.0)
    source = frame(small_video, 2.0)
    assert np.abs(before.astype(int) - source.astype(int)).mean() < 2          # no tag in second 0
    bottom = slice(80, 120)
    assert np.abs(during[bottom].astype(int) - source[bottom].astype(int)).max() > 100   # white text drawn
