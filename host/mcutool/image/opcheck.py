"""What an op the device runs must satisfy for its kernel to stay inside its tensors.

docs/flash-image.md §6, checks 106-127: the semantic rules the C loader enforces at load
(device/engine/src/mcu_load.c: check_op, check_op_params, conv_ok, check_whole),
written again over the decoded graph so that both readers accept exactly the same images.
Each rule mirrors its C twin line by line; change them together.

`check_device_op(graph, op, whole, where)` runs for every op whose first step is a device
step (RUN or WINDOW, or fused into a WINDOW); `whole` when that step is a RUN.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import McutoolError
from ..ir import Graph, Op
from ..ref.conv import RQ_WORDS, rq_multipliers, rq_words

CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
POOLS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")
_MIN_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "ADD": 2, "MUL": 2}
_OPTIONAL_BIAS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")

# the check number of each kind's parameter rules and of its whole-op shape rules
PARAMS_CHECK = {"CONV_2D": 107, "DEPTHWISE_CONV_2D": 107, "FULLY_CONNECTED": 108, "ADD": 109, "MUL": 110,
                "AVERAGE_POOL_2D": 111, "MAX_POOL_2D": 111, "QUANTIZE": 112, "MEAN": 113, "TRANSPOSE": 113,
                "PAD": 114, "RESIZE_NEAREST_NEIGHBOR": 115}
SHAPE_CHECK = {"CONV_2D": 117, "DEPTHWISE_CONV_2D": 117, "AVERAGE_POOL_2D": 117, "MAX_POOL_2D": 117,
               "LOGISTIC": 118, "HARD_SWISH": 118, "QUANTIZE": 118, "ADD": 119, "MUL": 119, "FULLY_CONNECTED": 120,
               "SOFTMAX": 121, "RESHAPE": 122, "MEAN": 123, "TRANSPOSE": 124, "PAD": 125, "CONCATENATION": 126,
               "RESIZE_NEAREST_NEIGHBOR": 127}
UNSUPPORTED = 116
# check 129: the other parameter words a kernel shifts, multiplies or offsets by
_SHIFTS = {
    "SOFTMAX": [("input_left_shift", 0, 31)],
    "LOGISTIC": [("input_zero_point", -128, 127), ("input_range_radius", 0, 2**31 - 1), ("input_left_shift", -31, 31)],
    "HARD_SWISH": [("input_zero_point", -128, 127), ("output_zero_point", -128, 127),
                   ("output_multiplier_fixedpoint_int16", -32768, 32767), ("output_multiplier_exponent", -31, 0),
                   ("reluish_multiplier_fixedpoint_int16", -32768, 32767), ("reluish_multiplier_exponent", -31, 31)],
}
PARAMS_CHECK.update({k: 129 for k in _SHIFTS})
# the inputs a kernel reads as data (the others are a filter, a bias, or a shape the host used)
_DATA_INPUTS = {"ADD": 2, "MUL": 2, "CONCATENATION": 255}


def _dims(t) -> list[int]:
    """The tensor entry's four dims (0 past the rank, check 100), as the C loader reads them."""
    return list(t.shape) + [0] * (4 - len(t.shape))


def _in(x, lo, hi) -> bool:
    return lo <= int(x) <= hi


def _fail(where: str, check: int, why: str):
    raise McutoolError(f"{where}: {why}", check=check)


