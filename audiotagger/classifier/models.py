"""Builders of the attention classifiers over (10, 128) AudioSet embeddings (SPEC §4).

``build_model(**config)`` rebuilds any model the trainer writes from the ``config`` dict stored with its
weights, so tagging needs this module (and :mod:`.layers`) only, never the training loop.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ParameterError
from ..params import (
    CLIP_SECONDS,
    DEFAULT_DROPOUT,
    DEFAULT_HIDDEN_UNITS,
    DEFAULT_LEVELS,
    EMBEDDING_SIZE,
    NUM_CLASSES,
)

MODEL_TYPES = ("multi-level-attention", "single-attention", "feature-attention", "average", "max")
"""``--model-type`` choices: Yu et al. 2018 (default), Kong et al. 2018, Kong et al. 2019, two baselines."""

SINGLE_LABEL_TYPES = ("multi-level-attention", "feature-attention")
"""Model types whose output layer can be a softmax over the classes (``--single-label``)."""

INPUT_DTYPES = ("uint8", "float32")
"""Embedding row types: quantised (VGGish/AudioSet) or float (other backbones)."""

ATTENTIONS = ("softmax", "sigmoid")

BN_MOMENTUM = 0.99
"""Batch-norm moving-average momentum of the AudioSet models (Keras' default)."""
CUSTOM_BN_MOMENTUM = 0.9
"""Batch-norm momentum of custom models: with 0.99 the moving statistics used at inference need about 500
updates to forget their initial values, longer than a typical custom run (a few hundred updates on a small
data set), whose early checkpoints then predicted one class for everything."""
"""Attention activations: softmax over classes (the released Keras models) or sigmoid (Kong's PyTorch)."""


def check_levels(levels: Iterable[int]) -> tuple[int, ...]:
    """Validate ``--levels``: a non-empty subset of {1, 2, 3}; returns it sorted without repeats.

    Raises
    ------
    ParameterError
        Naming ``--levels`` and the bad value.
    """
    try:
        chosen = tuple(sorted({int(v) for v in levels}))
    except (TypeError, ValueError):
        raise ParameterError(f"--levels: expected integers from 1 to 3, got {levels!r}") from None
    if not chosen or not set(chosen) <= {1, 2, 3}:
        raise ParameterError(f"--levels: must be a non-empty subset of 1 2 3, got {list(levels)!r}")
    return chosen


def model_config(model_type: str = "multi-level-attention", levels: Iterable[int] = DEFAULT_LEVELS,
                 hidden_units: int = DEFAULT_HIDDEN_UNITS, dropout: float = DEFAULT_DROPOUT,
                 attention: str = "softmax", num_classes: int = NUM_CLASSES,
                 embedding_size: int = EMBEDDING_SIZE, input_dtype: str = "uint8",
                 single_label: bool = False) -> dict:
    """Return the validated, JSON-serialisable config that :func:`build_model` accepts.

    Parameters
    ----------
    model_type : str
        One of :data:`MODEL_TYPES`.
    levels : iterable of int
        Hidden levels whose attention heads feed the output (multi-level attention only; order free).
    hidden_units : int
        Width of the three hidden layers.
    dropout : float
        Dropout rate after each hidden layer, in [0, 1).
    attention : str
        Attention activation, one of :data:`ATTENTIONS`.
    num_classes : int
        Output classes.
    embedding_size : int
        Width of one embedding row (128 for AudioSet/VGGish; a custom model's backbone width).
    input_dtype : {"uint8", "float32"}
        Quantised rows (scaled as ``(q - 128) / 128``) or float rows (used as they are).
    single_label : bool
        Softmax output over the classes (one class per clip) instead of independent sigmoids; only for
        the models whose output is a dense layer (multi-level and feature attention).

    Raises
    ------
    ParameterError
        For any value out of range, naming the flag.
    """
    if model_type not in MODEL_TYPES:
        raise ParameterError(f"--model-type: unknown {model_type!r} (choose from {', '.join(MODEL_TYPES)})")
    if attention not in ATTENTIONS:
        raise ParameterError(f"--attention: unknown {attention!r} (choose from {', '.join(ATTENTIONS)})")
    if int(hidden_units) < 1:
        raise ParameterError(f"--hidden-units: must be >= 1, got {hidden_units}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ParameterError(f"--dropout: must be in [0, 1), got {dropout}")
    if int(num_classes) < 1 or int(embedding_size) < 1:
        raise ParameterError(f"model: needs >= 1 class and embedding width, got {num_classes}, "
                             f"{embedding_size}")
    if input_dtype not in INPUT_DTYPES:
        raise ParameterError(f"model: input dtype must be one of {', '.join(INPUT_DTYPES)}, "
                             f"got {input_dtype!r}")
    if single_label and model_type not in SINGLE_LABEL_TYPES:
        raise ParameterError(f"--single-label: needs --model-type {' or '.join(SINGLE_LABEL_TYPES)} "
                             f"(a softmax over the classes), not {model_type}")
    cfg = {
        "model_type": model_type,
        "levels": list(check_levels(levels)) if model_type == "multi-level-attention" else [3],
        "hidden_units": int(hidden_units),
        "dropout": float(dropout),
        "attention": attention,
        "num_classes": int(num_classes),
    }
    if int(embedding_size) != EMBEDDING_SIZE or input_dtype != "uint8" or single_label:
        cfg.update(embedding_size=int(embedding_size), input_dtype=input_dtype,
                   single_label=bool(single_label))
    return cfg


MEMBER_PREFIX = "member_"
"""Name of member ``i`` of an ensemble (``member_0``, ...): its Keras sub-model and its stored weights."""

MEMBER_KEYS = ("model_type", "levels", "hidden_units", "dropout", "attention", "num_classes",
               "embedding_size", "input_dtype", "single_label")
"""The config keys that define one member's architecture (the rest is description: name, recipe, ...)."""


def ensemble_config(members: list[dict]) -> dict:
    """Return the config of an ensemble whose output is the mean of its members' probabilities.

    Parameters
    ----------
    members : list of dict
        Each member's model config (:func:`model_config` keys; other keys such as ``recipe`` are kept
        as its description). All members must map the same input to the same classes.

    Returns
    -------
    dict
        ``{"ensemble": [member configs], "num_classes": C}`` plus ``embedding_size``/``input_dtype``/
        ``single_label`` when they are not AudioSet's defaults.

    Raises
    ------
    ParameterError
        No member, an invalid member, or members that disagree on input or classes.
    """
    if not members:
        raise ParameterError("ensemble: needs at least one member")
    checked = []
    for m in members:
        if "ensemble" in m:
            raise ParameterError("ensemble: a member cannot itself be an ensemble")
        cfg = model_config(**{k: m[k] for k in MEMBER_KEYS if k in m})
        checked.append({**{k: v for k, v in m.items() if k not in MEMBER_KEYS}, **cfg})
    shape = {(c["num_classes"], c.get("embedding_size", EMBEDDING_SIZE), c.get("input_dtype", "uint8"),
              c.get("single_label", False)) for c in checked}
    if len(shape) != 1:
        raise ParameterError("ensemble: members must share classes, embedding width, input type and "
                             f"output type, got {sorted(shape)}")
    out = {"ensemble": checked, "num_classes": checked[0]["num_classes"]}
    out.update({k: checked[0][k] for k in ("embedding_size", "input_dtype", "single_label")
                if k in checked[0]})
    return out


def build_model(model_type: str = "multi-level-attention", levels: Iterable[int] = DEFAULT_LEVELS,
                hidden_units: int = DEFAULT_HIDDEN_UNITS, dropout: float = DEFAULT_DROPOUT,
                attention: str = "softmax", num_classes: int = NUM_CLASSES,
                embedding_size: int = EMBEDDING_SIZE, input_dtype: str = "uint8", single_label: bool = False,
                bn_momentum: float = BN_MOMENTUM, ensemble: list[dict] | None = None, **_ignored):
    """Build an uncompiled Keras model: (batch, 10, D) float inputs to (batch, classes) probabilities.

    Parameters are those of :func:`model_config`, plus ``bn_momentum``, the batch-norm layers'
    moving-average momentum (Keras' 0.99 by default; custom models use :data:`CUSTOM_BN_MOMENTUM`, see
    there). Extra keys of a stored config (``name``, ``labels``, ``backbone``, ...) are ignored. The input
    is the scaled embedding ``(q - 128) / 128`` for uint8 rows, the rows themselves for float ones.

    Returns
    -------
    keras.Model
        Multi-level attention (SPEC §4.5): input BN → 3 × [Dense → BN → ReLU → Dropout]; for each chosen
        level a head (cla = Dense → BN → sigmoid, att = Dense → BN → attention activation, attention
        pooling); one level is the pooled vector itself, several are concatenated in level order; then
        Dense → BN → sigmoid. ``--levels 2 3`` with 600 units is Yu et al.'s model (2,630,619 trainable
        parameters).

        With ``ensemble`` (a list of member configs, see :func:`ensemble_config`): the members as
        sub-models ``member_0``, ``member_1``, ... on one input, their probabilities averaged, so one call
        runs them all.
    """
    import keras
    from keras import layers

    from .layers import AttentionPooling

    if ensemble is not None:
        cfg = ensemble_config(ensemble)
        inp = keras.Input(shape=(CLIP_SECONDS, int(cfg.get("embedding_size", EMBEDDING_SIZE))),
                          name="embedding")
        members = [build_model(**{k: m[k] for k in MEMBER_KEYS if k in m}, bn_momentum=bn_momentum)
                   for m in cfg["ensemble"]]
        for i, member in enumerate(members):
            member.name = f"{MEMBER_PREFIX}{i}"
        outs = [member(inp) for member in members]
        out = outs[0] if len(outs) == 1 else layers.Average(name="probs")(outs)
        return keras.Model(inp, out, name="ensemble")

    cfg = model_config(model_type, levels, hidden_units, dropout, attention, num_classes, embedding_size,
                       input_dtype, single_label)
    units, rate, att_act, n_out = cfg["hidden_units"], cfg["dropout"], cfg["attention"], cfg["num_classes"]
    out_act = "softmax" if single_label else "sigmoid"

    def bn(name):
        return layers.BatchNormalization(momentum=float(bn_momentum), name=name)

    inp = keras.Input(shape=(CLIP_SECONDS, int(embedding_size)), name="embedding")
    x = bn(name="bn0")(inp)
    hidden = []
    for i in (1, 2, 3):
        x = layers.Dense(units, name=f"dense_{i}")(x)
        x = bn(name=f"bn_{i}")(x)
        x = layers.Activation("relu", name=f"relu_{i}")(x)
        x = layers.Dropout(rate, name=f"dropout_{i}")(x)
        hidden.append(x)

    if cfg["model_type"] == "multi-level-attention":
        pooled = []
        for level in cfg["levels"]:
            h = hidden[level - 1]
            cla = layers.Dense(n_out, name=f"cla_{level}")(h)
            cla = bn(name=f"cla_{level}_bn")(cla)
            cla = layers.Activation("sigmoid", name=f"cla_{level}_sigmoid")(cla)
            att = layers.Dense(n_out, name=f"att_{level}")(h)
            att = bn(name=f"att_{level}_bn")(att)
            att = layers.Activation(att_act, name=f"att_{level}_{att_act}")(att)
            pooled.append(AttentionPooling(name=f"pool_{level}")([cla, att]))
        y = pooled[0] if len(pooled) == 1 else layers.Concatenate(name="concat")(pooled)
        y = layers.Dense(n_out, name="output")(y)
        y = bn(name="output_bn")(y)
        out = layers.Activation(out_act, name="probs")(y)
    elif cfg["model_type"] == "single-attention":
        cla = layers.Dense(n_out, activation="sigmoid", name="cla")(x)
        att = layers.Dense(n_out, activation=att_act, name="att")(x)
        out = AttentionPooling(name="probs")([cla, att])
    elif cfg["model_type"] == "feature-attention":
        cla = layers.Dense(units, name="cla")(x)
        att = layers.Dense(units, activation="sigmoid", name="att")(x)
        y = AttentionPooling(name="pool")([cla, att])
        y = bn(name="pool_bn")(y)
        y = layers.Activation("relu", name="pool_relu")(y)
        y = layers.Dropout(rate, name="pool_dropout")(y)
        out = layers.Dense(n_out, activation=out_act, name="probs")(y)
    else:
        cla = layers.Dense(n_out, activation="sigmoid", name="cla")(x)
        pool = layers.GlobalAveragePooling1D if cfg["model_type"] == "average" else layers.GlobalMaxPooling1D
        out = pool(name="probs")(cla)
    return keras.Model(inp, out, name=cfg["model_type"].replace("-", "_"))
