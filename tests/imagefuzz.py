"""A structure-aware fuzzer for flash images (issue 12: the C loader must be airtight).

It takes valid images (small generated models from modelgen; the shared person_detect and
fomo_mask_int8 packed with layer_by_layer, plan_stream, plan_patches and choose) and sets
one to three fields -- header, section table, tensor entries, quantization records, op
records (table, counts, operand indices, parameter words), DATA parameter arrays
(multiplier, shift, rq, RESIZE indices), int32 constants, IO, steps, buffers, PLAN -- to an
extreme (0, 1, -1, 2^15-1, 2^16-1, 2^31-1, 2^32-1), to just past the end of what it
indexes (a section, DATA, the arena, a tensor), to the same field of another record (so
that things overlap), or off by one; then both CRCs are recomputed, so that the loader's
structural checks are what gets tested. One image in eight gets raw damage instead (bytes,
bits, truncation; CRCs fixed or left stale), as test_engine's old random fuzz did.

Every image must be rejected by `_engine.load_status` (code < 0), or load and run in an
arena of exactly `arena_bytes` without touching memory it was not given (the run may end in
an error status). Only the sanitizer build checks that (`make test-sanitize` runs a seeded
slice, tests/test_image_fuzz.py; `make fuzz-images` the long run). The Python reader
(`mcutool.image.format.unpack`) reads every image as well; the tally counts where the two
readers disagree.

    python tests/imagefuzz.py --images 100000 --seed 1          # the long run: prints the tally
    python tests/imagefuzz.py --seed 1 --only 4242 --dump x.mcu  # one image again, explained

Image i of seed s depends on (s, i) alone, so any image can be rebuilt on its own. The long
run works in child processes; when one dies (a sanitizer report aborts it), the image it was
on is recorded as a crash, with the report, and the run goes on after it.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import test_image as ti  # noqa: E402  (field offsets and image surgery live there)
from test_image import (  # noqa: E402
    B_ALIAS, B_CH, B_KEY, B_KIND, B_OFF, B_RES0, B_RES1, B_ROWS, B_SIZE, B_WIDTH, BUF, P_FLAGS, P_GRID, P_HALO, P_IO,
    P_MACS, P_NIN, P_NOUT, P_SPLIT, P_STRATEGY, S_C0, S_C1, S_FLAGS, S_FUSED, S_KIND, S_OP, S_PATCH, S_R0, S_R1, STEP,
    T_DIMS, T_DOFF, T_DSIZE, T_DTYPE, T_FLAGS, T_NAME, T_QOFF, T_RANK, T_SCALE, T_ZP, _field_words, _op, _op_words,
    _plan, _recrc, _sec, _step, _tensor, _u32,
)

from mcutool.errors import McutoolError  # noqa: E402
from mcutool.image.format import NONE32, SECTIONS, TENSOR_ENTRY, unpack  # noqa: E402
from mcutool.image.opparams import LAYOUTS  # noqa: E402
from mcutool.plan.model import INPUT, RUN, WINDOW  # noqa: E402
from mcutool.ref.conv import RQ_WORDS  # noqa: E402

EXTREMES = (0, 1, -1, 2**15 - 1, 2**16 - 1, 2**31 - 1, 2**32 - 1)
WIDTH = {"B": 8, "b": 8, "H": 16, "h": 16, "I": 32, "i": 32}
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

# ---- the images fuzzed ------------------------------------------------------------------

# (generated case, "layer" | "stream"): every op kind, PRE and POST steps, in-place, fused,
# rings and pixel buffers, parameter arrays of every kind
GENERATED = [
    ("small_chain", "layer"), ("small_chain", "stream"), ("dw_3x3_same", "layer"), ("dw_3x3_same", "stream"),
    ("conv_3x3_same", "stream"), ("conv_dil2x1_s2_same", "stream"), ("dw_dm2", "stream"), ("resize_nn_2x", "layer"),
    ("resize_nn_down", "layer"), ("fc_per_channel", "layer"), ("fc_4d_input", "layer"),
    ("mean_hw_keepdims_diffscale", "layer"), ("pad_asymmetric", "layer"), ("transpose_nhwc_to_nchw", "layer"),
    ("concat_h_three", "layer"), ("softmax_4d", "layer"), ("logistic", "stream"), ("hard_swish", "stream"),
    ("add_broadcast_channel", "layer"), ("add", "stream"), ("mul_broadcast_channel", "layer"),
    ("requantize_i8_to_i8", "stream"), ("maxpool_3x3_s2_valid_odd", "stream"), ("avgpool_global", "layer"),
    ("quantize_f32_to_i8", "layer"), ("dequantize_i8_to_f32", "layer"), ("reshape_4d_to_2d", "layer"),
    ("small_chain", "layer+qrec"),
]
# "<how>+qrec": the image of <how> given per-channel quantization records, (tensor, axis):
# format v3 writes none for a constant and no generated case has a per-channel activation,
# but a reader checks any record an entry points at, so the fuzzer must have some to edit
QRECS = {"small_chain": ((4, 0), (5, 3))}  # the first conv's weights and its output
# (shared model, plan): plan is "layer", "planner" (choose), "stream" (max split) or (split, rows, cols)
SHARED = [
    ("person_detect", "layer"), ("person_detect", "planner"), ("person_detect", "stream"), ("person_detect", (6, 3, 2)),
    ("fomo_mask_int8", "layer"), ("fomo_mask_int8", "planner"), ("fomo_mask_int8", (3, 2, 2)),
]
# how often each base is picked: shared images cost ten times as much to check and run
SUITES = {
    "long": [(g, 3.0) for g in GENERATED] + [(s, 2.0) for s in SHARED],
    "slice": [(g, 3.0) for g in GENERATED] + [(("fomo_mask_int8", "planner"), 2.0), (("person_detect", "planner"), 1.0)],
}


def _label(spec) -> str:
    name, how = spec
    return f"{name}-{'patch%d.%dx%d' % how if isinstance(how, tuple) else how}"


def build_base(spec) -> bytes:
    name, how = spec
    if name in dict(ti.modelgen.CASES):
        if how.endswith("+qrec"):
            return bytes(ti._edit(ti._case(name, how[:-5]).image, ti._then(*[ti._add_qrec(t, a) for t, a in QRECS[name]])))
        return ti._case(name, how).image
    from conftest import models_dir

    if how in ("layer", "planner"):
        return ti._shared(models_dir(), name, how).image
    from mcutool.image.format import pack
    from mcutool.model import load_model
    from mcutool.plan.lower import lower
    from mcutool.plan.patches import plan_patches
    from mcutool.plan.stream import max_split, plan_stream

    low = lower(load_model(models_dir() / f"{name}.tflite"))
    plan = plan_stream(low, max_split(low)) if how == "stream" else plan_patches(low, *how)
    return pack(low.graph, plan)


def build_bases(suite: str) -> list[tuple[str, bytes, float]]:
    return [(_label(spec), build_base(spec), w) for spec, w in SUITES[suite]]


# ---- where the fields are ---------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    pos: int  # absolute offset in the image
    fmt: str  # struct code: B b H h I i
    name: str  # what it is, e.g. "tensor.dims", "op.param.CONV_2D.stride", "data.RESIZE_NEAREST_NEIGHBOR.in_y"
    ends: tuple = ()  # values at the edge of what the field indexes: just past a section, the arena, a tensor
    count: int = 1  # > 1: an int32 array of that many elements in DATA (one is edited)


@dataclass
class Layout:
    label: str
    image: bytes
    areas: dict = field(default_factory=lambda: defaultdict(list))  # area -> [Field]
    by_name: dict = field(default_factory=lambda: defaultdict(list))  # name -> [Field] (for copies)
    records: dict = field(default_factory=dict)  # "tensor" | "step" | "buffer" -> (first, size, n)

    def add(self, area, pos, fmt, name, *ends, count=1):
        f = Field(pos, fmt, name, tuple(int(e) for e in ends), count)
        self.areas[area].append(f)
        self.by_name[name].append(f)


# extra edge values of some parameter fields: the limits the loader checks, and one past them
PARAM_ENDS = {
    "stride": (64, 65), "dilation": (64, 65), "pad": (256, 257, 4096, 4097), "filter": (256, 257),
    "shift": (-31, -32, 30, 31), "input1_shift": (-31, -32, 1), "input2_shift": (-31, -32, 1),
    "output_shift": (-31, -32, 30, 31), "left_shift": (24, 25), "axes": (3, 4), "perm": (3, 4), "axis": (3, 4),
    "act_min": (-128, -129, 127), "act_max": (127, 128, -128), "input_offset": (255, 256, -255, -256),
    "output_offset": (127, 128, -128, -129), "depth_multiplier": (0, 2), "mode": (2,), "rounding": (2,),
    "out_dtype": (2,), "empty": (2,), "paddings": (4, 5, 4096, 4097), "input_left_shift": (31, 32),
    "diff_min": (I32_MIN,), "multiplier": (I32_MIN, 2**30),
}


# the rq record's words (ref/conv.py rq_words: kfold, mw, kq, sh): mw at its ends and with
# the slow mark (bit 31; I32_MIN is the mark on m = 0), kq for r = 0, 1 and 16, sh at and
# past its limits (-15 and 46: shift 30 and -31) and where fast turns slow (r = -1, 0, 16, 17)
RQ_ENDS = (I32_MAX, I32_MIN, I32_MIN + 1, 2**30, 1 << 14, (1 << 14) + (1 << 15), (1 << 14) + (1 << 30),
           14, 15, 16, 31, 32, 46, 47, -15, -16)


def _h_w(t) -> tuple[int, int]:
    s = t.shape
    return (s[1], s[2]) if len(s) == 4 else (1, 1)


def layout(label: str, image: bytes) -> Layout:
    """Every field of a valid image the fuzzer edits, with the values at its edges."""
    g, p = unpack(image)
    b = image
    L = Layout(label, image)
    total, n_t, n_ops, arena = len(b), len(g.tensors), len(g.ops), p.arena_bytes
    str_size = _sec(b, "STRINGS")[1]
    data_off, data_size = _sec(b, "DATA")
    a16 = lambda n: max(0, n) // 16 * 16  # noqa: E731
    # header and section table
    L.add("header", 4, "H", "header.version", 1, 3)
    L.add("header", 6, "H", "header.header_size", 80, 112)
    L.add("header", 8, "I", "header.flags", 1 << 31)
    L.add("header", 12, "I", "header.total_size", total - 16, total + 16, total - 1)
    L.add("header", 20, "H", "header.n_tensors", n_t + 1, n_t - 1, 0x8000)
    L.add("header", 22, "H", "header.n_ops", n_ops + 1, n_ops - 1)
    ends = [x.offset + x.size for x in p.buffers.values()] or [0]
    L.add("header", 24, "I", "header.arena_bytes", arena - 4, arena - 1, max(ends) - 1, max(ends) - 4, arena + 4)
    offs = [_sec(b, s)[0] for s in SECTIONS]
    for k, s in enumerate(SECTIONS):
        off, size = _sec(b, s)
        later = [o for o in offs if o > off]
        nxt = min(later) if later else total
        L.add("section", 32 + 8 * k, "I", "section.offset", total, total - 16, off + 16, off - 16, *offs)
        L.add("section", 36 + 8 * k, "I", "section.size", total - off, total - off + 1, size + 1, size + 16,
              nxt - off + 1, size - 4, 0)
    # tensors, their quantization records and int32 constants
    dims = sorted({d for t in g.tensors for d in t.shape})
    boffs = sorted({x.offset for x in p.buffers.values()})
    for i, t in enumerate(g.tensors):
        e = _tensor(b, i)
        rank, flags = b[e + T_RANK], b[e + T_FLAGS]
        L.add("tensor", e + T_DTYPE, "B", "tensor.dtype", 0, 8, 2, 3, 5, 6)
        L.add("tensor", e + T_RANK, "B", "tensor.rank", 5, rank + 1, rank - 1)
        L.add("tensor", e + T_FLAGS, "B", "tensor.flags", 0x10, flags ^ 1, flags ^ 2, flags ^ 4, flags ^ 8)
        L.add("tensor", e + 3, "B", "tensor.reserved")
        for k in range(4):
            L.add("tensor", e + T_DIMS + 4 * k, "I", "tensor.dims", 65535, 65536, *dims)
        L.add("tensor", e + T_SCALE, "I", "tensor.scale", 0x7F800000, 0x7FC00000, 0x80000000)
        L.add("tensor", e + T_ZP, "i", "tensor.zero_point", 127, -128, 128, -129)
        doff, dsize = _u32(b, e + T_DOFF), _u32(b, e + T_DSIZE)
        nbytes = t.nbytes
        L.add("tensor", e + T_DOFF, "I", "tensor.data_offset", data_size, a16(data_size - 1), a16(data_size - nbytes) + 16,
              NONE32)
        L.add("tensor", e + T_DSIZE, "I", "tensor.data_size", dsize + 1, dsize - 1, data_size - doff + 1, 2 * dsize)
        L.add("tensor", e + ti.T_AOFF, "I", "tensor.arena_offset", arena, arena - 4, arena + 4, NONE32, *boffs[:8])
        L.add("tensor", e + T_NAME, "I", "tensor.name_offset", str_size, str_size - 1)
        qoff = _u32(b, e + T_QOFF)
        L.add("tensor", e + T_QOFF, "I", "tensor.quant_offset", data_size, a16(data_size - 8), a16(data_size - 1), NONE32)
        if qoff != NONE32:
            n = _u32(b, data_off + qoff)
            L.add("qrec", data_off + qoff, "I", "qrec.n", n + 1, n - 1, 65536, 65537, (data_size - qoff - 8) // 8 + 1)
            L.add("qrec", data_off + qoff + 4, "I", "qrec.axis", rank, rank - 1, 4)
        if t.is_const and t.dtype == "int32" and dsize >= 4:
            L.add("const", data_off + doff, "i", "const.int32", I32_MAX, I32_MIN, count=dsize // 4)
    L.records["tensor"] = (_tensor(b, 0), TENSOR_ENTRY, n_t)
    # ops: the offset table, record heads, operand indices, parameter words, DATA arrays
    ops_off, ops_size = _sec(b, "OPS")
    table = [_u32(b, ops_off + 4 * k) for k in range(n_ops)]
    for k, op in enumerate(g.ops):
        L.add("optable", ops_off + 4 * k, "I", "op.table", ops_size, ops_size - 4, ops_size - 8, 4 * n_ops - 4, *table)
        r = _op(b, k)
        code, n_in, n_out, n_words = struct.unpack_from("<HBBH", b, r)
        L.add("ophead", r, "H", "op.code", 0, 19, 20, code - 1, code + 1)
        L.add("ophead", r + 2, "B", "op.n_in", n_in + 1, n_in - 1, 0)
        L.add("ophead", r + 3, "B", "op.n_out", 0, 2, n_out + 1)
        L.add("ophead", r + 4, "H", "op.n_words", n_words + 1, n_words - 1, 0)
        L.add("ophead", r + 6, "H", "op.reserved")
        others = [t for t in (*op.inputs, *op.outputs) if t >= 0]
        for j in range(n_in + n_out):
            L.add("opindex", r + 8 + 2 * j, "h", "op.input" if j < n_in else "op.output", n_t, n_t - 1, -1, -2, *others)
        w = _op_words(b, k)
        pos = 0
        for fname, kind in LAYOUTS[op.kind]:
            nw = _field_words(kind)
            if isinstance(kind, tuple) and kind[0] == "arr":
                aoff, cnt = struct.unpack_from("<ii", b, w + 4 * pos)
                L.add("opparam", w + 4 * pos, "i", f"op.param.{op.kind}.{fname}.offset", data_size, a16(data_size - 1),
                      a16(data_size - 4 * cnt) + 16, aoff + 16, aoff - 16)
                L.add("opparam", w + 4 * pos + 4, "i", f"op.param.{op.kind}.{fname}.count", cnt + 1, cnt - 1, 2 * cnt,
                      (data_size - aoff) // 4 + 1, RQ_WORDS * cnt, cnt // RQ_WORDS)
                if cnt > 0 and 0 <= aoff and aoff + 4 * cnt <= data_size:
                    x = g.t(op.inputs[0]) if op.inputs and op.inputs[0] >= 0 else None
                    hw = _h_w(x) if x is not None else (1, 1)
                    extra = {"in_y": (hw[0], hw[0] - 1), "in_x": (hw[1], hw[1] - 1), "shift": (-31, -32, 30, 31),
                             "multiplier": (I32_MAX, I32_MIN, 2**30), "rq": RQ_ENDS}
                    L.add("data", data_off + aoff, "i", f"data.{op.kind}.{fname}", *extra.get(fname, ()), count=cnt)
            else:
                for j in range(nw):
                    L.add("opparam", w + 4 * (pos + j), "i", f"op.param.{op.kind}.{fname}", *PARAM_ENDS.get(fname, ()))
            pos += nw
    # IO
    io_off = _sec(b, "IO")[0]
    n_gin, n_gout = struct.unpack_from("<HH", b, io_off)
    L.add("io", io_off, "H", "io.n_inputs", n_gin + 1, n_gin - 1)
    L.add("io", io_off + 2, "H", "io.n_outputs", n_gout + 1, n_gout - 1)
    for j in range(n_gin + n_gout):
        L.add("io", io_off + 4 + 2 * j, "H", "io.tensor", n_t, n_t - 1, *g.inputs, *g.outputs)
    # SCHEDULE
    s_off, s_size = _sec(b, "SCHEDULE")
    n_s = len(p.steps)
    n_p = max(1, len(p.col_origin))
    L.add("step", s_off, "I", "step.count", n_s + 1, n_s - 1, (s_size - 4) // STEP + 1)
    dws = [k for k, op in enumerate(g.ops) if op.kind == "DEPTHWISE_CONV_2D"]
    for i, s in enumerate(p.steps):
        e = _step(b, i)
        hw, rows = (1, 1), 1
        t = None
        if s.kind == INPUT:
            t = s.op
        elif s.kind in (RUN, WINDOW) and g.ops[s.op].outputs:
            t = g.ops[s.op].outputs[0]
        if t is not None and 0 <= t < n_t:
            hw = _h_w(g.t(t))
            rows = p.buffers[t].rows if t in p.buffers else 1
        L.add("step", e + S_KIND, "B", "step.kind", 0, 6, 1, 2, 3, 4, 5)
        L.add("step", e + S_FLAGS, "B", "step.flags", 1, 2, 0x80)
        L.add("step", e + S_OP, "h", "step.op", n_ops, n_ops - 1, n_t, -1, *dws[:4])
        L.add("step", e + S_R0, "H", "step.r0", hw[0], hw[0] - 1, s.r1, s.r1 + 1)
        L.add("step", e + S_R1, "H", "step.r1", hw[0] + 1, hw[0], s.r0, s.r0 + rows + 1, s.r0 + rows)
        L.add("step", e + S_C0, "H", "step.c0", hw[1], hw[1] - 1, s.c1)
        L.add("step", e + S_C1, "H", "step.c1", hw[1] + 1, hw[1], s.c0)
        L.add("step", e + S_PATCH, "H", "step.patch", n_p, n_p - 1, n_p + 1)
        L.add("step", e + S_FUSED, "h", "step.fused", n_ops, -2, s.op, *dws[:4])
    L.records["step"] = (s_off + 4, STEP, n_s)
    # BUFFERS
    b_off = _sec(b, "BUFFERS")[0]
    keys = sorted(p.buffers)
    L.add("buffer", b_off, "I", "buffer.count", len(keys) + 1, len(keys) - 1)
    for i, key in enumerate(keys):
        x = p.buffers[key]
        e = b_off + 4 + BUF * i
        hw = _h_w(g.t(key)) if 0 <= key < n_t else (1, 1)
        L.add("buffer", e + B_KEY, "h", "buffer.key", n_t, -1 - n_s, key - 1, key + 1, *keys[:8])
        L.add("buffer", e + B_KIND, "B", "buffer.kind", 3, 0, 1, 2)
        L.add("buffer", e + B_RES0, "B", "buffer.reserved")
        L.add("buffer", e + B_ROWS, "H", "buffer.rows", x.rows + 1, x.rows - 1, hw[0], hw[0] + 1, 0)
        L.add("buffer", e + B_WIDTH, "H", "buffer.width", x.width + 1, x.width - 1, hw[1], hw[1] + 1, 0)
        L.add("buffer", e + B_CH, "H", "buffer.channels", x.channels + 1, x.channels - 1, 0)
        L.add("buffer", e + B_ALIAS, "h", "buffer.alias_of", key, -2, *keys[:8])
        L.add("buffer", e + B_OFF, "I", "buffer.offset", arena - x.size + 4, arena - x.size, arena, x.offset + 4,
              x.offset - 4, *boffs[:8])
        L.add("buffer", e + B_SIZE, "I", "buffer.size", x.size + 1, x.size - 1, x.size + x.width * x.channels)
        L.add("buffer", e + B_RES1, "I", "buffer.reserved")
    L.records["buffer"] = (b_off + 4, BUF, len(keys))
    # PLAN
    pp = _plan(b)
    L.add("plan", pp + P_STRATEGY, "B", "plan.strategy", 3, 0, 1, 2)
    L.add("plan", pp + P_HALO, "B", "plan.halo", 3)
    L.add("plan", pp + P_SPLIT, "H", "plan.split", n_ops)
    L.add("plan", pp + P_GRID, "H", "plan.grid")
    L.add("plan", pp + P_GRID + 2, "H", "plan.grid")
    L.add("plan", pp + P_FLAGS, "I", "plan.flags", 0, 1, 2)
    L.add("plan", pp + P_MACS, "I", "plan.macs")
    n_din, n_dout = len(p.device_inputs), len(p.device_outputs)
    L.add("plan", pp + P_NIN, "H", "plan.n_device_inputs", n_din + 1, n_din - 1, 8, 9)
    L.add("plan", pp + P_NOUT, "H", "plan.n_device_outputs", n_dout + 1, n_dout - 1, 8, 9, 0)
    hosts = [t for t in range(n_t) if t not in p.buffers][:4]
    for j in range(n_din + n_dout):
        L.add("plan", pp + P_IO + 2 * j, "h", "plan.device_io", n_t, -1, *p.device_inputs, *p.device_outputs, *hosts)
    q = pp + P_IO + 2 * (n_din + n_dout)
    L.add("plan", q, "H", "plan.n_patches", n_p + 1, n_p - 1, 0)
    q += 2
    for origins in p.col_origin:
        cnt = len(origins)
        L.add("plan", q, "H", "plan.patch_count", cnt + 1, cnt - 1, 0)
        q += 2
        for t, first in origins.items():
            hw = _h_w(g.t(t))
            w = p.buffers[t].width if t in p.buffers else 1
            L.add("plan", q, "H", "plan.origin_tensor", n_t, *list(origins)[:4])
            L.add("plan", q + 2, "H", "plan.origin_column", hw[1], hw[1] + 1, hw[1] - w + 1, first + 1, first - 1)
            q += 4
    return L


# ---- mutations --------------------------------------------------------------------------

AREAS = {  # area -> weight
    "header": 0.5, "section": 1.0, "tensor": 2.0, "qrec": 0.3, "const": 0.3, "optable": 0.7, "ophead": 1.0,
    "opindex": 1.5, "opparam": 2.5, "data": 1.5, "io": 0.6, "step": 2.5, "buffer": 2.0, "plan": 1.5,
}


def _read(b, f: Field, pos=None) -> int:
    return struct.unpack_from("<" + f.fmt, b, f.pos if pos is None else pos)[0]


def _write(b, pos, fmt, v: int) -> int:
    bits = WIDTH[fmt]
    v &= (1 << bits) - 1
    if fmt.islower() and v >= 1 << (bits - 1):
        v -= 1 << bits
    struct.pack_into("<" + fmt, b, pos, v)
    return v


def _pick_value(rng, L: Layout, f: Field, pos: int, cur: int) -> tuple[int, str]:
    for _ in range(8):
        r = rng.random()
        if r < 0.35:
            v, how = int(EXTREMES[int(rng.integers(len(EXTREMES)))]), "extreme"
        elif r < 0.55:
            v, how = cur + (1 if rng.random() < 0.5 else -1), "off-by-one"
        elif r < 0.80 and f.ends:
            v, how = f.ends[int(rng.integers(len(f.ends)))], "edge"
        elif r < 0.93 and len(L.by_name[f.name]) > 1:
            o = L.by_name[f.name][int(rng.integers(len(L.by_name[f.name])))]
            opos = o.pos + 4 * int(rng.integers(o.count)) if o.count > 1 else o.pos
            v, how = _read(L.image, o, opos), "copy"
        else:
            v, how = int(rng.integers(0, 1 << WIDTH[f.fmt])), "random"
        bits = WIDTH[f.fmt]
        if (v - cur) % (1 << bits):
            return v, how
    return cur + 1, "off-by-one"


def _edit_field(rng, L: Layout, b: bytearray) -> str:
    areas = [a for a in AREAS if L.areas.get(a)]
    w = np.array([AREAS[a] for a in areas])
    area = areas[int(rng.choice(len(areas), p=w / w.sum()))]
    f = L.areas[area][int(rng.integers(len(L.areas[area])))]
    pos = f.pos
    if f.count > 1:
        r = rng.random()
        i = 0 if r < 0.3 else f.count - 1 if r < 0.6 else int(rng.integers(f.count))
        pos += 4 * i
    cur = _read(b, f, pos)
    v, how = _pick_value(rng, L, f, pos, cur)
    new = _write(b, pos, f.fmt, v)
    idx = f"[{(pos - f.pos) // 4}]" if f.count > 1 else ""
    return f"{f.name}{idx}@{pos}:{cur}->{new}({how})"


def _copy_record(rng, L: Layout, b: bytearray) -> str | None:
    kinds = [k for k, (_, _, n) in L.records.items() if n >= 2]
    if not kinds:
        return None
    kind = kinds[int(rng.integers(len(kinds)))]
    first, size, n = L.records[kind]
    i, j = (int(x) for x in rng.choice(n, 2, replace=False))
    b[first + size * i: first + size * (i + 1)] = L.image[first + size * j: first + size * (j + 1)]
    return f"{kind}[{i}]=copy of {kind}[{j}]"


def _raw(rng, L: Layout, b: bytearray) -> tuple[bytearray, str, bool]:
    """Damage without regard to structure: (image, what, whether to recompute the CRCs)."""
    kind = int(rng.integers(4))
    if kind == 0:
        n = int(rng.integers(0, len(b)))
        return b[:n], f"raw.truncate:{n}", False
    edits = []
    for _ in range(int(rng.integers(1, 6))):
        lim = min(len(b), 4096) if rng.random() < 0.8 else len(b)  # mostly before DATA
        pos = int(rng.integers(0, lim))
        old = b[pos]
        b[pos] = b[pos] ^ (1 << int(rng.integers(8))) if kind == 1 else int(rng.integers(256))
        edits.append(f"{pos}:{old}->{b[pos]}")
    return b, f"raw.{'bit' if kind == 1 else 'byte'}:" + ",".join(edits), kind == 3 or rng.random() < 0.3


def mutate(rng, L: Layout) -> tuple[bytes, list[str]]:
    """One damaged copy of the layout's image, and what was done to it."""
    b = bytearray(L.image)
    r = rng.random()
    if r < 0.125:
        b, what, fix = _raw(rng, L, b)
        if fix and len(b) >= 96:
            _recrc(b)
        return bytes(b), [what]
    done = []
    if r < 0.17:  # a whole tensor, step or buffer record over another, and maybe a field or two
        what = _copy_record(rng, L, b)
        n = int(rng.integers(0, 3)) if what else 1
        done += [what] if what else []
    else:  # one field (half the images), two or three
        n = 1 if rng.random() < 0.5 else int(rng.integers(2, 4))
    for _ in range(n):
        done.append(_edit_field(rng, L, b))
    if rng.random() < 0.03:  # now and then the CRC stays stale: the check must catch it
        done.append("stale-crc")
    else:
        _recrc(b)
    return bytes(b), done


