"""YAMNet against the real weights (``../shared/models/yamnet/yamnet.tflite``, int8 weights).

The model is imported once per session through ``audiotagger models import`` (TFLite → official-layout
``yamnet.h5``) and loaded from the cache like a user's download (``tests/yamnet_fixtures.py``).

Tolerance of the comparison with the TFLite interpreter (test_network_matches_interpreter):
the Keras network holds exactly the interpreter's dequantised weights, so weight rounding does not
differ between the two. What differs is that the interpreter's hybrid (dynamic-range) kernels quantise
the *input activations* of every convolution and of the classifier to int8 on the fly (one scale per
tensor, i.e. steps of 1/127 of each tensor's range). Measured layer by layer on real patches that
is a relative error of 0.5–2.5 % at layers 2–12, growing to about 10 % of the largest activation at
layer 14; through the sigmoid (slope ≤ 0.25) it moves single scores by up to about 0.14 (measured
0.139 over 348 patches of 8 recordings), while the mean absolute difference stays near 1e-4. The test
therefore requires, on every patch of every recording: max |Δscore| ≤ 0.2, mean |Δscore| ≤ 1e-3, and
the same top class wherever the interpreter is confident (top score > 0.5).

The interpreter's front end is quantised too (an int8 mel matrix applied to an int8-quantised magnitude
spectrum), which wipes out bins below 1/254 of the loudest one: the log of such a band falls to
log(0.001), so log-mels are compared in the mel (linear) domain, to 5 % of each patch's maximum
(measured ≤ 3.6 %), and the float front end is checked exactly against TensorFlow's float ops in
tests/test_yamnet.py.
"""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

from audiotagger.audio import load_audio
from audiotagger.cli import main
from tests.conftest import shared_file
from tests.yamnet_fixtures import yamnet_tflite

RECORDINGS = ["jfk.flac", "198-209-0000.ogg", "crying_baby_1-60997-B.mp3", "sorohanro_-_solo-trumpet-06.ogg",
              "456440__inspectorj__bird-whistling-robin-single-13.ogg", "pibble.ogg",
              "metro_station-paris.wav", "musanmix.wav"]


