"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, int8 with per-channel or per-tensor weights.

Arithmetic of reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel /
FullyConnected: acc = sum(w * (x - in_zp)) + bias in int32, then the per-channel
rescale. Dot products run as float64 matmuls: every partial sum is an integer far below
2**53, so they are exact, and BLAS makes the whole model fast.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import McutoolError
from ..geometry import explicit_padding, out_size
from ..ir import Graph, Op
from ..quant.multipliers import quantize_multiplier
from .common import activation_range, per_tensor, requantize_acc


def _channel_multipliers(graph: Graph, op: Op, n_channels: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """PopulateConvolutionQuantizationParams: float scales widened to double, then divided."""
    s_in, _ = per_tensor(graph, op, op.inputs[0])
    s_out, _ = per_tensor(graph, op, op.outputs[0])
    w = graph.t(op.inputs[1])
    if w.quant is None:
        raise McutoolError(f"op {op.index} ({op.kind}): weights {w.name} are not quantized")
    scales = w.quant.scale
    if scales.size not in (1, n_channels):
        raise McutoolError(
            f"op {op.index} ({op.kind}): weights have {scales.size} scales for {n_channels} output channels"
        )
    if scales.size > 1 and w.quant.axis != axis:
        raise McutoolError(f"op {op.index} ({op.kind}): per-channel weights quantized on axis {w.quant.axis}, expected {axis}")
    if np.any(w.quant.zero_point != 0):
        raise McutoolError(f"op {op.index} ({op.kind}): int8 weights must have zero point 0")
    mult = np.zeros(n_channels, np.int32)
    shift = np.zeros(n_channels, np.int32)
    for c in range(n_channels):
        fs = float(scales[c] if scales.size > 1 else scales[0])
        mult[c], shift[c] = quantize_multiplier(float(s_in) * fs / float(s_out))
    return mult, shift


RQ_WORDS = 4  # per output channel: kfold, mw, kq, sh
RQ_SLOW = 1 << 31  # mw's top bit: the channel always takes the exact generic rescale


def rq_table(graph: Graph, op: Op, wsum, ep: dict) -> np.ndarray:
    b = graph.t(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    return rq_words(b, wsum, ep["input_offset"], ep["multiplier"], ep["shift"])


def rq_words(bias, wsum, input_offset: int, multiplier, shift) -> np.ndarray:
    """The device's per-output-channel record (RQ_WORDS int32 each, flat), all a conv's
    kernels need past the weights and the bias:

    kfold  bias + input_offset * sum(w), wrapped to int32: the accumulator of a pixel whose
           taps are all inside the image is kfold + sum(w * x)
    mw     the multiplier m (0 <= m < 2**31), with bit 31 set on a slow channel
    kq, sh MultiplyByQuantizedMultiplier(acc, m, shift) for shift = -r <= 0, r <= 16 and
           u = |acc| < 2**16 is, with s = -1 if acc < 0 else 0, mh = m >> 16 and
           ml = m & 0xFFFF (exact: the two roundings fold into one floor, see
           device/engine/src/kernels/kcommon.h):
           sign(acc) * ((u*mh + kq + s + ((u*ml + (s & 0xFFFF)) >> 16)) >> sh),
           kq = 2**14 + (2**(14 + r) if r else 0), sh = 15 + r.
    A slow channel (r < 0 or r > 16) has kq = 0; every channel's shift is 15 - sh, so the
    generic path (|acc| >= 2**16, or a slow channel) needs nothing else.
    """
    b = np.asarray(bias, np.int64) if bias is not None else 0
    kfold = (b + int(input_offset) * np.asarray(wsum, np.int64)) & 0xFFFFFFFF
    kfold = np.where(kfold >= 2**31, kfold - 2**32, kfold)
    m = np.asarray(multiplier, np.int64)
    s = np.asarray(shift, np.int64)
    if np.any((m < 0) | (m >= 2**31)) or np.any((s < -31) | (s > 30)):
        raise McutoolError("a conv's multiplier is outside [0, 2**31) or its shift outside [-31, 30]")
    r = -s
    fast = (r >= 0) & (r <= 16)
    rr = np.clip(r, 0, 16)
    kq = np.where(fast, (1 << 14) + np.where(rr >= 1, np.left_shift(1, 14 + rr), 0), 0)
    mw = np.where(fast, m, m - RQ_SLOW)  # bit 31 set, as int32
    t = np.stack([kfold, mw, kq, 15 + r], axis=1)
    return t.reshape(-1).astype(np.int32)


def rq_multipliers(rq) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, shift) per channel back from rq_words' record."""
    q = np.asarray(rq, np.int64).reshape(-1, RQ_WORDS)
    return (q[:, 1] & (RQ_SLOW - 1)).astype(np.int32), (15 - q[:, 3]).astype(np.int32)


def _check_int8(graph: Graph, op: Op) -> None:
    x, w = graph.t(op.inputs[0]), graph.t(op.inputs[1])
    y = graph.t(op.outputs[0])
    if (x.dtype, w.dtype, y.dtype) != ("int8", "int8", "int8"):
        raise McutoolError(
            f"op {op.index} ({op.kind}): input/weights/output are {x.dtype}/{w.dtype}/{y.dtype}; "
            "mcutool runs int8 models (quantize the float model first)"
        )
    if not w.is_const:
        raise McutoolError(f"op {op.index} ({op.kind}): weights must be constant")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = graph.t(op.inputs[2])
        if b.dtype != "int32" or not b.is_const:
            raise McutoolError(f"op {op.index} ({op.kind}): bias must be a constant int32 tensor, got {b.dtype}")


def _spatial(graph: Graph, op: Op, kh: int, kw: int) -> dict:
    p = op.params
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise McutoolError(f"op {op.index} ({op.kind}): needs 4-D NHWC input and output, got {x.shape} -> {y.shape}")
    oh = out_size(p.padding, x.shape[1], kh, p.stride[0], p.dilation[0])
    ow = out_size(p.padding, x.shape[2], kw, p.stride[1], p.dilation[1])
    if (oh, ow) != tuple(y.shape[1:3]) or oh < 1 or ow < 1:
        raise McutoolError(
            f"op {op.index} ({op.kind}): output is {y.shape[1]}x{y.shape[2]} but {p.padding} padding gives {oh}x{ow}"
        )
    pad = explicit_padding(p.padding, x.shape[1:3], (kh, kw), p.stride, p.dilation, (oh, ow))
    return {"pad": pad, "stride": tuple(p.stride), "dilation": tuple(p.dilation)}


def _epilogue_data(graph: Graph, op: Op, mult, shift) -> dict:
    _, zp_in = per_tensor(graph, op, op.inputs[0])
    _, zp_out = per_tensor(graph, op, op.outputs[0])
    lo, hi = activation_range(op.params.activation, graph.t(op.outputs[0]).quant)
    return {
        "input_offset": -zp_in,
        "output_offset": zp_out,
        "multiplier": mult,
        "shift": shift,
        "act_min": lo,
        "act_max": hi,
    }


def prepare_conv_2d(graph: Graph, op: Op) -> dict:
    _check_int8(graph, op)
    x, w = graph.t(op.inputs[0]), graph.t(op.inputs[1])
    oc, kh, kw, ic = w.shape
    if ic != x.shape[3]:
        raise McutoolError(f"op {op.index} (CONV_2D): grouped convolution ({x.shape[3]} input channels, filter has {ic}) is not supported")
    mult, shift = _channel_multipliers(graph, op, oc, axis=0)
    ep = _epilogue_data(graph, op, mult, shift)
    wsum = w.data.reshape(oc, -1).astype(np.int64).sum(axis=1)
    return {**_spatial(graph, op, kh, kw), **ep, "rq": rq_table(graph, op, wsum, ep)}


def prepare_depthwise_conv_2d(graph: Graph, op: Op) -> dict:
    _check_int8(graph, op)
    x, w, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    _, kh, kw, oc = w.shape
    m = op.params.depth_multiplier
    if oc != y.shape[3] or oc != x.shape[3] * m:
        raise McutoolError(
            f"op {op.index} (DEPTHWISE_CONV_2D): {x.shape[3]} input channels x multiplier {m} != {oc} output channels"
        )
    mult, shift = _channel_multipliers(graph, op, oc, axis=3)
    ep = _epilogue_data(graph, op, mult, shift)
    wsum = w.data.reshape(-1, oc).astype(np.int64).sum(axis=0)
    return {**_spatial(graph, op, kh, kw), "depth_multiplier": m, **ep, "rq": rq_table(graph, op, wsum, ep)}


def prepare_fully_connected(graph: Graph, op: Op) -> dict:
    _check_int8(graph, op)
    x, w = graph.t(op.inputs[0]), graph.t(op.inputs[1])
    units, depth = w.shape
    if x.size % depth:
        raise McutoolError(f"op {op.index} (FULLY_CONNECTED): input of {x.size} values is not a multiple of {depth}")
    mult, shift = _channel_multipliers(graph, op, units, axis=0)
    # TFLM rounds twice (gemmlowp); quant.prepare switches this to "single" to match LiteRT.
    return {**_epilogue_data(graph, op, mult, shift), "rounding": "double"}


def _padded(x: np.ndarray, d: dict) -> np.ndarray:
    """x - zp, with the border zeros that make padded taps contribute nothing (as skipping does)."""
    t, l, b, r = d["pad"]
    xs = x.astype(np.int32) + d["input_offset"]
    return np.pad(xs, ((0, 0), (t, b), (l, r), (0, 0)))


def _bias(xs: list) -> np.ndarray | int:
    return xs[2].astype(np.int64) if len(xs) > 2 and xs[2] is not None else 0


def eval_conv_2d(op: Op, xs: list, out_shape) -> np.ndarray:
    d = op.data
    x, w = xs[0], xs[1]
    n, oh, ow, oc = out_shape
    _, kh, kw, ic = w.shape
    (sh, sw), (dh, dw) = d["stride"], d["dilation"]
    xp = _padded(x, d)
    if kh == kw == 1:
        cols = xp[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :].reshape(-1, ic)
    else:
        win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
        win = win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :, ::dh, ::dw]
        cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * ic)
    acc = np.rint(cols.astype(np.float64) @ w.reshape(oc, -1).T.astype(np.float64)).astype(np.int64)
    acc = acc + _bias(xs)
    return requantize_acc(acc, d).reshape(out_shape)


