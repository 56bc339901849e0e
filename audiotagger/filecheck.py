"""Light structure checks of model files, without TensorFlow or PyTorch.

Each check reads a few bytes (a footer, a zip directory, array headers) and raises
:class:`~audiotagger.errors.ModelError` naming the file when it is not what it claims to be, or was
cut short. They complement checksums: they catch a truncated or wrong file even where no checksum is
published, and they run at every load because they cost next to nothing.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from .errors import ModelError

TABLE_MAGIC = bytes.fromhex("57fb808b247547db")
"""Last 8 bytes of a TensorFlow table file (``kTableMagicNumber`` 0xdb4775248b80fb57, little-endian):
the single-file V1 checkpoint format, and the ``.index`` file of a V2 checkpoint."""
TABLE_FOOTER_SIZE = 48
"""Two block handles (varints) padded to 40 bytes, then the 8-byte magic."""
BLOCK_TRAILER_SIZE = 5
"""Compression type byte + CRC32 after every table block."""
TORCH_LEGACY_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")
"""Start of a pre-1.6 PyTorch ``torch.save`` file: pickle protocol 2, then the long 0x1950a86a20f9469cfc6c."""
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("bad varint")


def check_tf_table(path: str | os.PathLike) -> None:
    """Check that ``path`` is a complete TensorFlow table file (a V1 checkpoint such as VGGish's).

    The footer's magic number must be present and both block handles it holds must point inside the
    file; a truncated download fails both.

    Raises
    ------
    ModelError
        Not a table file, or truncated.
    """
    path = Path(path)
    size = path.stat().st_size
    if size < TABLE_FOOTER_SIZE:
        raise ModelError(f"{path}: not a TensorFlow V1 checkpoint ({size} bytes, truncated?)")
    with open(path, "rb") as fh:
        fh.seek(size - TABLE_FOOTER_SIZE)
        footer = fh.read(TABLE_FOOTER_SIZE)
    if footer[-8:] != TABLE_MAGIC:
        raise ModelError(f"{path}: not a TensorFlow V1 checkpoint (no table footer; truncated or "
                         "another format)")
    try:
        pos = 0
        for _ in range(2):  # metaindex handle, index handle
            offset, pos = _varint(footer, pos)
            length, pos = _varint(footer, pos)
            if offset + length + BLOCK_TRAILER_SIZE > size - TABLE_FOOTER_SIZE:
                raise ValueError("block handle past the end")
    except ValueError as exc:
        raise ModelError(f"{path}: corrupt TensorFlow V1 checkpoint footer ({exc})") from None


def check_npz(path: str | os.PathLike, arrays: Mapping[str, tuple[int, ...]]) -> None:
    """Check that ``path`` is an ``.npz`` holding float arrays of the given names and shapes.

    Only the zip directory and the ``.npy`` headers are read, never the data or any pickle.

    Parameters
    ----------
    path : path-like
        The archive.
    arrays : mapping
        ``{name: shape}`` that must be present (other arrays are allowed).

    Raises
    ------
    ModelError
        Not a zip archive (or truncated), an array missing, of another shape or not floating point.
    """
    import numpy as np

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for name, shape in arrays.items():
                member = f"{name}.npy"
                if member not in names:
                    raise ModelError(f"{path}: array {name!r} missing (has {sorted(n[:-4] for n in names)})")
                with zf.open(member) as fh:
                    version = np.lib.format.read_magic(fh)
                    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    got_shape, _, dtype = reader(fh)
                if tuple(got_shape) != tuple(shape) or dtype.kind != "f":
                    raise ModelError(f"{path}: array {name!r} is {dtype} {tuple(got_shape)}, "
                                     f"expected floating point {tuple(shape)}")
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ModelError(f"{path}: not a valid .npz archive ({exc}; truncated?)") from None


def check_npz_members(path: str | os.PathLike, names: tuple[str, ...]) -> None:
    """Check that ``path`` is an ``.npz`` archive with (at least) the arrays ``names``.

    Raises
    ------
    ModelError
        Not a zip archive (or truncated), or an array missing.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            present = {n.removesuffix(".npy") for n in zf.namelist()}
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{path}: not a valid .npz archive ({exc}; truncated?)") from None
    missing = [n for n in names if n not in present]
    if missing:
        raise ModelError(f"{path}: array(s) {', '.join(missing)} missing")


def check_torch_checkpoint(path: str | os.PathLike) -> None:
    """Check that ``path`` is a ``torch.save`` file: the zip format (with ``data.pkl``) or the legacy one.

    Raises
    ------
    ModelError
        Neither format, or a zip archive that is truncated or lacks ``data.pkl``.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(len(TORCH_LEGACY_MAGIC))
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as exc:
            raise ModelError(f"{path}: corrupt PyTorch checkpoint ({exc}; truncated?)") from None
        if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            raise ModelError(f"{path}: zip archive without data.pkl, not a PyTorch checkpoint")
        return
    if head == TORCH_LEGACY_MAGIC:
        return
    raise ModelError(f"{path}: not a PyTorch checkpoint (neither zip nor legacy torch.save format)")


def check_keras(path: str | os.PathLike) -> None:
    """Check a Keras model file by its format: ``.keras`` (zip with ``config.json``) or HDF5 (``.h5``).

    Raises
    ------
    ModelError
        The file does not have the structure its suffix announces.
    """
    path = Path(path)
    if path.name.endswith(".keras"):
        try:
            with zipfile.ZipFile(path) as zf:
                if "config.json" not in zf.namelist():
                    raise ModelError(f"{path}: .keras archive without config.json")
        except zipfile.BadZipFile as exc:
            raise ModelError(f"{path}: corrupt .keras file ({exc}; truncated?)") from None
        return
    with open(path, "rb") as fh:
        if fh.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            raise ModelError(f"{path}: not an HDF5 file")


def check_yamnet_h5(path: str | os.PathLike) -> None:
    """Check a YAMNet ``yamnet.h5``: HDF5, with every layer's weights present in the right shapes.

    Raises
    ------
    ModelError
        Not HDF5 (or truncated), or a layer missing or mis-shaped (the message names it).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        if fh.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            raise ModelError(f"{path}: not an HDF5 file (truncated or another format)")
    from .yamnet.weights import check_file

    check_file(path)


CHECKS: dict[str, Callable[[Path], None]] = {
    "tf-v1-checkpoint": check_tf_table,
    "vggish-pca-npz": lambda p: check_npz(p, {"pca_eigen_vectors": (128, 128), "pca_means": (128,)}),
    "torch-checkpoint": check_torch_checkpoint,
    "classifier-npz": lambda p: check_npz_members(p, ("format", "config", "weight_names", "w000")),
    "keras": check_keras,
    "yamnet-h5": check_yamnet_h5,
}
"""Structure check for each ``ModelInfo.format`` of the registry."""