# ---- what the fuzzer found --------------------------------------------------------------

# Images that made the engine touch memory it was not given, or do undefined arithmetic,
# found by this fuzzer and cut down to the edits that matter: (what happened, base, edits),
# an edit being (field name, which one of that name in the image, value). Every run checks
# them first, as images -1, -2, ... (python tests/imagefuzz.py --only -1 shows the first).
REPRODUCERS = [
    ("CONCATENATION with an absent (-1) input: mcu_load read tensor entry -1",
     ("concat_h_three", "layer"), [("op.input", 0, -1)]),
    ("MUL with an absent second input: tensor entry -1 read", ("mul_broadcast_channel", "layer"), [("op.input", 1, -1)]),
    ("RESIZE_NEAREST_NEIGHBOR with an absent input: tensor entry -1 read", ("resize_nn_2x", "layer"),
     [("op.input", 0, -1)]),
    ("RESHAPE with an absent input: tensor entry -1 read", ("reshape_4d_to_2d", "layer"), [("op.input", 0, -1)]),
    ("FULLY_CONNECTED whose bias is the int8 weights: misaligned int32 reads past the tensor",
     ("fc_per_channel", "layer"), [("op.input", 2, 0)]),
    ("a device input of batch 2 in a FULL buffer of one batch: set_input writes past the buffer",
     ("avgpool_global", "layer"), [("tensor.dims", 0, 2)]),
    ("SOFTMAX out_dtype -1: int16 written into an int8 output buffer", ("softmax_4d", "layer"),
     [("op.param.SOFTMAX.out_dtype", 0, -1)]),
    ("SOFTMAX input_left_shift 32: a shift by 32 or more (undefined)", ("softmax_4d", "layer"),
     [("op.param.SOFTMAX.input_left_shift", 0, 32)]),
    ("LOGISTIC input_left_shift 32: a shift by 32 (undefined)", ("logistic", "stream"),
     [("op.param.LOGISTIC.input_left_shift", 0, 32)]),
    ("HARD_SWISH reluish_multiplier_exponent 32767: a shift by 32766 (undefined)", ("hard_swish", "stream"),
     [("op.param.HARD_SWISH.reluish_multiplier_exponent", 0, 32767)]),
    ("HARD_SWISH output_multiplier_exponent 1: a shift by -1 (undefined)", ("hard_swish", "stream"),
     [("op.param.HARD_SWISH.output_multiplier_exponent", 0, 1)]),
    ("ADD whose first input is a constant (the depthwise bias, int32): the executor reads it through a buffer "
     "it has not got (heap-use-after-free in broadcast)", ("small_chain", "layer"), [("op.input", 9, 6)]),
    ("IN_PLACE on a PRE step: the C loader took it, the Python reader refused it (row 89)",
     ("quantize_f32_to_i8", "layer"), [("step.flags", 0, 1)]),
    ("ADD act_max 2^31-1: act_max - output_offset overflows int32 (undefined; Python's -fwrapv hid it)",
     ("add", "stream"), [("op.param.ADD.act_max", 0, 2**31 - 1)]),
    ("MUL input1_offset 2^31-1: x + input1_offset overflows int32", ("mul", "layer"),
     [("op.param.MUL.input1_offset", 0, 2**31 - 1)]),
    ("FULLY_CONNECTED output_offset -2^31: act_min - output_offset overflows int32", ("fc_per_channel", "layer"),
     [("op.param.FULLY_CONNECTED.output_offset", 0, -2**31)]),
    ("QUANTIZE (requantize) input_zero_point 2^31-1: x - input_zero_point overflows int32",
     ("requantize_i8_to_i8", "stream"), [("op.param.QUANTIZE.input_zero_point", 0, 2**31 - 1)]),
    ("QUANTIZE (requantize) zero_point 2^31-1: -128 - zero_point overflows int32", ("requantize_i8_to_i8", "stream"),
     [("op.param.QUANTIZE.zero_point", 0, 2**31 - 1)]),
    ("a depthwise bias of 2^31-1 in fomo's fused depthwise -> 1x1 border: bias + sum overflowed int32",
     ("fomo_mask_int8", "planner"), [("const.int32", 2, 2**31 - 1)]),
]