def eval_depthwise_conv_2d(op: Op, xs: list, out_shape) -> np.ndarray:
    d = op.data
    x, w = xs[0], xs[1]
    n, oh, ow, oc = out_shape
    _, kh, kw, _ = w.shape
    (sh, sw), (dh, dw) = d["stride"], d["dilation"]
    m = d["depth_multiplier"]
    xp = _padded(x, d)
    if m > 1:
        xp = np.repeat(xp, m, axis=3)  # output channel ic*m + j reads input channel ic
    acc = np.zeros((n, oh, ow, oc), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            tap = xp[:, y0 : y0 + (oh - 1) * sh + 1 : sh, x0 : x0 + (ow - 1) * sw + 1 : sw, :]
            acc += tap * w[0, ky, kx, :].astype(np.int64)
    acc = acc + _bias(xs)
    return requantize_acc(acc, d)


def eval_fully_connected(op: Op, xs: list, out_shape) -> np.ndarray:
    d = op.data
    x, w = xs[0], xs[1]
    units, depth = w.shape
    xs0 = x.reshape(-1, depth).astype(np.float64) + d["input_offset"]
    acc = np.rint(xs0 @ w.T.astype(np.float64)).astype(np.int64) + _bias(xs)
    return requantize_acc(acc, d).reshape(out_shape)