def _conv_params(g: Graph, op: Op) -> str | None:
    """check 107, as check_op (word ranges, shifts), check_op_params and conv_ok make it: None,
    or the first rule that fails."""
    d, dw = op.data, op.kind == "DEPTHWISE_CONV_2D"
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4 or x.dtype != "int8" or y.dtype != "int8":
        return "input, filter and output must be 4-D, the input and output int8"
    if not (w.is_const and w.dtype == "int8"):
        return f"filter tensor {w.index} must be a constant int8 tensor"
    xd, wd, yd = _dims(x), _dims(w), _dims(y)
    oc, dm = yd[3], d.get("depth_multiplier", 1)
    if dw and (wd[0] != 1 or wd[3] != oc or not 1 <= dm <= 32767 or xd[3] * dm != oc):
        return f"filter {w.shape} and depth multiplier {dm} do not take {xd[3]} input channels to {oc}"
    if not dw and (wd[0] != oc or wd[3] != xd[3]):
        return f"filter {w.shape} does not take {xd[3]} input channels to {oc}"
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = g.t(op.inputs[2])
        if not (b.is_const and b.dtype == "int32") or len(b.shape) != 1 or b.shape[0] != oc:
            return f"bias tensor {b.index} must be a constant int32 of shape ({oc},)"
    rq = d["rq"]
    if len(rq) != RQ_WORDS * oc:
        return f"rq holds {len(rq)} words, {oc} output channels need {RQ_WORDS * oc}"
    (sh, sw), (dh, dwl), pad = d["stride"], d["dilation"], d["pad"]
    kh, kw = wd[1], wd[2]
    if not (all(_in(v, 1, 64) for v in (sh, sw, dh, dwl)) and all(_in(v, 0, 256) for v in pad) and kh >= 1 and kw >= 1):
        return f"stride {d['stride']}, dilation {d['dilation']} (1 to 64) or pad {tuple(pad)} (0 to 256) out of range"
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dwl + 1
    ph, pw = xd[1] + pad[0] + pad[2], xd[2] + pad[1] + pad[3]
    if ph < eh or pw < ew or (ph - eh) // sh + 1 != yd[1] or (pw - ew) // sw + 1 != yd[2]:
        return f"the geometry makes no {yd[1]}x{yd[2]} output of the {xd[1]}x{xd[2]} input"
    if not (_in(d["input_offset"], -255, 255) and _in(d["output_offset"], -128, 127) and d["act_min"] >= -128
            and d["act_max"] <= 127 and d["act_min"] <= d["act_max"]):
        return "input_offset, output_offset or the activation range out of range"
    # each channel's record must be the one rq_words writes for its multiplier and shift
    # (shift 15 - sh in [-31, 30]): that fixes the slow mark and kq (C: rq_ok)
    q = np.asarray(rq, np.int64).reshape(-1, RQ_WORDS)
    mult, shift = rq_multipliers(rq)
    bad = (shift < -31) | (shift > 30)
    bad |= (rq_words(q[:, 0], 0, 0, mult, np.clip(shift, -31, 30)).reshape(-1, RQ_WORDS) != q).any(axis=1)
    if bad.any():
        c = int(np.argmax(bad))
        return f"output channel {c}: rq words {q[c, 1:].tolist()} invalid (shift -31 to 30, the slow mark and kq as rq_words makes them)"
    return None


_OFFSETS_WHY = "an input offset (-255 to 255), the output offset or an activation bound (-128 to 127) out of range"


def _offsets_ok(d: dict, inputs: tuple, outputs: tuple) -> bool:
    """What FULLY_CONNECTED, ADD and MUL add and subtract (WORD_RANGES in C): out of range,
    int32 arithmetic on them overflows."""
    return all(_in(d[f], -255, 255) for f in inputs) and all(_in(d[f], -128, 127) for f in outputs)


