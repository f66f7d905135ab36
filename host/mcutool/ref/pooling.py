"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 (reference_integer_ops::AveragePool / MaxPool).

Windows are clipped to the image: padded taps are skipped, and the average divides by
the number of taps actually inside, rounding half away from zero.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import McutoolError
from ..geometry import explicit_padding, out_size
from ..ir import Graph, Op
from .common import activation_range, per_tensor, trunc_div


def prepare_pool(graph: Graph, op: Op) -> dict:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if x.dtype != "int8" or y.dtype != "int8":
        raise McutoolError(f"op {op.index} ({op.kind}): {x.dtype} -> {y.dtype}; mcutool runs int8 models")
    if len(x.shape) != 4:
        raise McutoolError(f"op {op.index} ({op.kind}): needs a 4-D NHWC input, got {x.shape}")
    s_in, zp_in = per_tensor(graph, op, op.inputs[0])
    s_out, zp_out = per_tensor(graph, op, op.outputs[0])
    if (s_in, zp_in) != (s_out, zp_out):
        raise McutoolError(f"op {op.index} ({op.kind}): input and output quantization differ, which TFLite forbids")
    p = op.params
    kh, kw = p.filter
    oh = out_size(p.padding, x.shape[1], kh, p.stride[0])
    ow = out_size(p.padding, x.shape[2], kw, p.stride[1])
    if (oh, ow) != tuple(y.shape[1:3]) or oh < 1 or ow < 1:
        raise McutoolError(f"op {op.index} ({op.kind}): output is {y.shape[1]}x{y.shape[2]}, {p.padding} gives {oh}x{ow}")
    pad = explicit_padding(p.padding, x.shape[1:3], p.filter, p.stride, (1, 1), (oh, ow))
    lo, hi = activation_range(p.activation, y.quant)
    return {"pad": pad, "filter": tuple(p.filter), "stride": tuple(p.stride), "act_min": lo, "act_max": hi}


def _windows(a: np.ndarray, d: dict, out_shape, fill) -> np.ndarray:
    t, l, b, r = d["pad"]
    kh, kw = d["filter"]
    sh, sw = d["stride"]
    _, oh, ow, _ = out_shape
    ap = np.pad(a, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)
    win = sliding_window_view(ap, (kh, kw), axis=(1, 2))
    return win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]  # (n, oh, ow, c, kh, kw)


def eval_average_pool_2d(op: Op, xs: list, out_shape) -> np.ndarray:
    d = op.data
    x = xs[0].astype(np.int32)
    total = _windows(x, d, out_shape, 0).sum(axis=(4, 5), dtype=np.int64)
    count = _windows(np.ones((1,) + x.shape[1:3] + (1,), np.int32), d, (1,) + tuple(out_shape[1:3]) + (1,), 0)
    count = count.sum(axis=(4, 5), dtype=np.int64)
    if np.any(count == 0):
        raise McutoolError(f"op {op.index} ({op.kind}): a pooling window lies wholly in the padding")
    half = count // 2
    avg = np.where(total > 0, trunc_div(total + half, count), trunc_div(total - half, count))
    return np.clip(avg, d["act_min"], d["act_max"]).astype(np.int8)


def eval_max_pool_2d(op: Op, xs: list, out_shape) -> np.ndarray:
    d = op.data
    m = _windows(xs[0].astype(np.int32), d, out_shape, np.iinfo(np.int32).min).max(axis=(4, 5))
    return np.clip(m, d["act_min"], d["act_max"]).astype(np.int8)
