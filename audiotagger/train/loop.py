"""The training loop: balanced batches → compiled train step → periodic evaluation, checkpoints, early stop.

``train(data_dir, workspace, ...)`` is what ``audiotagger train`` runs. Rerunning the same command
continues from the last complete checkpoint (model, optimizer and sampler state), so a run killed at any
point — even during a checkpoint write — resumes where it left off, with the same batches.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..classifier.classifier import compiled_forward, scale_embeddings
from ..classifier.store import model_arrays, read_model, read_model_file, restore_weights, write_model
from ..errors import AudioTaggerWarning, ModelError, ParameterError
from ..fileio import atomic_save_npz, atomic_write_text
from ..params import DEFAULT_BATCH_SIZE, DEFAULT_DROPOUT, DEFAULT_HIDDEN_UNITS, DEFAULT_LEVELS, NUM_CLASSES
from .data import EmbeddingSet, load_training_data, read_embeddings
from .metrics import calculate_stats, single_label_stats, summary
from .models import build_model, check_optimizer_args, make_optimizer, model_config
from .sampler import SAMPLERS, make_sampler, rng_state, set_rng_state
from .workspace import Workspace, read_json

log = logging.getLogger("audiotagger.train")

# Settings that must not change when a run is resumed (the others, e.g. --iterations, may).
_IDENTITY = ("model", "data_dir", "eval_data", "validation_split", "test_split", "split_seed", "seed",
             "batch_size", "sampler", "lr", "lr_schedule", "warmup", "weight_decay", "mixup", "prior_init",
             "refit", "label_closure")


@dataclass
class TrainResult:
    """What a finished run produced."""

    workspace: Path
    iteration: int
    best_iteration: int
    best_stats: dict | None     # None after --refit (no evaluation set)
    stopped_early: bool
    test_stats: dict = field(default_factory=dict)
    averaged_stats: dict | None = None
    problems: list[str] = field(default_factory=list)
    embed_report: object | None = None


def split_indices(n: int, validation: float, test: float, seed: int) -> tuple[np.ndarray, ...]:
    """Seeded random split of ``n`` clips into (train, validation, test) index arrays (sorted)."""
    for name, frac in (("--validation-split", validation), ("--test-split", test)):
        if not 0.0 <= frac < 1.0:
            raise ParameterError(f"{name}: must be in [0, 1), got {frac}")
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test)), int(round(n * validation))
    if n - n_test - n_val < 1:
        raise ParameterError("--validation-split/--test-split leave no training clips")
    return (np.sort(order[n_test + n_val:]), np.sort(order[n_test:n_test + n_val]), np.sort(order[:n_test]))


def predict(model, data: EmbeddingSet, batch_size: int = 2048, forward=None) -> np.ndarray:
    """Probabilities (N, C) float32 of a Keras model on every clip of ``data`` (scaled per batch)."""
    forward = forward or compiled_forward(model)
    out = []
    for start in range(0, len(data), batch_size):
        x, _ = data.batch(np.arange(start, min(start + batch_size, len(data))))
        out.append(forward(x).numpy())
    return np.concatenate(out)


def make_train_step(model, optimizer, single_label: bool = False):
    """Return the compiled training step ``step(q, y, lam, perm) -> loss``.

    ``q`` (batch, 10, D) embeddings (uint8 or float32), ``y`` bool (batch, classes) labels, ``lam`` float32
    (batch,) mixup weights and ``perm`` int32 (batch,) mixup partners (``lam = 1``, ``perm = arange``: no
    mixup). Binary cross-entropy on the mixed labels (categorical cross-entropy for a ``single_label``
    softmax model); ``optimizer`` must be built for the model's variables.
    """
    import keras
    import tensorflow as tf

    bce = keras.losses.CategoricalCrossentropy() if single_label else keras.losses.BinaryCrossentropy()

    @tf.function(reduce_retracing=True)
    def step(q, y, lam, perm):
        x = scale_embeddings(q)
        y = tf.cast(y, tf.float32)
        lam3 = lam[:, None, None]
        x = lam3 * x + (1.0 - lam3) * tf.gather(x, perm)
        y = lam[:, None] * y + (1.0 - lam[:, None]) * tf.gather(y, perm)
        with tf.GradientTape() as tape:
            loss = bce(y, model(x, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    return step


def train(data_dir, workspace, *, tag: str | None = None, levels=DEFAULT_LEVELS,
          model_type: str = "multi-level-attention", hidden_units: int = DEFAULT_HIDDEN_UNITS,
          dropout: float = DEFAULT_DROPOUT, attention: str = "softmax", batch_size: int = DEFAULT_BATCH_SIZE,
          lr: float = 1e-3, lr_schedule: str = "constant",
          warmup: int = 0, weight_decay: float = 0.0, mixup: float = 0.0, iterations: int = 30000,
          eval_every: int = 1000, eval_data=None, validation_split: float = 0.0, test_split: float = 0.0,
          split_seed: int = 1234, seed: int = 1234, sampler: str = "balanced", patience: int = 10,
          save_probs: bool = False, average_last: int = 0, prior_init: bool = False, lazy: bool = False,
          progress: bool = True, single_label: bool = False, sets: tuple | None = None,
          refit: bool = False, label_closure: bool = False,
          model_extra: dict | None = None, data_settings: dict | None = None) -> TrainResult:
    """Train an attention classifier on AudioSet embeddings, resuming a previous run of the same settings.

    Parameters
    ----------
    data_dir : path-like or str, or a list of them
        Training data (several sources are joined, e.g. ``unbal_train.h5`` and ``bal_train.h5``): a packed
        ``.h5`` file, a TFRecord folder or glob, or a folder with
        ``bal_train.h5``/``unbal_train.h5``/``eval.h5`` (or Google's ``bal_train/`` ... TFRecord folders),
        whose ``eval`` split is the evaluation set unless another is given.
    workspace : path-like
        Output folder; the run lives in ``<workspace>/<tag>/`` (see :mod:`.workspace`).
    tag : str, optional
        Run name (default ``<model-type>_levels_<levels>``).
    levels, model_type, hidden_units, dropout, attention
        Model (see :func:`audiotagger.classifier.models.build_model`).
    batch_size : int
        Clips per update (500 in the published recipes).
    lr, lr_schedule, warmup, weight_decay
        Optimizer (see :func:`.models.make_optimizer`).
    mixup : float
        Beta(α, α) mixup of scaled embeddings and labels within a batch; 0 disables it.
    iterations : int
        Updates to run in total (a resumed run continues up to this number).
    eval_every : int
        Evaluate, write stats and a checkpoint every this many iterations (and at 0 and the end).
    eval_data : path-like, optional
        Evaluation set; otherwise the data folder's ``eval`` split or a held-out ``validation_split``.
    validation_split, test_split : float
        Fractions of the training data held out (seeded by ``split_seed``) for validation (early stopping,
        best model) and for a test part that is only scored at the end.
    seed : int
        Seed of the sampler, mixup and weight initialisation.
    sampler : {"balanced", "shuffled"}
    patience : int
        Stop after this many evaluations without a better validation mAP (0: never stop early).
    save_probs : bool
        Also keep each evaluation's probabilities (for ``audiotagger stats --ensemble``).
    average_last : int
        At the end, average the weights of this many checkpoints ending at the best one (0: off).
    prior_init : bool
        Start the output bias (the output batch-norm's beta in the attention models) at the logit of each
        class's frequency in training batches instead of 0, so that the first thousands of updates are not
        spent pulling 527 outputs down from 0.5 (Adam moves a bias by about ``lr`` per step).
    lazy : bool
        Keep HDF5 embeddings on disk (for sets larger than memory).
    progress : bool
        Show a progress bar with the running loss.
    single_label : bool
        Softmax over the classes and categorical cross-entropy (one class per clip); stats then also
        hold ``accuracy`` and the ``confusion`` matrix.
    refit : bool
        Train on every clip of ``data_dir``, with no evaluation set (the final fit once the recipe and
        iteration count were chosen on validation): checkpoints every ``eval_every`` iterations, the
        latest is ``best.npz``, and ``average_last`` averages the last checkpoints.
    label_closure : bool
        Make the ancestors of every positive class positive in the training labels (AudioSet ontology,
        :func:`audiotagger.labels.close_labels`); evaluation labels stay as annotated.
    sets : tuple of (EmbeddingSet, EmbeddingSet, EmbeddingSet or None), optional
        Ready (train, evaluation, test) sets, e.g. windows of a user's audio
        (:func:`audiotagger.train.custom.train_audio`); ``data_dir`` then only names them and no split
        is made here. Their rows' width and type set the model's input.
    model_extra : dict, optional
        JSON-serialisable keys stored in every model file's config (a custom model's ``labels`` and
        ``backbone``).
    data_settings : dict, optional
        Further settings that identify the data (checked when the run is resumed).

    Returns
    -------
    TrainResult

    Raises
    ------
    ParameterError
        Bad settings (``--levels 4``, no evaluation set, unwritable workspace, a different run under the
        same tag) — before anything is trained or written.
    DataError
        Malformed data, naming the file.
    """
    if sets is not None:
        x0 = sets[0].x
        cfg = model_config(model_type, levels, hidden_units, dropout, attention, sets[0].y.shape[1],
                           x0.shape[-1], "uint8" if x0.dtype == np.uint8 else "float32", single_label)
    else:
        cfg = model_config(model_type, levels, hidden_units, dropout, attention, NUM_CLASSES,
                           single_label=single_label)
    cfg.update(model_extra or {})
    for flag, value in (("--batch-size", batch_size), ("--iterations", iterations),
                        ("--eval-every", eval_every)):
        if int(value) < 1:
            raise ParameterError(f"{flag}: must be >= 1, got {value}")
    if sampler not in SAMPLERS:
        raise ParameterError(f"--sampler: unknown {sampler!r} (choose from {', '.join(SAMPLERS)})")
    if mixup < 0 or patience < 0 or average_last < 0:
        raise ParameterError("--mixup, --patience and --average-last must be >= 0")
    if sets is None and eval_data is not None and validation_split > 0:
        raise ParameterError("--eval-data and --validation-split exclude each other")
    if refit and (sets is not None or eval_data is not None or validation_split > 0 or test_split > 0):
        raise ParameterError("--refit trains on all the data with no evaluation: it excludes --eval-data, "
                             "--validation-split, --test-split and --audio")
    if label_closure and (sets is not None or single_label):
        raise ParameterError("--label-closure: only for AudioSet's classes (it uses their ontology)")
    tag = tag or f"{model_type}_levels_{''.join(map(str, cfg['levels']))}"
    ws = Workspace(workspace, tag)
    check_optimizer_args(lr, schedule=lr_schedule, iterations=iterations, warmup=warmup,
                         weight_decay=weight_decay)

    settings = {
        "model": cfg, "data_dir": _data_dir_setting(data_dir),
        "eval_data": None if eval_data is None else str(eval_data),
        "validation_split": validation_split, "test_split": test_split, "split_seed": split_seed,
        "seed": seed, "batch_size": batch_size, "sampler": sampler, "lr": lr, "lr_schedule": lr_schedule,
        "warmup": warmup, "weight_decay": weight_decay, "mixup": mixup, "iterations": iterations,
        "eval_every": eval_every, "patience": patience, "save_probs": save_probs,
        "average_last": average_last, "prior_init": prior_init, "refit": refit,
        "label_closure": label_closure, "version": __version__,
        **(data_settings or {}),
    }
    previous = read_json(ws.run_file) if ws.run_file.is_file() else None
    if previous is not None:
        # settings added later, at their old behaviour
        older = {"prior_init": False, "refit": False, "label_closure": False}
        changed = [k for k in (*_IDENTITY, *(data_settings or {}))
                   if previous.get(k, older.get(k)) != json.loads(json.dumps(settings[k]))]
        if changed:
            raise ParameterError(f"--workspace {ws.root} --tag {tag}: holds a run with different "
                                 f"{', '.join(changed)}; choose another --tag to start a new run")

    # --- data (all checks before anything is written) ---------------------------------------------------
    if sets is not None:
        train_set, eval_set, test_set = sets
    else:
        train_set, eval_set, test_set = _split_data(data_dir, eval_data, validation_split, test_split,
                                                    split_seed, lazy, refit)
    if label_closure:
        from ..labels import close_labels

        train_set = dataclasses.replace(train_set, y=close_labels(train_set.y))

    ws.prepare()
    run_settings = {**settings, "tag": tag}
    atomic_write_text(ws.run_file, json.dumps(run_settings, indent=1))
    if not ws.split_file.is_file():
        none = np.zeros(0, "<U1")
        atomic_save_npz(ws.split_file, train=train_set.video_ids,
                        validation=eval_set.video_ids if eval_set is not None else none,
                        test=test_set.video_ids if test_set is not None else none)
    if save_probs and eval_set is not None and not (ws.probs / "targets.npz").is_file():
        atomic_save_npz(ws.probs / "targets.npz", targets=eval_set.y, video_ids=eval_set.video_ids)

    handler = logging.FileHandler(ws.new_log(), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        return _run(ws, cfg, settings, train_set, eval_set, test_set, progress)
    finally:
        log.removeHandler(handler)
        handler.close()


def _split_data(data_dir, eval_data, validation_split: float, test_split: float, split_seed: int,
                lazy: bool, refit: bool = False) -> tuple[EmbeddingSet, EmbeddingSet | None,
                                                          EmbeddingSet | None]:
    """Read ``--data-dir`` and make the (train, evaluation, test) sets of the flags.

    With ``refit``: every clip trains, and there is no evaluation or test set.
    """
    full, folder_eval = load_training_data(data_dir, lazy=lazy)
    if refit:
        return full, None, None
    test_set = None
    if eval_data is not None:
        eval_set, train_set = read_embeddings(eval_data, lazy=lazy), full
        if test_split > 0:
            tr, _, te = split_indices(len(full), 0.0, test_split, split_seed)
            train_set, test_set = full.subset(tr), full.subset(te)
    elif validation_split > 0 or test_split > 0:
        tr, va, te = split_indices(len(full), validation_split, test_split, split_seed)
        train_set = full.subset(tr)
        eval_set = full.subset(va) if validation_split > 0 else folder_eval
        test_set = full.subset(te) if test_split > 0 else None
    else:
        train_set, eval_set = full, folder_eval
    if eval_set is None:
        raise ParameterError(f"--data-dir {data_dir}: has no eval split; give --eval-data or "
                             "--validation-split")
    return train_set, eval_set, test_set


def _data_dir_setting(data_dir):
    """``--data-dir`` as stored in run.json: one string (as before) or a list for several sources."""
    if isinstance(data_dir, (list, tuple)):
        return str(data_dir[0]) if len(data_dir) == 1 else [str(d) for d in data_dir]
    return str(data_dir)


def _run(ws: Workspace, cfg: dict, s: dict, train_set: EmbeddingSet, eval_set: EmbeddingSet,
         test_set: EmbeddingSet | None, progress: bool) -> TrainResult:
    import keras
    from tqdm import tqdm

    keras.utils.set_random_seed(s["seed"])
    model = build_model(**cfg)
    optimizer = make_optimizer(s["lr"], schedule=s["lr_schedule"], iterations=s["iterations"],
                               warmup=s["warmup"], weight_decay=s["weight_decay"])
    optimizer.build(model.trainable_variables)
    sampler = make_sampler(s["sampler"], train_set.y, s["batch_size"], s["seed"])
    mix_rng = np.random.default_rng(s["seed"] + 1)
    state = {"iteration": 0, "best_map": -1.0,  # best_map: the selection score (mAP, or accuracy)
             "best_iteration": -1, "bad_evals": 0}

    if s.get("prior_init"):
        _init_output_prior(model, train_set.y, s)
    resumed = _resume(ws, model, optimizer, sampler, mix_rng, state)
    log.info("run %s: %d training clips, %d evaluation clips%s; model %s (%d parameters)%s", ws.dir,
             len(train_set), 0 if eval_set is None else len(eval_set),
             f", {len(test_set)} test clips" if test_set else "",
             json.dumps(cfg), model.count_params(),
             f"; resumed at iteration {state['iteration']}" if resumed else "")

    if resumed:     # said on the terminal too, not only in the log file
        import sys

        print(f"audiotagger: resuming {ws.dir} at iteration {state['iteration']} of {s['iterations']} "
              f"(checkpoint {state.pop('resumed_from')})", file=sys.stderr)
    step = make_train_step(model, optimizer, cfg.get("single_label", False))
    forward = compiled_forward(model)
    total, every, bs = s["iterations"], s["eval_every"], s["batch_size"]
    ones, arange = np.ones(bs, np.float32), np.arange(bs, dtype=np.int32)
    # a run that already stopped early stays stopped when its command is rerun
    stopped = resumed and s["patience"] > 0 and state["bad_evals"] >= s["patience"]
    it = state["iteration"]
    bar = tqdm(total=total, initial=it, disable=not progress, unit="it", dynamic_ncols=True, leave=False)
    running, t0 = None, time.perf_counter()
    try:
        while True:
            if stopped:
                break
            if (it % every == 0 or it >= total) and not (resumed and it == state["iteration"]):
                stopped = _evaluate_and_save(ws, model, optimizer, sampler, mix_rng, state, it, s, eval_set,
                                             forward, bar)
            if it >= total or stopped:
                break
            idx = sampler.next_batch()
            q, y = train_set.batch(idx)
            if s["mixup"] > 0:
                lam = mix_rng.beta(s["mixup"], s["mixup"], bs).astype(np.float32)
                perm = mix_rng.permutation(bs).astype(np.int32)
            else:
                lam, perm = ones, arange
            loss = float(step(q, y, lam, perm))
            if not math.isfinite(loss):
                raise ModelError(f"{ws.dir}: training diverged (loss {loss}) at iteration {it}; lower --lr")
            running = loss if running is None else 0.98 * running + 0.02 * loss
            it += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}", refresh=False)   # update(1) redraws, rate-limited
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    log.info("stopped at iteration %d%s; best iteration %d (score %.4f); %.0f s", it,
             " (early stop)" if stopped else "", state["best_iteration"], state["best_map"], elapsed)

    best_stats = read_json(ws.best_json)["stats"]
    result = TrainResult(ws.dir, it, state["best_iteration"], best_stats, stopped)
    if s["average_last"] > 0:
        averaged = _average(ws, model, cfg, s["average_last"], state["best_iteration"], eval_set, forward)
        result.averaged_stats = _headline(averaged) if averaged and "mAP" in averaged else None
    if test_set is not None:
        result.test_stats = _test(ws, model, test_set, forward, result.averaged_stats is not None)
    return result


def _init_output_prior(model, y: np.ndarray, s: dict, batches: int = 20) -> None:
    """Set the output bias to the logit of each class's frequency in (a separate draw of) training batches."""
    probe = make_sampler(s["sampler"], y, s["batch_size"], s["seed"] + 2)
    freq = np.mean([y[probe.next_batch()].mean(axis=0) for _ in range(batches)], axis=0)
    if s["model"].get("single_label"):    # softmax: log-priors (any constant shift is the same model)
        logit = np.log(np.clip(freq, 1e-4, 1.0)).astype(np.float32)
    else:
        prior = np.clip(freq, 1e-4, 0.5)
        logit = np.log(prior / (1 - prior)).astype(np.float32)
    names = {layer.name: layer for layer in model.layers}
    if "output_bn" in names:
        names["output_bn"].beta.assign(logit)
    else:
        layer = names["probs"] if hasattr(names["probs"], "bias") else names["cla"]
        layer.bias.assign(logit)


def _resume(ws, model, optimizer, sampler, mix_rng, state) -> bool:
    """Load the newest readable checkpoint into the objects; False when there is none."""
    for it in reversed(ws.checkpoint_iterations()):
        path = ws.checkpoint(it)
        try:
            config, weights, meta, npz = read_model_file(path)
            with npz:
                train_state = json.loads(str(npz["train_state"]))
                opt = [npz[f"opt{i:03d}"] for i in range(len(optimizer.variables))]
                sampler_state = {k[len("sampler_"):]: npz[k] for k in npz.files if k.startswith("sampler_")}
                mix_state = npz["mix_rng"]
                seeds = _seed_variables(model)
                rng = [npz[f"rng{i:03d}"] for i in range(len(seeds))] if "rng000" in npz.files else None
        except (ModelError, KeyError, ValueError, OSError) as exc:
            warnings.warn(f"{path}: unreadable checkpoint skipped ({exc})", AudioTaggerWarning, stacklevel=3)
            continue
        restore_weights(model, weights, path)
        for var, arr in zip(optimizer.variables, opt, strict=True):
            if tuple(var.shape) != arr.shape:
                raise ModelError(f"{path}: optimizer state does not fit the model")
            var.assign(arr)
        sampler.load_state(sampler_state)
        set_rng_state(mix_rng, mix_state)
        if rng is not None:   # dropout masks continue where the interrupted run was (older files lack them)
            for var, arr in zip(seeds, rng, strict=True):
                if tuple(var.shape) != arr.shape:
                    raise ModelError(f"{path}: dropout seed state does not fit the model")
                var.assign(arr)
        state.update(train_state)
        state["resumed_from"] = str(path)
        return True
    return False


def _seed_variables(model) -> list:
    """The model's non-weight state: the dropout layers' seed generators (not in ``model.weights``)."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _evaluate_and_save(ws, model, optimizer, sampler, mix_rng, state, it, s, eval_set, forward, bar) -> bool:
    """Evaluate at iteration ``it``; write stats, probs, best model, checkpoint. True = stop early.

    Without an evaluation set (``--refit``) the latest checkpoint is the best one.
    """
    t = time.perf_counter()
    if eval_set is None:
        state.update(best_map=0.0, best_iteration=it, iteration=it)
        write_model(ws.best, model, {**s["model"], "name": f"{ws.tag}@{it}"},
                    extra={"iteration": it, "tag": ws.tag})
        atomic_write_text(ws.best_json, json.dumps({"iteration": it, "stats": None}, indent=1))
        _save_checkpoint(ws, model, optimizer, sampler, mix_rng, state, it, s)
        line = f"iteration {it}: checkpoint (--refit: no evaluation set)  [{time.perf_counter() - t:.1f} s]"
        log.info(line)
        bar.write(line)
        return False
    probs = predict(model, eval_set, forward=forward)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if it else "default", AudioTaggerWarning)
        stats = calculate_stats(probs, eval_set.y)
    if s["model"].get("single_label"):
        stats.update(single_label_stats(probs, eval_set.y))
    stats["iteration"] = it
    atomic_write_text(ws.stats_file(it), json.dumps(stats))
    if s["save_probs"]:
        atomic_save_npz(ws.probs_file(it), probs=probs, iteration=it)
    score = selection_score(stats)
    improved = score >= state["best_map"]
    if improved:
        state.update(best_map=score, best_iteration=it, bad_evals=0)
        write_model(ws.best, model, {**s["model"], "name": f"{ws.tag}@{it}"},
                    extra={"iteration": it, "tag": ws.tag})
        atomic_write_text(ws.best_json, json.dumps({"iteration": it, "stats": _headline(stats)}, indent=1))
    elif it > 0:
        state["bad_evals"] += 1
    state["iteration"] = it
    _save_checkpoint(ws, model, optimizer, sampler, mix_rng, state, it, s)
    line = (f"iteration {it}: {summary(stats)}{'  (best)' if improved else ''}  "
            f"[{time.perf_counter() - t:.1f} s]")
    log.info(line)
    bar.write(line)
    return s["patience"] > 0 and state["bad_evals"] >= s["patience"]


def _save_checkpoint(ws, model, optimizer, sampler, mix_rng, state, it, s) -> None:
    """Write the resumable checkpoint of iteration ``it`` (a classifier file plus the training state)."""
    arrays = model_arrays(model, {**s["model"], "name": f"{ws.tag}@{it}"}, extra={"iteration": it})
    arrays.update({f"opt{i:03d}": v.numpy() for i, v in enumerate(optimizer.variables)})
    arrays.update({f"sampler_{k}": v for k, v in sampler.state().items()})
    arrays["mix_rng"] = rng_state(mix_rng)
    arrays.update({f"rng{i:03d}": v.numpy() for i, v in enumerate(_seed_variables(model))})
    arrays["train_state"] = np.array(json.dumps(state))
    atomic_save_npz(ws.checkpoint(it), **arrays)


def cfg_single_label(model) -> bool:
    """True if the Keras model ends in a softmax (a ``--single-label`` model)."""
    layer = model.get_layer("probs")
    return getattr(getattr(layer, "activation", None), "__name__", "") == "softmax"


def selection_score(stats: dict) -> float:
    """What picks the best model: validation mAP; for single-label models accuracy, ties broken by mAP."""
    if "accuracy" in stats:
        return float(stats["accuracy"]) + 1e-3 * float(stats["mAP"])
    return float(stats["mAP"])


def _headline(stats: dict) -> dict:
    return {k: stats[k] for k in ("mAP", "AUC", "d_prime", "accuracy", "n_classes", "n_clips", "iteration")
            if k in stats}


def _average(ws, model, config: dict, k: int, best_it: int, eval_set, forward) -> dict | None:
    """Average the weights of the ``k`` checkpoints ending at ``best_it``; write ``averaged.npz``."""
    chosen = [i for i in ws.checkpoint_iterations() if 0 < i <= best_it][-k:]
    if not chosen:
        return None
    total = None
    for i in chosen:
        _, weights, _ = read_model(ws.checkpoint(i))
        total = [w.astype(np.float64) for w in weights] if total is None else \
            [a + w for a, w in zip(total, weights, strict=True)]
    restore_weights(model, [(a / len(chosen)).astype(np.float32) for a in total], ws.averaged)
    write_model(ws.averaged, model, {**config, "name": f"{ws.tag}@avg{chosen[0]}-{chosen[-1]}"},
                extra={"iterations": chosen, "tag": ws.tag})
    if eval_set is None:
        log.info("weight average of iterations %s (no evaluation set)", chosen)
        atomic_write_text(ws.stats / "averaged.json", json.dumps({"iterations": chosen}))
        return {"iterations": chosen}
    stats = calculate_stats(predict(model, eval_set, forward=forward), eval_set.y, warn=False)
    log.info("weight average of iterations %s: %s", chosen, summary(stats))
    atomic_write_text(ws.stats / "averaged.json", json.dumps({**stats, "iterations": chosen}))
    return stats


def _test(ws, model, test_set, forward, averaged: bool) -> dict:
    """Score the best (and averaged) model on the held-out test part; write ``test.json``."""
    out = {}
    for name, path in (("best", ws.best), ("averaged", ws.averaged)):
        if name == "averaged" and not averaged:
            continue
        _, weights, _ = read_model(path)
        restore_weights(model, weights, path)
        probs = predict(model, test_set, forward=forward)
        stats = calculate_stats(probs, test_set.y, warn=False)
        if cfg_single_label(model):
            stats.update(single_label_stats(probs, test_set.y))
        out[name] = _headline(stats)
        log.info("test (%s model): %s", name, summary(stats))
    atomic_write_text(ws.test_json, json.dumps(out, indent=1))
    return out

