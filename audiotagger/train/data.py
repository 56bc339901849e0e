"""Readers of AudioSet embeddings: the official TFRecords (folder or glob) and the packed HDF5 layout.

Both give an :class:`EmbeddingSet`: ``x`` uint8 (N, 10, 128), ``y`` bool (N, 527), ``video_ids`` (N,) str
and ``n_frames`` (N,) — the real seconds per clip. Clips under 10 seconds are completed to 10 rows by
cyclic tiling (:func:`audiotagger.classifier.tile_to_ten`, the rule the tagger uses for context windows);
the packed HDF5 zero-pads them and records ``n_frames``, which is used to re-tile, so both readers return
the same arrays for the same clips. Embeddings stay uint8: the scaling ``(q - 128) / 128`` happens per
batch inside the model call, never on the whole set.
"""

from __future__ import annotations

import glob
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..classifier.tiling import retile
from ..errors import AudioTaggerWarning, DataError
from ..params import CLIP_SECONDS, EMBEDDING_SIZE, LAZY_H5_BYTES, NUM_CLASSES
from ..records import EMBEDDING_KEY, END_TIME_KEY, LABELS_KEY, START_TIME_KEY, VIDEO_ID_KEY

SPLITS = ("bal_train", "unbal_train", "eval")
"""AudioSet split names, as folder names (TFRecords) or ``<split>.h5`` files in a data folder."""
TRAIN_SPLITS = ("bal_train", "unbal_train")
log = logging.getLogger("audiotagger.train")
PACK_BLOCK = 65536
"""Clips copied at a time (80 MB) when :func:`pack_tfrecords` writes the packed ``x``."""


@dataclass
class EmbeddingSet:
    """Clips of AudioSet embeddings with their labels.

    Attributes
    ----------
    x : numpy.ndarray (or h5py.Dataset for lazy HDF5), uint8, shape (N, 10, 128)
        Clips; rows past ``n_frames`` are already tiled unless ``lazy`` (then :meth:`batch` tiles them).
    y : numpy.ndarray of bool, shape (N, 527)
    video_ids : numpy.ndarray of str, shape (N,)
    n_frames : numpy.ndarray of int16, shape (N,)
        Real seconds per clip (1 to 10).
    source : str
        Where the clips came from (for messages).
    """

    x: np.ndarray
    y: np.ndarray
    video_ids: np.ndarray
    n_frames: np.ndarray
    source: str = ""
    lazy: bool = False
    _keep: list = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batch(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x uint8 (B, 10, 128), y bool (B, 527))`` for the clip indices ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)
        if self.lazy:
            order = np.argsort(idx, kind="stable")
            uniq, inverse = np.unique(idx[order], return_inverse=True)
            block = np.asarray(self.x[uniq])
            x = np.empty((idx.size, *block.shape[1:]), dtype=np.uint8)
            x[order] = block[inverse]
            short = self.n_frames[idx] < CLIP_SECONDS
            if short.any():
                x[short] = retile(x[short], self.n_frames[idx][short])
        else:
            x = self.x[idx]
        return x, self.y[idx]

    def subset(self, idx) -> EmbeddingSet:
        """Return the clips ``idx`` as a new in-memory set."""
        idx = np.asarray(idx, dtype=np.int64)
        x, y = self.batch(idx)
        return EmbeddingSet(x, y, self.video_ids[idx], self.n_frames[idx], self.source)

    def materialize(self) -> EmbeddingSet:
        """Return an in-memory version of this set (itself when it already is)."""
        return self.subset(np.arange(len(self))) if self.lazy else self


