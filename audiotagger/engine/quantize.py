"""int8 graphs: ONNX Runtime static quantisation of the fp32 graphs, calibrated on real recordings.

``--precision int8`` quantises each graph part with :func:`onnxruntime.quantization.quantize_static` (QDQ
format, int8 weights per output channel, uint8 activations, MinMax calibration). The calibration inputs
are the network's own inputs computed from recordings: VGGish log-mel examples (one per second), PANNs
log-mel windows (2 s every second) or YAMNet log-mel patches (0.96 s every 0.48 s); a late part is
calibrated on the fp32 early part's outputs for the same inputs. The recordings come from
``calibration`` (a folder or list of audio files), by default the folder named by
``$AUDIOTAGGER_CALIBRATION``. The result is cached like every graph (keyed by the fp32
graphs and the calibration files' content) so the quantisation runs once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from .store import cached_graphs, content_digest, file_identity

CALIBRATION_ENV = "AUDIOTAGGER_CALIBRATION"
"""Folder of recordings used to calibrate int8 graphs when no ``calibration`` is given."""
CALIBRATION_EXAMPLES = 240
"""Most calibration inputs (spread evenly over the recordings)."""
CALIBRATION_BATCH = 16
AUDIO_SUFFIXES = frozenset(".wav .flac .ogg .oga .opus .mp3 .m4a .aac .aif .aiff".split())
"""Files of a calibration folder that are used."""


def calibration_files(calibration: str | os.PathLike | Sequence | None = None) -> list[Path]:
    """Resolve the calibration recordings (a folder, a list of files, or ``$AUDIOTAGGER_CALIBRATION``).

    Raises
    ------
    ParameterError
        None given and the variable is unset, or no audio file found.
    """
    if calibration is None:
        calibration = os.environ.get(CALIBRATION_ENV)
    if not calibration:
        raise ParameterError(f"--precision int8: the int8 graphs are calibrated once on real recordings; "
                             f"set {CALIBRATION_ENV} to a folder of audio files")
    items = [calibration] if isinstance(calibration, str | os.PathLike) else list(calibration)
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        elif item.is_file():
            files.append(item)
    if not files:
        raise ParameterError(f"--precision int8: no audio files in {calibration}")
    return files


def calibration_inputs(kind: str, files: Sequence[Path], limit: int | None = None) -> np.ndarray:
    """The network inputs of ``kind`` (``vggish``, ``yamnet``, ``panns-*``) from ``files``, at most ``limit``.

    Returns
    -------
    np.ndarray
        VGGish: log-mel examples ``(n, 96, 64)``; YAMNet: log-mel patches ``(n, 96, 64)``; PANNs: log-mel
        windows ``(n, 201, 64)`` (2 s).
    """
    from ..audio import load_audio

    parts = []
    for path in files:
        if kind == "vggish":
            from ..vggish.features import waveform_to_examples

            parts.append(waveform_to_examples(load_audio(path, 16000), 16000, hop=1.0))
        elif kind == "yamnet":
            from ..yamnet.features import waveform_to_patches

            parts.append(waveform_to_patches(load_audio(path, 16000)))
        else:
            from ..panns import params as pp
            from ..panns.frontend import logmel

            x = load_audio(path, pp.SAMPLE_RATE)
            window = int(pp.DEFAULT_SAMPLE_DURATION * pp.SAMPLE_RATE)
            starts = range(0, max(1, len(x) - window + 1), pp.SAMPLE_RATE)
            windows = np.stack([np.pad(x[s:s + window], (0, max(0, s + window - len(x)))) for s in starts])
            parts.append(logmel(windows))
    x = np.concatenate(parts).astype(np.float32)
    limit = limit or CALIBRATION_EXAMPLES
    if len(x) > limit:
        x = x[np.linspace(0, len(x) - 1, limit).round().astype(int)]
    return x


class _Reader:
    """``CalibrationDataReader`` over a fixed array, in batches."""

    def __init__(self, name: str, x: np.ndarray):
        step = CALIBRATION_BATCH
        self._batches = iter([{name: x[i:i + step]} for i in range(0, len(x), step)])

    def get_next(self):
        return next(self._batches, None)


def quantize_parts(source: Path, target: Path, parts: Sequence[str], x: np.ndarray) -> None:
    """Quantise ``source/<part>.onnx`` into ``target`` in order, each calibrated on its own inputs."""
    import logging

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from .runtime import session

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its pre-processing hints
    for i, part in enumerate(parts):
        fp32 = session(source / f"{part}.onnx")
        name = fp32.get_inputs()[0].name
        quantize_static(str(source / f"{part}.onnx"), str(target / f"{part}.onnx"), _Reader(name, x),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        use_external_data_format=True)
        if i + 1 < len(parts):
            x = np.concatenate([fp32.run(None, {name: x[j:j + CALIBRATION_BATCH]})[0]
                                for j in range(0, len(x), CALIBRATION_BATCH)])


def quantized_graphs(kind: str, fp32: Path, parts: Sequence[str], model_dir=None, calibration=None) -> Path:
    """Folder of int8 graphs for the fp32 graphs in ``fp32`` (built once per calibration set).

    Parameters
    ----------
    kind : str
        ``vggish``, ``yamnet`` or ``panns-<architecture>``.
    fp32 : pathlib.Path
        The checked fp32 folder (:mod:`.models`).
    parts : sequence of str
        Graph parts, in network order.
    model_dir : path-like, optional
        Model cache folder.
    calibration : path-like or sequence, optional
        Recordings (see :func:`calibration_files`).
    """
    files = calibration_files(calibration)
    tag = f"{fp32.name}|minmax-qdq-u8s8|{CALIBRATION_EXAMPLES}"

    def build(folder: Path) -> dict:
        quantize_parts(fp32, folder, parts, calibration_inputs(kind, files))
        return {"calibration": [str(f) for f in files]}

    folder, _ = cached_graphs(f"{kind}-int8", file_identity(*files, extra=tag), tuple(parts),
                              lambda: content_digest(*files, extra=tag), build, model_dir)
    return folder
