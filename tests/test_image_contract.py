"""The flash-image reader contract (docs/flash-image.md §6): both readers, one corpus.

Every row of the §6 table is a check both the host reader (image/format.py unpack) and the
C loader (mcu_load) make. The corpus holds at least one crafted image per row, each edited
so that it fails that row and no other; both readers must refuse it, the host reader with
McutoolError.check == row, the C loader with the row's status (the table's "C status"
column) and mcu_model.check == row. A row added to the table without a case here fails
test_corpus_covers_every_row. Most images come from test_image.py's rejection cases (same
edits, same fixtures); the rest are made here.
"""
from __future__ import annotations

import copy
import functools
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import test_image as ti
from conftest import models_dir

from mcutool.errors import McutoolError
from mcutool.image.format import HEADER_SIZE, pack, unpack
from mcutool.native import engine
from mcutool.plan.assemble import layer_by_layer
from mcutool.plan.lower import lower
from mcutool.plan.model import FULL, INPUT, PIXEL, POST, RING, RUN, WINDOW, Buffer, Plan, Step
from mcutool.plan.planner import choose

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "flash-image.md"
HEADER = ROOT / "device" / "engine" / "include" / "mcunet.h"


@functools.lru_cache(maxsize=None)
def doc_rows() -> dict[int, str]:
    """Row number -> C status name, from the §6 table."""
    text = DOC.read_text()
    sec = text[text.index("## 6. Validation a reader must do") : text.index("## 7.")]
    rows = {}
    for n, status in re.findall(r"^\| (\d+) \|[^\n]*?\| `(MCU_ERR_[A-Z_]+)` \|", sec, re.M):
        assert int(n) not in rows, f"row {n} twice in the table"
        rows[int(n)] = status
    return rows


@functools.lru_cache(maxsize=None)
def status_codes() -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(MCU_ERR_[A-Z_]+) = (-\d+)", HEADER.read_text())}


# ---- building the images ------------------------------------------------------------------

def chain():
    return ti._case("small_chain")


def stream():
    return ti._case("small_chain", "stream")


def _edit(pk_or_image, fn):
    image = pk_or_image if isinstance(pk_or_image, (bytes, bytearray)) else pk_or_image.image
    return bytes(ti._edit(image, fn))


def _hdr(fn, image=None):
    """An edit of the header only, its own CRC recomputed (the content CRC still holds)."""
    b = bytearray(image or chain().image)
    fn(b)
    return bytes(ti._rehdr(b))


_CHAIN = {i: f for i, f, _ in ti.CHAIN_CASES}
_STREAM = {i: f for i, f, _ in ti.STREAM_REJECTIONS}
_STRUCT = {r[0]: r for r in ti.STRUCTURE_REJECTIONS}
_SECTION = {p.id: p.values[0] for p in ti.SECTION_CASES}


def from_chain(name):
    return lambda: _edit(chain(), _CHAIN[name])


def from_stream(name):
    return lambda: _edit(stream(), ti._stream_edit(stream().plan, _STREAM[name]))


def from_structure(name):
    _, which, fn, graph_fn, _ = _STRUCT[name]
    return lambda: ti._replan(ti._case(*ti._STRUCTURE_IMAGES[which]), fn, graph_fn)


def from_section(name):
    return lambda: _edit(chain(), _SECTION[name])


def replan(case, fn=None, graph_fn=None, strategy="layer"):
    return lambda: ti._replan(ti._case(case, strategy), fn or (lambda p: None), graph_fn)


def op_index(case, kind):
    """Storage position of the case's first `kind` op (Op.index is the op's number before lowering)."""
    return next(k for k, o in enumerate(ti._case(case).lowered.ops) if o.kind == kind)


def word(case, kind, field, value, extra=0):
    """Parameter word `field` (+extra) of the case's first `kind` op set to value."""
    k = op_index(case, kind)
    return lambda: _edit(ti._case(case), ti._put("<i", ti._w(k, kind, field, extra), (value,)))


def io_index(case, kind, j, tensor):
    """Operand j (inputs, then outputs) of the case's first `kind` op set to tensor."""
    k = op_index(case, kind)
    return lambda: _edit(ti._case(case), ti._put("<h", lambda b: ti._op_io(b, k) + 2 * j, (tensor,)))


def array_value(case, kind, field, index, value):
    """Element `index` of the DATA array of parameter `field` set to value."""
    k = op_index(case, kind)

    def fn(b):
        off = struct.unpack_from("<i", b, ti._w(k, kind, field)(b))[0]
        struct.pack_into("<i", b, ti._sec(b, "DATA")[0] + off + 4 * index, value)
    return lambda: _edit(ti._case(case), fn)


