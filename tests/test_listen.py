"""``audiotagger listen`` on real loopback streams: ffmpeg serving files over HTTP (``-listen 1``) and UDP on
127.0.0.1, and stdin. The models are the official-format VGGish test checkpoint with a small classifier
(as the ``tag`` end-to-end tests) and a PANNs CNN6 in PyTorch's format. Parity with ``tag``, the outputs
while running, clean stops, reconnection with a marked gap, alerts, and the bad-input errors.

Not tried here (no sound card or sound server exists on CI): capturing from a real microphone. The device
path is tested through its ffmpeg command line and the error for a device that cannot be opened.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from audiotagger.cli import main
from audiotagger.live.sources import parse_source
from tests.conftest import shared_file
from tests.panns_fixtures import panns_state_dict, write_pth
from tests.test_tag_e2e import model_args, tag_models  # noqa: F401  (session fixture)

CLIP = ("audio", "R9_ZSCveAHg_7s.wav")      # 7 s, 32 kHz mono


def _ffmpeg() -> str:
    from audiotagger.audio import ffmpeg_exe

    return ffmpeg_exe()


def _free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bound(port: int, table: str) -> bool:
    """Is 127.0.0.1:port listening (tcp) or bound (udp)? Read from /proc, without connecting to it."""
    text = Path(f"/proc/net/{table}").read_text()
    want = f"0100007F:{port:04X}"
    return any(line.split()[1] == want and (table == "udp" or line.split()[3] == "0A")
               for line in text.splitlines()[1:])


def _wait_bound(port: int, table: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not _bound(port, table):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing {table} on port {port}")
        time.sleep(0.05)


def _serve_http(path: Path, port: int, *args: str) -> subprocess.Popen:
    """ffmpeg as a one-client HTTP server streaming ``path`` as WAV (``args``: e.g. ``-re``, ``-t 3``)."""
    proc = subprocess.Popen([_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", *args, "-i", str(path),
                             "-vn", "-c:a", "pcm_s16le", "-f", "wav", "-listen", "1",
                             f"http://127.0.0.1:{port}/live.wav"], stderr=subprocess.DEVNULL)
    _wait_bound(port, "tcp")
    return proc


def _to_16k(tmp_path: Path, seconds: float | None = None) -> Path:
    """The test clip as 16 kHz s16 WAV (what the raw streams below carry, sample for sample)."""
    out = tmp_path / "clip16k.wav"
    cut = [] if seconds is None else ["-t", str(seconds)]
    subprocess.run([_ffmpeg(), "-nostdin", "-v", "error", "-i", str(shared_file(*CLIP)), *cut, "-ar", "16000",
                    "-ac", "1", "-c:a", "pcm_s16le", str(out)], check=True)
    return out


def _raw(wav: Path) -> bytes:
    import soundfile as sf

    x, sr = sf.read(wav, dtype="int16")
    assert sr == 16000
    return x.astype("<i2").tobytes()


def _srt_cues(text: str) -> list[tuple[str, str, str]]:
    """Parse SRT strictly: every block is index, timing, text; the file ends with a complete block."""
    blocks = text.split("\n\n")
    assert blocks[-1] == "", "an SRT ends with a blank line after its last cue"
    cues = []
    for i, block in enumerate(blocks[:-1], start=1):
        index, timing, body = block.split("\n", 2)
        assert int(index) == i
        m = re.fullmatch(r"(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})", timing)
        assert m, timing
        cues.append((m.group(1), m.group(2), body))
    return cues


def _errors(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("audiotagger: error:")]


# --- parity with tag ---------------------------------------------------------------------------------

def test_http_stream_gives_tags_probabilities_and_files(tag_models, tmp_path, capsys):  # noqa: F811
    """A file served over HTTP: the live .npz equals tag's matrix; SRT/TSV equal tag's --per-second."""
    from audiotagger.tag.result import load_result
    from audiotagger.tag.tagger import load_tagger

    ckpt, pca, clf = tag_models
    clip = shared_file(*CLIP)
    ref = load_tagger(clf, checkpoint=ckpt, pca_params=pca).tag(clip, left=2, right=1)
    top = int(np.argmax(ref.probs.mean(axis=0)))                      # above threshold every second
    second = int(np.argsort(-ref.probs.mean(axis=0))[1])
    on = f"{top}={ref.probs[:, top].min() - 1e-3:.4f}"
    log = tmp_path / "alerts.log"
    port = _free_port()
    server = _serve_http(clip, port)
    out = tmp_path / "live"
    code = main(["listen", f"http://127.0.0.1:{port}/live.wav", "--no-reconnect", *model_args(tag_models),
                 "--left", "2", "--right", "1", "--threshold", "0.5", "--jsonl", "-o", str(out),
                 "--name", "clip", "--on", on,
                 "--exec", f'echo "$AUDIOTAGGER_CLASS $AUDIOTAGGER_TIME" >> {log}',
                 "--alert", f"{second}=0.0"])
    server.wait(timeout=30)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert not _errors(captured.err)

    live, display = load_result(out / "clip.npz")
    np.testing.assert_array_equal(live.times, ref.times)
    np.testing.assert_allclose(live.probs, ref.probs, rtol=0, atol=1e-5)
    assert live.duration == pytest.approx(ref.duration)
    assert {k: live.meta[k] for k in ("model", "backend", "left", "right")} == \
        {k: ref.meta[k] for k in ("model", "backend", "left", "right")}
    assert "gaps" not in live.extras and live.meta["live"] is True
    assert display["threshold"] == 0.5 and display["per_second"] is True

    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [d["time"] for d in lines] == list(range(7)) and [d["end"] for d in lines] == list(range(1, 8))
    assert all(set(d) >= {"time", "end", "wall", "tags"} for d in lines)
    assert all(t["score"] >= 0.5 and t["mid"].startswith("/") for d in lines for t in d["tags"])
    assert lines[0]["alerts"] == [ref.names[second], ref.names[top]] and "alerts" not in lines[1]

    # the growing files are tag --per-second's rendering of the same matrix
    again = tmp_path / "again"
    assert main(["tag", "--from-probs", str(out / "clip.npz"), "-o", str(again), "-f", "srt,tsv", "-q"]) == 0
    for ext in ("srt", "tsv"):
        assert (out / f"clip.{ext}").read_text() == (again / f"clip.{ext}").read_text()
    assert len(_srt_cues((out / "clip.srt").read_text())) == 7

    # one alert per class for a class above its threshold all along (hold-off + rising edge)
    assert log.read_text().split("\n")[:-1] == [f"{ref.names[top]} 0.000"]
    assert len(re.findall(r"audiotagger: alert: .*" + re.escape(ref.names[second]), captured.err)) == 1


def test_udp_stream_panns_equals_tag(tmp_path, capsys):
    """Raw s16le over UDP into the PANNs backend: windows of --sample-duration every --hop-duration."""
    from audiotagger.tag.result import load_result
    from audiotagger.tag.tagger import load_backend

    pth = write_pth(tmp_path / "Cnn6_mAP=0.343.pth", {"model": panns_state_dict("cnn6", 11)})
    # ffmpeg's raw demuxer reads 1024-byte packets and UDP never ends: a last part-packet would stay in
    # ffmpeg, so the clip is cut to whole packets (6.976 s = 218 x 1024 bytes)
    wav = _to_16k(tmp_path, 6.976)
    ref = load_backend(str(pth), model_dir=tmp_path / "cache").tag(wav, sample_duration=1.0, hop_duration=0.5)
    port = _free_port(socket.SOCK_DGRAM)

    def send() -> None:
        _wait_bound(port, "udp")
        subprocess.run([_ffmpeg(), "-nostdin", "-v", "error", "-readrate", "4", "-i", str(wav), "-c:a",
                        "pcm_s16le", "-f", "s16le", f"udp://127.0.0.1:{port}?pkt_size=1024"], check=True)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    code = main(["listen", f"udp://127.0.0.1:{port}", "--format", "s16le", "--rate", "16000",
                 "--no-reconnect",
                 "--stall-timeout", "1.5", "--model", str(pth), "--model-dir", str(tmp_path / "cache"),
                 "--sample-duration", "1.0", "--hop-duration", "0.5", "-o", str(tmp_path / "out"),
                 "--name", "udp"])
    sender.join(timeout=30)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "no audio for 1.5 s (stalled); not reconnecting" in captured.err    # UDP has no end: a stall
    live, _ = load_result(tmp_path / "out" / "udp.npz")
    np.testing.assert_allclose(live.times, ref.times)
    np.testing.assert_allclose(live.probs, ref.probs, rtol=0, atol=1e-5)
    assert live.meta["sample_duration"] == 1.0 and live.meta["hop_duration"] == 0.5
    lines = captured.out.splitlines()
    assert len(lines) == len(ref.times) == 14
    assert re.match(r"\d\d:\d\d:\d\d  00:00:06\.500  ", lines[-1]), lines[-1]


# --- stdin, --until, Ctrl-C/SIGTERM -------------------------------------------------------------------

def test_stdin_until(tag_models, tmp_path, capsys, monkeypatch):  # noqa: F811
    raw = tmp_path / "clip.s16"
    raw.write_bytes(_raw(_to_16k(tmp_path)))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(open(raw, "rb")))     # a real file descriptor
    code = main(["listen", "-", "--format", "s16le", "--rate", "16000", "--until", "3.5", "--jsonl",
                 *model_args(tag_models), "-o", str(tmp_path / "o"), "--name", "s"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [json.loads(line)["time"] for line in captured.out.splitlines()] == [0, 1, 2]
    from audiotagger.tag.result import load_result

    live, _ = load_result(tmp_path / "o" / "s.npz")
    assert live.duration == 3.5 and live.num_steps == 3


def test_sigterm_ends_cleanly(tag_models, tmp_path):  # noqa: F811
    """A real process fed through a pipe at 4x real time; SIGTERM: exit 0, complete files, the .npz."""
    data = _raw(shared_file("audio", "musanmix.wav"))
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "audiotagger", "listen", "-", "--format", "s16le",
                             "--rate", "16000", "--jsonl", *model_args(tag_models), "-o", str(out),
                             "--name", "t"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def feed() -> None:
        step = 32000 // 4 * 2      # 0.25 s of audio per 1/16 s
        try:
            for i in range(0, len(data), step):
                proc.stdin.write(data[i:i + step])
                proc.stdin.flush()
                time.sleep(1 / 16)
        except (BrokenPipeError, ValueError):
            pass

    threading.Thread(target=feed, daemon=True).start()
    lines = [proc.stdout.readline() for _ in range(4)]
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    times = [json.loads(line)["time"] for line in lines + rest.decode().splitlines()]
    assert times == list(range(len(times))) and len(times) >= 5
    from audiotagger.tag.result import load_result

    live, _ = load_result(out / "t.npz")
    assert live.num_steps == len(times)
    assert len(_srt_cues((out / "t.srt").read_text())) == len(times)
    assert (out / "t.tsv").read_text().startswith("start\tend\tlabel\tmid\tscore\n")
    assert not list(out.glob(".*part*"))


# --- a stream that drops -----------------------------------------------------------------------------

def test_drop_reconnect_gap(tag_models, tmp_path, capsys):  # noqa: F811
    """The server goes away after 3 s and comes back: stderr says so, the gap is marked, times stay true."""
    from audiotagger.tag.result import load_result

    wav = _to_16k(tmp_path)
    port = _free_port()
    first = _serve_http(wav, port, "-re", "-t", "3")
    t_start = time.monotonic()

    def second_server() -> None:
        first.wait(timeout=60)
        time.sleep(1.5)
        _serve_http(wav, port, "-re")

    threading.Thread(target=second_server, daemon=True).start()
    code = main(["listen", f"http://127.0.0.1:{port}/live.wav", "--until", "8.5", "--jsonl",
                 *model_args(tag_models), "-o", str(tmp_path / "o"), "--name", "g"])
    elapsed = time.monotonic() - t_start
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "reconnecting in 1 s" in captured.err and "audio again after" in captured.err
    lines = [json.loads(line) for line in captured.out.splitlines()]
    gaps = [d for d in lines if d.get("gap")]
    assert len(gaps) == 1 and gaps[0]["time"] == 3.0
    gap_end = gaps[0]["end"]
    assert gap_end >= 3.0 + 1.0                                         # at least the first backoff
    before = [d["time"] for d in lines if not d.get("gap") and d["time"] < 3]
    after = [d["time"] for d in lines if not d.get("gap") and d["time"] >= 3]
    assert before == [0, 1, 2] and after and after[0] == pytest.approx(gap_end, abs=1e-3)
    assert np.allclose(np.diff(after), 1.0) and after[-1] < 8.5    # a last part-second is tagged (as tag)
    assert elapsed >= 8.5 - 1.0                                          # wall-clock true: no time invented
    live, _ = load_result(tmp_path / "o" / "g.npz")
    np.testing.assert_allclose(live.extras["gaps"], [[3.0, gap_end]], atol=1e-3)
    assert live.duration == pytest.approx(8.5, abs=1e-3)
    srt = (tmp_path / "o" / "g.srt").read_text()
    assert len(_srt_cues(srt)) == len(lines) and "[no audio: " in srt
    assert "\t(no audio)\t\t\n" in (tmp_path / "o" / "g.tsv").read_text()


# --- the Python API ----------------------------------------------------------------------------------

def test_python_api_generator(tag_models, tmp_path):  # noqa: F811
    import audiotagger

    ckpt, pca, clf = tag_models
    port = _free_port()
    server = _serve_http(shared_file(*CLIP), port, "-re")
    results = []
    for res in audiotagger.listen(f"http://127.0.0.1:{port}/live.wav", model=clf, checkpoint=ckpt,
                                  pca_params=pca, threshold=0.0, top_k=3):
        results.append(res)
        if len(results) == 2:
            break               # the program's own loop decides; ffmpeg is stopped with the generator
    assert [r.time for r in results] == [0.0, 1.0] and all(len(r.tags) == 3 for r in results)
    assert results[0].probs.shape == (527,) and results[1].wall - results[0].wall == pytest.approx(1.0)
    server.kill()
    server.wait()

    def children():
        return [p for p in Path("/proc").glob("[0-9]*") if _ppid(p) == os.getpid() and "ffmpeg" in _comm(p)]

    deadline = time.monotonic() + 10      # a loaded machine may take a moment to end and reap it
    while children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not children()


def _ppid(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text()
    except OSError:
        return ""


# --- bad input ---------------------------------------------------------------------------------------

def _no_audio_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([_ffmpeg(), "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                             "testsrc=size=64x48:rate=5:duration=20", "-f", "matroska", "-listen", "1",
                             f"http://127.0.0.1:{port}/video.mkv"], stderr=subprocess.DEVNULL)
    _wait_bound(port, "tcp")
    return proc


@pytest.mark.parametrize("case", ["device", "refused", "silent-udp", "no-audio", "garbage-stdin"])
def test_bad_sources_one_line_exit_1(case, tag_models, tmp_path, capsys, monkeypatch):  # noqa: F811
    server = None
    if case == "device":
        args, expected = ["--device", "pulse:no-such-microphone"], \
            "pulse:no-such-microphone: cannot open the audio input device ("
    elif case == "refused":
        port = _free_port()
        args = [f"http://127.0.0.1:{port}/x"]
        expected = f"http://127.0.0.1:{port}/x: cannot open the input (Connection refused)"
    elif case == "silent-udp":
        port = _free_port(socket.SOCK_DGRAM)
        args, expected = [f"udp://127.0.0.1:{port}", "--open-timeout", "1"], \
            f"udp://127.0.0.1:{port}: no audio within 1 s (the source does not answer)"
    elif case == "no-audio":
        port = _free_port()
        server = _no_audio_server(port)
        args, expected = [f"http://127.0.0.1:{port}/video.mkv"], \
            f"http://127.0.0.1:{port}/video.mkv: no audio stream"
    else:
        garbage = tmp_path / "garbage"
        garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(open(garbage, "rb")))
        args, expected = ["-"], "-: "
    code = main(["listen", *args, *model_args(tag_models), "-o", str(tmp_path / "o"), "--name", "x"])
    if server is not None:
        server.kill()
        server.wait()
    err = capsys.readouterr().err
    errors = _errors(err)
    assert code == 1 and len(errors) == 1, err
    assert errors[0].startswith(f"audiotagger: error: {expected}"), errors[0]
    assert not (tmp_path / "o" / "x.npz").exists()
    assert (tmp_path / "o" / "x.srt").read_text() == ""          # valid (empty) subtitles


def test_list_devices_without_sound_server(capsys):
    """No sound server on CI: --list-devices says so in one line (with one, ffmpeg's list is printed)."""
    code = main(["listen", "--list-devices"])
    err = capsys.readouterr().err
    if code == 0:
        pytest.skip("a sound server is running here: nothing to check about its absence")
    assert code == 1 and len(_errors(err)) == 1 and "cannot list capture devices" in err


def test_usage_errors(capsys):
    for args in (["listen", "recording.wav"], ["listen", "-", "--rate", "8000"],
                 ["listen", "--name", "x"], ["listen", "-", "--on", "Dog"], ["listen", "--alert", "Nothing"]):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2, args
    assert "not a stream URL" in capsys.readouterr().err


# --- the device command line -------------------------------------------------------------------------

@pytest.mark.parametrize("platform,available,device,expected", [
    ("linux", {"pulse", "oss"}, None, ["-f", "pulse", "-i", "default"]),
    ("linux", {"alsa", "oss"}, None, ["-f", "alsa", "-i", "default"]),
    ("linux", {"pulse", "alsa"}, "alsa:hw:1,0", ["-f", "alsa", "-i", "hw:1,0"]),
    ("linux", {"oss"}, None, ["-f", "oss", "-i", "/dev/dsp"]),
    ("linux", {"pulse"}, "alsa_input.usb-mic", ["-f", "pulse", "-i", "alsa_input.usb-mic"]),
    ("darwin", {"avfoundation"}, None, ["-f", "avfoundation", "-i", ":default"]),
    ("darwin", {"avfoundation"}, "1", ["-f", "avfoundation", "-i", ":1"]),
    ("win32", {"dshow"}, "Microphone (USB)", ["-f", "dshow", "-i", "audio=Microphone (USB)"]),
])
def test_device_command_line(platform, available, device, expected):
    src = parse_source(None, device=device, platform=platform, available=frozenset(available))
    assert src.kind == "device" and src.input_args == expected


def test_source_command_lines():
    assert parse_source("-", format="s16le", rate=16000).input_args == \
        ["-f", "s16le", "-ar", "16000", "-ac", "1", "-i", "pipe:0"]
    assert parse_source("-").input_args == ["-i", "pipe:0"]
    for url in ("http://h/a.m3u8", "https://h/x", "rtsp://h/s", "rtmp://h/app/key", "udp://127.0.0.1:5000",
                "srt://h:9000", "hls+http://h/a.m3u8"):
        src = parse_source(url)
        assert src.kind == "url" and src.input_args == ["-i", url]
    assert parse_source("udp://127.0.0.1:5000", format="mpegts").input_args[:2] == ["-f", "mpegts"]
    from audiotagger.errors import AudioError

    with pytest.raises(AudioError, match="no audio capture support"):
        parse_source(None, platform="linux", available=frozenset({"x11grab"}))


# --- a full disk ---------------------------------------------------------------------------------------

def test_growing_file_on_a_full_device():
    """/dev/full fails every write with ENOSPC: the error comes out, nothing half-counted."""
    from audiotagger.live.outputs import GrowingFile

    f = GrowingFile("/dev/full", overwrite=True)
    with pytest.raises(OSError) as info:
        f.append("1\n00:00:00,001 --> 00:00:01,000\nDog\n\n")
    f.close()
    assert info.value.errno == 28 and f.size == 0


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tiny tmpfs here (needs root); the /dev/full test covers the error path")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_full_disk_ends_cleanly_with_valid_files(tag_models, tiny_tmpfs, tmp_path, capsys, monkeypatch):  # noqa: F811
    raw = tmp_path / "mix.s16"
    raw.write_bytes(_raw(shared_file("audio", "musanmix.wav")))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(open(raw, "rb")))
    code = main(["listen", "-", "--format", "s16le", "--rate", "16000", "--threshold", "0", "--top-k", "10",
                 "-q", *model_args(tag_models), "-o", str(tiny_tmpfs), "--name", "full"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device; stopped" in err and "Traceback" not in err
    cues = _srt_cues((tiny_tmpfs / "full.srt").read_text())
    assert 0 < len(cues) < 74
    rows = (tiny_tmpfs / "full.tsv").read_text().split("\n")
    assert rows[-1] == "" and all(len(r.split("\t")) == 5 for r in rows[:-1])
    assert not list(tiny_tmpfs.glob(".*part*"))                # the failed .npz left nothing behind


# --- alerts -----------------------------------------------------------------------------------------------

def test_alert_fires_once_per_crossing_with_hold_off():
    from audiotagger.live.alerts import Alerter, AlertRule

    alerter = Alerter([AlertRule("3", 0.5)], hold_off=4.0)
    scores = [0.1, 0.6, 0.4, 0.7, 0.7, 0.2, 0.2, 0.9, 0.3, 0.8]     # crossings at 1, 3, 7, 9
    fired = [t for t, s in enumerate(scores)
             if alerter.check(np.eye(1, 5, 3)[0] * s, float(t), 0.0, ["m"] * 5, ["n"] * 5)]
    assert fired == [1, 7]           # 3 is within the hold-off of 1; 9 within that of 7


def test_yamnet_over_stdin(tmp_path, capsys, monkeypatch):
    """The YAMNet backend live: its 521-class labels in the lines and the .npz, alerts on its classes."""
    from audiotagger.tag.result import load_result
    from audiotagger.yamnet.weights import write_weights
    from tests.test_yamnet import _random_weights

    h5 = write_weights(_random_weights(np.random.default_rng(4)), tmp_path / "yamnet.h5")
    raw = tmp_path / "clip.s16"
    raw.write_bytes(_raw(_to_16k(tmp_path)))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(open(raw, "rb")))
    code = main(["listen", "-", "--format", "s16le", "--rate", "16000", "--model", str(h5), "--jsonl",
                 "--threshold", "0", "--top-k", "2", "-o", str(tmp_path / "o"), "--name", "y"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [d["time"] for d in lines] == list(range(7)) and all(len(d["tags"]) == 2 for d in lines)
    live, _ = load_result(tmp_path / "o" / "y.npz")
    assert live.probs.shape == (7, 521) and live.meta["backend"] == "yamnet"
    assert {t["mid"] for d in lines for t in d["tags"]} <= set(live.mids)
