"""Run an archive job on Ray: connect, build the Ray Data pipeline, record the manifest, summarise.

``run_archive`` is what ``audiotagger tag --ray`` and ``audiotagger embed --ray`` call. The pipeline::

    inputs (arguments; --input-list read by Ray Data) ─▶ normalise + select (skip what the manifest says
    is done) ─▶ ArchiveWorker actor pool (one backend per worker, one file per call) ─▶ driver: rows into
    the manifest (rewritten atomically every few seconds), TFRecord shards, summary

Usage errors (a malformed list line, an unreachable store, a missing bucket, a cluster that does not
answer) are raised as :class:`~audiotagger.errors.ParameterError` before anything is written.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioTaggerError, ParameterError
from .inputs import InputSource, clean_line
from .manifest import Manifest, contains, path_hashes
from .params import DEFAULT_SHARD_SIZE, MAX_TASK_RETRIES
from .storage import OutputLocation, normalize

FORWARDED_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "GOOGLE_APPLICATION_CREDENTIALS",
                 "AUDIOTAGGER_HOME")
"""Environment variables the workers get from the driver (object-store endpoint and credentials, model
cache), so that one command line means the same on every node."""
LIGHT = {"num_cpus": 0, "concurrency": 1}
"""Ray Data options of the pipeline's light stages (list lines, selection): no CPU reserved, so they never
wait for the workers' CPUs, and one task at a time, so Ray starts one worker process for them rather than
one per block (each a Python start-up: on 2 cores, 40 inputs once cost a minute)."""
MODES = ("default", "retry-failed", "only-new")
"""Which inputs a rerun processes: all not done / only those that failed / only those never tried."""


@dataclass
class ArchiveRun:
    """Counts of one run (this invocation), for the summary and the exit code."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    audio_s: float = 0.0
    seconds: float = 0.0
    interrupted: bool = False
    missing: int = 0

    @property
    def exit_code(self) -> int:
        """130 when interrupted, 1 when an input failed or did not finish, else 0."""
        if self.interrupted:
            return 130
        return 1 if self.failed or self.missing else 0


# --- pipeline stages (module level: Ray pickles them by reference) ----------------------------------

def normalize_lines(batch: dict[str, np.ndarray], cwd: str) -> dict[str, np.ndarray]:
    """Input-list lines (column ``text``) → ``given``, ``key``, ``rel`` (blank lines, comments dropped)."""
    given = [line for line in (clean_line(str(t)) for t in batch["text"]) if line is not None]
    return {"given": np.array(given, dtype=object),
            "key": np.array([normalize(g, cwd) for g in given], dtype=object),
            "rel": np.array([""] * len(given), dtype=object)}