def rq_channel(case, kind, c, mark=None, kq=None, sh=None):
    """Channel c's words of the rq record (ref/conv.py rq_words: kfold, mw, kq, sh) of the
    case's first `kind` op rewritten: mark True / False sets / clears mw's top bit (the slow
    mark), kq and sh replace those words."""
    k = op_index(case, kind)

    def fn(b):
        off = struct.unpack_from("<i", b, ti._w(k, kind, "rq")(b))[0]
        pos = ti._sec(b, "DATA")[0] + off + 16 * c
        _, mw, q, s = struct.unpack_from("<4i", b, pos)
        if mark is not None:
            mw = mw | -(2**31) if mark else mw & 0x7FFFFFFF
        struct.pack_into("<3i", b, pos + 4, mw, q if kq is None else kq, s if sh is None else sh)
    return lambda: _edit(ti._case(case), fn)


def slow_channel(case, kind, c, sh):
    """Channel c made a slow one done right (ref/conv.py rq_words): shift 15 - sh, marked,
    kq 0."""
    return rq_channel(case, kind, c, mark=True, kq=0, sh=sh)


def retensor(case, t, shape=None, dtype=None, plan_kind=None, inplace=True):
    """The case repacked with tensor t reshaped (or retyped), its FULL buffer moved to the
    end of a grown arena: the image stays consistent except for what the op thinks of t."""
    def build():
        g = ti._prepared_case(case)
        low = lower(g)
        plan = copy.deepcopy(layer_by_layer(low, inplace=inplace))
        graph = copy.deepcopy(low.graph)
        x = graph.tensors[t]
        if shape is not None:
            x.shape = tuple(shape)
        if dtype is not None:
            x.dtype = dtype
        hwc = x.shape[1:] if len(x.shape) == 4 and x.shape[0] == 1 else (1, 1, int(np.prod(x.shape)))
        plan.buffers[t] = Buffer(t, plan_kind or FULL, *hwc, offset=plan.arena_bytes)
        plan.arena_bytes += (int(np.prod(hwc)) + 3) // 4 * 4
        return pack(graph, plan)
    return build


def device_plan(case):
    """A layer plan running every op of the case's lowered graph on the device (RUN steps),
    one FULL buffer per activation: for ops the planner leaves on the host (TRANSPOSE)."""
    low = lower(ti._prepared_case(case))
    g = low.graph
    bufs, off = {}, 0
    for t in g.tensors:
        if not t.is_const:
            hwc = t.shape[1:] if len(t.shape) == 4 and t.shape[0] == 1 else (1, 1, int(np.prod(t.shape)))
            bufs[t.index] = Buffer(t.index, FULL, *hwc, offset=off)
            off += (int(np.prod(hwc)) + 3) // 4 * 4
    plan = Plan("layer", [Step(RUN, k) for k in range(len(g.ops))], bufs, arena_bytes=off,
                device_inputs=list(g.inputs), device_outputs=list(g.outputs))
    return g, plan


def on_device(case, graph_fn=None):
    def build():
        g, plan = device_plan(case)
        g = copy.deepcopy(g)
        if graph_fn:
            graph_fn(g)
        return pack(g, plan)
    return build


def _set_data(op_kind, field, fn):
    def graph_fn(g):
        op = next(o for o in g.ops if o.kind == op_kind)
        op.data = dict(op.data)
        op.data[field] = fn(op.data[field])
    return graph_fn


def empty_graph_unterminated_name():
    from mcutool import ir

    image = bytearray(pack(ir.Graph("g", [], [], [], []), Plan("layer", [], {})))
    off, _ = ti._sec(image, "STRINGS")
    image[off + 1] = ord("x")  # "g\0" -> "gx": the graph name runs off the section
    return bytes(ti._recrc(image))


def vww_post_before_device():
    """mcunet_vww1's plan (PRE, device steps, POST) with its POST step moved before the last
    device step: nothing it reads changes (a POST step reads device outputs), only the order."""
    g = ti.load_model(models_dir() / "mcunet_vww1.tflite")
    c = choose(g)
    plan = copy.deepcopy(c.plan)
    i = next(i for i, s in enumerate(plan.steps) if s.kind == POST)
    assert all(k >= 0 or -1 - k not in (i - 1, i) for k in plan.buffers)  # scratch keys name steps
    plan.steps[i - 1], plan.steps[i] = plan.steps[i], plan.steps[i - 1]
    return pack(c.lowered.graph, plan)


def stream_step(kind, op, r0, field, fmt, value):
    """The streamed chain with one field of a step (found by kind, op and first row) changed."""
    return lambda: _edit(stream(), ti._stream_edit(stream().plan, lambda p: (ti._find_step(p, kind, op=op, r0=r0),
                                                                                {field: (fmt, value)})))


def _bump_word(case, kind, field, extra):
    k = op_index(case, kind)

    def fn(b):
        pos = ti._w(k, kind, field, extra)(b)
        struct.pack_into("<i", b, pos, struct.unpack_from("<i", b, pos)[0] + 1)
    return fn


