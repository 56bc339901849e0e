"""PCA + clip + 8-bit quantisation (SPEC §2.9) and the validation of the PCA file."""

from __future__ import annotations

import numpy as np
import pytest

from audiotagger.errors import ModelError
from audiotagger.vggish.postprocess import Postprocessor, postprocess, read_pca_params
from tests.conftest import shared_file


def test_quantisation_points_with_identity_pca():
    e = np.zeros((1, 128))
    e[0, :6] = [-3.0, -2.0, 0.0, 1.0, 2.0, 5.0]
    q = postprocess(e, np.eye(128), np.zeros(128))
    assert q.dtype == np.uint8 and q.shape == (1, 128)
    assert list(q[0, :6]) == [0, 0, 127, 191, 255, 255]  # truncation: 127.5 -> 127


def test_matches_the_official_formula_with_the_real_file(rng):
    path = shared_file("vggish", "vggish_pca_params.npz")
    post = Postprocessor(path)
    with np.load(path) as d:
        matrix, means = d["pca_eigen_vectors"], d["pca_means"].reshape(-1, 1)
    e = rng.normal(0.0, 0.5, size=(20, 128)).astype(np.float32) + means.reshape(1, -1).astype(np.float32)
    official = np.dot(matrix, (e.T - means)).T  # vggish_postprocess.Postprocessor.postprocess
    official = ((np.clip(official, -2.0, 2.0) + 2.0) * (255.0 / 4.0)).astype(np.uint8)
    np.testing.assert_array_equal(post(e), official)
    assert post.eigen_vectors.shape == (128, 128) and post.means.shape == (128,)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_wrong_arrays_are_named(tmp_path):
    good = {"pca_eigen_vectors": np.eye(128), "pca_means": np.zeros(128)}
    with pytest.raises(ModelError, match="array 'pca_means' is missing"):
        read_pca_params(_npz(tmp_path / "a.npz", pca_eigen_vectors=np.eye(128)))
    with pytest.raises(ModelError, match=r"'pca_eigen_vectors' has shape \(64, 128\)"):
        read_pca_params(_npz(tmp_path / "b.npz", **{**good, "pca_eigen_vectors": np.zeros((64, 128))}))
    with pytest.raises(ModelError, match="not finite"):
        read_pca_params(_npz(tmp_path / "c.npz", **{**good, "pca_means": np.full(128, np.nan)}))
    (tmp_path / "d.npz").write_text("junk")
    with pytest.raises(ModelError, match="d.npz: not a readable .npz"):
        read_pca_params(tmp_path / "d.npz")
    matrix, means = read_pca_params(_npz(tmp_path / "e.npz", **good))
    assert matrix.dtype == np.float64 and means.shape == (128,)


def test_missing_file_names_the_url_and_flag(tmp_path):
    with pytest.raises(ModelError) as info:
        Postprocessor(None, model_dir=tmp_path, offline=True)
    msg = str(info.value)
    assert "vggish_pca_params.npz" in msg and "--pca-params" in msg and "\n" not in msg
    with pytest.raises(ModelError, match="--pca-params"):
        Postprocessor(tmp_path / "absent.npz")
