"""Flash image format v1 (docs/flash-image.md): round trips, alignment, every rejection, fuzz.

Rejection tests edit one field of a real image and recompute the CRC, so the check they
reach is the one they target; the fuzz feeds mutated images to `unpack` and accepts only
success or McutoolError.
"""
from __future__ import annotations

import re
import struct
import time
import zlib

import numpy as np
import pytest

import modelgen
from mcutool.errors import McutoolError
from mcutool.image.format import (
    ALIGN,
    HEADER_SIZE,
    NONE32,
    SECTIONS,
    TENSOR_ENTRY,
    pack,
    read_header,
    unpack,
)
from mcutool.image.opparams import BOOL, F32, I32, LAYOUTS
from mcutool.model import load_model
from mcutool.plan import layer_by_layer
from mcutool.quant.prepare import prepare_graph
from mcutool.ref.executor import run
from mcutool.tflite_import import parse_tflite

SHARED_INT8 = ["person_detect", "mcunet_vww1", "mcunet_person_det", "fomo_mask_int8", "mobilenet_v2_224_int8"]
CASE_IDS = [cid for cid, _ in modelgen.CASES]
_FACTORIES = dict(modelgen.CASES)


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def _prepared_case(cid: str):
    """The prepared graph of a generated case, or None if mcutool refuses it."""
    try:
        return prepare_graph(parse_tflite(_FACTORIES[cid](np.random.default_rng(_seed(cid)))))
    except McutoolError:
        return None


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
    struct.pack_into("<I", b, 28, 0)
    struct.pack_into("<I", b, 28, zlib.crc32(bytes(b[:HEADER_SIZE])) & 0xFFFFFFFF)
    return b


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
def shared(models):
    """model name -> (graph, plan, image) for every shared int8 model."""
    out = {}
    for name in SHARED_INT8:
        g = load_model(models / f"{name}.tflite")
        p = layer_by_layer(g)
        out[name] = (g, p, pack(g, p))
    return out


def _case_image(cid):
    g = _prepared_case(cid)
    p = layer_by_layer(g)
    return g, p, pack(g, p)


@pytest.fixture(scope="module")
def chain():
    """small_chain: PAD, CONV_2D, DEPTHWISE_CONV_2D, ADD, AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX."""
    return _case_image("small_chain")


@pytest.fixture(scope="module")
def mean_img():
    return _case_image("mean_hw_keepdims_diffscale")


@pytest.fixture(scope="module")
def transpose_img():
    return _case_image("transpose_nhwc_to_nchw")


# ---- round trips ------------------------------------------------------------------------


def _check_round_trip(g, p, image, seed):
    g2, p2 = unpack(image)
    assert pack(g2, p2) == image
    assert p2.arena_bytes == p.arena_bytes and p2.offsets == p.offsets and p2.steps == p.steps
    xs = _random_inputs(g, seed)
    want, got = run(g, xs), run(g2, xs)
    assert len(want) == len(got)
    for w, y in zip(want, got):
        assert w.dtype == y.dtype and w.shape == y.shape
        np.testing.assert_array_equal(w, y)


@pytest.mark.parametrize("name", SHARED_INT8)
def test_round_trip_shared_model(shared, name):
    g, p, image = shared[name]
    _check_round_trip(g, p, image, _seed(name))


@pytest.mark.parametrize("cid", CASE_IDS)
def test_round_trip_generated_case(cid):
    g = _prepared_case(cid)
    if g is None:
        pytest.skip("mcutool refuses this case at prepare time")
    p = layer_by_layer(g)
    _check_round_trip(g, p, pack(g, p), _seed(cid))


def test_float_model_is_refused(models):
    with pytest.raises(McutoolError):
        g = load_model(models / "vww_96_float.tflite")
        pack(g, layer_by_layer(g))