@pytest.fixture(scope="module")
def interpreter():
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(str(yamnet_tflite()), experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    ops = it._get_ops_details()
    first_conv = next(op for op in ops if op["op_name"] == "CONV_2D")
    return it, int(first_conv["inputs"][0])        # the (1, 96, 64, 1) log-mel patch it computed


def run_interpreter(interpreter, windows):
    it, logmel_index = interpreter
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    scores, logmels = [], []
    for w in windows:
        it.set_tensor(inp, w)
        it.invoke()
        scores.append(it.get_tensor(out)[0].copy())
        logmels.append(it.get_tensor(logmel_index)[0, :, :, 0].copy())
    return np.array(scores), np.array(logmels)


def test_import_writes_the_tflite_weights_exactly(yamnet_home):
    from audiotagger import hub
    from audiotagger.yamnet.tflite import read_tflite
    from audiotagger.yamnet.weights import read_weights

    h5 = yamnet_home / "yamnet.h5"
    assert hub.status("yamnet", model_dir=yamnet_home).state == "verified"
    ours, theirs = read_weights(h5), read_tflite(yamnet_tflite())
    assert ours.keys() == theirs.keys() and len(ours) == 55
    for layer in ours:
        for a, b in zip(ours[layer], theirs[layer], strict=True):
            np.testing.assert_array_equal(a, b)


def test_network_matches_interpreter(yamnet_backend, interpreter):
    from audiotagger.yamnet.tagging import iter_patch_windows, windows_to_patches

    model = yamnet_backend.model
    for name in RECORDINGS:
        windows = np.stack(list(iter_patch_windows([load_audio(shared_file("audio", name))])))
        ref, their_logmel = run_interpreter(interpreter, windows)
        # the network on the interpreter's own log-mel patches: only activation quantisation differs
        net, _ = model.score_patches(their_logmel)
        diff = np.abs(net - ref)
        assert diff.max() <= 0.2, (name, diff.max())
        assert diff.mean() <= 1e-3, (name, diff.mean())
        confident = ref.max(axis=1) > 0.5
        np.testing.assert_array_equal(net.argmax(1)[confident], ref.argmax(1)[confident], err_msg=name)
        # the front ends agree to the interpreter's int8 rounding (in the mel domain, see the docstring)
        ours = np.exp(windows_to_patches(windows)) - 0.001
        theirs = np.exp(their_logmel) - 0.001
        rel = np.abs(ours - theirs).max(axis=(1, 2)) / ours.max(axis=(1, 2))
        assert rel.max() <= 0.05, (name, rel.max())
        # end to end (both front ends): the scores still agree on average
        full, _ = model.score_patches(windows_to_patches(windows))
        assert np.abs(full - ref).mean() <= 0.01, name


EXPECTED = [  # recording, classes of which one must be among the file's top-3 (mean over seconds)
    ("jfk.flac", {"Speech"}),
    ("198-209-0000.ogg", {"Speech"}),
    ("crying_baby_1-60997-B.mp3", {"Baby cry, infant cry", "Crying, sobbing"}),
    ("sorohanro_-_solo-trumpet-06.ogg", {"Trumpet"}),
    ("456440__inspectorj__bird-whistling-robin-single-13.ogg", {"Bird"}),
    ("metro_station-paris.wav", {"Train", "Subway, metro, underground", "Rail transport"}),
]


@pytest.mark.parametrize("name, wanted", EXPECTED)
def test_right_classes_on_real_recordings(yamnet_backend, name, wanted):
    result = yamnet_backend.tag(shared_file("audio", name))
    assert result.probs.shape[1] == 521 and result.names[0] == "Speech"
    mean = result.probs.mean(axis=0)
    top3 = {result.names[i] for i in np.argsort(-mean)[:3]}
    assert top3 & wanted, (name, top3)
    assert max(mean[result.names.index(c)] for c in wanted) >= 0.4


def test_dog_howling_is_heard(yamnet_backend):
    """pibble.ogg (a dog howling in her sleep, mostly quiet): Dog among a second's top-5, clearly."""
    result = yamnet_backend.tag(shared_file("audio", "pibble.ogg"))
    dog = result.names.index("Dog")
    top5 = np.argsort(-result.probs, axis=1)[:, :5]
    seconds = np.flatnonzero((top5 == dog).any(axis=1) & (result.probs[:, dog] >= 0.5))
    assert seconds.size >= 1
    assert result.probs[:, result.names.index("Music")].max() < 0.5


def test_musanmix_segments_at_the_right_seconds(yamnet_backend):
    """Music 0–22.48 s, noise 29.08–52.8 s, male speech 63.34–73.82 s (musanmix-smn-gender.csv)."""
    table = shared_file("audio", "musanmix-smn-gender.csv")
    with open(table, newline="") as fh:
        rows = csv.DictReader(fh, delimiter="\t")
        segments = [(r["labels"], float(r["start"]), float(r["stop"])) for r in rows]
    result = yamnet_backend.tag(shared_file("audio", "musanmix.wav"))
    assert result.probs.shape == (75, 521) and result.hop == 1.0
    col = {name: result.names.index(name) for name in ("Music", "Speech", "Silence")}
    top = result.probs.argmax(axis=1)

    def seconds(label):          # seconds lying wholly inside a segment of that label
        return [s for s in range(result.num_steps)
                if any(lab == label and a <= s and s + 1 <= b for lab, a, b in segments)]

    music, noise, speech = seconds("music"), seconds("noise"), seconds("male")
    assert len(music) == 22 and len(noise) == 22 and len(speech) == 7
    assert all(top[s] == col["Music"] for s in music)
    assert all(top[s] == col["Speech"] for s in speech)
    for s in noise:              # noise: neither music nor speech, and mostly not silence
        assert result.probs[s, col["Music"]] < 0.2 and result.probs[s, col["Speech"]] < 0.2, s
    assert np.mean([top[s] != col["Silence"] for s in noise]) >= 0.75
    assert all(result.probs[s, col["Music"]] < 0.2 for s in speech)
    assert all(result.probs[s, col["Speech"]] < 0.2 for s in music)


def test_cli_tag_every_format_and_native_rows(yamnet_home, tmp_path, capsys):
    bird = shared_file("audio", "456440__inspectorj__bird-whistling-robin-single-13.ogg")
    out = tmp_path / "out"
    common = ["--model", "yamnet", "--model-dir", str(yamnet_home), "--offline", "-q"]
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    assert main(["tag", str(bad), str(bird), "-f", "all", "-o", str(out), *common]) == 1
    err = capsys.readouterr().err
    assert f"audiotagger: error: {bad}" in err and "Traceback" not in err
    assert not list(out.glob("broken.*"))           # nothing half written for the failed input
    stem = bird.stem
    for ext in ("srt", "vtt", "tsv", "csv", "json", "npz", "txt", "png"):
        assert (out / f"{stem}.{ext}").stat().st_size > 0, ext
    assert "Bird" in (out / f"{stem}.srt").read_text()
    from audiotagger.tag.result import load_result

    result, _ = load_result(out / f"{stem}.npz")
    assert result.probs.shape == (3, 521) and result.meta["backend"] == "yamnet"
    assert result.extras["patch_scores"].shape == (5, 521)
    # re-rendered from the .npz without a model, identical
    again = tmp_path / "again"
    assert main(["tag", "--from-probs", str(out / f"{stem}.npz"), "-f", "srt", "-o", str(again)]) == 0
    assert (again / f"{stem}.srt").read_text() == (out / f"{stem}.srt").read_text()
    native = tmp_path / "native"
    assert main(["tag", str(bird), "-f", "npz", "-o", str(native), "--hop-duration", "0.48", *common]) == 0
    result, _ = load_result(native / f"{stem}.npz")
    np.testing.assert_allclose(result.times, np.arange(5) * 0.48)
    np.testing.assert_array_equal(result.probs, result.extras["patch_scores"])


def test_cli_embed_yamnet(yamnet_home, tmp_path):
    jfk = shared_file("audio", "jfk.flac")
    assert main(["embed", str(jfk), "--model", "yamnet", "--model-dir", str(yamnet_home), "--offline",
                 "-o", str(tmp_path), "-q"]) == 0
    with np.load(tmp_path / "jfk.npz", allow_pickle=False) as npz:
        assert npz["embedding"].shape == (22, 1024) and npz["embedding"].dtype == np.float32
        assert npz["scores"].shape == (22, 521)
        np.testing.assert_allclose(npz["times"], np.arange(22) * 0.48)
        assert float(npz["duration"]) == pytest.approx(11.0, abs=0.01)


EXPORT_SAMPLES = 15_600 + 2 * 7_680      # three patches


@pytest.fixture(scope="module")
def export_model(yamnet_home):
    from audiotagger.export import waveform_model

    return waveform_model("yamnet", model_dir=yamnet_home, offline=True, samples=EXPORT_SAMPLES)


@pytest.fixture(scope="module")
def exported(export_model, tmp_path_factory):
    """``{format: path}``, each exported once per module."""
    from audiotagger.export import export_keras

    folder, cache = tmp_path_factory.mktemp("export"), {}

    def get(fmt):
        if fmt not in cache:
            cache[fmt] = export_keras(export_model, folder / f"yamnet.{fmt}", fmt)
        return cache[fmt]

    return get


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_export_matches_keras(export_model, exported, fmt):
    """The exported file (waveform in, scores out) gives the Keras model's scores on a real recording."""
    if fmt == "onnx":
        pytest.importorskip("tf2onnx")
        ort = pytest.importorskip("onnxruntime")
    x = load_audio(shared_file("audio", "crying_baby_1-60997-B.mp3"))[:EXPORT_SAMPLES]
    expected = np.asarray(export_model(x))
    path = exported(fmt)
    if fmt == "tflite":
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            it = tf.lite.Interpreter(str(path))
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        got = it.get_tensor(it.get_output_details()[0]["index"])
    else:
        session = ort.InferenceSession(str(path))
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert got.shape == expected.shape == (3, 521)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert expected[:, 20:22].max() > 0.5      # the baby cry is what is exported


def test_float_tflite_imports_too(yamnet_home, exported, tmp_path):
    """A float32 YAMNet TFLite (our own export) converts back to the same network."""
    from audiotagger.yamnet.tflite import read_tflite
    from audiotagger.yamnet.weights import load_model, write_weights

    h5 = write_weights(read_tflite(exported("tflite")), tmp_path / "yamnet.h5")
    net, _ = load_model(h5)
    original, _ = load_model("yamnet", model_dir=yamnet_home, offline=True)
    x = load_audio(shared_file("audio", "jfk.flac"))
    from audiotagger.yamnet.features import waveform_to_patches

    patches = waveform_to_patches(x)
    np.testing.assert_allclose(net(patches)["scores"], original(patches)["scores"], atol=1e-4)


def test_not_yamnet_tflite_is_refused(tmp_path, capsys):
    import keras
    import tensorflow as tf

    yamnet_tflite()
    inp = keras.Input((8,))
    tiny = keras.Model(inp, keras.layers.Dense(3)(inp))
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tiny).convert())
    assert main(["models", "import", str(path), "--model-dir", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"audiotagger: error: {path}: has 0 convolutions, YAMNet has 27 (not a YAMNet model?)"]
    assert not (tmp_path / "c" / "yamnet.h5").exists()
