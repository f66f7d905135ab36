"""The numpy reference, following a plan inside one real arena.

Every activation lives in a single bytearray at the plan's offsets. Between steps, each
buffer whose life has ended is overwritten with poison, and each ring slot remembers which
row it holds, so a plan that reads a row it no longer has, or lets two live buffers share
bytes, produces wrong outputs or an explicit PlanError, never a quiet pass.
"""
from __future__ import annotations

import copy

import numpy as np

from ..ir import Graph
from ..plan.model import FULL, INPUT, POST, PRE, RING, RUN, WINDOW, Plan
from ..plan.windows import SPATIAL, in_range
from .kernels import evaluate, kernel


class PlanError(AssertionError):
    """The plan asked for something the arena no longer holds."""


class _Arena:
    def __init__(self, graph: Graph, plan: Plan, rng: np.random.Generator | None):
        self.g, self.plan, self.rng = graph, plan, rng
        self.mem = np.zeros(max(plan.arena_bytes, 1), np.uint8)
        self._poison(0, len(self.mem))
        self.held: dict[int, np.ndarray] = {}  # tensor -> logical row held in each slot (-1: none)
        for t, b in plan.buffers.items():
            self.held[t] = np.full(b.rows, -1, np.int64)

    def _poison(self, a: int, b: int) -> None:
        if self.rng is not None:
            self.mem[a:b] = self.rng.integers(0, 256, b - a, dtype=np.uint8)

    def root(self, t: int) -> int:
        while self.plan.buffers[t].alias_of >= 0:
            t = self.plan.buffers[t].alias_of
        return t

    def kill(self, t: int) -> None:
        b = self.plan.buffers[t]
        self._poison(b.offset, b.offset + b.size)
        for u, ub in self.plan.buffers.items():
            if self.root(u) == self.root(t):
                self.held[u][:] = -1

    def _view(self, t: int) -> np.ndarray:
        b = self.plan.buffers[t]
        return self.mem[b.offset : b.offset + b.size].view(np.int8).reshape(b.rows, b.width, b.channels)

    def _origin(self, t: int, patch: int) -> int:
        return self.plan.col_origin[patch].get(t, 0) if self.plan.col_origin else 0

    def read(self, t: int, r0: int, r1: int, c0: int, c1: int, patch: int = 0) -> np.ndarray:
        b = self.plan.buffers[t]
        if len(self.g.t(t).shape) != 4:
            if not np.all(self.held[t] == 0):
                raise PlanError(f"tensor {t} read before it was written or after it was freed")
            return self._view(t).reshape(self.g.t(t).shape).copy()
        rows = np.arange(r0, r1)
        slots = rows % b.rows if b.kind == RING else rows
        if np.any(self.held[t][slots] != rows):
            bad = int(rows[np.argmax(self.held[t][slots] != rows)])
            raise PlanError(f"tensor {t} ({self.g.t(t).name}): row {bad} is not in its buffer when read")
        o = self._origin(t, patch)
        if c0 - o < 0 or c1 - o > b.width:
            raise PlanError(f"tensor {t}: columns [{c0}, {c1}) lie outside its buffer [{o}, {o + b.width})")
        return self._view(t)[slots, c0 - o : c1 - o][None].copy()

    def write(self, t: int, y: np.ndarray, r0: int, c0: int, patch: int = 0) -> None:
        b = self.plan.buffers[t]
        if len(self.g.t(t).shape) != 4:
            self._view(t)[...] = y.reshape(self._view(t).shape)
            self.held[t][:] = 0
            return
        r1, c1 = r0 + y.shape[1], c0 + y.shape[2]
        rows = np.arange(r0, r1)
        slots = rows % b.rows if b.kind == RING else rows
        if b.kind == RING and len(set(slots.tolist())) != len(slots):
            raise PlanError(f"tensor {t}: {len(slots)} rows written at once into a ring of {b.rows}")
        o = self._origin(t, patch)
        if c0 - o < 0 or c1 - o > b.width:
            raise PlanError(f"tensor {t}: columns [{c0}, {c1}) lie outside its buffer [{o}, {o + b.width})")
        self._view(t)[slots, c0 - o : c1 - o] = y[0]
        # A write into an aliased region destroys whatever else lived there.
        for u in self.plan.buffers:
            if u != t and self.root(u) == self.root(t):
                self.held[u][:] = -1
        self.held[t][slots] = rows


