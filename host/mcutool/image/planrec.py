"""The plan's three sections of the flash image: SCHEDULE, BUFFERS and PLAN.

Layouts (little-endian; docs/flash-image.md is the specification):
  SCHEDULE  u32 n, then n steps of 16 bytes:
            u8 kind, u8 flags (bit 0 in place), i16 op, u16 r0, r1, c0, c1, u16 patch, i16 fused
  BUFFERS   u32 n, then n buffers of 24 bytes:
            i16 key (a tensor, or -1-step for a step's scratch), u8 kind, u8 0,
            u16 rows, u16 width, u16 channels, i16 alias_of, u32 offset, u32 size, u32 0
  PLAN      u8 strategy, u8 halo, u16 split, u16 grid rows, u16 grid cols, u32 flags (bit 0
            streamed input), u64 macs, u64 base_macs,
            u16 n device inputs, u16 n device outputs, i16 each; u16 n patches, then per
            patch u16 count and count x (u16 tensor, u16 first column).
"""
from __future__ import annotations

import struct

from ..errors import McutoolError
from ..plan.arena import ARENA_ALIGN
from ..plan.model import FULL, INPUT, PIXEL, POST, PRE, RING, RUN, WINDOW, Buffer, Plan, Step

STEP_KINDS = {RUN: 1, WINDOW: 2, INPUT: 3, PRE: 4, POST: 5}
STEP_NAMES = {v: k for k, v in STEP_KINDS.items()}
BUF_KINDS = {FULL: 0, RING: 1, PIXEL: 2}
BUF_NAMES = {v: k for k, v in BUF_KINDS.items()}
STRATEGIES = ("layer", "stream", "patch")
HALOS = ("none", "cache", "recompute")
_STEP = struct.Struct("<BBhHHHHHh")
_BUF = struct.Struct("<hBBHHHhIII")
_PLAN = struct.Struct("<BBHHHIQQ")
assert _STEP.size == 16 and _BUF.size == 24 and _PLAN.size == 28

U16 = 0xFFFF
MAX_DEVICE_IO = 8  # MCU_MAX_IO (device/engine/include/mcunet.h): the device inputs and outputs mcu_model holds


def _u16(v: int, what: str) -> int:
    if not 0 <= v <= U16:
        raise McutoolError(f"{what} {v} does not fit the image's 16-bit field")
    return v


def _i16(v: int, what: str) -> int:
    if not -0x8000 <= v < 0x8000:
        raise McutoolError(f"{what} {v} does not fit the image's 16-bit field")
    return v


def encode(plan: Plan) -> tuple[bytes, bytes, bytes]:
    steps = bytearray(struct.pack("<I", len(plan.steps)))
    for i, s in enumerate(plan.steps):
        steps += _STEP.pack(STEP_KINDS[s.kind], 1 if s.inplace else 0, _i16(s.op, f"step {i} op"),
                            *(_u16(v, f"step {i} window bound") for v in (s.r0, s.r1, s.c0, s.c1)),
                            _u16(s.patch, "patch"), _i16(s.fused, f"step {i} fused op"))
    bufs = bytearray(struct.pack("<I", len(plan.buffers)))
    for key in sorted(plan.buffers):
        b = plan.buffers[key]
        bufs += _BUF.pack(_i16(key, "buffer key"), BUF_KINDS[b.kind], 0, _u16(b.rows, "buffer rows"),
                          _u16(b.width, "buffer width"), _u16(b.channels, "buffer channels"), b.alias_of, b.offset,
                          b.size, 0)
    head = _PLAN.pack(STRATEGIES.index(plan.strategy), HALOS.index(plan.halo), _u16(plan.split, "split"),
                      _u16(plan.grid[0], "grid"), _u16(plan.grid[1], "grid"), 1 if plan.streamed_input else 0,
                      plan.macs, plan.base_macs)
    ins, outs = plan.device_inputs, plan.device_outputs
    head += struct.pack(f"<HH{len(ins)}h{len(outs)}h", len(ins), len(outs), *ins, *outs)
    head += struct.pack("<H", len(plan.col_origin))
    for origins in plan.col_origin:
        head += struct.pack("<H", len(origins))
        for t in sorted(origins):
            head += struct.pack("<HH", t, _u16(origins[t], "column origin"))
    return bytes(steps), bytes(bufs), bytes(head)


class _Reader:
    def __init__(self, buf: bytes, section: str, where: str, check: int):
        self.buf, self.pos, self.section, self.where, self.check = buf, 0, section, where, check

    def take(self, fmt: str):
        s = struct.Struct(fmt)
        if self.pos + s.size > len(self.buf):
            raise McutoolError(f"{self.where}: {self.section} section too short", check=self.check)
        v = s.unpack_from(self.buf, self.pos)
        self.pos += s.size
        return v