def test_header_fields(shared):
    g, p, image = shared["person_detect"]
    magic, ver, hsize, flags, total, crc, n_t, n_ops, arena, hcrc = struct.unpack_from("<4sHHIIIHHII", image)
    assert (magic, ver, hsize, flags) == (b"MCUN", 1, 96, 0)
    zeroed = bytearray(image[:HEADER_SIZE])
    zeroed[28:32] = b"\0\0\0\0"
    assert hcrc == zlib.crc32(bytes(zeroed)) & 0xFFFFFFFF
    assert total == len(image) and total % ALIGN == 0
    assert crc == zlib.crc32(image[HEADER_SIZE:]) & 0xFFFFFFFF
    assert (n_t, n_ops, arena) == (len(g.tensors), len(g.ops), p.arena_bytes)
    assert image[80:96] == bytes(16)
    info = read_header(image)
    assert list(info.sections) == list(SECTIONS)
    ends = HEADER_SIZE
    for name in SECTIONS:  # written in table order, each 16-aligned, padding between
        off, size = info.sections[name]
        assert off == (ends + ALIGN - 1) // ALIGN * ALIGN
        ends = off + size
    assert total == (ends + ALIGN - 1) // ALIGN * ALIGN


# ---- alignment --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHARED_INT8 + ["small_chain", "resize_nn_2x", "fc_per_channel"])
def test_alignment(shared, name):
    g, p, image = shared[name] if name in shared else _case_image(name)
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
    for t, off in p.offsets.items():
        assert off % 4 == 0, t


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
    _reject(chain[2][:cut], rf"truncated: {cut} bytes, a header needs 96")


def test_reject_truncated_body(chain):
    image = chain[2]
    total = len(image)
    for cut in (HEADER_SIZE, _sec(image, "TENSORS")[0] + 7, _sec(image, "OPS")[0] + 5, _sec(image, "DATA")[0] + 100,
                total - 1):
        _reject(image[:cut], rf"truncated: {cut} bytes, header says {total}")


def test_reject_every_truncation(fuzz_images):
    image = fuzz_images["conv_3x3_same"]
    for cut in range(len(image)):
        with pytest.raises(McutoolError, match=r"truncated: \d+ bytes, (a header needs 96|header says \d+)"):
            unpack(image[:cut])


def test_reject_bad_magic(chain):
    _reject(b"MCUX" + chain[2][4:], r"not an mcutool flash image")
    _reject(b"\x89PNG\r\n", r"not an mcutool flash image")  # short non-images are not "truncated"
    _reject(b"TFL3" + bytes(200), r"not an mcutool flash image")


def test_reject_version(chain):
    b = bytearray(chain[2])
    struct.pack_into("<H", b, 4, 2)
    _reject(b, r"format version 2; this mcutool reads version 1")
    struct.pack_into("<H", b, 4, 0)
    _reject(b, r"format version 0")


def test_reject_header_size(chain):
    b = bytearray(chain[2])
    struct.pack_into("<H", b, 6, 64)
    _reject(b, r"header size 64, version 1 has 96")


def test_reject_trailing_bytes(chain):
    _reject(chain[2] + b"\0", r"1 bytes after the image end")
    _reject(chain[2] + bytes(16), r"16 bytes after the image end")


def test_reject_total_size_lies(chain):
    b = bytearray(chain[2])
    struct.pack_into("<I", b, 12, len(b) - 16)
    _reject(b, r"header CRC32 mismatch")
    _reject(_rehdr(b), r"16 bytes after the image end")


def test_reject_every_flipped_bit_after_header(chain):
    """One flipped bit anywhere in [header_size, total) is a CRC mismatch."""
    image = chain[2]
    b = bytearray(image)
    for pos in range(HEADER_SIZE, len(b)):
        for bit in range(8):
            b[pos] ^= 1 << bit
            with pytest.raises(McutoolError, match="CRC32 mismatch"):
                read_header(b)
            b[pos] ^= 1 << bit
    assert bytes(b) == image


def test_reject_crc_field(chain):
    b = bytearray(chain[2])
    b[16] ^= 1
    _reject(b, r"header CRC32 mismatch \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\): the header is corrupt")
    _reject(_rehdr(b), r"CRC32 mismatch \(header [0-9a-f]{8}, content [0-9a-f]{8}\)")


