"""``tag``/``embed`` ``--ray``: a real local Ray cluster (one per module), real files, a real S3-compatible
server on loopback (moto's server mode), killed workers and Ctrl-C on a driver subprocess.

The outputs of ``--ray`` must be those of a plain run: the same text files, probabilities within 1e-6.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
pyarrow_parquet = pytest.importorskip("pyarrow.parquet")
sf = pytest.importorskip("soundfile")

from audiotagger.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("srt", "json", "tsv")


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module; yields its address.

    3 logical CPUs: two workers and one for the light stages; no dashboard.
    """
    import ray

    ray.init(num_cpus=3, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(VGGish checkpoint, PCA, small classifier, PANNs CNN6 .pth); seeded, official formats."""
    pytest.importorskip("tf_slim")
    import keras

    from audiotagger.classifier import build_model, model_config
    from audiotagger.classifier.store import write_model
    from tests.panns_fixtures import panns_state_dict, write_pth
    from tests.vggish_fixtures import cached_slim_checkpoint

    folder = tmp_path_factory.mktemp("archive-models")
    rng = np.random.default_rng(7)
    basis, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    pca = folder / "vggish_pca_params.npz"
    np.savez(pca, pca_eigen_vectors=basis * 0.5, pca_means=np.zeros(128))
    keras.utils.set_random_seed(3)
    config = model_config(hidden_units=32)
    clf = write_model(folder / "small.npz", build_model(**config), {**config, "name": "test-small"})
    pth = write_pth(folder / "Cnn6_mAP=0.343.pth", {"model": panns_state_dict("cnn6", 11)})
    return cached_slim_checkpoint(), pca, clf, pth


def vggish_args(models):
    ckpt, pca, clf, _ = models
    return ["--checkpoint", str(ckpt), "--pca-params", str(pca), "--model", str(clf)]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Five short WAV files (3–7 s, tones + noise) and one broken file."""
    folder = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(5)
    for i in range(5):
        t = np.arange(16000 * (3 + i)) / 16000
        x = 0.3 * np.sin(2 * np.pi * (300 + 150 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(folder / f"clip{i}.wav", x.astype(np.float32), 16000)
    (folder / "broken.wav").write_bytes(b"this is not audio")
    return folder


def manifest(out) -> dict[str, dict]:
    table = pyarrow_parquet.read_table(Path(out) / "_manifest.parquet")
    return {row["path"]: row for row in table.to_pylist()}


def assert_same_outputs(plain: Path, ray_out: Path, stems, formats=TEXT, atol: float = 1e-6) -> None:
    for stem in stems:
        for fmt in formats:
            got, want = (ray_out / f"{stem}.{fmt}").read_text(), (plain / f"{stem}.{fmt}").read_text()
            assert got == want, (stem, fmt)
        a, b = np.load(plain / f"{stem}.npz"), np.load(ray_out / f"{stem}.npz")
        np.testing.assert_allclose(b["probs"], a["probs"], atol=atol)
        np.testing.assert_array_equal(b["times"], a["times"])
    assert not list(ray_out.rglob("*.part*"))


def run_cli(args, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "audiotagger", *args], capture_output=True, text=True,
                          env=env, timeout=kw.get("timeout", 240))


# --- same outputs as a plain run, both backends; manifest; reruns ------------------------------------

def test_vggish_ray_equals_plain_and_reruns(cluster, models, media, tmp_path, capsys):
    plain, ray_out = tmp_path / "plain", tmp_path / "ray"
    fmt = ["-f", "srt,json,tsv,npz,html"]
    assert main(["tag", str(media), "-o", str(plain), *fmt, *vggish_args(models), "-q"]) == 1
    code = main(["tag", str(media), "-o", str(ray_out), *fmt, *vggish_args(models), "--ray",
                 "--workers", "2"])
    captured = capsys.readouterr()
    assert code == 1                                               # broken.wav failed, alone
    assert "broken.wav: not a media file" in captured.err
    assert f"{media / 'clip0.wav'}: 3.0 s, 3 steps" in captured.out
    assert_same_outputs(plain, ray_out, [f"clip{i}" for i in range(5)])

    rows = manifest(ray_out)
    assert len(rows) == 6
    bad = rows[str(media / "broken.wav")]
    assert bad["status"] == "failed" and "not a media file" in bad["error"]
    good = rows[str(media / "clip2.wav")]
    assert good["status"] == "done" and good["audio_s"] == pytest.approx(5.0)
    assert sorted(Path(p).name for p in good["outputs"]) == [f"clip2.{e}" for e in ("html", "json", "npz",
                                                                                      "srt", "tsv")]
    # -f html: the folder index is built from the manifest's pages, and lists what a plain run's lists
    def indexed(folder):
        return sorted(set(re.findall(r"clip\d\.html", (folder / "index.html").read_text())))
    assert indexed(ray_out) == indexed(plain) == [f"clip{i}.html" for i in range(5)]
    assert good["top_classes"] and good["worker"] and good["node"] and good["end"] >= good["start"]
    # a pool of two; under load the first actor up may take every file before the second is ready
    assert 1 <= len({r["worker"] for r in rows.values()}) <= 2

    # rerun: done files are skipped by the manifest, the failed one is retried (and fails again)
    before = {p: (ray_out / p).stat().st_mtime_ns for p in ("clip0.srt", "clip4.npz")}
    assert main(["tag", str(media), "-o", str(ray_out), *fmt, *vggish_args(models), "--ray", "-q"]) == 1
    assert "1 files this run: 0 done, 0 skipped, 1 failed" in capsys.readouterr().err
    assert {p: (ray_out / p).stat().st_mtime_ns for p in before} == before
    # --only-new: nothing new, the failure is not retried
    assert main(["tag", str(media), "-o", str(ray_out), *fmt, *vggish_args(models), "--ray",
                 "--only-new"]) == 0
    assert "0 files this run" in capsys.readouterr().err
    assert manifest(ray_out)[str(bad["path"])]["status"] == "failed"


def test_panns_ray_equals_plain(cluster, models, media, tmp_path):
    pth = models[3]
    files = [str(media / "clip0.wav"), str(media / "clip1.wav")]
    common = ["-f", "txt,json,npz", "--model", str(pth), "--sample-duration", "1.0", "--hop-duration", "0.5",
              "--batch-size", "8", "-q"]
    assert main(["tag", *files, "-o", str(tmp_path / "plain"), *common]) == 0
    assert main(["tag", *files, "-o", str(tmp_path / "ray"), *common, "--ray", "--workers", "2"]) == 0
    # the scores agree to float32 noise only: ONNX Runtime's sums depend on the batch (a Ray task holds one
    # file, the plain run streams both), and this seeded network saturates many scores at 0.99999..., whose
    # top-k order is then decided by that noise; so compare the scores, not the ranked text
    assert_same_outputs(tmp_path / "plain", tmp_path / "ray", ["clip0", "clip1"], (), atol=1e-5)
    for stem in ("clip0", "clip1"):
        assert (tmp_path / "ray" / f"{stem}.txt").is_file() and (tmp_path / "ray" / f"{stem}.json").is_file()
    assert {r["status"] for r in manifest(tmp_path / "ray").values()} == {"done"}


# --- embeddings: npz equal to a plain run; sharded TFRecords with labels, read by train ---------------

def test_embed_npz_and_labelled_tfrecord_shards(cluster, models, media, tmp_path):
    ckpt, pca, _, _ = models
    m = ["--checkpoint", str(ckpt), "--pca-params", str(pca), "-q"]
    files = [str(media / f"clip{i}.wav") for i in range(3)]
    assert main(["embed", *files, "-o", str(tmp_path / "plain"), *m]) == 0
    assert main(["embed", *files, "-o", str(tmp_path / "ray"), *m, "--ray", "--workers", "2"]) == 0
    for i in range(3):
        a, b = np.load(tmp_path / "plain" / f"clip{i}.npz"), np.load(tmp_path / "ray" / f"clip{i}.npz")
        np.testing.assert_array_equal(b["embedding"], a["embedding"])
        # raw float32: a worker packs VGGish's dense weights at load, a short plain run never does; the
        # two kernels sum in different orders (a plain run differs the same way after 1,024 examples)
        np.testing.assert_allclose(b["raw"], a["raw"], rtol=1e-5, atol=1e-5)

    labels = tmp_path / "labels.csv"
    labels.write_text('path,labels\n'
                      f'{files[0]},"/m/09x0r,/m/04rlf"\n'
                      f'clip1.wav,"Male speech, man speaking;Dog"\n'
                      f'{files[2]},Music\n', encoding="utf-8")
    out = tmp_path / "shards"
    assert main(["embed", *files, "-o", str(out), *m, "--ray", "-f", "tfrecord", "--shard-size", "2",
                 "--labels-csv", str(labels)]) == 0
    shards = sorted(out.glob("shard-*.tfrecord"))
    assert len(shards) == 2
    from audiotagger.labels import load_labels
    from audiotagger.records import read_tfrecord
    from audiotagger.train.data import read_embeddings

    records = {r["video_id"]: r for s in shards for r in read_tfrecord(s)}
    names = load_labels().names
    assert sorted(records) == ["clip0", "clip1", "clip2"]
    assert sorted(names[i] for i in records["clip1"]["labels"]) == ["Dog", "Male speech, man speaking"]
    assert sorted(names[i] for i in records["clip0"]["labels"]) == ["Music", "Speech"]
    np.testing.assert_array_equal(records["clip2"]["audio_embedding"],
                                  np.load(tmp_path / "plain" / "clip2.npz")["embedding"])
    data = read_embeddings(out)                                   # what `audiotagger train` reads
    assert len(data) == 3 and data.y.sum() == 5
    rows = manifest(out)
    assert {Path(r["outputs"][0]).name for r in rows.values()} == {s.name for s in shards}

    bad = tmp_path / "bad.csv"
    bad.write_text(f"{files[0]},Not a class\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["embed", *files, "-o", str(tmp_path / "x"), *m, "--ray", "-f", "tfrecord",
              "--labels-csv", str(bad)])
    assert exc.value.code == 2 and not (tmp_path / "x").exists()


# --- object store: a real S3-compatible server on loopback --------------------------------------------

@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 (random port); yields its endpoint URL, with the AWS_* variables set."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield endpoint
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def test_s3_inputs_list_and_outputs(cluster, s3, models, media, tmp_path, capsys):
    import fsspec

    fs = fsspec.filesystem("s3", client_kwargs={"endpoint_url": s3})
    fs.mkdir("archive")
    for i in range(3):
        fs.put_file(str(media / f"clip{i}.wav"), f"archive/in/clip{i}.wav")
    lines = ["# an archive list", "s3://archive/in/clip0.wav", "", f"file://{media / 'clip1.wav'}",
             "s3://archive/in/clip2.wav", "s3://archive/in/missing.wav"]
    fs.pipe_file("archive/list.txt", "\n".join(lines).encode())
    fmt = ["-f", "srt,json,npz"]
    code = main(["tag", "--input-list", "s3://archive/list.txt", "-o", "s3://archive/out", *fmt,
                 *vggish_args(models), "--ray", "--workers", "2", "-q"])
    assert code == 1
    assert "s3://archive/in/missing.wav: not found" in capsys.readouterr().err
    got = tmp_path / "got"
    fs.get("archive/out/", str(got), recursive=True)
    plain = tmp_path / "plain"
    assert main(["tag", *(str(media / f"clip{i}.wav") for i in range(3)), "-o", str(plain), *fmt,
                 *vggish_args(models), "-q"]) == 0
    for i in (0, 2):   # the source recorded in the outputs is the URL, as given
        text = (got / f"clip{i}.json").read_text()
        assert f"s3://archive/in/clip{i}.wav" in text
        assert text.replace(f"s3://archive/in/clip{i}.wav", str(media / f"clip{i}.wav")) == \
            (plain / f"clip{i}.json").read_text()
    assert_same_outputs(plain, got, ["clip0", "clip1", "clip2"], ("srt",))
    table = pyarrow_parquet.read_table(got / "_manifest.parquet").to_pylist()
    assert {r["path"]: r["status"] for r in table} == {
        "s3://archive/in/clip0.wav": "done", str(media / "clip1.wav"): "done",
        "s3://archive/in/clip2.wav": "done", "s3://archive/in/missing.wav": "failed"}

    # a missing bucket and an unreachable store: one line, usage error, nothing written
    for out, why in (("s3://no-such-bucket/out", "bucket 'no-such-bucket' does not exist"),):
        with pytest.raises(SystemExit) as exc:
            main(["tag", str(media / "clip0.wav"), "-o", out, *vggish_args(models), "--ray"])
        assert exc.value.code == 2 and why in capsys.readouterr().err
    os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"          # nothing listens on port 9
    fsspec.get_filesystem_class("s3").clear_instance_cache()          # a new client reads the variable
    try:
        with pytest.raises(SystemExit) as exc:
            main(["tag", "--input-list", "s3://archive/list.txt", "-o", str(tmp_path / "o"), "--ray"])
    finally:
        os.environ["AWS_ENDPOINT_URL"] = s3
        fsspec.get_filesystem_class("s3").clear_instance_cache()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "object store not reachable" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "_manifest.parquet").exists()


