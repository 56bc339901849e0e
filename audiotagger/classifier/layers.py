"""Registered Keras layers of the attention classifiers (they save and reload without ``Lambda``)."""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "audiotagger"


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionPooling(keras.layers.Layer):
    """Decision-level attention pooling over time (SPEC §4.1).

    ``att`` is clipped to ``[eps, 1 - eps]``, normalised over time, ``w[t, c] = att[t, c] / sum_t att[t, c]``,
    and used to average the per-second outputs: ``out[c] = sum_t w[t, c] * cla[t, c]``.

    Call arguments
    --------------
    inputs : list of two tensors, each (batch, time, features)
        ``[cla, att]``.

    Returns
    -------
    tensor, shape (batch, features)
    """

    def __init__(self, eps: float = 1e-7, **kwargs):
        super().__init__(**kwargs)
        self.eps = float(eps)

    def call(self, inputs):
        """Pool ``[cla, att]`` over the time axis."""
        cla, att = inputs
        att = ops.clip(att, self.eps, 1.0 - self.eps)
        weights = att / ops.sum(att, axis=1, keepdims=True)
        return ops.sum(weights * cla, axis=1)

    def compute_output_shape(self, input_shape):
        """Drop the time axis."""
        shape = input_shape[0]
        return (shape[0], shape[2])

    def get_config(self):
        """Serialisable configuration."""
        return {**super().get_config(), "eps": self.eps}