def test_reject_every_flipped_bit_in_header(chain):
    """The header checks itself: one flipped bit anywhere in it is caught, never misread."""
    b = bytearray(chain[2])
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
    _sec_case("offset_in_header", lambda b: _set_sec(b, "STRINGS", 80, 8), r"section STRINGS at 80 .*lies outside"),
    _sec_case("offset_past_end", lambda b: _set_sec(b, "IO", len(b) + 16, 0), r"section IO .*lies outside"),
    _sec_case("size_wraps", lambda b: _set_sec(b, "IO", _sec(b, "IO")[0], 0xFFFFFFF0), r"section IO .*lies outside"),
    _sec_case("misaligned", lambda b: _set_sec(b, "OPS", _sec(b, "OPS")[0] + 4, _sec(b, "OPS")[1] - 4),
              r"section OPS at \d+ \(\+\d+\) .*misaligned"),
    _sec_case("overlap_same_start", lambda b: _set_sec(b, "IO", *_sec(b, "OPS")), r"sections (OPS and IO|IO and OPS) overlap"),
    _sec_case("overlap_grown", lambda b: _set_sec(b, "TENSORS", _sec(b, "TENSORS")[0], _sec(b, "TENSORS")[1] + 16),
              r"sections TENSORS and OPS overlap"),
]


@pytest.mark.parametrize("fn,match", SECTION_CASES)
def test_reject_section_table(chain, fn, match):
    _reject(_edit(chain[2], fn), match)


def test_empty_section_may_touch_its_neighbour(chain):
    """A zero-size section at a neighbour's start is not an overlap (pack writes these)."""
    b = _edit(chain[2], lambda b: _set_sec(b, "SCHEDULE", _sec(b, "DATA")[0], 0))
    read_header(b)


def _put(fmt, where, value):
    """An edit writing `value` (struct format fmt) at offset where(b)."""
    return lambda b: struct.pack_into(fmt, b, where(b), *(value(b) if callable(value) else value))


# tensors of small_chain: 0 input, 1 PAD paddings (const int32), 3 bias, 4 conv weights, 5 activation,
# 19 output; ops: 0 PAD, 1 CONV_2D, 2 DW, 3 CONV_2D, 4 ADD, 5 AVG_POOL, 6 RESHAPE, 7 FC, 8 SOFTMAX
def _data_len(b):
    return _sec(b, "DATA")[1]