class Selector:
    """The pipeline's selection stage (one actor, so one memory of this run's outputs).

    Drops the inputs a rerun does not redo, and fails an input whose outputs another input already
    claimed (two inputs with the same file name in one ``-o`` folder, as from an input list of
    ``a/rec.wav`` and ``b/rec.wav``): the first to arrive keeps the name, the other gets an ``error``,
    so no output is ever written over by another input's.

    Parameters
    ----------
    spec : dict
        The job spec, with ``output``.
    skip, only : numpy.ndarray
        Sorted uint64 path hashes (:func:`.manifest.path_hashes`): drop these / keep only these (None: all).
    taken : numpy.ndarray
        Sorted uint64 hashes of the outputs of earlier runs' finished rows (``Manifest.output_hashes``).
    """

    def __init__(self, spec: dict[str, Any], skip: np.ndarray, only: np.ndarray | None, taken: np.ndarray):
        from .jobs import make_job

        self.job, self.out = make_job(spec), OutputLocation(spec["output"])
        self.skip, self.only, self.taken = skip, only, taken
        self.claimed: set[int] = set()       # one 64-bit hash per input of this run: <out>/<rel>/<stem>

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Columns ``given``, ``key``, ``rel`` → the selected rows, with ``error`` ("" or the clash)."""
        hashes = path_hashes(str(k) for k in batch["key"])
        keep = ~contains(self.skip, hashes)
        if self.only is not None:
            keep &= contains(self.only, hashes)
        out = {k: v[keep] for k, v in batch.items()}
        out["error"] = np.array([self.claim(str(g), str(r)) for g, r in zip(out["given"], out["rel"],
                                                                             strict=True)], dtype=object)
        return out

    def claim(self, given: str, rel: str) -> str:
        """Claim the outputs of one input; "" or the one-line error of a clash."""
        from .jobs import input_stem

        names = self.job.names(given)
        if not names:
            return ""                                          # records go into shards: no file of its own
        targets = [self.out.target(rel, name) for name in names.values()]
        stem = int(path_hashes([self.out.target(rel, input_stem(given))])[0])
        clash = contains(self.taken, path_hashes(targets))
        if stem in self.claimed or clash.any():
            target = targets[int(np.argmax(clash))] if clash.any() else targets[0]
            return (f"{given}: output {target} is also the output of another input (the same file name); "
                    "tag them into separate -o folders")
        self.claimed.add(stem)
        return ""


# --- connecting ------------------------------------------------------------------------------------

def connect(address: str | None) -> None:
    """``ray.init``: a local cluster (``address`` None) or an existing one.

    ``address`` may be ``auto`` or ``host:port``.

    Raises
    ------
    ParameterError
        When no cluster answers at ``address`` (one line).
    """
    import ray

    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")     # no C++ log lines among the CLI's
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False,
                              "configure_logging": True, "ignore_reinit_error": True}
    try:
        if address is None:    # one logical CPU more than the cores: the light stages' (see worker_cpus)
            ray.init(address="local", include_dashboard=False, num_cpus=(os.cpu_count() or 1) + 1, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParameterError(f"--ray {address}: no Ray cluster answers at this address "
                             f"({text[:160]})") from None


def probe_address(address: str | None, timeout: float = 5.0) -> None:
    """Raise ParameterError unless something accepts TCP connections at ``host:port``.

    ``ray.init`` itself keeps retrying a dead address for minutes; this answers in seconds. A Ray Client
    address (``ray://``) is refused: Ray Data's streaming executor fails through Ray Client (Ray 2.60:
    ``'Worker' object has no attribute 'core_worker'`` once the pipeline starts).
    """
    import socket

    if address is None or address == "auto":
        return
    if address.startswith("ray://"):
        raise ParameterError(f"--ray {address}: a Ray Client address, and Ray Data pipelines do not run "
                             "through Ray Client; run the command on a machine of the cluster with "
                             "--ray auto (or --ray HEAD_IP:6379), or there with `ray job submit -- "
                             "audiotagger ...`")
    host, sep, port = address.rstrip("/").rpartition(":")
    if not sep or not port.isdigit():
        raise ParameterError(f"--ray {address}: expected auto or HOST:PORT (the head's GCS port)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ParameterError(f"--ray {address}: no Ray cluster answers at this address "
                             f"({exc.strerror or type(exc).__name__})") from None


def worker_env() -> dict[str, Any]:
    """Runtime environment of the workers: the driver's object-store settings (:data:`FORWARDED_ENV`)."""
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    return {"env_vars": env} if env else {}


def worker_cpus(cpus: int, workers: int) -> float:
    """CPUs each worker actor reserves: one, but leaving one of the cluster's to the pipeline's light stages.

    Those (reading the input list, splitting it into one task per file) would otherwise wait for a CPU
    that the workers hold.
    """
    return max(0.0, min(1.0, (cpus - 1) / workers))


