"""Flash image format v2: pack a lowered graph and its plan; read one back, validating all.

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
from ..plan.model import INPUT, POST, PRE, RUN, WINDOW, Plan
from . import planrec
from .opparams import BOOL, F32, I32, LAYOUTS

MAGIC = b"MCUN"
VERSION = 2
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
            raise McutoolError(f"{where}: parameter record too short")
        pos += n
        return words[pos - n : pos]

    for name, kind in LAYOUTS[kind_name]:
        if kind == I32:
            d[name] = take(1)[0]
        elif kind == BOOL:
            v = take(1)[0]
            if v not in (0, 1):
                raise McutoolError(f"{where}: '{name}' value {v} is not a bool (0 or 1)")
            d[name] = bool(v)
        elif kind == F32:
            d[name] = struct.unpack("<f", struct.pack("<i", take(1)[0]))[0]
        elif kind[0] == I32:
            d[name] = tuple(take(kind[1]))
        elif kind[0] == "arr":
            off, count = take(2)
            dt = np.dtype(kind[1]).newbyteorder("<")
            if off < 0 or count < 0 or off % ALIGN or off + count * dt.itemsize > len(data):
                raise McutoolError(f"{where}: '{name}' array at {off} (+{count}) lies outside the DATA section or is misaligned")
            d[name] = np.frombuffer(data, dt, count, off).astype(kind[1])
        elif kind[0] == "list":
            n, *vals = take(1 + kind[1])
            if not 0 <= n <= kind[1]:
                raise McutoolError(f"{where}: '{name}' count {n} out of range")
            d[name] = tuple(vals[:n])
        elif kind[0] == "pairs":
            n, *vals = take(1 + 2 * kind[1])
            if not 0 <= n <= kind[1]:
                raise McutoolError(f"{where}: '{name}' count {n} out of range")
            d[name] = [(vals[2 * i], vals[2 * i + 1]) for i in range(n)]
        elif kind[0] == "enum":
            v = take(1)[0]
            if not 0 <= v < len(kind[1]):
                raise McutoolError(f"{where}: '{name}' value {v} out of range")
            d[name] = kind[1][v]
    if pos != len(words):
        raise McutoolError(f"{where}: parameter record has {len(words)} words, {kind_name} needs {pos}")
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
            if t.quant.scale.size > 1:
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
        raise McutoolError(f"{where}: not an mcutool flash image (magic {bytes(buf[:4])!r}, expected {MAGIC!r})")
    if len(buf) < HEADER_SIZE:
        raise McutoolError(f"{where}: truncated: {len(buf)} bytes, a header needs {HEADER_SIZE}")
    magic, ver, hsize, flags, total, crc, _nt, _no, arena, hcrc = _HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise McutoolError(f"{where}: not an mcutool flash image (magic {magic!r}, expected {MAGIC!r})")
    if ver != VERSION:
        raise McutoolError(f"{where}: format version {ver}; this mcutool reads version {VERSION}")
    if hsize != HEADER_SIZE:
        raise McutoolError(f"{where}: header size {hsize}, version {VERSION} has {HEADER_SIZE}")
    if hcrc != _header_crc(buf):
        raise McutoolError(f"{where}: header CRC32 mismatch (stored {hcrc:08x}, computed {_header_crc(buf):08x}): the header is corrupt")
    if flags != 0:
        raise McutoolError(f"{where}: header flags {flags:#x} set; format v2 defines none")
    if len(buf) < total:
        raise McutoolError(f"{where}: truncated: {len(buf)} bytes, header says {total}")
    if len(buf) > total:
        raise McutoolError(f"{where}: {len(buf) - total} bytes after the image end ({total})")
    got = zlib.crc32(buf[HEADER_SIZE:total]) & 0xFFFFFFFF
    if got != crc:
        raise McutoolError(f"{where}: CRC32 mismatch (header {crc:08x}, content {got:08x}): the image is corrupt")
    sections = {}
    spans = []
    for i, name in enumerate(SECTIONS):
        off, size = _SECTION.unpack_from(buf, _HEADER.size + 8 * i)
        if off < HEADER_SIZE or off + size > total or off % ALIGN:
            raise McutoolError(f"{where}: section {name} at {off} (+{size}) lies outside the image or is misaligned")
        spans.append((off, off + size, name))
        sections[name] = (off, size)
    spans.sort()
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        if b0 < a1:
            raise McutoolError(f"{where}: sections {an} and {bn} overlap")
    return ImageInfo(ver, flags, total, crc, arena, sections)


def unpack(buf: bytes, where: str = "image") -> tuple[ir.Graph, Plan]:
    """The prepared graph and plan an image holds; McutoolError on anything inconsistent."""
    buf = bytes(buf)
    info = read_header(buf, where)
    _, _, _, _, _, _, n_t, n_ops, arena, _ = _HEADER.unpack_from(buf, 0)
    sec = {k: buf[o : o + s] for k, (o, s) in info.sections.items()}
    strings, data = sec["STRINGS"], sec["DATA"]

    def string(off: int, owner: str) -> str:
        end = strings.find(b"\0", off)
        if off >= len(strings) or end < 0:
            raise McutoolError(f"{where}: {owner}: string offset {off} outside the STRINGS section")
        return strings[off:end].decode("utf-8", "replace")

    if len(sec["TENSORS"]) != n_t * TENSOR_ENTRY:
        raise McutoolError(f"{where}: TENSORS section holds {len(sec['TENSORS'])} bytes, {n_t} tensors need {n_t * TENSOR_ENTRY}")
    tensors, offsets = [], {}
    for i in range(n_t):
        dt, rank, flags, _r, *rest = _TENSOR.unpack_from(sec["TENSORS"], i * TENSOR_ENTRY)
        dims, (scale, zp, doff, dsize, aoff, noff, qoff) = rest[:4], rest[4:]
        tw = f"{where}: tensor {i}"
        if dt not in DTYPE_NAMES:
            raise McutoolError(f"{tw}: unknown dtype code {dt}")
        if rank > MAX_RANK:
            raise McutoolError(f"{tw}: rank {rank} exceeds {MAX_RANK}")
        if flags & ~T_ALL:
            raise McutoolError(f"{tw}: unknown flag bits {flags:#04x}")
        if _r:
            raise McutoolError(f"{tw}: reserved byte is {_r}, must be 0")
        dtype, shape = DTYPE_NAMES[dt], tuple(dims[:rank])
        nbytes = math.prod(shape) * ir.DTYPE_BYTES[dtype]  # Python ints: no wrap-around
        quant = None
        if qoff != NONE32:
            if qoff % ALIGN or qoff + 8 > len(data):
                raise McutoolError(f"{tw}: quantization record at {qoff} outside DATA or misaligned")
            n, axis = struct.unpack_from("<II", data, qoff)
            if not 1 <= n <= 65536:
                raise McutoolError(f"{tw}: quantization record of {n} channels (1 to 65536 allowed)")
            if qoff + 8 + 8 * n > len(data):
                raise McutoolError(f"{tw}: quantization record of {n} channels outside DATA")
            if axis >= rank:
                raise McutoolError(f"{tw}: quantization axis {axis} out of range for rank {rank}")
            sc = np.frombuffer(data, "<f4", n, qoff + 8).astype(np.float32)
            zps = np.frombuffer(data, "<i4", n, qoff + 8 + 4 * n).astype(np.int64)
            quant = ir.Quant(sc, zps, axis)
        elif flags & T_QUANT:
            quant = ir.Quant(np.array([scale], np.float32), np.array([zp], np.int64), 0)
        if quant is not None and not flags & T_QUANT:
            raise McutoolError(f"{tw}: quantization record on a tensor not flagged as quantized")
        arr = None
        if flags & T_CONST:
            if flags & (T_INPUT | T_OUTPUT):
                raise McutoolError(f"{tw}: a constant cannot be a graph input or output")
            if doff == NONE32 or doff % ALIGN or dsize != nbytes or doff + dsize > len(data):
                raise McutoolError(f"{tw}: constant data at {doff} (+{dsize}) invalid for {dtype} {shape}")
            arr = np.frombuffer(data, np.dtype(dtype).newbyteorder("<"), nbytes // ir.DTYPE_BYTES[dtype], doff)
            arr = arr.astype(dtype).reshape(shape)
        elif aoff != NONE32:
            if aoff % ARENA_ALIGN:
                raise McutoolError(f"{tw}: arena offset {aoff} is not a multiple of {ARENA_ALIGN}")
            if aoff > arena:
                raise McutoolError(f"{tw}: arena offset {aoff} lies past the {arena}-byte arena")
            offsets[i] = aoff
        tensors.append(ir.Tensor(i, string(noff, f"tensor {i} name"), shape, dtype, quant, arr))

    ops_sec = sec["OPS"]
    if len(ops_sec) < 4 * n_ops:
        raise McutoolError(f"{where}: OPS section too short for {n_ops} ops")
    ops = []
    for k in range(n_ops):
        (pos,) = struct.unpack_from("<I", ops_sec, 4 * k)
        ow = f"{where}: op {k}"
        if pos + 8 > len(ops_sec) or pos % 4:
            raise McutoolError(f"{ow}: record at {pos} outside the OPS section or misaligned")
        code, n_in, n_out, n_words, _r = struct.unpack_from("<HBBHH", ops_sec, pos)
        if code not in OPNAMES:
            raise McutoolError(f"{ow}: unknown op code {code}")
        if _r:
            raise McutoolError(f"{ow}: reserved half-word is {_r}, must be 0")
        kind = OPNAMES[code]
        io_end = _align(pos + 8 + 2 * (n_in + n_out), 4)
        if io_end + 4 * n_words > len(ops_sec):
            raise McutoolError(f"{ow} ({kind}): record overruns the OPS section")
        io = struct.unpack_from(f"<{n_in + n_out}h", ops_sec, pos + 8)
        if any(t < -1 or t >= n_t for t in io) or any(t < 0 for t in io[n_in:]):
            raise McutoolError(f"{ow} ({kind}): tensor index out of range in {list(io)}")
        if n_out < 1:
            raise McutoolError(f"{ow} ({kind}): op has no output")
        words = list(struct.unpack_from(f"<{n_words}i", ops_sec, io_end))
        op = ir.Op(k, kind, list(io[:n_in]), list(io[n_in:]))
        op.data = _decode_params(kind, words, data, f"{ow} ({kind})")
        ops.append(op)

    io_sec = sec["IO"]
    if len(io_sec) < 4:
        raise McutoolError(f"{where}: IO section too short")
    n_in, n_out = struct.unpack_from("<HH", io_sec, 0)
    if len(io_sec) < 4 + 2 * (n_in + n_out):
        raise McutoolError(f"{where}: IO section too short for {n_in} inputs and {n_out} outputs")
    io = struct.unpack_from(f"<{n_in + n_out}H", io_sec, 4)
    if any(t >= n_t for t in io):
        raise McutoolError(f"{where}: IO section names a tensor out of range")
    in_set, out_set = set(io[:n_in]), set(io[n_in:])
    for t in range(n_t):
        tflags = sec["TENSORS"][t * TENSOR_ENTRY + 2]
        if bool(tflags & T_INPUT) != (t in in_set) or bool(tflags & T_OUTPUT) != (t in out_set):
            raise McutoolError(f"{where}: tensor {t}: input/output flags disagree with the IO section")
    graph = ir.Graph(string(0, "graph name"), tensors, ops, list(io[:n_in]), list(io[n_in:]))
    plan = planrec.decode(sec["SCHEDULE"], sec["BUFFERS"], sec["PLAN"], arena, where)
    _check_plan(graph, plan, offsets, where)
    from ..plan.assemble import liveness

    liveness(graph, plan)
    return graph, plan


def _check_plan(graph: ir.Graph, plan: Plan, offsets: dict, where: str) -> None:
    """What an engine following the plan relies on: every step names real ops, windows and
    buffers, and no op reads a tensor before some step has started writing it."""
    n_t, n_ops = len(graph.tensors), len(graph.ops)
    bufs = plan.buffers
    for key, b in bufs.items():
        if key >= n_t:
            raise McutoolError(f"{where}: a buffer names tensor {key}, but the image has {n_t}")
        if key >= 0 and offsets.get(key, b.offset) != b.offset:
            raise McutoolError(f"{where}: tensor {key}: arena offset {offsets[key]} disagrees with its buffer at {b.offset}")
    for t in plan.device_inputs + plan.device_outputs:
        if not 0 <= t < n_t or t not in bufs:
            raise McutoolError(f"{where}: device input/output tensor {t} has no buffer")
    ready = set(plan.device_inputs) | {t.index for t in graph.tensors if t.is_const} | set(graph.inputs)
    seen = set()
    for i, s in enumerate(plan.steps):
        sw = f"{where}: step {i} ({s.kind})"
        if s.kind == INPUT:
            if s.op not in plan.device_inputs:
                raise McutoolError(f"{sw}: tensor {s.op} is not a device input")
            shape = graph.t(s.op).shape
            if len(shape) != 4 or not (s.r0 < s.r1 <= shape[1] and s.c0 < s.c1 <= shape[2]):
                raise McutoolError(f"{sw}: rows [{s.r0}, {s.r1}) x columns [{s.c0}, {s.c1}) outside tensor {s.op}")
            continue
        if not 0 <= s.op < n_ops:
            raise McutoolError(f"{sw}: op {s.op} out of range")
        op = graph.ops[s.op]
        members = [op] + ([graph.ops[s.fused]] if s.fused >= 0 else [])
        if s.fused >= 0:
            if not (s.kind == WINDOW and 0 <= s.fused < n_ops and graph.ops[s.fused].kind == "DEPTHWISE_CONV_2D"
                    and graph.ops[s.fused].outputs[0] == op.inputs[0]):
                raise McutoolError(f"{sw}: fused op {s.fused} is not the depthwise conv feeding op {s.op}")
        for m in members[::-1]:
            for t in m.inputs:
                if t >= 0 and t not in ready:
                    raise McutoolError(f"{sw}: op {s.op} reads tensor {t} before any step computes it")
                if s.kind in (RUN, WINDOW) and t >= 0 and not graph.t(t).is_const and t not in bufs:
                    raise McutoolError(f"{sw}: op {s.op} reads tensor {t}, which has no buffer")
            ready.update(m.outputs)
        if s.kind in (RUN, WINDOW) and op.outputs[0] not in bufs:
            raise McutoolError(f"{sw}: op {s.op} writes tensor {op.outputs[0]}, which has no buffer")
        if s.kind == WINDOW:
            shape = graph.t(op.outputs[0]).shape
            if len(shape) != 4 or not (s.r0 < s.r1 <= shape[1] and s.c0 < s.c1 <= shape[2]):
                raise McutoolError(f"{sw}: window rows [{s.r0}, {s.r1}) x columns [{s.c0}, {s.c1}) outside the output")
            if s.patch >= len(plan.col_origin):
                raise McutoolError(f"{sw}: patch {s.patch} has no column origins")
        if s.inplace and (s.kind != RUN or bufs[op.outputs[0]].alias_of != op.inputs[0]):
            raise McutoolError(f"{sw}: in-place op {s.op} does not alias its input")
        seen.update(m_ for m_ in [s.op, s.fused] if m_ >= 0)
    if len(seen) != n_ops:
        missing = sorted(set(range(n_ops)) - seen)
        raise McutoolError(f"{where}: the schedule never runs op {missing[0]} ({len(seen)} of {n_ops} ops run)")
    for t in graph.outputs:
        if t not in ready:
            raise McutoolError(f"{where}: graph output tensor {t} is never computed")


def read_image(path: str | os.PathLike) -> ir.Graph:
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise McutoolError(f"{path}: cannot read: {e.strerror}") from None
    return unpack(buf, where=path)
