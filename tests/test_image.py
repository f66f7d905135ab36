"""Flash image format v3 (docs/flash-image.md): round trips, alignment, every rejection, fuzz.

An image holds a lowered graph and a plan made for it. Every model is packed twice: with a
layer-by-layer plan, and with a plan that streams (the planner's choice for the shared
models, `plan_stream` at the largest split for generated cases that have a streamable
prefix). Rejection tests edit one field of a real image (or, for a structural change, the
plan it was packed from) and recompute the CRC, so the check they reach is the one they
target; the fuzz feeds mutated images to `unpack` and accepts only success or McutoolError.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import re
import struct
import time
import zlib
from dataclasses import dataclass

import numpy as np
import pytest

import modelgen
from mcutool import ir
from mcutool.errors import McutoolError
from mcutool.image import planrec
from mcutool.image.format import (
    ALIGN,
    HEADER_SIZE,
    NONE32,
    SECTIONS,
    TENSOR_ENTRY,
    VERSION,
    pack,
    read_header,
    read_image,
    unpack,
)
from mcutool.image.opparams import BOOL, F32, I32, LAYOUTS
from mcutool.model import load_model
from mcutool.plan.assemble import layer_by_layer
from mcutool.plan.lower import lower
from mcutool.plan.model import FULL, INPUT, PIXEL, POST, PRE, RING, RUN, WINDOW, Buffer, Plan, Step
from mcutool.plan.planner import choose
from mcutool.plan.stream import max_split, plan_stream
from mcutool.quant.prepare import prepare_graph
from mcutool.ref.executor import run
from mcutool.ref.plan_exec import run_plan
from mcutool.tflite_import import parse_tflite

SHARED_INT8 = ["person_detect", "mcunet_vww1", "mcunet_person_det", "fomo_mask_int8", "mobilenet_v2_224_int8"]
CASE_IDS = [cid for cid, _ in modelgen.CASES]
_FACTORIES = dict(modelgen.CASES)


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


@functools.lru_cache(maxsize=None)
def _prepared_case(cid: str):
    """The prepared graph of a generated case, or None if mcutool refuses it."""
    try:
        return prepare_graph(parse_tflite(_FACTORIES[cid](np.random.default_rng(_seed(cid)))))
    except McutoolError:
        return None


# generated cases whose lowered graph starts with a streamable op
STREAM_CASES = [cid for cid in CASE_IDS if _prepared_case(cid) is not None and max_split(lower(_prepared_case(cid))) > 0]


def _random_inputs(graph, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = []
    for i in graph.inputs:
        t = graph.t(i)
        if t.dtype == "float32":
            xs.append(rng.uniform(-3.0, 3.0, t.shape).astype(np.float32))
        else:
            info = np.iinfo(t.dtype)
            xs.append(rng.integers(info.min, info.max, t.shape, endpoint=True).astype(t.dtype))
    return xs


@dataclass(frozen=True)
class Packed:
    graph: ir.Graph  # the prepared graph, before lowering: the reference for outputs
    lowered: ir.Graph  # what the image stores
    plan: Plan
    image: bytes


def _packed(g, lowered, plan) -> Packed:
    return Packed(g, lowered, plan, pack(lowered, plan))


@functools.lru_cache(maxsize=None)
def _shared(models_dir, name: str, strategy: str) -> Packed:
    g = load_model(models_dir / f"{name}.tflite")
    if strategy == "layer":
        low = lower(g)
        return _packed(g, low.graph, layer_by_layer(low))
    c = choose(g)
    return _packed(g, c.lowered.graph, c.plan)


@functools.lru_cache(maxsize=None)
def _case(cid: str, strategy: str = "layer") -> Packed:
    g = _prepared_case(cid)
    low = lower(g)
    plan = layer_by_layer(low) if strategy == "layer" else plan_stream(low, max_split(low))
    return _packed(g, low.graph, plan)


@pytest.fixture(scope="module")
def shared(models):
    """(model name, "layer" | "planner") -> Packed, built on first use."""
    return lambda name, strategy: _shared(models, name, strategy)


# ---- image surgery ----------------------------------------------------------------------


def _u32(b, off):
    return struct.unpack_from("<I", b, off)[0]


def _sec(b, name):
    """(offset, size) of a section, read from the header without validation."""
    return struct.unpack_from("<II", b, 32 + 8 * SECTIONS.index(name))


def _set_sec(b, name, off, size):
    struct.pack_into("<II", b, 32 + 8 * SECTIONS.index(name), off, size)


def _rehdr(b):
    """Recompute only the header's own CRC, so a content check is the one reached."""
    struct.pack_into("<I", b, 28, 0)
    struct.pack_into("<I", b, 28, zlib.crc32(bytes(b[:HEADER_SIZE])) & 0xFFFFFFFF)
    return b


def _recrc(b):
    """Recompute both checksums: the content CRC, then the header's own."""
    struct.pack_into("<I", b, 16, zlib.crc32(bytes(b[HEADER_SIZE:])) & 0xFFFFFFFF)
    return _rehdr(b)


def _tensor(b, i):
    """Absolute offset of tensor entry i."""
    return _sec(b, "TENSORS")[0] + TENSOR_ENTRY * i


# byte offsets inside a 48-byte tensor entry
T_DTYPE, T_RANK, T_FLAGS, T_DIMS, T_SCALE, T_ZP = 0, 1, 2, 4, 20, 24
T_DOFF, T_DSIZE, T_AOFF, T_NAME, T_QOFF = 28, 32, 36, 40, 44


def _op(b, k):
    """Absolute offset of op k's record."""
    ops = _sec(b, "OPS")[0]
    return ops + _u32(b, ops + 4 * k)


def _op_io(b, k):
    """Absolute offset of op k's tensor index list."""
    return _op(b, k) + 8


def _op_words(b, k):
    """Absolute offset of op k's first parameter word."""
    pos = _op(b, k)
    _, n_in, n_out, _, _ = struct.unpack_from("<HBBHH", b, pos)
    rel = pos - _sec(b, "OPS")[0]
    return _sec(b, "OPS")[0] + (rel + 8 + 2 * (n_in + n_out) + 3) // 4 * 4


# SCHEDULE: u32 count, then 16-byte steps; byte offsets inside a step
STEP, S_KIND, S_FLAGS, S_OP, S_R0, S_R1, S_C0, S_C1, S_PATCH, S_FUSED = 16, 0, 1, 2, 4, 6, 8, 10, 12, 14
# BUFFERS: u32 count, then 24-byte buffers; byte offsets inside a buffer
BUF, B_KEY, B_KIND, B_RES0, B_ROWS, B_WIDTH, B_CH, B_ALIAS, B_OFF, B_SIZE, B_RES1 = 24, 0, 2, 3, 4, 6, 8, 10, 12, 16, 20
# PLAN: byte offsets of the fixed part, then the device input/output lists
P_STRATEGY, P_HALO, P_SPLIT, P_GRID, P_FLAGS, P_MACS, P_BASE, P_NIN, P_NOUT, P_IO = 0, 1, 2, 4, 8, 12, 20, 28, 30, 32


def _step(b, i):
    """Absolute offset of schedule step i."""
    return _sec(b, "SCHEDULE")[0] + 4 + STEP * i


def _buf(b, key):
    """Absolute offset of the buffer record for tensor `key` (or a step's scratch, -1-step)."""
    off, _ = _sec(b, "BUFFERS")
    for i in range(_u32(b, off)):
        pos = off + 4 + BUF * i
        if struct.unpack_from("<h", b, pos)[0] == key:
            return pos
    raise KeyError(key)


def _plan(b):
    return _sec(b, "PLAN")[0]


def _field_words(kind) -> int:
    """Words a field of opparams.LAYOUTS takes in the record."""
    if kind in (I32, F32, BOOL):
        return 1
    tag, n = kind
    if tag == I32:
        return n
    if tag == "arr":
        return 2
    if tag == "list":
        return 1 + n
    if tag == "pairs":
        return 1 + 2 * n
    assert tag == "enum", kind
    return 1


def word_index(op_kind: str, field: str) -> int:
    """Index of the first word of `field` in an op's parameter record."""
    pos = 0
    for name, kind in LAYOUTS[op_kind]:
        if name == field:
            return pos
        pos += _field_words(kind)
    raise KeyError(field)


def record_words(op_kind: str) -> int:
    return sum(_field_words(k) for _, k in LAYOUTS[op_kind])


def _arrays(graph, b):
    """Absolute offsets of every constant, quantization record and parameter array."""
    data = _sec(b, "DATA")[0]
    offs = []
    for i, t in enumerate(graph.tensors):
        e = _tensor(b, i)
        for field in (T_DOFF, T_QOFF):
            v = _u32(b, e + field)
            if v != NONE32:
                offs.append(("tensor", i, field, data + v))
    for k, op in enumerate(graph.ops):
        w = _op_words(b, k)
        pos = 0
        for name, kind in LAYOUTS[op.kind]:
            if not isinstance(kind, str) and kind[0] == "arr":
                offs.append(("op", k, name, data + struct.unpack_from("<i", b, w + 4 * pos)[0]))
            pos += _field_words(kind)
    return offs


# ---- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain():
    """small_chain, layer by layer. Lowered: the PAD is folded into the first conv, so
    ops 0 CONV_2D [0, 4, 3] -> 5, 1 DEPTHWISE_CONV_2D [5, 7, 6] -> 8, 2 CONV_2D 1x1
    [8, 10, 9] -> 11, 3 ADD [5, 11] -> 12, 4 AVERAGE_POOL_2D [12] -> 13, 5 RESHAPE
    [13, 14] -> 15 (in place), 6 FULLY_CONNECTED [15, 17, 16] -> 18, 7 SOFTMAX [18] -> 19.
    Tensor 1 (the PAD's paddings) is a constant nobody reads, tensor 2 (its output) an
    activation nobody makes: it has no buffer. One step per op, step s runs op s."""
    return _case("small_chain")


