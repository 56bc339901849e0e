"""audiotagger.hub: cache location, registry, locate/fetch/import/verify, offline mode, corruption."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import socket
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
import pytest

from audiotagger import filecheck, hub
from audiotagger.errors import AudioTaggerWarning, DownloadError, ModelError, ParameterError

from .loopback_http import LoopbackServer, Served

pytestmark = pytest.mark.timeout(120)  # loopback tests take seconds; never hang CI


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                hub.OFFLINE_ENV, hub.MIRROR_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


FIXED_TIME = (2020, 1, 1, 0, 0, 0)
"""Zip member timestamp: np.savez and writestr stamp the current time, so bytes made a second apart differ."""


def pca_npz(seed: int = 0) -> bytes:
    """An .npz with the official PCA file's array names, shapes and dtypes (same bytes for the same seed)."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        arrays = {"pca_eigen_vectors": rng.normal(size=(128, 128)), "pca_means": rng.normal(size=128)}
        for name, array in arrays.items():
            with zf.open(zipfile.ZipInfo(f"{name}.npy", FIXED_TIME), "w") as fh:
                np.lib.format.write_array(fh, array, allow_pickle=False)
    return buf.getvalue()


def tf_table(body: bytes = b"\0" * 64) -> bytes:
    """Bytes ending in a valid TensorFlow table footer whose handles point inside ``body``."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)
    handles = varint(0) + varint(10) + varint(20) + varint(30)
    return body + handles.ljust(40, b"\0") + filecheck.TABLE_MAGIC


def torch_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("Cnn6_mAP=0.343/data.pkl", FIXED_TIME), b"\x80\x02}q\x00.")
        zf.writestr(zipfile.ZipInfo("Cnn6_mAP=0.343/version", FIXED_TIME), b"3\n")
    return buf.getvalue()


@pytest.fixture
def served():
    """A loopback mirror serving a test PCA file registered (with its real checksum) as vggish-pca."""
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def pca(served, monkeypatch):
    data = pca_npz()
    info = dataclasses.replace(hub.REGISTRY["vggish-pca"], sha256=hashlib.sha256(data).hexdigest(),
                               md5=None, size=len(data))
    monkeypatch.setitem(hub.REGISTRY, "vggish-pca", info)
    monkeypatch.setenv(hub.MIRROR_ENV, served.base + "/mirror/")
    served.files["/mirror/vggish_pca_params.npz"] = Served(data)
    return data


# --- settings -------------------------------------------------------------------------------------

def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIOTAGGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_dir() == tmp_path / "home" and hub.cache_source() == "$AUDIOTAGGER_HOME"
    assert hub.cache_dir(tmp_path / "flag") == tmp_path / "flag" and hub.cache_source("x") == "--model-dir"
    monkeypatch.delenv("AUDIOTAGGER_HOME")
    assert hub.cache_dir() == tmp_path / "xdg" / "audiotagger"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert hub.cache_dir() == tmp_path / "user" / ".cache" / "audiotagger" and hub.cache_source() == "default"


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("on", True),
                                             ("0", False), ("", False), ("no", False)])
def test_offline_env(monkeypatch, value, expected):
    monkeypatch.setenv(hub.OFFLINE_ENV, value)
    assert hub.is_offline() is expected
    assert hub.is_offline(False) is False and hub.is_offline(True) is True


def test_registry_entries_are_complete():
    assert {"vggish", "vggish-pca", "panns-cnn14", "panns-cnn10", "panns-cnn6"} <= set(hub.REGISTRY)
    for name, info in hub.REGISTRY.items():
        assert info.name == name
        assert info.flag.startswith("--")
        if info.kind == "packaged":
            continue
        assert info.url.startswith("https://")
        # The URL names the same file the cache keeps.
        assert urllib.parse.unquote(urllib.parse.urlsplit(info.url).path).endswith("/" + info.filename)
        assert info.format in filecheck.CHECKS
        assert info.sha256 is None or re.fullmatch("[0-9a-f]{64}", info.sha256)
        assert info.md5 is None or re.fullmatch("[0-9a-f]{32}", info.md5)
        assert info.checksum != "none" or info.checksum_source.startswith("none published")
    official = "4d878af3e306defbfb37095365aa7e5a6cecb86bad13e859e626151c4e6a8b9d"
    assert hub.REGISTRY["vggish-pca"].sha256 == official


def test_official_pca_file_passes_its_registry_entry():
    from .conftest import shared_file

    path = shared_file("vggish", "vggish_pca_params.npz")
    hub.verify_file(hub.REGISTRY["vggish-pca"], path)  # sha256, md5, size and structure
    assert hub.identify(path).name == "vggish-pca"


def test_unknown_name_is_a_usage_error():
    with pytest.raises(ParameterError, match="nope: unknown model .*vggish"):
        hub.locate("nope")


def test_mirror_url(monkeypatch):
    monkeypatch.setenv(hub.MIRROR_ENV, "http://mirror.example/models/")
    assert hub.url_for(hub.REGISTRY["panns-cnn14"]) == "http://mirror.example/models/Cnn14_mAP%3D0.431.pth"
    monkeypatch.delenv(hub.MIRROR_ENV)
    assert hub.url_for(hub.REGISTRY["panns-cnn14"]) == hub.REGISTRY["panns-cnn14"].url


# --- locate ---------------------------------------------------------------------------------------

def test_locate_downloads_on_first_use_then_uses_the_cache(served, pca):
    path = hub.locate("vggish-pca", progress=False)
    assert path == hub.cache_dir() / "vggish_pca_params.npz" and path.read_bytes() == pca
    assert hub.status("vggish-pca").state == "verified"
    assert hub.locate("vggish-pca") == path
    assert len(served.requests) == 1


def test_explicit_offline_false_overrides_the_environment(served, pca, monkeypatch):
    monkeypatch.setenv(hub.OFFLINE_ENV, "1")
    assert hub.locate("vggish-pca", offline=False, progress=False).read_bytes() == pca


def test_locate_explicit_path(tmp_path):
    p = tmp_path / "mine.ckpt"
    p.write_bytes(b"anything")
    assert hub.locate("vggish", p) == p  # the user's own file: its loader checks the contents
    with pytest.raises(ModelError, match=r"nothere\.ckpt: vggish file not found \(given with --checkpoint\)"):
        hub.locate("vggish", tmp_path / "nothere.ckpt")


def test_offline_makes_no_connection_and_says_what_to_do(served, pca, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network touched in offline mode")

    monkeypatch.setattr(socket, "create_connection", no_network)
    for kwargs, env in (({"offline": True}, None), ({}, "1")):
        if env:
            monkeypatch.setenv(hub.OFFLINE_ENV, env)
        with pytest.raises(ModelError) as err:
            hub.locate("vggish-pca", **kwargs)
        msg = str(err.value)
        assert "\n" not in msg
        for part in (str(hub.cache_dir() / "vggish_pca_params.npz"),
                     served.base + "/mirror/vggish_pca_params.npz", "offline",
                     "audiotagger models import PATH", "--pca-params PATH"):
            assert part in msg, part
    with pytest.raises(DownloadError, match="offline mode"):
        hub.fetch("vggish-pca")
    assert served.requests == []
    assert not hub.cache_dir().exists() or not any(hub.cache_dir().iterdir())


def test_download_failure_message_names_file_url_reason_and_ways_out(served, pca):
    served.files.clear()
    with pytest.raises(DownloadError) as err:
        hub.locate("vggish-pca", progress=False)
    msg = str(err.value)
    assert msg.startswith(str(hub.cache_dir() / "vggish_pca_params.npz"))
    assert "HTTP 404" in msg and "audiotagger models import PATH" in msg and "--pca-params" in msg


def test_checksum_mismatch_leaves_nothing_in_cache(served, pca):
    served.files["/mirror/vggish_pca_params.npz"] = Served(pca_npz(seed=1))  # same size, other bytes
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        hub.locate("vggish-pca", progress=False)
    assert [p.name for p in hub.cache_dir().iterdir() if not p.name.endswith(".lock")] == []


def test_truncated_cached_file_detected_at_load_and_replaced(served, pca):
    path = hub.locate("vggish-pca", progress=False)
    path.write_bytes(pca[:40_000])
    with pytest.raises(ModelError, match=f"{path}: vggish-pca model unavailable: cached copy is corrupt "
                                         r"\(truncated: 40000 bytes, expected"):
        hub.locate("vggish-pca", offline=True)
    assert hub.status("vggish-pca").state == "corrupt"
    with pytest.warns(AudioTaggerWarning, match="corrupt"):
        assert hub.locate("vggish-pca", progress=False).read_bytes() == pca
    assert len(served.requests) == 2


def test_same_size_corruption_detected_by_checksum_at_load(served, pca):
    path = hub.locate("vggish-pca", progress=False)
    data = bytearray(pca)
    data[len(data) // 2] ^= 0xFF  # inside the array data: structure still fine, checksum not
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))  # the stamp no longer matches the file
    with pytest.raises(ModelError, match="sha256 mismatch"):
        hub.locate("vggish-pca", offline=True)


def test_verify_hashes_even_when_stamp_matches(served, pca):
    path = hub.locate("vggish-pca", progress=False)
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # forged: same size and mtime as stamped
    assert hub.status("vggish-pca").state == "verified"  # the cheap look trusts the stamp...
    full = hub.status("vggish-pca", full=True)  # ...a full verify does not
    assert full.state == "corrupt" and "sha256 mismatch" in full.problem
    assert hub.status("vggish-pca").state == "unverified"  # the stamp was dropped


def test_checkpoint_without_published_checksum_is_checked_by_structure(served, monkeypatch):
    monkeypatch.setenv(hub.MIRROR_ENV, served.base)
    good = tf_table(os.urandom(5000))
    served.files["/vggish_model.ckpt"] = Served(good[:-100])  # a cut file with no footer
    with pytest.raises(DownloadError, match="rejected: not a TensorFlow V1 checkpoint"):
        hub.locate("vggish", progress=False)
    assert not (hub.cache_dir() / "vggish_model.ckpt").exists()
    served.files["/vggish_model.ckpt"] = Served(good)
    assert hub.locate("vggish", progress=False).read_bytes() == good
    assert hub.status("vggish").state == "verified"


def test_fetch_force_replaces(served, pca):
    hub.fetch("vggish-pca", progress=False)
    hub.fetch("vggish-pca", progress=False)
    assert len(served.requests) == 1
    hub.fetch("vggish-pca", progress=False, force=True)
    assert len(served.requests) == 2


def test_cache_folder_not_writable(served, pca, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ModelError, match=f"{blocker}/cache: model cache folder is not writable"):
        hub.locate("vggish-pca", model_dir=blocker / "cache", progress=False)
    with pytest.raises(ModelError, match=f"{blocker}/cache: model cache folder is not writable"):
        hub.import_file(served_file(tmp_path, pca), "vggish-pca", model_dir=blocker / "cache")
    assert served.requests == []


def served_file(tmp_path: Path, data: bytes, name: str = "downloaded.npz") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_packaged_classifier(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "PACKAGED_DIR", tmp_path / "models")
    assert hub.status("classifier").state == "missing"
    with pytest.raises(ModelError, match="packaged classifier model missing; reinstall"):
        hub.locate("classifier")
    (tmp_path / "models").mkdir()
    path = tmp_path / "models" / "default.npz"
    np.savez(path, format=np.array("audiotagger-classifier"), config=np.array("{}"),
             weight_names=np.array("[]"), w000=np.zeros(3, np.float32))
    assert hub.locate("classifier", offline=True) == path
    assert hub.status("classifier").state == "packaged"
    assert hub.fetch("classifier") == path
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelError, match="not a valid .npz archive"):
        hub.locate("classifier")


def test_shipped_default_classifier_is_a_classifier_file():
    from audiotagger.classifier.classifier import default_model_path

    path = hub.cached_path("classifier")
    assert path == default_model_path().resolve()  # the registry names the file load_classifier reads
    if not path.exists():
        pytest.skip(f"{path} not shipped yet")
    hub.locate("classifier")


# --- import ---------------------------------------------------------------------------------------

def test_import_by_checksum_by_name_and_rejection(pca, tmp_path, monkeypatch):
    src = served_file(tmp_path, pca, "renamed-download.npz")
    dest = hub.import_file(src)  # recognised by its checksum
    assert dest == hub.cache_dir() / "vggish_pca_params.npz" and dest.read_bytes() == pca
    assert hub.status("vggish-pca").state == "verified"
    assert oct(dest.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    dest.unlink()
    elsewhere = tmp_path / "elsewhere"
    assert hub.import_file(src, "vggish-pca", model_dir=elsewhere).parent == elsewhere

    bad = served_file(tmp_path, pca_npz(seed=3), "vggish_pca_params.npz")  # right name, wrong bytes
    with pytest.raises(ModelError, match=f"{bad}: not a valid vggish-pca file .*sha256 mismatch"):
        hub.import_file(bad)
    assert not (hub.cache_dir() / "vggish_pca_params.npz").exists()

    with pytest.raises(ParameterError, match="cannot tell which model this is; pass --name"):
        hub.import_file(served_file(tmp_path, b"junk", "junk.bin"))
    with pytest.raises(ModelError, match="nothing.pth: file not found"):
        hub.import_file(tmp_path / "nothing.pth")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_import_without_published_checksum_checks_structure(tmp_path, monkeypatch):
    info = dataclasses.replace(hub.REGISTRY["panns-cnn6"], md5=None, size=None)
    monkeypatch.setitem(hub.REGISTRY, "panns-cnn6", info)
    good = served_file(tmp_path, torch_zip(), "Cnn6_mAP=0.343.pth")
    assert hub.import_file(good).name == "Cnn6_mAP=0.343.pth"
    bad = served_file(tmp_path, torch_zip()[:-30], "cut.pth")
    with pytest.raises(ModelError, match="not a valid panns-cnn6 file .*corrupt PyTorch checkpoint"):
        hub.import_file(bad, "panns-cnn6")


def test_list_models_states(pca, tmp_path):
    states = {s.info.name: s.state for s in hub.list_models()}
    assert set(states.values()) <= {"missing", "packaged"}
    hub.import_file(served_file(tmp_path, pca), "vggish-pca")
    (hub.cache_dir() / "Cnn10_mAP=0.380.pth").write_bytes(b"not a checkpoint")
    states = {s.info.name: s.state for s in hub.list_models()}
    assert states["vggish-pca"] == "verified" and states["panns-cnn10"] == "corrupt"


# --- structure checks -----------------------------------------------------------------------------

def test_tf_table_check(tmp_path):
    p = served_file(tmp_path, tf_table(), "x.ckpt")
    filecheck.check_tf_table(p)
    served_file(tmp_path, tf_table()[:-10], "x.ckpt")
    with pytest.raises(ModelError, match="no table footer"):
        filecheck.check_tf_table(p)
    served_file(tmp_path, tf_table(b"\0" * 10), "x.ckpt")  # handles point past the data
    with pytest.raises(ModelError, match="corrupt TensorFlow V1 checkpoint footer"):
        filecheck.check_tf_table(p)
    served_file(tmp_path, b"tiny", "x.ckpt")
    with pytest.raises(ModelError, match="4 bytes, truncated"):
        filecheck.check_tf_table(p)


def test_tf_table_check_on_a_real_v1_checkpoint(tmp_path):
    tf = pytest.importorskip("tensorflow")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("vggish/fc2/biases", initializer=np.arange(128, dtype=np.float32))
        saver = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(tmp_path / "vggish_model.ckpt"), write_meta_graph=False)
    ckpt = tmp_path / "vggish_model.ckpt"
    filecheck.check_tf_table(ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:-1])
    with pytest.raises(ModelError):
        filecheck.check_tf_table(ckpt)


def test_test_files_are_deterministic():
    for data in (pca_npz(5), torch_zip()):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert {info.date_time for info in zf.infolist()} == {FIXED_TIME}
    assert pca_npz(5) == pca_npz(5) != pca_npz(6)


def test_npz_check(tmp_path):
    p = served_file(tmp_path, pca_npz())
    filecheck.CHECKS["vggish-pca-npz"](p)
    buf = io.BytesIO()
    np.savez(buf, pca_eigen_vectors=np.zeros((128, 64)), pca_means=np.zeros(128))
    served_file(tmp_path, buf.getvalue())
    with pytest.raises(ModelError, match=r"'pca_eigen_vectors' is float64 \(128, 64\), expected"):
        filecheck.CHECKS["vggish-pca-npz"](p)
    buf = io.BytesIO()
    np.savez(buf, pca_means=np.zeros(128))
    served_file(tmp_path, buf.getvalue())
    with pytest.raises(ModelError, match="'pca_eigen_vectors' missing"):
        filecheck.CHECKS["vggish-pca-npz"](p)
    served_file(tmp_path, pca_npz()[:5000])
    with pytest.raises(ModelError, match="not a valid .npz archive"):
        filecheck.CHECKS["vggish-pca-npz"](p)


def test_torch_check(tmp_path):
    filecheck.check_torch_checkpoint(served_file(tmp_path, torch_zip(), "a.pth"))
    filecheck.check_torch_checkpoint(served_file(tmp_path, filecheck.TORCH_LEGACY_MAGIC + b".", "b.pth"))
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        filecheck.check_torch_checkpoint(served_file(tmp_path, b"<html>rate limited</html>", "c.pth"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model/other", b"")
    with pytest.raises(ModelError, match="without data.pkl"):
        filecheck.check_torch_checkpoint(served_file(tmp_path, buf.getvalue(), "d.pth"))


def test_keras_check(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", "{}")
    filecheck.check_keras(served_file(tmp_path, buf.getvalue(), "m.keras"))
    filecheck.check_keras(served_file(tmp_path, filecheck.HDF5_SIGNATURE + b"\0" * 8, "m.weights.h5"))
    with pytest.raises(ModelError, match="not an HDF5 file"):
        filecheck.check_keras(served_file(tmp_path, b"\0" * 16, "n.weights.h5"))
    with pytest.raises(ModelError, match="corrupt .keras file"):
        filecheck.check_keras(served_file(tmp_path, b"PK\3\4", "n.keras"))


def test_hub_imports_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, audiotagger.hub, audiotagger.cli.models; "
            "bad = [m for m in ('tensorflow', 'keras', 'torch', 'librosa') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
