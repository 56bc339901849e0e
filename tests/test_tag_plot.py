import numpy as np
import soundfile as sf

from audiotagger.tag.plot import spectrogram
from audiotagger.vggish.features import log_mel_frames


def test_streamed_spectrogram_matches_one_shot(tmp_path, rng):
    x = (0.1 * rng.standard_normal(16000 * 70)).astype(np.float32)
    sf.write(tmp_path / "noise.wav", x, 16000, subtype="FLOAT")
    spec, step = spectrogram(tmp_path / "noise.wav", duration=35.0)       # 3500 frames: no pooling
    assert step == 0.01
    np.testing.assert_allclose(spec.T, log_mel_frames(x), rtol=1e-4, atol=1e-4)
    pooled, step = spectrogram(tmp_path / "noise.wav", duration=70.0)     # 7000 frames -> pairs
    assert step == 0.02 and pooled.shape == (64, (log_mel_frames(x).shape[0] + 1) // 2)
    np.testing.assert_allclose(pooled[:, 0], log_mel_frames(x)[:2].mean(axis=0), rtol=1e-4, atol=1e-4)
