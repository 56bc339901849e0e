"""The streaming interface of the backends: a file pushed in pieces gives ``tag``'s rows.

Real models (the official-format VGGish test checkpoint and a PANNs CNN6 ``.pth`` in PyTorch's format),
real decoding through the shared ffmpeg pipe; only the chunking differs from ``tag``.
"""

import numpy as np
import pytest
import soundfile as sf

from audiotagger.audio import decode_input
from audiotagger.stream import ContextRows
from audiotagger.tag.windows import context_windows
from tests.conftest import shared_file
from tests.panns_fixtures import panns_state_dict, write_pth
from tests.test_tag_e2e import tag_models  # noqa: F401  (session fixture: checkpoint, PCA, classifier)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 12, 25])
@pytest.mark.parametrize("left,right", [(0, 0), (3, 1), (2, 4), (9, 9), (12, 0), (0, 12)])
def test_context_rows_match_offline_windows(n, left, right):
    """Every step's window, pushed in uneven pieces, equals the offline window (end tiling included)."""
    rng = np.random.default_rng(n * 100 + left * 10 + right)
    emb = rng.integers(0, 256, size=(n, 4), dtype=np.uint8)
    seen = []

    def classify(windows):
        seen.append(windows.copy())
        return windows.reshape(len(windows), -1).astype(np.float32)

    stream = ContextRows(classify, left, right)
    rows, pos = [], 0
    for size in (1, 0, 3, 2, 7, 1, 100):
        rows += stream.push(emb[pos:pos + size])
        assert [r.index for r in rows] == list(range(len(rows)))
        assert len(rows) == max(0, min(pos + size, n) - right)      # emitted as soon as i + right exists
        pos += size
    rows += stream.close()
    assert [r.index for r in rows] == list(range(n)) and [r.time for r in rows] == list(map(float, range(n)))
    if n:
        expected = context_windows(emb, left, right).reshape(n, -1).astype(np.float32)
        np.testing.assert_array_equal(np.stack([r.probs for r in rows]), expected)
    assert stream._rows is None or len(stream._rows) <= left + right + 8   # flat memory


def _push_file(stream, path, chunk_seconds):
    rows = []
    for chunk in decode_input(["-i", str(path)], str(path), stream.sample_rate, chunk_seconds=chunk_seconds):
        rows += stream.push(chunk)
    return rows + stream.close()


@pytest.mark.parametrize("left,right", [(3, 1), (0, 2)])
def test_vggish_stream_equals_tag(tag_models, left, right):  # noqa: F811
    from audiotagger.tag.tagger import load_tagger

    ckpt, pca, clf = tag_models
    tagger = load_tagger(clf, checkpoint=ckpt, pca_params=pca)
    path = shared_file("audio", "R9_ZSCveAHg_7s.wav")
    ref = tagger.tag(path, left=left, right=right)
    stream = tagger.stream(left=left, right=right)
    assert stream.sample_rate == 16000
    rows = _push_file(stream, path, 0.13)
    got = stream.result(rows, str(path))
    np.testing.assert_array_equal(got.times, ref.times)
    np.testing.assert_allclose(got.probs, ref.probs, rtol=0, atol=1e-5)
    assert np.ptp(got.probs, axis=0).max() > 1e-3                       # the seconds differ
    assert (got.hop, got.window, got.duration) == (ref.hop, ref.window, ref.duration)
    assert got.meta == ref.meta


def test_vggish_stream_short_audio_is_padded_like_tag(tag_models, tmp_path):  # noqa: F811
    from audiotagger.errors import AudioTaggerWarning
    from audiotagger.tag.tagger import load_tagger

    ckpt, pca, clf = tag_models
    tagger = load_tagger(clf, checkpoint=ckpt, pca_params=pca)
    x = 0.1 * np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    wav = tmp_path / "half.wav"
    sf.write(wav, x, 16000, subtype="FLOAT")
    with pytest.warns(AudioTaggerWarning):
        ref = tagger.tag(wav)
    stream = tagger.stream()
    assert stream.push(x[:3000]) == [] and stream.push(x[3000:]) == []
    with pytest.warns(AudioTaggerWarning):
        rows = stream.close()
    np.testing.assert_allclose(stream.result(rows, str(wav)).probs, ref.probs, atol=1e-5)


