"""``<out>/_manifest.parquet``: one row per input of an archive run, rewritten atomically as it goes.

Columns: ``path`` (absolute path or URL), ``status`` (done / failed / skipped / pending), ``error``,
``duration_s`` (processing seconds), ``audio_s`` (seconds of audio), ``outputs`` (list of written paths
or URLs), ``worker`` (host:pid), ``node`` (Ray node id), ``start``/``end`` (UTC timestamps) and
``top_classes`` ("name score; ..."). Rows are kept as Arrow columns, never as millions of Python objects;
rows of earlier runs stay, replaced by newer rows of the same path.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterable

import numpy as np

from ..errors import ParameterError
from .params import MANIFEST_INTERVAL, MANIFEST_NAME, MANIFEST_WRITE_SHARE
from .storage import OutputLocation


def schema():
    """The Arrow schema of the manifest."""
    import pyarrow as pa

    ts = pa.timestamp("ms", tz="UTC")
    return pa.schema([("path", pa.string()), ("status", pa.string()), ("error", pa.string()),
                      ("duration_s", pa.float64()), ("audio_s", pa.float64()),
                      ("outputs", pa.list_(pa.string())), ("worker", pa.string()), ("node", pa.string()),
                      ("start", ts), ("end", ts), ("top_classes", pa.string())])


def path_hashes(keys: Iterable[str]) -> np.ndarray:
    """64-bit hashes (uint64, shape (n,)) of input keys: a compact set of millions of paths."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(k.encode("utf-8"), digest_size=8).digest(), "little")
                        for k in keys), dtype=np.uint64)