class StackedClips:
    """Clips of several sources read as one ``(N, 10, 128)`` uint8 array, lazily (memory maps stay maps).

    Indexing with a sorted array of unique clip indices (what :meth:`EmbeddingSet.batch` does) reads each
    part's own rows; nothing is copied up front.
    """

    dtype = np.dtype(np.uint8)

    def __init__(self, parts: list):
        self.parts = parts
        self.offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        self.shape = (int(self.offsets[-1]), *parts[0].shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((idx.size, *self.shape[1:]), dtype=np.uint8)
        part = np.searchsorted(self.offsets, idx, side="right") - 1
        for k in np.unique(part):
            sel = part == k
            out[sel] = np.asarray(self.parts[k][idx[sel] - self.offsets[k]])
        return out


def concatenate(sets: list[EmbeddingSet], *, lazy: bool = False) -> EmbeddingSet:
    """Join sets in memory (uint8, no float copy); with ``lazy`` or a lazy part, as :class:`StackedClips`."""
    if len(sets) == 1:
        return sets[0]
    if lazy or any(s.lazy for s in sets):
        return EmbeddingSet(StackedClips([s.x for s in sets]), np.concatenate([s.y for s in sets]),
                            np.concatenate([s.video_ids for s in sets]),
                            np.concatenate([s.n_frames for s in sets]), " + ".join(s.source for s in sets),
                            lazy=True, _keep=[k for s in sets for k in s._keep])
    sets = [s.materialize() for s in sets]
    return EmbeddingSet(np.concatenate([s.x for s in sets]), np.concatenate([s.y for s in sets]),
                        np.concatenate([s.video_ids for s in sets]),
                        np.concatenate([s.n_frames for s in sets]), " + ".join(s.source for s in sets))


# --- HDF5 -------------------------------------------------------------------------------------------------

def read_h5(path: str | os.PathLike, *, lazy: bool = False) -> EmbeddingSet:
    """Read the packed HDF5 layout (``x``, ``y``, ``video_id_list``, optional ``n_frames``).

    Parameters
    ----------
    path : path-like
        The ``.h5`` file.
    lazy : bool
        Keep ``x`` on disk (memory-mapped when stored contiguous and uncompressed, else read chunk-wise
        per batch) — for sets larger than memory. Labels and ids are read into memory (small).

    Returns
    -------
    EmbeddingSet

    Raises
    ------
    DataError
        Naming the file and the dataset whose shape or dtype is wrong.
    """
    import h5py

    path = Path(path)
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: cannot open as HDF5 ({exc})") from None
    try:
        for key in ("x", "y", "video_id_list"):
            if key not in fh:
                raise DataError(f"{path}: no dataset {key!r} (expected x, y, video_id_list)")
        dx, dy, dv = fh["x"], fh["y"], fh["video_id_list"]
        n = dx.shape[0] if dx.ndim else 0
        if dx.dtype != np.uint8 or dx.shape[1:] != (CLIP_SECONDS, EMBEDDING_SIZE):
            raise DataError(f"{path}: x must be uint8 (N, {CLIP_SECONDS}, {EMBEDDING_SIZE}), "
                            f"got {dx.dtype} {dx.shape}")
        if dy.shape != (n, NUM_CLASSES) or not (dy.dtype == np.bool_ or np.issubdtype(dy.dtype, np.integer)):
            raise DataError(f"{path}: y must be bool (N={n}, {NUM_CLASSES}), got {dy.dtype} {dy.shape}")
        if dv.shape != (n,):
            raise DataError(f"{path}: video_id_list must have shape ({n},), got {dv.shape}")
        if n == 0:
            raise DataError(f"{path}: contains no clips")
        y = dy[()]
        if y.dtype != np.bool_:
            if y.min() < 0 or y.max() > 1:
                raise DataError(f"{path}: y must hold 0/1 labels, found values {y.min()}..{y.max()}")
            y = y.astype(bool)
        raw_ids = dv[()]
        video_ids = (np.char.decode(raw_ids, "utf-8") if raw_ids.dtype.kind == "S" else
                     np.array([v.decode() if isinstance(v, bytes) else str(v) for v in raw_ids]))
        if "n_frames" in fh:
            n_frames = fh["n_frames"][()].astype(np.int16)
            if n_frames.shape != (n,) or n_frames.min() < 1 or n_frames.max() > CLIP_SECONDS:
                raise DataError(f"{path}: n_frames must be (N,) within 1..{CLIP_SECONDS}")
        else:
            n_frames = np.full(n, CLIP_SECONDS, dtype=np.int16)
        if lazy:
            x = _memmap(path, dx)
            keep = [fh] if x is dx else []
            if x is not dx:
                fh.close()
            return EmbeddingSet(x, y, video_ids, n_frames, str(path), lazy=True, _keep=keep)
        x = dx[()]
    except DataError:
        fh.close()
        raise
    fh.close()
    short = n_frames < CLIP_SECONDS
    if short.any():
        x[short] = retile(x[short], n_frames[short])
    return EmbeddingSet(x, y, video_ids, n_frames, str(path))


def _memmap(path: Path, dset):
    """Memory-map a contiguous, uncompressed dataset; otherwise return the h5py dataset itself."""
    offset = dset.id.get_offset()
    if dset.chunks is None and dset.compression is None and offset is not None:
        return np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=dset.shape)
    return dset