def cluster_cpus() -> int:
    """Logical CPUs of the connected cluster."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


# --- the run ----------------------------------------------------------------------------------------

def run_archive(spec: dict[str, Any], source: InputSource, output: str, *, address: str | None,
                workers: int | None = None, mode: str = "default", quiet: bool = False,
                manifest_interval: float | None = None, shard_size: int = DEFAULT_SHARD_SIZE) -> int:
    """Process every input of ``source`` on a Ray cluster and return the exit code.

    Parameters
    ----------
    spec : dict
        The job (:mod:`.jobs`): ``command`` and that command's options; paths already absolute.
    source : InputSource
        The inputs.
    output : str
        ``-o``: folder or object-store prefix (also holds ``_manifest.parquet``).
    address : str or None
        None: start a local cluster; otherwise ``auto`` or ``host:port``.
    workers : int, optional
        Worker actors (default: the cluster's CPUs, one CPU each).
    mode : {"default", "retry-failed", "only-new"}
        Which inputs to process on a rerun (see :data:`MODES`).
    quiet : bool
        No per-file lines, progress bar or summary unless something failed.
    manifest_interval : float, optional
        Seconds between manifest rewrites.
    shard_size : int
        Records per TFRecord shard (``embed -f tfrecord``).

    Returns
    -------
    int
        0 all selected inputs done or skipped; 1 some failed or did not finish; 130 interrupted.

    Raises
    ------
    ParameterError
        A usage error found before any work (nothing is written then).
    """
    from .jobs import make_job

    if mode not in MODES:
        raise ParameterError(f"mode: one of {', '.join(MODES)}, got {mode!r}")
    probe_address(address)
    job = make_job(spec)
    job.check()
    location = OutputLocation(output, source.cwd)
    total = source.prepare()
    location.check()
    manifest = Manifest(location, **({} if manifest_interval is None else {"interval": manifest_interval}))
    manifest.load()
    if mode == "default":
        skip, only = manifest.hashes(("done", "skipped")), None
    elif mode == "only-new":
        skip, only = manifest.hashes(("done", "skipped", "failed")), None
    else:
        skip, only = np.zeros(0, np.uint64), manifest.hashes(("failed",))
    import ray

    owned = not ray.is_initialized()        # a caller that already joined a cluster keeps it
    if owned:
        connect(address)
    try:
        cpus = cluster_cpus()
        n_workers = int(workers or max(1, cpus - 1))
        actor_cpus = worker_cpus(cpus, n_workers)
        spec = {**spec, "output": location.root, "mode": mode, "worker_cpus": actor_cpus,
                "threads": max(1, (os.cpu_count() or 1) // n_workers) if owned and address is None else 1}
        select = {"skip": skip, "only": only, "taken": manifest.output_hashes()}
        run = _execute(spec, source, location, manifest, select, n_workers, actor_cpus,
                       quiet, total, shard_size)
    finally:
        if owned:
            ray.shutdown()
    return run.exit_code


def _write_index(location: OutputLocation, manifest: Manifest) -> None:
    """``-f html``: the folder index of every page the manifest lists as done (earlier runs' included)."""
    from ..tag.report import write_index
    from ..tag.report.params import INDEX_NAME

    pages = manifest.outputs(".html")
    if len(pages) > 1 or (pages and Path(location.root, INDEX_NAME).exists()):
        write_index(location.root, pages)


def _dataset(spec, source: InputSource, select: dict[str, Any], n_workers: int, actor_cpus: float):
    import ray.data
    from ray.data import ActorPoolStrategy, DataContext

    from .worker import ArchiveWorker

    logging.getLogger("ray.data").setLevel(logging.CRITICAL)   # failures are in the manifest; set after
                                                               # the import, which configures the logger
    ctx = DataContext.get_current()
    ctx.max_errored_blocks = -1            # a file whose worker keeps dying ends unfinished, not the run
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    parts = []
    if source.items:
        rows = [{"given": i.given, "key": i.key, "rel": i.rel} for i in source.items]
        parts.append(ray.data.from_items(rows, override_num_blocks=min(len(rows), 200)))
    if source.input_list is not None:
        parts.append(source.list_dataset().map_batches(normalize_lines, fn_kwargs={"cwd": source.cwd},
                                                      batch_size=None, **LIGHT))
    ds = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    ds = ds.map_batches(Selector, fn_constructor_kwargs={"spec": spec, **select}, batch_size=None, **LIGHT)
    ds = ds.repartition(target_num_rows_per_block=1)      # one file per task: balance and retry per file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                    # max_* as remote args: deprecated spelling only
        return ds.map_batches(ArchiveWorker, fn_constructor_kwargs={"spec": spec}, batch_size=1,
                              compute=ActorPoolStrategy(size=n_workers), num_cpus=actor_cpus,
                              runtime_env=worker_env(), max_restarts=-1, max_task_retries=MAX_TASK_RETRIES)


def _execute(spec, source, location, manifest: Manifest, select, n_workers, actor_cpus, quiet, total,
             shard_size) -> ArchiveRun:
    from tqdm.auto import tqdm

    run, failure = ArchiveRun(), None
    shards = ShardWriter(location, shard_size) if spec.get("sharded") else None
    for spec_text, why in source.problems:
        manifest.add({"path": normalize(spec_text, source.cwd), "status": "failed",
                      "error": f"{spec_text}: {why}"})
        print(f"audiotagger: error: {spec_text}: {why}", file=sys.stderr)
        run.failed += 1
    t0 = time.monotonic()
    bar = tqdm(total=total, desc=spec["command"], unit="file", disable=quiet, file=sys.stderr)
    status, reason = "failed", ("not finished: its task failed on every attempt "
                                f"({MAX_TASK_RETRIES + 1}): the worker process died (killed, or out of "
                                "memory) or the input list could not be read; see the Ray logs")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"ray\.data")   # tuning hints
    try:
        for row in _dataset(spec, source, select, n_workers, actor_cpus).iter_rows():
            record = _manifest_row(row)
            if record["status"] == "done" and shards is not None:
                for ready in shards.add(record, row["record"]):
                    _count(run, ready, manifest, quiet, "")
            else:
                _count(run, record, manifest, quiet, row["summary"])
            bar.update(1)
            if manifest.due():
                manifest.write()
        if shards is not None:
            for ready in shards.close():
                _count(run, ready, manifest, quiet, "")
        if spec.get("mode") == "retry-failed":
            status, reason = "pending", "not selected: --retry-failed redoes failed inputs only"
    except KeyboardInterrupt:
        run.interrupted = True
        status, reason = "pending", "not finished: the run was interrupted; rerun the command to resume"
        print("audiotagger: interrupted; writing the manifest (rerun the same command to resume)",
              file=sys.stderr)
    except Exception as exc:  # noqa: BLE001  (Ray's own failures: the manifest must still be written)
        text = (str(exc).strip().splitlines() or [""])[-1][:200]
        failure = AudioTaggerError(f"--ray: the Ray Data pipeline stopped ({type(exc).__name__}: {text}); "
                                   f"unfinished inputs are pending in {manifest.target}; rerun to resume")
        status, reason = "pending", f"not finished: {failure}"
    finally:
        bar.close()
        run.seconds = time.monotonic() - t0
        if spec.get("mode") == "retry-failed" or run.interrupted:
            manifest.add_missing(source.chunks(), status, reason)
        else:
            run.missing = manifest.add_missing(source.chunks(), status, reason)
        manifest.write()
    if failure is not None:
        raise failure
    if "html" in spec.get("formats", ()) and not location.remote:
        _write_index(location, manifest)
    _summary(run, manifest, quiet)
    return run


def _manifest_row(row: dict) -> dict:
    def ts(value):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)

    audio = float(row["audio_s"])
    return {"path": row["path"], "status": row["status"], "error": row["error"] or None,
            "duration_s": float(row["duration_s"]), "audio_s": None if np.isnan(audio) else audio,
            "outputs": [p for p in str(row["outputs"]).split("\n") if p], "worker": row["worker"],
            "node": row["node"], "start": ts(row["start"]), "end": ts(row["end"]),
            "top_classes": row["top_classes"] or None}


