"""Mini-batch samplers over clip indices: class-balanced (SPEC §4.6) and plain shuffled.

Both are seeded, reproducible and resumable: :meth:`state` returns plain arrays (no pickle) that
:meth:`load_state` restores, so a run resumed from a checkpoint draws exactly the batches the
uninterrupted run would have drawn.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import DataError
from ..params import SAMPLERS  # noqa: F401  (re-exported; kept in params so --help needs no numpy)


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """The state of ``rng`` as a JSON string array (storable in an ``.npz``)."""
    return np.array(json.dumps(rng.bit_generator.state))


def set_rng_state(rng: np.random.Generator, text) -> None:
    """Restore a state saved by :func:`rng_state`."""
    rng.bit_generator.state = json.loads(str(text))


class BalancedSampler:
    """Class-balanced batches ("balance in batch", SPEC §4.6; Kong et al.'s seeded variant).

    A queue of class ids is filled with shuffled permutations of all classes; each batch takes
    ``batch_size`` class slots from it; for every class ``k`` taking ``n_k`` slots, the next ``n_k`` clips of
    class ``k``'s own shuffled list of positive clips are drawn (cyclic pointer, reshuffled when it wraps).
    The batch is ordered by class. Classes without a positive clip are left out of the queue.

    Parameters
    ----------
    y : numpy.ndarray of bool, shape (N, C)
        Labels of the training clips.
    batch_size : int
    seed : int
    """

    kind = "balanced"

    def __init__(self, y: np.ndarray, batch_size: int, seed: int = 1234):
        y = np.asarray(y, dtype=bool)
        self.batch_size = int(batch_size)
        self.rng = np.random.default_rng(seed)
        counts = y.sum(axis=0)
        self.classes = np.flatnonzero(counts)
        if self.classes.size == 0:
            raise DataError("balanced sampler: no class has a positive clip")
        _, clips = np.nonzero(y.T)                           # class-major: all clips of class 0, then 1...
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.lists = clips.astype(np.int64)                  # per-class clip lists, concatenated
        for k in self.classes:
            self.rng.shuffle(self.lists[self.offsets[k]:self.offsets[k + 1]])
        self.pointers = np.zeros(y.shape[1], dtype=np.int64)
        self.queue = np.zeros(0, dtype=np.int64)

    def next_batch(self) -> np.ndarray:
        """Return the clip indices (int64, shape (batch_size,)) of the next batch."""
        while self.queue.size < self.batch_size:
            self.queue = np.concatenate([self.queue, self.rng.permutation(self.classes)])
        slots, self.queue = self.queue[:self.batch_size], self.queue[self.batch_size:]
        classes, counts = np.unique(slots, return_counts=True)
        out = []
        for k, n_k in zip(classes, counts, strict=True):
            lo, hi = self.offsets[k], self.offsets[k + 1]
            for _ in range(n_k):
                out.append(self.lists[lo + self.pointers[k]])
                self.pointers[k] += 1
                if self.pointers[k] >= hi - lo:
                    self.pointers[k] = 0
                    self.rng.shuffle(self.lists[lo:hi])
        return np.asarray(out, dtype=np.int64)

    def state(self) -> dict[str, np.ndarray]:
        """Return the sampler state as named arrays."""
        return {"kind": np.array(self.kind), "rng": rng_state(self.rng), "lists": self.lists,
                "pointers": self.pointers, "queue": self.queue}

    def load_state(self, state: dict) -> None:
        """Restore a state from :meth:`state` (raises DataError if it belongs to other data)."""
        if str(state["kind"]) != self.kind or state["lists"].shape != self.lists.shape:
            raise DataError("sampler state does not match the training data (different data or split?)")
        set_rng_state(self.rng, state["rng"])
        self.lists = np.array(state["lists"], dtype=np.int64)
        self.pointers = np.array(state["pointers"], dtype=np.int64)
        self.queue = np.array(state["queue"], dtype=np.int64)


class ShuffledSampler:
    """Plain shuffled batches: a new permutation of all clips each epoch, batches taken in order."""

    kind = "shuffled"

    def __init__(self, n: int, batch_size: int, seed: int = 1234):
        if n < 1:
            raise DataError("shuffled sampler: no training clips")
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(self.n)
        self.pointer = 0

    def next_batch(self) -> np.ndarray:
        """Return the clip indices (int64, shape (batch_size,)) of the next batch."""
        out = []
        need = self.batch_size
        while need:
            take = self.order[self.pointer:self.pointer + need]
            out.append(take)
            need -= take.size
            self.pointer += take.size
            if self.pointer >= self.n:
                self.order = self.rng.permutation(self.n)
                self.pointer = 0
        return np.concatenate(out).astype(np.int64)

    def state(self) -> dict[str, np.ndarray]:
        """Return the sampler state as named arrays."""
        return {"kind": np.array(self.kind), "rng": rng_state(self.rng), "lists": self.order,
                "pointers": np.array([self.pointer]), "queue": np.zeros(0, np.int64)}

    def load_state(self, state: dict) -> None:
        """Restore a state from :meth:`state`."""
        if str(state["kind"]) != self.kind or state["lists"].shape != self.order.shape:
            raise DataError("sampler state does not match the training data (different data or split?)")
        set_rng_state(self.rng, state["rng"])
        self.order = np.array(state["lists"], dtype=np.int64)
        self.pointer = int(state["pointers"][0])


def make_sampler(kind: str, y: np.ndarray, batch_size: int, seed: int):
    """Return a :class:`BalancedSampler` or :class:`ShuffledSampler` over the labels ``y``."""
    if kind == "balanced":
        return BalancedSampler(y, batch_size, seed)
    if kind == "shuffled":
        return ShuffledSampler(len(y), batch_size, seed)
    raise ValueError(f"unknown sampler {kind!r}")
