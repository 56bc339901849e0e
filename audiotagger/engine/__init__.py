"""Inference engines at the network-call boundary: TensorFlow (the reference) or ONNX Runtime.

Every network the tagger runs (VGGish, the attention classifier, PANNs, YAMNet) is called through one small
interface: a callable on a float32/uint8 batch that returns numpy arrays. ``--engine tf`` runs the
Keras model through ``tf.function``; ``--engine onnx`` (the default) runs an ONNX graph built from the
same converted weights with the ``onnx`` helper API (:mod:`.graphs`), cached once per weight content
(:mod:`.store`), on ONNX Runtime (:mod:`.runtime`), without importing TensorFlow. Nothing heavy is
imported here.
"""

from __future__ import annotations

from ..errors import ParameterError

ENGINES = ("onnx", "tf")
"""``--engine`` choices."""
DEFAULT_ENGINE = "onnx"
"""ONNX Runtime: equal to the TensorFlow engine within 1e-5 (tests/test_engine_*.py), no TF import."""
PRECISIONS = ("fp32", "int8")
"""``--precision`` choices (int8: ONNX Runtime static quantisation; onnx engine only)."""
DEFAULT_PRECISION = "fp32"


def check_engine(engine: str | None, precision: str | None = None) -> tuple[str, str]:
    """Validate ``--engine`` and ``--precision``; return them with defaults filled in.

    Raises
    ------
    ParameterError
        Unknown name, or int8 with the TensorFlow engine.
    """
    engine = DEFAULT_ENGINE if engine is None else str(engine).lower()
    precision = DEFAULT_PRECISION if precision is None else str(precision).lower()
    if engine not in ENGINES:
        raise ParameterError(f"--engine: unknown {engine!r} (choose from {', '.join(ENGINES)})")
    if precision not in PRECISIONS:
        raise ParameterError(f"--precision: unknown {precision!r} (choose from {', '.join(PRECISIONS)})")
    if precision != "fp32" and engine != "onnx":
        raise ParameterError(f"--precision {precision}: only with --engine onnx")
    return engine, precision