@pytest.fixture(scope="module")
def chain_stream():
    """small_chain with ops 0-4 streamed: INPUT steps deliver rows of tensor 0 (a ring),
    the 1x1 conv (op 2) takes the depthwise (op 1) fused, tensor 8 is a pixel buffer;
    then RUN steps for ops 5-7."""
    return _case("small_chain", "stream")


@pytest.fixture(scope="module")
def dw():
    """dw_3x3_same: one DEPTHWISE_CONV_2D run in place (tensor 3 aliases tensor 0) with
    the scratch buffer of step 0 (key -1)."""
    return _case("dw_3x3_same")


# ---- round trips ------------------------------------------------------------------------

PLAN_FIELDS = ("strategy", "steps", "arena_bytes", "scratch_bytes", "col_origin", "split", "grid", "halo", "macs",
               "base_macs", "device_inputs", "device_outputs", "streamed_input")


def _buffer_fields(b: Buffer):
    return (b.tensor, b.kind, b.rows, b.width, b.channels, b.offset, b.alias_of, [tuple(x) for x in b.live])


def _same_outputs(want, got):
    assert len(want) == len(got)
    for w, y in zip(want, got):
        assert w.dtype == y.dtype and w.shape == y.shape
        np.testing.assert_array_equal(w, y)


def _check_round_trip(pk: Packed, seed: int) -> None:
    g2, p2 = unpack(pk.image)
    assert pack(g2, p2) == pk.image  # byte-identical repack
    # the lowered graph, ops in storage order
    assert [(o.kind, list(o.inputs), list(o.outputs)) for o in g2.ops] == \
        [(o.kind, list(o.inputs), list(o.outputs)) for o in pk.lowered.ops]
    assert [(t.name, tuple(t.shape), t.dtype, t.is_const) for t in g2.tensors] == \
        [(t.name, tuple(t.shape), t.dtype, t.is_const) for t in pk.lowered.tensors]
    assert (g2.inputs, g2.outputs) == (list(pk.lowered.inputs), list(pk.lowered.outputs))
    # the plan, every field; buffer lifetimes are recomputed by unpack and must agree
    for f in PLAN_FIELDS:
        assert getattr(p2, f) == getattr(pk.plan, f), f
    assert {k: _buffer_fields(b) for k, b in p2.buffers.items()} == \
        {k: _buffer_fields(b) for k, b in pk.plan.buffers.items()}
    # the unpacked plan, followed in a poisoned arena, computes what the original graph does
    xs = _random_inputs(pk.graph, seed)
    want = run(pk.graph, xs)
    _same_outputs(want, run(g2, xs))
    _same_outputs(want, run_plan(g2, p2, xs))


@pytest.mark.parametrize("strategy", ["layer", "planner"])
@pytest.mark.parametrize("name", SHARED_INT8)
def test_round_trip_shared_model(shared, name, strategy):
    pk = shared(name, strategy)
    if strategy == "planner":
        assert pk.plan.strategy != "layer", "the planner should find a staged plan for every shared model"
    _check_round_trip(pk, _seed(name))


@pytest.mark.parametrize("cid", CASE_IDS)
def test_round_trip_generated_case(cid):
    if _prepared_case(cid) is None:
        pytest.skip("mcutool refuses this case at prepare time")
    _check_round_trip(_case(cid), _seed(cid))


@pytest.mark.parametrize("cid", STREAM_CASES)
def test_round_trip_generated_case_streamed(cid):
    pk = _case(cid, "stream")
    assert any(s.kind == WINDOW for s in pk.plan.steps)
    _check_round_trip(pk, _seed(cid))


def test_round_trip_patch_plans(shared):
    """Patches carry per-patch column origins and rings narrower than their tensor."""
    patches = pytest.importorskip("mcutool.plan.patches")
    g = shared("person_detect", "layer").graph
    low = lower(g)
    seen_origin = False
    for split, n, m in ((2, 2, 2), (6, 3, 2), (12, 2, 3)):
        p = patches.plan_patches(low, split, n, m)
        seen_origin |= any(o for origins in p.col_origin for o in origins.values())
        _check_round_trip(_packed(g, low.graph, p), _seed(f"patch-{split}-{n}-{m}"))
    assert seen_origin


def test_images_cover_every_record_kind(shared):
    """The images the round trips check hold every step kind, buffer kind and flag."""
    kinds, bkinds, flags = set(), set(), set()
    plans = [shared(n, s).plan for n in SHARED_INT8 for s in ("layer", "planner")]
    for p in plans + [_case("small_chain", "stream").plan]:
        kinds |= {s.kind for s in p.steps}
        bkinds |= {b.kind for b in p.buffers.values()}
        flags |= {"inplace" for s in p.steps if s.inplace} | {"fused" for s in p.steps if s.fused >= 0}
        flags |= {"alias" for b in p.buffers.values() if b.alias_of >= 0} | {"scratch" for k in p.buffers if k < 0}
        flags |= {"streamed input"} if p.streamed_input else set()
    assert kinds == {RUN, WINDOW, INPUT, PRE, POST}
    assert bkinds == {FULL, RING, PIXEL}
    assert flags == {"inplace", "fused", "alias", "scratch", "streamed input"}


def test_plan_record_round_trip():
    """planrec alone, on a plan with everything set, several patches and origins."""
    steps = [Step(PRE, 0), Step(INPUT, 3, 0, 2, 0, 5), Step(WINDOW, 1, 0, 1, 2, 4, patch=1, fused=7),
             Step(RUN, 2, inplace=True), Step(POST, 4)]
    bufs = {3: Buffer(3, RING, 2, 5, 3, 0), 5: Buffer(5, PIXEL, 1, 1, 8, 32), 6: Buffer(6, FULL, 4, 4, 8, 40),
            9: Buffer(9, FULL, 4, 4, 8, 40, alias_of=6), -4: Buffer(-4, FULL, 1, 1, 16, 168)}
    p = Plan("patch", steps, bufs, arena_bytes=184, col_origin=[{5: 0, 6: 0}, {5: 3, 6: 2, 300: 65535}], split=3,
             grid=(2, 3), halo="recompute", macs=2**40 + 7, base_macs=2**33, device_inputs=[3], device_outputs=[6, 9],
             streamed_input=True)
    sched, buffers, head = planrec.encode(p)
    assert (len(sched), len(buffers)) == (4 + 16 * 5, 4 + 24 * 5)
    assert len(head) == 28 + 4 + 2 * 3 + 2 + (2 + 4 * 2) + (2 + 4 * 3)
    q = planrec.decode(sched, buffers, head, 184, "image")
    for f in PLAN_FIELDS:
        assert getattr(q, f) == getattr(p, f), f
    assert {k: _buffer_fields(b)[:7] for k, b in q.buffers.items()} == {k: _buffer_fields(b)[:7] for k, b in bufs.items()}
    # buffers are written in key order, scratch first
    assert [struct.unpack_from("<h", buffers, 4 + 24 * i)[0] for i in range(5)] == [-4, 3, 5, 6, 9]


def test_float_model_is_refused(models):
    with pytest.raises(McutoolError):
        g = load_model(models / "vww_96_float.tflite")
        low = lower(g)
        pack(low.graph, layer_by_layer(low))


def test_read_image(tmp_path, chain):
    path = tmp_path / "chain.mcu"
    path.write_bytes(chain.image)
    g, p = read_image(path)
    assert pack(g, p) == chain.image
    with pytest.raises(McutoolError, match=r"missing\.mcu: cannot read"):
        read_image(tmp_path / "missing.mcu")
    path.write_bytes(chain.image[:-1])
    with pytest.raises(McutoolError, match=rf"^{re.escape(str(path))}: truncated"):
        read_image(path)


@pytest.mark.parametrize("strategy", ["layer", "planner"])
def test_header_fields(shared, strategy):
    pk = shared("person_detect", strategy)
    g, p, image = pk.lowered, pk.plan, pk.image
    magic, ver, hsize, flags, total, crc, n_t, n_ops, arena, hcrc = struct.unpack_from("<4sHHIIIHHII", image)
    assert (magic, ver, hsize, flags) == (b"MCUN", 3, 96, 0) and VERSION == 3
    zeroed = bytearray(image[:HEADER_SIZE])
    zeroed[28:32] = b"\0\0\0\0"
    assert hcrc == zlib.crc32(bytes(zeroed)) & 0xFFFFFFFF
    assert total == len(image) and total % ALIGN == 0
    assert crc == zlib.crc32(image[HEADER_SIZE:]) & 0xFFFFFFFF
    assert (n_t, n_ops, arena) == (len(g.tensors), len(g.ops), p.arena_bytes)
    info = read_header(image)
    assert list(info.sections) == list(SECTIONS) == ["STRINGS", "TENSORS", "OPS", "IO", "SCHEDULE", "DATA",
                                                     "BUFFERS", "PLAN"]
    assert 32 + 8 * len(SECTIONS) == HEADER_SIZE  # the section table fills the header
    ends = HEADER_SIZE
    for name in SECTIONS:  # written in table order, each 16-aligned, padding between
        off, size = info.sections[name]
        assert off == (ends + ALIGN - 1) // ALIGN * ALIGN
        ends = off + size
    assert total == (ends + ALIGN - 1) // ALIGN * ALIGN
    sizes = {k: s for k, (_, s) in info.sections.items()}
    assert sizes["SCHEDULE"] == 4 + 16 * len(p.steps) and sizes["BUFFERS"] == 4 + 24 * len(p.buffers)
    n_io = len(p.device_inputs) + len(p.device_outputs)
    assert sizes["PLAN"] == 28 + 4 + 2 * n_io + 2 + sum(2 + 4 * len(o) for o in p.col_origin)


