"""The restricted PyTorch checkpoint reader: format, safety and clear errors (no torch needed)."""

from __future__ import annotations

import collections
import pickle
import zipfile

import numpy as np
import pytest

from audiotagger.errors import ModelError
from audiotagger.panns.pth import ForbiddenGlobalError, load_pth, load_state_dict
from tests.panns_fixtures import Global, Raw, pth_bytes, write_pth


def test_round_trip_dtypes_shapes_and_order(tmp_path, rng):
    state = collections.OrderedDict(
        w=rng.standard_normal((3, 2, 5, 5)).astype(np.float32),
        b=np.arange(7, dtype=np.float64),
        n=np.array(42, dtype=np.int64),
        flags=np.array([True, False]),
        empty=np.zeros((0, 4), np.float32),
    )
    path = write_pth(tmp_path / "m.pth", {"model": state, "iteration": 7})
    obj = load_pth(path)
    assert obj["iteration"] == 7
    assert list(obj["model"]) == list(state)
    for key, value in state.items():
        assert obj["model"][key].dtype == value.dtype and obj["model"][key].shape == value.shape
        np.testing.assert_array_equal(obj["model"][key], value)


def test_state_dict_unwraps_model_and_dataparallel_prefix(tmp_path):
    path = write_pth(tmp_path / "dp.pth", {"model": {"module.fc.weight": np.ones((2, 2), np.float32)}})
    assert list(load_state_dict(path)) == ["fc.weight"]
    bare = write_pth(tmp_path / "bare.pth", collections.OrderedDict(a=np.ones(1, np.float32)))
    assert list(load_state_dict(bare)) == ["a"]


def test_shared_storage_and_strided_views(tmp_path):
    # Hand-built pickle: two tensors on one storage, the second a transposed view at an offset.
    data = np.arange(12, dtype=np.float32)
    storage = ("storage", Global("torch", "FloatStorage"), "0", "cpu", 12)
    obj = {"a": Raw(Global("torch._utils", "_rebuild_tensor_v2"), (_Pid(storage), 0, (3, 4), (4, 1), False,
                                                                  collections.OrderedDict())),
           "t": Raw(Global("torch._utils", "_rebuild_tensor_v2"), (_Pid(storage), 2, (2, 3), (1, 4), False,
                                                                  collections.OrderedDict()))}
    path = _write_raw(tmp_path / "views.pth", obj, {"0": data.tobytes()})
    out = load_pth(path)
    np.testing.assert_array_equal(out["a"], data.reshape(3, 4))
    np.testing.assert_array_equal(out["t"], np.lib.stride_tricks.as_strided(data[2:], (2, 3), (4, 16)))


@pytest.mark.parametrize("module,name", [("os", "system"), ("posix", "system"), ("builtins", "eval"),
                                         ("subprocess", "Popen"), ("torch", "load"), ("numpy", "load")])
def test_forbidden_global_is_refused_and_never_called(tmp_path, module, name):
    sentinel = tmp_path / "pwned"
    evil = Raw(Global(module, name), (f"touch {sentinel}",))
    path = write_pth(tmp_path / "evil.pth", {"model": collections.OrderedDict(w=np.ones(2, np.float32)),
                                             "extra": evil})
    with pytest.raises(ForbiddenGlobalError, match=rf"evil\.pth: .*forbidden global {module}\.{name}"):
        load_pth(path)
    assert not sentinel.exists()


def test_plain_pickle_with_os_system_is_refused(tmp_path):
    sentinel = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {sentinel}",))

    path = tmp_path / "legacy_evil.pth"
    with open(path, "wb") as fh:  # legacy layout: magic number, then anything
        pickle.dump(0x1950A86A20F9469CFC6C, fh, protocol=2)
        pickle.dump(1001, fh, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True}, fh, protocol=2)
        pickle.dump({"model": Evil()}, fh, protocol=2)
    with pytest.raises(ModelError, match="forbidden global"):
        load_pth(path)
    assert not sentinel.exists()


def test_truncated_and_corrupt_files(tmp_path):
    good = pth_bytes({"model": {"w": np.ones((64, 64), np.float32)}})
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError, match=r"cut\.pth: "):
        load_pth(cut)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelError, match=r"junk\.pth: not a"):
        load_pth(junk)
    with pytest.raises(ModelError, match="not found"):
        load_pth(tmp_path / "missing.pth")


