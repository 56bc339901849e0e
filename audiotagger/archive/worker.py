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


def lift_memory_limit() -> None:
    """Undo :func:`limit_memory`: the soft ``RLIMIT_DATA`` back to the hard one."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))


def configure_engines(threads: int) -> None:
    """Settings of a long-running worker, before any model loads.

    ONNX Runtime and TensorFlow get ``threads`` threads per pool (the worker's CPU share; without it each
    worker runs one per core of its machine), and VGGish's dense part is packed at load instead of during
    the first long file (:func:`audiotagger.engine.runtime.configure`). TensorFlow reads its settings from
    the environment when (and only if) a job imports it.
    """
    from ..engine.runtime import configure

    configure(threads=threads, prepack_early=True)
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, int(threads)))


def default_memory(workers_here: float) -> int | None:
    """Bytes one file may take when ``--memory-per-worker`` is not given.

    :data:`~.params.MEMORY_SHARE` of this machine's memory, shared by the ``workers_here`` workers that fit
    on its node. A file needing more fails as "out of memory" in its worker, before Ray's memory monitor
    or the kernel kills the process (which would cost the other files in flight and
    :data:`~.params.MAX_TASK_RETRIES` retries). None when the machine's memory is unknown.
    """
    from .params import MEMORY_SHARE

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
    return int(total * MEMORY_SHARE / max(1.0, workers_here))


def workers_on_node(node: str, cpus_per_worker: float) -> float:
    """How many workers of ``cpus_per_worker`` CPUs the Ray node ``node`` holds (1 outside Ray)."""
    try:
        import ray

        cpus = next(n["Resources"].get("CPU", 1) for n in ray.nodes() if n["NodeID"] == node)
    except Exception:  # noqa: BLE001  (outside Ray, or the node not listed)
        return 1.0
    return max(1.0, cpus // max(cpus_per_worker, 1e-3))


class ArchiveWorker:
    """A callable class for ``Dataset.map_batches``: loads the job once, processes one batch of inputs.

    Parameters
    ----------
    spec : dict
        The job spec (:func:`.jobs.make_job`), with ``output`` (the ``-o`` location), ``overwrite``,
        ``threads``, ``memory`` (bytes a file may add; None: :func:`default_memory`) and ``worker_cpus``
        (CPUs each worker holds).
    """

    def __init__(self, spec: dict[str, Any]):
        from .storage import OutputLocation

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        configure_engines(spec.get("threads") or 1)
        self.spec = spec
        self._load_job()
        self.out = OutputLocation(spec["output"])
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        try:
            import ray

            self.node = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001  (outside Ray, e.g. in a unit test)
            self.node = ""
        self.memory = spec.get("memory") or default_memory(workers_on_node(self.node,
                                                                           spec.get("worker_cpus") or 1))
        limit_memory(self.memory)

    def _load_job(self) -> None:
        from .jobs import make_job

        self.job = make_job(self.spec)
        self.job.load()

    def recover(self) -> None:
        """Reload the job after a file ran out of memory, then set the limit again.

        The file's buffers may stay with the backend (ONNX Runtime's arenas keep what they grew to), which
        would leave the next files less than their budget, down to no room for a thread's stack. So the
        limit is lifted, the backend dropped and loaded afresh, and the limit set from the new footprint.
        """
        import gc

        lift_memory_limit()
        self.job = None
        gc.collect()
        self._load_job()
        limit_memory(self.memory)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Process every input of ``batch`` (columns ``given``, ``key``, ``rel``, ``error``); one row each.

        An input that arrives with an ``error`` (an output name another input claimed) fails unprocessed.
        """
        columns = (batch["given"], batch["key"], batch["rel"], batch["error"])
        rows = [self.process(str(g), str(k), str(r), str(e)) for g, k, r, e in zip(*columns, strict=True)]
        out = {}
        for col in ROW_COLUMNS:
            values = [row[col] for row in rows]
            out[col] = np.array(values, dtype=np.float64 if col in ("duration_s", "audio_s", "start", "end")
                                else object)
        return out

    def process(self, given: str, key: str, rel: str, error: str = "") -> dict[str, Any]:
        """Process one input and return its row; errors fail the row, never the worker."""
        from ..cli.common import error_line
        from ..errors import AudioTaggerError
        from .storage import fetched

        start = time.time()
        row = {"path": key, "status": "done", "error": "", "audio_s": np.nan, "outputs": "",
               "worker": self.worker, "node": self.node, "start": start, "top_classes": "", "summary": "",
               "record": b""}
        if error:
            row.update(status="failed", error=error, end=start, duration_s=0.0)
            return row
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
                                              f"{_gb(self.memory)} for one file; raise "
                                              "--memory-per-worker or use fewer --workers per machine)")
            self.recover()
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
