"""ONNX Runtime sessions and the runners that call them with the engine interface.

A runner is a callable on a numpy batch returning numpy arrays, with the ``batch_size`` attribute the
callers already use for the TensorFlow runners. :class:`SplitNetwork` runs a network cut in two graphs:
the ``early`` part (convolutions: large activations, few weights) on small batches, its outputs gathered
into one batch of up to ``batch_size`` rows for the ``late`` part (the large dense/late-convolution
weights), so those weights are read once per several hundred examples instead of once per 16, while
memory stays bounded by ``batch_size`` rows whatever the input's duration. ONNX Runtime packs constant
weights once when the session is created (no per-call reordering).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelError

_defaults: dict = {"threads": None, "prepack_early": False}
OUT_OF_MEMORY = ("bad_alloc", "Failed to allocate memory")
"""How ONNX Runtime words an allocation that failed (the process's memory limit or the machine's)."""


def configure(threads: int | None = None, prepack_early: bool = False) -> None:
    """Settings of the sessions and runners this process opens from now on.

    Parameters
    ----------
    threads : int, optional
        Intra-op threads of sessions opened without a ``threads`` argument. None: ONNX Runtime's default
        (one per physical core). A Ray worker that owns one CPU of a shared machine sets 1, so that its
        workers do not each spin one thread per core.
    prepack_early : bool
        Open VGGish's dense part pre-packed at once, instead of after :data:`PREPACK_AFTER` examples. A
        long-running worker pays the packing once at start, and its memory limit, set after loading,
        then holds files only (see :func:`audiotagger.archive.worker.limit_memory`).
    """
    _defaults.update(threads=int(threads) if threads else None, prepack_early=bool(prepack_early))


class Session:
    """An ONNX Runtime session whose failed allocations raise ``MemoryError``, as numpy's do.

    The caller (a worker with a memory limit) then fails that input as "out of memory" rather than as an
    internal error. Every other attribute is the wrapped session's.
    """

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def run(self, *args, **kwargs):
        """``InferenceSession.run``."""
        try:
            return self._inner.run(*args, **kwargs)
        except Exception as exc:  # onnxruntime raises its own RuntimeException types
            if any(word in str(exc) for word in OUT_OF_MEMORY):
                text = str(exc).strip()[:160]
                raise MemoryError(f"ONNX Runtime could not allocate memory ({text})") from None
            raise


def session(path: str | os.PathLike, threads: int | None = None, prepack: bool = True, spin: bool = True):
    """Open an ONNX Runtime CPU session with every graph optimisation.

    Parameters
    ----------
    path : path-like
        ``.onnx`` file (its external ``weights.bin`` beside it is memory-mapped by ONNX Runtime).
    threads : int, optional
        Intra-op threads (default: :func:`configure`'s, else ONNX Runtime's, one per physical core).
    prepack : bool
        Let ONNX Runtime re-lay constant weights for its kernels when the session opens (see
        :class:`VGGishOnnxRunner` for why VGGish's dense part starts without).
    spin : bool
        Let idle intra-op threads busy-wait for the next operator (ONNX Runtime's default); False
        makes them sleep (see :class:`YamnetOnnxNetwork`).

    Raises
    ------
    ModelError
        The graph does not load.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    threads = threads or _defaults["threads"]
    if threads:
        opts.intra_op_num_threads = int(threads)
    if not prepack:
        opts.add_session_config_entry("session.disable_prepacking", "1")
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return Session(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        if any(word in str(exc) for word in OUT_OF_MEMORY):
            raise MemoryError(f"{path}: ONNX Runtime could not allocate memory to open this graph") from None
        raise ModelError(f"{path}: ONNX Runtime cannot load this graph ({str(exc).strip()[:200]})") from None


class SplitNetwork:
    """Run ``early`` on batches of ``early_batch`` rows and ``late`` once per gathered ``batch_size`` rows.

    Parameters
    ----------
    early, late : onnxruntime.InferenceSession
        The two halves; ``early``'s first output is ``late``'s only input.
    early_batch : int
        Rows per call of the early part.
    batch_size : int
        Most rows per call of the late part (and per call of this object by its users).
    """

    def __init__(self, early, late, early_batch: int, batch_size: int):
        from ..errors import ParameterError

        if int(early_batch) < 1 or int(batch_size) < 1:
            raise ParameterError(f"batch_size: must be >= 1, got {early_batch}/{batch_size}")
        self.early, self.late = early, late
        self.early_batch, self.batch_size = int(early_batch), int(batch_size)
        self._in = early.get_inputs()[0].name
        self._mid = late.get_inputs()[0].name
        self.output_names = [o.name for o in late.get_outputs()]

    def _early(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows)
        if len(rows) == 1:
            return self.early.run(None, {self._in: np.concatenate([rows, rows])})[0][:1]
        return self.early.run(None, {self._in: rows})[0]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Return every output of the network on ``x`` (rows in, rows out, any count).

        A single row runs as two (itself twice): a batch of one may take other kernels (a
        matrix-vector product) whose rounding differs, and a live stream (one example per step) must
        give a file's numbers (as :class:`audiotagger.vggish.model.VGGishRunner` does on TensorFlow).
        """
        outs: dict[str, list[np.ndarray]] = {name: [] for name in self.output_names}
        for start in range(0, len(x), self.batch_size):
            group = x[start:start + self.batch_size]
            mids = [self._early(group[i:i + self.early_batch])
                    for i in range(0, len(group), self.early_batch)]
            mid = mids[0] if len(mids) == 1 else np.concatenate(mids)
            late = self.late.run(None, {self._mid: np.concatenate([mid, mid]) if len(mid) == 1 else mid})
            for name, value in zip(self.output_names, late, strict=True):
                outs[name].append(value[:len(mid)])
        return {name: (v[0] if len(v) == 1 else np.concatenate(v)) for name, v in outs.items()}


PREPACK_AFTER = 1024
"""Examples after which VGGish's dense weights are packed once (the packing pays back after ~700)."""


class VGGishOnnxRunner:
    """VGGish on ONNX Runtime with the interface of :class:`audiotagger.vggish.model.VGGishRunner`.

    The dense part's session starts without pre-packed weights: packing its 268 MB costs 0.3-0.5 s of
    CPU, about as much as a 10 s clip's whole network, while packing inside each call runs the dense
    layers at 58-68 instead of 85-87 GFLOP per CPU second on 256 examples (about 3 % of the network's
    time). Once :data:`PREPACK_AFTER` examples have gone through (a long input), the runner opens a
    pre-packed session once and uses it from then on (at once under ``configure(prepack_early=True)``).

    Parameters
    ----------
    folder : path-like
        Cached graphs ``conv.onnx`` and ``dense.onnx`` (:func:`audiotagger.engine.models.vggish_graphs`).
    batch_size : int
        Examples gathered per call of the dense layers (the embedder queues this many).
    conv_batch : int
        Examples per call of the convolutions.
    """

    def __init__(self, folder: str | os.PathLike, batch_size: int = 256, conv_batch: int = 16,
                 threads: int | None = None):
        folder = Path(folder)
        self.folder = folder
        conv = session(folder / "conv.onnx", threads)
        early = _defaults["prepack_early"]
        dense = session(folder / "dense.onnx", threads, prepack=early)
        self.net = SplitNetwork(conv, dense, conv_batch, batch_size)
        self._threads, self._seen, self.prepacked = threads, 0, early

    @property
    def batch_size(self) -> int:
        """Examples per call of the dense part."""
        return self.net.batch_size

    def __call__(self, examples: np.ndarray) -> np.ndarray:
        """Embed log-mel examples ``(n, 96, 64)`` → pre-activation embeddings ``(n, 128)`` float32."""
        from ..vggish import params as P

        examples = np.asarray(examples, dtype=np.float32)
        if len(examples) == 0:
            return np.zeros((0, P.EMBEDDING_SIZE), np.float32)
        self._seen += len(examples)
        if not self.prepacked and self._seen > PREPACK_AFTER:
            self.net.late = session(self.folder / "dense.onnx", self._threads, prepack=True)
            self.prepacked = True
        return self.net.run(examples)["embedding"]


class OnnxClassifier:
    """An attention classifier on ONNX Runtime, with :class:`audiotagger.classifier.Classifier`'s interface.

    Parameters
    ----------
    folder : path-like
        Cached ``classifier.onnx``.
    config : dict
        The model config.
    name : str
        Model id.
    threads : int, optional
        Intra-op threads.
    thresholds : numpy.ndarray, float32, shape (classes,), optional
        Per-class thresholds stored with the model (``--threshold auto``); None if it stores none.
    threshold_info : dict, optional
        How they were chosen (the model's ``meta["thresholds"]``).
    """

    engine = "onnx"

    def __init__(self, folder: str | os.PathLike, config: dict, name: str, threads: int | None = None,
                 thresholds: np.ndarray | None = None, threshold_info: dict | None = None):
        self.session = session(Path(folder) / "classifier.onnx", threads)
        self.config = dict(config)
        self.name = name
        self.thresholds = thresholds
        self.threshold_info = threshold_info
        self.num_classes = int(self.session.get_outputs()[0].shape[-1])

    def predict(self, windows, batch_size: int = 1024) -> np.ndarray:
        """Classify uint8 windows ``(n, 10, 128)`` → probabilities ``(n, classes)`` float32."""
        from ..classifier.classifier import check_windows

        windows = check_windows(windows, batch_size)
        out = np.empty((windows.shape[0], self.num_classes), dtype=np.float32)
        for start in range(0, windows.shape[0], batch_size):
            batch = np.ascontiguousarray(windows[start:start + batch_size])
            out[start:start + len(batch)] = self.session.run(None, {"windows": batch})[0]
        return out

    def __repr__(self) -> str:
        return f"OnnxClassifier(name={self.name!r}, config={self.config!r})"


class PannsOnnxNetwork:
    """PANNs on ONNX Runtime: ``net(logmel)`` → dict ``clipwise_output``, ``embedding`` (numpy).

    The early blocks run on ``early_batch`` windows at a time, the late blocks (most of the weights)
    on every window of the call at once (the tagger passes ``batch_size`` windows).
    """

    def __init__(self, folder: str | os.PathLike, early_batch: int = 8, batch_size: int = 64,
                 threads: int | None = None):
        folder = Path(folder)
        self.net = SplitNetwork(session(folder / "early.onnx", threads),
                                session(folder / "late.onnx", threads), early_batch, batch_size)

    def __call__(self, logmel: np.ndarray) -> dict[str, np.ndarray]:
        """Score log-mel windows ``(n, frames, 64)``."""
        return self.net.run(np.asarray(logmel, dtype=np.float32))


class YamnetOnnxNetwork:
    """YAMNet on ONNX Runtime: ``net(patches)`` → dict ``scores`` (n, 521), ``embeddings`` (n, 1024).

    The callable that :class:`audiotagger.yamnet.tagging.YamnetModel` runs per batch (the compiled Keras
    network's interface, numpy out). A single patch runs as two (itself twice), for the reason given in
    :meth:`SplitNetwork.run`: a live stream scores one or two patches per step and must give a file's
    numbers.

    Its intra-op threads sleep between operators instead of spinning: YAMNet is 28 small convolutions
    per batch, and between batches the numpy front end runs; spinning threads took a core from both. On
    the shared 2-core machine (load average 13), 124 patches took 0.30 s wall / 0.21 s CPU without
    spinning against 0.44 s / 0.29 s with it (fastest of 4, interleaved).

    Parameters
    ----------
    folder : path-like
        Cached ``yamnet.onnx`` (:func:`audiotagger.engine.models.yamnet_graphs`).
    threads : int, optional
        Intra-op threads.
    """

    def __init__(self, folder: str | os.PathLike, threads: int | None = None):
        self.folder = Path(folder)
        self.session = session(self.folder / "yamnet.onnx", threads, spin=False)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, patches: np.ndarray) -> dict[str, np.ndarray]:
        """Score log-mel patches ``(n, 96, 64)`` float32."""
        x = np.ascontiguousarray(patches, dtype=np.float32)
        n = len(x)
        if n == 1:
            x = np.concatenate([x, x])
        outs = self.session.run(None, {"patches": x})
        return {name: value[:n] for name, value in zip(self.output_names, outs, strict=True)}
