"""Keras YAMNet: the official ``yamnet.py`` network (MobileNet v1 on 96×64 log-mel patches).

Layer for layer as ``research/audioset/yamnet/yamnet.py`` of tensorflow/models: ``layer1`` is a 3×3
convolution, ``layer2`` … ``layer14`` are depthwise-separable blocks, each convolution followed by batch
norm (``center=True, scale=False``, epsilon 1e-4) and ReLU; then a global average (the 1024-d embedding)
and a dense layer with a sigmoid over the 521 classes. Keras 3 refuses ``/`` in layer names, so every
official name is spelt with ``.`` instead (``layer2/depthwise_conv/bn`` → ``layer2.depthwise_conv.bn``;
:func:`keras_name`); :mod:`audiotagger.yamnet.weights` maps the official file onto them one to one.

:func:`build_waveform_model` wraps the network with the front end in TensorFlow operations (waveform in,
scores out) for export to TFLite/ONNX.
"""

from __future__ import annotations

import keras
from keras import layers

from . import params


def keras_name(official: str) -> str:
    """The Keras layer name of an official layer name (``/`` → ``.``)."""
    return official.replace("/", ".")


def _bn(name: str):
    return layers.BatchNormalization(center=True, scale=False, epsilon=params.BATCHNORM_EPSILON,
                                     name=keras_name(name))


def build_model(initializer: str | None = None) -> keras.Model:
    """Build the YAMNet network (random weights; fill it with :func:`audiotagger.yamnet.weights.load_model`).

    Parameters
    ----------
    initializer : str, optional
        Kernel initializer (default Keras' Glorot-uniform); ``"zeros"`` builds faster when weights are
        loaded anyway.

    Returns
    -------
    keras.Model
        Input ``patches`` float32 ``(batch, 96, 64)`` (log-mel, :mod:`audiotagger.yamnet.features`);
        outputs a dict: ``scores`` ``(batch, 521)`` sigmoid, ``embeddings`` ``(batch, 1024)`` and
        ``logits`` ``(batch, 521)``.
    """
    init = initializer or "glorot_uniform"
    inputs = keras.Input(shape=(params.PATCH_FRAMES, params.MEL_BANDS), name="patches", dtype="float32")
    x = layers.Reshape((params.PATCH_FRAMES, params.MEL_BANDS, 1), name="reshape")(inputs)
    for i, layer in enumerate(params.LAYERS, start=1):
        if layer.kind == "conv":
            x = layers.Conv2D(layer.filters, layer.kernel, strides=layer.stride, padding=params.CONV_PADDING,
                              use_bias=False, kernel_initializer=init, name=keras_name(f"layer{i}/conv"))(x)
            x = _bn(f"layer{i}/conv/bn")(x)
            x = layers.ReLU(name=keras_name(f"layer{i}/relu"))(x)
            continue
        x = layers.DepthwiseConv2D(layer.kernel, strides=layer.stride, depth_multiplier=1,
                                   padding=params.CONV_PADDING, use_bias=False, depthwise_initializer=init,
                                   name=keras_name(f"layer{i}/depthwise_conv"))(x)
        x = _bn(f"layer{i}/depthwise_conv/bn")(x)
        x = layers.ReLU(name=keras_name(f"layer{i}/depthwise_conv/relu"))(x)
        x = layers.Conv2D(layer.filters, 1, strides=1, padding=params.CONV_PADDING, use_bias=False,
                          kernel_initializer=init, name=keras_name(f"layer{i}/pointwise_conv"))(x)
        x = _bn(f"layer{i}/pointwise_conv/bn")(x)
        x = layers.ReLU(name=keras_name(f"layer{i}/pointwise_conv/relu"))(x)
    embeddings = layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    logits = layers.Dense(params.NUM_CLASSES, use_bias=True, kernel_initializer=init,
                          name=params.CLASSIFIER_LAYER)(embeddings)
    scores = layers.Activation(params.CLASSIFIER_ACTIVATION, name="scores")(logits)
    return keras.Model(inputs, {"scores": scores, "embeddings": embeddings, "logits": logits}, name="yamnet")


@keras.saving.register_keras_serializable(package="audiotagger.yamnet")
class LogMelPatches(layers.Layer):
    """The YAMNet front end in TensorFlow operations: 16 kHz waveform ``(samples,)`` → ``(n, 96, 64)``.

    Pads as the official ``pad_waveform`` (so ``n = 1 + ceil(max(0, samples - 15600) / 7680)``), then
    the same STFT magnitude, mel matrix, log and patch framing as :mod:`audiotagger.yamnet.features`.
    Used to export a waveform → scores model; tagging uses the numpy front end.
    """

    def call(self, waveform):
        """Compute the log-mel patches of one waveform."""
        import tensorflow as tf

        from .features import mel_matrix

        x = tf.reshape(tf.cast(waveform, tf.float32), [-1])
        n = tf.shape(x)[0]
        first = params.PATCH_SAMPLES
        longer = tf.maximum(n, first) - first
        hops = (longer + params.PATCH_HOP_SAMPLES - 1) // params.PATCH_HOP_SAMPLES
        x = tf.pad(x, [[0, first + hops * params.PATCH_HOP_SAMPLES - n]])
        frames = tf.signal.frame(x, params.WINDOW_SAMPLES, params.HOP_SAMPLES)
        window = tf.signal.hann_window(params.WINDOW_SAMPLES, periodic=True)
        spec = tf.abs(tf.signal.rfft(frames * window, [params.FFT_LENGTH]))
        logmel = tf.math.log(tf.matmul(spec, tf.constant(mel_matrix())) + params.LOG_OFFSET)
        return tf.signal.frame(logmel, params.PATCH_FRAMES, params.PATCH_HOP_FRAMES, axis=0)

    def compute_output_shape(self, input_shape):
        """Return ``(None, 96, 64)``."""
        return (None, params.PATCH_FRAMES, params.MEL_BANDS)


def build_waveform_model(network: keras.Model, samples: int | None = params.PATCH_SAMPLES,
                         output: str = "scores") -> keras.Model:
    """Waveform → per-patch scores: :class:`LogMelPatches` followed by a loaded network.

    Parameters
    ----------
    network : keras.Model
        A network built by :func:`build_model` (weights loaded), or any model whose input is a batch
        of ``(96, 64)`` log-mel patches and whose output (or output ``output`` of a dict) is the scores.
    samples : int or None
        Fixed input length (default 15,600 = one patch, as Google's classification TFLite model);
        None accepts any length.
    output : str
        Output of ``network`` to expose when it returns a dict.

    Returns
    -------
    keras.Model
        Input ``waveform`` float32 ``(samples,)`` at 16 kHz; output ``(patches, classes)``.
    """
    waveform = keras.Input(batch_shape=(samples,), name="waveform", dtype="float32")
    patches = LogMelPatches(name="log_mel_patches")(waveform)
    out = network(patches)
    if isinstance(out, dict):
        out = out[output]
    return keras.Model(waveform, out, name=f"{network.name}_waveform")