# --- TFRecords --------------------------------------------------------------------------------------------

def tfrecord_files(spec: str | os.PathLike) -> list[Path]:
    """Resolve a folder, glob pattern or single file to a sorted list of ``.tfrecord`` files.

    Raises
    ------
    DataError
        If nothing matches.
    """
    text = str(spec)
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    elif Path(text).is_dir():
        files = sorted(Path(text).glob("*.tfrecord"))
    elif Path(text).is_file():
        files = [Path(text)]
    else:
        raise DataError(f"{text}: no such file or folder")
    if not files:
        raise DataError(f"{text}: no .tfrecord files found")
    return files


def read_tfrecords(spec: str | os.PathLike, *, parallel: int | None = None) -> EmbeddingSet:
    """Read AudioSet embedding TFRecords (``tf.train.SequenceExample``) in parallel with ``tf.data``.

    Parameters
    ----------
    spec : path-like or str
        A folder of ``*.tfrecord`` files (e.g. Google's ``bal_train/``), a glob pattern, or one file.
    parallel : int, optional
        Files read at once (default: tf.data autotuning).

    Returns
    -------
    EmbeddingSet
        Clips in file order (files sorted by name), tiled to 10 rows; clips with more than 10 seconds keep
        the first 10; clips with no embedding are skipped with an :class:`AudioTaggerWarning`.

    Raises
    ------
    DataError
        For an unreadable record, an embedding that is not 128 bytes, or a label outside 0..526 —
        naming the file.
    """
    xs, ids, ns, rows, labs = [], [], [], [], []
    total = 0
    for part in _record_batches(spec, parallel):
        xs.append(part["x"])
        ids.append(part["id"])
        ns.append(part["n"])
        rows.append(part["lab_row"] + total)
        labs.append(part["lab"])
        total += len(part["x"])
    x = np.concatenate(xs)
    n_frames = np.concatenate(ns)
    y = np.zeros((total, NUM_CLASSES), dtype=bool)
    y[np.concatenate(rows), np.concatenate(labs)] = True
    video_ids = np.array([v.decode() for v in np.concatenate(ids)])
    keep = n_frames > 0
    if not keep.all():
        _warn_empty(spec, int((~keep).sum()))
        x, y, video_ids, n_frames = x[keep], y[keep], video_ids[keep], n_frames[keep]
    short = n_frames < CLIP_SECONDS
    if short.any():
        x[short] = retile(x[short], n_frames[short])
    return EmbeddingSet(x, y, video_ids, n_frames, str(spec))


