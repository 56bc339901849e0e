"""Read PyTorch ``.pth`` checkpoints without importing torch and without running arbitrary pickle code.

A ``torch.save`` file is a pickle whose tensors point, through *persistent ids*, at raw little-endian
storage bytes. Two layouts exist:

* the zip layout (PyTorch >= 1.6): ``<name>/data.pkl`` (pickle protocol 2), ``<name>/data/<key>``
  (one raw storage per key), ``<name>/version``, ``<name>/byteorder``;
* the legacy layout (older PyTorch, and ``_use_new_zipfile_serialization=False``): a magic number,
  protocol version and system-info pickle, the main pickle, the list of storage keys, then each
  storage as an int64 element count followed by its bytes.

:class:`RestrictedUnpickler` resolves only the globals a tensor dictionary needs
(``torch._utils._rebuild_tensor_v2``, the ``torch.*Storage`` types, ``collections.OrderedDict``, and the
numpy array reconstructors that training checkpoints carry), each mapped to a plain numpy
construction; any other global (``os.system``, ``builtins.eval``, ...) is refused with a
:class:`~audiotagger.errors.ModelError` before it could be called. Tensors come back as numpy arrays.
"""

from __future__ import annotations

import codecs
import collections
import io
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError

STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "b1",
}
"""``torch.<Name>Storage`` → element type (``bf16`` is widened to float32 on load)."""

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
"""First pickle of a legacy (non-zip) ``torch.save`` file."""
LEGACY_PROTOCOL = 1001


class _NoBuild:
    """Mixin: the pickle BUILD opcode may not change these objects (it would bypass the checks)."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise ValueError(f"the pickle tries to modify a {type(self).__name__.strip('_')}")


@dataclass(frozen=True)
class _StorageType(_NoBuild):
    """Stand-in for a ``torch.<Name>Storage`` class named in the pickle."""

    name: str

    @property
    def itemsize(self) -> int:
        code = STORAGE_DTYPES[self.name]
        return 2 if code == "bf16" else np.dtype(code).itemsize


@dataclass
class _Storage(_NoBuild):
    """A storage named by a persistent id; ``data`` is filled when its bytes are read."""

    type: _StorageType
    key: str
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef(_NoBuild):
    """A tensor whose storage may not be read yet (legacy files keep storages after the pickle)."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise ValueError(f"tensor {what} {value!r} is not a tuple of non-negative integers")
    return tuple(int(v) for v in value)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *_: Any) -> _TensorRef:
    """Safe stand-in for ``torch._utils._rebuild_tensor(_v2)``: records where the tensor lies."""
    if not isinstance(storage, _Storage):
        raise ValueError("a tensor is rebuilt from something that is not a storage")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise ValueError(f"tensor storage offset {storage_offset!r} is invalid")
    size_t, stride_t = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size_t) != len(stride_t):
        raise ValueError(f"tensor size {size_t} and stride {stride_t} differ in length")
    if all(size_t):
        last = storage_offset + sum((n - 1) * s for n, s in zip(size_t, stride_t, strict=True))
        if last >= storage.numel:
            raise ValueError(f"tensor of size {size_t} at offset {storage_offset} runs past the end of "
                             f"storage {storage.key!r} ({storage.numel} elements)")
    return _TensorRef(storage, storage_offset, size_t, stride_t)


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    """Safe stand-in for ``torch._utils._rebuild_parameter(_with_state)``: the tensor itself."""
    return data


def _codecs_encode(text: Any, encoding: str = "utf-8", *_: Any) -> bytes:
    """Safe stand-in for ``_codecs.encode`` (protocol-2 pickles spell ``bytes`` with it)."""
    if not isinstance(text, str) or codecs.lookup(encoding).name not in ("latin-1", "iso8859-1", "utf-8"):
        raise ValueError("_codecs.encode used for something other than text to bytes")
    return text.encode(encoding)


class _Marker(_NoBuild):
    """Stand-in for a class that may only be passed along, never called (``numpy.ndarray``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        object.__setattr__(self, "name", name)


_NDARRAY = _Marker("numpy.ndarray")


def _numpy_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """Safe stand-in for ``numpy.core.multiarray._reconstruct`` (plain ndarrays only)."""
    if subtype is not _NDARRAY:
        raise ValueError("numpy _reconstruct of a type other than numpy.ndarray")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """Safe stand-in for ``numpy.core.multiarray.scalar``."""
    if not isinstance(dtype, np.dtype):
        raise ValueError("numpy scalar without a dtype")
    if dtype.hasobject:
        return data
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise ValueError("numpy scalar with malformed data")
    return np.frombuffer(data, dtype=dtype)[0]


def _numpy_dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """Safe stand-in for ``numpy.dtype`` (strings only)."""
    if not isinstance(obj, str):
        raise ValueError("numpy dtype built from something other than a type string")
    return np.dtype(obj, align=bool(align), copy=bool(copy))


class _Safe(_NoBuild):
    """An allowed global: forwards calls to its safe construction; cannot be modified by BUILD."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[..., Any]):
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args: Any) -> Any:
        return self._fn(*args)