@pytest.mark.parametrize("strategy", ["layer", "planner"])
def test_plan_sections_byte_by_byte(shared, strategy):
    """SCHEDULE, BUFFERS, PLAN and the tensors' arena offsets, decoded here by hand from
    the layouts in docs/flash-image.md, independently of planrec."""
    pk = shared("mcunet_vww1", strategy)  # host PRE and POST steps, in-place ops, scratch
    p, b = pk.plan, pk.image
    codes = {RUN: 1, WINDOW: 2, INPUT: 3, PRE: 4, POST: 5}
    off = _sec(b, "SCHEDULE")[0]
    assert _u32(b, off) == len(p.steps)
    for i, s in enumerate(p.steps):
        got = struct.unpack_from("<BBhHHHHHh", b, _step(b, i))
        assert got == (codes[s.kind], int(s.inplace), s.op, s.r0, s.r1, s.c0, s.c1, s.patch, s.fused), i
    off = _sec(b, "BUFFERS")[0]
    assert _u32(b, off) == len(p.buffers)
    for i, key in enumerate(sorted(p.buffers)):
        x = p.buffers[key]
        got = struct.unpack_from("<hBBHHHhIII", b, off + 4 + 24 * i)
        assert got == (key, {FULL: 0, RING: 1, PIXEL: 2}[x.kind], 0, x.rows, x.width, x.channels, x.alias_of,
                       x.offset, x.rows * x.width * x.channels, 0), key
    pos = _plan(b)
    head = struct.unpack_from("<BBHHHIQQHH", b, pos)
    assert head == (["layer", "stream", "patch"].index(p.strategy), ["none", "cache", "recompute"].index(p.halo),
                    p.split, *p.grid, int(p.streamed_input), p.macs, p.base_macs, len(p.device_inputs),
                    len(p.device_outputs))
    n_io = len(p.device_inputs) + len(p.device_outputs)
    assert list(struct.unpack_from(f"<{n_io}h", b, pos + P_IO)) == p.device_inputs + p.device_outputs
    pos += P_IO + 2 * n_io
    assert struct.unpack_from("<H", b, pos)[0] == len(p.col_origin)
    for t in range(len(pk.lowered.tensors)):  # a tensor's arena offset is its buffer's
        assert _u32(b, _tensor(b, t) + T_AOFF) == (p.buffers[t].offset if t in p.buffers else NONE32), t


# ---- alignment --------------------------------------------------------------------------


ALIGNMENT_IMAGES = [(n, s) for n in SHARED_INT8 for s in ("layer", "planner")] + [
    ("small_chain", "layer"), ("small_chain", "stream"), ("resize_nn_2x", "layer"), ("fc_per_channel", "layer"),
    ("dw_3x3_same", "layer"), ("dw_3x3_same", "stream")]


@pytest.mark.parametrize("name,strategy", ALIGNMENT_IMAGES)
def test_alignment(shared, name, strategy):
    pk = shared(name, strategy) if name in SHARED_INT8 else _case(name, strategy)
    g, p, image = pk.lowered, pk.plan, pk.image
    for sname, (off, _) in read_header(image).sections.items():
        assert off % ALIGN == 0, sname
    offs = _arrays(g, image)
    assert any(o[0] == "op" for o in offs) and any(o[2] == T_DOFF for o in offs)
    for where in offs:
        assert where[-1] % ALIGN == 0, where
    ops = _sec(image, "OPS")[0]
    for k in range(len(g.ops)):
        assert _op(image, k) % 4 == 0 and _op_words(image, k) % 4 == 0
        assert _op(image, k) - ops >= 4 * len(g.ops)
    for key, b in p.buffers.items():
        assert b.offset % 4 == 0, key
    for t in range(len(g.tensors)):
        a = _u32(image, _tensor(image, t) + T_AOFF)
        assert a == NONE32 or a % 4 == 0, t
    # plan records: u32 and u64 fields on multiples of 4, u16/i16 on multiples of 2
    assert _step(image, 0) % 4 == 0 and _sec(image, "BUFFERS")[0] % 16 == 0
    assert (_plan(image) + P_FLAGS) % 4 == 0 and (_plan(image) + P_MACS) % 4 == 0 and (_plan(image) + P_BASE) % 4 == 0


# ---- rejections -------------------------------------------------------------------------


def _reject(image, match):
    with pytest.raises(McutoolError, match=match):
        unpack(bytes(image))


def _edit(image, fn):
    """Apply fn to a copy of the image, recompute the CRC."""
    b = bytearray(image)
    fn(b)
    return _recrc(b)


def test_reject_empty():
    _reject(b"", r"truncated: 0 bytes, a header needs 96")


@pytest.mark.parametrize("cut", [1, 4, 31, 32, 33, 40, 95])
def test_reject_truncated_header(chain, cut):
    _reject(chain.image[:cut], rf"truncated: {cut} bytes, a header needs 96")


def test_reject_truncated_body(chain):
    image = chain.image
    total = len(image)
    for cut in (HEADER_SIZE, _sec(image, "TENSORS")[0] + 7, _sec(image, "OPS")[0] + 5, _sec(image, "DATA")[0] + 100,
                _sec(image, "BUFFERS")[0] + 30, _sec(image, "PLAN")[0] + 1, total - 1):
        _reject(image[:cut], rf"truncated: {cut} bytes, header says {total}")


def test_reject_every_truncation():
    image = _case("conv_3x3_same", "stream").image
    for cut in range(len(image)):
        with pytest.raises(McutoolError, match=r"truncated: \d+ bytes, (a header needs 96|header says \d+)"):
            unpack(image[:cut])


def test_reject_bad_magic(chain):
    _reject(b"MCUX" + chain.image[4:], r"not an mcutool flash image")
    _reject(b"\x89PNG\r\n", r"not an mcutool flash image")  # short non-images are not "truncated"
    _reject(b"TFL3" + bytes(200), r"not an mcutool flash image")


def test_reject_version(chain):
    """An older image is refused, never misread (v2's conv records differ), and its message
    says to convert again; a newer one (or 0) is refused without that advice."""
    b = bytearray(chain.image)
    again = "; convert the model again with this mcutool$"
    for old in (1, 2):
        struct.pack_into("<H", b, 4, old)
        _reject(b, rf"format version {old}; this mcutool reads version 3{again}")
    for other in (4, 0, 0xFFFF):
        struct.pack_into("<H", b, 4, other)
        _reject(b, rf"format version {other}; this mcutool reads version 3$")


def test_reject_header_size(chain):
    b = bytearray(chain.image)
    struct.pack_into("<H", b, 6, 64)
    _reject(b, r"header size 64, version 3 has 96")


def test_reject_trailing_bytes(chain):
    _reject(chain.image + b"\0", r"1 bytes after the image end")
    _reject(chain.image + bytes(16), r"16 bytes after the image end")


def test_reject_total_size_lies(chain):
    b = bytearray(chain.image)
    struct.pack_into("<I", b, 12, len(b) - 16)
    _reject(b, r"header CRC32 mismatch")
    _reject(_rehdr(b), r"16 bytes after the image end")


def test_reject_every_flipped_bit_after_header(chain_stream):
    """One flipped bit anywhere in [header_size, total) is a CRC mismatch."""
    image = chain_stream.image
    b = bytearray(image)
    for pos in range(HEADER_SIZE, len(b)):
        for bit in range(8):
            b[pos] ^= 1 << bit
            with pytest.raises(McutoolError, match="CRC32 mismatch"):
                read_header(b)
            b[pos] ^= 1 << bit
    assert bytes(b) == image


def test_reject_crc_field(chain):
    b = bytearray(chain.image)
    b[16] ^= 1
    _reject(b, r"header CRC32 mismatch \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\): the header is corrupt")
    _reject(_rehdr(b), r"CRC32 mismatch \(header [0-9a-f]{8}, content [0-9a-f]{8}\)")


def test_reject_every_flipped_bit_in_header(chain):
    """The header checks itself: one flipped bit anywhere in it is caught, never misread."""
    b = bytearray(chain.image)
    for pos in range(HEADER_SIZE):
        for bit in range(8):
            b[pos] ^= 1 << bit
            with pytest.raises(McutoolError):
                unpack(bytes(b))
            b[pos] ^= 1 << bit


def _sec_case(name, fn, match):
    return pytest.param(fn, match, id=name)


SECTION_CASES = [
    _sec_case("data_past_end", lambda b: _set_sec(b, "DATA", _sec(b, "DATA")[0], len(b) - _sec(b, "DATA")[0] + 1),
              r"section DATA at \d+ \(\+\d+\) lies outside the image"),
    _sec_case("plan_past_end", lambda b: _set_sec(b, "PLAN", _sec(b, "PLAN")[0], len(b) - _sec(b, "PLAN")[0] + 1),
              r"section PLAN at \d+ \(\+\d+\) lies outside the image"),
    _sec_case("offset_in_header", lambda b: _set_sec(b, "STRINGS", 80, 8), r"section STRINGS at 80 .*lies outside"),
    _sec_case("offset_past_end", lambda b: _set_sec(b, "IO", len(b) + 16, 0), r"section IO .*lies outside"),
    _sec_case("size_wraps", lambda b: _set_sec(b, "BUFFERS", _sec(b, "BUFFERS")[0], 0xFFFFFFF0),
              r"section BUFFERS .*lies outside"),
    _sec_case("misaligned", lambda b: _set_sec(b, "OPS", _sec(b, "OPS")[0] + 4, _sec(b, "OPS")[1] - 4),
              r"section OPS at \d+ \(\+\d+\) .*misaligned"),
    _sec_case("overlap_same_start", lambda b: _set_sec(b, "IO", *_sec(b, "OPS")), r"sections (OPS and IO|IO and OPS) overlap"),
    _sec_case("overlap_grown", lambda b: _set_sec(b, "TENSORS", _sec(b, "TENSORS")[0], _sec(b, "TENSORS")[1] + 16),
              r"sections TENSORS and OPS overlap"),
    _sec_case("overlap_plan_sections", lambda b: _set_sec(b, "BUFFERS", _sec(b, "BUFFERS")[0], _sec(b, "BUFFERS")[1] + 16),
              r"sections BUFFERS and PLAN overlap"),
]


