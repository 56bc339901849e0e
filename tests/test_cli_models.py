"""``audiotagger models list|download|import|path|verify`` against a loopback mirror."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from audiotagger import hub
from audiotagger.cli import main

from .loopback_http import LoopbackServer, Served
from .test_hub import pca_npz, torch_zip

pytestmark = pytest.mark.timeout(120)  # loopback tests take seconds; never hang CI


@pytest.fixture
def mirror(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                hub.OFFLINE_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    pca, cnn6 = pca_npz(), torch_zip()
    monkeypatch.setitem(hub.REGISTRY, "vggish-pca", dataclasses.replace(
        hub.REGISTRY["vggish-pca"], sha256=hashlib.sha256(pca).hexdigest(), md5=None, size=len(pca)))
    monkeypatch.setitem(hub.REGISTRY, "panns-cnn6", dataclasses.replace(
        hub.REGISTRY["panns-cnn6"], md5=hashlib.md5(cnn6).hexdigest(), size=None))
    with LoopbackServer() as srv:
        monkeypatch.setenv(hub.MIRROR_ENV, srv.base)
        srv.files["/vggish_pca_params.npz"] = Served(pca)
        srv.files["/Cnn6_mAP=0.343.pth"] = Served(cnn6)
        yield srv


def test_list_download_path_verify(mirror, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert f"cache: {hub.cache_dir()} ($AUDIOTAGGER_HOME)" in out
    row = next(line for line in out.splitlines() if line.startswith("panns-cnn14"))
    assert row.split()[1:5] == ["Cnn14_mAP=0.431.pth", "327.4", "MB", "missing"]

    assert main(["models", "path", "vggish-pca"]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == str(hub.cache_dir() / "vggish_pca_params.npz")
    assert "audiotagger models download vggish-pca" in captured.err

    assert main(["models", "download", "vggish-pca", "panns-cnn6", "-q"]) == 0
    out = capsys.readouterr().out
    assert f"vggish-pca: {hub.cache_dir() / 'vggish_pca_params.npz'}" in out
    assert main(["models", "path", "panns-cnn6"]) == 0
    assert capsys.readouterr().out.strip() == str(hub.cache_dir() / "Cnn6_mAP=0.343.pth")

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith("panns-cnn6 ")).split()[4] == "verified"

    assert main(["models", "verify"]) == 0
    out = capsys.readouterr().out
    assert "vggish-pca: ok" in out and "panns-cnn6: ok" in out and "panns-cnn14" not in out
    assert len(mirror.requests) == 2


def test_verify_names_corrupt_file_and_download_replaces_it(mirror, capsys):
    assert main(["models", "download", "panns-cnn6", "-q"]) == 0
    cached = hub.cache_dir() / "Cnn6_mAP=0.343.pth"
    cached.write_bytes(cached.read_bytes()[:-40])
    capsys.readouterr()
    assert main(["models", "verify", "panns-cnn6"]) == 1
    err = capsys.readouterr().err
    assert f"{cached}: panns-cnn6 corrupt: md5 mismatch" in err
    assert "audiotagger models download --force panns-cnn6" in err
    assert main(["models", "verify", "vggish-pca"]) == 1
    assert "vggish-pca missing" in capsys.readouterr().err

    assert main(["models", "download", "panns-cnn6", "-q"]) == 0
    assert main(["models", "verify", "panns-cnn6"]) == 0
    assert [r.status for r in mirror.requests] == [200, 200]


def test_download_failure_reported_others_still_done(mirror, capsys):
    del mirror.files["/Cnn6_mAP=0.343.pth"]
    assert main(["models", "download", "panns-cnn6", "vggish-pca", "-q"]) == 1
    captured = capsys.readouterr()
    assert "HTTP 404" in captured.err and "vggish-pca: " in captured.out


def test_import_and_offline(mirror, tmp_path, capsys, monkeypatch):
    src = tmp_path / "Cnn6_mAP=0.343.pth"
    src.write_bytes(torch_zip())
    monkeypatch.setenv(hub.OFFLINE_ENV, "1")
    assert main(["models", "download", "panns-cnn6", "-q"]) == 1
    assert "offline mode" in capsys.readouterr().err
    assert main(["models", "import", str(src)]) == 0
    assert capsys.readouterr().out.strip() == f"panns-cnn6: {hub.cache_dir() / src.name}"
    assert main(["models", "list"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("; offline mode")

    other = tmp_path / "other.pth"
    other.write_bytes(b"junk")
    assert main(["models", "import", str(other), "--name", "panns-cnn6"]) == 1
    assert f"{other}: not a valid panns-cnn6 file" in capsys.readouterr().err
    assert mirror.requests == []


def test_list_json_and_other_files(mirror, capsys):
    import json

    assert main(["models", "download", "vggish-pca", "-q"]) == 0
    (hub.cache_dir() / "converted").mkdir()
    (hub.cache_dir() / "converted" / "vggish-abc.weights.h5").write_bytes(b"\0" * 2000)
    (hub.cache_dir() / ".Cnn6_mAP=0.343.pth.part").write_bytes(b"\0" * 300)
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cache"] == str(hub.cache_dir()) and report["offline"] is False
    by_name = {m["name"]: m for m in report["models"]}
    assert by_name["vggish-pca"]["state"] == "verified" and by_name["panns-cnn14"]["state"] == "missing"
    assert by_name["panns-cnn14"]["expected_size"] == 327_428_481
    assert report["derived_files"] == [str(hub.cache_dir() / "converted" / "vggish-abc.weights.h5")]
    assert report["partial_downloads"] == [str(hub.cache_dir() / ".Cnn6_mAP=0.343.pth.part")]
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "derived files (converted weights): 1, 2.0 kB" in out and "partial downloads: 1, 300 B" in out


def test_model_dir_flag(mirror, tmp_path, capsys):
    assert main(["models", "download", "vggish-pca", "-q", "--model-dir", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "vggish_pca_params.npz").is_file()
    assert main(["models", "path", "vggish-pca", "--model-dir", str(tmp_path / "m")]) == 0
    assert main(["models", "list", "--model-dir", str(tmp_path / "m")]) == 0
    assert f"cache: {tmp_path / 'm'} (--model-dir)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["models", "download", "nope"], ["models", "path", "nope"],
                                  ["models"], ["models", "import"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
