"""audiotagger.download against a real HTTP server on loopback: resume, retries, checks, locking."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from audiotagger import download as dl
from audiotagger.errors import DownloadError, ModelError

from .loopback_http import LoopbackServer, Served

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(120)  # loopback tests take seconds; never hang CI
FAST = {"backoff": 0.0, "timeout": 5.0, "progress": False}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def payload() -> bytes:
    return os.urandom(200_000)


def expected_for(data: bytes, **kw) -> dl.Expected:
    return dl.Expected(size=len(data), sha256=hashlib.sha256(data).hexdigest(), **kw)


def leftovers(folder: Path) -> list[str]:
    """Files in the cache other than lock files (which filelock keeps by design)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_success(server, payload, tmp_path):
    server.files["/m.bin"] = Served(payload)
    dest = dl.download(server.url("/m.bin"), tmp_path / "cache" / "m.bin", expected_for(payload), **FAST)
    assert dest.read_bytes() == payload
    assert leftovers(dest.parent) == ["m.bin"]
    assert [r.status for r in server.requests] == [200]
    # A verified file already there is reused without a request.
    dl.download(server.url("/m.bin"), dest, expected_for(payload), **FAST)
    assert len(server.requests) == 1


def test_404_names_url_and_leaves_nothing(server, tmp_path):
    url = server.url("/missing.bin")
    with pytest.raises(DownloadError, match=r"missing\.bin: HTTP 404"):
        dl.download(url, tmp_path / "missing.bin", retries=3, **FAST)
    assert len(server.requests) == 1  # a 404 is not retried
    assert leftovers(tmp_path) == []