def test_missing_or_short_tensor_data(tmp_path):
    good = tmp_path / "good.pth"
    good.write_bytes(pth_bytes({"model": {"w": np.ones(16, np.float32)}}, name="good"))
    with zipfile.ZipFile(good) as zin:
        entries = {n: zin.read(n) for n in zin.namelist()}
    for label, edit in (("missing", lambda e: e.pop("good/data/0")),
                        ("short", lambda e: e.__setitem__("good/data/0", e["good/data/0"][:10]))):
        changed = dict(entries)
        edit(changed)
        path = tmp_path / f"{label}.pth"
        with zipfile.ZipFile(path, "w") as zout:
            for n, b in changed.items():
                zout.writestr(n, b)
        with pytest.raises(ModelError, match=rf"{label}\.pth: .*(missing|truncated)"):
            load_pth(path)


def test_out_of_bounds_view_is_rejected(tmp_path):
    storage = ("storage", Global("torch", "FloatStorage"), "0", "cpu", 4)
    obj = {"w": Raw(Global("torch._utils", "_rebuild_tensor_v2"),
                    (_Pid(storage), 2, (4,), (1,), False, collections.OrderedDict()))}
    path = _write_raw(tmp_path / "oob.pth", obj, {"0": np.zeros(4, np.float32).tobytes()})
    with pytest.raises(ModelError, match="runs past the end"):
        load_pth(path)


def test_no_state_dict(tmp_path):
    path = write_pth(tmp_path / "x.pth", {"model": {"w": "text"}})
    with pytest.raises(ModelError, match="not a tensor"):
        load_state_dict(path)


# --- helpers: hand-made pickles with explicit persistent ids ----------------------------------------

class _Pid:
    def __init__(self, pid):
        self.pid = pid


def _write_raw(path, obj, storages):
    import io

    from tests.panns_fixtures import _TorchPickler

    class P(_TorchPickler):
        def persistent_id(self, o):
            return o.pid if isinstance(o, _Pid) else None

    buf = io.BytesIO()
    P(buf).dump(obj)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
        zf.writestr("archive/version", "3\n")
    return path


def _assemble(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return pickle.BINUNICODE + len(raw).to_bytes(4, "little") + raw


def test_build_cannot_shrink_a_storage_after_its_tensor_was_checked(tmp_path):
    # {'w': _rebuild_tensor_v2(storage(16 floats), 0, (4, 4), (1, 4), ...)}, then BUILD storage {'numel': 1}.
    g = pickle.GLOBAL
    body = [
        pickle.EMPTY_DICT, _unicode("w"),
        g + b"torch._utils\n_rebuild_tensor_v2\n", pickle.MARK,
        pickle.MARK, _unicode("storage"), g + b"torch\nFloatStorage\n", _unicode("0"), _unicode("cpu"),
        pickle.BININT1 + bytes([16]), pickle.TUPLE, pickle.BINPERSID, pickle.BINPUT + b"\x01",
        pickle.BININT1 + b"\x00", pickle.BININT1 + b"\x04", pickle.BININT1 + b"\x04", pickle.TUPLE2,
        pickle.BININT1 + b"\x01", pickle.BININT1 + b"\x04", pickle.TUPLE2, pickle.NEWFALSE, pickle.EMPTY_DICT,
        pickle.TUPLE, pickle.REDUCE, pickle.SETITEM,
        pickle.BINGET + b"\x01", pickle.EMPTY_DICT, _unicode("numel"), pickle.BININT1 + b"\x01",
        pickle.SETITEM, pickle.BUILD, pickle.POP,
    ]
    path = tmp_path / "build.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", _assemble(*body))
        zf.writestr("archive/data/0", np.zeros(1, np.float32).tobytes())
    with pytest.raises(ModelError, match=r"build\.pth: .*tries to modify a Storage"):
        load_pth(path)


def test_build_cannot_modify_allowed_globals(tmp_path):
    g = pickle.GLOBAL
    # BUILD on the allowed global itself, with a (state, slotstate) pair that would set an attribute.
    body = [g + b"collections\nOrderedDict\n", pickle.EMPTY_DICT, pickle.EMPTY_DICT,
            _unicode("__defaults__"), pickle.NONE, pickle.SETITEM, pickle.TUPLE2, pickle.BUILD]
    path = tmp_path / "globals.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", _assemble(*body))
    with pytest.raises(ModelError, match=r"globals\.pth: .*tries to modify a Safe"):
        load_pth(path)
    from collections import OrderedDict

    assert OrderedDict([("a", 1)])["a"] == 1