def origins_unsorted():
    """A patch plan whose column-origin list names tensor 12 before tensor 5."""
    image = bytearray(ti._replan(chain(), lambda p: (setattr(p, "strategy", "patch"),
                                                      setattr(p, "col_origin", [{5: 0, 12: 0}]))))
    n_io = 2 * (len(chain().plan.device_inputs) + len(chain().plan.device_outputs))
    pos = ti._plan(image) + ti.P_IO + n_io + 4  # n_patches, count, then the (tensor, column) pairs
    image[pos : pos + 8] = image[pos + 4 : pos + 8] + image[pos : pos + 4]
    return bytes(ti._recrc(image))


def swap_steps(a, b):
    def fn(image):
        pos_a, pos_b = ti._step(image, a), ti._step(image, b)
        image[pos_a : pos_a + 16], image[pos_b : pos_b + 16] = image[pos_b : pos_b + 16], image[pos_a : pos_a + 16]
    return lambda: _edit(chain(), fn)


def swap_buffers(k1, k2):
    def fn(image):
        p1, p2 = ti._buf(image, k1), ti._buf(image, k2)
        image[p1 : p1 + 24], image[p2 : p2 + 24] = image[p2 : p2 + 24], image[p1 : p1 + 24]
    return lambda: _edit(chain(), fn)


# ---- the four attacks of issue 12 ---------------------------------------------------------

def attack_pixel_wrap():
    """A PIXEL buffer of 32768 x 16384 x 8 = 2^32 bytes, size 0, at the arena's end: in
    32 bits rows * width * channels wraps to the size, and the fused depthwise wrote far
    past the arena. 64-bit arithmetic refuses it (check 52)."""
    def fn(b):
        struct.pack_into("<HHHhII", b, ti._buf(b, 8) + ti.B_ROWS, 32768, 16384, 8, -1, ti._u32(b, 24), 0)
    return _edit(stream(), fn)


def attack_ring_taller_than_tensor():
    """A ring of more rows than its tensor has (check 66's "rows <= H")."""
    def fn(p):
        b = p.buffers[0]
        p.buffers[0] = Buffer(0, RING, ti._case("small_chain", "stream").lowered.t(0).shape[1] + 1, b.width,
                              b.channels, p.arena_bytes)
        p.arena_bytes += (p.buffers[0].size + 3) // 4 * 4
    return ti._replan(stream(), fn)


def attack_zero_dim_skips_cap():
    """dims (0, 65535, 65535, 8): the product is 0, so a cap on it alone passes, and the
    32-bit products of the other dims wrap (check 100 caps them with 0 taken as 1)."""
    return _edit(chain(), ti._put("<4I", lambda b: ti._tensor(b, 12) + ti.T_DIMS, (0, 65535, 65535, 8)))


def attack_absent_input(case, kind):
    """A device op whose input 0 is -1: check_whole read tensor entry -1 (check 106)."""
    return io_index(case, kind, 0, -1)


# ---- the corpus: (row, name, build) --------------------------------------------------------

