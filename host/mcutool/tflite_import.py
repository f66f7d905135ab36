"""Read a .tflite flatbuffer into the IR, with the `tflite` package (no interpreter)."""
from __future__ import annotations

import os
import struct
from collections import deque

import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.TensorType import TensorType

from . import ir
from .errors import McutoolError, UnsupportedOpError
from .ops import SUPPORTED_OPS

_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_DTYPES = {
    TensorType.FLOAT32: "float32",
    TensorType.INT32: "int32",
    TensorType.UINT8: "uint8",
    TensorType.INT64: "int64",
    TensorType.BOOL: "bool",
    TensorType.INT16: "int16",
    TensorType.INT8: "int8",
}
_PADDING = {0: "SAME", 1: "VALID"}
_ACT = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}


def load_tflite(path: str | os.PathLike) -> ir.Graph:
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        raise McutoolError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise McutoolError(f"{path}: is a directory, not a .tflite file") from None
    except OSError as e:
        raise McutoolError(f"{path}: cannot read: {e.strerror}") from None
    name = os.path.splitext(os.path.basename(path))[0]
    return parse_tflite(buf, name=name, where=path)


def parse_tflite(buf: bytes, name: str = "model", where: str = "model") -> ir.Graph:
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise McutoolError(f"{where}: not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        return _parse(buf, name)
    except McutoolError as e:
        raise McutoolError(f"{where}: {e}") from None
    except (IndexError, ValueError, TypeError, OverflowError, AttributeError, struct.error, MemoryError) as e:
        # The flatbuffers runtime reads offsets blindly; a cut or damaged file surfaces as
        # an out-of-range access somewhere inside it.
        raise McutoolError(
            f"{where}: truncated or corrupt TFLite flatbuffer ({len(buf)} bytes; {type(e).__name__})"
        ) from None


def _parse(buf: bytes, name: str) -> ir.Graph:
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() < 1:
        raise McutoolError("the model has no subgraph")
    sg = model.Subgraphs(0)
    tensors = [_tensor(model, sg.Tensors(i), i, buf) for i in range(sg.TensorsLength())]
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        kind = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
        if builtin == BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            kind = f"CUSTOM({custom.decode() if custom else '?'})"
        if kind not in SUPPORTED_OPS:
            raise UnsupportedOpError(kind, i)
        ins = [int(t) for t in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(t) for t in op.OutputsAsNumpy()] if op.OutputsLength() else []
        for t in ins + outs:
            if t >= len(tensors) or t < -1:
                raise McutoolError(f"op {i} ({kind}) names tensor {t}, but the model has {len(tensors)}")
        ops.append(ir.Op(index=i, kind=kind, inputs=ins, outputs=outs, params=_params(kind, op, i)))
    inputs = [int(t) for t in sg.InputsAsNumpy()] if sg.InputsLength() else []
    outputs = [int(t) for t in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
    graph = ir.Graph(name=name, tensors=tensors, ops=ops, inputs=inputs, outputs=outputs)
    _topological_order(graph)
    return graph


def _tensor(model, t, index: int, buf: bytes) -> ir.Tensor:
    tname = t.Name().decode("utf-8", "replace") if t.Name() else f"t{index}"
    ttype = t.Type()
    if ttype not in _DTYPES:
        raise McutoolError(f"tensor {index} ({tname}) has type {ttype}, which mcutool does not handle")
    if t.Sparsity() is not None:
        raise McutoolError(f"tensor {index} ({tname}) is sparse; mcutool needs dense tensors")
    dtype = _DTYPES[ttype]
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    if any(d < 0 for d in shape):
        raise McutoolError(f"tensor {index} ({tname}) has a dynamic shape {shape}")
    quant = None
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        scale = q.ScaleAsNumpy().astype(np.float32)
        zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scale.size, np.int64)
        axis = q.QuantizedDimension()
        if scale.size == 1 or len(shape) <= 1:
            # TFLM ignores the axis of a per-tensor or rank-1 tensor (person_detect's biases
            # carry quantized_dimension=3); so do we.
            axis = 0
        if zp.size == 1 and scale.size > 1:
            zp = np.repeat(zp, scale.size)
        quant = ir.Quant(scale=scale, zero_point=zp, axis=axis)
    data = None
    b = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
    if b is not None:
        raw = None
        if b.DataLength() > 0:
            raw = b.DataAsNumpy().tobytes()
        elif b.Offset() > 1:
            raw = buf[b.Offset() : b.Offset() + b.Size()]
        if raw is not None:
            want = int(np.prod(shape, dtype=np.int64)) * ir.DTYPE_BYTES[dtype]
            if len(raw) != want:
                raise McutoolError(
                    f"tensor {index} ({tname}): constant holds {len(raw)} bytes, shape {shape} {dtype} needs {want}"
                )
            data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
    return ir.Tensor(index=index, name=tname, shape=shape, dtype=dtype, quant=quant, data=data)


def _options(op, cls):
    table = op.BuiltinOptions()
    if table is None:
        return None
    o = cls()
    o.Init(table.Bytes, table.Pos)
    return o


def _act(code: int, kind: str, index: int) -> str:
    if code not in _ACT:
        raise UnsupportedOpError(kind, index, f"fused activation {code} (only NONE, RELU, RELU_N1_TO_1, RELU6)")
    return _ACT[code]


def _params(kind: str, op, index: int):
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        dw = kind == "DEPTHWISE_CONV_2D"
        o = _options(op, tflite.DepthwiseConv2DOptions if dw else tflite.Conv2DOptions)
        p = ir.DepthwiseConv2DParams() if dw else ir.Conv2DParams()
        if o is not None:
            p.stride = (o.StrideH(), o.StrideW())
            p.dilation = (o.DilationHFactor(), o.DilationWFactor())
            p.padding = _PADDING.get(o.Padding(), "?")
            p.activation = _act(o.FusedActivationFunction(), kind, index)
            if dw:
                p.depth_multiplier = o.DepthMultiplier()
        if p.padding == "?" or min(p.stride) < 1 or min(p.dilation) < 1:
            raise UnsupportedOpError(kind, index, f"stride {p.stride}, dilation {p.dilation}, padding {p.padding}")
        return p
    if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = _options(op, tflite.Pool2DOptions)
        p = ir.Pool2DParams()
        if o is not None:
            p.filter = (o.FilterHeight(), o.FilterWidth())
            p.stride = (o.StrideH(), o.StrideW())
            p.padding = _PADDING.get(o.Padding(), "?")
            p.activation = _act(o.FusedActivationFunction(), kind, index)
        if p.padding == "?" or min(p.stride) < 1 or min(p.filter) < 1:
            raise UnsupportedOpError(kind, index, f"filter {p.filter}, stride {p.stride}, padding {p.padding}")
        return p
    if kind == "FULLY_CONNECTED":
        o = _options(op, tflite.FullyConnectedOptions)
        p = ir.FullyConnectedParams()
        if o is not None:
            if o.WeightsFormat() != 0:
                raise UnsupportedOpError(kind, index, "shuffled weights format")
            p.activation = _act(o.FusedActivationFunction(), kind, index)
            p.keep_num_dims = bool(o.KeepNumDims())
        return p
    if kind in ("ADD", "MUL"):
        o = _options(op, tflite.AddOptions if kind == "ADD" else tflite.MulOptions)
        return ir.ActivationParams(_act(o.FusedActivationFunction(), kind, index) if o is not None else "NONE")
    if kind == "CONCATENATION":
        o = _options(op, tflite.ConcatenationOptions)
        if o is None:
            return ir.ConcatenationParams()
        return ir.ConcatenationParams(axis=o.Axis(), activation=_act(o.FusedActivationFunction(), kind, index))
    if kind == "MEAN":
        o = _options(op, tflite.ReducerOptions)
        return ir.ReducerParams(keep_dims=bool(o.KeepDims()) if o is not None else False)
    if kind == "SOFTMAX":
        o = _options(op, tflite.SoftmaxOptions)
        return ir.SoftmaxParams(beta=float(o.Beta()) if o is not None else 1.0)
    if kind == "RESIZE_NEAREST_NEIGHBOR":
        o = _options(op, tflite.ResizeNearestNeighborOptions)
        if o is None:
            return ir.ResizeParams()
        return ir.ResizeParams(align_corners=bool(o.AlignCorners()), half_pixel_centers=bool(o.HalfPixelCenters()))
    return ir.NoParams()


def _topological_order(graph: ir.Graph) -> None:
    """TFLite stores ops in execution order; reorder only if a file does not, and refuse cycles."""
    producer = {}
    for pos, op in enumerate(graph.ops):
        for t in op.outputs:
            producer[t] = pos
    ready = set(graph.inputs) | {t.index for t in graph.tensors if t.is_const}
    if all(
        all(i < 0 or i in ready or producer.get(i, -1) < pos for i in op.inputs) for pos, op in enumerate(graph.ops)
    ):
        return
    deps = {pos: {producer[i] for i in op.inputs if i in producer} for pos, op in enumerate(graph.ops)}
    users: dict[int, list[int]] = {pos: [] for pos in deps}
    for pos, ds in deps.items():
        for d in ds:
            users[d].append(pos)
    queue = deque(sorted(p for p, ds in deps.items() if not ds))
    order = []
    pending = {p: len(ds) for p, ds in deps.items()}
    while queue:
        p = queue.popleft()
        order.append(p)
        for u in users[p]:
            pending[u] -= 1
            if pending[u] == 0:
                queue.append(u)
    if len(order) != len(graph.ops):
        raise McutoolError("the graph has a cycle")
    graph.ops = [graph.ops[p] for p in order]