def pack_tfrecords(spec: str | os.PathLike, target: str | os.PathLike, *,
                   parallel: int | None = None) -> Path:
    """Stream TFRecords into one packed ``.h5`` (``x`` contiguous, so :func:`read_h5` memory-maps it).

    One parsed batch (2,048 clips) is in memory at a time; the embeddings go to an unnamed temporary file
    beside ``target`` and are copied into the HDF5 dataset :data:`PACK_BLOCK` clips at a time; the labels
    are kept as (row, class) pairs until the end.
    For AudioSet's unbal_train (2 M clips) that is about 0.3 GB of memory instead of the 6 GB that reading
    the records into memory takes. The file appears at ``target`` only when complete.

    Returns
    -------
    pathlib.Path
        ``target``.

    Raises
    ------
    DataError
        As :func:`read_tfrecords`; ``OSError`` when ``target`` cannot be written.
    """
    import tempfile

    import h5py

    from ..fileio import atomic_path

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    ids, ns, rows, labs = [], [], [], []
    total, empty, row_bytes = 0, 0, CLIP_SECONDS * EMBEDDING_SIZE
    with tempfile.TemporaryFile(dir=target.parent, prefix=".packing-") as raw:
        for part in _record_batches(spec, parallel):
            keep = part["n"] > 0
            raw.write(part["x"][keep].tobytes())              # zero-padded, as the packed layout keeps them
            new_row = np.cumsum(keep) - 1 + total              # batch row → packed row
            lab_keep = keep[part["lab_row"]]
            rows.append(new_row[part["lab_row"][lab_keep]])
            labs.append(part["lab"][lab_keep])
            ids.append(part["id"][keep])
            ns.append(part["n"][keep])
            total += int(keep.sum())
            empty += int((~keep).sum())
        if empty:
            _warn_empty(spec, empty)
        if total == 0:
            raise DataError(f"{spec}: the TFRecord files hold no clips with embeddings")
        raw.seek(0)
        with atomic_path(target) as out, h5py.File(out, "w") as fh:
            dx = fh.create_dataset("x", (total, CLIP_SECONDS, EMBEDDING_SIZE), np.uint8)   # contiguous
            for start in range(0, total, PACK_BLOCK):
                n = min(PACK_BLOCK, total - start)
                dx[start:start + n] = np.frombuffer(raw.read(n * row_bytes), np.uint8).reshape(
                    n, CLIP_SECONDS, EMBEDDING_SIZE)
            y = np.zeros((total, NUM_CLASSES), dtype=bool)
            y[np.concatenate(rows), np.concatenate(labs)] = True
            fh.create_dataset("y", data=y)
            fh.create_dataset("video_id_list", data=np.concatenate(ids))
            fh.create_dataset("n_frames", data=np.concatenate(ns))
            fh.attrs["source"] = str(spec)
    return target


def _warn_empty(spec, count: int) -> None:
    warnings.warn(f"{spec}: skipped {count} clip(s) without embeddings", AudioTaggerWarning, stacklevel=3)


