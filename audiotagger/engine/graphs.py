"""ONNX graphs of the networks, written layer by layer from their converted weights.

Each builder takes a :class:`~.builder.GraphBuilder` and named weights (numpy arrays or ``h5py``
datasets, read one at a time) and adds the network, mirroring its Keras definition:

- :func:`vggish_conv` / :func:`vggish_dense`: VGGish split in two graphs, six 3×3 convolutions (ReLU)
  and four 2×2 max-pools ``(n, 96, 64) -> (n, 12288)`` in slim's H, W, C flatten order, then three
  dense layers ``(n, 12288) -> (n, 128)`` (pre-activation ``fc2``), so the convolutions can run on
  small batches and the 268 MB of dense weights on a large gathered batch (:mod:`.runtime`).
- :func:`classifier_graph`: every attention classifier type of :mod:`audiotagger.classifier.models`
  (uint8 windows ``(n, 10, 128)`` in, probabilities out; batch norms folded, dropout dropped).
- :func:`panns_graph`: PANNs CNN14/10/6 from the log-mel ``(n, frames, 64)`` (``bn0`` included), split
  like VGGish at :data:`PANNS_SPLIT` (the late, heavy blocks and ``fc1`` on a gathered batch).
- :func:`yamnet_graph`: YAMNet (MobileNet v1) from log-mel patches ``(n, 96, 64)`` to ``scores``
  ``(n, 521)`` and ``embeddings`` ``(n, 1024)``, from the official ``yamnet.h5`` layer names; TensorFlow's
  ``SAME`` padding written out as explicit (asymmetric) pads, batch norms folded into the convolutions
  with the constants the Keras layer computes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .builder import GraphBuilder, batch_norm_affine

FLOAT, UINT8 = 1, 2
"""``onnx.TensorProto`` element types used here (kept numeric so this module imports no onnx)."""

VGGISH_CONV_OUT = 12288
"""Width of VGGish's flattened ``pool4`` output (6 × 4 × 512)."""


# --- VGGish ---------------------------------------------------------------------------------------

