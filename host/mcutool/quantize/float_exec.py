"""A float32 numpy executor for the float models the quantizer reads, batched.

Calibration needs every activation of the float model, not only its outputs, so the
quantizer runs the model itself rather than through an interpreter. Every value carries
one extra leading axis, the calibration batch, in front of the tensor's own shape: the
model's batch dimension (usually 1) is left alone and no op needs to know about it.
"""
from __future__ import annotations

import numpy as np

from ..geometry import explicit_padding
from ..ir import Graph, Op

_CLAMP = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


def fused(y: np.ndarray, activation: str) -> np.ndarray:
    lo, hi = _CLAMP[activation]
    return y if lo is None and hi is None else np.clip(y, lo, hi)


def _images(x: np.ndarray) -> np.ndarray:
    """(B, n, H, W, C) -> (B*n, H, W, C)."""
    return x.reshape((-1,) + x.shape[-3:])


def _taps(x: np.ndarray, kh: int, kw: int, p, y_hw):
    """Zero-padded input and, for each filter tap, the strided slice it reads."""
    t, l, b, r = explicit_padding(p.padding, x.shape[1:3], (kh, kw), p.stride, getattr(p, "dilation", (1, 1)), y_hw)
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    sh, sw = p.stride
    dh, dw = getattr(p, "dilation", (1, 1))
    oh, ow = y_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw, :]


def _bias(graph: Graph, op: Op):
    return graph.t(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None


def conv_2d(graph, op, xs, out_shape):
    x, w = _images(xs[0]), graph.t(op.inputs[1]).data.astype(np.float32)
    y = np.zeros((x.shape[0],) + tuple(out_shape[1:]), np.float32)
    for i, j, s in _taps(x, w.shape[1], w.shape[2], op.params, out_shape[1:3]):
        y += s @ w[:, i, j, :].T
    b = _bias(graph, op)
    return fused(y + (0 if b is None else b), op.params.activation)


def depthwise_conv_2d(graph, op, xs, out_shape):
    x, w = _images(xs[0]), graph.t(op.inputs[1]).data.astype(np.float32)
    m = op.params.depth_multiplier or w.shape[3] // x.shape[3]
    x = np.repeat(x, m, axis=3) if m > 1 else x
    y = np.zeros((x.shape[0],) + tuple(out_shape[1:]), np.float32)
    for i, j, s in _taps(x, w.shape[1], w.shape[2], op.params, out_shape[1:3]):
        y += s * w[0, i, j, :]
    b = _bias(graph, op)
    return fused(y + (0 if b is None else b), op.params.activation)


def fully_connected(graph, op, xs, out_shape):
    w = graph.t(op.inputs[1]).data.astype(np.float32)
    y = xs[0].reshape(xs[0].shape[0], -1, w.shape[1]) @ w.T
    b = _bias(graph, op)
    return fused(y + (0 if b is None else b), op.params.activation)


def _binary(graph, op, xs, fn):
    # An activation operand has the batch axis, a constant does not: align ranks under it.
    ops = []
    rank = max(len(graph.t(i).shape) for i in op.inputs[:2])
    for i, v in zip(op.inputs[:2], xs):
        t = graph.t(i)
        lead = () if t.is_const else (v.shape[0],)
        ops.append(v.reshape(lead + (1,) * (rank - len(t.shape)) + tuple(t.shape)))
    return fused(fn(ops[0], ops[1]), op.params.activation)


def add(graph, op, xs, out_shape):
    return _binary(graph, op, xs, np.add)


def mul(graph, op, xs, out_shape):
    return _binary(graph, op, xs, np.multiply)


def _pool(graph, op, xs, out_shape, average: bool):
    x, p = _images(xs[0]), op.params
    kh, kw = p.filter
    if average:
        total = np.zeros((x.shape[0],) + tuple(out_shape[1:]), np.float32)
        ones = np.ones((1,) + x.shape[1:3] + (1,), np.float32)
        count = np.zeros((1,) + tuple(out_shape[1:3]) + (1,), np.float32)
        for (_, _, s), (_, _, c) in zip(_taps(x, kh, kw, p, out_shape[1:3]), _taps(ones, kh, kw, p, out_shape[1:3])):
            total += s
            count += c
        y = total / count  # TFLite averages over the taps inside the image only
    else:
        y = None
        t, l, b, r = explicit_padding(p.padding, x.shape[1:3], (kh, kw), p.stride, (1, 1), out_shape[1:3])
        xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=-np.inf)
        sh, sw = p.stride
        oh, ow = out_shape[1:3]
        for i in range(kh):
            for j in range(kw):
                s = xp[:, i: i + (oh - 1) * sh + 1: sh, j: j + (ow - 1) * sw + 1: sw, :]
                y = s if y is None else np.maximum(y, s)
    return fused(y, p.activation)


