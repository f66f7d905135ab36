"""Each op's parameter record in the flash image: a fixed list of little-endian int32 words.

The record is what `Op.data` holds, in a fixed order per op kind, so that the C engine
can read it as a struct of int32 and the host can rebuild `Op.data` exactly.

Field kinds:
  "i32"        one int32 word
  ("i32", n)   n int32 words, read back as a tuple
  "f32"        one float32, stored as its bit pattern
  "bool"       one word, 0 or 1
  ("arr", dt)  two words (offset into the DATA section, element count); the elements,
               of dtype dt, live in DATA, 16-byte aligned
  ("list", n)  a variable list of int32 of at most n entries: one count word, then n
               words (unused ones are 0); read back as a tuple
  ("pairs", n) up to n (before, after) pairs: one count word, then 2n words; read back
               as a list of tuples
  ("enum", names) one word, the index of the value in `names`
A layout changes only with the format version (v3: CONV_2D and DEPTHWISE_CONV_2D lost
their multiplier and shift arrays to the 4-word rq record).
"""
from __future__ import annotations

I32, F32, BOOL = "i32", "f32", "bool"

_OFFSETS = [("input_offset", I32), ("output_offset", I32), ("act_min", I32), ("act_max", I32)]
_CONV_EPILOGUE = _OFFSETS + [("multiplier", ("arr", "int32")), ("shift", ("arr", "int32"))]
_SPATIAL = [("stride", (I32, 2)), ("dilation", (I32, 2)), ("pad", (I32, 4))]

# Per output channel, 4 int32 the device kernels read instead of recomputing them
# (host/mcutool/ref/conv.py rq_words): bias + input_offset * sum(w), the multiplier (its
# top bit marking a channel the fast rescale cannot take), the rescale's rounding constant
# and shift. The multipliers and shifts are rebuilt from them (format v3: no arrays of
# their own).
_RQ = [("rq", ("arr", "int32"))]

LAYOUTS: dict[str, list] = {
    "CONV_2D": _SPATIAL + _OFFSETS + _RQ,
    "DEPTHWISE_CONV_2D": _SPATIAL + [("depth_multiplier", I32)] + _OFFSETS + _RQ,
    "FULLY_CONNECTED": _CONV_EPILOGUE + [("rounding", ("enum", ("double", "single")))],
    "ADD": [
        ("input1_offset", I32), ("input2_offset", I32), ("output_offset", I32), ("left_shift", I32),
        ("input1_multiplier", I32), ("input1_shift", I32), ("input2_multiplier", I32), ("input2_shift", I32),
        ("output_multiplier", I32), ("output_shift", I32), ("act_min", I32), ("act_max", I32),
    ],
    "MUL": [
        ("input1_offset", I32), ("input2_offset", I32), ("output_offset", I32),
        ("output_multiplier", I32), ("output_shift", I32), ("act_min", I32), ("act_max", I32),
    ],
    "AVERAGE_POOL_2D": [("pad", (I32, 4)), ("filter", (I32, 2)), ("stride", (I32, 2)), ("act_min", I32), ("act_max", I32)],
    "MAX_POOL_2D": [("pad", (I32, 4)), ("filter", (I32, 2)), ("stride", (I32, 2)), ("act_min", I32), ("act_max", I32)],
    "PAD": [("paddings", ("pairs", 4)), ("value", I32)],
    "RESHAPE": [],
    "TRANSPOSE": [("perm", ("list", 4))],
    "CONCATENATION": [("axis", I32)],
    "QUANTIZE": [
        ("mode", ("enum", ("float", "requant"))), ("scale", F32), ("zero_point", I32),
        ("input_zero_point", I32), ("multiplier", I32), ("shift", I32),
    ],
    "DEQUANTIZE": [("scale", F32), ("zero_point", I32)],
    "SOFTMAX": [
        ("input_multiplier", I32), ("input_left_shift", I32), ("diff_min", I32),
        ("out_dtype", ("enum", ("int8", "int16"))),
    ],
    "MEAN": [
        ("axes", ("list", 4)), ("num_elements_in_axis", I32), ("input_zero_point", I32),
        ("output_zero_point", I32), ("multiplier", I32), ("shift", I32), ("empty", BOOL),
    ],
    "LOGISTIC": [
        ("input_zero_point", I32), ("input_range_radius", I32), ("input_multiplier", I32), ("input_left_shift", I32),
    ],
    "HARD_SWISH": [
        ("input_zero_point", I32), ("output_zero_point", I32),
        ("output_multiplier_fixedpoint_int16", I32), ("output_multiplier_exponent", I32),
        ("reluish_multiplier_fixedpoint_int16", I32), ("reluish_multiplier_exponent", I32),
    ],
    "RESIZE_NEAREST_NEIGHBOR": [("in_y", ("arr", "int32")), ("in_x", ("arr", "int32"))],
}