def _params(g: Graph, op: Op) -> str | None:
    """check_op_params: the parameter rules of the op's kind (checks 107-115)."""
    d, kind = op.data, op.kind
    if kind in CONVS:
        return _conv_params(g, op)
    if kind == "FULLY_CONNECTED":
        tw = op.inputs[1] if len(op.inputs) > 1 else -1
        if tw < 0 or not (g.t(tw).is_const and g.t(tw).dtype == "int8"):
            return "the weights must be a constant int8 tensor"
        w = g.t(tw)
        units = _dims(w)[0]
        if len(w.shape) != 2 or len(d["multiplier"]) != units or len(d["shift"]) != units:
            return f"weights {w.shape} must be 2-D, with one multiplier and shift per unit"
        if not all(-31 <= int(v) <= 30 for v in d["shift"]):
            return "a shift out of range (-31 to 30)"
        if not _offsets_ok(d, ("input_offset",), ("output_offset", "act_min", "act_max")):
            return _OFFSETS_WHY
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = g.t(op.inputs[2])
            if not (b.is_const and b.dtype == "int32") or len(b.shape) != 1 or b.shape[0] != units:
                return f"bias tensor {b.index} must be a constant int32 of shape ({units},)"
        return None
    if kind in ("ADD", "MUL") and not _offsets_ok(d, ("input1_offset", "input2_offset"),
                                                  ("output_offset", "act_min", "act_max")):
        return _OFFSETS_WHY
    if kind == "ADD":
        if not all(_in(d[f], -31, 0) for f in ("input1_shift", "input2_shift", "output_shift")):
            return "a shift out of range (-31 to 0)"
        return None if _in(d["left_shift"], 0, 24) else f"left_shift {d['left_shift']} out of range (0 to 24)"
    if kind == "MUL":
        return None if _in(d["output_shift"], -31, 30) else f"output_shift {d['output_shift']} out of range (-31 to 30)"
    if kind in POOLS:
        if all(_in(v, 0, 256) for v in d["pad"]) and all(_in(v, 1, 256) for v in tuple(d["filter"]) + tuple(d["stride"])):
            return None
        return f"pad {tuple(d['pad'])} (0 to 256), filter {tuple(d['filter'])} or stride {tuple(d['stride'])} (1 to 256) out of range"
    if kind == "QUANTIZE":
        if not (_in(d["zero_point"], -255, 255) and _in(d["input_zero_point"], -255, 255)):
            return "a zero point out of range (-255 to 255)"
        return None if _in(d["shift"], -31, 30) else f"shift {d['shift']} out of range (-31 to 30)"
    if kind in ("MEAN", "TRANSPOSE"):
        axes = d["axes"] if kind == "MEAN" else d["perm"]
        if not all(_in(a, 0, 3) for a in axes):
            return f"{'axes' if kind == 'MEAN' else 'perm'} {tuple(axes)} out of range (0 to 3)"
        if kind == "MEAN" and not _in(d["shift"], -31, 30):
            return f"shift {d['shift']} out of range (-31 to 30)"
        return None
    if kind == "PAD":
        if all(_in(v, 0, 4096) for p in d["paddings"] for v in p):
            return None
        return f"paddings {d['paddings']} out of range (0 to 4096)"
    if kind in _SHIFTS:  # the kernels shift by these: out of range is undefined behaviour in C
        for f, lo, hi in _SHIFTS[kind]:
            if not _in(d[f], lo, hi):
                return f"{f} {d[f]} out of range ({lo} to {hi})"
        return None
    if kind == "RESIZE_NEAREST_NEIGHBOR":
        xd, y = _dims(g.t(op.inputs[0])), g.t(op.outputs[0])
        iy, ix = d["in_y"], d["in_x"]
        if len(y.shape) != 4 or len(iy) != y.shape[1] or len(ix) != y.shape[2]:
            return f"in_y/in_x hold {len(iy)}/{len(ix)} indices, the output {y.shape} needs its height/width"
        if not (all(0 <= int(v) < xd[1] for v in iy) and all(0 <= int(v) < xd[2] for v in ix)):
            return f"an index of in_y/in_x lies outside the {xd[1]}x{xd[2]} input"
        return None
    return None