CORPUS = [
    (1, "bad_magic", lambda: b"MCUX" + chain().image[4:]),
    (2, "truncated_header", lambda: chain().image[:50]),
    (2, "three_bytes", lambda: b"MCU"),
    (3, "version_2", lambda: _hdr(ti._put("<H", lambda b: 4, (2,)))),  # an image of the last format
    (3, "version_4", lambda: _hdr(ti._put("<H", lambda b: 4, (4,)))),
    (4, "header_size_64", lambda: _hdr(ti._put("<H", lambda b: 6, (64,)))),
    (5, "header_crc", lambda: bytes(_flip(chain().image, 20))),
    (6, "header_flags", lambda: _hdr(ti._put("<I", lambda b: 8, (1,)))),
    (7, "truncated_body", lambda: chain().image[:-16]),
    (8, "trailing_bytes", lambda: chain().image + bytes(16)),
    (9, "content_crc", lambda: bytes(_flip(chain().image, ti._sec(chain().image, "DATA")[0] + 5))),
    *[(10, f"section_{n}", from_section(n)) for n in ("data_past_end", "plan_past_end", "offset_in_header",
                                                       "offset_past_end", "size_wraps", "misaligned")],
    *[(11, f"section_{n}", from_section(n)) for n in ("overlap_same_start", "overlap_grown", "overlap_plan_sections")],
    (11, "empty_section_inside_another", lambda: _edit(chain(), lambda b: ti._set_sec(b, "IO", ti._sec(b, "OPS")[0] + 16, 0))),
    (99, "too_many_tensors", lambda: _hdr(ti._put("<H", lambda b: 20, (40000,)))),
    (12, "tensor_count", from_chain("tensor_count")),
    (13, "dtype_0", from_chain("dtype_0")),
    (13, "dtype_8", from_chain("dtype_8")),
    (14, "rank_5", from_chain("rank_5")),
    (15, "flags_unknown", from_chain("flags_unknown")),
    (16, "tensor_reserved_byte", lambda: _edit(chain(), ti._put("<B", lambda b: ti._tensor(b, 5) + 3, (9,)))),
    (100, "const_dims_overflow", from_chain("const_dims_overflow")),
    (100, "activation_dims_overflow", from_chain("activation_dims_overflow")),
    (100, "attack_zero_dim_skips_cap", attack_zero_dim_skips_cap),
    (100, "dims_past_rank", lambda: _edit(chain(), ti._put("<I", lambda b: ti._tensor(b, 18) + ti.T_DIMS + 8, (5,)))),
    (18, "quant_past_data", from_chain("quant_past_data")),
    (17, "quant_misaligned", from_chain("quant_misaligned")),
    (17, "quant_header_past_data", lambda: _edit(chain(), ti._put("<I", lambda b: ti._tensor(b, 4) + ti.T_QOFF,
                                                                  lambda b: ((ti._data_len(b) + 15) // 16 * 16,)))),
    (18, "quant_channels_huge", from_chain("quant_channels_huge")),
    (18, "quant_channels_zero", from_chain("quant_channels_zero")),
    (19, "quant_channels_past_data", from_chain("quant_channels_past_data")),
    (20, "quant_axis", from_chain("quant_axis")),
    (21, "quant_flag_cleared", from_chain("quant_flag_cleared")),
    (22, "const_input", from_chain("const_input")),
    (23, "const_data_past_data", from_chain("const_data_past_data")),
    (23, "const_data_none", from_chain("const_data_none")),
    (23, "const_data_misaligned", from_chain("const_data_misaligned")),
    (23, "const_data_size", from_chain("const_data_size")),
    (24, "arena_misaligned", from_chain("arena_misaligned")),
    (25, "arena_past_end", from_chain("arena_past_end")),
    (26, "name_offset_out", from_chain("name_offset_out")),
    (26, "name_unterminated", from_chain("name_unterminated")),
    (26, "strings_empty", from_chain("strings_empty")),
    (27, "ops_count", from_chain("ops_count")),
    (28, "op_offset_out", from_chain("op_offset_out")),
    (28, "op_offset_misaligned", from_chain("op_offset_misaligned")),
    (29, "opcode_0", from_chain("opcode_0")),
    (29, "opcode_999", from_chain("opcode_999")),
    (30, "op_reserved_half_word", lambda: _edit(chain(), ti._put("<H", lambda b: ti._op(b, 1) + 6, (9,)))),
    (31, "params_overrun", from_chain("params_overrun")),
    (32, "op_tensor_index_high", from_chain("op_tensor_index_high")),
    (32, "op_tensor_index_low", from_chain("op_tensor_index_low")),
    (32, "op_output_absent", from_chain("op_output_absent")),
    (33, "op_no_output", from_chain("op_no_output")),
    (34, "params_short", from_chain("params_short")),
    (35, "bool_mean_empty", word("mean_hw_keepdims_diffscale", "MEAN", "empty", 2)),
    (36, "array_past_data", from_chain("array_past_data")),
    (36, "array_misaligned", from_chain("array_misaligned")),
    (36, "array_negative_offset", from_chain("array_negative_offset")),
    (36, "array_negative_count", from_chain("array_negative_count")),
    (36, "array_huge_count", from_chain("array_huge_count")),
    (37, "list_mean_axes", word("mean_hw_keepdims_diffscale", "MEAN", "axes", 5)),
    (37, "pairs_pad", word("pad_hw", "PAD", "paddings", -1)),
    (38, "enum_fc_rounding", from_chain("enum_fc_rounding")),
    (38, "enum_softmax_negative", from_chain("enum_softmax_negative")),
    (39, "params_long", from_chain("params_long")),
    (40, "io_empty", from_chain("io_empty")),
    (41, "io_counts", from_chain("io_counts")),
    (42, "io_out_of_range", from_chain("io_out_of_range")),
    (43, "io_disagrees_with_flags", from_chain("io_disagrees_with_flags")),
    (43, "io_flag_missing", from_chain("io_flag_missing")),
    (44, "graph_name_unterminated", empty_graph_unterminated_name),
    (45, "schedule_empty", from_chain("schedule_empty")),
    (46, "schedule_count", from_chain("schedule_count")),
    (46, "schedule_count_huge", from_chain("schedule_count_huge")),
    (46, "schedule_one_byte_short", from_chain("schedule_one_byte_short")),
    (47, "step_kind_0", from_chain("step_kind_0")),
    (47, "step_kind_6", from_chain("step_kind_6")),
    (47, "step_flags", from_chain("step_flags")),
    (48, "buffers_empty", from_chain("buffers_empty")),
    (49, "buffers_count", from_chain("buffers_count")),
    (49, "buffers_one_byte_short", from_chain("buffers_one_byte_short")),
    (50, "buffer_kind", from_chain("buffer_kind")),
    (50, "buffer_reserved_byte", from_chain("buffer_reserved_byte")),
    (50, "buffer_reserved_word", from_chain("buffer_reserved_word")),
    (51, "buffer_duplicate", from_chain("buffer_duplicate")),
    (101, "buffers_unsorted", swap_buffers(5, 8)),
    (52, "buffer_size_field", from_chain("buffer_size_field")),
    (52, "attack_pixel_wrap", attack_pixel_wrap),
    (53, "buffer_past_arena", from_chain("buffer_past_arena")),
    (53, "buffer_offset_wraps", from_chain("buffer_offset_wraps")),
    (54, "buffer_misaligned", from_chain("buffer_misaligned")),
    (55, "ring_of_0_rows", lambda: _edit(stream(), _ring_of_0_rows)),
    (56, "alias_missing", from_chain("alias_missing")),
    (56, "alias_self", from_chain("alias_self")),
    (56, "alias_negative", from_chain("alias_negative")),
    (57, "alias_elsewhere", from_chain("alias_elsewhere")),
    (58, "alias_cycle", from_chain("alias_cycle")),
    (59, "plan_empty", from_chain("plan_empty")),
    (60, "plan_strategy", from_chain("plan_strategy")),
    (60, "plan_halo", from_chain("plan_halo")),
    (60, "plan_flags", from_chain("plan_flags")),
    (61, "plan_io_cut", from_chain("plan_io_cut")),
    (61, "plan_patches_cut", from_chain("plan_patches_cut")),
    (61, "plan_io_count", from_chain("plan_io_count")),
    (61, "plan_patch_count", from_chain("plan_patch_count")),
    (102, "no_device_output", replan("small_chain", lambda p: setattr(p, "device_outputs", []))),
    (102, "nine_device_inputs", replan("small_chain", lambda p: setattr(p, "device_inputs", [0] * 9))),
    (68, "origin_tensor_out_of_range", from_chain("origin_tensor_out_of_range")),
    (103, "origins_in_layer_plan", replan("small_chain", lambda p: setattr(p, "col_origin", [{5: 0}]))),
    (103, "origins_unsorted", origins_unsorted),
    (62, "buffer_tensor_out_of_range", from_chain("buffer_tensor_out_of_range")),
    (63, "scratch_past_schedule", from_chain("scratch_past_schedule")),
    (64, "buffer_on_constant", from_chain("buffer_on_constant")),
    (65, "arena_offset_disagrees", from_chain("arena_offset_disagrees")),
    (65, "arena_offset_missing", from_chain("arena_offset_missing")),
    (66, "buffer_smaller_than_tensor", from_chain("buffer_smaller_than_tensor")),
    (66, "full_buffer_reshaped", from_chain("full_buffer_reshaped")),
    (66, "ring_for_flat_tensor", from_chain("ring_for_flat_tensor")),
    (66, "pixel_of_wrong_depth", from_chain("pixel_of_wrong_depth")),
    (66, "attack_ring_taller_than_tensor", attack_ring_taller_than_tensor),
    (67, "arena_offset_without_buffer", from_chain("arena_offset_without_buffer")),
    (69, "device_input_without_buffer", from_chain("device_input_without_buffer")),
    (69, "device_output_out_of_range", from_chain("device_output_out_of_range")),
    (104, "device_output_uint8", lambda: _edit(chain(), ti._put("<B", lambda b: ti._tensor(b, 19) + ti.T_DTYPE, (4,)))),
    (105, "device_output_in_a_ring", lambda: _edit(ti._case("conv_3x3_same"),
                                                   ti._put("<B", lambda b: ti._buf(b, 3) + ti.B_KIND, (1,)))),
    (70, "post_before_device_step", vww_post_before_device),
    (71, "step_patch_out_of_range", from_chain("step_patch_out_of_range")),
    (72, "input_on_non_input", from_stream("input_on_non_input")),
    (73, "input_rows_outside", from_stream("input_rows_outside")),
    (73, "input_empty", from_stream("input_empty")),
    (128, "input_part_of_a_row", lambda: _edit(stream(), ti._stream_edit(
        stream().plan, lambda p: (ti._find_step(p, INPUT), {ti.S_C1: ("<H", 14)})))),
    (74, "input_more_rows_than_ring", from_stream("input_more_rows_than_ring")),
    (75, "step_op_out_of_range", replan("small_chain", lambda p: p.steps.append(Step(RUN, 8)))),
    (75, "step_op_negative", replan("small_chain", lambda p: p.steps.append(Step(POST, -1)))),
    (76, "fused_not_feeding", stream_step(WINDOW, 2, 3, ti.S_FUSED, "<h", 0)),
    (76, "fused_out_of_range", stream_step(WINDOW, 2, 3, ti.S_FUSED, "<h", 99)),
    (76, "fused_into_op_0", stream_step(WINDOW, 0, 5, ti.S_FUSED, "<h", 1)),
    (76, "fused_on_run", from_stream("fused_on_run")),
    (77, "fused_into_add", from_structure("fused_into_non_1x1")),
    (78, "step_repeats_op", from_chain("step_repeats_op")),
    (78, "window_op_already_run_whole", from_stream("window_op_already_run_whole")),
    (78, "windowed_op_also_run_whole", from_stream("windowed_op_also_run_whole")),
    (79, "steps_swapped", swap_steps(0, 1)),
    (79, "run_reads_host_tensor", from_chain("run_reads_host_tensor")),
    (79, "device_input_moved", from_chain("device_input_moved")),
    (80, "fused_output_without_buffer", from_structure("fused_output_without_buffer")),
    (81, "output_without_buffer", from_structure("output_without_buffer")),
    (82, "run_reads_ring", from_chain("run_reads_ring")),
    (83, "window_not_streamable", from_chain("window_not_streamable")),
    (83, "inplace_window", from_chain("inplace_window")),
    (84, "window_outside_output", from_chain("window_outside_output")),
    (84, "window_empty", from_chain("window_empty")),
    (84, "window_columns_outside", from_stream("window_columns_outside")),
    (85, "fused_op_also_windowed", from_stream("fused_op_also_windowed")),
    (86, "window_more_rows_than_ring", from_stream("window_more_rows_than_ring")),
    (86, "window_outside_narrow_buffer", from_structure("window_outside_narrow_buffer")),
    (87, "window_reads_more_than_ring", from_stream("window_reads_more_than_ring")),
    (88, "fused_output_not_pixel", from_structure("fused_output_not_pixel")),
    (89, "inplace_not_aliased", from_chain("inplace_not_aliased")),
    (89, "inplace_without_alias", from_structure("inplace_without_alias")),
    (90, "inplace_op_kind", from_chain("inplace_op_kind")),
    (91, "inplace_without_scratch", from_structure("inplace_without_scratch")),
    (91, "inplace_scratch_too_small", from_structure("inplace_scratch_too_small")),
    (92, "scratch_of_other_step", from_structure("scratch_of_other_step")),
    (93, "pixel_not_fused", from_structure("pixel_not_fused")),
    (94, "streamed_flag_without_input_steps", from_chain("streamed_flag_without_input_steps")),
    (94, "input_steps_not_flagged", from_structure("input_steps_not_flagged")),
    (95, "schedule_short", from_chain("schedule_short")),
    (96, "device_input_not_from_host", from_structure("device_input_not_from_host")),
    (97, "device_output_never_computed", from_structure("device_output_never_computed")),
    (98, "graph_output_not_device_output", from_chain("graph_output_not_device_output")),
    # the ops the device runs
    (106, "attack_pool_input_absent", lambda: attack_absent_input("small_chain", "AVERAGE_POOL_2D")()),
    (106, "attack_resize_input_absent", lambda: attack_absent_input("resize_nn_2x", "RESIZE_NEAREST_NEIGHBOR")()),
    (106, "add_input_absent", io_index("add", "ADD", 1, -1)),
    (106, "batch_2_map", retensor("fc_4d_input", 0, shape=(2, 2, 2, 4))),
    (107, "conv_stride_0", word("small_chain", "CONV_2D", "stride", 0)),
    (107, "dw_depth_multiplier_huge", word("dw_dm2", "DEPTHWISE_CONV_2D", "depth_multiplier", 0x40000000)),
    # the rq record (row 107): its count, the shift's range (sh - 15 in [-30, 31]), the slow
    # mark exactly where r = sh - 15 is outside [0, 16], kq (small_chain's channels are fast)
    (107, "conv_rq_count_short", word("small_chain", "CONV_2D", "rq", 31, extra=1)),
    (107, "conv_rq_count_a_channel_more", word("small_chain", "CONV_2D", "rq", 36, extra=1)),
    (107, "dw_rq_count", word("small_chain", "DEPTHWISE_CONV_2D", "rq", 28, extra=1)),
    (107, "conv_kq_fast", array_value("small_chain", "CONV_2D", "rq", 2, 12345)),
    (107, "conv_kq_of_r_0", rq_channel("small_chain", "CONV_2D", 0, kq=1 << 14)),  # channel 0 has r = 6
    (107, "dw_kq_zero_on_fast", rq_channel("small_chain", "DEPTHWISE_CONV_2D", 7, kq=0)),
    (107, "conv_kq_on_slow", rq_channel("small_chain", "CONV_2D", 0, mark=True, kq=1 << 14, sh=32)),
    (107, "conv_slow_mark_on_fast", rq_channel("small_chain", "CONV_2D", 3, mark=True)),
    (107, "dw_slow_mark_on_fast", rq_channel("small_chain", "DEPTHWISE_CONV_2D", 0, mark=True)),
    (107, "conv_slow_mark_missing_r_17", rq_channel("small_chain", "CONV_2D", 0, mark=False, kq=0, sh=32)),
    (107, "conv_slow_mark_missing_r_minus_1", rq_channel("small_chain", "CONV_2D", 7, mark=False, kq=0, sh=14)),
    (107, "conv_sh_47", slow_channel("small_chain", "CONV_2D", 0, 47)),  # shift -32
    (107, "conv_sh_minus_16", slow_channel("small_chain", "CONV_2D", 7, -16)),  # shift 31
    (107, "dw_sh_47", slow_channel("small_chain", "DEPTHWISE_CONV_2D", 7, 47)),
    (108, "fc_shift_range", array_value("small_chain", "FULLY_CONNECTED", "shift", 0, 31)),
    (108, "fc_bias_not_const", lambda: _edit(chain(), ti._put("<h", lambda b: ti._op_io(b, 6) + 4, (15,)))),
    (108, "fc_input_offset", word("small_chain", "FULLY_CONNECTED", "input_offset", 256)),
    (108, "fc_output_offset", word("small_chain", "FULLY_CONNECTED", "output_offset", -2**31)),
    (108, "fc_act_max", word("small_chain", "FULLY_CONNECTED", "act_max", 128)),
    (109, "add_left_shift", word("small_chain", "ADD", "left_shift", 25)),
    (109, "add_act_max", word("small_chain", "ADD", "act_max", 2**31 - 1)),
    (109, "add_input2_offset", word("small_chain", "ADD", "input2_offset", -256)),
    (109, "add_output_offset", word("small_chain", "ADD", "output_offset", 128)),
    (110, "mul_shift", word("mul", "MUL", "output_shift", 31)),
    (110, "mul_input1_offset", word("mul", "MUL", "input1_offset", 2**31 - 1)),
    (110, "mul_act_min", word("mul", "MUL", "act_min", -129)),
    (111, "pool_stride_0", word("small_chain", "AVERAGE_POOL_2D", "stride", 0)),
    (112, "requantize_shift", word("requantize_i8_to_i8", "QUANTIZE", "shift", 31)),
    (112, "requantize_zero_point", word("requantize_i8_to_i8", "QUANTIZE", "zero_point", 2**31 - 1)),
    (112, "requantize_input_zero_point", word("requantize_i8_to_i8", "QUANTIZE", "input_zero_point", -256)),
    (113, "mean_axis_7", word("mean_hw_keepdims_diffscale", "MEAN", "axes", 7, extra=1)),
    (113, "transpose_perm_4", on_device("transpose_nhwc_to_nchw", _set_data("TRANSPOSE", "perm", lambda p: (4,) + p[1:]))),
    (114, "pad_5000", word("pad_hw", "PAD", "paddings", 5000, extra=3)),
    (115, "resize_index_outside", array_value("resize_nn_2x", "RESIZE_NEAREST_NEIGHBOR", "in_y", 0, 99)),
    (116, "add_writes_uint8", lambda: _edit(chain(), ti._put("<B", lambda b: ti._tensor(b, 12) + ti.T_DTYPE, (4,)))),
    (117, "pool_channels", io_index("small_chain", "AVERAGE_POOL_2D", 0, 0)),
    (118, "logistic_shape", retensor("logistic", 1, shape=(1, 4, 4, 9))),
    (118, "requantize_shape", retensor("requantize_i8_to_i8", 1, shape=(1, 2, 2, 2))),
    (119, "add_broadcast", io_index("small_chain", "ADD", 1, 0)),
    (120, "fc_input_elements", io_index("small_chain", "FULLY_CONNECTED", 0, 12)),
    (121, "softmax_out_dtype", word("small_chain", "SOFTMAX", "out_dtype", 1)),
    (122, "reshape_elements", lambda: ti._replan(
        ti._packed(ti._prepared_case("small_chain"), lower(ti._prepared_case("small_chain")).graph,
                   layer_by_layer(lower(ti._prepared_case("small_chain")), inplace=False)),
        lambda p: None, lambda g: setattr(g.ops[5], "inputs", [12, 14]))),
    (123, "mean_elements", word("mean_hw_keepdims_diffscale", "MEAN", "num_elements_in_axis", 7)),
    (124, "transpose_perm_twice", on_device("transpose_nhwc_to_nchw", _set_data("TRANSPOSE", "perm", lambda p: (0, 1, 1, 2)))),
    (125, "pad_shape", lambda: _edit(ti._case("pad_hw"), _bump_word("pad_hw", "PAD", "paddings", 3))),
    (126, "concat_axis", word("concat_channels", "CONCATENATION", "axis", 1)),
    (127, "resize_channels", lambda: _resize_channels()),
    (116, "add_reads_int32_constant", io_index("small_chain", "ADD", 0, 6)),  # the fuzzer's find: a bias as data
    (129, "softmax_left_shift_32", word("small_chain", "SOFTMAX", "input_left_shift", 32)),
    (129, "logistic_left_shift_32", word("logistic", "LOGISTIC", "input_left_shift", 32)),
    (129, "logistic_radius_negative", word("logistic", "LOGISTIC", "input_range_radius", -2**31)),
    (129, "hard_swish_output_exponent_1", word("hard_swish", "HARD_SWISH", "output_multiplier_exponent", 1)),
    (129, "hard_swish_reluish_exponent", word("hard_swish", "HARD_SWISH", "reluish_multiplier_exponent", 32767)),
    (129, "hard_swish_zero_point", word("hard_swish", "HARD_SWISH", "output_zero_point", 2**31 - 1)),
]


def _flip(image, pos):
    b = bytearray(image)
    b[pos] ^= 1
    return b


def _ring_of_0_rows(b):
    struct.pack_into("<H", b, ti._buf(b, 0) + ti.B_ROWS, 0)
    struct.pack_into("<I", b, ti._buf(b, 0) + ti.B_SIZE, 0)


def _resize_channels():
    low = ti._case("resize_nn_2x").lowered
    t = low.ops[0].outputs[0]
    shape = low.t(t).shape
    return retensor("resize_nn_2x", t, shape=tuple(shape[:3]) + (shape[3] + 1,))()


@pytest.fixture(scope="module")
def c_engine():
    return engine()


@pytest.mark.parametrize("row,build", [pytest.param(r, b, id=f"{r}-{n}") for r, n, b in CORPUS])
def test_both_readers_refuse(c_engine, row, build):
    image = bytes(build())
    with pytest.raises(McutoolError) as e:
        unpack(image)
    assert e.value.check == row, f"the host reader failed check {e.value.check}, not {row}: {e.value}"
    want = status_codes()[doc_rows()[row]]
    code, msg, check = c_engine.load_status(image)
    assert (code, check) == (want, row), f"mcu_load: status {code} ({msg}), check {check}; the table says {want}, {row}"


def test_corpus_covers_every_row():
    rows = doc_rows()
    assert sorted(rows) == list(range(1, max(rows) + 1)), "the table's rows are numbered 1..N without gaps"
    missing = sorted(set(rows) - {r for r, _, _ in CORPUS})
    assert not missing, f"rows without a crafted image: {missing}"
    assert {r for r, _, _ in CORPUS} <= set(rows), "a corpus case names a row the table lacks"


def test_table_statuses_are_the_engines():
    codes = status_codes()
    assert set(doc_rows().values()) <= set(codes)


def test_valid_images_pass_both_readers(c_engine):
    """The images the corpus edits are themselves accepted, with check 0."""
    for pk in (chain(), stream(), ti._case("dw_3x3_same"), ti._case("resize_nn_2x"), ti._case("mean_hw_keepdims_diffscale")):
        unpack(pk.image)
        assert c_engine.load_status(pk.image) == (0, "ok", 0)
    # the start of the quantization record cases (rows 17-21): a record pack no longer writes
    image = _edit(chain(), ti.QREC4)
    g, _ = unpack(image)
    assert g.t(4).quant.scale.size == 8 and c_engine.load_status(image) == (0, "ok", 0)
    # the rq record at the edges of row 107: slow channels at r = 31, -30, 17 and -1, fast
    # ones at r = 0 and 16 (kq 2^14 and 2^14 + 2^30)
    edges = [slow_channel("small_chain", "CONV_2D", c, sh) for c, sh in ((0, 46), (1, -15), (2, 32), (3, 14))]
    edges += [rq_channel("small_chain", "CONV_2D", 4, kq=1 << 14, sh=15),
              rq_channel("small_chain", "CONV_2D", 5, kq=(1 << 14) + (1 << 30), sh=31),
              slow_channel("small_chain", "DEPTHWISE_CONV_2D", 0, 46)]
    for build in edges:
        image = build()
        unpack(image)
        assert c_engine.load_status(image) == (0, "ok", 0)
    g, plan = device_plan("transpose_nhwc_to_nchw")
    image = pack(g, plan)
    unpack(image)
    assert c_engine.load_status(image)[::2] == (0, 0)


def test_other_errors_have_no_check(tmp_path):
    with pytest.raises(McutoolError) as e:
        ti.read_image(tmp_path / "missing.mcu")
    assert e.value.check == 0