def test_checksum_mismatch_rejected_and_nothing_left(server, payload, tmp_path):
    server.files["/m.bin"] = Served(payload)
    wrong = dl.Expected(sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        dl.download(server.url("/m.bin"), tmp_path / "m.bin", wrong, **FAST)
    assert leftovers(tmp_path) == []


def test_size_mismatch_rejected(server, payload, tmp_path):
    server.files["/m.bin"] = Served(payload)
    with pytest.raises(DownloadError, match=f"offers {len(payload)} bytes, expected 1000"):
        dl.download(server.url("/m.bin"), tmp_path / "m.bin", dl.Expected(size=1000), retries=1, **FAST)
    assert leftovers(tmp_path) == []


def test_structure_check_rejects(server, payload, tmp_path):
    server.files["/m.ckpt"] = Served(payload)
    from audiotagger.filecheck import check_tf_table

    with pytest.raises(DownloadError, match="not a TensorFlow V1 checkpoint"):
        dl.download(server.url("/m.ckpt"), tmp_path / "m.ckpt", dl.Expected(check=check_tf_table), **FAST)
    assert leftovers(tmp_path) == []


def test_cut_mid_transfer_resumes_with_range(server, payload, tmp_path):
    server.files["/m.bin"] = Served(payload, cut_after=70_000, cuts=1)
    dest = dl.download(server.url("/m.bin"), tmp_path / "m.bin", expected_for(payload), **FAST)
    assert dest.read_bytes() == payload
    first, second = server.requests
    assert (first.status, first.range, first.sent) == (200, None, 70_000)
    assert (second.status, second.range, second.sent) == (206, "bytes=70000-", len(payload) - 70_000)
    assert second.if_range == server.files["/m.bin"].etag
    assert leftovers(tmp_path) == ["m.bin"]


def test_interrupted_download_keeps_partial_and_next_call_resumes(server, payload, tmp_path):
    server.files["/m.bin"] = Served(payload, cut_after=50_000, cuts=1)
    dest = tmp_path / "m.bin"
    with pytest.raises(DownloadError, match="after 1 attempt: connection cut after 50000 of 200000 bytes"):
        dl.download(server.url("/m.bin"), dest, expected_for(payload), retries=0, **FAST)
    assert not dest.exists()
    assert dl.partial_path(dest).stat().st_size == 50_000
    dl.download(server.url("/m.bin"), dest, expected_for(payload), retries=0, **FAST)
    assert dest.read_bytes() == payload
    assert server.requests[-1].range == "bytes=50000-" and server.requests[-1].status == 206
    assert leftovers(tmp_path) == ["m.bin"]


def test_progress_resets_the_retry_count(server, payload, tmp_path):
    # Five cuts, each after 30 kB of progress, with only one retry allowed in a row.
    server.files["/m.bin"] = Served(payload, cut_after=30_000, cuts=5)
    dest = dl.download(server.url("/m.bin"), tmp_path / "m.bin", expected_for(payload), retries=1, **FAST)
    assert dest.read_bytes() == payload
    assert [r.status for r in server.requests] == [200, 206, 206, 206, 206, 206]


def test_complete_partial_file_is_used_after_416(server, payload, tmp_path):
    dest = tmp_path / "m.bin"
    server.files["/m.bin"] = Served(payload)
    dl.partial_path(dest).write_bytes(payload)  # killed between the last byte and the rename
    dl.download(server.url("/m.bin"), dest, expected_for(payload), **FAST)
    assert dest.read_bytes() == payload
    assert [r.status for r in server.requests] == [416]


def test_server_without_range_support_restarts_from_zero(server, payload, tmp_path):
    server.files["/m.bin"] = Served(payload, ranges=False, cut_after=60_000, cuts=1)
    dest = dl.download(server.url("/m.bin"), tmp_path / "m.bin", expected_for(payload), **FAST)
    assert dest.read_bytes() == payload
    first, second = server.requests
    assert second.range == "bytes=60000-" and second.status == 200  # asked to resume, got the whole file


def test_changed_file_on_server_is_not_spliced(server, payload, tmp_path):
    # The partial file came from an older version: If-Range makes the server send the new one whole.
    dest = tmp_path / "m.bin"
    server.files["/m.bin"] = Served(b"x" * 200_000, cut_after=50_000, cuts=1)
    with pytest.raises(DownloadError):
        dl.download(server.url("/m.bin"), dest, retries=0, **FAST)
    server.files["/m.bin"] = Served(payload)
    dl.download(server.url("/m.bin"), dest, expected_for(payload), retries=0, **FAST)
    assert dest.read_bytes() == payload
    assert server.requests[-1].status == 200


def test_bad_resumed_partial_gets_one_fresh_try(server, payload, tmp_path):
    dest = tmp_path / "m.bin"
    dl.partial_path(dest).write_bytes(b"garbage" * 1000)  # no validator recorded: resumed blindly
    server.files["/m.bin"] = Served(payload)
    dl.download(server.url("/m.bin"), dest, expected_for(payload), retries=0, **FAST)
    assert dest.read_bytes() == payload
    assert [r.status for r in server.requests] == [206, 200]


def test_transient_errors_are_retried_then_give_up(server, payload, tmp_path):
    server.files["/m.bin"] = Served(payload, fails=2)
    dest = dl.download(server.url("/m.bin"), tmp_path / "m.bin", expected_for(payload), retries=2, **FAST)
    assert dest.read_bytes() == payload
    assert [r.status for r in server.requests] == [503, 503, 200]
    server.files["/n.bin"] = Served(payload, fails=5)
    with pytest.raises(DownloadError, match="after 3 attempts: HTTP 503"):
        dl.download(server.url("/n.bin"), tmp_path / "n.bin", retries=2, **FAST)


def test_connection_refused_is_a_download_error(tmp_path):
    with LoopbackServer() as srv:
        url = srv.url("/m.bin")
    with pytest.raises(DownloadError, match="cannot connect"):
        dl.download(url, tmp_path / "m.bin", retries=1, **FAST)
    assert leftovers(tmp_path) == []


def test_unwritable_cache_folder_is_named(server, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(ModelError, match=f"{blocker}/models: model cache folder is not writable"):
        dl.download(server.url("/m.bin"), blocker / "models" / "m.bin", **FAST)
    assert server.requests == []


def test_permission_denied_cache_folder_is_named(server, tmp_path, monkeypatch):
    def denied(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "TemporaryFile", denied)   # root ignores folder modes: fake the refusal
    with pytest.raises(ModelError, match=f"{tmp_path}: model cache folder is not writable "
                                         r"\(Permission denied\); set AUDIOTAGGER_HOME or pass --model-dir"):
        dl.download(server.url("/m.bin"), tmp_path / "m.bin", **FAST)
    assert server.requests == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_cache_folder(server, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ModelError, match=f"{folder}: model cache folder is not writable"):
            dl.download(server.url("/m.bin"), folder / "m.bin", **FAST)
    finally:
        folder.chmod(0o755)


def test_corrupt_existing_file_is_replaced(server, payload, tmp_path):
    dest = tmp_path / "m.bin"
    dest.write_bytes(payload[:1000])
    server.files["/m.bin"] = Served(payload)
    dl.download(server.url("/m.bin"), dest, expected_for(payload), **FAST)
    assert dest.read_bytes() == payload


def test_two_processes_download_once(server, tmp_path):
    import filelock

    data = os.urandom(400_000)
    server.files["/big.bin"] = Served(data, delay=0.02, chunk=16_384)  # about 0.5 s per transfer
    dest = tmp_path / "cache" / "big.bin"
    dest.parent.mkdir()
    script = textwrap.dedent(f"""
        from audiotagger import download as dl
        dl.download({server.url('/big.bin')!r}, {str(dest)!r},
                    dl.Expected(size={len(data)}, sha256={hashlib.sha256(data).hexdigest()!r}),
                    backoff=0.0, timeout=10.0, progress=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Hold the lock until both processes are waiting on it, so that they really start together.
    with filelock.FileLock(dest.parent / ".big.bin.lock"):
        procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        first_lines = [p.stderr.readline() for p in procs]
        assert all("waiting for another process downloading" in line for line in first_lines), first_lines
    errs = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert dest.read_bytes() == data
    # One full transfer: whichever process got the lock second found the verified file.
    assert [r.status for r in server.hits("/big.bin")] == [200]
    assert leftovers(dest.parent) == ["big.bin"]


def test_two_threads_download_once(server, payload, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    server.files["/m.bin"] = Served(payload, delay=0.01)
    dest = tmp_path / "m.bin"
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: dl.download(server.url("/m.bin"), dest, expected_for(payload),
                                                      **FAST), range(2)))
    assert results == [dest, dest] and dest.read_bytes() == payload
    assert [r.status for r in server.requests] == [200]


def test_proxy_variables_are_honoured(server, payload, tmp_path, monkeypatch):
    # The loopback server plays the proxy: a host that doesn't exist is reached through it.
    server.files["/m.bin"] = Served(payload)
    monkeypatch.setenv("http_proxy", server.base)
    monkeypatch.delenv("no_proxy")
    dest = dl.download("http://models.example.invalid/m.bin", tmp_path / "m.bin", expected_for(payload),
                       **FAST)
    assert dest.read_bytes() == payload
    assert [r.path for r in server.requests] == ["/m.bin"]


def test_digest_computed_while_streaming(server, payload, tmp_path, monkeypatch):
    def no_reread(*args, **kwargs):
        raise AssertionError("file read again to hash it")

    server.files["/m.bin"] = Served(payload, cut_after=80_000, cuts=1)
    monkeypatch.setattr(dl, "file_digests", no_reread)
    expected = dl.Expected(size=len(payload), sha256=hashlib.sha256(payload).hexdigest(),
                           md5=hashlib.md5(payload).hexdigest())
    dest = dl.download(server.url("/m.bin"), tmp_path / "m.bin", expected, **FAST)  # cut, resumed
    assert dest.read_bytes() == payload


def test_file_digests_and_check_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    d = dl.file_digests(p)
    assert d["sha256"] == hashlib.sha256(b"abc").hexdigest() and d["md5"] == hashlib.md5(b"abc").hexdigest()
    dl.check_file(p, dl.Expected(size=3, md5=d["md5"]))
    with pytest.raises(ModelError, match=r"truncated: 3 bytes, expected 4"):
        dl.check_file(p, dl.Expected(size=4))
    with pytest.raises(ModelError, match="md5 mismatch"):
        dl.check_file(p, dl.Expected(md5="0" * 32))
    dl.check_file(p, dl.Expected(md5="0" * 32), checksum=False)  # light check skips the digest