@pytest.mark.parametrize("fn,match", SECTION_CASES)
def test_reject_section_table(chain, fn, match):
    _reject(_edit(chain.image, fn), match)


def test_empty_section_may_touch_its_neighbour(chain):
    """A zero-size section at a neighbour's start is not an overlap (pack writes these:
    an image with no constants has an empty DATA at the start of BUFFERS)."""
    b = _edit(chain.image, lambda b: _set_sec(b, "IO", _sec(b, "SCHEDULE")[0], 0))
    read_header(b)
    assert _sec(_case("quantize_f32_to_i8").image, "DATA")[1] == 0


def _put(fmt, where, value):
    """An edit writing `value` (struct format fmt) at offset where(b)."""
    return lambda b: struct.pack_into(fmt, b, where(b), *(value(b) if callable(value) else value))


def _data_len(b):
    return _sec(b, "DATA")[1]


def _w(k, kind, field, extra=0):
    return lambda b: _op_words(b, k) + 4 * (word_index(kind, field) + extra)


def _drop_buffer(key):
    """An edit removing the buffer record of `key` (the section keeps its size; the count
    says one less, so the last 24 bytes are ignored)."""
    def fn(b):
        off, size = _sec(b, "BUFFERS")
        n = _u32(b, off)
        pos = _buf(b, key)
        end = off + 4 + BUF * n
        b[pos:end - BUF] = b[pos + BUF:end]
        struct.pack_into("<I", b, off, n - 1)
    return fn


def _step_op(i):
    return lambda b: _step(b, i) + S_OP


def _grow_data(b, raw: bytes) -> int:
    """Append raw to the DATA section at a 16-byte boundary, moving the sections after it
    and the total size along; returns its offset in DATA. (Recompute the CRCs after.)"""
    off, size = _sec(b, "DATA")
    at = off + (size + ALIGN - 1) // ALIGN * ALIGN
    grow = (len(raw) + ALIGN - 1) // ALIGN * ALIGN
    b[at:at] = raw + bytes(grow - len(raw))
    for name in SECTIONS:
        o, n = _sec(b, name)
        if name != "DATA" and o >= at:
            _set_sec(b, name, o + grow, n)
    _set_sec(b, "DATA", off, at - off + len(raw))
    struct.pack_into("<I", b, 12, _u32(b, 12) + grow)
    return at - off


def _add_qrec(t, axis=0):
    """An edit giving tensor t a per-channel quantization record (its entry's scale and zero
    point on each of dims[axis] channels) at the end of DATA. pack writes none for a
    constant since format v3, but a reader checks any record an entry points at (rows
    17-21): the record cases start from this."""
    def fn(b):
        e = _tensor(b, t)
        n = _u32(b, e + T_DIMS + 4 * axis)
        (scale,), (zp,) = struct.unpack_from("<f", b, e + T_SCALE), struct.unpack_from("<i", b, e + T_ZP)
        raw = struct.pack(f"<II{n}f{n}i", n, axis, *[scale] * n, *[zp] * n)
        struct.pack_into("<I", b, e + T_QOFF, _grow_data(b, raw))  # TENSORS lies before DATA: e stays
    return fn


def _then(*fns):
    """Edits applied in order."""
    return lambda b: [fn(b) for fn in fns]


QREC4 = _add_qrec(4)  # tensor 4: the first conv's int8 weights (8, 3, 3, 3), 8 channels on axis 0


def _qrec4(b):
    """Absolute offset of tensor 4's quantization record."""
    return _sec(b, "DATA")[0] + _u32(b, _tensor(b, 4) + T_QOFF)


