"""A small writer of ONNX graphs with the ``onnx`` helper API, weights streamed to one external file.

:class:`GraphBuilder` collects nodes and initialisers. Initialisers of 1 KiB or more are appended to a
raw little-endian weights file at 4 KiB-aligned offsets (``data_location = EXTERNAL``), one array at a
time, so building VGGish's graph never holds more than one layer's weights, and ONNX Runtime maps the
file into memory instead of parsing 288 MB of protobuf.
"""

from __future__ import annotations

import itertools
from typing import BinaryIO

import numpy as np

OPSET = 17
"""ONNX opset of every graph (ReduceSum takes axes as an input; LayerNormalization is not needed)."""
ALIGN = 4096
"""Offset alignment of external initialisers (a page: they can be mapped directly)."""
INLINE_BYTES = 1024
"""Initialisers smaller than this stay inside the ``.onnx`` file."""


class GraphBuilder:
    """Accumulate an ONNX graph.

    Parameters
    ----------
    name : str
        Graph name.
    data : binary file, optional
        Open weights file; None keeps every initialiser inline.
    data_location : str
        File name recorded in the graph for ``data`` (relative to the ``.onnx`` file).
    """

    def __init__(self, name: str, data: BinaryIO | None = None, data_location: str = "weights.bin"):
        self.name = name
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.outputs: list = []
        self._data = data
        self._location = data_location
        self._ids = itertools.count()

    def fresh(self, hint: str) -> str:
        """Return a new unique tensor name."""
        return f"{hint}_{next(self._ids)}"

    def weight(self, name: str, value, dtype=np.float32) -> str:
        """Add an initialiser (converted to ``dtype``, C order) and return its name."""
        import onnx
        from onnx import numpy_helper

        array = np.ascontiguousarray(np.asarray(value), dtype=dtype)
        if self._data is None or array.nbytes < INLINE_BYTES:
            tensor = numpy_helper.from_array(array, name)
        else:
            pos = self._data.tell()
            pad = (-pos) % ALIGN
            if pad:
                self._data.write(b"\0" * pad)
                pos += pad
            self._data.write(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
            tensor = onnx.TensorProto()
            tensor.name = name
            tensor.data_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
            tensor.dims.extend(array.shape)
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for key, val in (("location", self._location), ("offset", str(pos)),
                             ("length", str(array.nbytes))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, val
        self.initializers.append(tensor)
        return name

    def const(self, value, dtype=np.int64) -> str:
        """Add a small constant initialiser (shapes, axes) under a fresh name."""
        return self.weight(self.fresh("const"), np.asarray(value, dtype=dtype), dtype)

    def node(self, op: str, inputs: list[str], hint: str | None = None, outputs: int = 1, **attrs):
        """Add a node; return its output name (or a list of names when ``outputs > 1``)."""
        import onnx

        names = [self.fresh(hint or op.lower()) for _ in range(outputs)]
        self.nodes.append(onnx.helper.make_node(op, inputs, names, name=self.fresh(f"n_{op}"), **attrs))
        return names[0] if outputs == 1 else names

    def input(self, name: str, elem_type: int, shape: list) -> str:
        """Declare a graph input (``shape`` may hold symbolic names such as ``"batch"``)."""
        import onnx

        self.inputs.append(onnx.helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, tensor: str, name: str, elem_type: int, shape: list) -> str:
        """Expose ``tensor`` as graph output ``name``."""
        import onnx

        self.nodes.append(onnx.helper.make_node("Identity", [tensor], [name], name=self.fresh("n_out")))
        self.outputs.append(onnx.helper.make_tensor_value_info(name, elem_type, shape))
        return name

    # --- layers ---------------------------------------------------------------------------------

    def dense(self, x: str, kernel, bias=None, activation: str | None = None, prefix: str = "dense") -> str:
        """``x @ kernel + bias`` (any leading dims) then an optional ``relu``/``sigmoid``/``softmax``."""
        y = self.node("MatMul", [x, self.weight(f"{prefix}/kernel", kernel)], prefix)
        if bias is not None:
            y = self.node("Add", [y, self.weight(f"{prefix}/bias", bias)], prefix)
        return self.activation(y, activation)

    def activation(self, x: str, activation: str | None) -> str:
        """Apply ``relu``, ``sigmoid``, ``softmax`` (last axis) or nothing."""
        if activation is None or activation == "linear":
            return x
        op = {"relu": "Relu", "sigmoid": "Sigmoid", "softmax": "Softmax"}[activation]
        return self.node(op, [x], **({"axis": -1} if op == "Softmax" else {}))

    def affine(self, x: str, scale, shift, prefix: str) -> str:
        """``x * scale + shift`` broadcast on the last axis (a folded inference batch norm)."""
        y = self.node("Mul", [x, self.weight(f"{prefix}/scale", scale)], prefix)
        return self.node("Add", [y, self.weight(f"{prefix}/shift", shift)], prefix)

    def model(self, doc: str = "", metadata: dict | None = None):
        """Return the ``onnx.ModelProto`` (opset :data:`OPSET`, IR version ORT accepts)."""
        import onnx

        graph = onnx.helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                       producer_name="audiotagger", doc_string=doc)
        model.ir_version = 8
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = str(key), str(value)
        return model


def batch_norm_affine(gamma, beta, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference batch norm into ``scale, shift``, in float32 as ``tf.nn.batch_normalization`` does.

    ``scale = gamma / sqrt(var + eps)``, ``shift = beta - mean * scale``: the same float32 operations as
    the Keras layer, so both engines multiply by identical constants.
    """
    f32 = np.float32
    inv = (f32(1.0) / np.sqrt(np.asarray(var, f32) + f32(eps))) * np.asarray(gamma, f32)
    shift = np.asarray(beta, f32) - np.asarray(mean, f32) * inv
    return inv.astype(f32), shift.astype(f32)
