"""Rewrite a float .tflite as int8 with TFLite's flatbuffer object API (ModelT ...).

The float model's own ModelT is edited in place, so op options, names, metadata and
signatures carry over untouched; only tensor types, quantization, constant buffers and
operator versions change. With float I/O the original input and output tensors stay
float32 and the graph gains a QUANTIZE in front and a DEQUANTIZE behind.
"""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError

# Operator versions for int8 kernels, as TFLite's converter writes them (the versions
# LiteRT's and TFLM's resolvers register for these kernels).
INT8_VERSION = {
    "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2, "MUL": 2, "AVERAGE_POOL_2D": 2,
    "MAX_POOL_2D": 2, "MEAN": 2, "PAD": 2, "RESHAPE": 1, "SOFTMAX": 2, "TRANSPOSE": 2, "CONCATENATION": 2,
    "LOGISTIC": 2, "HARD_SWISH": 1, "RESIZE_NEAREST_NEIGHBOR": 2, "QUANTIZE": 1, "DEQUANTIZE": 2,
}


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as s
    except ImportError:
        raise McutoolError("writing .tflite files needs TFLite's flatbuffer schema from the 'ai_edge_litert' "
                           "package: pip install ai-edge-litert (or mcutool[verify])") from None
    return s


def read_model(buf: bytes):
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(bytearray(buf), 0)
    if not m.subgraphs or len(m.subgraphs) != 1:
        raise McutoolError(f"the model has {len(m.subgraphs or [])} subgraphs; mcutool quantizes single-subgraph models")
    return m


def _quant(s, scale, zp, axis: int = 0):
    q = s.QuantizationParametersT()
    q.scale = np.atleast_1d(np.asarray(scale, np.float32))
    q.zeroPoint = np.atleast_1d(np.asarray(zp, np.int64))
    if q.zeroPoint.size == 1 and q.scale.size > 1:
        q.zeroPoint = np.zeros(q.scale.size, np.int64)
    q.quantizedDimension = int(axis)
    return q