def average_pool_2d(graph, op, xs, out_shape):
    return _pool(graph, op, xs, out_shape, True)


def max_pool_2d(graph, op, xs, out_shape):
    return _pool(graph, op, xs, out_shape, False)


def mean(graph, op, xs, out_shape):
    rank = len(graph.t(op.inputs[0]).shape)
    axes = tuple(sorted({int(a) % rank + 1 for a in np.asarray(graph.t(op.inputs[1]).data).reshape(-1)}))
    return np.mean(xs[0], axis=axes, keepdims=op.params.keep_dims)


def pad(graph, op, xs, out_shape):
    pads = [(0, 0)] + [tuple(int(v) for v in p) for p in graph.t(op.inputs[1]).data]
    return np.pad(xs[0], pads)


def reshape(graph, op, xs, out_shape):
    return xs[0]  # the executor reshapes every result to its tensor's shape


def transpose(graph, op, xs, out_shape):
    perm = [int(v) + 1 for v in graph.t(op.inputs[1]).data]
    return xs[0].transpose([0] + perm)


def concatenation(graph, op, xs, out_shape):
    return fused(np.concatenate(xs, axis=op.params.axis % len(out_shape) + 1), op.params.activation)


def softmax(graph, op, xs, out_shape):
    z = xs[0] * np.float32(op.params.beta)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def logistic(graph, op, xs, out_shape):
    return 1.0 / (1.0 + np.exp(-xs[0]))


def hard_swish(graph, op, xs, out_shape):
    return xs[0] * np.clip(xs[0] + 3.0, 0.0, 6.0) / 6.0


def resize_nearest_neighbor(graph, op, xs, out_shape):
    from ..ref.resize import nearest_neighbor_indices

    x, p = _images(xs[0]), op.params
    iy = nearest_neighbor_indices(x.shape[1], out_shape[1], p.align_corners, p.half_pixel_centers)
    ix = nearest_neighbor_indices(x.shape[2], out_shape[2], p.align_corners, p.half_pixel_centers)
    return x[:, iy][:, :, ix]


KERNELS = {
    "CONV_2D": conv_2d,
    "DEPTHWISE_CONV_2D": depthwise_conv_2d,
    "FULLY_CONNECTED": fully_connected,
    "ADD": add,
    "MUL": mul,
    "AVERAGE_POOL_2D": average_pool_2d,
    "MAX_POOL_2D": max_pool_2d,
    "MEAN": mean,
    "PAD": pad,
    "RESHAPE": reshape,
    "TRANSPOSE": transpose,
    "CONCATENATION": concatenation,
    "SOFTMAX": softmax,
    "LOGISTIC": logistic,
    "HARD_SWISH": hard_swish,
    "RESIZE_NEAREST_NEIGHBOR": resize_nearest_neighbor,
}


def run_float(graph: Graph, batch: list[np.ndarray], visit=None) -> list[np.ndarray]:
    """Outputs for a batch (one (B, *shape) array per graph input); `visit(tensor, value)`
    sees every activation, graph inputs included."""
    values = {}
    for i, x in zip(graph.inputs, batch):
        values[i] = np.asarray(x, np.float32).reshape((-1,) + graph.t(i).shape)
        if visit:
            visit(i, values[i])
    for op in graph.ops:
        xs = [None if i < 0 else graph.t(i).data if graph.t(i).is_const else values[i] for i in op.inputs]
        out = graph.t(op.outputs[0])
        b = next(v.shape[0] for i, v in zip(op.inputs, xs) if i >= 0 and not graph.t(i).is_const)
        y = KERNELS[op.kind](graph, op, xs, out.shape)
        values[op.outputs[0]] = np.asarray(y, np.float32).reshape((b,) + out.shape)
        if visit:
            visit(op.outputs[0], values[op.outputs[0]])
    return [values[i] for i in graph.outputs]
