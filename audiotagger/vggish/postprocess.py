"""PCA, whitening and 8-bit quantisation of VGGish embeddings (``vggish_postprocess.py``, SPEC §2.9).

``q = uint8((clip((e - mu) @ E.T, -2, 2) + 2) * 255 / 4)`` (truncation), with ``E`` and ``mu`` from
the official ``vggish_pca_params.npz``. The result is in the format of the released AudioSet
embeddings; consumers map it back with ``(q - 128) / 128``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import hub
from ..errors import ModelError, ParameterError
from . import params as P


class Postprocessor:
    """Apply the official PCA + quantisation.

    Parameters
    ----------
    pca_params : path-like, optional
        ``--pca-params``: the official ``vggish_pca_params.npz``; None: the model cache
        (``hub.locate("vggish-pca")``; downloaded there on first use when allowed).
    model_dir : path-like, optional
        Model cache folder.
    offline : bool, optional
        Never download.

    Raises
    ------
    ModelError
        Missing file, not an ``.npz``, or arrays missing or of the wrong shape (named in the message).
    """

    def __init__(self, pca_params: str | os.PathLike | None = None, *, model_dir=None, offline=None):
        self.path = hub.locate("vggish-pca", path=pca_params, model_dir=model_dir, offline=offline)
        self.eigen_vectors, self.means = read_pca_params(self.path)

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        """Post-process raw embeddings.

        Parameters
        ----------
        embeddings : np.ndarray [shape=(n, 128)]
            Pre-activation VGGish outputs.

        Returns
        -------
        np.ndarray [shape=(n, 128), dtype=uint8]
        """
        return postprocess(embeddings, self.eigen_vectors, self.means)


def read_pca_params(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate ``vggish_pca_params.npz``.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    eigen_vectors : np.ndarray [shape=(128, 128), dtype=float64]
        ``pca_eigen_vectors``, rows are output dimensions.
    means : np.ndarray [shape=(128,), dtype=float64]
        ``pca_means``.

    Raises
    ------
    ModelError
        Unreadable, an array missing, or a wrong shape or non-finite value.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable .npz file ({exc})") from None
    expected = {P.PCA_EIGEN_VECTORS_NAME: (P.EMBEDDING_SIZE, P.EMBEDDING_SIZE),
                P.PCA_MEANS_NAME: (P.EMBEDDING_SIZE,)}
    out = []
    for name, shape in expected.items():
        if name not in arrays:
            raise ModelError(f"{path}: array {name!r} is missing (found {sorted(arrays) or 'none'}); "
                             "not a VGGish PCA parameter file")
        value = arrays[name]
        if value.shape != shape:
            raise ModelError(f"{path}: array {name!r} has shape {value.shape}, expected {shape}")
        if not np.issubdtype(value.dtype, np.number) or not np.isfinite(value).all():
            raise ModelError(f"{path}: array {name!r} is not finite numbers")
        out.append(value.astype(np.float64))
    return out[0], out[1]


def postprocess(embeddings: np.ndarray, eigen_vectors: np.ndarray, means: np.ndarray) -> np.ndarray:
    """PCA-whiten, clip to [-2, 2] and quantise to uint8 by truncation.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, 128)]
        Raw embeddings.
    eigen_vectors : np.ndarray [shape=(128, 128)]
        PCA matrix (output x input).
    means : np.ndarray [shape=(128,)]
        PCA means.

    Returns
    -------
    np.ndarray [shape=(n, 128), dtype=uint8]
    """
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] != P.EMBEDDING_SIZE:
        raise ParameterError(f"embeddings: expected shape (n, {P.EMBEDDING_SIZE}), got {e.shape}")
    pca = (e - means.reshape(1, -1)) @ eigen_vectors.T
    clipped = np.clip(pca, P.QUANTIZE_MIN_VAL, P.QUANTIZE_MAX_VAL)
    quantized = (clipped - P.QUANTIZE_MIN_VAL) * (255.0 / (P.QUANTIZE_MAX_VAL - P.QUANTIZE_MIN_VAL))
    return quantized.astype(np.uint8)
