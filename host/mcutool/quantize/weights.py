"""Weights: per-channel symmetric int8; biases: int32 at input scale x weight scale.

TFLite's int8 spec: weights in [-127, 127] with zero point 0, one scale per output
channel (axis 0 for CONV_2D and FULLY_CONNECTED filters, axis 3 for DEPTHWISE_CONV_2D's
1 x H x W x C filter); bias int32, zero point 0, scale input_scale * weight_scale[c].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEIGHT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
INT32_MAX = 2**31 - 1


@dataclass
class QuantizedLayer:
    weights: np.ndarray  # int8
    weight_scales: np.ndarray  # float32, one per output channel
    axis: int
    bias: np.ndarray  # int32, one per output channel
    bias_scales: np.ndarray  # float32


def quantize_layer(kind: str, w: np.ndarray, b: np.ndarray | None, input_scale: float) -> QuantizedLayer:
    axis = WEIGHT_AXIS[kind]
    w = np.asarray(w, np.float64)
    n = w.shape[axis]
    b = np.zeros(n) if b is None else np.asarray(b, np.float64).reshape(n)
    amax = np.max(np.abs(np.moveaxis(w, axis, 0).reshape(n, -1)), axis=1)
    scales = amax / 127.0
    # A bias too large for int32 at input_scale * weight_scale would saturate: widen that
    # channel's weight scale until it fits (TFLite's converter does the same).
    scales = np.maximum(scales, np.abs(b) / (input_scale * INT32_MAX) * 1.001)
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)  # an all-zero channel
    shape = [1] * w.ndim
    shape[axis] = n
    wq = np.clip(np.round(w / scales.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    bias_scales = (np.float32(input_scale) * scales).astype(np.float32)
    bq = np.clip(np.round(b / bias_scales.astype(np.float64)), -INT32_MAX, INT32_MAX).astype(np.int32)
    return QuantizedLayer(wq, scales, axis, bq, bias_scales)


def quantize_constant(data: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """A float constant operand (of ADD, MUL, ...) at its per-tensor activation quantization."""
    return np.clip(np.round(np.asarray(data, np.float64) / scale) + zp, -128, 127).astype(np.int8)
