"""MEAN, int8, bit-exact with TFLM's reference kernel.

TFLM (micro/kernels/reduce_common.cc) has a single int8 MEAN path, whatever the axes,
keep_dims or scales: PrepareMeanOrSumHelper computes
QuantizeMultiplier(input_scale / output_scale) -> (multiplier, shift), and
EvalMeanHelper -> EvalIntegerMean -> reference_ops::QuantizedMeanOrSum<int8_t, int32_t>
(reference/reduce.h). (The 4-D axes-[1,2] keep_dims special case exists only for
float32; integer_ops/mean.h is empty in TFLM.) That function sums along the resolved
axes in int32 (wrapping), folds 1/num_elements_in_axis into the multiplier:
    shift' = min(floor(log2(n)), 32, 31 + shift)
    multiplier' = (multiplier << shift') // n ; shift -= shift'
and outputs clamp(MultiplyByQuantizedMultiplier(sum - zp_in * n, multiplier', shift) + zp_out).
Everything but the sum depends only on shapes and scales, so it is all done in prepare.
"""
from __future__ import annotations

import numpy as np

from ..quant.fixedpoint import multiply_by_quantized_multiplier, wrap_int32
from ..quant.multipliers import f32, quantize_multiplier


def resolve_axes(axes, num_dims: int) -> tuple[int, ...]:
    """reference_ops::ResolveAxis: wrap negatives, drop duplicates, keep first-seen order."""
    out: list[int] = []
    if num_dims == 0:
        return ()
    for a in np.asarray(axes, dtype=np.int64).reshape(-1).tolist():
        cur = a + num_dims if a < 0 else a
        if cur < 0 or cur >= num_dims:
            raise ValueError(f"MEAN: axis {a} out of range for a {num_dims}-D input")
        if cur not in out:
            out.append(cur)
    return tuple(out)


def prepare_mean(graph, op) -> dict:
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise ValueError("MEAN: expects two inputs (input, axes) and one output")
    x = graph.tensors[op.inputs[0]]
    axes_t = graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    if axes_t.dtype != "int32":
        raise ValueError(f"MEAN: axes tensor must be int32, got {axes_t.dtype}")
    if axes_t.data is None and axes_t.size != 0:
        raise ValueError("MEAN: axes tensor must be a constant")
    if x.dtype != "int8":
        raise ValueError(f"MEAN: only int8 is supported here, got {x.dtype}")

    axes_data = axes_t.data if axes_t.data is not None else np.zeros(0, np.int32)
    axes = resolve_axes(axes_data, len(x.shape))
    in_shape = tuple(int(s) for s in x.shape)
    n = 1
    for a in axes:
        n *= in_shape[a]
    kept = tuple(s for i, s in enumerate(in_shape) if i not in axes)
    if int(np.prod(kept, dtype=np.int64)) != y.size:
        raise ValueError(f"MEAN: output shape {y.shape} does not match input {in_shape} "
                         f"reduced over {axes}")

    multiplier, shift = quantize_multiplier(f32(x.quant.s) / f32(y.quant.s))
    if shift > 31:
        raise ValueError("MEAN: input_scale / output_scale too large (shift > 31)")
    if n > 0:
        # QuantizedMeanOrSum: fold 1/n into the multiplier (compute_sum = false).
        s = n.bit_length() - 1  # 63 - CountLeadingZeros(uint64 n)
        s = min(s, 32)
        s = min(s, 31 + shift)
        multiplier = ((multiplier << s) // n)  # int64 division of non-negatives
        multiplier = int(np.int64(multiplier).astype(np.int32))
        shift = shift - s
    return {
        "axes": axes,
        "num_elements_in_axis": int(n),
        "input_zero_point": int(x.quant.zp),
        "output_zero_point": int(y.quant.zp),
        "multiplier": int(multiplier),
        "shift": int(shift),
        "empty": any(s == 0 for s in in_shape),
    }


def eval_mean(op, xs, out_shape) -> np.ndarray:
    d = op.data
    x = np.asarray(xs[0])
    n = d["num_elements_in_axis"]
    if d["empty"] or n == 0:
        return np.zeros(out_shape, dtype=np.int8)
    axes = d["axes"]
    # int32 accumulation, wrapping (AddTensorValuesWithExpectedOverflow).
    total = x.astype(np.int64).sum(axis=axes) if axes else x.astype(np.int64)
    temp_sum = wrap_int32(total).astype(np.int64)
    shifted_sum = wrap_int32(temp_sum - np.int64(d["input_zero_point"]) * np.int64(n))
    out = multiply_by_quantized_multiplier(shifted_sum, d["multiplier"], d["shift"]).astype(np.int64)
    out = wrap_int32(out + d["output_zero_point"]).astype(np.int64)
    return np.clip(out, -128, 127).astype(np.int8).reshape(out_shape)