def _record_batches(spec: str | os.PathLike, parallel: int | None):
    """Yield parsed, checked batches of TFRecords.

    Each is a dict: ``x`` uint8 (B, 10, 128) zero-padded, ``n`` int16 (B,) seconds (0: no embedding),
    ``id`` (B,) bytes, ``lab_row`` / ``lab`` int64 (row in the batch, class) pairs.
    """
    import tensorflow as tf

    files = tfrecord_files(spec)
    autotune = tf.data.AUTOTUNE
    n_par = parallel or autotune
    context = {
        VIDEO_ID_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
        START_TIME_KEY: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
        END_TIME_KEY: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
        LABELS_KEY: tf.io.VarLenFeature(tf.int64),
    }
    sequence = {EMBEDDING_KEY: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)}

    def parse(file_index, serialized):
        ctx, seq, lengths = tf.io.parse_sequence_example(serialized, context_features=context,
                                                         sequence_features=sequence)
        emb = seq[EMBEDDING_KEY][:, :CLIP_SECONDS]
        width = tf.strings.length(emb)                                  # 0 for padding
        raw = tf.io.decode_raw(emb, tf.uint8, fixed_length=EMBEDDING_SIZE)
        pad = CLIP_SECONDS - tf.shape(raw)[1]
        raw = tf.pad(raw, [[0, 0], [0, pad], [0, 0]])
        width = tf.pad(width, [[0, 0], [0, pad]])
        labels = ctx[LABELS_KEY]
        return {"file": file_index, "x": raw, "width": width,
                "n": tf.cast(lengths[EMBEDDING_KEY], tf.int32), "id": ctx[VIDEO_ID_KEY],
                "lab_row": tf.cast(labels.indices[:, 0], tf.int32), "lab": labels.values}

    names = [str(f) for f in files]
    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(names), dtype=tf.int32), names))
    ds = ds.interleave(
        lambda i, f: tf.data.TFRecordDataset(f).map(lambda s: (i, s)),
        cycle_length=min(64, len(names)), block_length=1, num_parallel_calls=n_par, deterministic=True)
    ds = ds.batch(2048)
    ds = ds.map(parse, num_parallel_calls=n_par, deterministic=True).prefetch(autotune)
    seen = False
    try:
        for part in ds.as_numpy_iterator():
            width, n = part["width"], part["n"]
            valid = np.arange(CLIP_SECONDS)[None, :] < np.minimum(n, CLIP_SECONDS)[:, None]
            bad = valid & (width != EMBEDDING_SIZE)
            if bad.any():
                i = int(np.argwhere(bad)[0, 0])
                raise DataError(f"{names[part['file'][i]]}: clip {part['id'][i].decode()!r} has an "
                                f"embedding of {int(width[bad][0])} bytes, expected {EMBEDDING_SIZE}")
            lab = part["lab"]
            if lab.size and (lab.min() < 0 or lab.max() >= NUM_CLASSES):
                j = int(np.argmax((lab < 0) | (lab >= NUM_CLASSES)))
                i = int(part["lab_row"][j])
                raise DataError(f"{names[part['file'][i]]}: clip {part['id'][i].decode()!r} has label "
                                f"{int(lab[j])} outside 0..{NUM_CLASSES - 1}")
            seen = True
            yield {"x": part["x"], "n": np.minimum(n, CLIP_SECONDS).astype(np.int16), "id": part["id"],
                   "lab_row": part["lab_row"].astype(np.int64), "lab": lab.astype(np.int64)}
    except tf.errors.OpError as exc:
        raise DataError(f"{spec}: cannot read TFRecords ({exc.message.splitlines()[0]})") from None
    if not seen:
        raise DataError(f"{spec}: the TFRecord files hold no examples")


# --- any source -------------------------------------------------------------------------------------------

def read_embeddings(spec: str | os.PathLike, *, lazy: bool = False) -> EmbeddingSet:
    """Read one source: an ``.h5`` file, a folder/glob of TFRecords, or one ``.tfrecord`` file.

    With ``lazy``, or TFRecords larger than :data:`~audiotagger.params.LAZY_H5_BYTES` in all (AudioSet's
    unbal_train), the records are packed once into the model cache (:func:`pack_tfrecords`,
    :func:`packed_path`) and memory-mapped from there, as a large ``.h5`` is.

    Raises
    ------
    DataError
        If the source does not exist, holds nothing, or is malformed.
    """
    text = str(spec)
    path = Path(text)
    if path.suffix in (".h5", ".hdf5") and path.is_file():
        return read_h5(path, lazy=lazy or path.stat().st_size > LAZY_H5_BYTES)
    if any(c in text for c in "*?["):
        matches = sorted(glob.glob(text, recursive=True))
        if matches and all(m.endswith((".h5", ".hdf5")) for m in matches):
            return concatenate([read_h5(m, lazy=lazy) for m in matches])
    if path.is_dir() and not any(path.glob("*.tfrecord")):
        found = find_splits(path)
        if found:
            return concatenate([read_embeddings(found[s], lazy=lazy) for s in found])
    files = tfrecord_files(spec)
    if not lazy and sum(f.stat().st_size for f in files) <= LAZY_H5_BYTES:
        return read_tfrecords(spec)
    packed = packed_path(files)
    if not packed.is_file():
        log.info("%s: packing %d TFRecord files once into %s (later runs memory-map it)", spec, len(files),
                 packed)
        pack_tfrecords(spec, packed)
    clips = read_h5(packed, lazy=True)
    clips.source = f"{spec} (packed: {packed})"
    return clips