def reproducer(L: "Layout", edits) -> tuple[bytes, list[str]]:
    b = bytearray(L.image)
    done = []
    for name, which, v in edits:
        f = L.by_name[name][which]
        cur = _read(b, f)
        done.append(f"{name}@{f.pos}:{cur}->{_write(b, f.pos, f.fmt, v)}")
    _recrc(b)
    return bytes(b), done


# ---- one image: both readers, and a run if the C reader takes it ----------------------


def _engine():
    from mcutool.native import engine

    return engine()


def run_model(m, rng) -> str:
    """Run a loaded model once (whole, or row band by row band); "ok" or the engine's error."""
    ins = [rng.integers(-128, 128, i["bytes"], dtype=np.int8).tobytes() for i in m.inputs]
    try:
        if m.streamed and rng.random() < 0.5:
            arena = bytearray(m.arena_bytes)
            m.begin(arena)
            for k, x in enumerate(ins):
                try:
                    m.set_input(k, x)
                except ValueError:
                    pass  # a streamed input: it comes by feed()
            need = m.need()
            while need is not None:
                k, r0, r1 = need
                row = m.inputs[k]["bytes"] // max(1, m.inputs[k]["shape"][1])
                if m.feed(k, r0, r1, ins[k][r0 * row: r1 * row]):
                    break
                need = m.need()
            for k in range(len(m.outputs)):
                m.output(k)
        else:
            m.invoke(ins)
        return "ok"
    except ValueError as e:
        return str(e)