def _w(k, kind, field, extra=0):
    return lambda b: _op_words(b, k) + 4 * (word_index(kind, field) + extra)


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
    ("quant_flag_cleared", _put("<B", lambda b: _tensor(b, 4) + T_FLAGS, (1,)), r"tensor 4: quantization record on a tensor not flagged"),
    ("const_input", _put("<B", lambda b: _tensor(b, 4) + T_FLAGS, (3 | 8,)), r"tensor 4: a constant cannot be a graph input"),
    ("const_data_past_data", _put("<I", lambda b: _tensor(b, 4) + T_DOFF, lambda b: (_data_len(b) // 16 * 16,)),
     r"tensor 4: constant data at \d+ \(\+216\) invalid for int8 \(8, 3, 3, 3\)"),
    ("const_data_none", _put("<I", lambda b: _tensor(b, 4) + T_DOFF, (NONE32,)), r"tensor 4: constant data at 4294967295"),
    ("const_data_misaligned", _put("<I", lambda b: _tensor(b, 4) + T_DOFF, lambda b: (_u32(b, _tensor(b, 4) + T_DOFF) + 4,)),
     r"tensor 4: constant data at \d+ \(\+216\) invalid"),
    ("const_data_size", _put("<I", lambda b: _tensor(b, 4) + T_DSIZE, (215,)), r"tensor 4: constant data at \d+ \(\+215\)"),
    ("const_dims_overflow", _put("<4I", lambda b: _tensor(b, 4) + T_DIMS, (1 << 31, 1 << 31, 4, 1)),
     r"tensor 4: constant data at \d+ \(\+216\) invalid for int8 \(2147483648, 2147483648, 4, 1\)"),
    ("const_dims_zero_size", lambda b: (struct.pack_into("<4I", b, _tensor(b, 4) + T_DIMS, 1 << 31, 1 << 31, 4, 1),
                                        struct.pack_into("<I", b, _tensor(b, 4) + T_DSIZE, 0)),
     r"tensor 4: constant data at \d+ \(\+0\) invalid"),
    ("arena_past_end", _put("<I", lambda b: _tensor(b, 5) + T_AOFF, lambda b: (struct.unpack_from("<I", b, 24)[0],)),
     r"tensor 5: arena offset \d+ overruns the \d+-byte arena"),
    ("arena_dims_overflow", _put("<4I", lambda b: _tensor(b, 5) + T_DIMS, (0xFFFFFFFF,) * 4),
     r"tensor 5: arena offset \d+ overruns"),
    ("arena_misaligned", _put("<I", lambda b: _tensor(b, 5) + T_AOFF, lambda b: (_u32(b, _tensor(b, 5) + T_AOFF) + 2,)),
     r"tensor 5: arena offset \d+ is not a multiple of 4"),
    ("quant_past_data", _put("<I", lambda b: _tensor(b, 4) + T_QOFF, lambda b: (_data_len(b) // 16 * 16,)),
     r"tensor 4: quantization record"),
    ("quant_misaligned", _put("<I", lambda b: _tensor(b, 4) + T_QOFF, lambda b: (_u32(b, _tensor(b, 4) + T_QOFF) + 4,)),
     r"tensor 4: quantization record at \d+ outside DATA or misaligned"),
    ("quant_channels_huge", _put("<I", lambda b: _sec(b, "DATA")[0] + _u32(b, _tensor(b, 4) + T_QOFF), (1 << 30,)),
     r"tensor 4: quantization record of 1073741824 channels \(1 to 65536 allowed\)"),
    ("quant_channels_past_data", _put("<I", lambda b: _sec(b, "DATA")[0] + _u32(b, _tensor(b, 4) + T_QOFF), (60000,)),
     r"tensor 4: quantization record of 60000 channels outside DATA"),
    ("quant_channels_zero", _put("<I", lambda b: _sec(b, "DATA")[0] + _u32(b, _tensor(b, 4) + T_QOFF), (0,)),
     r"tensor 4: quantization record of 0 channels \(1 to 65536 allowed\)"),
    ("quant_axis", _put("<I", lambda b: _sec(b, "DATA")[0] + _u32(b, _tensor(b, 4) + T_QOFF) + 4, (4,)),
     r"tensor 4: quantization axis 4 out of range for rank 4"),
    # OPS
    ("ops_count", _put("<H", lambda b: 22, (1000,)), r"OPS section too short for 1000 ops"),
    ("op_offset_out", _put("<I", lambda b: _sec(b, "OPS")[0] + 4, lambda b: (_sec(b, "OPS")[1] - 4,)),
     r"op 1: record at \d+ outside the OPS section"),
    ("op_offset_misaligned", _put("<I", lambda b: _sec(b, "OPS")[0] + 4, lambda b: (_u32(b, _sec(b, "OPS")[0] + 4) + 2,)),
     r"op 1: record at \d+ outside the OPS section or misaligned"),
    ("opcode_0", _put("<H", lambda b: _op(b, 1), (0,)), r"op 1: unknown op code 0"),
    ("opcode_999", _put("<H", lambda b: _op(b, 8), (999,)), r"op 8: unknown op code 999"),
    ("op_tensor_index_high", _put("<h", lambda b: _op_io(b, 1), (20,)), r"op 1 \(CONV_2D\): tensor index out of range in \[20, 4, 3, 5\]"),
    ("op_tensor_index_low", _put("<h", lambda b: _op_io(b, 1) + 2, (-2,)), r"op 1 \(CONV_2D\): tensor index out of range"),
    ("op_output_absent", _put("<h", lambda b: _op_io(b, 1) + 6, (-1,)), r"op 1 \(CONV_2D\): tensor index out of range"),
    ("op_no_output", lambda b: (struct.pack_into("<BB", b, _op(b, 5) + 2, 2, 0)),
     r"op 5 \(AVERAGE_POOL_2D\): op has no output"),
    ("op_activation_without_arena", _put("<I", lambda b: _tensor(b, 13) + T_AOFF, (NONE32,)),
     r"op 5 \(AVERAGE_POOL_2D\): activation tensor 13 has no arena offset"),
    ("params_short", _put("<H", lambda b: _op(b, 1) + 4, (record_words("CONV_2D") - 1,)),
     r"op 1 \(CONV_2D\): parameter record too short"),
    ("params_long", _put("<H", lambda b: _op(b, 1) + 4, (record_words("CONV_2D") + 1,)),
     r"op 1 \(CONV_2D\): parameter record has 17 words, CONV_2D needs 16"),
    ("params_overrun", _put("<H", lambda b: _op(b, 8) + 4, (5000,)), r"op 8 \(SOFTMAX\): record overruns the OPS section"),
    ("enum_fc_rounding", _put("<i", _w(7, "FULLY_CONNECTED", "rounding"), (2,)),
     r"op 7 \(FULLY_CONNECTED\): 'rounding' value 2 out of range"),
    ("enum_softmax_negative", _put("<i", _w(8, "SOFTMAX", "out_dtype"), (-1,)),
     r"op 8 \(SOFTMAX\): 'out_dtype' value -1 out of range"),
    ("pairs_count", _put("<i", _w(0, "PAD", "paddings"), (5,)), r"op 0 \(PAD\): 'paddings' count 5 out of range"),
    ("array_past_data", _put("<i", _w(1, "CONV_2D", "multiplier"), lambda b: (_data_len(b) // 16 * 16,)),
     r"op 1 \(CONV_2D\): 'multiplier' array at \d+ \(\+8\) lies outside the DATA section"),
    ("array_misaligned", _put("<i", _w(2, "DEPTHWISE_CONV_2D", "shift"), lambda b: (struct.unpack_from("<i", b, _w(2, "DEPTHWISE_CONV_2D", "shift")(b))[0] + 4,)),
     r"op 2 \(DEPTHWISE_CONV_2D\): 'shift' array at \d+ \(\+8\) lies outside the DATA section or is misaligned"),
    ("array_negative_offset", _put("<i", _w(7, "FULLY_CONNECTED", "multiplier"), (-16,)), r"'multiplier' array at -16"),
    ("array_negative_count", _put("<i", _w(7, "FULLY_CONNECTED", "shift", 1), (-1,)), r"'shift' array at \d+ \(\+-1\)"),
    ("array_huge_count", _put("<i", _w(7, "FULLY_CONNECTED", "shift", 1), (0x7FFFFFFF,)), r"'shift' array at \d+ \(\+2147483647\)"),
    # IO
    ("io_empty", lambda b: _set_sec(b, "IO", _sec(b, "IO")[0], 2), r"IO section too short$"),
    ("io_counts", _put("<HH", lambda b: _sec(b, "IO")[0], (1, 3)), r"IO section too short for 1 inputs and 3 outputs"),
    ("io_out_of_range", _put("<H", lambda b: _sec(b, "IO")[0] + 4, (20,)), r"IO section names a tensor out of range"),
    ("io_disagrees_with_flags", _put("<H", lambda b: _sec(b, "IO")[0] + 4, (2,)),
     r"tensor 0: input/output flags disagree with the IO section"),
    ("io_flag_missing", _put("<B", lambda b: _tensor(b, 19) + T_FLAGS, (0,)), r"tensor 19: input/output flags disagree"),
    ("io_without_arena", lambda b: (struct.pack_into("<I", b, _tensor(b, 19) + T_AOFF, NONE32),
                                    struct.pack_into("<h", b, _op_io(b, 8) + 2, 18)),  # no op names 19 now
     r"graph input/output tensor 19 has no arena offset"),
    ("op_output_without_arena", _put("<I", lambda b: _tensor(b, 19) + T_AOFF, (NONE32,)),
     r"op 8 \(SOFTMAX\): activation tensor 19 has no arena offset"),
    # SCHEDULE
    ("schedule_empty", lambda b: _set_sec(b, "SCHEDULE", _sec(b, "SCHEDULE")[0], 3), r"SCHEDULE section too short"),
    ("schedule_count", _put("<I", lambda b: _sec(b, "SCHEDULE")[0], (10,)), r"SCHEDULE holds fewer than its 10 steps"),
    ("schedule_count_huge", _put("<I", lambda b: _sec(b, "SCHEDULE")[0], (0xFFFFFFFF,)), r"SCHEDULE holds fewer than its 4294967295 steps"),
    ("schedule_missing_op", _put("<HH", lambda b: _sec(b, "SCHEDULE")[0] + 4 + 4 * 3, (1, 9)),
     r"schedule step 3 \(kind 1, op 9\) invalid"),
    ("schedule_unknown_kind", _put("<HH", lambda b: _sec(b, "SCHEDULE")[0] + 4, (2, 0)), r"schedule step 0 \(kind 2, op 0\) invalid"),
    ("schedule_repeats_op", _put("<HH", lambda b: _sec(b, "SCHEDULE")[0] + 4 + 4 * 1, (1, 0)),
     r"schedule step 1 runs op 0 a second time"),
    ("schedule_before_input", _put("<HHHH", lambda b: _sec(b, "SCHEDULE")[0] + 4, (1, 1, 1, 0)),
     r"schedule step 0 runs op 1 before its input tensor \d+ is computed"),
    ("schedule_short", _put("<I", lambda b: _sec(b, "SCHEDULE")[0], (8,)), r"the schedule runs 8 of 9 ops"),
]


@pytest.mark.parametrize("fn,match", [pytest.param(f, m, id=i) for i, f, m in CHAIN_CASES])
def test_reject_chain(chain, fn, match):
    _reject(_edit(chain[2], fn), match)


def test_reject_bool_and_list(mean_img, transpose_img):
    g, _, image = mean_img
    (k,) = [o.index for o in g.ops if o.kind == "MEAN"]
    _reject(_edit(image, _put("<i", _w(k, "MEAN", "empty"), (2,))), rf"op {k} \(MEAN\): 'empty' value 2 is not a bool")
    _reject(_edit(image, _put("<i", _w(k, "MEAN", "axes"), (5,))), rf"op {k} \(MEAN\): 'axes' count 5 out of range")
    _reject(_edit(image, _put("<i", _w(k, "MEAN", "axes"), (-1,))), r"'axes' count -1 out of range")
    g, _, image = transpose_img
    (k,) = [o.index for o in g.ops if o.kind == "TRANSPOSE"]
    _reject(_edit(image, _put("<i", _w(k, "TRANSPOSE", "perm"), (7,))), rf"op {k} \(TRANSPOSE\): 'perm' count 7 out of range")


def test_reserved_fields_are_rejected(chain):
    """v1 defines no header flags and no use for reserved bytes: a reader that ignored
    them would silently accept an image from a format it does not understand."""
    image = chain[2]
    for fn, match in (
        (_put("<I", lambda b: 8, (1,)), r"header flags 0x1 set"),
        (_put("<B", lambda b: 80, (7,)), r"reserved header bytes are not zero"),
        (_put("<B", lambda b: _tensor(b, 5) + 3, (9,)), r"tensor 5: reserved byte is 9"),
        (_put("<H", lambda b: _op(b, 1) + 6, (9,)), r"op 1: reserved half-word is 9"),
    ):
        _reject(_edit(image, fn), match)


def test_rank_and_op_limits_at_pack():
    """What format v1 cannot hold is refused when packing, not written."""
    from mcutool.ir import Graph, Tensor
    from mcutool.plan.arena import Plan

    t = Tensor(0, "x", (1, 2, 3, 4, 5), "int8")
    with pytest.raises(McutoolError, match="rank 5; format v1 holds at most 4"):
        pack(Graph("g", [t], [], [0], [0]), Plan(120, {0: 0}, []))


# ---- fuzz -------------------------------------------------------------------------------

_INTERESTING = np.array([0, 1, 2, 3, 4, 15, 16, 17, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF,
                         0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF], dtype=np.uint64)


def _mutate(rng, image: bytes) -> bytes:
    b = bytearray(image)
    # most structure lives before DATA; aim most edits there
    data_off = _sec(image, "DATA")[0]
    hot = data_off if rng.random() < 0.85 else len(b)
    for _ in range(int(rng.integers(1, 4))):
        m = int(rng.integers(0, 7))
        if m == 0 and b:  # random bytes
            for _ in range(int(rng.integers(1, 5))):
                b[int(rng.integers(0, min(hot, len(b))))] = int(rng.integers(0, 256))
        elif m == 1 and b:  # one bit
            b[int(rng.integers(0, min(hot, len(b))))] ^= 1 << int(rng.integers(0, 8))
        elif m == 2 and len(b) >= 4:  # an interesting aligned word, u16 or u32
            pos = int(rng.integers(0, min(hot, len(b)) // 4)) * 4
            v = int(rng.choice(_INTERESTING))
            if rng.random() < 0.5:
                struct.pack_into("<I", b, pos, v & 0xFFFFFFFF)
            else:
                struct.pack_into("<H", b, pos + 2 * int(rng.integers(0, 2)), v & 0xFFFF)
        elif m == 3:  # truncate
            b = b[: int(rng.integers(0, len(b) + 1))]
        elif m == 4:  # insert
            pos = int(rng.integers(0, min(hot, len(b)) + 1))
            b[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 33)), dtype=np.uint8).tobytes()
        elif m == 5 and b:  # delete
            pos = int(rng.integers(0, min(hot, len(b))))
            del b[pos : pos + int(rng.integers(1, 33))]
        elif m == 6 and len(b) > HEADER_SIZE:  # copy a run from elsewhere
            src, dst = (int(rng.integers(0, len(b) - 8)) for _ in range(2))
            n = int(rng.integers(1, 9))
            b[dst : dst + n] = b[src : src + n]
    return bytes(b)


def _fix(b: bytes, total: bool) -> bytes:
    """Recompute the CRC (and, if asked, total_size) so structural validation is reached."""
    if len(b) < HEADER_SIZE:
        return b
    b = bytearray(b)
    if total:
        struct.pack_into("<I", b, 12, len(b))
    return bytes(_recrc(b))


@pytest.fixture(scope="module")
def fuzz_images(shared):
    return {"conv_3x3_same": _case_image("conv_3x3_same")[2], "small_chain": _case_image("small_chain")[2],
            "fomo_mask_int8": shared["fomo_mask_int8"][2]}


N_FUZZ = 3000


@pytest.mark.parametrize("name", ["conv_3x3_same", "small_chain", "fomo_mask_int8"])
def test_fuzz_unpack(fuzz_images, name):
    image = fuzz_images[name]
    rng = np.random.default_rng(_seed("fuzz-" + name))
    outcomes: dict[str, int] = {}
    t0 = time.perf_counter()
    for case in range(N_FUZZ):
        b = _mutate(rng, image)
        mode = case % 4  # 0: CRC left stale; 1: CRC fixed; 2, 3: CRC and total size fixed
        if mode:
            b = _fix(b, total=mode >= 2)
        try:
            graph, plan = unpack(b)
        except McutoolError as e:
            key = re.sub(r"-?\d+", "#", str(e))[:50]
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
    # the fuzz reached deep into the reader, not only the CRC check
    assert outcomes.get("ok", 0) > 0 and len(outcomes) >= 20, outcomes