_ALLOWED_FUNCTIONS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}
_ALLOWED: dict[tuple[str, Any], Any] = {
    key: value if isinstance(value, _Marker) else _Safe(value) for key, value in _ALLOWED_FUNCTIONS.items()}
"""The only globals a checkpoint pickle may name, each mapped to a safe construction."""


class ForbiddenGlobalError(ModelError):
    """The pickle names a global outside the allow-list (it is never imported or called)."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`_ALLOWED` globals and ``torch.*Storage`` types.

    Parameters
    ----------
    file : binary file
        The pickle stream.
    storages : dict
        Shared ``key -> _Storage`` table filled by :meth:`persistent_load`.
    source : str
        File name used in error messages.
    """

    def __init__(self, file, storages: dict[str, _Storage], source: str):
        super().__init__(file)
        self._storages = storages
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        """Return the safe stand-in for ``module.name`` or raise :class:`ForbiddenGlobalError`."""
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenGlobalError(
                f"{self._source}: refusing to load: the pickle names the forbidden global {module}.{name} "
                "(only tensor data is read from checkpoints)") from None

    def persistent_load(self, pid: Any) -> _Storage:
        """Resolve ``('storage', storage_type, key, location, numel[, view_metadata])``."""
        if (not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[4], int) or pid[4] < 0):
            raise ModelError(f"{self._source}: malformed persistent id {pid!r:.80}")
        if len(pid) == 6 and pid[5] is not None:
            raise ModelError(f"{self._source}: storage views (pre-1.0 PyTorch files) are not supported")
        _, storage_type, key, _location, numel = pid[:5]
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = _Storage(storage_type, key, numel)
        elif storage.type != storage_type or storage.numel != numel:
            raise ModelError(f"{self._source}: storage {key!r} is declared twice with different types")
        return storage


def _decode_storage(storage: _Storage, raw: bytes | memoryview, byteorder: str, source: str) -> np.ndarray:
    code = STORAGE_DTYPES[storage.type.name]
    need = storage.numel * storage.type.itemsize
    if len(raw) < need:
        raise ModelError(f"{source}: storage {storage.key!r} is truncated ({len(raw)} of {need} bytes)")
    order = "<" if byteorder == "little" else ">"
    if code == "bf16":
        half = np.frombuffer(raw, dtype=f"{order}u2", count=storage.numel).astype(np.uint32)
        return (half << 16).view(np.float32)
    dtype = np.dtype(code).newbyteorder(order) if np.dtype(code).itemsize > 1 else np.dtype(code)
    array = np.frombuffer(raw, dtype=dtype, count=storage.numel)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _materialise(ref: _TensorRef, source: str) -> np.ndarray:
    data = ref.storage.data
    itemsize = data.dtype.itemsize
    if not all(ref.size):
        return np.zeros(ref.size, dtype=data.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if last >= data.size:  # re-checked against the bytes actually read
        raise ModelError(f"{source}: a tensor runs past the end of storage {ref.storage.key!r}")
    contiguous = tuple(int(np.prod(ref.size[i + 1:])) for i in range(len(ref.size)))
    count = int(np.prod(ref.size))
    if all(s == c for n, s, c in zip(ref.size, ref.stride, contiguous, strict=True) if n > 1):
        return data[ref.offset:ref.offset + count].reshape(ref.size)
    view = np.lib.stride_tricks.as_strided(data[ref.offset:], shape=ref.size,
                                           strides=[s * itemsize for s in ref.stride], writeable=False)
    return np.array(view)


def _resolve(obj: Any, source: str) -> Any:
    """Replace every :class:`_TensorRef` inside dicts, lists and tuples by its numpy array."""
    if isinstance(obj, _TensorRef):
        if obj.storage.data is None:
            raise ModelError(f"{source}: tensor data for storage {obj.storage.key!r} is missing")
        return _materialise(obj, source)
    if isinstance(obj, dict):
        for key, value in obj.items():
            obj[key] = _resolve(value, source)
        return obj
    if isinstance(obj, list):
        return [_resolve(v, source) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v, source) for v in obj)
    return obj


def _unpickle(stream, storages: dict[str, _Storage], source: str) -> Any:
    try:
        return RestrictedUnpickler(stream, storages, source).load()
    except ModelError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, struct.error, OverflowError, MemoryError) as exc:
        raise ModelError(f"{source}: not a readable PyTorch checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'corrupt pickle'})") from None