def test_same_file_name_in_one_output_folder_fails_the_later_input(cluster, models, media, tmp_path,
                                                                     capsys):
    """a/clip.wav and b/clip.wav from one input list would both write <out>/clip.srt: one keeps the name,
    the other fails with the reason, and a rerun (even with --overwrite) never writes over the first."""
    import shutil

    for sub, i in (("a", 0), ("b", 1)):
        (tmp_path / sub).mkdir()
        shutil.copy(media / f"clip{i}.wav", tmp_path / sub / "clip.wav")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'a' / 'clip.wav'}\n{tmp_path / 'b' / 'clip.wav'}\n"
                       f"{media / 'clip2.wav'}\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["tag", "--input-list", str(listing), "-o", str(out), "-f", "srt,json", *vggish_args(models),
            "--ray", "--workers", "2", "-q"]
    assert main(args) == 1
    rows = manifest(out)
    pair = [rows[str(tmp_path / sub / "clip.wav")] for sub in ("a", "b")]
    assert sorted(r["status"] for r in pair) == ["done", "failed"]
    winner, loser = sorted(pair, key=lambda r: r["status"])
    assert f"{loser['path']}: output {out / 'clip.srt'}" in loser["error"] or \
        f"{loser['path']}: output {out / 'clip.json'}" in loser["error"]
    assert "is also the output of another input" in loser["error"]
    assert loser["path"] in capsys.readouterr().err
    assert winner["path"] in (out / "clip.json").read_text()           # written by the winner, once
    assert rows[str(media / "clip2.wav")]["status"] == "done"
    stamp = (out / "clip.srt").stat().st_mtime_ns
    # a rerun retries the failed input: the manifest's outputs of the first run are still taken
    assert main([*args, "--overwrite"]) == 1
    rows = manifest(out)
    assert rows[loser["path"]]["status"] == "failed" and "another input" in rows[loser["path"]]["error"]
    assert (out / "clip.srt").stat().st_mtime_ns == stamp