CHAIN_CASES = [
    # STRINGS / header counts
    ("strings_empty", lambda b: _set_sec(b, "STRINGS", _sec(b, "STRINGS")[0], 0), r"string offset \d+ outside the STRINGS"),
    ("name_offset_out", _put("<I", lambda b: _tensor(b, 5) + T_NAME, lambda b: (_sec(b, "STRINGS")[1],)),
     r"tensor 5 name: string offset \d+ outside the STRINGS"),
    ("name_unterminated", lambda b: b.__setitem__(_sec(b, "STRINGS")[0] + _sec(b, "STRINGS")[1] - 1, ord("x")),
     r"string offset \d+ outside the STRINGS"),
    ("tensor_count", _put("<H", lambda b: 20, lambda b: (struct.unpack_from("<H", b, 20)[0] + 1,)),
     r"TENSORS section holds \d+ bytes, 21 tensors need"),
    # TENSORS
    ("dtype_0", _put("<B", lambda b: _tensor(b, 5) + T_DTYPE, (0,)), r"tensor 5: unknown dtype code 0"),
    ("dtype_8", _put("<B", lambda b: _tensor(b, 5) + T_DTYPE, (8,)), r"tensor 5: unknown dtype code 8"),
    ("rank_5", _put("<B", lambda b: _tensor(b, 5) + T_RANK, (5,)), r"tensor 5: rank 5 exceeds 4"),
    ("rank_255", _put("<B", lambda b: _tensor(b, 4) + T_RANK, (255,)), r"tensor 4: rank 255 exceeds 4"),
    ("flags_unknown", _put("<B", lambda b: _tensor(b, 5) + T_FLAGS, (16 | 8,)), r"tensor 5: unknown flag bits 0x18"),
    ("quant_flag_cleared", _then(QREC4, _put("<B", lambda b: _tensor(b, 4) + T_FLAGS, (1,))),
     r"tensor 4: quantization record on a tensor not flagged"),
    ("const_input", _put("<B", lambda b: _tensor(b, 4) + T_FLAGS, (3 | 8,)), r"tensor 4: a constant cannot be a graph input"),
    ("const_data_past_data", _put("<I", lambda b: _tensor(b, 4) + T_DOFF, lambda b: (_data_len(b) // 16 * 16,)),
     r"tensor 4: constant data at \d+ \(\+216\) invalid for int8 \(8, 3, 3, 3\)"),
    ("const_data_none", _put("<I", lambda b: _tensor(b, 4) + T_DOFF, (NONE32,)), r"tensor 4: constant data at 4294967295"),
    ("const_data_misaligned", _put("<I", lambda b: _tensor(b, 4) + T_DOFF, lambda b: (_u32(b, _tensor(b, 4) + T_DOFF) + 4,)),
     r"tensor 4: constant data at \d+ \(\+216\) invalid"),
    ("const_data_size", _put("<I", lambda b: _tensor(b, 4) + T_DSIZE, (215,)), r"tensor 4: constant data at \d+ \(\+215\)"),
    ("const_dims_overflow", _put("<4I", lambda b: _tensor(b, 4) + T_DIMS, (1 << 31, 1 << 31, 4, 1)),
     r"tensor 4: dims \(2147483648, 2147483648, 4, 1\) of a rank-4 int8 tensor: the format takes dims up to 65535"),
    ("const_dims_zero_size", lambda b: (struct.pack_into("<4I", b, _tensor(b, 4) + T_DIMS, 1 << 31, 1 << 31, 4, 1),
                                        struct.pack_into("<I", b, _tensor(b, 4) + T_DSIZE, 0)),
     r"tensor 4: dims \(2147483648, 2147483648, 4, 1\) of a rank-4 int8 tensor"),
    ("arena_past_end", _put("<I", lambda b: _tensor(b, 5) + T_AOFF, lambda b: (_u32(b, 24) + 4,)),
     r"tensor 5: arena offset \d+ lies past the 1536-byte arena"),
    ("arena_misaligned", _put("<I", lambda b: _tensor(b, 5) + T_AOFF, lambda b: (_u32(b, _tensor(b, 5) + T_AOFF) + 2,)),
     r"tensor 5: arena offset \d+ is not a multiple of 4"),
    ("quant_past_data", _put("<I", lambda b: _tensor(b, 4) + T_QOFF, lambda b: (_data_len(b) // 16 * 16,)),
     r"tensor 4: quantization record"),
    ("quant_misaligned", _then(QREC4, _put("<I", lambda b: _tensor(b, 4) + T_QOFF,
                                           lambda b: (_u32(b, _tensor(b, 4) + T_QOFF) + 4,))),
     r"tensor 4: quantization record at \d+ outside DATA or misaligned"),
    ("quant_channels_huge", _then(QREC4, _put("<I", _qrec4, (1 << 30,))),
     r"tensor 4: quantization record of 1073741824 channels \(1 to 65536 allowed\)"),
    ("quant_channels_past_data", _then(QREC4, _put("<I", _qrec4, (60000,))),
     r"tensor 4: quantization record of 60000 channels outside DATA"),
    ("quant_channels_zero", _then(QREC4, _put("<I", _qrec4, (0,))),
     r"tensor 4: quantization record of 0 channels \(1 to 65536 allowed\)"),
    ("quant_axis", _then(QREC4, _put("<I", lambda b: _qrec4(b) + 4, (4,))),
     r"tensor 4: quantization axis 4 out of range for rank 4"),
    # OPS
    ("ops_count", _put("<H", lambda b: 22, (1000,)), r"OPS section too short for 1000 ops"),
    ("op_offset_out", _put("<I", lambda b: _sec(b, "OPS")[0] + 4, lambda b: (_sec(b, "OPS")[1] - 4,)),
     r"op 1: record at \d+ outside the OPS section"),
    ("op_offset_misaligned", _put("<I", lambda b: _sec(b, "OPS")[0] + 4, lambda b: (_u32(b, _sec(b, "OPS")[0] + 4) + 2,)),
     r"op 1: record at \d+ outside the OPS section or misaligned"),
    ("opcode_0", _put("<H", lambda b: _op(b, 1), (0,)), r"op 1: unknown op code 0"),
    ("opcode_999", _put("<H", lambda b: _op(b, 7), (999,)), r"op 7: unknown op code 999"),
    ("op_tensor_index_high", _put("<h", lambda b: _op_io(b, 0), (20,)), r"op 0 \(CONV_2D\): tensor index out of range in \[20, 4, 3, 5\]"),
    ("op_tensor_index_low", _put("<h", lambda b: _op_io(b, 0) + 2, (-2,)), r"op 0 \(CONV_2D\): tensor index out of range"),
    ("op_output_absent", _put("<h", lambda b: _op_io(b, 0) + 6, (-1,)), r"op 0 \(CONV_2D\): tensor index out of range"),
    ("op_no_output", lambda b: (struct.pack_into("<BB", b, _op(b, 4) + 2, 2, 0)),
     r"op 4 \(AVERAGE_POOL_2D\): op has no output"),
    ("params_short", _put("<H", lambda b: _op(b, 0) + 4, (record_words("CONV_2D") - 1,)),
     r"op 0 \(CONV_2D\): parameter record too short"),
    ("params_long", _put("<H", lambda b: _op(b, 0) + 4, (record_words("CONV_2D") + 1,)),
     r"op 0 \(CONV_2D\): parameter record has 15 words, CONV_2D needs 14"),
    ("params_overrun", _put("<H", lambda b: _op(b, 7) + 4, (5000,)), r"op 7 \(SOFTMAX\): record overruns the OPS section"),
    ("enum_fc_rounding", _put("<i", _w(6, "FULLY_CONNECTED", "rounding"), (2,)),
     r"op 6 \(FULLY_CONNECTED\): 'rounding' value 2 out of range"),
    ("enum_softmax_negative", _put("<i", _w(7, "SOFTMAX", "out_dtype"), (-1,)),
     r"op 7 \(SOFTMAX\): 'out_dtype' value -1 out of range"),
    ("array_past_data", _put("<i", _w(0, "CONV_2D", "rq"), lambda b: (_data_len(b) // 16 * 16,)),
     r"op 0 \(CONV_2D\): 'rq' array at \d+ \(\+32\) lies outside the DATA section"),
    ("array_misaligned", _put("<i", _w(1, "DEPTHWISE_CONV_2D", "rq"), lambda b: (struct.unpack_from("<i", b, _w(1, "DEPTHWISE_CONV_2D", "rq")(b))[0] + 4,)),
     r"op 1 \(DEPTHWISE_CONV_2D\): 'rq' array at \d+ \(\+32\) lies outside the DATA section or is misaligned"),
    ("array_negative_offset", _put("<i", _w(6, "FULLY_CONNECTED", "multiplier"), (-16,)), r"'multiplier' array at -16"),
    ("array_negative_count", _put("<i", _w(6, "FULLY_CONNECTED", "shift", 1), (-1,)), r"'shift' array at \d+ \(\+-1\)"),
    ("array_huge_count", _put("<i", _w(6, "FULLY_CONNECTED", "shift", 1), (0x7FFFFFFF,)), r"'shift' array at \d+ \(\+2147483647\)"),
    # IO
    ("io_empty", lambda b: _set_sec(b, "IO", _sec(b, "IO")[0], 2), r"IO section too short$"),
    ("io_counts", _put("<HH", lambda b: _sec(b, "IO")[0], (1, 3)), r"IO section too short for 1 inputs and 3 outputs"),
    ("io_out_of_range", _put("<H", lambda b: _sec(b, "IO")[0] + 4, (20,)), r"IO section names a tensor out of range"),
    ("io_disagrees_with_flags", _put("<H", lambda b: _sec(b, "IO")[0] + 4, (2,)),
     r"tensor 0: input/output flags disagree with the IO section"),
    ("io_flag_missing", _put("<B", lambda b: _tensor(b, 19) + T_FLAGS, (0,)), r"tensor 19: input/output flags disagree"),
    # SCHEDULE section
    ("schedule_empty", lambda b: _set_sec(b, "SCHEDULE", _sec(b, "SCHEDULE")[0], 3), r"SCHEDULE section too short"),
    ("schedule_count", _put("<I", lambda b: _sec(b, "SCHEDULE")[0], (9,)), r"SCHEDULE holds fewer than its 9 steps"),
    ("schedule_count_huge", _put("<I", lambda b: _sec(b, "SCHEDULE")[0], (0xFFFFFFFF,)),
     r"SCHEDULE holds fewer than its 4294967295 steps"),
    ("schedule_one_byte_short", lambda b: _set_sec(b, "SCHEDULE", _sec(b, "SCHEDULE")[0], 4 + 16 * 8 - 1),
     r"SCHEDULE holds fewer than its 8 steps"),
    ("step_kind_0", _put("<B", lambda b: _step(b, 3) + S_KIND, (0,)), r"schedule step 3: kind 0 / flags 0 invalid"),
    ("step_kind_6", _put("<B", lambda b: _step(b, 0) + S_KIND, (6,)), r"schedule step 0: kind 6 / flags 0 invalid"),
    ("step_flags", _put("<B", lambda b: _step(b, 2) + S_FLAGS, (2,)), r"schedule step 2: kind 1 / flags 2 invalid"),
    # BUFFERS section
    ("buffers_empty", lambda b: _set_sec(b, "BUFFERS", _sec(b, "BUFFERS")[0], 3), r"BUFFERS section too short"),
    ("buffers_count", _put("<I", lambda b: _sec(b, "BUFFERS")[0], (10,)), r"BUFFERS holds fewer than its 10 buffers"),
    ("buffers_one_byte_short", lambda b: _set_sec(b, "BUFFERS", _sec(b, "BUFFERS")[0], 4 + 24 * 9 - 1),
     r"BUFFERS holds fewer than its 9 buffers"),
    ("buffer_kind", _put("<B", lambda b: _buf(b, 5) + B_KIND, (3,)), r"buffer 1: kind 3 invalid or reserved fields set"),
    ("buffer_reserved_byte", _put("<B", lambda b: _buf(b, 5) + B_RES0, (1,)), r"buffer 1: kind 0 invalid or reserved fields set"),
    ("buffer_reserved_word", _put("<I", lambda b: _buf(b, 19) + B_RES1, (1,)), r"buffer 8: kind 0 invalid or reserved"),
    ("buffer_duplicate", _put("<h", lambda b: _buf(b, 8), (5,)), r"buffer 2: a second buffer for 5"),
    ("buffer_size_field", _put("<I", lambda b: _buf(b, 5) + B_SIZE, (511,)), r"buffer 1 \(tensor 5\): size 511 is not 8x8x8"),
    ("buffer_past_arena", _put("<I", lambda b: _buf(b, 11) + B_OFF, (1028,)),
     r"buffer 3 \(tensor 11\): 8x8x8 at 1028 \(\+512\) does not fit the 1536-byte arena"),
    ("buffer_offset_wraps", _put("<I", lambda b: _buf(b, 11) + B_OFF, (0xFFFFFF00,)), r"does not fit the 1536-byte arena"),
    ("buffer_misaligned", _put("<I", lambda b: _buf(b, 11) + B_OFF, (1022,)),
     r"buffer 3 \(tensor 11\): offset 1022 is not a multiple of 4"),
    ("alias_missing", _put("<h", lambda b: _buf(b, 15) + B_ALIAS, (14,)), r"buffer of tensor 15 aliases 14, which has no buffer"),
    ("alias_self", _put("<h", lambda b: _buf(b, 15) + B_ALIAS, (15,)), r"buffer of tensor 15 aliases 15, which has no buffer"),
    ("alias_negative", _put("<h", lambda b: _buf(b, 15) + B_ALIAS, (-2,)), r"buffer of tensor 15 aliases -2, which has no buffer"),
    ("alias_elsewhere", _put("<h", lambda b: _buf(b, 15) + B_ALIAS, (18,)),
     r"buffer of tensor 15 at 0 \(\+32\) aliases tensor 18 at 32 \(\+10\) but does not lie inside it"),
    ("alias_cycle", _put("<h", lambda b: _buf(b, 13) + B_ALIAS, (15,)),
     r"buffers of tensors \[13, 15\] alias each other in a cycle"),
    # PLAN section
    ("plan_empty", lambda b: _set_sec(b, "PLAN", _sec(b, "PLAN")[0], 27), r"PLAN section too short"),
    ("plan_io_cut", lambda b: _set_sec(b, "PLAN", _sec(b, "PLAN")[0], P_IO + 2), r"PLAN section too short"),
    ("plan_patches_cut", lambda b: _set_sec(b, "PLAN", _sec(b, "PLAN")[0], _sec(b, "PLAN")[1] - 1), r"PLAN section too short"),
    ("plan_io_count", _put("<H", lambda b: _plan(b) + P_NOUT, (100,)), r"PLAN section too short"),
    ("plan_patch_count", _put("<H", lambda b: _plan(b) + P_IO + 4, (2,)), r"PLAN section too short"),
    ("plan_strategy", _put("<B", lambda b: _plan(b) + P_STRATEGY, (3,)), r"PLAN strategy 3 / halo 0 / flags 0 invalid"),
    ("plan_halo", _put("<B", lambda b: _plan(b) + P_HALO, (3,)), r"PLAN strategy 0 / halo 3 / flags 0 invalid"),
    ("plan_flags", _put("<I", lambda b: _plan(b) + P_FLAGS, (2,)), r"PLAN strategy 0 / halo 0 / flags 2 invalid"),
    # buffers against tensors
    ("buffer_tensor_out_of_range", _put("<h", lambda b: _buf(b, 19), (20,)), r"a buffer names tensor 20, but the image has 20"),
    ("scratch_past_schedule", _put("<h", lambda b: _buf(b, 0), (-9,)),
     r"scratch buffer -9 belongs to step 8, but the schedule has 8 steps"),
    ("buffer_on_constant", _put("<h", lambda b: _buf(b, 18), (16,)), r"tensor 16 is a constant, but has a buffer"),
    ("arena_offset_disagrees", _put("<I", lambda b: _tensor(b, 12) + T_AOFF, (0,)),
     r"tensor 12: arena offset 0 disagrees with its buffer at 512"),
    ("arena_offset_missing", _put("<I", lambda b: _tensor(b, 19) + T_AOFF, (NONE32,)),
     r"tensor 19: arena offset 4294967295 disagrees with its buffer at 0"),
    ("arena_offset_without_buffer", _put("<I", lambda b: _tensor(b, 2) + T_AOFF, (0,)), r"tensor 2: arena offset 0, but no buffer"),
    ("buffer_smaller_than_tensor", lambda b: struct.pack_into("<HHHhII", b, _buf(b, 11) + B_ROWS, 8, 8, 4, -1, 1024, 256),
     r"tensor 11 \(int8 \(1, 8, 8, 8\)\) does not fit its full buffer of 8x8x4"),
    ("full_buffer_reshaped", lambda b: struct.pack_into("<HH", b, _buf(b, 11) + B_ROWS, 4, 16),
     r"tensor 11 \(int8 \(1, 8, 8, 8\)\) does not fit its full buffer of 4x16x8"),
    ("activation_dims_overflow", _put("<4I", lambda b: _tensor(b, 5) + T_DIMS, (0xFFFFFFFF,) * 4),
     r"tensor 5: dims \(4294967295, 4294967295, 4294967295, 4294967295\) of a rank-4 int8 tensor"),
    ("ring_for_flat_tensor", _put("<B", lambda b: _buf(b, 18) + B_KIND, (1,)),
     r"tensor 18 \(int8 \(1, 10\)\) does not fit its ring buffer of 1x1x10"),
    ("pixel_of_wrong_depth", lambda b: struct.pack_into("<BBHHHhII", b, _buf(b, 12) + B_KIND, 2, 0, 1, 1, 4, -1, 512, 4),
     r"tensor 12 \(int8 \(1, 8, 8, 8\)\) does not fit its pixel buffer of 1x1x4"),
    ("origin_tensor_out_of_range", lambda b: (struct.pack_into("<HHHH", b, _plan(b) + P_IO + 4, 1, 1, 20, 0),
                                              _set_sec(b, "PLAN", _sec(b, "PLAN")[0], _sec(b, "PLAN")[1] + 4)),
     r"patch 0: column origin of tensor 20, but the image has 20"),
    ("device_input_without_buffer", _put("<h", lambda b: _plan(b) + P_IO, (2,)), r"device input/output tensor 2 has no buffer"),
    ("device_output_out_of_range", _put("<h", lambda b: _plan(b) + P_IO + 2, (-1,)), r"device input/output tensor -1 has no buffer"),
    # steps
    ("step_op_out_of_range", _put("<h", _step_op(3), (8,)), r"step 3 \(run\): op 8 out of range"),
    ("step_op_negative", _put("<h", _step_op(3), (-1,)), r"step 3 \(run\): op -1 out of range"),
    ("step_patch_out_of_range", _put("<H", lambda b: _step(b, 2) + S_PATCH, (1,)), r"step 2 \(run\): patch 1 has no column origins"),
    ("step_repeats_op", _put("<h", _step_op(1), (0,)), r"step 1 \(run\): op 0 already ran in step 0"),
    ("step_before_input", _put("<h", _step_op(0), (1,)), r"step 0 \(run\): op 1 reads tensor 5 before any step computes it"),
    ("schedule_short", _put("<I", lambda b: _sec(b, "SCHEDULE")[0], (7,)), r"the schedule never runs op 7 \(7 of 8 ops run\)"),
    ("pre_after_device", _put("<B", lambda b: _step(b, 7) + S_KIND, (4,)),
     r"step 7 \(pre\): after a device step; the order is PRE, device, POST"),
    ("device_after_post", _put("<B", lambda b: _step(b, 0) + S_KIND, (5,)),
     r"step 1 \(run\): after a post step; the order is PRE, device, POST"),
    ("run_reads_host_tensor", lambda b: [struct.pack_into("<B", b, _step(b, i) + S_KIND, 4) for i in range(2)],
     r"step 2 \(run\): op 2 reads tensor 8 before any step computes it"),  # made by a PRE step: on the host
    ("run_reads_ring", _put("<B", lambda b: _buf(b, 8) + B_KIND, (1,)),
     r"step 1 \(run\): op 1 runs whole, but tensor 8 has a ring buffer"),
    ("window_not_streamable", lambda b: struct.pack_into("<BBhHHHH", b, _step(b, 6), 2, 0, 6, 0, 1, 0, 1),
     r"step 6 \(window\): op 6 \(FULLY_CONNECTED\) cannot run in windows: output is not a 1xHxWxC int8 map"),
    ("window_outside_output", lambda b: struct.pack_into("<BBhHHHH", b, _step(b, 3), 2, 0, 3, 0, 9, 0, 8),
     r"step 3 \(window\): window rows \[0, 9\) x columns \[0, 8\) outside the output"),
    ("window_empty", lambda b: struct.pack_into("<BBhHHHH", b, _step(b, 3), 2, 0, 3, 4, 4, 0, 8),
     r"step 3 \(window\): window rows \[4, 4\) x columns \[0, 8\) outside the output"),
    ("inplace_not_aliased", _put("<B", lambda b: _step(b, 6) + S_FLAGS, (1,)), r"step 6 \(run\): in-place op 6 does not alias its input"),
    ("inplace_window", lambda b: struct.pack_into("<BBhHHHH", b, _step(b, 5), 2, 1, 5, 0, 2, 0, 2),
     r"step 5 \(window\): op 5 \(RESHAPE\) cannot run in windows"),
    ("inplace_op_kind", lambda b: (struct.pack_into("<B", b, _step(b, 3) + S_FLAGS, 1),
                                   struct.pack_into("<h", b, _buf(b, 12) + B_ALIAS, 5),
                                   struct.pack_into("<I", b, _buf(b, 12) + B_OFF, 0),
                                   struct.pack_into("<I", b, _tensor(b, 12) + T_AOFF, 0)),
     r"step 3 \(run\): op 3 \(ADD\) cannot overwrite its input in place"),
    ("device_input_moved", _put("<h", lambda b: _plan(b) + P_IO, (5,)),
     r"step 0 \(run\): op 0 reads tensor 0 before any step computes it"),  # graph input 0 is not on the device
    ("graph_output_not_device_output", _put("<h", lambda b: _plan(b) + P_IO + 2, (18,)),
     r"graph output tensor 19 is never computed"),
    ("streamed_flag_without_input_steps", _put("<I", lambda b: _plan(b) + P_FLAGS, (1,)),
     r"PLAN says the input is streamed, but the schedule has 0 INPUT steps"),
]


@pytest.mark.parametrize("fn,match", [pytest.param(f, m, id=i) for i, f, m in CHAIN_CASES])
def test_reject_chain(chain, fn, match):
    _reject(_edit(chain.image, fn), match)


def _find_step(plan, kind, **fields):
    return next(i for i, s in enumerate(plan.steps) if s.kind == kind and all(getattr(s, k) == v for k, v in fields.items()))


# Streamed small_chain (see the chain_stream fixture): steps by what they are, not by number.
STREAM_REJECTIONS = [
    ("input_on_non_input", lambda p: (_find_step(p, INPUT), {S_OP: ("<h", 5)}), r"step \d+ \(input\): tensor 5 is not a device input"),
    ("input_rows_outside", lambda p: (_find_step(p, INPUT, r0=14), {S_R1: ("<H", 16)}),
     r"step \d+ \(input\): rows \[14, 16\) x columns \[0, 15\) outside tensor 0"),
    ("input_empty", lambda p: (_find_step(p, INPUT), {S_R1: ("<H", 0)}), r"step \d+ \(input\): rows \[0, 0\)"),
    ("input_more_rows_than_ring", lambda p: (_find_step(p, INPUT, r0=2), {S_R1: ("<H", 6)}),
     r"step \d+ \(input\): writes rows \[2, 6\) x columns \[0, 15\) of tensor 0, outside its ring buffer of 3 rows"),
    ("window_outside_output", lambda p: (_find_step(p, WINDOW, op=0, r0=7), {S_R1: ("<H", 9)}),
     r"step \d+ \(window\): window rows \[7, 9\) x columns \[0, 8\) outside the output"),
    ("window_columns_outside", lambda p: (_find_step(p, WINDOW, op=3, r0=0), {S_C1: ("<H", 9)}),
     r"step \d+ \(window\): window rows \[0, 1\) x columns \[0, 9\) outside the output"),
    ("window_more_rows_than_ring", lambda p: (_find_step(p, WINDOW, op=0, r0=1), {S_R1: ("<H", 5)}),
     r"step \d+ \(window\): writes rows \[1, 5\) x columns \[0, 8\) of tensor 5, outside its ring buffer of 3 rows"),
    ("window_reads_more_than_ring", lambda p: (_find_step(p, WINDOW, op=4, r0=0), {S_R1: ("<H", 2)}),
     r"step \d+ \(window\): reads rows \[0, 8\) x columns \[0, 8\) of tensor 12, outside its ring buffer of 4 rows"),
    ("fused_not_feeding", lambda p: (_find_step(p, WINDOW, op=2, r0=0), {S_FUSED: ("<h", 0)}),
     r"step \d+ \(window\): fused op 0 is not the depthwise conv feeding op 2"),
    ("fused_out_of_range", lambda p: (_find_step(p, WINDOW, op=2, r0=0), {S_FUSED: ("<h", 99)}),
     r"step \d+ \(window\): fused op 99 is not the depthwise conv feeding op 2"),
    ("fused_into_non_1x1", lambda p: (_find_step(p, WINDOW, op=0, r0=0), {S_FUSED: ("<h", 1)}),
     r"step \d+ \(window\): fused op 1 is not the depthwise conv feeding op 0"),
    ("fused_on_run", lambda p: (_find_step(p, RUN, op=5), {S_FUSED: ("<h", 1)}),
     r"step \d+ \(run\): fused op 1 is not the depthwise conv feeding op 5"),
    ("fused_op_also_windowed", lambda p: (_find_step(p, WINDOW, op=3, r0=7), {S_OP: ("<h", 1)}),
     r"step \d+ \(window\): op 1 writes tensor 8 into a pixel buffer"),
    ("window_op_already_run_whole", lambda p: (_find_step(p, RUN, op=6), {S_OP: ("<h", 5)}),
     r"step \d+ \(run\): op 5 already ran in step \d+"),
    ("windowed_op_also_run_whole", lambda p: (_find_step(p, WINDOW, op=4, r0=1), {S_KIND: ("<B", 1)}),
     r"step \d+ \(run\): op 4 already ran in step \d+"),
]


def _stream_edit(plan, make):
    i, fields = make(plan)

    def fn(b):
        for off, (fmt, v) in fields.items():
            struct.pack_into(fmt, b, _step(b, i) + off, v)
    return fn


@pytest.mark.parametrize("make,match", [pytest.param(f, m, id=i) for i, f, m in STREAM_REJECTIONS])
def test_reject_stream(chain_stream, make, match):
    _reject(_edit(chain_stream.image, _stream_edit(chain_stream.plan, make)), match)


def _unfuse(p):
    for s in p.steps:
        s.fused = -1


def _add_reads_dw(g):
    g.ops[3] = copy.copy(g.ops[3])
    g.ops[3].inputs = [8, 11]  # ADD now reads the depthwise output


def _fuse_into_add(p):
    p.steps[_find_step(p, WINDOW, op=3, r0=0)].fused = 1


def _ring8(p):
    p.buffers[8] = Buffer(8, RING, 1, 8, 8, p.buffers[8].offset)
    p.arena_bytes += 64


def _extra_input(p):
    p.buffers[2] = Buffer(2, FULL, 17, 17, 3, p.arena_bytes)
    p.arena_bytes += 868
    p.device_inputs = [0, 2]


def _extra_output(p):
    _extra_input(p)
    p.device_inputs, p.device_outputs = [0], [19, 2]


def _set(**fields):
    def fn(p):
        for k, v in fields.items():
            setattr(p, k, v)
    return fn


def _buffers(**changes):
    """Replace (or, with None, drop) buffers; keys as t<N> or s<N> for scratch -N."""
    def fn(p):
        for name, b in changes.items():
            key = int(name[1:]) * (1 if name[0] == "t" else -1)
            if b is None:
                del p.buffers[key]
            else:
                p.buffers[key] = Buffer(key, *b)
    return fn


def _seq(*fns):
    def fn(p):
        for f in fns:
            f(p)
    return fn


# (id, image, plan edit, graph edit, error): structural changes no single field can make.
# "chain" is small_chain layer by layer, "stream" small_chain streamed, "dw" dw_3x3_same.
STRUCTURE_REJECTIONS = [
    ("fused_op_never_runs", "stream", _unfuse, None, r"step \d+ \(window\): op 2 reads tensor 8 before any step computes it"),
    ("fused_into_non_1x1", "stream", _fuse_into_add, _add_reads_dw,
     r"step \d+ \(window\): op 3 \(ADD\) is not a 1x1 stride-1 CONV_2D; it cannot take a fused op"),
    ("fused_output_not_pixel", "stream", _ring8, None,
     r"step \d+ \(window\): fused op 1 writes tensor 8, which has a ring buffer, not a pixel one"),
    ("pixel_not_fused", "chain", _buffers(t2=(PIXEL, 1, 1, 3, 0)), None,
     r"tensor 2 has a pixel buffer, but no step fuses the op making it"),
    ("fused_output_without_buffer", "stream", _buffers(t8=None), None,
     r"step \d+ \(window\): op 2 reads tensor 8, which has no buffer"),
    ("output_without_buffer", "chain", _seq(_buffers(t19=None), _set(device_outputs=[18])), None,
     r"step 7 \(run\): op 7 writes tensor 19, which has no buffer"),
    ("window_outside_narrow_buffer", "stream", _seq(_buffers(t12=(RING, 4, 4, 8, 0)),
                                                     _set(strategy="patch", col_origin=[{12: 2}])), None,
     r"step \d+ \(window\): writes rows \[0, 1\) x columns \[0, 8\) of tensor 12, outside its ring buffer of 4 rows "
     r"x columns \[2, 6\)"),
    ("device_input_not_from_host", "chain", _extra_input, None,
     r"device input tensor 2 is neither a graph input nor made by a PRE step"),
    ("device_output_never_computed", "chain", _extra_output, None, r"device output tensor 2 is never computed"),
    ("input_steps_not_flagged", "stream", _set(streamed_input=False), None,
     r"PLAN says the input is not streamed, but the schedule has 15 INPUT steps"),
    ("inplace_without_scratch", "dw", _buffers(s1=None), None,
     r"step 0 \(run\): in-place op 0 needs a scratch buffer \(key -1\) of 64 bytes"),
    ("inplace_scratch_too_small", "dw", _buffers(s1=(FULL, 1, 1, 60, 512)), None,
     r"step 0 \(run\): in-place op 0 needs a scratch buffer \(key -1\) of 64 bytes"),
    ("scratch_of_other_step", "chain", _buffers(s5=(FULL, 1, 1, 4, 0)), None,
     r"scratch buffer -5: step 4 is not an in-place depthwise RUN"),
    ("inplace_without_alias", "dw", _seq(_buffers(t3=(FULL, 8, 8, 8, 512), s1=(FULL, 1, 1, 64, 1024)),
                                         _set(arena_bytes=1088)), None,
     r"step 0 \(run\): in-place op 0 does not alias its input"),
]
_STRUCTURE_IMAGES = {"chain": ("small_chain", "layer"), "stream": ("small_chain", "stream"), "dw": ("dw_3x3_same", "layer")}


def _replan(pk: Packed, fn, graph_fn=None) -> bytes:
    """The image of pk's graph with a plan (and graph) edited by fn: for structural changes
    that no single field can make. pack writes what it is given; unpack must refuse it."""
    plan, graph = copy.deepcopy(pk.plan), pk.lowered
    if graph_fn:
        graph = copy.deepcopy(graph)
        graph_fn(graph)
    fn(plan)
    return pack(graph, plan)


@pytest.mark.parametrize("which,fn,graph_fn,match", [pytest.param(*r[1:], id=r[0]) for r in STRUCTURE_REJECTIONS])
def test_reject_plan_structure(which, fn, graph_fn, match):
    pk = _case(*_STRUCTURE_IMAGES[which])
    _reject(_replan(pk, fn, graph_fn), match)


def test_reject_host_steps():
    """PRE and POST steps run on the host: they read host tensors, and device steps read
    only what the device holds."""
    pre = _case("quantize_f32_to_i8")  # PRE QUANTIZE: float input 0 -> device input 1
    _reject(_edit(pre.image, _put("<h", lambda b: _plan(b) + P_IO, (0,))), r"device input/output tensor 0 has no buffer")
    _reject(_edit(pre.image, _put("<B", lambda b: _step(b, 0) + S_KIND, (1,))),
            r"step 0 \(run\): op 0 reads tensor 0 before any step computes it")  # the device never sees the float input
    post = _case("dequantize_i8_to_f32")  # POST DEQUANTIZE: device output 0 -> float graph output 1
    _reject(_edit(post.image, _put("<B", lambda b: _step(b, 0) + S_KIND, (1,))),
            r"step 0 \(run\): op 0 writes tensor 1, which has no buffer")  # a float output stays on the host
    _reject(_edit(post.image, _put("<I", lambda b: _sec(b, "SCHEDULE")[0], (0,))),
            r"the schedule never runs op 0 \(0 of 1 ops run\)")


def test_reject_bool_and_list():
    g, image = _case("mean_hw_keepdims_diffscale").lowered, _case("mean_hw_keepdims_diffscale").image
    (k,) = [o.index for o in g.ops if o.kind == "MEAN"]
    _reject(_edit(image, _put("<i", _w(k, "MEAN", "empty"), (2,))), rf"op {k} \(MEAN\): 'empty' value 2 is not a bool")
    _reject(_edit(image, _put("<i", _w(k, "MEAN", "axes"), (5,))), rf"op {k} \(MEAN\): 'axes' count 5 out of range")
    _reject(_edit(image, _put("<i", _w(k, "MEAN", "axes"), (-1,))), r"'axes' count -1 out of range")
    g, image = _case("transpose_nhwc_to_nchw").lowered, _case("transpose_nhwc_to_nchw").image
    (k,) = [o.index for o in g.ops if o.kind == "TRANSPOSE"]
    _reject(_edit(image, _put("<i", _w(k, "TRANSPOSE", "perm"), (7,))), rf"op {k} \(TRANSPOSE\): 'perm' count 7 out of range")
    g, image = _case("pad_hw").lowered, _case("pad_hw").image  # a PAD that feeds no conv stays
    (k,) = [o.index for o in g.ops if o.kind == "PAD"]
    _reject(_edit(image, _put("<i", _w(k, "PAD", "paddings"), (5,))), rf"op {k} \(PAD\): 'paddings' count 5 out of range")


def test_reserved_fields_are_rejected(chain, chain_stream):
    """v3 defines no header flags and no use for reserved bytes or flag bits: a reader that
    ignored them would silently accept an image from a format it does not understand."""
    for fn, match in (
        (_put("<I", lambda b: 8, (1,)), r"header flags 0x1 set; format v3 defines none"),
        (_put("<B", lambda b: _tensor(b, 5) + 3, (9,)), r"tensor 5: reserved byte is 9"),
        (_put("<H", lambda b: _op(b, 1) + 6, (9,)), r"op 1: reserved half-word is 9"),
        (_put("<B", lambda b: _step(b, 0) + S_FLAGS, (0x80,)), r"schedule step 0: kind 1 / flags 128 invalid"),
        (_put("<B", lambda b: _buf(b, 0) + B_RES0, (1,)), r"buffer 0: kind 0 invalid or reserved fields set"),
        (_put("<I", lambda b: _buf(b, 0) + B_RES1, (1 << 31,)), r"buffer 0: kind 0 invalid or reserved fields set"),
        (_put("<I", lambda b: _plan(b) + P_FLAGS, (1 << 31,)), r"PLAN strategy 0 / halo 0 / flags 2147483648 invalid"),
    ):
        _reject(_edit(chain.image, fn), match)
    _reject(_edit(chain_stream.image, _put("<I", lambda b: _plan(b) + P_FLAGS, (3,))), r"PLAN strategy 1 / halo 1 / flags 3")


def test_limits_at_pack():
    """What format v3 cannot hold is refused when packing, not written."""
    t = ir.Tensor(0, "x", (1, 2, 3, 4, 5), "int8")
    with pytest.raises(McutoolError, match="rank 5; the image format holds at most 4"):
        pack(ir.Graph("g", [t], [], [0], [0]), Plan("layer", [], {}))
    x = ir.Tensor(0, "x", (1, 70000), "int8")
    with pytest.raises(McutoolError, match="buffer channels 70000 does not fit the image's 16-bit field"):
        pack(ir.Graph("g", [x], [], [0], [0]), Plan("layer", [], {0: Buffer(0, FULL, 1, 1, 70000, 0)}))
    with pytest.raises(McutoolError, match="step 0 op 40000 does not fit the image's 16-bit field"):
        pack(ir.Graph("g", [x], [], [0], [0]), Plan("layer", [Step(RUN, 40000)], {}))
    with pytest.raises(McutoolError, match="buffer key -40000 does not fit the image's 16-bit field"):
        pack(ir.Graph("g", [x], [], [0], [0]), Plan("layer", [], {-40000: Buffer(-40000, FULL, 1, 1, 4, 0)}))
    y = ir.Tensor(0, "y", (1, 70000, 2, 1), "int8")
    with pytest.raises(McutoolError, match="step 0 window bound 70000 does not fit"):
        pack(ir.Graph("g", [y], [], [0], [0]), Plan("stream", [Step(INPUT, 0, 0, 70000, 0, 2)], {}))


# ---- fuzz -------------------------------------------------------------------------------

_INTERESTING = np.array([0, 1, 2, 3, 4, 5, 8, 15, 16, 17, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF,
                         0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF], dtype=np.uint64)
_RECORDS = {"SCHEDULE": STEP, "BUFFERS": BUF}
_STRUCTURE = ("TENSORS", "OPS", "IO", "SCHEDULE", "BUFFERS", "PLAN")


def _mutate(rng, image: bytes) -> bytes:
    b = bytearray(image)
    # most structure lives outside DATA; aim most edits there, and many at the plan sections
    data_off, data_size = _sec(image, "DATA")
    structural = len(image) - data_size

    def pos_in(limit):
        if rng.random() < 0.85:
            p = int(rng.integers(0, structural))
            p = p if p < data_off else p + data_size
        else:
            p = int(rng.integers(0, len(image)))
        return min(p, max(limit - 1, 0))

    for _ in range(int(rng.integers(1, 4))):
        m = int(rng.integers(0, 10))
        if m == 0 and b:  # random bytes
            for _ in range(int(rng.integers(1, 5))):
                b[pos_in(len(b))] = int(rng.integers(0, 256))
        elif m == 1 and b:  # one bit
            b[pos_in(len(b))] ^= 1 << int(rng.integers(0, 8))
        elif m == 2 and len(b) >= 4:  # an interesting aligned word, u16 or u32
            pos = min(pos_in(len(b)) // 4 * 4, len(b) - 4)
            v = int(rng.choice(_INTERESTING))
            if rng.random() < 0.5:
                struct.pack_into("<I", b, pos, v & 0xFFFFFFFF)
            else:
                struct.pack_into("<H", b, pos + 2 * int(rng.integers(0, 2)), v & 0xFFFF)
        elif m == 3:  # truncate
            b = b[: int(rng.integers(0, len(b) + 1))]
        elif m == 4:  # insert
            pos = pos_in(len(b) + 1)
            b[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 33)), dtype=np.uint8).tobytes()
        elif m == 5 and b:  # delete
            pos = pos_in(len(b))
            del b[pos : pos + int(rng.integers(1, 33))]
        elif m == 6 and len(b) > HEADER_SIZE + 8:  # copy a run from elsewhere
            src, dst = (int(rng.integers(0, len(b) - 8)) for _ in range(2))
            n = int(rng.integers(1, 9))
            b[dst : dst + n] = b[src : src + n]
        elif m in (7, 8):  # a small or interesting value into a u16 of a structural section
            off, size = _sec(image, _STRUCTURE[int(rng.integers(0, len(_STRUCTURE)))])
            if size >= 2 and off + size <= len(b):
                pos = off + 2 * int(rng.integers(0, size // 2))
                v = int(rng.choice(_INTERESTING)) if m == 7 else int(rng.integers(0, 40)) - 4
                struct.pack_into("<H", b, pos, v & 0xFFFF)
        elif m == 9:  # one step or buffer record copied over another
            name = ("SCHEDULE", "BUFFERS")[int(rng.integers(0, 2))]
            off, size = _sec(image, name)
            rec = _RECORDS[name]
            n = (size - 4) // rec
            if n >= 2 and off + size <= len(b):
                i, j = (int(x) for x in rng.integers(0, n, 2))
                b[off + 4 + rec * i : off + 4 + rec * (i + 1)] = image[off + 4 + rec * j : off + 4 + rec * (j + 1)]
    return bytes(b)


def _fix(b: bytes, total: bool) -> bytes:
    """Recompute the CRC (and, if asked, total_size) so structural validation is reached."""
    if len(b) < HEADER_SIZE:
        return b
    b = bytearray(b)
    if total:
        struct.pack_into("<I", b, 12, len(b))
    return bytes(_recrc(b))


FUZZ_IMAGES = {  # name -> (how to build it, mutated images)
    "conv_3x3_same-layer": (lambda sh: _case("conv_3x3_same").image, 3000),
    "conv_3x3_same-stream": (lambda sh: _case("conv_3x3_same", "stream").image, 3000),
    "small_chain-layer": (lambda sh: _case("small_chain").image, 3000),
    "small_chain-stream": (lambda sh: _case("small_chain", "stream").image, 5000),
    "dw_3x3_same-layer": (lambda sh: _case("dw_3x3_same").image, 3000),
    "mcunet_vww1-planner": (lambda sh: sh("mcunet_vww1", "planner").image, 1000),  # PRE, POST, fused, in place
}
_FUZZ_OUTCOMES: dict[str, dict[str, int]] = {}


def _outcome(e: McutoolError) -> str:
    """The check an error comes from: its message with every value blanked (numbers, CRCs,
    flag masks, magic bytes, op kinds, dtypes and shapes)."""
    s = re.sub(r"b'(\\.|[^'\\])*'", "B", str(e))
    s = re.sub(r"\b0x[0-9a-fA-F]+|\b[0-9a-f]{8}\b", "#", s)
    s = re.sub(r"\((u?int|float|bool)\d* \([^)]*\)\)", "(T)", s)
    s = re.sub(r"\([A-Z][A-Z0-9_]*\)", "(K)", s)
    return re.sub(r"-?\d+", "#", s)[:60]


@pytest.mark.parametrize("name", list(FUZZ_IMAGES))
def test_fuzz_unpack(shared, name):
    build, n = FUZZ_IMAGES[name]
    image = build(shared)
    rng = np.random.default_rng(_seed("fuzz-" + name))
    outcomes: dict[str, int] = {}
    t0 = time.perf_counter()
    for case in range(n):
        b = _mutate(rng, image)
        mode = case % 4  # 0: CRC left stale; 1: CRC fixed; 2, 3: CRC and total size fixed
        if mode:
            b = _fix(b, total=mode >= 2)
        try:
            graph, plan = unpack(b)
        except McutoolError as e:
            key = _outcome(e)
            outcomes[key] = outcomes.get(key, 0) + 1
            continue
        except Exception as e:  # pragma: no cover - the failure report
            raise AssertionError(f"case {case} (mode {mode}): {type(e).__name__}: {e}; image {b.hex()[:400]}...") from e
        outcomes["ok"] = outcomes.get("ok", 0) + 1
        # whatever the reader accepts, the writer can write again, and the reader read back
        try:
            unpack(pack(graph, plan))
        except Exception as e:  # pragma: no cover - the failure report
            raise AssertionError(f"case {case} (mode {mode}): accepted, but repacking fails: {type(e).__name__}: {e}") from e
    assert time.perf_counter() - t0 < 20
    _FUZZ_OUTCOMES[name] = outcomes
    # the fuzz reached deep into the reader, not only the CRC check
    assert outcomes.get("ok", 0) > 0 and len(outcomes) >= 40, outcomes
    assert any("CRC" in k for k in outcomes) and any(k.startswith("image: step") for k in outcomes), outcomes


def test_fuzz_is_deterministic():
    image = _case("small_chain", "stream").image
    digests = []
    for _ in range(2):
        rng = np.random.default_rng(_seed("fuzz-small_chain-stream"))
        h = hashlib.sha256()
        for _ in range(200):
            h.update(_mutate(rng, image))
        digests.append(h.hexdigest())
    assert digests[0] == digests[1]


def test_fuzz_reaches_many_errors():
    """Over all fuzzed images, the mutations reach many distinct checks, plan checks among them."""
    if len(_FUZZ_OUTCOMES) != len(FUZZ_IMAGES):
        pytest.skip("needs every test_fuzz_unpack case run first in this session")
    keys = set().union(*_FUZZ_OUTCOMES.values()) - {"ok"}
    assert len(keys) >= 100, len(keys)
    for part in ("schedule step", "buffer", "PLAN", "step # (window)", "step # (input)", "step # (run)", "alias",
                 "never runs op", "reads tensor # before", "arena offset", "section"):
        assert any(part in k for k in keys), part