def _whole(g: Graph, op: Op) -> tuple[int, str] | None:
    """check_whole: what a kernel running the op whole relies on (checks 116-127)."""
    kind, d = op.kind, op.data
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    xd, yd = _dims(x), _dims(y)
    data = _DATA_INPUTS.get(kind, 1)
    for j, t in enumerate(op.inputs):  # a constant a kernel reads as data is int8 too
        if t >= 0 and (not g.t(t).is_const or j < data) and g.t(t).dtype != "int8":
            return UNSUPPORTED, f"input tensor {t} is {g.t(t).dtype}; the engine runs int8 ops"
    if y.dtype != "int8" and not (kind == "SOFTMAX" and y.dtype == "int16"):
        return UNSUPPORTED, f"output tensor {y.index} is {y.dtype}; the engine runs int8 ops"
    n = math.prod
    row = SHAPE_CHECK.get(kind)
    if kind in CONVS + POOLS:
        ok = len(x.shape) == 4 and len(y.shape) == 4 and (kind in CONVS or xd[3] == yd[3])
    elif kind in ("LOGISTIC", "HARD_SWISH", "QUANTIZE"):
        if kind == "QUANTIZE" and d["mode"] != "requant":
            return UNSUPPORTED, "a float QUANTIZE runs on the host"
        ok = x.shape == y.shape
    elif kind in ("ADD", "MUL"):
        ok = len(op.inputs) == 2 and len(y.shape) <= 4
        for t in op.inputs[:2] if ok else ():
            s = g.t(t).shape
            ok = ok and len(s) <= len(y.shape) and all(v in (yd[len(y.shape) - len(s) + i], 1) for i, v in enumerate(s))
    elif kind == "FULLY_CONNECTED":
        wd = _dims(g.t(op.inputs[1]))
        ok = wd[1] >= 1 and n(x.shape) % wd[1] == 0 and n(y.shape) == n(x.shape) // wd[1] * wd[0]
    elif kind == "SOFTMAX":
        ok = (len(x.shape) >= 1 and x.shape[-1] > 0 and n(x.shape) == n(y.shape)
              and (d["out_dtype"] == "int16") == (y.dtype == "int16"))
    elif kind == "RESHAPE":
        ok = n(x.shape) == n(y.shape)
    elif kind == "MEAN":
        axes = d["axes"]
        keep = n(v for i, v in enumerate(x.shape) if i not in axes)
        red = n(v for i, v in enumerate(x.shape) if i in axes)
        ok = all(a < len(x.shape) for a in axes) and keep == n(y.shape) and red == d["num_elements_in_axis"]
    elif kind == "TRANSPOSE":
        p = d["perm"]
        ok = len(p) == len(x.shape) == len(y.shape) and len(set(p)) == len(p) and all(yd[k] == xd[p[k]] for k in range(len(p)))
    elif kind == "PAD":
        pads = d["paddings"]
        ok = len(pads) == len(x.shape) == len(y.shape) and all(yd[k] == xd[k] + a + b for k, (a, b) in enumerate(pads))
    elif kind == "CONCATENATION":
        axis, ts = d["axis"], [g.t(t) for t in op.inputs]
        ok = 0 <= axis < len(y.shape) and all(
            len(t.shape) == len(y.shape) and all(t.shape[i] == y.shape[i] for i in range(len(y.shape)) if i != axis)
            for t in ts) and sum(t.shape[axis] for t in ts) == y.shape[axis]
    elif kind == "RESIZE_NEAREST_NEIGHBOR":
        ok = len(x.shape) == 4 and len(y.shape) == 4 and xd[0] == yd[0] and xd[3] == yd[3]
    else:
        return UNSUPPORTED, f"{kind} runs on the host"
    if ok:
        return None
    ins = ", ".join(f"{g.t(t).shape}" for t in op.inputs if t >= 0)
    return row, f"shapes {ins} -> {y.shape} do not fit the op's whole-tensor kernel"


def check_device_op(g: Graph, op: Op, whole: bool, where: str) -> None:
    """The rules for op, which the device runs (whole: in a RUN step): McutoolError if one fails."""
    kind = op.kind
    need = _MIN_INPUTS.get(kind, 1)
    operands = list(op.inputs) + list(op.outputs)
    ok = len(op.inputs) >= need
    for j, t in enumerate(operands if ok else ()):
        if t < 0:
            ok = ok and j == 2 and kind in _OPTIONAL_BIAS
        elif not g.t(t).is_const and len(g.t(t).shape) == 4 and g.t(t).shape[0] != 1:
            ok = False
    if not ok:
        _fail(where, 106, f"on the device it needs {need} inputs, each present (only a bias may be -1), and batch 1 "
                          f"for a 4-D operand: inputs {list(op.inputs)}, outputs {list(op.outputs)}")
    why = _params(g, op)
    if why:
        _fail(where, PARAMS_CHECK.get(kind, SHAPE_CHECK.get(kind, UNSUPPORTED)), why)
    if whole:
        bad = _whole(g, op)
        if bad:
            _fail(where, *bad)