def contains(sorted_hashes: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Boolean mask (n,): which ``hashes`` are in ``sorted_hashes`` (sorted uint64)."""
    if sorted_hashes.size == 0:
        return np.zeros(hashes.shape, bool)
    pos = np.searchsorted(sorted_hashes, hashes).clip(0, sorted_hashes.size - 1)
    return sorted_hashes[pos] == hashes


class Manifest:
    """The manifest of one output location.

    Parameters
    ----------
    location : OutputLocation
        ``-o``; the manifest is ``<-o>/_manifest.parquet``.
    interval : float
        Seconds between rewrites while rows arrive.
    """

    def __init__(self, location: OutputLocation, interval: float = MANIFEST_INTERVAL):
        self.location = location
        self.target = location.target("", MANIFEST_NAME)
        self.interval = float(interval)
        self.table = schema().empty_table()
        self.rows: list[dict] = []
        self._last_write = time.monotonic()
        self._write_cost = 0.0

    def load(self) -> Manifest:
        """Read the manifest of an earlier run, if there is one.

        Raises
        ------
        ParameterError
            It exists but is not a manifest (the message says to move it away).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = self.location.read_bytes(self.target)
        if data is None:
            return self
        try:
            table = pq.read_table(io.BytesIO(data))
            self.table = table.select(schema().names).cast(schema())
        except (pa.ArrowException, KeyError, ValueError) as exc:
            raise ParameterError(f"{self.target}: not a readable run manifest ({exc}); move it away to "
                                 "start a new run") from None
        return self

    def hashes(self, statuses: Iterable[str]) -> np.ndarray:
        """Sorted hashes of the paths whose (latest) status is one of ``statuses``."""
        import pyarrow.compute as pc

        table = self._merged()
        mask = pc.is_in(table["status"], value_set=_array(list(statuses)))
        # hash the whole column slice by slice and mask the hashes: filtering the table first would copy it
        return self._path_hashes(table["path"], np.asarray(mask.to_numpy(zero_copy_only=False), bool))

    def output_hashes(self, statuses: Iterable[str] = ("done", "skipped")) -> np.ndarray:
        """Sorted hashes of every output path of the rows whose status is one of ``statuses``."""
        import pyarrow.compute as pc

        table = self._merged()
        wanted = np.asarray(pc.is_in(table["status"], value_set=_array(list(statuses)))
                            .to_numpy(zero_copy_only=False), bool)
        outputs = table["outputs"]           # flattened without copying; masked by each output's row
        parents = np.asarray(pc.list_parent_indices(outputs).to_numpy(zero_copy_only=False), np.int64)
        return self._path_hashes(pc.list_flatten(outputs), wanted[parents])

    @staticmethod
    def _path_hashes(paths, mask: np.ndarray | None = None) -> np.ndarray:
        step = 100_000                     # a slice of Python strings at a time, never millions at once
        parts = [path_hashes(paths.slice(i, step).to_pylist()) for i in range(0, len(paths), step)]
        hashes = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        return np.sort(hashes if mask is None else hashes[mask])

    def add(self, row: dict) -> None:
        """Record one finished input (keys of :func:`schema`; missing ones are null)."""
        self.rows.append(row)

    def due(self) -> bool:
        """True when a rewrite is due (interval passed, and at most a small share of the time spent)."""
        wait = max(self.interval, self._write_cost / MANIFEST_WRITE_SHARE)
        return bool(self.rows) and time.monotonic() - self._last_write >= wait

    def write(self) -> None:
        """Rewrite the manifest atomically with every row so far."""
        import pyarrow.parquet as pq

        t = time.monotonic()
        self.table = self._merged()
        self.rows = []
        buf = io.BytesIO()
        pq.write_table(self.table, buf)
        self.location.write_bytes(self.target, buf.getvalue())
        self._last_write = time.monotonic()
        self._write_cost = self._last_write - t

    def _merged(self):
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self.rows:
            return self.table
        new = pa.Table.from_pylist(self.rows, schema=schema())
        # the last row of a path wins (a retried file, a rerun of a failed one)
        new_keys = pa.array(self.rows[i]["path"] for i in range(len(self.rows)))
        replaced = pc.is_in(self.table["path"], value_set=new_keys)
        if len(set(new_keys.to_pylist())) != len(self.rows):
            seen, keep = set(), []
            for i in range(len(self.rows) - 1, -1, -1):
                if self.rows[i]["path"] not in seen:
                    seen.add(self.rows[i]["path"])
                    keep.append(i)
            new = new.take(pa.array(sorted(keep)))
        # new paths only (the usual case): no copy of the old rows, concat_tables only links their chunks
        old = self.table.filter(pc.invert(replaced)) if pc.any(replaced).as_py() else self.table
        return pa.concat_tables([old, new])

    def add_missing(self, chunks: Iterable[list], status: str, reason: str) -> int:
        """Add a ``status`` row with ``reason`` for every input key of ``chunks`` that has no row yet.

        Returns
        -------
        int
            Rows added.
        """
        import pyarrow as pa

        table = self._merged()
        self.table, self.rows = table, []
        known = self._path_hashes(table["path"])          # 8 bytes per row, not a set of strings
        added = []
        for chunk in chunks:
            mask = ~contains(known, path_hashes(item.key for item in chunk))
            if mask.any():
                missing = pa.array([item.key for item, m in zip(chunk, mask, strict=True) if m], pa.string())
                n = len(missing)
                added.append(pa.table({"path": missing, "status": pa.array([status] * n),
                                       "error": pa.array([reason] * n)}))
        if not added:
            return 0
        full = []
        for t in added:
            cols = {name: t[name] if name in t.column_names else
                    pa.nulls(t.num_rows, schema().field(name).type) for name in schema().names}
            full.append(pa.table(cols, schema=schema()))
        self.table = pa.concat_tables([self.table, *full])
        return sum(t.num_rows for t in full)

    def counts(self) -> dict[str, int]:
        """Rows per status."""
        import pyarrow.compute as pc

        table = self._merged()
        values = pc.value_counts(table["status"]).to_pylist() if table.num_rows else []
        return {v["values"]: v["counts"] for v in values}

    def outputs(self, suffix: str, statuses: Iterable[str] = ("done", "skipped")) -> list[str]:
        """Every output path ending in ``suffix`` of the rows whose status is one of ``statuses``."""
        import pyarrow.compute as pc

        table = self._merged()
        rows = table.filter(pc.is_in(table["status"], value_set=_array(list(statuses))))
        return [p for p in pc.list_flatten(rows["outputs"]).to_pylist() if p and p.endswith(suffix)]

    def failed(self, limit: int = 20) -> list[tuple[str, str]]:
        """``(path, error)`` of up to ``limit`` failed rows."""
        import pyarrow.compute as pc

        table = self._merged()
        rows = table.filter(pc.equal(table["status"], "failed")).slice(0, limit)
        return list(zip(rows["path"].to_pylist(), rows["error"].to_pylist(), strict=True))


def _array(values):
    import pyarrow as pa

    return pa.array(values, pa.string())
