import os
import stat

import numpy as np
import pytest

from audiotagger.fileio import atomic_open, atomic_save_npz, atomic_write_text, ensure_writable_dir


def test_atomic_write_replaces_and_uses_umask_mode(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_no_overwrite_keeps_existing(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("mine")
    with pytest.raises(FileExistsError):
        atomic_write_text(target, "theirs", overwrite=False)
    assert target.read_text() == "mine"


def test_npz_refuses_object_arrays(tmp_path):
    atomic_save_npz(tmp_path / "a.npz", x=np.arange(3))
    assert np.load(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2]
    with pytest.raises(TypeError):
        atomic_save_npz(tmp_path / "b.npz", x=np.array([{}], dtype=object))
    assert not (tmp_path / "b.npz").exists()


def test_ensure_writable_dir_is_safe_across_threads(tmp_path):
    # A fixed probe name (".write-test-<pid>") raced between threads of one process:
    # one thread unlinked the probe another had just created. The probe must be unique.
    from concurrent.futures import ThreadPoolExecutor

    folder = tmp_path / "a" / "b"

    def hammer(_):
        for _ in range(200):
            assert ensure_writable_dir(folder) == folder

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(hammer, range(8)))
    assert list(folder.iterdir()) == []