def packed_path(files: list[Path]) -> Path:
    """Where :func:`read_embeddings` keeps the packed copy of these TFRecord files.

    ``<cache>/packed/<folder>-<digest>.h5`` in the model cache (:func:`audiotagger.hub.cache_dir`); the
    digest covers every file's path, size and modification time, so a changed file makes a new copy.
    """
    import hashlib

    from ..hub import cache_dir

    digest = hashlib.blake2b(digest_size=10)
    for f in files:
        st = f.stat()
        digest.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    name = files[0].resolve().parent.name or "records"
    return cache_dir() / "packed" / f"{name}-{digest.hexdigest()}.h5"


def find_splits(folder: str | os.PathLike) -> dict[str, Path]:
    """Find AudioSet splits in a folder: ``<split>.h5`` files (preferred) or ``<split>/`` TFRecord folders.

    Returns
    -------
    dict
        Split name → path, for the splits of :data:`SPLITS` present, in that order.
    """
    folder = Path(folder)
    found = {}
    for split in SPLITS:
        h5 = folder / f"{split}.h5"
        if h5.is_file():
            found[split] = h5
        elif (folder / split).is_dir() and any((folder / split).glob("*.tfrecord")):
            found[split] = folder / split
    return found


def load_training_data(data_dir, *, lazy: bool = False) -> tuple[EmbeddingSet, EmbeddingSet | None]:
    """Resolve ``--data-dir`` (one source or several) to a training set and, when there is one, an eval set.

    Several sources (``--data-dir unbal_train/ bal_train/``) are joined in order, lazily when any is lazy
    (see :class:`StackedClips`); their evaluation sets, if any, are joined too. A packed ``.h5`` larger than
    :data:`~audiotagger.params.LAZY_H5_BYTES` is always memory-mapped.

    A folder laid out like the original trainers' (``bal_train.h5`` / ``unbal_train.h5`` / ``eval.h5``,
    or Google's ``bal_train/`` / ``unbal_train/`` / ``eval/`` TFRecord folders; an ``.h5`` is preferred to a
    folder of the same split) trains on the training splits present and evaluates on ``eval``. Any other
    source (one ``.h5``, a TFRecord folder or glob) is the training set, with no evaluation set.

    Raises
    ------
    DataError
        If there is no training data.
    """
    if isinstance(data_dir, (list, tuple)):
        if len(data_dir) != 1:
            if not data_dir:
                raise DataError("--data-dir: no training data given")
            parts = [load_training_data(d, lazy=lazy) for d in data_dir]
            evals = [e for _, e in parts if e is not None]
            return (concatenate([t for t, _ in parts], lazy=lazy),
                    concatenate(evals, lazy=lazy) if evals else None)
        data_dir = data_dir[0]
    path = Path(str(data_dir))
    if path.is_dir() and not any(path.glob("*.tfrecord")):
        found = find_splits(path)
        train = [found[s] for s in TRAIN_SPLITS if s in found]
        if not train:
            raise DataError(f"{path}: no training data (expected bal_train.h5/unbal_train.h5, "
                            "bal_train/ or unbal_train/ TFRecord folders, or .tfrecord files)")
        train_set = concatenate([read_embeddings(p, lazy=lazy) for p in train], lazy=lazy)
        eval_set = read_embeddings(found["eval"], lazy=lazy) if "eval" in found else None
        return train_set, eval_set
    return read_embeddings(data_dir, lazy=lazy), None