@dataclass
class Tally:
    tried: int = 0
    rejected: int = 0
    accepted: int = 0
    crashed: int = 0
    by_status: Counter = field(default_factory=Counter)  # C status -> images
    by_check: Counter = field(default_factory=Counter)  # "status/check" when load_status says which check
    runs: Counter = field(default_factory=Counter)  # run outcome -> accepted images
    py_crash: int = 0  # the Python reader raised something other than McutoolError
    c_only: Counter = field(default_factory=Counter)  # C accepts, Python rejects: by first field edited
    py_only: Counter = field(default_factory=Counter)  # Python accepts, C rejects: by status and field
    examples: dict = field(default_factory=dict)  # kind -> [(seed, index, base, edits, detail)] (a few)
    crashes: list = field(default_factory=list)  # (seed, index, base, edits, report tail)

    def example(self, kind, item, keep=6):
        lst = self.examples.setdefault(kind, [])
        # keep the simplest: fewest edits first
        lst.append(item)
        lst.sort(key=lambda x: (len(x[3]), x[1]))
        del lst[keep:]

    def merge(self, o: "Tally"):
        self.tried += o.tried
        self.rejected += o.rejected
        self.accepted += o.accepted
        self.crashed += o.crashed
        self.py_crash += o.py_crash
        for a in ("by_status", "by_check", "runs", "c_only", "py_only"):
            getattr(self, a).update(getattr(o, a))
        for k, lst in o.examples.items():
            for item in lst:
                self.example(k, item)
        self.crashes += o.crashes

    def to_json(self):
        d = {k: (dict(v) if isinstance(v, Counter) else v) for k, v in self.__dict__.items()}
        return json.loads(json.dumps(d, default=list))

    @classmethod
    def from_json(cls, d):
        t = cls()
        for k, v in d.items():
            setattr(t, k, Counter(v) if isinstance(getattr(t, k), Counter) else v)
        return t

    @property
    def disagree(self) -> int:
        return sum(self.c_only.values()) + sum(self.py_only.values())

    def summary(self) -> str:
        def top(c, n=12):
            return ", ".join(f"{k}: {v}" for k, v in c.most_common(n)) or "none"

        lines = [
            f"images {self.tried}: rejected {self.rejected}, accepted and run {self.accepted}, crashed {self.crashed}",
            f"  rejected by status: {top(Counter({int(k): v for k, v in self.by_status.items() if int(k) < 0}), 20)}",
        ]
        if self.by_check:
            lines.append(f"  rejected by check: {top(self.by_check, 30)}")
        lines += [
            f"  runs: {top(self.runs)}",
            f"  readers disagree on {self.disagree}: C accepts, Python rejects {sum(self.c_only.values())}; "
            f"Python accepts, C rejects {sum(self.py_only.values())}; Python reader crashed {self.py_crash}",
            f"    C only, by field: {top(self.c_only)}",
            f"    Python only, by status and field: {top(self.py_only)}",
        ]
        for kind, lst in sorted(self.examples.items()):
            lines.append(f"  examples of {kind}:")
            lines += [f"    seed {s} image {i} ({base}): {'; '.join(ed)} => {detail}" for s, i, base, ed, detail in lst]
        for s, i, base, ed, rep in self.crashes:
            lines.append(f"  CRASH seed {s} image {i} ({base}): {'; '.join(ed)}\n{rep}")
        return "\n".join(lines)