class Rewriter:
    """Edits one ModelT; `finish()` returns the .tflite bytes."""

    def __init__(self, model):
        self.s = _schema()
        self.m = model
        self.sg = model.subgraphs[0]
        self.sg.tensors = list(self.sg.tensors or [])
        self.sg.operators = list(self.sg.operators or [])
        self.m.buffers = list(self.m.buffers or [])

    def _buffer(self, data: np.ndarray) -> int:
        b = _AlignedBuffer()
        b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        self.m.buffers.append(b)
        return len(self.m.buffers) - 1

    def set_activation(self, i: int, scale: float, zp: int) -> None:
        t = self.sg.tensors[i]
        t.type = self.s.TensorType.INT8
        t.quantization = _quant(self.s, scale, zp)

    def set_constant(self, i: int, data: np.ndarray, scale, zp, axis: int = 0) -> None:
        t = self.sg.tensors[i]
        t.type = self.s.TensorType.INT32 if data.dtype == np.int32 else self.s.TensorType.INT8
        t.quantization = _quant(self.s, scale, zp, axis)
        t.buffer = self._buffer(data)

    def add_tensor(self, name: str, shape, dtype: str, data: np.ndarray | None = None, quant=None) -> int:
        t = self.s.TensorT()
        t.name = name
        t.shape = np.asarray(shape, np.int32)
        t.type = getattr(self.s.TensorType, dtype.upper())
        t.buffer = self._buffer(data) if data is not None else 0
        if quant is not None:
            t.quantization = _quant(self.s, *quant)
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def set_bias(self, op_pos: int, data: np.ndarray, scales: np.ndarray) -> None:
        op = self.sg.operators[op_pos]
        ins = list(op.inputs)
        if len(ins) > 2 and ins[2] >= 0:
            self.set_constant(ins[2], data, scales, 0)
        else:
            # LiteRT refuses an int8 CONV_2D without bias: give every layer one (zeros if absent).
            name = self.sg.tensors[ins[0]].name or b"x"
            name = (name.decode() if isinstance(name, bytes) else name) + "/bias"
            ins = ins[:2] + [self.add_tensor(name, [data.size], "int32", data, (scales, 0))]
            op.inputs = np.asarray(ins, np.int32)

    def float_io(self, q_in: dict[int, tuple[float, int]], q_out: dict[int, tuple[float, int]]) -> None:
        """QUANTIZE after each graph input, DEQUANTIZE before each graph output."""
        front, back = [], []
        for i, (scale, zp) in q_in.items():
            t = self.sg.tensors[i]
            j = self.add_tensor(_name(t) + "_int8", t.shape, "int8", quant=(scale, zp))
            self._rewire(i, j)
            front.append(self._op("QUANTIZE", [i], [j]))
        for i, (scale, zp) in q_out.items():
            t = self.sg.tensors[i]
            j = self.add_tensor(_name(t) + "_int8", t.shape, "int8", quant=(scale, zp))
            self._rewire(i, j, producer=True)
            back.append(self._op("DEQUANTIZE", [j], [i]))
        self.sg.operators = front + self.sg.operators + back

    def _rewire(self, old: int, new: int, producer: bool = False) -> None:
        for op in self.sg.operators:
            op.inputs = np.asarray([new if v == old else v for v in op.inputs], np.int32)
            if producer:
                op.outputs = np.asarray([new if v == old else v for v in op.outputs], np.int32)

    def _op(self, kind: str, ins, outs):
        o = self.s.OperatorT()
        o.opcodeIndex = self._opcode(kind)
        o.inputs = np.asarray(ins, np.int32)
        o.outputs = np.asarray(outs, np.int32)
        if kind == "QUANTIZE":
            o.builtinOptionsType, o.builtinOptions = self.s.BuiltinOptions.QuantizeOptions, self.s.QuantizeOptionsT()
        else:
            o.builtinOptionsType, o.builtinOptions = self.s.BuiltinOptions.DequantizeOptions, self.s.DequantizeOptionsT()
        return o

    def _opcode(self, kind: str) -> int:
        code = getattr(self.s.BuiltinOperator, kind)
        oc = self.s.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = INT8_VERSION[kind]
        self.m.operatorCodes = list(self.m.operatorCodes or []) + [oc]
        return len(self.m.operatorCodes) - 1

    def int8_versions(self) -> None:
        """Every opcode at the version of its int8 kernel."""
        names = {v: k for k, v in vars(self.s.BuiltinOperator).items() if not k.startswith("_")}
        for oc in self.m.operatorCodes:
            kind = names.get(max(oc.builtinCode, oc.deprecatedBuiltinCode))
            if kind in INT8_VERSION:
                oc.version = INT8_VERSION[kind]

    def finish(self, description: str) -> bytes:
        import flatbuffers

        used = {t.buffer for t in self.sg.tensors} | {md.buffer for md in (self.m.metadata or [])}
        for k, b in enumerate(self.m.buffers):
            if k not in used:
                b.data = None  # the float constants that int8 ones replaced
        self.m.buffers = [_aligned(b) for b in self.m.buffers]
        self.m.description = description
        size = sum(b.data.size for b in self.m.buffers if b.data is not None)
        builder = flatbuffers.Builder(size + 65536)
        builder.Finish(self.m.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _name(t) -> str:
    n = t.name or b"t"
    return n.decode() if isinstance(n, bytes) else n


class _AlignedBuffer:
    """A buffer whose bytes start on a 16-byte boundary, as TFLite's converter writes them,
    so int32 constants are naturally aligned wherever the file is mapped."""

    data = None
    offset = 0
    size = 0

    def Pack(self, builder):
        s = _schema()
        vec = None
        if self.data is not None and len(self.data):
            payload = np.ascontiguousarray(self.data, np.uint8).tobytes()
            builder.StartVector(1, len(payload), 16)
            builder.head -= len(payload)
            builder.Bytes[builder.head: builder.head + len(payload)] = payload
            vec = builder.EndVector()
        s.BufferStart(builder)
        if vec is not None:
            s.BufferAddData(builder, vec)
        return s.BufferEnd(builder)


def _aligned(b) -> _AlignedBuffer:
    if isinstance(b, _AlignedBuffer):
        return b
    a = _AlignedBuffer()
    a.data = b.data
    return a
