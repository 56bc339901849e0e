"""Write PANNs checkpoints in PyTorch's exact file format without torch (for the tests).

``write_pth`` produces what ``torch.save(obj, path)`` writes (zip layout): ``<name>/data.pkl``
pickled with protocol 2, tensors as ``torch._utils._rebuild_tensor_v2`` calls whose storages are
persistent ids ``('storage', torch.<T>Storage, key, 'cpu', numel)``, ``<name>/data/<key>`` raw
little-endian bytes, ``<name>/version`` and ``<name>/byteorder``. ``panns_state_dict`` returns the
official parameter names and shapes of CNN14/CNN10/CNN6 (frozen front-end tensors and batch-norm
``num_batches_tracked`` included) with non-trivial values.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np

from audiotagger.panns.checkpoint import layer_tensors
from audiotagger.panns.frontend import mel_filters

_STORAGE_NAMES = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage",
                  np.dtype("int64"): "LongStorage", np.dtype("int32"): "IntStorage",
                  np.dtype("uint8"): "ByteStorage", np.dtype("bool"): "BoolStorage"}


class Global:
    """A ``module.name`` reference written as a pickle GLOBAL without importing it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # never called: pickle only requires the reducer to be callable
        raise TypeError(f"{self.module}.{self.name} is a stand-in")


class Raw:
    """An object pickled as an arbitrary ``callable(*args)`` (to build forbidden pickles)."""

    def __init__(self, func: Global, args: tuple):
        self.func, self.args = func, args


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _TorchPickler(pickle._Pickler):  # the pure-Python pickler lets us write GLOBALs by name
    def __init__(self, file):
        super().__init__(file, protocol=2)
        self.storages: list[_Storage] = []

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            name = _STORAGE_NAMES[obj.array.dtype]
            return ("storage", Global("torch", name), obj.key, "cpu", int(obj.array.size))
        return None

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            array = np.array(obj, order="C", copy=True)
            storage = _Storage(str(len(self.storages)), array)
            self.storages.append(storage)
            stride = tuple(s // array.itemsize for s in array.strides) if array.size else \
                tuple(int(np.prod(array.shape[i + 1:])) for i in range(array.ndim))
            return (Global("torch._utils", "_rebuild_tensor_v2"),
                    (storage, 0, tuple(array.shape), stride, False, collections.OrderedDict()))
        if isinstance(obj, Raw):
            return (obj.func, obj.args)
        return NotImplemented

    def save_global_ref(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[Global] = save_global_ref


def pth_bytes(obj, name: str = "archive") -> bytes:
    """Return the bytes ``torch.save(obj)`` would write, numpy arrays standing for tensors."""
    buf = io.BytesIO()
    pickler = _TorchPickler(buf)
    pickler.dump(obj)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{name}/data.pkl", buf.getvalue())
        zf.writestr(f"{name}/byteorder", "little")
        for storage in pickler.storages:
            little = storage.array.astype(storage.array.dtype.newbyteorder("<"))
            zf.writestr(f"{name}/data/{storage.key}", little.tobytes())
        zf.writestr(f"{name}/version", "3\n")
    return out.getvalue()


def write_pth(path, obj, name: str | None = None):
    """Write ``obj`` to ``path`` in the zip layout of ``torch.save``; return the path."""
    from pathlib import Path

    path = Path(path)
    path.write_bytes(pth_bytes(obj, name or path.stem.split(".")[0].replace("=", "_")))
    return path


def panns_state_dict(architecture: str, seed: int = 0) -> collections.OrderedDict:
    """Official-format state dict of a PANNs network with random (He-scaled) weights.

    Batch-norm statistics are non-trivial (means around 0.1, variances 0.5–1.5; ``bn0`` like dB
    features), ``num_batches_tracked`` are int64 scalars, and the frozen front-end tensors are there.
    """
    rng = np.random.default_rng(seed)
    state = collections.OrderedDict()
    bins = mel_filters().shape[0]
    n = np.arange(1024)
    angles = 2 * np.pi * np.outer(np.arange(bins), n) / 1024
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / 1024)
    stft = "spectrogram_extractor.stft"
    state[f"{stft}.conv_real.weight"] = (np.cos(angles) * window)[:, None, :].astype(np.float32)
    state[f"{stft}.conv_imag.weight"] = (-np.sin(angles) * window)[:, None, :].astype(np.float32)
    state["logmel_extractor.melW"] = np.array(mel_filters())
    for _, tensors in layer_tensors(architecture).items():
        for key, shape in tensors:
            field = key.rsplit(".", 1)[1]
            if key.startswith("bn0."):
                value = {"weight": rng.uniform(0.5, 1.5, shape), "bias": rng.normal(0, 0.1, shape),
                         "running_mean": rng.normal(-30, 5, shape),
                         "running_var": rng.uniform(100, 300, shape)}[field]
            elif field == "running_mean":
                value = rng.normal(0.1, 0.1, shape)
            elif field == "running_var":
                value = rng.uniform(0.5, 1.5, shape)
            elif field == "weight" and len(shape) == 1:
                value = rng.uniform(0.8, 1.2, shape)
            elif field == "bias":
                value = rng.normal(0, 0.05, shape)
            else:
                fan_in = int(np.prod(shape[1:]))
                value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
            state[key] = np.asarray(value, dtype=np.float32)
            if field == "running_var":
                state[key.replace("running_var", "num_batches_tracked")] = np.array(600000, dtype=np.int64)
    return state
