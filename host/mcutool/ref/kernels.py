"""Which prepare/eval pair serves each op kind in the numpy reference."""
from __future__ import annotations

from importlib import import_module

# kind -> (module, prepare function, eval function)
_TABLE = {
    "CONV_2D": ("conv", "prepare_conv_2d", "eval_conv_2d"),
    "DEPTHWISE_CONV_2D": ("conv", "prepare_depthwise_conv_2d", "eval_depthwise_conv_2d"),
    "FULLY_CONNECTED": ("conv", "prepare_fully_connected", "eval_fully_connected"),
    "ADD": ("elementwise", "prepare_add", "eval_add"),
    "MUL": ("elementwise", "prepare_mul", "eval_mul"),
    "AVERAGE_POOL_2D": ("pooling", "prepare_pool", "eval_average_pool_2d"),
    "MAX_POOL_2D": ("pooling", "prepare_pool", "eval_max_pool_2d"),
    "MEAN": ("reduce", "prepare_mean", "eval_mean"),
    "PAD": ("shape", "prepare_pad", "eval_pad"),
    "RESHAPE": ("shape", "prepare_reshape", "eval_reshape"),
    "TRANSPOSE": ("shape", "prepare_transpose", "eval_transpose"),
    "CONCATENATION": ("shape", "prepare_concatenation", "eval_concatenation"),
    "SOFTMAX": ("softmax", "prepare_softmax", "eval_softmax"),
    "QUANTIZE": ("quantize", "prepare_quantize", "eval_quantize"),
    "DEQUANTIZE": ("quantize", "prepare_dequantize", "eval_dequantize"),
    "LOGISTIC": ("activations", "prepare_logistic", "eval_logistic"),
    "HARD_SWISH": ("activations", "prepare_hard_swish", "eval_hard_swish"),
    "RESIZE_NEAREST_NEIGHBOR": ("resize", "prepare_resize_nearest_neighbor", "eval_resize_nearest_neighbor"),
}


def kernel(kind: str):
    """(prepare, eval) for an op kind."""
    mod, prep, ev = _TABLE[kind]
    m = import_module(f"mcutool.ref.{mod}")
    return getattr(m, prep), getattr(m, ev)


def operands(graph, op, value) -> list:
    """An op's input arrays in order: None for an absent optional input, the constant's data,
    or value(tensor) for an activation (from a dict, an arena, ...)."""
    return [None if t < 0 else graph.t(t).data if graph.t(t).is_const else value(t) for t in op.inputs]


def evaluate(graph, op, value):
    """Run one op on whole tensors; returns its output array."""
    return kernel(op.kind)[1](op, operands(graph, op, value), graph.t(op.outputs[0]).shape)