def test_panns_stream_equals_tag(tmp_path):
    from audiotagger.tag.tagger import load_backend

    pth = write_pth(tmp_path / "Cnn6_mAP=0.343.pth", {"model": panns_state_dict("cnn6", 11)})
    backend = load_backend(str(pth), model_dir=tmp_path / "cache", batch_size=4)
    path = shared_file("audio", "R9_ZSCveAHg_7s.wav")
    ref = backend.tag(path, sample_duration=1.0, hop_duration=0.5)
    stream = backend.stream(sample_duration=1.0, hop_duration=0.5)
    assert stream.sample_rate == 32000
    rows = _push_file(stream, path, 0.1)
    got = stream.result(rows, str(path))
    np.testing.assert_allclose(got.times, ref.times)
    np.testing.assert_allclose(got.probs, ref.probs, rtol=0, atol=1e-5)
    assert got.duration == pytest.approx(ref.duration) and got.meta == ref.meta
    np.testing.assert_allclose(got.extras["time"], ref.extras["time"])


def test_example_stream_chunk_ending_between_two_examples(rng):
    """A chunk that ends in the 400 samples between two 1 s examples must not shift the next one."""
    from audiotagger.vggish.features import ExampleStream, waveform_to_examples

    x = (0.1 * rng.standard_normal(80000)).astype(np.float32)
    ref = waveform_to_examples(x, 16000)
    for cuts in ([15800, 31900, 47700], [15601, 15602, 31999, 32000, 63800]):
        stream = ExampleStream(1.0)
        got = np.concatenate([stream.push(part) for part in np.split(x, cuts)] + [stream.finish()])
        np.testing.assert_array_equal(got, ref)


def test_vggish_batch_of_one_equals_batched(tag_models):  # noqa: F811
    """One example alone gets the numbers it gets inside a batch (a live stream embeds one per second)."""
    from audiotagger.tag.tagger import load_tagger
    from audiotagger.vggish.features import waveform_to_examples

    ckpt, pca, clf = tag_models
    runner = load_tagger(clf, checkpoint=ckpt, pca_params=pca).embedder.runner
    x = 0.1 * np.random.default_rng(5).standard_normal(5 * 16000)
    examples = waveform_to_examples(x, 16000)
    batched = runner(examples)
    alone = np.concatenate([runner(examples[i:i + 1]) for i in range(len(examples))])
    np.testing.assert_array_equal(alone, batched)


@pytest.mark.parametrize("hop", [1.0, 0.48, 0.75])
def test_yamnet_stream_equals_tag(tmp_path, hop):
    """YAMNet (seeded weights in the official layout): rows of max-over-centred-patches, or the patches."""
    from audiotagger.tag.tagger import load_backend
    from audiotagger.yamnet.weights import write_weights
    from tests.test_yamnet import _random_weights

    h5 = write_weights(_random_weights(np.random.default_rng(4)), tmp_path / "yamnet.h5")
    backend = load_backend(str(h5), batch_size=8)
    path = shared_file("audio", "R9_ZSCveAHg_7s.wav")
    ref = backend.tag(path, hop_duration=hop)
    stream = backend.stream(hop_duration=hop)
    assert stream.sample_rate == 16000
    rows = _push_file(stream, path, 0.1)
    got = stream.result(rows, str(path))
    np.testing.assert_allclose(got.times, ref.times)
    np.testing.assert_allclose(got.probs, ref.probs, rtol=0, atol=1e-5)
    assert got.mids == ref.mids and got.probs.shape[1] == 521 and got.duration == pytest.approx(ref.duration)
    assert {k: got.meta[k] for k in ("backend", "hop_duration")} == {"backend": "yamnet", "hop_duration": hop}
