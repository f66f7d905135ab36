"""Flash image format v3: pack a lowered graph and its plan; read one back, validating all.

The layout is specified in docs/flash-image.md; this module is its host implementation.
Everything is little-endian with fixed-width fields and offsets (never pointers), so the
C engine can read the image in place from memory-mapped flash.
"""
from __future__ import annotations

import math
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from .. import ir
from ..errors import McutoolError
from ..ops import OPCODES, OPNAMES
from ..plan.arena import ARENA_ALIGN
from ..plan.model import FULL, INPUT, PIXEL, POST, PRE, RING, RUN, WINDOW, Plan
from ..plan.windows import SPATIAL, in_range, streamable
from ..ref.conv import RQ_WORDS, rq_multipliers
from . import planrec
from .opcheck import check_device_op
from .opparams import BOOL, F32, I32, LAYOUTS

MAGIC = b"MCUN"
VERSION = 3
HEADER_SIZE = 96
ALIGN = 16  # constants start on 16-byte boundaries: word reads from XIP flash on M0+ and Xtensa
NONE32 = 0xFFFFFFFF
MAX_RANK = 4

SECTIONS = ("STRINGS", "TENSORS", "OPS", "IO", "SCHEDULE", "DATA", "BUFFERS", "PLAN")
_HEADER = struct.Struct("<4sHHIIIHHII")  # magic, version, header_size, flags, total, crc, n_t, n_ops, arena, header_crc
HEADER_CRC_AT = 28  # the header checksum: CRC32 of the 96 header bytes with this word zeroed
_SECTION = struct.Struct("<II")  # offset, size
_TENSOR = struct.Struct("<BBBB4IfiIIIII")  # 48 bytes
TENSOR_ENTRY = _TENSOR.size
DTYPES = {"int8": 1, "int32": 2, "float32": 3, "uint8": 4, "int16": 5, "int64": 6, "bool": 7}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
T_CONST, T_INPUT, T_OUTPUT, T_QUANT = 1, 2, 4, 8
T_ALL = T_CONST | T_INPUT | T_OUTPUT | T_QUANT
MAX_TENSORS = 0x7FFF  # op records name tensors with int16 (-1 = absent)
MAX_DIM = 0xFFFF  # buffer geometry is u16; the engine's int32 index arithmetic needs the next limit
MAX_BYTES = 0x7FFFFFFF  # product of the dims (0 taken as 1) times the element size: every partial product fits int32

assert _HEADER.size == 32 and TENSOR_ENTRY == 48 and _HEADER.size + 8 * len(SECTIONS) == HEADER_SIZE


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


class _Data:
    """The DATA section under construction: aligned blobs, offsets relative to the section."""

    def __init__(self):
        self.buf = bytearray()

    def add(self, raw: bytes) -> int:
        self.buf += b"\0" * (_align(len(self.buf)) - len(self.buf))
        off = len(self.buf)
        self.buf += raw
        return off