def _field_of(edits: list[str]) -> str:
    e = edits[0]
    return e.split("@")[0].split("[")[0].split(":")[0]


class Fuzzer:
    def __init__(self, bases: list[tuple[str, bytes, float]], seed: int):
        self.seed = seed
        self.layouts = [layout(label, img) for label, img, _ in bases]
        self.by_label = {L.label: L for L in self.layouts}
        w = np.array([wt for _, _, wt in bases], float)
        self.p = w / w.sum()
        self.E = _engine()

    def layout_of(self, spec) -> Layout:
        label = _label(spec)
        if label not in self.by_label:
            self.by_label[label] = layout(label, build_base(spec))
        return self.by_label[label]

    def image(self, i: int):
        """(base label, damaged image, edits, rng) of image i: a function of (seed, i) alone.
        Images -1, -2, ... are the REPRODUCERS."""
        if i < 0:
            what, spec, edits = REPRODUCERS[-1 - i]
            L = self.layout_of(spec)
            b, done = reproducer(L, edits)
            return L.label, b, [f"reproducer {-1 - i} ({what})"] + done, np.random.default_rng([self.seed, 2**32 + i])
        rng = np.random.default_rng([self.seed, i])
        L = self.layouts[int(rng.choice(len(self.layouts), p=self.p))]
        b, edits = mutate(rng, L)
        return L.label, b, edits, rng

    def one(self, i: int, t: Tally) -> None:
        label, b, edits, rng = self.image(i)
        t.tried += 1
        res = self.E.load_status(b)
        code = res[0]
        t.by_status[str(code)] += 1
        if code < 0 and len(res) > 2:
            t.by_check[f"{code}/{res[2]}"] += 1
        try:
            unpack(b)
            py, why = True, ""
        except McutoolError as e:
            py, why = False, str(e)
        except Exception as e:  # the Python reader must raise McutoolError only (docs/flash-image.md §6)
            py, why = False, f"{type(e).__name__}: {e}"
            t.py_crash += 1
            t.example("python reader crash", (self.seed, i, label, edits, why[:200]))
        assert code <= 0 and res[1], res
        if code < 0:
            t.rejected += 1
            if py:
                check = f"/{res[2]}" if len(res) > 2 else ""
                t.py_only[f"{code}{check} {_field_of(edits)}"] += 1
                t.example("Python accepts, C rejects", (self.seed, i, label, edits, f"C status {code}{check} {res[1]}"))
            return
        t.accepted += 1
        if not py:
            t.c_only[_field_of(edits)] += 1
            t.example("C accepts, Python rejects", (self.seed, i, label, edits, why[:200]))
        m = self.E.Model(b)
        out = run_model(m, rng)
        t.runs[out.split(" (status")[0] if out != "ok" else "ok"] += 1

    def run(self, start: int, stop: int, cursor: int | None = None, save=None) -> Tally:
        """Images [start, stop). `cursor`: a file descriptor that gets each image's number
        before it is tried; `save(upto, tally)` is called every 200 images and at the end."""
        t = Tally()
        for i in range(start, stop):
            if cursor is not None:
                os.pwrite(cursor, b"%12d" % i, 0)
            self.one(i, t)
            if save and (i + 1 - start) % 200 == 0:
                save(i + 1, t)
        if save:
            save(stop, t)
        return t


