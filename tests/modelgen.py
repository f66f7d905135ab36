"""Generator of small random-weight int8 TFLite models.

Models are assembled with TFLite's flatbuffer object API
(``ai_edge_litert.schema_py_generated``: ModelT, SubGraphT, TensorT, ...) and
serialised with ``flatbuffers.Builder`` -- no bytes are packed by hand.

* :class:`ModelBuilder` -- a thin graph builder (tensors, ops, build()).
* single-op factories (``conv2d``, ``depthwise``, ``fully_connected``, ...) that
  take a ``numpy.random.Generator`` and return ``.tflite`` bytes with realistic
  int8 quantization (per-channel symmetric weights, int32 biases with
  ``scale = input_scale * weight_scale``, per-tensor asymmetric activations,
  output scales estimated from the weight/input statistics).
* ``small_chain`` -- a multi-op graph.
* ``CASES`` -- ``(case_id, factory(rng) -> bytes)`` covering edge cases.
* ``run_tflm`` / ``run_litert_ref`` / ``random_input`` helpers.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

__all__ = [
    "ModelBuilder",
    "conv2d",
    "depthwise",
    "fully_connected",
    "add",
    "mul",
    "pool",
    "mean",
    "pad",
    "reshape",
    "transpose",
    "softmax",
    "concatenation",
    "quantize",
    "dequantize",
    "requantize",
    "logistic",
    "hard_swish",
    "resize_nearest_neighbor",
    "small_chain",
    "face_mask_detector",
    "CASES",
    "run_tflm",
    "run_litert_ref",
    "random_input",
    "model_io",
    "float_model",
]

# --------------------------------------------------------------------------- #
# ModelBuilder
# --------------------------------------------------------------------------- #

_DTYPES = {
    "float32": (schema.TensorType.FLOAT32, np.float32),
    "int8": (schema.TensorType.INT8, np.int8),
    "uint8": (schema.TensorType.UINT8, np.uint8),
    "int16": (schema.TensorType.INT16, np.int16),
    "int32": (schema.TensorType.INT32, np.int32),
    "int64": (schema.TensorType.INT64, np.int64),
    "bool": (schema.TensorType.BOOL, np.bool_),
}
_NP_OF_TFL = {tt: npt for tt, npt in _DTYPES.values()}

# kind -> (BuiltinOptions union member name, *OptionsT class or None)
_OPTIONS = {
    "CONV_2D": ("Conv2DOptions", schema.Conv2DOptionsT),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", schema.DepthwiseConv2DOptionsT),
    "FULLY_CONNECTED": ("FullyConnectedOptions", schema.FullyConnectedOptionsT),
    "ADD": ("AddOptions", schema.AddOptionsT),
    "MUL": ("MulOptions", schema.MulOptionsT),
    "AVERAGE_POOL_2D": ("Pool2DOptions", schema.Pool2DOptionsT),
    "MAX_POOL_2D": ("Pool2DOptions", schema.Pool2DOptionsT),
    "MEAN": ("ReducerOptions", schema.ReducerOptionsT),
    "PAD": ("PadOptions", schema.PadOptionsT),
    "RESHAPE": ("ReshapeOptions", schema.ReshapeOptionsT),
    "SOFTMAX": ("SoftmaxOptions", schema.SoftmaxOptionsT),
    "TRANSPOSE": ("TransposeOptions", schema.TransposeOptionsT),
    "QUANTIZE": ("QuantizeOptions", schema.QuantizeOptionsT),
    "DEQUANTIZE": ("DequantizeOptions", schema.DequantizeOptionsT),
    "CONCATENATION": ("ConcatenationOptions", schema.ConcatenationOptionsT),
    "LOGISTIC": (None, None),
    "HARD_SWISH": ("HardSwishOptions", schema.HardSwishOptionsT),
    "RESIZE_NEAREST_NEIGHBOR": (
        "ResizeNearestNeighborOptions",
        schema.ResizeNearestNeighborOptionsT,
    ),
}

# Op version when the op runs on int8 data (matches what the TFLite converter
# writes for the plain int8 variants); other data types get version 1.
_INT8_VERSION = {
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 3,
    "FULLY_CONNECTED": 4,
    "ADD": 2,
    "MUL": 2,
    "AVERAGE_POOL_2D": 2,
    "MAX_POOL_2D": 2,
    "MEAN": 2,
    "PAD": 2,
    "RESHAPE": 1,
    "SOFTMAX": 2,
    "TRANSPOSE": 2,
    "QUANTIZE": 2,
    "DEQUANTIZE": 2,
    "CONCATENATION": 2,
    "LOGISTIC": 2,
    "HARD_SWISH": 1,
    "RESIZE_NEAREST_NEIGHBOR": 2,
}

# snake_case option -> *OptionsT attribute
_OPTION_ATTR = {
    "stride_h": "strideH",
    "stride_w": "strideW",
    "dilation_h": "dilationHFactor",
    "dilation_w": "dilationWFactor",
    "padding": "padding",
    "activation": "fusedActivationFunction",
    "fused_activation_function": "fusedActivationFunction",
    "depth_multiplier": "depthMultiplier",
    "filter_h": "filterHeight",
    "filter_w": "filterWidth",
    "keep_dims": "keepDims",
    "beta": "beta",
    "axis": "axis",
    "align_corners": "alignCorners",
    "half_pixel_centers": "halfPixelCenters",
    "new_shape": "newShape",
    "keep_num_dims": "keepNumDims",
    "weights_format": "weightsFormat",
    "pot_scale_int16": "potScaleInt16",
}

# defaults that differ from the *OptionsT constructors (strides default to 0)
_OPTION_DEFAULTS = {
    "CONV_2D": {"strideH": 1, "strideW": 1},
    "DEPTHWISE_CONV_2D": {"strideH": 1, "strideW": 1, "depthMultiplier": 1},
    "AVERAGE_POOL_2D": {"strideH": 1, "strideW": 1, "filterHeight": 1, "filterWidth": 1},
    "MAX_POOL_2D": {"strideH": 1, "strideW": 1, "filterHeight": 1, "filterWidth": 1},
    "SOFTMAX": {"beta": 1.0},
}


def _enum_value(enum_cls, value):
    if isinstance(value, str):
        try:
            return getattr(enum_cls, value.upper())
        except AttributeError:
            raise ValueError(f"unknown {enum_cls.__name__} {value!r}") from None
    return int(value)


class _AlignedBufferT(schema.BufferT):
    """BufferT whose data vector starts on a 16-byte boundary (as the TFLite
    converter does), so int32/float constants are naturally aligned."""

    def Pack(self, builder):
        data = None
        if self.data is not None:
            payload = np.ascontiguousarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), 16)
            builder.head -= len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


class ModelBuilder:
    """Builds a single-subgraph TFLite model with the flatbuffer object API."""

    def __init__(self, name: str = "gen"):
        self.name = name
        self._tensors: list[schema.TensorT] = []
        self._buffers: list[schema.BufferT] = [schema.BufferT()]  # buffer 0: empty
        self._operators: list[schema.OperatorT] = []
        self._opcodes: list[schema.OperatorCodeT] = []
        self._opcode_index: dict[tuple[int, int], int] = {}

    # -- tensors ---------------------------------------------------------- #
    def tensor(
        self,
        shape,
        dtype="int8",
        scale=None,
        zero_point=0,
        data=None,
        quantized_dimension=0,
        name=None,
    ) -> int:
        if dtype not in _DTYPES:
            raise ValueError(f"unsupported dtype {dtype!r}")
        tfl_type, np_type = _DTYPES[dtype]
        t = schema.TensorT()
        t.shape = np.asarray(list(shape), dtype=np.int32)
        t.type = tfl_type
        t.name = name if name is not None else f"t{len(self._tensors)}"
        t.buffer = 0
        if scale is not None:
            scales = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            zps = np.atleast_1d(np.asarray(zero_point, dtype=np.int64))
            if zps.size == 1 and scales.size > 1:
                zps = np.full(scales.size, int(zps[0]), dtype=np.int64)
            if zps.size != scales.size:
                raise ValueError("zero_point and scale lengths differ")
            q = schema.QuantizationParametersT()
            q.scale = scales
            q.zeroPoint = zps
            q.quantizedDimension = int(quantized_dimension)
            t.quantization = q
        if data is not None:
            arr = np.asarray(data)
            if tuple(arr.shape) != tuple(int(d) for d in shape):
                arr = arr.reshape([int(d) for d in shape])
            arr = np.ascontiguousarray(arr.astype(np_type, copy=False))
            buf = _AlignedBufferT()
            buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
            self._buffers.append(buf)
            t.buffer = len(self._buffers) - 1
        self._tensors.append(t)
        return len(self._tensors) - 1

    def const(self, data, dtype, **kw) -> int:
        """Constant tensor shaped like ``data``."""
        arr = np.asarray(data)
        return self.tensor(arr.shape, dtype=dtype, data=arr, **kw)

    # -- operators -------------------------------------------------------- #
    def _opcode(self, code: int, version: int) -> int:
        key = (code, version)
        if key not in self._opcode_index:
            oc = schema.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = version
            self._opcodes.append(oc)
            self._opcode_index[key] = len(self._opcodes) - 1
        return self._opcode_index[key]

    def op(self, kind: str, inputs: list[int], outputs: list[int], **options) -> None:
        kind = kind.upper()
        if kind not in _OPTIONS:
            # Any other builtin may be emitted without options, to build models with ops
            # mcutool does not support (its error paths need them).
            if options or not hasattr(schema.BuiltinOperator, kind):
                raise ValueError(f"unsupported op kind {kind!r}")
            _OPTIONS[kind] = (None, None)
            _INT8_VERSION.setdefault(kind, 1)
        code = getattr(schema.BuiltinOperator, kind)
        version = options.pop("version", None)
        if version is None:
            first = next((i for i in inputs if i >= 0), None)
            is_int8 = first is not None and self._tensors[first].type == schema.TensorType.INT8
            version = _INT8_VERSION[kind] if is_int8 else 1

        union_name, opt_cls = _OPTIONS[kind]
        o = schema.OperatorT()
        o.opcodeIndex = self._opcode(code, int(version))
        o.inputs = np.asarray(inputs, dtype=np.int32)
        o.outputs = np.asarray(outputs, dtype=np.int32)
        if opt_cls is None:
            if options:
                raise TypeError(f"{kind} takes no options, got {sorted(options)}")
        else:
            opts = opt_cls()
            for attr, val in _OPTION_DEFAULTS.get(kind, {}).items():
                setattr(opts, attr, val)
            for key, val in options.items():
                attr = _OPTION_ATTR.get(key)
                if attr is None or not hasattr(opts, attr):
                    raise TypeError(f"{kind}: unknown option {key!r}")
                if attr == "padding":
                    val = _enum_value(schema.Padding, val)
                elif attr == "fusedActivationFunction":
                    val = _enum_value(schema.ActivationFunctionType, val)
                elif attr == "newShape":
                    val = np.asarray(val, dtype=np.int32)
                elif attr == "beta":
                    val = float(val)
                elif isinstance(val, (bool, np.bool_)):
                    val = bool(val)
                else:
                    val = int(val)
                setattr(opts, attr, val)
            o.builtinOptionsType = getattr(schema.BuiltinOptions, union_name)
            o.builtinOptions = opts
        self._operators.append(o)

    # -- serialisation ---------------------------------------------------- #
    def build(self, inputs: list[int], outputs: list[int]) -> bytes:
        sg = schema.SubGraphT()
        sg.tensors = self._tensors
        sg.operators = self._operators
        sg.inputs = np.asarray(inputs, dtype=np.int32)
        sg.outputs = np.asarray(outputs, dtype=np.int32)
        sg.name = "main"

        m = schema.ModelT()
        m.version = 3
        m.description = self.name
        m.operatorCodes = self._opcodes
        m.subgraphs = [sg]
        m.buffers = self._buffers

        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


# --------------------------------------------------------------------------- #
# Quantization helpers
# --------------------------------------------------------------------------- #

_UNIFORM_STD = 255.0 / math.sqrt(12.0)  # std of uniform int8 codes


def _act_q(rng, zp=None, lo=0.02, hi=0.06):
    """Random per-tensor activation quantization (scale, zero_point)."""
    scale = float(rng.uniform(lo, hi))
    if zp is None:
        zp = int(rng.integers(-40, 41))
    return scale, int(zp)


def _stats(scale, zp):
    """Mean/std of the real value of a uniformly random int8 tensor."""
    return scale * (-0.5 - zp), scale * _UNIFORM_STD


def _real_range(scale, zp):
    return scale * (-128 - zp), scale * (127 - zp)


_ACT_CLIP = {
    "NONE": (-math.inf, math.inf),
    "RELU": (0.0, math.inf),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
}


def _out_q(lo, hi, activation="NONE", zp=None, squeeze=1.0):
    """Output (scale, zp) covering real range [lo, hi] after ``activation``.

    ``zp`` forces the zero point (scale then chosen to cover the range on the
    side that is representable). ``squeeze`` < 1 shrinks the scale so outputs
    saturate on purpose.
    """
    a_lo, a_hi = _ACT_CLIP[activation.upper()]
    lo, hi = max(lo, a_lo), min(hi, a_hi)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-6:
        hi = lo + 1e-3
    if zp is None:
        scale = (hi - lo) / 255.0
        zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    else:
        zp = int(zp)
        cands = []
        if 127 - zp > 0 and hi > 0:
            cands.append(hi / (127 - zp))
        if zp + 128 > 0 and lo < 0:
            cands.append(-lo / (zp + 128))
        scale = max(cands) if cands else (hi - lo) / 255.0
    return float(scale * squeeze), zp


def _quant_weights(w, axis, per_channel):
    """Symmetric int8 quantization of float weights; returns (q, scales)."""
    if per_channel:
        red = tuple(i for i in range(w.ndim) if i != axis)
        amax = np.max(np.abs(w), axis=red)
    else:
        amax = np.array([np.max(np.abs(w))])
    scales = np.maximum(amax, 1e-8) / 127.0
    shape = [1] * w.ndim
    if per_channel:
        shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape)), -127, 127).astype(np.int8)
    return q, scales.astype(np.float32)


def _rand_weights(rng, shape, axis, fan_in, gain=1.0):
    """Gaussian weights with a per-output-channel gain so channel scales differ."""
    w = rng.standard_normal(shape) / math.sqrt(max(fan_in, 1))
    g_shape = [1] * len(shape)
    g_shape[axis] = -1
    w *= gain * rng.uniform(0.3, 1.5, size=shape[axis]).reshape(g_shape)
    return w


def _broadcast_scales(scales, n):
    return np.broadcast_to(np.asarray(scales, dtype=np.float64), (n,))


def _conv_out_size(size, k, stride, dilation, padding):
    eff = (k - 1) * dilation + 1
    if padding.upper() == "SAME":
        return -(-size // stride)
    out = (size - eff) // stride + 1
    if out < 1:
        raise ValueError("VALID window larger than the input")
    return out


def _affine_layer(
    rng,
    mb,
    x,
    in_q,
    w_float,
    w_axis,
    out_ch,
    per_channel,
    bias,
    activation,
    out_zp,
    squeeze,
    sum_axes,
):
    """Quantize weights/bias for a conv-like layer, return tensor ids and
    the estimated output quantization.

    ``sum_axes`` are the weight axes summed per output channel (for the
    estimate of the output statistics).
    """
    s_in, z_in = in_q
    wq, ws = _quant_weights(w_float, w_axis, per_channel)
    ws_full = _broadcast_scales(ws, out_ch)
    shape = [1] * w_float.ndim
    shape[w_axis] = -1
    w_deq = wq.astype(np.float64) * ws_full.reshape(shape)
    s1 = w_deq.sum(axis=sum_axes)
    s2 = (w_deq**2).sum(axis=sum_axes)
    mx, sx = _stats(s_in, z_in)
    mean = mx * s1
    std = sx * np.sqrt(s2)
    b_ids = None
    if bias:
        b_float = rng.standard_normal(out_ch) * 0.3 * np.maximum(std, 1e-3)
        b_scale = s_in * ws_full
        bq = np.round(b_float / b_scale).astype(np.int64)
        bq = np.clip(bq, -(2**31), 2**31 - 1).astype(np.int32)
        mean = mean + bq * b_scale
        b_ids = mb.tensor(
            [out_ch],
            "int32",
            scale=(s_in * ws).astype(np.float32),
            zero_point=0,
            data=bq,
            name="bias",
        )
    w_id = mb.tensor(
        wq.shape,
        "int8",
        scale=ws,
        zero_point=0,
        data=wq,
        quantized_dimension=w_axis if per_channel else 0,
        name="weights",
    )
    lo = float(np.min(mean - 3 * std))
    hi = float(np.max(mean + 3 * std))
    return w_id, b_ids, _out_q(lo, hi, activation, out_zp, squeeze)


def _layer_inputs(x, w_id, b_id, bias_minus1):
    """Op inputs; an absent bias is either left out or written as -1."""
    if b_id is not None:
        return [x, w_id, b_id]
    return [x, w_id, -1] if bias_minus1 else [x, w_id]


# --------------------------------------------------------------------------- #
# Single-op factories
# --------------------------------------------------------------------------- #


def conv2d(
    rng,
    in_shape=(1, 8, 8, 4),
    out_ch=8,
    kernel=(3, 3),
    stride=(1, 1),
    dilation=(1, 1),
    padding="SAME",
    activation="NONE",
    per_channel=True,
    input_zp=None,
    output_zp=None,
    bias=True,
    squeeze=1.0,
    bias_minus1=False,
) -> bytes:
    """CONV_2D. ``bias=False`` leaves the bias out (2 inputs), or writes it as
    input index -1 when ``bias_minus1``."""
    n, h, w, c = in_shape
    kh, kw = kernel
    oh = _conv_out_size(h, kh, stride[0], dilation[0], padding)
    ow = _conv_out_size(w, kw, stride[1], dilation[1], padding)
    mb = ModelBuilder("conv2d")
    in_q = _act_q(rng, input_zp)
    x = mb.tensor(in_shape, "int8", *in_q, name="input")
    wf = _rand_weights(rng, (out_ch, kh, kw, c), 0, kh * kw * c)
    w_id, b_id, out_q = _affine_layer(
        rng, mb, x, in_q, wf, 0, out_ch, per_channel, bias, activation,
        output_zp, squeeze, (1, 2, 3),
    )
    y = mb.tensor((n, oh, ow, out_ch), "int8", *out_q, name="output")
    mb.op(
        "CONV_2D", _layer_inputs(x, w_id, b_id, bias_minus1), [y],
        padding=padding, stride_h=stride[0], stride_w=stride[1],
        dilation_h=dilation[0], dilation_w=dilation[1], activation=activation,
    )
    return mb.build([x], [y])


def depthwise(
    rng,
    in_shape=(1, 8, 8, 4),
    depth_multiplier=1,
    kernel=(3, 3),
    stride=(1, 1),
    dilation=(1, 1),
    padding="SAME",
    activation="NONE",
    per_channel=True,
    input_zp=None,
    output_zp=None,
    bias=True,
    squeeze=1.0,
    bias_minus1=False,
) -> bytes:
    n, h, w, c = in_shape
    kh, kw = kernel
    oc = c * depth_multiplier
    oh = _conv_out_size(h, kh, stride[0], dilation[0], padding)
    ow = _conv_out_size(w, kw, stride[1], dilation[1], padding)
    mb = ModelBuilder("depthwise")
    in_q = _act_q(rng, input_zp)
    x = mb.tensor(in_shape, "int8", *in_q, name="input")
    wf = _rand_weights(rng, (1, kh, kw, oc), 3, kh * kw)
    w_id, b_id, out_q = _affine_layer(
        rng, mb, x, in_q, wf, 3, oc, per_channel, bias, activation,
        output_zp, squeeze, (0, 1, 2),
    )
    y = mb.tensor((n, oh, ow, oc), "int8", *out_q, name="output")
    mb.op(
        "DEPTHWISE_CONV_2D", _layer_inputs(x, w_id, b_id, bias_minus1), [y],
        padding=padding, stride_h=stride[0], stride_w=stride[1],
        dilation_h=dilation[0], dilation_w=dilation[1],
        depth_multiplier=depth_multiplier, activation=activation,
    )
    return mb.build([x], [y])


def fully_connected(
    rng,
    in_shape=(1, 32),
    units=10,
    activation="NONE",
    per_channel=False,
    input_zp=None,
    output_zp=None,
    bias=True,
    keep_num_dims=False,
    squeeze=1.0,
) -> bytes:
    n_in = int(in_shape[-1]) if keep_num_dims else None
    total = int(np.prod(in_shape))
    if n_in is None:
        # flatten everything but the batch (the common converter layout)
        n_in = total // int(in_shape[0])
    batch = total // n_in
    mb = ModelBuilder("fully_connected")
    in_q = _act_q(rng, input_zp)
    x = mb.tensor(in_shape, "int8", *in_q, name="input")
    wf = _rand_weights(rng, (units, n_in), 0, n_in)
    w_id, b_id, out_q = _affine_layer(
        rng, mb, x, in_q, wf, 0, units, per_channel, bias, activation,
        output_zp, squeeze, (1,),
    )
    out_shape = (*in_shape[:-1], units) if keep_num_dims else (batch, units)
    y = mb.tensor(out_shape, "int8", *out_q, name="output")
    mb.op("FULLY_CONNECTED", _layer_inputs(x, w_id, b_id, True), [y],
          activation=activation, keep_num_dims=keep_num_dims)
    return mb.build([x], [y])


def _binary(kind, rng, shape, shape2, activation, in1_zp, in2_zp, output_zp, squeeze):
    shape2 = shape if shape2 is None else shape2
    out_shape = np.broadcast_shapes(tuple(shape), tuple(shape2))
    q1 = _act_q(rng, in1_zp)
    q2 = _act_q(rng, in2_zp, 0.01, 0.08)
    m1, s1 = _stats(*q1)
    m2, s2 = _stats(*q2)
    if kind == "ADD":
        m, s = m1 + m2, math.hypot(s1, s2)
    else:
        m = m1 * m2
        s = math.sqrt((s1**2 + m1**2) * (s2**2 + m2**2) - (m1 * m2) ** 2)
    out_q = _out_q(m - 3 * s, m + 3 * s, activation, output_zp, squeeze)
    mb = ModelBuilder(kind.lower())
    a = mb.tensor(shape, "int8", *q1, name="in1")
    b = mb.tensor(shape2, "int8", *q2, name="in2")
    y = mb.tensor(out_shape, "int8", *out_q, name="output")
    mb.op(kind, [a, b], [y], activation=activation)
    return mb.build([a, b], [y])


def add(rng, shape=(1, 8, 8, 4), shape2=None, activation="NONE",
        in1_zp=None, in2_zp=None, output_zp=None, squeeze=1.0) -> bytes:
    """ADD of two int8 inputs with different scales/zero points."""
    return _binary("ADD", rng, shape, shape2, activation, in1_zp, in2_zp, output_zp, squeeze)


def mul(rng, shape=(1, 8, 8, 4), shape2=None, activation="NONE",
        in1_zp=None, in2_zp=None, output_zp=None, squeeze=1.0) -> bytes:
    """MUL of two int8 inputs with different scales/zero points."""
    return _binary("MUL", rng, shape, shape2, activation, in1_zp, in2_zp, output_zp, squeeze)


def pool(rng, kind="AVERAGE_POOL_2D", in_shape=(1, 8, 8, 4), filter=(2, 2),
         stride=(2, 2), padding="VALID", activation="NONE", input_zp=None,
         input_scale=None) -> bytes:
    """Pooling; input and output share quantization (as the converter emits)."""
    n, h, w, c = in_shape
    oh = _conv_out_size(h, filter[0], stride[0], 1, padding)
    ow = _conv_out_size(w, filter[1], stride[1], 1, padding)
    mb = ModelBuilder(kind.lower())
    q = _act_q(rng, input_zp)
    if input_scale is not None:
        q = (float(input_scale), q[1])
    x = mb.tensor(in_shape, "int8", *q, name="input")
    y = mb.tensor((n, oh, ow, c), "int8", *q, name="output")
    mb.op(kind, [x], [y], padding=padding, stride_h=stride[0], stride_w=stride[1],
          filter_h=filter[0], filter_w=filter[1], activation=activation)
    return mb.build([x], [y])


def mean(rng, in_shape=(1, 8, 8, 4), axes=(1, 2), keep_dims=True,
         same_scale=False, input_zp=None) -> bytes:
    rank = len(in_shape)
    axes = [a % rank for a in axes]
    count = int(np.prod([in_shape[a] for a in axes]))
    out_shape = [1 if i in axes else d for i, d in enumerate(in_shape)] if keep_dims \
        else [d for i, d in enumerate(in_shape) if i not in axes]
    in_q = _act_q(rng, input_zp)
    if same_scale:
        out_q = in_q
    else:
        m, s = _stats(*in_q)
        s = s / math.sqrt(count)
        out_q = _out_q(m - 4 * s, m + 4 * s)
    mb = ModelBuilder("mean")
    x = mb.tensor(in_shape, "int8", *in_q, name="input")
    ax = mb.const(np.asarray(axes, dtype=np.int32), "int32", name="axes")
    y = mb.tensor(out_shape, "int8", *out_q, name="output")
    mb.op("MEAN", [x, ax], [y], keep_dims=keep_dims)
    return mb.build([x], [y])


def pad(rng, in_shape=(1, 5, 5, 3), paddings=((0, 0), (1, 1), (1, 1), (0, 0)),
        input_zp=None) -> bytes:
    paddings = np.asarray(paddings, dtype=np.int32)
    out_shape = [d + int(p0) + int(p1) for d, (p0, p1) in zip(in_shape, paddings)]
    q = _act_q(rng, input_zp)
    mb = ModelBuilder("pad")
    x = mb.tensor(in_shape, "int8", *q, name="input")
    p = mb.const(paddings, "int32", name="paddings")
    y = mb.tensor(out_shape, "int8", *q, name="output")
    mb.op("PAD", [x, p], [y])
    return mb.build([x], [y])


def reshape(rng, in_shape=(1, 4, 4, 8), new_shape=(1, 128)) -> bytes:
    q = _act_q(rng)
    mb = ModelBuilder("reshape")
    x = mb.tensor(in_shape, "int8", *q, name="input")
    s = mb.const(np.asarray(new_shape, dtype=np.int32), "int32", name="shape")
    y = mb.tensor(new_shape, "int8", *q, name="output")
    mb.op("RESHAPE", [x, s], [y], new_shape=list(new_shape))
    return mb.build([x], [y])


def transpose(rng, in_shape=(1, 4, 6, 8), perm=(0, 3, 1, 2)) -> bytes:
    q = _act_q(rng)
    mb = ModelBuilder("transpose")
    x = mb.tensor(in_shape, "int8", *q, name="input")
    p = mb.const(np.asarray(perm, dtype=np.int32), "int32", name="perm")
    y = mb.tensor([in_shape[i] for i in perm], "int8", *q, name="output")
    mb.op("TRANSPOSE", [x, p], [y])
    return mb.build([x], [y])


def softmax(rng, shape=(1, 10), beta=1.0, input_scale=None) -> bytes:
    """int8 softmax; output quantization fixed to 1/256, -128 as TFLite requires."""
    s_in = float(rng.uniform(0.03, 0.1)) if input_scale is None else input_scale
    z_in = int(rng.integers(-20, 21))
    mb = ModelBuilder("softmax")
    x = mb.tensor(shape, "int8", s_in, z_in, name="input")
    y = mb.tensor(shape, "int8", 1.0 / 256, -128, name="output")
    mb.op("SOFTMAX", [x], [y], beta=beta)
    return mb.build([x], [y])


def concatenation(rng, shapes=((1, 4, 4, 3), (1, 4, 4, 5)), axis=3,
                  activation="NONE") -> bytes:
    """Concatenation; all inputs and the output share one quantization."""
    q = _act_q(rng)
    rank = len(shapes[0])
    ax = axis % rank
    out_shape = list(shapes[0])
    out_shape[ax] = sum(s[ax] for s in shapes)
    mb = ModelBuilder("concatenation")
    xs = [mb.tensor(s, "int8", *q, name=f"in{i}") for i, s in enumerate(shapes)]
    y = mb.tensor(out_shape, "int8", *q, name="output")
    mb.op("CONCATENATION", xs, [y], axis=axis, activation=activation)
    return mb.build(xs, [y])


def quantize(rng, shape=(1, 8, 8, 3), output_zp=None) -> bytes:
    """QUANTIZE float32 -> int8. ``random_input`` feeds N(0, 2^2) floats."""
    zp = int(rng.integers(-20, 21)) if output_zp is None else output_zp
    scale, zp = _out_q(-6.0, 6.0, zp=zp)
    mb = ModelBuilder("quantize")
    x = mb.tensor(shape, "float32", name="input")
    y = mb.tensor(shape, "int8", scale, zp, name="output")
    mb.op("QUANTIZE", [x], [y])
    return mb.build([x], [y])


def dequantize(rng, shape=(1, 8, 8, 3), input_zp=None) -> bytes:
    """DEQUANTIZE int8 -> float32."""
    q = _act_q(rng, input_zp)
    mb = ModelBuilder("dequantize")
    x = mb.tensor(shape, "int8", *q, name="input")
    y = mb.tensor(shape, "float32", name="output")
    mb.op("DEQUANTIZE", [x], [y])
    return mb.build([x], [y])


def requantize(rng, shape=(1, 8, 8, 3), scale_ratio=None, output_zp=None) -> bytes:
    """QUANTIZE int8 -> int8 with a different scale and zero point."""
    q_in = _act_q(rng)
    ratio = float(rng.uniform(1.0, 2.0)) if scale_ratio is None else scale_ratio
    zp_out = int(rng.integers(-30, 31)) if output_zp is None else output_zp
    mb = ModelBuilder("requantize")
    x = mb.tensor(shape, "int8", *q_in, name="input")
    y = mb.tensor(shape, "int8", q_in[0] * ratio, zp_out, name="output")
    mb.op("QUANTIZE", [x], [y])
    return mb.build([x], [y])


def logistic(rng, shape=(1, 8, 8, 3), input_scale=None) -> bytes:
    """int8 LOGISTIC; output quantization 1/256, -128 as TFLite requires."""
    s_in = float(rng.uniform(0.03, 0.08)) if input_scale is None else input_scale
    z_in = int(rng.integers(-20, 21))
    mb = ModelBuilder("logistic")
    x = mb.tensor(shape, "int8", s_in, z_in, name="input")
    y = mb.tensor(shape, "int8", 1.0 / 256, -128, name="output")
    mb.op("LOGISTIC", [x], [y])
    return mb.build([x], [y])


def hard_swish(rng, shape=(1, 8, 8, 3), input_zp=None) -> bytes:
    q_in = _act_q(rng, input_zp)
    lo, hi = _real_range(*q_in)
    f = lambda v: v * min(max(v + 3.0, 0.0), 6.0) / 6.0  # noqa: E731
    grid = np.linspace(lo, hi, 257)
    vals = [f(v) for v in grid]
    out_q = _out_q(min(vals), max(vals))
    mb = ModelBuilder("hard_swish")
    x = mb.tensor(shape, "int8", *q_in, name="input")
    y = mb.tensor(shape, "int8", *out_q, name="output")
    mb.op("HARD_SWISH", [x], [y])
    return mb.build([x], [y])


def resize_nearest_neighbor(rng, in_shape=(1, 4, 4, 3), size=(8, 8),
                            align_corners=False, half_pixel_centers=False) -> bytes:
    q = _act_q(rng)
    mb = ModelBuilder("resize_nearest_neighbor")
    x = mb.tensor(in_shape, "int8", *q, name="input")
    sz = mb.const(np.asarray(size, dtype=np.int32), "int32", name="size")
    y = mb.tensor((in_shape[0], size[0], size[1], in_shape[3]), "int8", *q, name="output")
    mb.op("RESIZE_NEAREST_NEIGHBOR", [x, sz], [y],
          align_corners=align_corners, half_pixel_centers=half_pixel_centers)
    return mb.build([x], [y])


# --------------------------------------------------------------------------- #
# Multi-op graph
# --------------------------------------------------------------------------- #


def small_chain(rng) -> bytes:
    """PAD -> CONV(VALID, s2) -> DEPTHWISE -> CONV 1x1 -> ADD residual ->
    AVERAGE_POOL -> RESHAPE -> FULLY_CONNECTED -> SOFTMAX."""
    mb = ModelBuilder("small_chain")

    def layer(kind, x, x_q, w_shape, w_axis, sum_axes, out_shape, activation, **opts):
        oc = w_shape[w_axis]
        fan_in = int(np.prod([w_shape[a] for a in sum_axes]))
        wf = _rand_weights(rng, w_shape, w_axis, fan_in)
        w_id, b_id, out_q = _affine_layer(
            rng, mb, x, x_q, wf, w_axis, oc, True, True, activation, None, 1.0, sum_axes)
        y = mb.tensor(out_shape, "int8", *out_q)
        mb.op(kind, [x, w_id, b_id], [y], activation=activation, **opts)
        return y, out_q

    q0 = _act_q(rng)
    x = mb.tensor((1, 15, 15, 3), "int8", *q0, name="input")
    # PAD 15x15 -> 17x17
    p = mb.const(np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32), "int32")
    xp = mb.tensor((1, 17, 17, 3), "int8", *q0)
    mb.op("PAD", [x, p], [xp])
    # CONV 3x3 VALID stride 2: 17 -> 8
    c1, q1 = layer("CONV_2D", xp, q0, (8, 3, 3, 3), 0, (1, 2, 3), (1, 8, 8, 8), "RELU6",
                   padding="VALID", stride_h=2, stride_w=2)
    # DEPTHWISE 3x3 SAME
    d1, q2 = layer("DEPTHWISE_CONV_2D", c1, q1, (1, 3, 3, 8), 3, (0, 1, 2), (1, 8, 8, 8),
                   "RELU6", padding="SAME", depth_multiplier=1)
    # CONV 1x1 (projection, no activation)
    c2, q3 = layer("CONV_2D", d1, q2, (8, 1, 1, 8), 0, (1, 2, 3), (1, 8, 8, 8), "NONE",
                   padding="SAME")
    # ADD residual c1 + c2
    m1, s1 = _stats(*q1)
    m2, s2 = _stats(*q3)
    m, s = m1 + m2, math.hypot(s1, s2)
    q4 = _out_q(m - 3 * s, m + 3 * s)
    a = mb.tensor((1, 8, 8, 8), "int8", *q4)
    mb.op("ADD", [c1, c2], [a], activation="NONE")
    # AVERAGE_POOL 4x4 stride 4: 8 -> 2
    ap = mb.tensor((1, 2, 2, 8), "int8", *q4)
    mb.op("AVERAGE_POOL_2D", [a], [ap], padding="VALID", stride_h=4, stride_w=4,
          filter_h=4, filter_w=4)
    # RESHAPE -> (1, 32)
    shp = mb.const(np.array([1, 32], np.int32), "int32")
    r = mb.tensor((1, 32), "int8", *q4)
    mb.op("RESHAPE", [ap, shp], [r], new_shape=[1, 32])
    # FULLY_CONNECTED 32 -> 10
    fc, _ = layer("FULLY_CONNECTED", r, q4, (10, 32), 0, (1,), (1, 10), "NONE")
    # SOFTMAX
    out = mb.tensor((1, 10), "int8", 1.0 / 256, -128, name="output")
    mb.op("SOFTMAX", [fc], [out], beta=1.0)
    return mb.build([x], [out])


def face_mask_detector(rng, in_shape=(1, 32, 32, 3), anchors=2, dtype="int8") -> bytes:
    """The shape of AIZOO's face-mask detector (public, MIT), scaled down: a CONV_2D +
    MAX_POOL_2D backbone, five SSD heads, each a box and a class CONV_2D RESHAPEd to
    [1, H*W*anchors, k], LOGISTIC on the class scores, and two CONCATENATIONs of five
    inputs along axis 1: outputs [1, N, 4] (boxes) and [1, N, 2] (mask, no mask).
    ``dtype="float32"`` gives the float model, the input of ``mcutool quantize``."""
    mb = ModelBuilder("face_mask_detector")
    is_float = dtype == "float32"

    def act(shape, q, **kw):
        return mb.tensor(shape, "float32", **kw) if is_float else mb.tensor(shape, "int8", *q, **kw)

    def conv(x, x_q, c_in, h, w, oc, activation, out_q=None):
        if is_float:
            ins, q = _float_layer(mb, rng, "CONV_2D", x, (oc, 3, 3, c_in), 0, 9 * c_in), None
        else:
            wf = _rand_weights(rng, (oc, 3, 3, c_in), 0, 9 * c_in)
            w_id, b_id, q = _affine_layer(rng, mb, x, x_q, wf, 0, oc, True, True, activation, None, 1.0, (1, 2, 3))
            ins, q = [x, w_id, b_id], out_q or q
        y = act((1, h, w, oc), q)
        mb.op("CONV_2D", ins, [y], padding="SAME", stride_h=1, stride_w=1, activation=activation)
        return y, q

    q = _act_q(rng)
    x = act(in_shape, q, name="input")
    _, h, w, c = in_shape
    feats = []
    f, fq = x, q
    for oc in (8, 16, 16, 16, 16):
        f, fq = conv(f, fq, c, h, w, oc, "RELU")
        c = oc
        ph, pw = -(-h // 2), -(-w // 2)
        pooled = act((1, ph, pw, c), fq)
        mb.op("MAX_POOL_2D", [f], [pooled], padding="SAME", stride_h=2, stride_w=2, filter_h=2, filter_w=2)
        f, h, w = pooled, ph, pw
        feats.append((f, fq, h, w, c))
    # CONCATENATION in int8 keeps one quantization for its inputs and output (the TFLite
    # converter's rule), so the box heads share theirs.
    box_q = _out_q(-4.0, 4.0)
    sig_q = (1.0 / 256, -128)
    boxes, scores = [], []
    for f, fq, h, w, c in feats:
        n = h * w * anchors
        b, _ = conv(f, fq, c, h, w, 4 * anchors, "NONE", box_q)
        rb = act((1, n, 4), box_q)
        mb.op("RESHAPE", [b, mb.const(np.array([1, n, 4], np.int32), "int32")], [rb], new_shape=[1, n, 4])
        boxes.append(rb)
        s, sq = conv(f, fq, c, h, w, 2 * anchors, "NONE")
        rs = act((1, n, 2), sq)
        mb.op("RESHAPE", [s, mb.const(np.array([1, n, 2], np.int32), "int32")], [rs], new_shape=[1, n, 2])
        ls = act((1, n, 2), sig_q)
        mb.op("LOGISTIC", [rs], [ls])
        scores.append(ls)
    total = sum(h * w * anchors for _, _, h, w, _ in feats)
    out_boxes = act((1, total, 4), box_q, name="boxes")
    mb.op("CONCATENATION", boxes, [out_boxes], axis=1)
    out_scores = act((1, total, 2), sig_q, name="scores")
    mb.op("CONCATENATION", scores, [out_scores], axis=1)
    return mb.build([x], [out_boxes, out_scores])


# --------------------------------------------------------------------------- #
# Cases
# --------------------------------------------------------------------------- #

_P = functools.partial

CASES: list[tuple[str, Callable[[np.random.Generator], bytes]]] = [
    # ---- CONV_2D
    ("conv_3x3_same", _P(conv2d, in_shape=(1, 8, 8, 3), out_ch=8)),
    ("conv_3x3_valid", _P(conv2d, in_shape=(1, 8, 8, 3), out_ch=8, padding="VALID")),
    ("conv_3x3_same_s2_odd", _P(conv2d, in_shape=(1, 9, 9, 4), out_ch=8, stride=(2, 2))),
    ("conv_3x3_valid_s2_odd", _P(conv2d, in_shape=(1, 9, 9, 4), out_ch=8, stride=(2, 2),
                                  padding="VALID")),
    ("conv_4x4_same_s2_even_kernel", _P(conv2d, in_shape=(1, 10, 10, 3), out_ch=4,
                                         kernel=(4, 4), stride=(2, 2))),
    ("conv_1x1", _P(conv2d, in_shape=(1, 8, 8, 8), out_ch=16, kernel=(1, 1))),
    ("conv_1x1_s2_odd", _P(conv2d, in_shape=(1, 7, 7, 4), out_ch=6, kernel=(1, 1),
                           stride=(2, 2))),
    ("conv_3x1_same", _P(conv2d, in_shape=(1, 8, 6, 4), out_ch=5, kernel=(3, 1))),
    ("conv_1x5_valid", _P(conv2d, in_shape=(1, 6, 9, 4), out_ch=5, kernel=(1, 5),
                          padding="VALID")),
    ("conv_2x3_s2x1_same", _P(conv2d, in_shape=(1, 9, 7, 3), out_ch=4, kernel=(2, 3),
                              stride=(2, 1))),
    ("conv_dil2_same", _P(conv2d, in_shape=(1, 10, 10, 4), out_ch=6, dilation=(2, 2))),
    ("conv_dil2_valid", _P(conv2d, in_shape=(1, 10, 10, 4), out_ch=6, dilation=(2, 2),
                           padding="VALID")),
    ("conv_dil2x1_s2_same", _P(conv2d, in_shape=(1, 11, 9, 3), out_ch=4, dilation=(2, 1),
                               stride=(2, 2))),
    ("conv_kernel_gt_input_same", _P(conv2d, in_shape=(1, 3, 3, 4), out_ch=6, kernel=(5, 5))),
    ("conv_kernel_gt_input_same_s2", _P(conv2d, in_shape=(1, 3, 4, 2), out_ch=4,
                                         kernel=(7, 7), stride=(2, 2))),
    ("conv_per_tensor", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8, per_channel=False)),
    ("conv_in_zp_m128", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8, input_zp=-128)),
    ("conv_in_zp_127", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8, input_zp=127)),
    ("conv_out_zp_m128", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8, output_zp=-128)),
    ("conv_out_zp_127", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8, output_zp=127)),
    ("conv_relu", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8, activation="RELU")),
    ("conv_relu6", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8, activation="RELU6")),
    ("conv_relu_n1_to_1", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8,
                             activation="RELU_N1_TO_1")),
    ("conv_saturating", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8, squeeze=0.1)),
    ("conv_no_bias", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8, bias=False)),
    ("conv_no_bias_minus1", _P(conv2d, in_shape=(1, 8, 8, 4), out_ch=8, bias=False,
                               bias_minus1=True)),
    ("conv_32x32x16_s2", _P(conv2d, in_shape=(1, 32, 32, 16), out_ch=16, stride=(2, 2))),
    # ---- DEPTHWISE_CONV_2D
    ("dw_3x3_same", _P(depthwise, in_shape=(1, 8, 8, 8))),
    ("dw_3x3_valid_s2_odd", _P(depthwise, in_shape=(1, 9, 9, 8), stride=(2, 2),
                               padding="VALID")),
    ("dw_3x3_same_s2_odd", _P(depthwise, in_shape=(1, 9, 9, 4), stride=(2, 2))),
    ("dw_dm2", _P(depthwise, in_shape=(1, 6, 6, 4), depth_multiplier=2)),
    ("dw_dm2_c1", _P(depthwise, in_shape=(1, 8, 8, 1), depth_multiplier=2)),
    ("dw_dm8_c1", _P(depthwise, in_shape=(1, 8, 8, 1), depth_multiplier=8)),
    ("dw_dm8_c1_s2_valid", _P(depthwise, in_shape=(1, 9, 9, 1), depth_multiplier=8,
                              stride=(2, 2), padding="VALID")),
    ("dw_dil2_same", _P(depthwise, in_shape=(1, 10, 10, 4), dilation=(2, 2))),
    ("dw_dil2_valid", _P(depthwise, in_shape=(1, 10, 10, 4), dilation=(2, 2),
                         padding="VALID")),
    ("dw_5x5_kernel_gt_input_same", _P(depthwise, in_shape=(1, 3, 3, 4), kernel=(5, 5))),
    ("dw_3x1_s2x1", _P(depthwise, in_shape=(1, 9, 6, 4), kernel=(3, 1), stride=(2, 1))),
    ("dw_per_tensor", _P(depthwise, in_shape=(1, 8, 8, 8), per_channel=False)),
    ("dw_in_zp_m128", _P(depthwise, in_shape=(1, 8, 8, 4), input_zp=-128)),
    ("dw_out_zp_127", _P(depthwise, in_shape=(1, 8, 8, 4), output_zp=127)),
    ("dw_relu", _P(depthwise, in_shape=(1, 8, 8, 4), activation="RELU")),
    ("dw_relu6", _P(depthwise, in_shape=(1, 8, 8, 4), activation="RELU6")),
    ("dw_relu_n1_to_1", _P(depthwise, in_shape=(1, 8, 8, 4), activation="RELU_N1_TO_1")),
    ("dw_no_bias", _P(depthwise, in_shape=(1, 8, 8, 4), bias=False)),
    ("dw_saturating", _P(depthwise, in_shape=(1, 8, 8, 4), squeeze=0.1)),
    ("dw_32x32x16", _P(depthwise, in_shape=(1, 32, 32, 16))),
    # ---- FULLY_CONNECTED
    ("fc_basic", _P(fully_connected, in_shape=(1, 64), units=10)),
    ("fc_per_channel", _P(fully_connected, in_shape=(1, 64), units=10, per_channel=True)),
    ("fc_relu", _P(fully_connected, in_shape=(1, 48), units=16, activation="RELU")),
    ("fc_relu6", _P(fully_connected, in_shape=(1, 48), units=16, activation="RELU6")),
    ("fc_no_bias", _P(fully_connected, in_shape=(1, 32), units=8, bias=False)),
    ("fc_batch2", _P(fully_connected, in_shape=(2, 24), units=6)),
    ("fc_4d_input", _P(fully_connected, in_shape=(1, 2, 2, 8), units=10)),
    ("fc_in_zp_127_out_zp_m128", _P(fully_connected, in_shape=(1, 32), units=8,
                                    input_zp=127, output_zp=-128)),
    # ---- ADD / MUL
    ("add", _P(add, shape=(1, 8, 8, 4))),
    ("add_relu", _P(add, shape=(1, 8, 8, 4), activation="RELU", in1_zp=0, in2_zp=0)),
    ("add_relu6", _P(add, shape=(1, 8, 8, 4), activation="RELU6")),
    ("add_relu_n1_to_1", _P(add, shape=(1, 8, 8, 4), activation="RELU_N1_TO_1")),
    ("add_extreme_zps", _P(add, shape=(1, 6, 6, 3), in1_zp=-128, in2_zp=127, output_zp=-128)),
    ("add_broadcast_channel", _P(add, shape=(1, 6, 6, 8), shape2=(1, 1, 1, 8))),
    ("add_saturating", _P(add, shape=(1, 6, 6, 3), squeeze=0.2)),
    ("mul", _P(mul, shape=(1, 8, 8, 4))),
    ("mul_relu", _P(mul, shape=(1, 8, 8, 4), activation="RELU")),
    ("mul_extreme_zps", _P(mul, shape=(1, 6, 6, 3), in1_zp=127, in2_zp=-128)),
    ("mul_broadcast_channel", _P(mul, shape=(1, 6, 6, 8), shape2=(1, 1, 1, 8))),
    # ---- pooling
    ("avgpool_2x2_s2", _P(pool, kind="AVERAGE_POOL_2D", in_shape=(1, 8, 8, 4))),
    ("avgpool_3x3_s2_same_odd", _P(pool, kind="AVERAGE_POOL_2D", in_shape=(1, 9, 9, 4),
                                   filter=(3, 3), padding="SAME")),
    ("avgpool_global", _P(pool, kind="AVERAGE_POOL_2D", in_shape=(1, 7, 7, 8),
                          filter=(7, 7), stride=(1, 1))),
    ("avgpool_relu6", _P(pool, kind="AVERAGE_POOL_2D", in_shape=(1, 8, 8, 4),
                         activation="RELU6", input_scale=0.04, input_zp=-90)),
    ("maxpool_2x2_s2", _P(pool, kind="MAX_POOL_2D", in_shape=(1, 8, 8, 4))),
    ("maxpool_3x3_s1_same", _P(pool, kind="MAX_POOL_2D", in_shape=(1, 7, 7, 4),
                               filter=(3, 3), stride=(1, 1), padding="SAME")),
    ("maxpool_3x3_s2_valid_odd", _P(pool, kind="MAX_POOL_2D", in_shape=(1, 9, 9, 4),
                                    filter=(3, 3), stride=(2, 2))),
    ("maxpool_relu", _P(pool, kind="MAX_POOL_2D", in_shape=(1, 8, 8, 4), activation="RELU",
                        input_zp=60)),
    # ---- MEAN
    ("mean_hw_keepdims_diffscale", _P(mean, in_shape=(1, 8, 8, 4), axes=(1, 2),
                                      keep_dims=True)),
    ("mean_hw_keepdims_samescale", _P(mean, in_shape=(1, 8, 8, 4), axes=(1, 2),
                                      keep_dims=True, same_scale=True)),
    ("mean_hw_nokeep_diffscale", _P(mean, in_shape=(1, 6, 6, 8), axes=(1, 2),
                                    keep_dims=False)),
    ("mean_hw_nokeep_samescale", _P(mean, in_shape=(1, 6, 6, 8), axes=(1, 2),
                                    keep_dims=False, same_scale=True)),
    ("mean_c_keepdims_diffscale", _P(mean, in_shape=(1, 4, 4, 8), axes=(3,),
                                     keep_dims=True)),
    ("mean_w_nokeep_samescale", _P(mean, in_shape=(1, 4, 6, 4), axes=(2,),
                                   keep_dims=False, same_scale=True)),
    # ---- shape ops
    ("pad_hw", _P(pad, in_shape=(1, 5, 5, 3))),
    ("pad_asymmetric", _P(pad, in_shape=(1, 4, 5, 3),
                          paddings=((0, 0), (0, 2), (3, 1), (1, 0)))),
    ("pad_zp_m128", _P(pad, in_shape=(1, 4, 4, 2), input_zp=-128)),
    ("reshape_4d_to_2d", _P(reshape, in_shape=(1, 4, 4, 8), new_shape=(1, 128))),
    ("reshape_2d_to_4d", _P(reshape, in_shape=(1, 48), new_shape=(1, 4, 4, 3))),
    ("transpose_nhwc_to_nchw", _P(transpose, in_shape=(1, 4, 6, 8), perm=(0, 3, 1, 2))),
    ("transpose_3d", _P(transpose, in_shape=(3, 5, 7), perm=(2, 0, 1))),
    ("concat_channels", _P(concatenation, shapes=((1, 4, 4, 3), (1, 4, 4, 5)), axis=3)),
    ("concat_h_three", _P(concatenation, shapes=((1, 2, 4, 3), (1, 3, 4, 3), (1, 1, 4, 3)),
                          axis=1)),
    ("concat_neg_axis", _P(concatenation, shapes=((1, 4, 4, 2), (1, 4, 4, 6)), axis=-1)),
    ("resize_nn_2x", _P(resize_nearest_neighbor, in_shape=(1, 4, 4, 3), size=(8, 8))),
    ("resize_nn_align_corners", _P(resize_nearest_neighbor, in_shape=(1, 5, 5, 2),
                                   size=(9, 7), align_corners=True)),
    ("resize_nn_half_pixel", _P(resize_nearest_neighbor, in_shape=(1, 5, 5, 2),
                                size=(9, 7), half_pixel_centers=True)),
    ("resize_nn_down", _P(resize_nearest_neighbor, in_shape=(1, 9, 9, 2), size=(4, 5))),
    # ---- activations / quantization ops
    ("softmax_1x10", _P(softmax, shape=(1, 10))),
    ("softmax_beta_0p5", _P(softmax, shape=(1, 16), beta=0.5)),
    ("softmax_4d", _P(softmax, shape=(1, 4, 4, 6))),
    ("logistic", _P(logistic, shape=(1, 8, 8, 3))),
    ("logistic_wide_input", _P(logistic, shape=(1, 6, 6, 2), input_scale=0.1)),
    ("hard_swish", _P(hard_swish, shape=(1, 8, 8, 3))),
    ("hard_swish_zp_m128", _P(hard_swish, shape=(1, 6, 6, 2), input_zp=-128)),
    ("quantize_f32_to_i8", _P(quantize, shape=(1, 8, 8, 3))),
    ("quantize_f32_to_i8_zp_m128", _P(quantize, shape=(1, 4, 4, 3), output_zp=-128)),
    ("dequantize_i8_to_f32", _P(dequantize, shape=(1, 8, 8, 3))),
    ("requantize_i8_to_i8", _P(requantize, shape=(1, 8, 8, 3))),
    ("requantize_i8_to_i8_saturating", _P(requantize, shape=(1, 6, 6, 3), scale_ratio=0.4,
                                          output_zp=100)),
    # ---- graph
    ("small_chain", small_chain),
]


# --------------------------------------------------------------------------- #
# Runners
# --------------------------------------------------------------------------- #


def model_io(model_bytes: bytes):
    """([(shape, np.dtype)] for inputs, [...] for outputs) of subgraph 0."""
    m = schema.Model.GetRootAs(model_bytes, 0)
    sg = m.Subgraphs(0)

    def info(idx):
        t = sg.Tensors(idx)
        return tuple(int(d) for d in t.ShapeAsNumpy()), np.dtype(_NP_OF_TFL[t.Type()])

    ins = [info(sg.Inputs(i)) for i in range(sg.InputsLength())]
    outs = [info(sg.Outputs(i)) for i in range(sg.OutputsLength())]
    return ins, outs


def random_input(rng, model_bytes: bytes) -> list[np.ndarray]:
    """One random array per model input: uniform int8 codes over the full
    range; float32 inputs are N(0, 2^2)."""
    ins, _ = model_io(model_bytes)
    xs = []
    for shape, dt in ins:
        if dt == np.float32:
            xs.append((rng.standard_normal(shape) * 2.0).astype(np.float32))
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            xs.append(rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dt))
        else:
            raise ValueError(f"no random input for dtype {dt}")
    return xs


def _arena_size(model_bytes: bytes) -> int:
    m = schema.Model.GetRootAs(model_bytes, 0)
    sg = m.Subgraphs(0)
    total = 0
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        n = int(np.prod(t.ShapeAsNumpy())) if t.ShapeLength() else 1
        total += n * 4
    return 10 * len(model_bytes) + 4 * total + 64 * 1024


def run_tflm(model_bytes: bytes, inputs: Sequence[np.ndarray], arena_size=None) -> list[np.ndarray]:
    """Run once in the TFLite Micro Python interpreter; return all outputs."""
    from tflite_micro.python.tflite_micro import runtime

    _, outs = model_io(model_bytes)
    it = runtime.Interpreter.from_bytes(
        model_bytes, arena_size=arena_size or _arena_size(model_bytes)
    )
    for i, x in enumerate(inputs):
        it.set_input(np.ascontiguousarray(x), i)
    it.invoke()
    return [np.array(it.get_output(i), copy=True) for i in range(len(outs))]


def run_litert_ref(model_bytes: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run once in LiteRT with the reference (BUILTIN_REF) kernels."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_content=model_bytes,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
    )
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], np.ascontiguousarray(x))
    it.invoke()
    return [np.array(it.get_tensor(d["index"]), copy=True) for d in it.get_output_details()]


# --------------------------------------------------------------------------- #
# Float models (input of mcutool's quantizer)
# --------------------------------------------------------------------------- #


def _float_layer(mb, rng, kind, x, w_shape, axis, fan_in, bias=True):
    w = _rand_weights(rng, w_shape, axis, fan_in).astype(np.float32)
    ins = [x, mb.const(w, "float32", name="weights")]
    if bias:
        ins.append(mb.const((rng.standard_normal(w_shape[axis]) * 0.3).astype(np.float32), "float32", name="bias"))
    return ins


def float_model(rng, kind, in_shape=(1, 8, 8, 4), activation="NONE", **kw) -> bytes:
    """A float32 model of one op (two for CONCATENATION inputs), random float weights.

    ``kind`` is a TFLite builtin name; ``kw`` are the op's options as in ``ModelBuilder.op``
    plus ``out_ch`` (CONV_2D), ``units`` (FULLY_CONNECTED), ``bias`` (conv-like ops),
    ``shape2`` (second operand of ADD/MUL/CONCATENATION: a 1x1 convolution of the input, or a
    constant with ``const2``).
    """
    mb = ModelBuilder(f"float_{kind.lower()}")
    x = mb.tensor(in_shape, "float32", name="input")
    n, h, w, c = (tuple(in_shape) + (1, 1, 1))[:4] if len(in_shape) == 4 else (in_shape[0], 1, 1, in_shape[-1])
    opts = {}
    bias = kw.pop("bias", True)
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        k = kw.pop("kernel", (3, 3))
        s = kw.pop("stride", (1, 1))
        padding = kw.pop("padding", "SAME")
        if kind == "CONV_2D":
            oc = kw.pop("out_ch", 8)
            ins = _float_layer(mb, rng, kind, x, (oc, k[0], k[1], c), 0, k[0] * k[1] * c, bias)
        else:
            dm = kw.pop("depth_multiplier", 1)
            oc = c * dm
            opts["depth_multiplier"] = dm
            ins = _float_layer(mb, rng, kind, x, (1, k[0], k[1], oc), 3, k[0] * k[1], bias)
        out_shape = (n, _conv_out_size(h, k[0], s[0], 1, padding), _conv_out_size(w, k[1], s[1], 1, padding), oc)
        opts.update(padding=padding, stride_h=s[0], stride_w=s[1], activation=activation)
    elif kind == "FULLY_CONNECTED":
        units = kw.pop("units", 10)
        depth = int(np.prod(in_shape[1:]))
        ins = _float_layer(mb, rng, kind, x, (units, depth), 0, depth, bias)
        out_shape = (in_shape[0], units)
        opts["activation"] = activation
    elif kind in ("ADD", "MUL", "CONCATENATION"):
        shape2 = kw.pop("shape2", in_shape)
        if kw.pop("const2", False):
            y2 = mb.const(rng.standard_normal(shape2).astype(np.float32), "float32", name="operand")
        else:
            # A residual block: the second operand is a 1x1 convolution of the input.
            y2 = mb.tensor(shape2, "float32", name="branch")
            mb.op("CONV_2D", _float_layer(mb, rng, "CONV_2D", x, (shape2[-1], 1, 1, c), 0, c), [y2],
                  padding="SAME", stride_h=1, stride_w=1)
        ins = [x, y2]
        if kind == "CONCATENATION":
            axis = kw.pop("axis", -1)
            out_shape = list(in_shape)
            out_shape[axis] = in_shape[axis] + shape2[axis]
            opts["axis"] = axis
        else:
            out_shape = np.broadcast_shapes(tuple(in_shape), tuple(shape2))
        opts["activation"] = activation
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        f = kw.pop("filter", (2, 2))
        s = kw.pop("stride", f)
        padding = kw.pop("padding", "VALID")
        out_shape = (n, _conv_out_size(h, f[0], s[0], 1, padding), _conv_out_size(w, f[1], s[1], 1, padding), c)
        ins = [x]
        opts.update(filter_h=f[0], filter_w=f[1], stride_h=s[0], stride_w=s[1], padding=padding,
                    activation=activation)
    elif kind == "MEAN":
        ins = [x, mb.const(np.array([1, 2], np.int32), "int32", name="axes")]
        out_shape = (n, 1, 1, c)
        opts["keep_dims"] = True
    elif kind == "PAD":
        ins = [x, mb.const(np.array([[0, 0], [1, 2], [2, 1], [0, 0]], np.int32), "int32", name="paddings")]
        out_shape = (n, h + 3, w + 3, c)
    elif kind == "RESHAPE":
        out_shape = (n, h * w * c)
        ins = [x, mb.const(np.array(out_shape, np.int32), "int32", name="shape")]
        opts["new_shape"] = list(out_shape)
    elif kind == "TRANSPOSE":
        ins = [x, mb.const(np.array([0, 3, 1, 2], np.int32), "int32", name="perm")]
        out_shape = (n, c, h, w)
    elif kind == "RESIZE_NEAREST_NEIGHBOR":
        ins = [x, mb.const(np.array([2 * h, 2 * w], np.int32), "int32", name="size")]
        out_shape = (n, 2 * h, 2 * w, c)
    elif kind in ("SOFTMAX", "LOGISTIC", "HARD_SWISH"):
        ins = [x]
        out_shape = tuple(in_shape)
        if kind == "SOFTMAX":
            opts["beta"] = kw.pop("beta", 1.0)
    else:
        ins, out_shape = [x], tuple(in_shape)  # any other op, with no options: error paths
    if kw:
        raise TypeError(f"{kind}: unknown arguments {sorted(kw)}")
    y = mb.tensor(out_shape, "float32", name="output")
    mb.op(kind, ins, [y], **opts)
    return mb.build([x], [y])