def test_a_file_over_the_memory_budget_fails_alone(cluster, models, media, tmp_path):
    """--memory-per-worker: a 10-minute file needs more than 0.1 GB beyond the warmed-up model (its
    results and the full-size batches), so it fails with that reason; the short files before and after it
    are done by the same worker process (it was not killed, and reloaded its model after the failure)."""
    rng = np.random.default_rng(11)
    long = tmp_path / "long.wav"
    sf.write(long, (0.1 * rng.standard_normal(16000 * 600)).astype(np.float32), 16000, subtype="PCM_16")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join([str(media / "clip0.wav"), str(long), str(media / "clip1.wav"),
                                  str(media / "clip2.wav"), str(media / "clip3.wav")]), encoding="utf-8")
    out = tmp_path / "out"
    code = main(["tag", "--input-list", str(listing), "-o", str(out), "-f", "srt", *vggish_args(models),
                 "--ray", "--workers", "1", "--memory-per-worker", "0.1", "-q"])
    assert code == 1
    rows = manifest(out)
    assert rows[str(long)]["status"] == "failed"
    assert rows[str(long)]["error"].startswith(f"{long}: out of memory while processing this file (more "
                                               "than 0.1 GB for one file")
    assert {rows[str(media / f"clip{i}.wav")]["status"] for i in range(4)} == {"done"}
    assert len({r["worker"] for r in rows.values()}) == 1
    assert not (out / "long.srt").exists() and not list(out.glob("*.part*"))