def _load_zip(path: Path, source: str) -> Any:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{source}: not a readable PyTorch zip checkpoint ({exc})") from None
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ModelError(f"{source}: expected one '<name>/data.pkl' in the zip, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in names:
            byteorder = archive.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise ModelError(f"{source}: unknown byte order {byteorder!r}")
        storages: dict[str, _Storage] = {}
        try:
            obj = _unpickle(io.BytesIO(archive.read(pickles[0])), storages, source)
            for key, storage in storages.items():
                entry = f"{prefix}data/{key}"
                if entry not in names:
                    raise ModelError(f"{source}: tensor data {entry!r} is missing from the zip")
                size, need = archive.getinfo(entry).file_size, storage.numel * storage.type.itemsize
                if size != need:  # checked before reading: a forged entry cannot exhaust memory
                    raise ModelError(f"{source}: tensor data {entry!r} holds {size} bytes, expected {need} "
                                     "(truncated or corrupt)")
                storage.data = _decode_storage(storage, archive.read(entry), byteorder, source)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ModelError(f"{source}: corrupt or truncated checkpoint ({exc})") from None
    return _resolve(obj, source)


def _load_legacy(path: Path, source: str) -> Any:
    storages: dict[str, _Storage] = {}
    file_size = path.stat().st_size
    with open(path, "rb") as fh:
        magic = _unpickle(fh, storages, source)
        if magic != LEGACY_MAGIC:
            raise ModelError(f"{source}: not a PyTorch checkpoint (neither a zip file nor a legacy "
                             "torch.save file)")
        if _unpickle(fh, storages, source) != LEGACY_PROTOCOL:
            raise ModelError(f"{source}: unsupported legacy PyTorch protocol version")
        sys_info = _unpickle(fh, storages, source)
        if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
            raise ModelError(f"{source}: big-endian legacy checkpoints are not supported")
        obj = _unpickle(fh, storages, source)
        keys = _unpickle(fh, storages, source)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ModelError(f"{source}: malformed storage key list")
        for key in keys:
            storage = storages.get(key)
            if storage is None:
                raise ModelError(f"{source}: storage {key!r} is listed but never used")
            head = fh.read(8)
            if len(head) < 8:
                raise ModelError(f"{source}: truncated before storage {key!r}")
            (numel,) = struct.unpack("<q", head)
            if numel != storage.numel:
                raise ModelError(f"{source}: storage {key!r} holds {numel} elements, "
                                 f"expected {storage.numel}")
            need = numel * storage.type.itemsize
            if need > file_size - fh.tell():
                raise ModelError(f"{source}: storage {key!r} is truncated ({file_size - fh.tell()} of "
                                 f"{need} bytes)")
            raw = fh.read(need)
            storage.data = _decode_storage(storage, raw, "little", source)
    return _resolve(obj, source)


def load_pth(path: str | os.PathLike) -> Any:
    """Load a ``torch.save`` file into plain Python objects with numpy arrays for tensors.

    Parameters
    ----------
    path : path-like
        A ``.pth``/``.pt`` file in the zip or the legacy layout.

    Returns
    -------
    object
        What was saved, with every tensor as a numpy array (shape and dtype kept; bfloat16 widened
        to float32).

    Raises
    ------
    ModelError
        Missing, truncated or corrupt file; a pickle naming any global outside the allow-list (the
        global is never imported or called; :class:`ForbiddenGlobalError`); missing tensor data.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ModelError(f"{source}: checkpoint not found")
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path, source)
        return _load_legacy(path, source)
    except (ValueError, TypeError, MemoryError) as exc:  # malformed tensor metadata that got this far
        raise ModelError(f"{source}: corrupt tensor data ({type(exc).__name__}: {exc})") from None


def load_state_dict(path: str | os.PathLike, key: str | None = "model") -> dict[str, np.ndarray]:
    """Load the parameter dictionary of a PyTorch checkpoint.

    Parameters
    ----------
    path : path-like
        Checkpoint file (see :func:`load_pth`).
    key : str or None
        Entry holding the state dict (PANNs: ``model``). When the file has no such entry but is itself
        a dictionary of tensors (``torch.save(model.state_dict())``), that dictionary is used.

    Returns
    -------
    dict of str to np.ndarray
        Parameter name → array, in file order; a ``module.`` prefix (``DataParallel``) is removed.

    Raises
    ------
    ModelError
        The file holds no dictionary of tensors.
    """
    obj = load_pth(path)
    if isinstance(obj, Mapping) and key is not None and key in obj:
        obj = obj[key]
    elif isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise ModelError(f"{path}: holds no state dict (expected {{'{key}': state_dict}})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise ModelError(f"{path}: state dict entry {bad[0]!r} is not a tensor")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state