def vggish_conv(b: GraphBuilder, weights: Mapping) -> None:
    """Add VGGish's convolutional part: input ``examples`` (n, 96, 64) → output ``features`` (n, 12288).

    ``weights`` maps the checkpoint names (``vggish/conv1/weights`` [kh, kw, in, out], ``.../biases``).
    """
    from ..vggish import params as P
    from ..vggish.model import CONV_LAYERS, LAYER_VARIABLES

    x = b.input("examples", FLOAT, ["batch", P.NUM_FRAMES, P.NUM_BANDS])
    x = b.node("Reshape", [x, b.const([-1, 1, P.NUM_FRAMES, P.NUM_BANDS])], "nchw")
    for name, filters in CONV_LAYERS:
        if filters is None:
            x = b.node("MaxPool", [x], name, kernel_shape=[2, 2], strides=[2, 2])
            continue
        scope = LAYER_VARIABLES[name]
        kernel = np.asarray(weights[f"{scope}/weights"], np.float32).transpose(3, 2, 0, 1)  # → OIHW
        w = b.weight(f"{scope}/weights", kernel)
        bias = b.weight(f"{scope}/biases", np.asarray(weights[f"{scope}/biases"], np.float32))
        x = b.node("Conv", [x, w, bias], name, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
        x = b.node("Relu", [x], name)
    x = b.node("Transpose", [x], "nhwc", perm=[0, 2, 3, 1])  # slim flattens H, W, C
    x = b.node("Reshape", [x, b.const([-1, VGGISH_CONV_OUT])], "flatten")
    b.output(x, "features", FLOAT, ["batch", VGGISH_CONV_OUT])


def vggish_dense(b: GraphBuilder, weights: Mapping) -> None:
    """Add VGGish's dense part: input ``features`` (n, 12288) → output ``embedding`` (n, 128)."""
    from ..vggish import params as P
    from ..vggish.model import DENSE_LAYERS, LAYER_VARIABLES

    x = b.input("features", FLOAT, ["batch", VGGISH_CONV_OUT])
    for name, _units, activation in DENSE_LAYERS:
        scope = LAYER_VARIABLES[name]
        w = b.weight(f"{scope}/weights", weights[f"{scope}/weights"])
        bias = b.weight(f"{scope}/biases", weights[f"{scope}/biases"])
        x = b.node("Gemm", [x, w, bias], name)
        x = b.activation(x, activation)
    b.output(x, "embedding", FLOAT, ["batch", P.EMBEDDING_SIZE])


# --- attention classifier -------------------------------------------------------------------------

KERAS_BN_EPSILON = 1e-3
"""Keras' ``BatchNormalization`` default epsilon (the classifier builders keep it)."""


def _layer_weights(named: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for path, value in named.items():
        layer, _, var = str(path).rpartition("/")
        out.setdefault(layer.rpartition("/")[2] if "/" in layer else layer, {})[var] = np.asarray(value)
    return out


def classifier_graph(b: GraphBuilder, config: dict, named: Mapping[str, np.ndarray]) -> None:
    """Add an attention classifier: input ``windows`` uint8 (n, 10, 128) → ``probs`` (n, classes).

    Parameters
    ----------
    b : GraphBuilder
    config : dict
        The stored model config (:func:`audiotagger.classifier.models.model_config` keys), or an
        ensemble's (``ensemble``: the member configs; its output is the mean of the members').
    named : mapping
        Keras weight path (``dense_1/kernel``, ``bn0/moving_mean`` ...; ``member_0/dense_1/kernel`` ... in
        an ensemble) → array.
    """
    from ..classifier.models import MEMBER_PREFIX, ensemble_config
    from ..params import CLIP_SECONDS, EMBEDDING_SIZE, NUM_CLASSES

    q = b.input("windows", UINT8, ["batch", CLIP_SECONDS, EMBEDDING_SIZE])
    x = b.node("Cast", [q], "scaled", to=FLOAT)
    x = b.node("Sub", [b.node("Div", [x, b.const(128.0, np.float32)]), b.const(1.0, np.float32)], "scaled")
    if "ensemble" in config:
        members = ensemble_config(config["ensemble"])["ensemble"]
        outs = []
        for i, member in enumerate(members):
            prefix = f"{MEMBER_PREFIX}{i}/"
            mine = {k[len(prefix):]: v for k, v in named.items() if str(k).startswith(prefix)}
            outs.append(_classifier_body(b, member, mine, x, prefix))
        out = outs[0] if len(outs) == 1 else b.node("Mean", outs, "ensemble")
        n_out = members[0]["num_classes"]
    else:
        out = _classifier_body(b, config, named, x, "")
        n_out = int(config.get("num_classes", NUM_CLASSES))
    b.output(out, "probs", FLOAT, ["batch", n_out])


def _classifier_body(b: GraphBuilder, config: dict, named: Mapping[str, np.ndarray], x: str,
                     prefix: str) -> str:
    """One attention classifier on the scaled input ``x``; returns its probabilities' tensor name."""
    from ..classifier.models import model_config
    from ..params import EMBEDDING_SIZE

    keys = ("model_type", "levels", "hidden_units", "dropout", "attention", "num_classes")
    cfg = model_config(**{k: config[k] for k in keys if k in config})
    w = _layer_weights(named)

    def dense(x, layer, activation=None):
        return b.dense(x, w[layer]["kernel"], w[layer].get("bias"), activation, prefix=prefix + layer)

    def bn(x, layer):
        p = w[layer]
        scale, shift = batch_norm_affine(p["gamma"], p["beta"], p["moving_mean"], p["moving_variance"],
                                         KERAS_BN_EPSILON)
        return b.affine(x, scale, shift, prefix + layer)

    def pool(cla, att, eps=1e-7):
        att = b.node("Clip", [att, b.const(eps, np.float32), b.const(1.0 - eps, np.float32)], "att_clip")
        total = b.node("ReduceSum", [att, b.const([1])], "att_sum", keepdims=1)
        weights = b.node("Div", [att, total], "att_w")
        return b.node("ReduceSum", [b.node("Mul", [weights, cla]), b.const([1])], "pooled", keepdims=0)

    first = w.get("dense_1", {}).get("kernel")
    if first is None or first.shape != (EMBEDDING_SIZE, cfg["hidden_units"]):
        raise ValueError(f"{prefix}dense_1/kernel has shape {None if first is None else first.shape}, the "
                         f"config needs {(EMBEDDING_SIZE, cfg['hidden_units'])}")
    x = bn(x, "bn0")
    hidden = []
    for i in (1, 2, 3):
        if f"dense_{i}" not in w:   # levels [1] or [1, 2]: Keras keeps only the layers the output uses
            break
        x = b.node("Relu", [bn(dense(x, f"dense_{i}"), f"bn_{i}")])
        hidden.append(x)
    kind, att_act = cfg["model_type"], cfg["attention"]
    if kind == "multi-level-attention":
        pooled = []
        for level in cfg["levels"]:
            h = hidden[level - 1]
            cla = b.activation(bn(dense(h, f"cla_{level}"), f"cla_{level}_bn"), "sigmoid")
            att = b.activation(bn(dense(h, f"att_{level}"), f"att_{level}_bn"), att_act)
            pooled.append(pool(cla, att))
        y = pooled[0] if len(pooled) == 1 else b.node("Concat", pooled, "concat", axis=-1)
        return b.activation(bn(dense(y, "output"), "output_bn"), "sigmoid")
    if kind == "single-attention":
        return pool(dense(x, "cla", "sigmoid"), dense(x, "att", att_act))
    if kind == "feature-attention":
        y = pool(dense(x, "cla"), dense(x, "att", "sigmoid"))
        y = b.node("Relu", [bn(y, "pool_bn")])
        return dense(y, "probs", "sigmoid")
    cla = dense(x, "cla", "sigmoid")
    op = "ReduceMean" if kind == "average" else "ReduceMax"
    return b.node(op, [cla], axes=[1], keepdims=0)


# --- PANNs ----------------------------------------------------------------------------------------

PANNS_SPLIT = {"cnn14": "conv_block5", "cnn10": "conv_block4", "cnn6": "conv_block4"}
"""First block of the ``late`` PANNs graph (its weights dominate: 280 MB of CNN14's 320 MB)."""


def panns_graph(b: GraphBuilder, architecture: str, weights: Mapping[str, list], part: str = "all") -> None:
    """Add a PANNs network (Keras-layout weights of :func:`audiotagger.panns.checkpoint.load_weights`).

    Parameters
    ----------
    b : GraphBuilder
    architecture : {"cnn14", "cnn10", "cnn6"}
    weights : mapping
        Keras layer name → list of arrays (convolutions ``(kh, kw, in, out)``, batch norms ``gamma,
        beta, moving_mean, moving_variance``, dense ``kernel, bias``).
    part : {"all", "early", "late"}
        ``all``: ``logmel`` (n, frames, 64) → ``clipwise_output`` (n, 527), ``embedding`` (n, width).
        ``early``: ``logmel`` → ``feature_map`` (n, channels, t, f) before block :data:`PANNS_SPLIT`;
        ``late``: ``feature_map`` → both outputs.
    """
    from ..panns import params as pp

    arch = pp.get_architecture(architecture)
    split = PANNS_SPLIT[arch.name]
    eps = pp.BN_EPSILON
    names = [blk.name for blk in arch.blocks]
    first = 0 if part in ("all", "early") else names.index(split)
    last = names.index(split) if part == "early" else len(names)

    if first == 0:
        x = b.input("logmel", FLOAT, ["batch", "frames", pp.MEL_BINS])
        g, beta, mean, var = weights["bn0"]
        x = b.affine(x, *batch_norm_affine(g, beta, mean, var, eps), "bn0")
        x = b.node("Unsqueeze", [x, b.const([1])], "nchw")
    else:
        cin = arch.blocks[first - 1].channels
        x = b.input("feature_map", FLOAT, ["batch", cin, "t", "f"])
    for block in arch.blocks[first:last]:
        for j in range(1, block.convs + 1):
            name = f"{block.name}_conv{j}"
            kernel = np.asarray(weights[name][0], np.float32).transpose(3, 2, 0, 1)
            pad = block.kernel // 2
            x = b.node("Conv", [x, b.weight(f"{name}/kernel", kernel)], name,
                       kernel_shape=[block.kernel] * 2, pads=[pad] * 4)
            g, beta, mean, var = (b.weight(f"{block.name}_bn{j}/{k}", v)
                                  for k, v in zip(("gamma", "beta", "mean", "var"),
                                                  weights[f"{block.name}_bn{j}"], strict=True))
            x = b.node("BatchNormalization", [x, g, beta, mean, var], f"{block.name}_bn{j}", epsilon=eps)
            x = b.node("Relu", [x])
        if block.pool > 1:
            x = b.node("AveragePool", [x], f"{block.name}_pool", kernel_shape=[block.pool] * 2,
                       strides=[block.pool] * 2)
    if part == "early":
        b.output(x, "feature_map", FLOAT, ["batch", arch.blocks[last - 1].channels, "t", "f"])
        return
    x = b.node("ReduceMean", [x], "freq_mean", axes=[3], keepdims=0)         # (n, C, t)
    x = b.node("Add", [b.node("ReduceMax", [x], "tmax", axes=[2], keepdims=0),
                       b.node("ReduceMean", [x], "tmean", axes=[2], keepdims=0)], "clip_pool")
    kernel, bias = weights["fc1"]
    emb = b.node("Relu", [b.node("Gemm", [x, b.weight("fc1/kernel", kernel), b.weight("fc1/bias", bias)])])
    kernel, bias = weights["fc_audioset"]
    logits = b.node("Gemm", [emb, b.weight("fc_audioset/kernel", kernel), b.weight("fc_audioset/bias", bias)])
    b.output(b.node("Sigmoid", [logits]), "clipwise_output", FLOAT, ["batch", pp.NUM_CLASSES])
    b.output(emb, "embedding", FLOAT, ["batch", arch.embedding_size])


# --- YAMNet ---------------------------------------------------------------------------------------

def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow's ``padding="same"`` along one axis: ``(output size, pad before, pad after)``.

    The output has ``ceil(size / stride)`` positions; the padding needed is split with the odd element
    *after* (a stride-2 3×3 convolution on an even size pads 0 before and 1 after, not 1 and 1).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def yamnet_graph(b: GraphBuilder, weights: Mapping[str, list]) -> None:
    """Add YAMNet: input ``patches`` (n, 96, 64) → outputs ``scores`` (n, 521), ``embeddings`` (n, 1024).

    Layer for layer as :func:`audiotagger.yamnet.model.build_model`: ``layer1`` a 3×3 convolution,
    ``layer2`` … ``layer14`` a depthwise 3×3 (``Conv`` with ``group`` = channels) and a pointwise 1×1
    convolution, each followed by its batch norm and ReLU; then the average over time and frequency (the
    embedding) and the 1024 → 521 logistic classifier. Each batch norm (``center=True, scale=False``) is
    folded into its convolution with the float32 constants the Keras layer multiplies by
    (:func:`~.builder.batch_norm_affine`: ``scale = rsqrt(var + eps)``, ``shift = beta - mean * scale``):
    kernel × scale per output channel, bias = shift. That is the fusion ONNX Runtime would apply to a
    separate ``Mul``/``Add`` anyway, and it leaves a plain ``Conv`` + ``Relu`` chain, which int8
    quantisation needs (a per-tensor int8 step on the unscaled convolution output would lose the
    channels that the batch norm scales up).

    Parameters
    ----------
    b : GraphBuilder
    weights : mapping
        Official layer name (``layer2/depthwise_conv``, ``layer2/depthwise_conv/bn``, ``dense``) → list
        of arrays in :func:`audiotagger.yamnet.params.weight_table` order (Keras layouts), as
        :func:`audiotagger.yamnet.weights.read_weights` returns them.
    """
    from ..yamnet import params as yp

    def conv_bn_relu(x, name, stride, group, hw):
        """Convolution ``name`` with its batch norm ``name/bn`` folded in, then ReLU.

        Keras kernels are (kh, kw, in, out), depthwise ones (kh, kw, C, 1).
        """
        k = np.asarray(weights[name][0], np.float32)
        w = k.transpose(2, 3, 0, 1) if group > 1 else k.transpose(3, 2, 0, 1)      # → OIHW, I = in / group
        beta, mean, var = weights[f"{name}/bn"]
        scale, shift = batch_norm_affine(np.ones_like(beta), beta, mean, var, yp.BATCHNORM_EPSILON)
        w = w * scale[:, None, None, None]
        (h, top, bottom), (wd, left, right) = (same_pads(hw[0], k.shape[0], stride),
                                               same_pads(hw[1], k.shape[1], stride))
        y = b.node("Conv", [x, b.weight(f"{name}/kernel", w), b.weight(f"{name}/bias", shift)], name,
                   kernel_shape=list(k.shape[:2]), strides=[stride, stride], pads=[top, left, bottom, right],
                   group=group)
        return b.node("Relu", [y], name), (h, wd)

    x = b.input("patches", FLOAT, ["batch", yp.PATCH_FRAMES, yp.MEL_BANDS])
    x = b.node("Unsqueeze", [x, b.const([1])], "nchw")                  # (n, 1, frames, bands)
    hw, channels = (yp.PATCH_FRAMES, yp.MEL_BANDS), 1
    for i, layer in enumerate(yp.LAYERS, start=1):
        if layer.kind == "conv":
            x, hw = conv_bn_relu(x, f"layer{i}/conv", layer.stride, 1, hw)
        else:
            x, hw = conv_bn_relu(x, f"layer{i}/depthwise_conv", layer.stride, channels, hw)
            x, hw = conv_bn_relu(x, f"layer{i}/pointwise_conv", 1, 1, hw)
        channels = layer.filters
    emb = b.node("ReduceMean", [x], "embedding", axes=[2, 3], keepdims=0)     # (n, 1024)
    kernel, bias = weights[yp.CLASSIFIER_LAYER]
    logits = b.node("Gemm", [emb, b.weight("dense/kernel", kernel), b.weight("dense/bias", bias)], "logits")
    b.output(b.node("Sigmoid", [logits]), "scores", FLOAT, ["batch", yp.NUM_CLASSES])
    b.output(emb, "embeddings", FLOAT, ["batch", yp.EMBEDDING_SIZE])
