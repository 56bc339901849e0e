"""The VGGish network in Keras 3, layer for layer as Google's ``vggish_slim.py`` (SPEC §2.8).

Input ``(batch, 96, 64)`` log-mel examples, output the **pre-activation** 128-d embedding of ``fc2``
(the released AudioSet features were computed before any ReLU; PR tensorflow/models#9080). Layer names
follow the checkpoint's scopes with ``/`` replaced by ``_`` so that :mod:`.checkpoint` maps them 1:1.

Inference goes through :class:`VGGishRunner`: a ``tf.function`` traced once and called on batches
of examples. ``model.predict`` costs a per-call overhead that halves throughput on small inputs (DESIGN.md).
"""

from __future__ import annotations

import numpy as np

from . import params as P

CONV_LAYERS = (
    ("conv1", 64), ("pool1", None),
    ("conv2", 128), ("pool2", None),
    ("conv3_1", 256), ("conv3_2", 256), ("pool3", None),
    ("conv4_1", 512), ("conv4_2", 512), ("pool4", None),
)
"""(name, filters) of the convolutional part; ``None`` marks a 2x2 max-pool."""
DENSE_LAYERS = (("fc1_1", 4096, "relu"), ("fc1_2", 4096, "relu"), ("fc2", P.EMBEDDING_SIZE, None))
"""(name, units, activation) of the fully connected part; ``fc2`` has no activation."""

LAYER_VARIABLES = {
    "conv1": "vggish/conv1", "conv2": "vggish/conv2",
    "conv3_1": "vggish/conv3/conv3_1", "conv3_2": "vggish/conv3/conv3_2",
    "conv4_1": "vggish/conv4/conv4_1", "conv4_2": "vggish/conv4/conv4_2",
    "fc1_1": "vggish/fc1/fc1_1", "fc1_2": "vggish/fc1/fc1_2", "fc2": "vggish/fc2",
}
"""Keras layer name -> checkpoint scope holding its ``weights`` and ``biases``."""

DEFAULT_BATCH_SIZE = 16
"""Examples per call: measured as fast as 32 or 64 here, with half or a quarter of the activation
memory (each example holds 1.6 MB at conv1); keeps a long file's peak RSS under 1 GiB."""


def build_vggish(seed: int | None = None):
    """Build the Keras VGGish model.

    Parameters
    ----------
    seed : int, optional
        Seed of a random initialisation (truncated normal, sigma 0.01, biases 0, as the original
        training); for tests and benchmarks. None (the default, used before loading a checkpoint)
        initialises with zeros, which skips drawing 72 million random numbers.

    Returns
    -------
    keras.Model
        ``(batch, 96, 64) float32 -> (batch, 128) float32`` (pre-activation embedding).
    """
    import keras
    from keras import layers

    init = "zeros" if seed is None else keras.initializers.TruncatedNormal(stddev=P.INIT_STDDEV, seed=seed)
    inputs = keras.Input((P.NUM_FRAMES, P.NUM_BANDS), name="input_features")
    x = layers.Reshape((P.NUM_FRAMES, P.NUM_BANDS, 1), name="reshape")(inputs)
    for name, filters in CONV_LAYERS:
        if filters is None:
            x = layers.MaxPooling2D(2, strides=2, padding="same", name=name)(x)
        else:
            x = layers.Conv2D(filters, 3, strides=1, padding="same", activation="relu", name=name,
                              kernel_initializer=init)(x)
    x = layers.Flatten(name="flatten")(x)
    for name, units, activation in DENSE_LAYERS:
        x = layers.Dense(units, activation=activation, name=name, kernel_initializer=init)(x)
    return keras.Model(inputs, x, name="vggish")


class VGGishRunner:
    """Run a VGGish Keras model on any number of examples through one compiled function.

    Parameters
    ----------
    model : keras.Model
        From :func:`build_vggish` (weights loaded).
    batch_size : int
        Most examples per call. The function is traced once with a free batch dimension (measured
        as fast as a fixed shape here, and no padding is wasted on a short last batch).
    """

    def __init__(self, model, batch_size: int = DEFAULT_BATCH_SIZE):
        import tensorflow as tf

        if batch_size < 1:
            from ..errors import ParameterError

            raise ParameterError(f"batch_size: must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)
        spec = tf.TensorSpec((None, P.NUM_FRAMES, P.NUM_BANDS), tf.float32)
        self._call = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def __call__(self, examples: np.ndarray) -> np.ndarray:
        """Embed examples.

        Parameters
        ----------
        examples : np.ndarray [shape=(n, 96, 64)]
            Log-mel examples.

        Returns
        -------
        np.ndarray [shape=(n, 128), dtype=float32]
            Pre-activation embeddings.
        """
        examples = np.asarray(examples, dtype=np.float32)
        out = np.empty((len(examples), P.EMBEDDING_SIZE), np.float32)
        for start in range(0, len(examples), self.batch_size):
            batch = np.ascontiguousarray(examples[start:start + self.batch_size])
            if len(batch) == 1:
                # A batch of one takes another kernel (a matrix-vector product) whose rounding differs
                # by up to 6e-5; with two rows every example gets the same numbers however the examples
                # are batched, so a file and a live stream of it (one example per second) agree.
                out[start] = self._call(np.concatenate([batch, batch])).numpy()[0]
                continue
            out[start:start + len(batch)] = self._call(batch).numpy()
        return out
