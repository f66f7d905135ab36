"""Patch-based stage with recomputed halos (MCUNetV2).

The stage output is cut into an n x m grid of patches. Each patch runs the whole stage on
just the window of every tensor it needs (found backwards from its output window), then
frees it: buffers hold one patch's window at a time, and neighbouring patches recompute
their overlapping halos. Memory per patch is small; the price is the recomputed MACs.
The stage input stays whole (patches read it in any order); the stage output is whole.
"""
from __future__ import annotations

from ..errors import McutoolError
from . import assemble
from .lower import Lowered, consumers
from .model import FULL, RING, WINDOW, Buffer, Plan, Step
from .stream import stage_ops
from .windows import in_range, window_macs


def _cuts(size: int, n: int) -> list[int]:
    return [size * k // n for k in range(n + 1)]


class Geometry:
    """A patch grid's windows, worked out before any buffer is placed (cheap to compare)."""

    def __init__(self, steps, origins, extent, macs, inputs, out):
        self.steps, self.origins, self.extent, self.macs, self.inputs, self.out = steps, origins, extent, macs, inputs, out

    def lower_bound(self, g) -> int:
        """No arena for this grid can be smaller: the whole input and output, plus the
        largest window any one step writes with the windows it reads."""
        whole = sum(g.t(t).nbytes for t in self.inputs) + g.t(self.out).nbytes
        ring = {t: r * c * g.t(t).shape[3] for t, (r, c) in self.extent.items()}
        step = 0
        for s in self.steps:
            op = g.ops[s.op]
            step = max(step, ring.get(op.outputs[0], 0) + sum(ring.get(t, 0) for t in op.inputs))
        return whole + step


def patch_geometry(low: Lowered, split: int, n: int, m: int) -> Geometry:
    g = low.graph
    ops = stage_ops(low, split)
    in_stage = set(ops)
    users = consumers(g)
    produced = [g.ops[p].outputs[0] for p in ops]
    leaving = [t for t in produced if t in low.device_outputs or any(u not in in_stage for u in users.get(t, []))]
    if len(leaving) != 1:
        raise McutoolError(f"a patch-based stage needs one output tensor; split {split} has {len(leaving)}")
    out = leaving[0]
    H, W = g.t(out).shape[1:3]
    if n > H or m > W:
        raise McutoolError(f"a {n}x{m} grid does not fit a {H}x{W} stage output")
    rows, cols = _cuts(H, n), _cuts(W, m)
    inputs = {t for p in ops for t in g.ops[p].inputs if t >= 0 and not g.t(t).is_const and t not in produced}
    steps: list[Step] = []
    origins: list[dict] = []
    extent: dict[int, list[int]] = {t: [0, 0] for t in produced if t != out}  # max window rows, cols
    macs = 0
    for i in range(n):
        for j in range(m):
            win = {out: (rows[i], rows[i + 1], cols[j], cols[j + 1])}
            for p in reversed(ops):
                y = g.ops[p].outputs[0]
                if y not in win:
                    continue  # nothing downstream of this patch needs it
                r0, r1, c0, c1 = win[y]
                for t in g.ops[p].inputs:
                    if t < 0 or g.t(t).is_const:
                        continue
                    h, w = g.t(t).shape[1:3]
                    a, b = in_range(g, g.ops[p], 0, r0, r1, h)
                    c, d = in_range(g, g.ops[p], 1, c0, c1, w)
                    if t in win:  # several consumers: the hull of what they read
                        a0, b0, c0_, d0 = win[t]
                        a, b, c, d = min(a, a0), max(b, b0), min(c, c0_), max(d, d0)
                    win[t] = (a, b, c, d)
            k = len(origins)
            origins.append({t: win[t][2] for t in extent if t in win})
            for p in ops:
                y = g.ops[p].outputs[0]
                if y in win:
                    r0, r1, c0, c1 = win[y]
                    steps.append(Step(WINDOW, p, r0, r1, c0, c1, patch=k))
                    macs += window_macs(g, g.ops[p], r1 - r0, c1 - c0)
                    if y in extent:
                        extent[y][0] = max(extent[y][0], r1 - r0)
                        extent[y][1] = max(extent[y][1], c1 - c0)
    return Geometry(steps, origins, extent, macs, inputs, out)


def plan_patches(low: Lowered, split: int, n: int, m: int, geo: Geometry | None = None) -> Plan:
    g = low.graph
    geo = geo or patch_geometry(low, split, n, m)
    steps, origins, extent, macs, inputs, out = geo.steps, geo.origins, geo.extent, geo.macs, geo.inputs, geo.out
    buffers: dict[int, Buffer] = {}
    for t in inputs:
        s = g.t(t).shape
        buffers[t] = Buffer(t, FULL, s[1], s[2], s[3])
    s = g.t(out).shape
    buffers[out] = Buffer(out, FULL, s[1], s[2], s[3])
    for t, (r, c) in extent.items():
        buffers[t] = Buffer(t, RING, max(r, 1), max(c, 1), g.t(t).shape[3])
    plan = assemble.build(low, steps, buffers, "patch", split=split, grid=(n, m), halo="recompute",
                          col_origin=origins)
    tail = sum(window_macs(g, g.ops[p], *g.t(g.ops[p].outputs[0]).shape[1:3])
               if len(g.t(g.ops[p].outputs[0]).shape) == 4 else window_macs(g, g.ops[p], 0, 0)
               for p in low.device_ops[split:])
    plan.macs = macs + tail
    return plan