def compute_window(graph: Graph, op, read, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Output rows [r0, r1) x columns [c0, c1) of a row-local op, reading inputs via
    read(tensor, rows..., cols...). Border taps are expressed as this window's own padding."""
    _, ev = kernel(op.kind)
    y = graph.t(op.outputs[0])
    out_shape = (1, r1 - r0, c1 - c0, y.shape[3])
    xs = []
    if op.kind in SPATIAL:
        x = graph.t(op.inputs[0])
        H, W = x.shape[1], x.shape[2]
        ylo, yhi = in_range(graph, op, 0, r0, r1, H)
        xlo, xhi = in_range(graph, op, 1, c0, c1, W)
        s_h, s_w = op.data["stride"]
        pt, pl = op.data["pad"][0], op.data["pad"][1]
        top, left = ylo - (r0 * s_h - pt), xlo - (c0 * s_w - pl)
        win = copy.copy(op)
        win.data = dict(op.data)
        # The window's own border: taps before its first input row or column that fall off
        # the image, and those past its last (a kernel skips both, as at the image border).
        win.data["pad"] = (top, left,
                           max(0, (r1 - r0 - 1) * s_h + _keff(graph, op, 0) - top - (yhi - ylo)),
                           max(0, (c1 - c0 - 1) * s_w + _keff(graph, op, 1) - left - (xhi - xlo)))
        xs.append(read(op.inputs[0], ylo, yhi, xlo, xhi))
        for t in op.inputs[1:]:
            xs.append(graph.t(t).data if t >= 0 else None)
        return ev(win, xs, out_shape)
    for t in op.inputs:
        if t < 0:
            xs.append(None)
        elif graph.t(t).is_const:
            xs.append(graph.t(t).data)
        else:
            xs.append(read(t, r0, r1, c0, c1))
    return ev(op, xs, out_shape)


def _keff(graph: Graph, op, axis: int) -> int:
    from ..plan.windows import geometry

    return geometry(graph, op, axis)[1]


def run_plan(graph: Graph, plan: Plan, inputs: list[np.ndarray], poison_seed: int | None = 0) -> list[np.ndarray]:
    """Outputs of `graph` for `inputs`, computed by following `plan` step by step."""
    rng = np.random.default_rng(poison_seed) if poison_seed is not None else None
    arena = _Arena(graph, plan, rng)
    host: dict[int, np.ndarray] = {t: np.asarray(x).reshape(graph.t(t).shape) for t, x in zip(graph.inputs, inputs)}
    ends: dict[int, list[int]] = {}
    for t, b in plan.buffers.items():
        if b.alias_of < 0:
            for _, e in b.live:
                ends.setdefault(e, []).append(t)
    loaded = False
    for i, s in enumerate(plan.steps):
        if s.kind != PRE and not loaded:
            # The device's inputs arrive whole unless the plan streams them in bands.
            for t in plan.device_inputs:
                if plan.buffers[t].kind == FULL:
                    x = host[t]
                    arena.write(t, x.reshape((1,) + x.shape[1:]) if x.ndim == 4 else x, 0, 0)
            loaded = True
        if s.kind in (PRE, POST):
            op = graph.ops[s.op]
            host[op.outputs[0]] = evaluate(graph, op, lambda t: host[t] if t in host else _read_full(graph, arena, t))
        elif s.kind == INPUT:
            arena.write(s.op, host[s.op][:, s.r0 : s.r1, s.c0 : s.c1], s.r0, s.c0)
        elif s.kind == WINDOW:
            op = graph.ops[s.op]

            def read(t, a, b, c, d, _p=s.patch):
                return arena.read(t, a, b, c, d, _p)

            if s.fused >= 0:
                # The depthwise output exists only pixel by pixel inside the fused kernel:
                # here, a temporary outside the arena (its scratch is a PIXEL buffer).
                dw = graph.ops[s.fused]
                mid = compute_window(graph, dw, read, s.r0, s.r1, s.c0, s.c1)
                inner = read

                def read(t, a, b, c, d, _mid=mid, _t=dw.outputs[0], _r0=s.r0, _c0=s.c0, _inner=inner):
                    if t == _t:
                        return _mid[:, a - _r0 : b - _r0, c - _c0 : d - _c0]
                    return _inner(t, a, b, c, d)

            y = compute_window(graph, op, read, s.r0, s.r1, s.c0, s.c1)
            arena.write(op.outputs[0], y, s.r0, s.c0, s.patch)
        elif s.kind == RUN:
            op = graph.ops[s.op]
            yt = graph.t(op.outputs[0])
            if op.kind in SPATIAL or (len(yt.shape) == 4 and op.kind not in ("RESHAPE", "TRANSPOSE", "CONCATENATION", "MEAN", "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX", "FULLY_CONNECTED", "DEQUANTIZE")):
                y = compute_window(graph, op, lambda t, a, b, c, d: _read_full(graph, arena, t), 0, yt.shape[1], 0, yt.shape[2])
            else:
                y = evaluate(graph, op, lambda t: _read_full(graph, arena, t))
            arena.write(op.outputs[0], y.reshape((1,) + y.shape[1:]) if len(yt.shape) == 4 else y, 0, 0)
        if i < len(plan.steps) - 1:  # after the last step the outputs are read back
            for t in ends.get(i, []):
                if t not in plan.device_outputs:
                    arena.kill(t)
    outs = []
    for t in graph.outputs:
        outs.append(host[t] if t in host else _read_full(graph, arena, t))
    return outs


def _read_full(graph: Graph, arena: _Arena, t: int) -> np.ndarray:
    shape = graph.t(t).shape
    if len(shape) == 4:
        return arena.read(t, 0, shape[1], 0, shape[2]).reshape(shape)
    return arena.read(t, 0, 1, 0, 1).reshape(shape)