def _count(run: ArchiveRun, record: dict, manifest: Manifest, quiet: bool, summary: str) -> None:
    from tqdm.auto import tqdm

    manifest.add(record)
    status = record["status"]
    if status == "done":
        run.done += 1
        run.audio_s += record["audio_s"] or 0.0
        if summary and not quiet:
            tqdm.write(summary, file=sys.stdout)
    elif status == "skipped":
        run.skipped += 1
        if not quiet:
            tqdm.write(f"audiotagger: {record['path']}: {record['error']}", file=sys.stderr)
    else:
        run.failed += 1
        tqdm.write(f"audiotagger: error: {record['error']}", file=sys.stderr)


def _summary(run: ArchiveRun, manifest: Manifest, quiet: bool) -> None:
    if quiet and not (run.failed or run.missing):
        return
    hours = run.audio_s / 3600
    rate = run.audio_s / run.seconds if run.seconds else 0.0
    files = run.done + run.failed + run.skipped
    lines = [f"audiotagger: {files} files this run: {run.done} done, {run.skipped} skipped, "
             f"{run.failed} failed{f', {run.missing} not finished' if run.missing else ''}; "
             f"{hours:.2f} h of audio in "
             f"{run.seconds:.1f} s ({files / run.seconds if run.seconds else 0:.2f} files/s, "
             f"{rate:.1f}x real time)"]
    counts = manifest.counts()
    lines.append(f"audiotagger: manifest {manifest.target}: "
                 + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("done", "skipped", "failed", "pending")))
    if run.failed or run.missing:
        lines += [f"  failed: {why if path in why else f'{path}: {why}'}" for path, why in manifest.failed()]
    print("\n".join(lines), file=sys.stderr)


class ShardWriter:
    """AudioSet-format TFRecord shards of ``size`` records, written (atomically) by the driver.

    A file's row becomes ``done`` only when the shard holding its record is written, so an interrupted run
    leaves its unwritten records pending and a rerun redoes them.
    """

    def __init__(self, location: OutputLocation, size: int):
        self.location = location
        self.size = int(size)
        self.run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        self.count = 0
        self.buffer: list[tuple[dict, bytes]] = []

    def add(self, row: dict, record: bytes) -> list[dict]:
        """Queue one record; return the rows of a shard written now (or nothing)."""
        self.buffer.append((row, record))
        return self._write() if len(self.buffer) >= self.size else []

    def close(self) -> list[dict]:
        """Write the last, partial shard."""
        return self._write() if self.buffer else []

    def _write(self) -> list[dict]:
        from ..records import write_tfrecord

        target = self.location.target("", f"shard-{self.run_id}-{self.count:05d}.tfrecord")
        with self.location.staged({"shard": target}) as staged:
            write_tfrecord(staged["shard"], (record for _, record in self.buffer))
        self.count += 1
        rows = [{**row, "outputs": [target]} for row, _ in self.buffer]
        self.buffer = []
        return rows
