"""``audiotagger export --model mine.npz``: a custom YAMNet-backbone model as one waveform → scores file.

The exported graph (YAMNet's TensorFlow front end and network → the constant gather of the context windows
→ the user's classifier) is run with the TFLite interpreter and ONNX Runtime on a real recording and
compared with :class:`~audiotagger.tag.tagger.CustomBackend` (numpy front end, numpy window indices,
the classifier's own ``predict``) on the same waveform.

Tolerance: both paths hold the same float32 weights and the window gather is exact (the same integer
indices, fixed at export time), so they differ only by float32 rounding: tagging's numpy front end vs.
the graph's ``RFFT``/``MatMul`` (summed in another order), and the converters' kernels. Measured on this
piece: max |Δprob| 3.3e-7 (Keras graph), 8.9e-8 (TFLite), 1.2e-7 (ONNX Runtime). The test allows
``atol=1e-5``: 30× that, room for a trained classifier's sharper softmax and other CPUs' kernels, yet far
below the 1e-3 a one-row shift of the context windows makes here (checked below).

The classifier is built and stored like ``train --audio --backbone yamnet`` stores its best model (config with
``backbone`` and ``labels``) but with seeded random weights instead of 150 training iterations: what is under
test is that export computes *the same function* as tagging, which does not depend on the weights' values;
the test requires the scores to vary across rows and classes so that a wrong window or column order fails.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from audiotagger.audio import load_audio
from audiotagger.cli import main
from tests.conftest import shared_file

LABELS = ["music", "noise", "speech"]
SAMPLES = 15_600 + 15 * 7_680                 # 16 YAMNet patches (8.2 s)
LEFT, RIGHT = 4, 2                            # not the defaults: the exported windows follow the flags


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory):
    """A custom model file on the YAMNet backbone, as ``train --audio`` writes it (seeded weights)."""
    import keras

    from audiotagger.classifier.models import build_model, model_config
    from audiotagger.classifier.store import write_model

    keras.utils.set_random_seed(11)
    config = model_config(num_classes=len(LABELS), embedding_size=1024, input_dtype="float32",
                          hidden_units=64, single_label=True)
    model = build_model(**config)
    config = {**config, "labels": LABELS, "backbone": "yamnet", "name": "mine"}
    return write_model(tmp_path_factory.mktemp("custom") / "mine.npz", model, config)


@pytest.fixture(scope="module")
def waveform():
    """8.2 s of musanmix.wav from 20 s (music → noise/speech), 16 kHz float32."""
    x = load_audio(shared_file("audio", "musanmix.wav"))
    return np.ascontiguousarray(x[20 * 16_000:20 * 16_000 + SAMPLES], dtype=np.float32)


@pytest.fixture(scope="module")
def expected(custom_model, yamnet_home, waveform):
    """CustomBackend's probabilities for the waveform (the ``tag --model mine.npz`` path)."""
    from audiotagger.tag.tagger import CustomBackend

    backend = CustomBackend(custom_model, model_dir=yamnet_home, offline=True)
    rows = backend.backbone.embed_waveform(waveform)
    return backend.rows_result(rows, source="musanmix piece", left=LEFT, right=RIGHT).probs


@pytest.fixture(scope="module")
def exported(custom_model, yamnet_home, tmp_path_factory):
    """``{format: path}``: each format exported once per module through the CLI."""
    folder, cache = tmp_path_factory.mktemp("export"), {}

    def get(fmt, capsys):
        if fmt not in cache:
            out = folder / f"mine.{fmt}"
            code = main(["export", "--model", str(custom_model), "--format", fmt, "-o", str(out),
                         "--samples", str(SAMPLES), "--left", str(LEFT), "--right", str(RIGHT),
                         "--model-dir", str(yamnet_home), "--offline"])
            stdout = capsys.readouterr().out
            assert code == 0
            assert f"{out}.labels.txt: the score columns' labels" in stdout
            cache[fmt] = out
        return cache[fmt]

    return get


def run_file(path, fmt, x):
    if fmt == "tflite":
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            it = tf.lite.Interpreter(str(path))
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])
    import onnxruntime as ort

    session = ort.InferenceSession(str(path))
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_exported_custom_model_matches_tagging(fmt, exported, expected, waveform, capsys):
    if fmt == "onnx":
        pytest.importorskip("tf2onnx")
        pytest.importorskip("onnxruntime")
    path = exported(fmt, capsys)
    assert path.with_name(path.name + ".labels.txt").read_text() == "".join(f"{x}\n" for x in LABELS)
    got = run_file(path, fmt, waveform)
    assert expected.shape == got.shape == (16, len(LABELS))
    assert expected.std(axis=0).min() > 1e-3 and expected.std(axis=1).min() > 1e-3   # not a constant
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)                  # single-label softmax


def test_keras_graph_matches_tagging_and_windows_follow_the_flags(custom_model, yamnet_home, waveform,
                                                                  expected):
    from audiotagger.export import waveform_model

    ours = np.asarray(waveform_model(custom_model, model_dir=yamnet_home, offline=True, samples=SAMPLES,
                                     left=LEFT, right=RIGHT)(waveform))
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    default = np.asarray(waveform_model(custom_model, model_dir=yamnet_home, offline=True,
                                        samples=SAMPLES)(waveform))
    assert np.abs(default - ours).max() > 1e-3                  # other context, other scores


def test_custom_model_on_another_backbone_is_refused(custom_model, tmp_path, capsys):
    import json

    arrays = dict(np.load(custom_model, allow_pickle=False))
    config = json.loads(str(arrays["config"]))
    for backbone, why in (("vggish", "PCA and 8-bit quantisation"), ("panns-cnn14", "PANNs 32 kHz")):
        model = tmp_path / f"{backbone}.npz"
        np.savez(model, **{**arrays, "config": np.array(json.dumps({**config, "backbone": backbone}))})
        out = tmp_path / f"{backbone}.tflite"
        with pytest.raises(SystemExit) as exit_:
            main(["export", "--model", str(model), "-o", str(out), "--offline"])
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and "\n" not in err, err
        assert err.startswith(f"audiotagger: error: --model: {model}: export supports custom models on the "
                              f"yamnet backbone, not {backbone!r} (") and why in err
        assert list(tmp_path.glob(f"{backbone}.tflite*")) == []
