"""RESIZE_NEAREST_NEIGHBOR, bit-exact with TFLM's reference kernel.

micro/kernels/resize_nearest_neighbor.cc: Prepare requires a 4-D input and a constant
1-D int32 size tensor of 2 elements; Eval calls reference_ops::ResizeNearestNeighbor
(reference/resize_nearest_neighbor.h), a pure gather: no requantization, the output
takes the input's raw values whatever the quantization parameters say. The source
row/column of each output row/column (GetNearestNeighbor, float32 arithmetic) is
computed once in prepare and kept in op.data.
"""
from __future__ import annotations

import numpy as np


def nearest_neighbor_indices(input_size: int, output_size: int, align_corners: bool,
                             half_pixel_centers: bool) -> np.ndarray:
    """GetNearestNeighbor for every output index, in float32 as the C++ does."""
    f = np.float32
    if align_corners and output_size > 1:
        scale = f(input_size - 1) / f(output_size - 1)
    else:
        scale = f(input_size) / f(output_size)
    offset = f(0.5) if half_pixel_centers else f(0.0)
    v = (np.arange(output_size).astype(np.float32) + offset) * f(scale)
    if align_corners:
        # TfLiteRound on float: std::round, halves away from zero (v >= 0 here).
        t = np.trunc(v)
        r = t + (v - t >= f(0.5))
    else:
        r = np.floor(v)
    idx = np.minimum(r.astype(np.int64), input_size - 1)
    if half_pixel_centers:
        idx = np.maximum(idx, 0)
    return idx.astype(np.int32)


def prepare_resize_nearest_neighbor(graph, op) -> dict:
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise ValueError("RESIZE_NEAREST_NEIGHBOR: expects two inputs (input, size) and one output")
    x = graph.tensors[op.inputs[0]]
    size_t = graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    if len(x.shape) != 4:
        raise ValueError(f"RESIZE_NEAREST_NEIGHBOR: input must be 4-D, got {x.shape}")
    if len(size_t.shape) != 1 or size_t.dtype != "int32" or size_t.shape[0] != 2:
        raise ValueError("RESIZE_NEAREST_NEIGHBOR: size must be a 1-D int32 tensor of 2 elements")
    if size_t.data is None:
        raise ValueError("RESIZE_NEAREST_NEIGHBOR: non-constant size tensor is not supported")
    if x.dtype not in ("int8", "int16", "float32"):
        raise ValueError(f"RESIZE_NEAREST_NEIGHBOR: type {x.dtype} not supported")
    out_h, out_w = (int(v) for v in np.asarray(size_t.data).reshape(-1))
    b, in_h, in_w, c = (int(s) for s in x.shape)
    if tuple(y.shape) != (b, out_h, out_w, c):
        raise ValueError(f"RESIZE_NEAREST_NEIGHBOR: output shape {y.shape} != {(b, out_h, out_w, c)}")
    p = op.params
    return {
        "in_y": nearest_neighbor_indices(in_h, out_h, p.align_corners, p.half_pixel_centers),
        "in_x": nearest_neighbor_indices(in_w, out_w, p.align_corners, p.half_pixel_centers),
    }


def eval_resize_nearest_neighbor(op, xs, out_shape) -> np.ndarray:
    x = np.asarray(xs[0])
    out = x[:, op.data["in_y"]][:, :, op.data["in_x"]]
    return out.reshape(out_shape)