def _le(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


# ---- op parameter records ---------------------------------------------------------------


def _encode_params(op: ir.Op, data: _Data) -> list[int]:
    words: list[int] = []
    d = op.data
    for name, kind in LAYOUTS[op.kind]:
        if name not in d:
            raise McutoolError(f"op {op.index} ({op.kind}): prepared data lacks '{name}'")
        v = d[name]
        if kind == I32:
            words.append(int(v))
        elif kind == BOOL:
            words.append(1 if v else 0)
        elif kind == F32:
            words.append(struct.unpack("<i", struct.pack("<f", float(v)))[0])
        elif kind[0] == I32:
            if len(v) != kind[1]:
                raise McutoolError(f"op {op.index} ({op.kind}): '{name}' has {len(v)} values, expected {kind[1]}")
            words += [int(x) for x in v]
        elif kind[0] == "arr":
            a = np.asarray(v).astype(kind[1])
            words += [data.add(_le(a)), a.size]
        elif kind[0] == "list":
            if len(v) > kind[1]:
                raise McutoolError(f"op {op.index} ({op.kind}): '{name}' has {len(v)} entries, the image format holds {kind[1]}")
            words += [len(v)] + [int(x) for x in v] + [0] * (kind[1] - len(v))
        elif kind[0] == "pairs":
            if len(v) > kind[1]:
                raise McutoolError(f"op {op.index} ({op.kind}): '{name}' has {len(v)} pairs, the image format holds {kind[1]}")
            words += [len(v)] + [int(x) for p in v for x in p] + [0] * (2 * (kind[1] - len(v)))
        elif kind[0] == "enum":
            words.append(kind[1].index(v))
    return words


def _decode_params(kind_name: str, words: list[int], data: bytes, where: str) -> dict:
    d = {}
    pos = 0

    def take(n):
        nonlocal pos
        if pos + n > len(words):
            raise McutoolError(f"{where}: parameter record too short", check=34)
        pos += n
        return words[pos - n : pos]

    for name, kind in LAYOUTS[kind_name]:
        if kind == I32:
            d[name] = take(1)[0]
        elif kind == BOOL:
            v = take(1)[0]
            if v not in (0, 1):
                raise McutoolError(f"{where}: '{name}' value {v} is not a bool (0 or 1)", check=35)
            d[name] = bool(v)
        elif kind == F32:
            d[name] = struct.unpack("<f", struct.pack("<i", take(1)[0]))[0]
        elif kind[0] == I32:
            d[name] = tuple(take(kind[1]))
        elif kind[0] == "arr":
            off, count = take(2)
            dt = np.dtype(kind[1]).newbyteorder("<")
            if off < 0 or count < 0 or off % ALIGN or off + count * dt.itemsize > len(data):
                raise McutoolError(f"{where}: '{name}' array at {off} (+{count}) lies outside the DATA section or is misaligned", check=36)
            d[name] = np.frombuffer(data, dt, count, off).astype(kind[1])
        elif kind[0] == "list":
            n, *vals = take(1 + kind[1])
            if not 0 <= n <= kind[1]:
                raise McutoolError(f"{where}: '{name}' count {n} out of range", check=37)
            d[name] = tuple(vals[:n])
        elif kind[0] == "pairs":
            n, *vals = take(1 + 2 * kind[1])
            if not 0 <= n <= kind[1]:
                raise McutoolError(f"{where}: '{name}' count {n} out of range", check=37)
            d[name] = [(vals[2 * i], vals[2 * i + 1]) for i in range(n)]
        elif kind[0] == "enum":
            v = take(1)[0]
            if not 0 <= v < len(kind[1]):
                raise McutoolError(f"{where}: '{name}' value {v} out of range", check=38)
            d[name] = kind[1][v]
    if pos != len(words):
        raise McutoolError(f"{where}: parameter record has {len(words)} words, {kind_name} needs {pos}", check=39)
    return d


# ---- packing ----------------------------------------------------------------------------


def pack(graph: ir.Graph, plan: Plan) -> bytes:
    """The flash image of a lowered, prepared graph and the plan made for it."""
    strings = bytearray()

    def string(s: str) -> int:
        off = len(strings)
        strings.extend(s.encode("utf-8") + b"\0")
        return off

    string(graph.name)
    data = _Data()
    tensors = bytearray()
    ins, outs = set(graph.inputs), set(graph.outputs)
    if len(graph.tensors) > MAX_TENSORS or len(graph.ops) > 0xFFFF:
        raise McutoolError(f"{len(graph.tensors)} tensors / {len(graph.ops)} ops; the image format holds {MAX_TENSORS} / 65535")
    for t in graph.tensors:
        if len(t.shape) > MAX_RANK:
            raise McutoolError(f"tensor {t.index} ({t.name}) has rank {len(t.shape)}; the image format holds at most {MAX_RANK}")
        flags = (T_CONST if t.is_const else 0) | (T_INPUT if t.index in ins else 0) | (T_OUTPUT if t.index in outs else 0)
        flags |= T_QUANT if t.quant is not None else 0
        dims = list(t.shape) + [0] * (MAX_RANK - len(t.shape))
        scale, zp, qoff = 0.0, 0, NONE32
        if t.quant is not None:
            scale, zp = t.quant.s, t.quant.zp
            # a constant's per-channel scales are in its op's multipliers already (the device
            # reads none): only the first channel's stays, in the entry
            if t.quant.scale.size > 1 and not t.is_const:
                q = t.quant
                qoff = data.add(
                    struct.pack("<II", q.scale.size, q.axis) + _le(q.scale.astype(np.float32)) + _le(q.zero_point.astype(np.int32))
                )
        doff, dsize = NONE32, 0
        if t.is_const:
            raw = _le(np.asarray(t.data, dtype=t.dtype))
            doff, dsize = data.add(raw), len(raw)
        arena = plan.buffers[t.index].offset if t.index in plan.buffers else NONE32
        tensors += _TENSOR.pack(
            DTYPES[t.dtype], len(t.shape), flags, 0, *dims, scale, zp, doff, dsize, arena, string(t.name), qoff
        )
    op_records = []
    for op in graph.ops:
        words = _encode_params(op, data)
        io = list(op.inputs) + list(op.outputs)
        if len(op.inputs) > 255 or len(op.outputs) > 255 or len(words) > 0xFFFF:
            raise McutoolError(f"op {op.index} ({op.kind}): too many operands or parameters for the image format")
        if any(not -(2**31) <= w < 2**31 for w in words):
            raise McutoolError(f"op {op.index} ({op.kind}): a parameter does not fit in int32")
        rec = struct.pack("<HBBHH", OPCODES[op.kind], len(op.inputs), len(op.outputs), len(words), 0)
        rec += struct.pack(f"<{len(io)}h", *io)
        rec += b"\0" * (_align(len(rec), 4) - len(rec))
        rec += struct.pack(f"<{len(words)}i", *words)
        op_records.append(rec)
    ops = bytearray()
    table = 4 * len(op_records)
    pos = table
    for rec in op_records:
        ops += struct.pack("<I", pos)
        pos += len(rec)
    for rec in op_records:
        ops += rec
    io_sec = struct.pack(f"<HH{len(graph.inputs)}H{len(graph.outputs)}H", len(graph.inputs), len(graph.outputs), *graph.inputs, *graph.outputs)
    sched, bufs, head = planrec.encode(plan)

    bodies = [bytes(strings), bytes(tensors), bytes(ops), io_sec, sched, bytes(data.buf), bufs, head]
    out = bytearray(HEADER_SIZE)
    sections = []
    for body in bodies:
        out += b"\0" * (_align(len(out)) - len(out))
        sections.append((len(out), len(body)))
        out += body
    out += b"\0" * (_align(len(out)) - len(out))
    crc = zlib.crc32(out[HEADER_SIZE:]) & 0xFFFFFFFF
    header = _HEADER.pack(MAGIC, VERSION, HEADER_SIZE, 0, len(out), crc, len(graph.tensors), len(graph.ops), plan.arena_bytes, 0)
    header += b"".join(_SECTION.pack(o, s) for o, s in sections)
    header += b"\0" * (HEADER_SIZE - len(header))
    out[:HEADER_SIZE] = header
    out[HEADER_CRC_AT : HEADER_CRC_AT + 4] = struct.pack("<I", _header_crc(out))
    return bytes(out)


# ---- reading ----------------------------------------------------------------------------


@dataclass
class ImageInfo:
    version: int
    flags: int
    total_size: int
    crc32: int
    arena_bytes: int
    sections: dict


def _header_crc(buf) -> int:
    h = bytearray(buf[:HEADER_SIZE])
    h[HEADER_CRC_AT : HEADER_CRC_AT + 4] = b"\0\0\0\0"
    return zlib.crc32(h) & 0xFFFFFFFF


def read_header(buf: bytes, where: str = "image") -> ImageInfo:
    if len(buf) >= len(MAGIC) and buf[: len(MAGIC)] != MAGIC:
        raise McutoolError(f"{where}: not an mcutool flash image (magic {bytes(buf[:4])!r}, expected {MAGIC!r})", check=1)
    if len(buf) < HEADER_SIZE:
        raise McutoolError(f"{where}: truncated: {len(buf)} bytes, a header needs {HEADER_SIZE}", check=2)
    magic, ver, hsize, flags, total, crc, _nt, _no, arena, hcrc = _HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise McutoolError(f"{where}: not an mcutool flash image (magic {magic!r}, expected {MAGIC!r})", check=1)
    if ver != VERSION:
        again = "; convert the model again with this mcutool" if 0 < ver < VERSION else ""
        raise McutoolError(f"{where}: format version {ver}; this mcutool reads version {VERSION}{again}", check=3)
    if hsize != HEADER_SIZE:
        raise McutoolError(f"{where}: header size {hsize}, version {VERSION} has {HEADER_SIZE}", check=4)
    if hcrc != _header_crc(buf):
        raise McutoolError(f"{where}: header CRC32 mismatch (stored {hcrc:08x}, computed {_header_crc(buf):08x}): the header is corrupt", check=5)
    if flags != 0:
        raise McutoolError(f"{where}: header flags {flags:#x} set; format v3 defines none", check=6)
    if len(buf) < total:
        raise McutoolError(f"{where}: truncated: {len(buf)} bytes, header says {total}", check=7)
    if len(buf) > total:
        raise McutoolError(f"{where}: {len(buf) - total} bytes after the image end ({total})", check=8)
    got = zlib.crc32(buf[HEADER_SIZE:total]) & 0xFFFFFFFF
    if got != crc:
        raise McutoolError(f"{where}: CRC32 mismatch (header {crc:08x}, content {got:08x}): the image is corrupt", check=9)
    sections = {}
    spans = []
    for i, name in enumerate(SECTIONS):
        off, size = _SECTION.unpack_from(buf, _HEADER.size + 8 * i)
        if off < HEADER_SIZE or off + size > total or off % ALIGN:
            raise McutoolError(f"{where}: section {name} at {off} (+{size}) lies outside the image or is misaligned", check=10)
        spans.append((off, off + size, name))
        sections[name] = (off, size)
    spans.sort()
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        if b0 < a1:
            raise McutoolError(f"{where}: sections {an} and {bn} overlap", check=11)
    return ImageInfo(ver, flags, total, crc, arena, sections)


def unpack(buf: bytes, where: str = "image") -> tuple[ir.Graph, Plan]:
    """The prepared graph and plan an image holds; McutoolError on anything inconsistent."""
    buf = bytes(buf)
    info = read_header(buf, where)
    _, _, _, _, _, _, n_t, n_ops, arena, _ = _HEADER.unpack_from(buf, 0)
    sec = {k: buf[o : o + s] for k, (o, s) in info.sections.items()}
    strings, data = sec["STRINGS"], sec["DATA"]

    def string(off: int, owner: str, check: int) -> str:
        end = strings.find(b"\0", off)
        if off >= len(strings) or end < 0:
            raise McutoolError(f"{where}: {owner}: string offset {off} outside the STRINGS section", check=check)
        return strings[off:end].decode("utf-8", "replace")

    if n_t > MAX_TENSORS:
        raise McutoolError(f"{where}: the header says {n_t} tensors; the image format holds at most {MAX_TENSORS}", check=99)
    if len(sec["TENSORS"]) != n_t * TENSOR_ENTRY:
        raise McutoolError(f"{where}: TENSORS section holds {len(sec['TENSORS'])} bytes, {n_t} tensors need {n_t * TENSOR_ENTRY}", check=12)
    tensors, offsets = [], {}
    for i in range(n_t):
        dt, rank, flags, _r, *rest = _TENSOR.unpack_from(sec["TENSORS"], i * TENSOR_ENTRY)
        dims, (scale, zp, doff, dsize, aoff, noff, qoff) = rest[:4], rest[4:]
        tw = f"{where}: tensor {i}"
        if dt not in DTYPE_NAMES:
            raise McutoolError(f"{tw}: unknown dtype code {dt}", check=13)
        if rank > MAX_RANK:
            raise McutoolError(f"{tw}: rank {rank} exceeds {MAX_RANK}", check=14)
        if flags & ~T_ALL:
            raise McutoolError(f"{tw}: unknown flag bits {flags:#04x}", check=15)
        if _r:
            raise McutoolError(f"{tw}: reserved byte is {_r}, must be 0", check=16)
        dtype, shape = DTYPE_NAMES[dt], tuple(dims[:rank])
        nbytes = math.prod(shape) * ir.DTYPE_BYTES[dtype]  # Python ints: no wrap-around
        if (any(d > MAX_DIM for d in shape) or any(dims[rank:])
                or math.prod(max(d, 1) for d in shape) * ir.DTYPE_BYTES[dtype] > MAX_BYTES):
            raise McutoolError(f"{tw}: dims {tuple(dims)} of a rank-{rank} {dtype} tensor: the format takes dims up to "
                               f"{MAX_DIM}, 0 past the rank, and at most {MAX_BYTES} bytes even with 0 dims taken as 1",
                               check=100)
        quant = None
        if qoff != NONE32:
            if qoff % ALIGN or qoff + 8 > len(data):
                raise McutoolError(f"{tw}: quantization record at {qoff} outside DATA or misaligned", check=17)
            n, axis = struct.unpack_from("<II", data, qoff)
            if not 1 <= n <= 65536:
                raise McutoolError(f"{tw}: quantization record of {n} channels (1 to 65536 allowed)", check=18)
            if qoff + 8 + 8 * n > len(data):
                raise McutoolError(f"{tw}: quantization record of {n} channels outside DATA", check=19)
            if axis >= rank:
                raise McutoolError(f"{tw}: quantization axis {axis} out of range for rank {rank}", check=20)
            sc = np.frombuffer(data, "<f4", n, qoff + 8).astype(np.float32)
            zps = np.frombuffer(data, "<i4", n, qoff + 8 + 4 * n).astype(np.int64)
            quant = ir.Quant(sc, zps, axis)
        elif flags & T_QUANT:
            quant = ir.Quant(np.array([scale], np.float32), np.array([zp], np.int64), 0)
        if quant is not None and not flags & T_QUANT:
            raise McutoolError(f"{tw}: quantization record on a tensor not flagged as quantized", check=21)
        arr = None
        if flags & T_CONST:
            if flags & (T_INPUT | T_OUTPUT):
                raise McutoolError(f"{tw}: a constant cannot be a graph input or output", check=22)
            if doff == NONE32 or doff % ALIGN or dsize != nbytes or doff + dsize > len(data):
                raise McutoolError(f"{tw}: constant data at {doff} (+{dsize}) invalid for {dtype} {shape}", check=23)
            arr = np.frombuffer(data, np.dtype(dtype).newbyteorder("<"), nbytes // ir.DTYPE_BYTES[dtype], doff)
            arr = arr.astype(dtype).reshape(shape)
        elif aoff != NONE32:
            if aoff % ARENA_ALIGN:
                raise McutoolError(f"{tw}: arena offset {aoff} is not a multiple of {ARENA_ALIGN}", check=24)
            if aoff > arena:
                raise McutoolError(f"{tw}: arena offset {aoff} lies past the {arena}-byte arena", check=25)
            offsets[i] = aoff
        tensors.append(ir.Tensor(i, string(noff, f"tensor {i} name", 26), shape, dtype, quant, arr))

    ops_sec = sec["OPS"]
    if len(ops_sec) < 4 * n_ops:
        raise McutoolError(f"{where}: OPS section too short for {n_ops} ops", check=27)
    ops = []
    for k in range(n_ops):
        (pos,) = struct.unpack_from("<I", ops_sec, 4 * k)
        ow = f"{where}: op {k}"
        if pos + 8 > len(ops_sec) or pos % 4:
            raise McutoolError(f"{ow}: record at {pos} outside the OPS section or misaligned", check=28)
        code, n_in, n_out, n_words, _r = struct.unpack_from("<HBBHH", ops_sec, pos)
        if code not in OPNAMES:
            raise McutoolError(f"{ow}: unknown op code {code}", check=29)
        if _r:
            raise McutoolError(f"{ow}: reserved half-word is {_r}, must be 0", check=30)
        kind = OPNAMES[code]
        io_end = _align(pos + 8 + 2 * (n_in + n_out), 4)
        if io_end + 4 * n_words > len(ops_sec):
            raise McutoolError(f"{ow} ({kind}): record overruns the OPS section", check=31)
        io = struct.unpack_from(f"<{n_in + n_out}h", ops_sec, pos + 8)
        if any(t < -1 or t >= n_t for t in io) or any(t < 0 for t in io[n_in:]):
            raise McutoolError(f"{ow} ({kind}): tensor index out of range in {list(io)}", check=32)
        if n_out < 1:
            raise McutoolError(f"{ow} ({kind}): op has no output", check=33)
        words = list(struct.unpack_from(f"<{n_words}i", ops_sec, io_end))
        op = ir.Op(k, kind, list(io[:n_in]), list(io[n_in:]))
        op.data = _decode_params(kind, words, data, f"{ow} ({kind})")
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.data["rq"]) % RQ_WORDS == 0:
            op.data["multiplier"], op.data["shift"] = rq_multipliers(op.data["rq"])  # what the reference needs
        ops.append(op)

    io_sec = sec["IO"]
    if len(io_sec) < 4:
        raise McutoolError(f"{where}: IO section too short", check=40)
    n_in, n_out = struct.unpack_from("<HH", io_sec, 0)
    if len(io_sec) < 4 + 2 * (n_in + n_out):
        raise McutoolError(f"{where}: IO section too short for {n_in} inputs and {n_out} outputs", check=41)
    io = struct.unpack_from(f"<{n_in + n_out}H", io_sec, 4)
    if any(t >= n_t for t in io):
        raise McutoolError(f"{where}: IO section names a tensor out of range", check=42)
    in_set, out_set = set(io[:n_in]), set(io[n_in:])
    for t in range(n_t):
        tflags = sec["TENSORS"][t * TENSOR_ENTRY + 2]
        if bool(tflags & T_INPUT) != (t in in_set) or bool(tflags & T_OUTPUT) != (t in out_set):
            raise McutoolError(f"{where}: tensor {t}: input/output flags disagree with the IO section", check=43)
    graph = ir.Graph(string(0, "graph name", 44), tensors, ops, list(io[:n_in]), list(io[n_in:]))
    plan = planrec.decode(sec["SCHEDULE"], sec["BUFFERS"], sec["PLAN"], arena, where, n_t)
    _check_plan(graph, plan, offsets, where)
    from ..plan.assemble import liveness

    liveness(graph, plan)
    return graph, plan


def _pixel_map(t: ir.Tensor):
    """(H, W, C) of a 1xHxWxC map of one-byte elements (what windows and rings hold), else None."""
    if len(t.shape) == 4 and t.shape[0] == 1 and ir.DTYPE_BYTES[t.dtype] == 1:
        return t.shape[1:]
    return None


def _window_geometry(graph: ir.Graph, op: ir.Op) -> str | None:
    """None if the window arithmetic of a streamable op has what it needs; else what is missing."""
    for t in op.inputs:
        if t >= 0 and not graph.t(t).is_const and len(graph.t(t).shape) != 4:
            return f"input tensor {t} is not 4-D"
    if op.kind in SPATIAL and (not op.inputs or op.inputs[0] < 0 or graph.t(op.inputs[0]).is_const):
        return "no input map"
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = op.inputs[1] if len(op.inputs) > 1 else -1
        if w < 0 or len(graph.t(w).shape) != 4:
            return "no 4-D filter"
    return None


def _check_plan(graph: ir.Graph, plan: Plan, offsets: dict, where: str) -> None:
    """What an engine following the plan relies on: every step names real ops and windows,
    every buffer holds what the steps read and write there, and no op reads a tensor before
    some step has started making it (on the host for PRE/POST steps, on the device else)."""
    n_t, n_ops, n_steps = len(graph.tensors), len(graph.ops), len(plan.steps)
    bufs = plan.buffers
    for key in sorted(bufs):
        b = bufs[key]
        if key >= n_t:
            raise McutoolError(f"{where}: a buffer names tensor {key}, but the image has {n_t}", check=62)
        if key < 0:
            if -1 - key >= n_steps:
                raise McutoolError(f"{where}: scratch buffer {key} belongs to step {-1 - key}, but the schedule has {n_steps} steps", check=63)
            continue
        t = graph.tensors[key]
        if t.is_const:
            raise McutoolError(f"{where}: tensor {key} is a constant, but has a buffer", check=64)
        if offsets.get(key, NONE32) != b.offset:
            raise McutoolError(f"{where}: tensor {key}: arena offset {offsets.get(key, NONE32)} disagrees with its buffer at {b.offset}", check=65)
        hwc = _pixel_map(t)
        nbytes = math.prod(t.shape) * ir.DTYPE_BYTES[t.dtype]
        geo = (b.rows, b.width, b.channels)
        if b.kind == FULL:
            ok = geo == (hwc if hwc else (1, 1, nbytes))
        elif b.kind == RING:
            ok = hwc is not None and b.rows <= hwc[0] and b.width <= hwc[1] and b.channels == hwc[2]
        else:
            ok = hwc is not None and geo == (1, 1, hwc[2])
        if not ok:
            raise McutoolError(f"{where}: tensor {key} ({t.dtype} {t.shape}) does not fit its {b.kind} buffer of "
                               f"{b.rows}x{b.width}x{b.channels}", check=66)
    for t in sorted(offsets):
        if t not in bufs:
            raise McutoolError(f"{where}: tensor {t}: arena offset {offsets[t]}, but no buffer", check=67)
    for p, origins in enumerate(plan.col_origin):
        for t in sorted(origins):
            if t >= n_t:
                raise McutoolError(f"{where}: patch {p}: column origin of tensor {t}, but the image has {n_t}", check=68)
    for t in plan.device_inputs + plan.device_outputs:
        if not 0 <= t < n_t or t not in bufs:
            raise McutoolError(f"{where}: device input/output tensor {t} has no buffer", check=69)
    for t in plan.device_inputs + plan.device_outputs:
        if graph.t(t).dtype != "int8":
            raise McutoolError(f"{where}: device input/output tensor {t} is {graph.t(t).dtype}; the device takes and "
                               f"gives int8", check=104)
    for t in plan.device_outputs:
        if bufs[t].kind != FULL:
            raise McutoolError(f"{where}: device output tensor {t} has a {bufs[t].kind} buffer; the host reads it "
                               f"whole from a full one", check=105)

    def fits(sw: str, t: int, r0: int, r1: int, c0: int, c1: int, patch: int, verb: str, check: int) -> None:
        """Rows [r0, r1) x columns [c0, c1) of tensor t lie inside its buffer (a pixel buffer holds no window)."""
        b = bufs[t]
        o = plan.col_origin[patch].get(t, 0)
        rows_ok = r1 - r0 <= b.rows if b.kind == RING else r1 <= b.rows
        if c0 < o or c1 - o > b.width or not rows_ok or b.kind == PIXEL:
            raise McutoolError(f"{sw}: {verb} rows [{r0}, {r1}) x columns [{c0}, {c1}) of tensor {t}, outside its "
                               f"{b.kind} buffer of {b.rows} rows x columns [{o}, {o + b.width})", check=check)

    consts = {t.index for t in graph.tensors if t.is_const}
    host = set(graph.inputs) | consts  # what the host holds: graph inputs, PRE and POST results
    dev = set(plan.device_inputs) | consts  # what device steps may read
    made_by_pre: set = set()
    ran: dict = {}  # op -> (first step running it, whether that step runs it whole)
    fused_outputs: set = set()
    phases = {PRE: 0, POST: 2}
    phase = 0
    n_input = 0
    for i, s in enumerate(plan.steps):
        sw = f"{where}: step {i} ({s.kind})"
        ph = phases.get(s.kind, 1)
        if ph < phase:
            raise McutoolError(f"{sw}: after a {('pre', 'device', 'post')[phase]} step; the order is PRE, device, POST", check=70)
        phase = ph
        if s.patch >= len(plan.col_origin):
            raise McutoolError(f"{sw}: patch {s.patch} has no column origins", check=71)
        if s.kind == INPUT:
            if s.op not in plan.device_inputs:
                raise McutoolError(f"{sw}: tensor {s.op} is not a device input", check=72)
            shape = graph.t(s.op).shape
            if len(shape) != 4 or not (s.r0 < s.r1 <= shape[1] and s.c0 < s.c1 <= shape[2]):
                raise McutoolError(f"{sw}: rows [{s.r0}, {s.r1}) x columns [{s.c0}, {s.c1}) outside tensor {s.op}", check=73)
            if s.c0 != 0 or s.c1 != shape[2] or s.patch != 0:
                raise McutoolError(f"{sw}: columns [{s.c0}, {s.c1}) of tensor {s.op} in patch {s.patch}; an INPUT step "
                                   f"delivers whole rows (columns [0, {shape[2]})) in patch 0", check=128)
            fits(sw, s.op, s.r0, s.r1, s.c0, s.c1, s.patch, "writes", 74)
            n_input += 1
            continue
        if not 0 <= s.op < n_ops:
            raise McutoolError(f"{sw}: op {s.op} out of range", check=75)
        op = graph.ops[s.op]
        if s.fused >= 0:
            dw = graph.ops[s.fused] if s.fused < n_ops else None
            if not (s.kind == WINDOW and dw is not None and dw.kind == "DEPTHWISE_CONV_2D" and op.inputs
                    and dw.outputs[0] == op.inputs[0]):
                raise McutoolError(f"{sw}: fused op {s.fused} is not the depthwise conv feeding op {s.op}", check=76)
            w = op.inputs[1] if len(op.inputs) > 1 else -1
            if not (op.kind == "CONV_2D" and w >= 0 and graph.t(w).shape[1:3] == (1, 1) and op.data["stride"] == (1, 1)
                    and tuple(op.data["pad"]) == (0, 0, 0, 0)):
                raise McutoolError(f"{sw}: op {s.op} ({op.kind}) is not a 1x1 stride-1 CONV_2D; it cannot take a fused op", check=77)
        members = [op] + ([graph.ops[s.fused]] if s.fused >= 0 else [])
        whole = s.kind != WINDOW
        for m in [s.op, s.fused]:
            if m < 0:
                continue
            if m in ran and (whole or ran[m][1]):
                raise McutoolError(f"{sw}: op {m} already ran in step {ran[m][0]}", check=78)
            ran.setdefault(m, (i, whole))
        made = dev if s.kind in (RUN, WINDOW) else host
        for m in members[::-1]:
            for t in m.inputs:
                if t >= 0 and t not in made and not (s.kind == POST and t in plan.device_outputs):
                    raise McutoolError(f"{sw}: op {s.op} reads tensor {t} before any step computes it", check=79)
                if s.kind in (RUN, WINDOW) and t >= 0 and t not in consts and t not in bufs:
                    raise McutoolError(f"{sw}: op {s.op} reads tensor {t}, which has no buffer", check=80)
            made.update(m.outputs)
            if s.kind == PRE:
                made_by_pre.update(m.outputs)
        out = op.outputs[0]
        if s.kind in (RUN, WINDOW) and out not in bufs:
            raise McutoolError(f"{sw}: op {s.op} writes tensor {out}, which has no buffer", check=81)
        if s.kind == RUN:
            for t in [t for t in op.inputs if t >= 0 and t not in consts] + [out]:
                if bufs[t].kind != FULL:
                    raise McutoolError(f"{sw}: op {s.op} runs whole, but tensor {t} has a {bufs[t].kind} buffer", check=82)
        if s.kind == WINDOW:
            for m in members:
                why = streamable(graph, m) or _window_geometry(graph, m)
                if why:
                    raise McutoolError(f"{sw}: op {m.index} ({m.kind}) cannot run in windows: {why}", check=83)
            shape = graph.t(out).shape
            if not (s.r0 < s.r1 <= shape[1] and s.c0 < s.c1 <= shape[2]):
                raise McutoolError(f"{sw}: window rows [{s.r0}, {s.r1}) x columns [{s.c0}, {s.c1}) outside the output", check=84)
            if bufs[out].kind == PIXEL:
                raise McutoolError(f"{sw}: op {s.op} writes tensor {out} into a pixel buffer", check=85)
            fits(sw, out, s.r0, s.r1, s.c0, s.c1, s.patch, "writes", 86)
            for m in members:
                for t in m.inputs:
                    if t < 0 or t in consts or (s.fused >= 0 and m is op and t == members[1].outputs[0]):
                        continue
                    h, w = graph.t(t).shape[1:3]
                    (y0, y1), (x0, x1) = in_range(graph, m, 0, s.r0, s.r1, h), in_range(graph, m, 1, s.c0, s.c1, w)
                    if y0 < y1 and x0 < x1:  # a window of padding only reads nothing
                        fits(sw, t, y0, y1, x0, x1, s.patch, "reads", 87)
            if s.fused >= 0:
                t = members[1].outputs[0]
                if bufs[t].kind != PIXEL:
                    raise McutoolError(f"{sw}: fused op {s.fused} writes tensor {t}, which has a {bufs[t].kind} buffer, not a pixel one", check=88)
                fused_outputs.add(t)
        if s.inplace:
            if s.kind != RUN or not op.inputs or op.inputs[0] < 0 or bufs[out].alias_of != op.inputs[0]:
                raise McutoolError(f"{sw}: in-place op {s.op} does not alias its input", check=89)
            dw_ok = op.kind == "DEPTHWISE_CONV_2D" and op.data["depth_multiplier"] == 1
            if not (dw_ok or op.kind == "RESHAPE"):
                raise McutoolError(f"{sw}: op {s.op} ({op.kind}) cannot overwrite its input in place", check=90)
            if dw_ok:
                need = math.prod(graph.t(out).shape[1:3])
                scratch = bufs.get(-1 - i)
                if scratch is None or scratch.kind != FULL or scratch.size < need:
                    raise McutoolError(f"{sw}: in-place op {s.op} needs a scratch buffer (key {-1 - i}) of {need} bytes", check=91)
    # the ops the device runs: the first step running each (as its op, or fused into a window)
    first_kind: dict = {}
    for s in plan.steps:
        if s.kind != INPUT:
            for k in (s.op, s.fused if s.kind == WINDOW else -1):
                if 0 <= k < n_ops:
                    first_kind.setdefault(k, s.kind)
    for k, op in enumerate(graph.ops):
        if first_kind.get(k) in (RUN, WINDOW):
            check_device_op(graph, op, first_kind[k] == RUN, f"{where}: op {k} ({op.kind})")
    for key in sorted(k for k in bufs if k < 0):
        s = plan.steps[-1 - key]
        if not (s.kind == RUN and s.inplace and graph.ops[s.op].kind == "DEPTHWISE_CONV_2D"):
            raise McutoolError(f"{where}: scratch buffer {key}: step {-1 - key} is not an in-place depthwise RUN", check=92)
    for t in sorted(bufs):
        if bufs[t].kind == PIXEL and t not in fused_outputs:
            raise McutoolError(f"{where}: tensor {t} has a pixel buffer, but no step fuses the op making it", check=93)
    if plan.streamed_input != (n_input > 0):
        raise McutoolError(f"{where}: PLAN says the input is {'' if plan.streamed_input else 'not '}streamed, "
                           f"but the schedule has {n_input} INPUT steps", check=94)
    if len(ran) != n_ops:
        missing = sorted(set(range(n_ops)) - set(ran))
        raise McutoolError(f"{where}: the schedule never runs op {missing[0]} ({len(ran)} of {n_ops} ops run)", check=95)
    for t in plan.device_inputs:
        if t not in graph.inputs and t not in made_by_pre:
            raise McutoolError(f"{where}: device input tensor {t} is neither a graph input nor made by a PRE step", check=96)
    for t in plan.device_outputs:
        if t not in dev:
            raise McutoolError(f"{where}: device output tensor {t} is never computed", check=97)
    for t in graph.outputs:
        if t not in host and t not in plan.device_outputs:
            raise McutoolError(f"{where}: graph output tensor {t} is never computed", check=98)


def read_image(path: str | os.PathLike) -> tuple[ir.Graph, Plan]:
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise McutoolError(f"{path}: cannot read: {e.strerror}") from None
    return unpack(buf, where=path)