def decode(sched: bytes, bufs: bytes, head: bytes, arena_bytes: int, where: str, n_tensors: int | None = None) -> Plan:
    """The plan of the three sections, checked (docs/flash-image.md §6, checks 45-61, 101-103;
    68 too when the image's tensor count is given)."""
    r = _Reader(sched, "SCHEDULE", where, 45)
    (n,) = r.take("<I")
    if n > (len(sched) - 4) // _STEP.size:
        raise McutoolError(f"{where}: SCHEDULE holds fewer than its {n} steps", check=46)
    steps = []
    for i in range(n):
        kind, flags, op, r0, r1, c0, c1, patch, fused = r.take(_STEP.format)
        if kind not in STEP_NAMES or flags & ~1:
            raise McutoolError(f"{where}: schedule step {i}: kind {kind} / flags {flags} invalid", check=47)
        steps.append(Step(STEP_NAMES[kind], op, r0, r1, c0, c1, patch, bool(flags & 1), fused))
    r = _Reader(bufs, "BUFFERS", where, 48)
    (n,) = r.take("<I")
    if n > (len(bufs) - 4) // _BUF.size:
        raise McutoolError(f"{where}: BUFFERS holds fewer than its {n} buffers", check=49)
    buffers = {}
    for i in range(n):
        key, kind, z0, rows, width, ch, alias, off, size, z1 = r.take(_BUF.format)
        if kind not in BUF_NAMES or z0 or z1:
            raise McutoolError(f"{where}: buffer {i}: kind {kind} invalid or reserved fields set", check=50)
        b = Buffer(key, BUF_NAMES[kind], rows, width, ch, off, [], alias)
        if key in buffers:
            raise McutoolError(f"{where}: buffer {i}: a second buffer for {key}", check=51)
        if buffers and key < prev:
            raise McutoolError(f"{where}: buffer {i}: key {key} after {prev}; buffers are sorted by key", check=101)
        prev = key
        if b.size != size:
            raise McutoolError(f"{where}: buffer {i} (tensor {key}): size {size} is not {rows}x{width}x{ch}", check=52)
        if off + size > arena_bytes:
            raise McutoolError(f"{where}: buffer {i} (tensor {key}): {rows}x{width}x{ch} at {off} (+{size}) "
                               f"does not fit the {arena_bytes}-byte arena", check=53)
        if off % ARENA_ALIGN:
            raise McutoolError(f"{where}: buffer {i} (tensor {key}): offset {off} is not a multiple of {ARENA_ALIGN}", check=54)
        if b.kind == RING and rows < 1:
            raise McutoolError(f"{where}: buffer {i} (tensor {key}): a ring of {rows} rows", check=55)
        buffers[key] = b
    for key, b in buffers.items():
        if b.alias_of != -1 and (b.alias_of < 0 or b.alias_of not in buffers or b.alias_of == key):
            raise McutoolError(f"{where}: buffer of tensor {key} aliases {b.alias_of}, which has no buffer", check=56)
    rooted: set = set()  # buffers known to lead to one that owns its bytes
    for key, b in buffers.items():
        # An alias shares its target's bytes: same start, no byte beyond the target's end;
        # following alias_of must end at a buffer that owns its bytes (no cycle).
        path, a = {key}, b
        while a.alias_of >= 0 and a.tensor not in rooted:
            target = buffers[a.alias_of]
            if target.offset != a.offset or a.size > target.size:
                raise McutoolError(f"{where}: buffer of tensor {a.tensor} at {a.offset} (+{a.size}) aliases tensor "
                                   f"{target.tensor} at {target.offset} (+{target.size}) but does not lie inside it", check=57)
            if a.alias_of in path:
                raise McutoolError(f"{where}: buffers of tensors {sorted(path)} alias each other in a cycle", check=58)
            path.add(a.alias_of)
            a = target
        rooted.update(path)
    r = _Reader(head, "PLAN", where, 59)
    strat, halo, split, gn, gm, flags, macs, base = r.take(_PLAN.format)
    r.check = 61
    if strat >= len(STRATEGIES) or halo >= len(HALOS) or flags & ~1:
        raise McutoolError(f"{where}: PLAN strategy {strat} / halo {halo} / flags {flags} invalid", check=60)
    n_in, n_out = r.take("<HH")
    io = r.take(f"<{n_in + n_out}h") if n_in + n_out else ()
    (n_patches,) = r.take("<H")
    if n_in > MAX_DEVICE_IO or not 1 <= n_out <= MAX_DEVICE_IO:
        raise McutoolError(f"{where}: PLAN has {n_in} device inputs and {n_out} device outputs; the engine takes 0 to "
                           f"{MAX_DEVICE_IO} inputs and 1 to {MAX_DEVICE_IO} outputs", check=102)
    origins = []
    for p in range(n_patches):
        (cnt,) = r.take("<H")
        pairs = r.take(f"<{2 * cnt}H") if cnt else ()
        for k in range(cnt):
            if n_tensors is not None and pairs[2 * k] >= n_tensors:
                raise McutoolError(f"{where}: patch {p}: column origin of tensor {pairs[2 * k]}, but the image has "
                                   f"{n_tensors}", check=68)
            if STRATEGIES[strat] != "patch" or (k and pairs[2 * k] <= pairs[2 * k - 2]):
                raise McutoolError(f"{where}: patch {p}: column origins of tensors {list(pairs[::2])}; only a patch plan "
                                   f"has them, each tensor once, in increasing order", check=103)
        origins.append({pairs[2 * k]: pairs[2 * k + 1] for k in range(cnt)})
    return Plan(STRATEGIES[strat], steps, buffers, arena_bytes=arena_bytes, col_origin=origins or [{}],
                split=split, grid=(gn, gm), halo=HALOS[halo], macs=macs, base_macs=base,
                device_inputs=list(io[:n_in]), device_outputs=list(io[n_in:]), streamed_input=bool(flags & 1))
