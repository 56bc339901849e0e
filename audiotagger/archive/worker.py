"""The Ray Data actor: one loaded job per worker process, one file per call.

Ray Data creates the actor pool (``ActorPoolStrategy``); a worker that dies is restarted by Ray and its
files are retried on a live worker (``max_restarts``/``max_task_retries``), so the driver has no queue or
pool of its own. Every file ends as one row (done / failed / skipped); a file never fails the run.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import numpy as np

ROW_COLUMNS = ("path", "status", "error", "duration_s", "audio_s", "outputs", "worker", "node", "start",
               "end", "top_classes", "summary", "record")
"""Columns of the rows the workers return (``outputs`` joined by newlines)."""


def limit_memory(budget: int | None) -> None:
    """Let this process allocate at most ``budget`` more bytes (``RLIMIT_DATA``).

    A file needing more then raises ``MemoryError`` (that file fails) instead of the kernel killing the
    worker.
    """
    if not budget:
        return
    import resource

    used = 0
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmData:"):
                    used = int(line.split()[1]) * 1024
    except OSError:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = used + int(budget)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def set_threads(threads: int) -> None:
    """Give TensorFlow ``threads`` threads per pool (the worker's CPU share), before it starts."""
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, int(threads)))
    except (ImportError, RuntimeError):
        pass


class ArchiveWorker:
    """A callable class for ``Dataset.map_batches``: loads the job once, processes one batch of inputs.

    Parameters
    ----------
    spec : dict
        The job spec (:func:`.jobs.make_job`), with ``output`` (the ``-o`` location), ``overwrite``,
        ``threads`` and ``memory`` (bytes a file may add, or None).
    """

    def __init__(self, spec: dict[str, Any]):
        from .jobs import make_job
        from .storage import OutputLocation

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        set_threads(spec.get("threads") or 1)
        self.spec = spec
        self.job = make_job(spec)
        self.job.load()
        self.out = OutputLocation(spec["output"])
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        try:
            import ray

            self.node = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001  (outside Ray, e.g. in a unit test)
            self.node = ""
        limit_memory(spec.get("memory"))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Process every input of ``batch`` (columns ``given``, ``key``, ``rel``); one row each."""
        rows = [self.process(str(g), str(k), str(r))
                for g, k, r in zip(batch["given"], batch["key"], batch["rel"], strict=True)]
        out = {}
        for col in ROW_COLUMNS:
            values = [row[col] for row in rows]
            out[col] = np.array(values, dtype=np.float64 if col in ("duration_s", "audio_s", "start", "end")
                                else object)
        return out

    def process(self, given: str, key: str, rel: str) -> dict[str, Any]:
        """Process one input and return its row; errors fail the row, never the worker."""
        from ..cli.common import error_line
        from ..errors import AudioTaggerError
        from .storage import fetched

        start = time.time()
        row = {"path": key, "status": "done", "error": "", "audio_s": np.nan, "outputs": "",
               "worker": self.worker, "node": self.node, "start": start, "top_classes": "", "summary": "",
               "record": b""}
        try:
            targets = {fmt: self.out.target(rel, name) for fmt, name in self.job.names(given).items()}
            pending = targets if self.spec["overwrite"] else \
                {f: t for f, t in targets.items() if not self.out.exists(t)}
            if targets and not pending:
                row.update(status="skipped", error="outputs exist (use --overwrite to redo)",
                           outputs="\n".join(targets.values()))
            else:
                with fetched(key) as local, self.out.staged(pending) as staged:
                    info = self.job.run(local, given, key, staged)
                row.update(audio_s=info.audio_s, top_classes=info.top_classes, summary=info.summary,
                           record=info.record, outputs="\n".join(pending.values()))
        except MemoryError:
            row.update(status="failed", error=f"{given}: out of memory while processing this file (more than "
                                              f"{_gb(self.spec.get('memory'))} for one file; raise "
                                              "--memory-per-worker or use fewer --workers per machine)")
        except (AudioTaggerError, OSError) as exc:
            msg = error_line(exc).removeprefix("audiotagger: error: ")
            row.update(status="failed", error=msg if given in msg or key in msg else f"{given}: {msg}")
        except Exception as exc:  # noqa: BLE001  (a bug must fail this file, not a night's run)
            row.update(status="failed", error=f"{given}: internal error {type(exc).__name__}: {exc}")
        end = time.time()
        row.update(end=end, duration_s=end - start)
        return row


def _gb(value) -> str:
    return "the worker's limit" if not value else f"{value / 2**30:.1f} GB"