# ---- the long run: child processes, so that a crash is recorded and the run goes on -----


def _worker(args) -> int:
    with open(args.bases, "rb") as f:
        bases = pickle.load(f)
    fz = Fuzzer(bases, args.seed)
    fd = os.open(args.cursor, os.O_RDWR | os.O_CREAT)

    def save(upto, t):  # the tally so far, for the parent if this process dies
        tmp = args.out + ".tmp"
        Path(tmp).write_text(json.dumps({"upto": upto, "tally": t.to_json()}))
        os.replace(tmp, args.out)

    fz.run(args.start, args.stop, fd, save)
    return 0


NOT_STARTED = b"not started "


def _short_report(err: str) -> str:
    """The sanitizer's (or Python's) report in a child's stderr: its first line and frames."""
    lines = err.splitlines()
    for k, line in enumerate(lines):
        if "runtime error" in line or "ERROR: AddressSanitizer" in line or "Fatal Python error" in line:
            frames = [x for x in lines[k + 1:] if x.lstrip().startswith("#")][:8]
            summary = [x for x in lines[k:] if x.startswith("SUMMARY")][:1]
            return "\n".join([line] + frames + summary)
    return "\n".join(lines[-20:])


def long_run(n: int, seed: int, suite: str, chunk: int, start: int = 0, log=print) -> Tally:
    """Images [start, start + n), `chunk` to a child process. A child that dies (a sanitizer
    report, a signal) or hangs is a crash of the image it was on; the run goes on after it."""
    t0 = time.time()
    total = Tally()
    with tempfile.TemporaryDirectory(prefix="imagefuzz") as tmp:
        bases_path, cursor, out = (os.path.join(tmp, x) for x in ("bases.pickle", "cursor", "tally.json"))
        with open(bases_path, "wb") as f:
            pickle.dump(build_bases(suite), f)
        # Python's small-object allocator hides small buffers (arenas, images) from ASan
        env = dict(os.environ, PYTHONMALLOC="malloc")
        describe = None

        def child(a, b):
            """Run images [a, b) in a child: (returncode or None if it hung, stderr, images counted up to)."""
            Path(cursor).write_bytes(NOT_STARTED)
            if os.path.exists(out):
                os.remove(out)
            cmd = [sys.executable, __file__, "--worker", "--seed", str(seed), "--start", str(a), "--stop", str(b),
                   "--bases", bases_path, "--cursor", cursor, "--out", out]
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120 + (b - a))
                rc, err = p.returncode, p.stderr
            except subprocess.TimeoutExpired as e:
                rc, err = None, (e.stderr or b"").decode(errors="replace") + "\n(hung: killed)"
            upto = a
            if os.path.exists(out):
                d = json.loads(Path(out).read_text())
                total.merge(Tally.from_json(d["tally"]))
                upto = d["upto"]
            return rc, err, upto

        def progress():
            log(f"{i - start}/{n} images, {time.time() - t0:.0f} s: rejected {total.rejected}, "
                f"accepted {total.accepted}, crashed {total.crashed}, disagree {total.disagree}")

        i, end = start, start + n
        while i < end:
            stop = min(i + chunk, end)
            rc, err, upto = child(i, stop)
            if rc == 0 and upto == stop:
                i = stop
                progress()
                continue
            raw = Path(cursor).read_bytes()
            if raw == NOT_STARTED:
                raise RuntimeError(f"the fuzzer's child process failed before its first image:\n{err[-3000:]}")
            bad = int(raw)
            if describe is None:
                with open(bases_path, "rb") as f:
                    describe = Fuzzer(pickle.load(f), seed)
            label, _, edits, _ = describe.image(bad)
            total.crashed += 1
            total.tried += 1
            total.crashes.append((seed, bad, label, edits, _short_report(err)))
            log(f"CRASH at image {bad} ({label}: {'; '.join(edits)}), exit {rc}")
            if upto < bad:  # images that ran after the last saved tally: again, for the tally
                child(upto, bad)
            i = bad + 1
            progress()
    log(f"wall time {time.time() - t0:.0f} s")
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=100_000, help="fuzzed images (numbered 0 .. N-1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--suite", choices=sorted(SUITES), default="long")
    ap.add_argument("--start", type=int, help="first image (default: the reproducers, -%d .. -1, then 0)" % len(REPRODUCERS))
    ap.add_argument("--chunk", type=int, default=5000, help="images per child process")
    ap.add_argument("--only", type=int, help="rebuild image N (a negative N: a reproducer), say what was done to it "
                    "and how the readers take it, and run it")
    ap.add_argument("--dump", help="with --only: write the image to this file")
    ap.add_argument("--json", help="write the tally as JSON here too")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--stop", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--bases", help=argparse.SUPPRESS)
    ap.add_argument("--cursor", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return _worker(args)
    if args.only is not None:
        fz = Fuzzer(build_bases(args.suite), args.seed)
        label, b, edits, _ = fz.image(args.only)
        print(f"image {args.only} of seed {args.seed}: {label}: {'; '.join(edits)}")
        if args.dump:
            Path(args.dump).write_bytes(b)
        print("C loader:", fz.E.load_status(b))
        try:
            unpack(b)
            print("Python reader: accepts")
        except McutoolError as e:
            print("Python reader:", e)
        t = Tally()
        fz.one(args.only, t)
        print(t.summary())
        return 0
    start = -len(REPRODUCERS) if args.start is None else args.start
    t = long_run(args.images - start, args.seed, args.suite, args.chunk, start)
    print(t.summary())
    if args.json:
        Path(args.json).write_text(json.dumps(t.to_json(), indent=1))
    return 1 if t.crashed else 0


if __name__ == "__main__":
    sys.exit(main())
