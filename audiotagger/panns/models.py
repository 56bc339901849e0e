"""Keras versions of the PANNs CNN14, CNN10 and CNN6 audio taggers (inference only).

Layer for layer as ``pytorch/models.py`` of ``qiuqiangkong/audioset_tagging_cnn`` (SPEC §7.2), in
channels-last layout: the input is the log-mel spectrogram ``(batch, frames, 64)`` from
:func:`audiotagger.panns.frontend.logmel`; the checkpoint's ``bn0`` normalises each mel bin, then the
convolution blocks see ``(batch, frames, mel, channels)``. Every layer is named after the PyTorch
module it mirrors with ``.`` replaced by ``_`` (``conv_block1.bn2`` → ``conv_block1_bn2``), which is
how :mod:`audiotagger.panns.checkpoint` maps a state dict onto the model.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from . import params
from .params import ARCHITECTURES, Architecture, Block, get_architecture  # noqa: F401  (re-exported)


@keras.saving.register_keras_serializable(package="audiotagger.panns")
class ClipPooling(layers.Layer):
    """PANNs' global pooling: mean over frequency, then max + mean over time.

    Input ``(batch, frames, mel, channels)``; output ``(batch, channels)``.
    """

    def call(self, x):
        """Pool a feature map to one vector per clip."""
        x = ops.mean(x, axis=2)
        return ops.max(x, axis=1) + ops.mean(x, axis=1)

    def compute_output_shape(self, input_shape):
        """Return ``(batch, channels)``."""
        return (input_shape[0], input_shape[-1])


def _batch_norm(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(axis=-1, momentum=0.99, epsilon=params.BN_EPSILON, name=name)


def build_model(architecture: str = "cnn14", initializer: str | None = None) -> keras.Model:
    """Build a PANNs network (random weights; load a checkpoint with :mod:`~audiotagger.panns.checkpoint`).

    Parameters
    ----------
    architecture : {"cnn14", "cnn10", "cnn6"}
        Which network.
    initializer : str, optional
        Keras initializer of every kernel (default: Keras' Glorot-uniform); ``"zeros"`` builds faster
        when a checkpoint overwrites the weights anyway.

    Returns
    -------
    keras.Model
        Input ``logmel`` float32 ``(batch, frames, 64)``; outputs a dict with ``clipwise_output``
        (sigmoid scores, ``(batch, 527)``) and ``embedding`` (``fc1`` after ReLU, ``(batch, 2048)`` for
        CNN14, ``(batch, 512)`` otherwise). Dropout layers are kept for fidelity and are inactive in
        inference. Every axis the pooling halves must keep at least one step, so ``frames`` must be at
        least :attr:`Architecture.min_frames` (32 for CNN14, 16 for CNN10/CNN6).
    """
    arch = get_architecture(architecture)
    init = initializer or "glorot_uniform"
    inputs = keras.Input(shape=(None, params.MEL_BINS), name="logmel", dtype="float32")
    x = _batch_norm("bn0")(inputs)
    x = layers.Reshape((-1, params.MEL_BINS, 1), name="add_channel")(x)
    for block in arch.blocks:
        for j in range(1, block.convs + 1):
            x = layers.Conv2D(block.channels, block.kernel, padding="same", use_bias=False,
                              kernel_initializer=init, name=f"{block.name}_conv{j}")(x)
            x = _batch_norm(f"{block.name}_bn{j}")(x)
            x = layers.ReLU(name=f"{block.name}_relu{j}")(x)
        if block.pool > 1:
            x = layers.AveragePooling2D(block.pool, name=f"{block.name}_pool")(x)
        x = layers.Dropout(0.2, name=f"{block.name}_dropout")(x)
    x = ClipPooling(name="clip_pooling")(x)
    x = layers.Dropout(0.5, name="dropout_pooled")(x)
    embedding = layers.Dense(arch.embedding_size, activation="relu", kernel_initializer=init, name="fc1")(x)
    x = layers.Dropout(0.5, name="dropout_embedding")(embedding)
    clipwise = layers.Dense(params.NUM_CLASSES, activation="sigmoid", kernel_initializer=init,
                            name="fc_audioset")(x)
    return keras.Model(inputs, {"clipwise_output": clipwise, "embedding": embedding}, name=arch.name)


def trainable_parameters(model: keras.Model) -> int:
    """Count the trainable parameters of ``model`` (batch-norm moving statistics excluded)."""
    return int(sum(int(ops.size(w)) for w in model.trainable_weights))