# --- bad input: usage errors before any work ----------------------------------------------------------

def test_bad_list_line_and_dead_cluster_are_usage_errors(media, tmp_path, capsys):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{media / 'clip0.wav'}\n{media / 'clip1.wav'}\x07oops\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["tag", "--input-list", str(listing), "-o", str(tmp_path / "o"), "--ray"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"{listing}:2: malformed line" in err
    assert not (tmp_path / "o" / "_manifest.parquet").exists()
    t = time.monotonic()
    with pytest.raises(SystemExit) as exc:
        main(["tag", str(media / "clip0.wav"), "-o", str(tmp_path / "o"), "--ray", "127.0.0.1:9"])
    assert exc.value.code == 2 and "no Ray cluster answers" in capsys.readouterr().err
    assert time.monotonic() - t < 30
    with pytest.raises(SystemExit) as exc:
        main(["tag", "s3://bucket/x.wav", "-o", str(tmp_path / "o")])
    assert exc.value.code == 2 and "need --ray" in capsys.readouterr().err
    # Ray Client: Ray Data's executor fails through it (Ray 2.60), so it is refused before any work
    with pytest.raises(SystemExit) as exc:
        main(["tag", str(media / "clip0.wav"), "-o", str(tmp_path / "client"), "--ray", "ray://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "a Ray Client address" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "client").exists()


def test_a_pipeline_that_stops_leaves_a_manifest_and_one_line(cluster, models, media, tmp_path, capsys,
                                                              monkeypatch):
    """Ray's own failures (not an input's) end the run with one line, exit 1, and a manifest whose
    unfinished inputs are pending, so a rerun resumes; never a traceback."""
    import audiotagger.archive.driver as driver

    class Stopped:
        def iter_rows(self):
            raise RuntimeError("executor state\nthe streaming executor stopped")

    monkeypatch.setattr(driver, "_dataset", lambda *args, **kwargs: Stopped())
    out = tmp_path / "out"
    code = main(["tag", str(media / "clip0.wav"), str(media / "clip1.wav"), "-o", str(out),
                 *vggish_args(models), "--ray", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "--ray: the Ray Data pipeline stopped (RuntimeError: the streaming executor stopped)" in err
    rows = manifest(out)
    assert {r["status"] for r in rows.values()} == {"pending"} and len(rows) == 2


# --- faults: a killed worker, Ctrl-C on the driver ----------------------------------------------------

def _wait_for(predicate, proc, timeout=600.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the driver ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError("timed out")


def _done_rows(out):
    try:
        return [r for r in manifest(out).values() if r["status"] == "done"]
    except (FileNotFoundError, OSError):
        return []


@pytest.fixture(scope="module")
def many(tmp_path_factory, media):
    """Twelve copies of the clips (distinct names) for the fault tests."""
    folder = tmp_path_factory.mktemp("many")
    for i in range(12):
        (folder / f"f{i:02d}.wav").write_bytes((media / f"clip{i % 5}.wav").read_bytes())
    return folder


def test_killed_worker_is_replaced_and_every_file_done_once(cluster, models, many, tmp_path):
    out = tmp_path / "out"
    args = ["tag", str(many), "-o", str(out), "-f", "srt,npz", *vggish_args(models), "--ray", cluster,
            "--workers", "2", "--manifest-interval", "0.2", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "audiotagger", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = _wait_for(lambda: _done_rows(out), proc)[0]
        pid = int(first["worker"].rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)                                # kill -9 of a busy worker
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    rows = manifest(out)
    assert sorted(Path(p).name for p in rows) == [f"f{i:02d}.wav" for i in range(12)]
    assert {r["status"] for r in rows.values()} == {"done"}
    assert len({r["worker"] for r in rows.values()}) >= 2
    for i in range(12):
        data = np.load(out / f"f{i:02d}.npz")
        assert data["probs"].shape == (3 + i % 5, 527)
    assert not list(out.rglob("*.part*"))


@pytest.fixture(scope="module")
def many_long(tmp_path_factory):
    """Twelve 40 s files: enough work that an interrupt lands while files remain."""
    folder = tmp_path_factory.mktemp("many_long")
    rng = np.random.default_rng(9)
    for i in range(12):
        t = np.arange(16000 * 40) / 16000
        x = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(folder / f"f{i:02d}.wav", x.astype(np.float32), 16000)
    return folder


def test_ctrl_c_leaves_a_manifest_that_a_rerun_resumes(cluster, models, many_long, tmp_path):
    out = tmp_path / "out"
    # long files on the tf engine: on ONNX Runtime one worker could finish twelve short files before the
    # signal lands
    args = ["tag", str(many_long), "-o", str(out), "-f", "srt", *vggish_args(models), "--ray", cluster,
            "--workers", "1", "--manifest-interval", "0.2", "--engine", "tf", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "audiotagger", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # the first output a worker writes (the driver may receive finished rows in bursts, so its
        # manifest is no clock): interrupt while most files remain
        _wait_for(lambda: list(out.glob("*.srt")) if out.is_dir() else [], proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    rows = manifest(out)
    assert len(rows) == 12
    statuses = [r["status"] for r in rows.values()]
    assert "pending" in statuses and set(statuses) <= {"done", "pending"}
    done = {p for p, r in rows.items() if r["status"] == "done"}
    assert all((out / f"{Path(p).stem}.srt").exists() for p in done)

    again = run_cli(args)
    assert again.returncode == 0, again.stderr
    final = manifest(out)
    assert len(final) == 12 and all(final[p]["status"] == "done" for p in done)   # not redone
    # a file a worker finished after the interrupt has its outputs: the rerun records it as skipped
    assert {r["status"] for r in final.values()} <= {"done", "skipped"}
    assert all((out / f"{Path(p).stem}.srt").exists() for p in final)
    assert not list(out.rglob("*.part*"))
