"""Streamed stage with cached halos: line buffers, every row computed exactly once.

The first `split` device ops run row by row. Each tensor inside the stage lives in a ring of
a few rows (what its consumers still need, plus what was just produced); the stage's
outputs are whole tensors. Driven from the bottom: the most downstream op that can make a
row makes it; when none can, the next band of input rows arrives. A row a consumer will
read again for its next output (the vertical halo) stays in the ring instead of being
recomputed: zero MAC overhead. Input can arrive in bands, so the image never sits whole
in SRAM.
"""
from __future__ import annotations

from ..errors import McutoolError
from . import assemble
from .lower import Lowered, consumers
from .model import FULL, INPUT, PIXEL, RING, WINDOW, Buffer, Plan, Step
from .windows import streamable


def stage_ops(low: Lowered, split: int) -> list[int]:
    g = low.graph
    ops = low.device_ops[:split]
    for pos in ops:
        why = streamable(g, g.ops[pos])
        if why:
            raise McutoolError(f"op {g.ops[pos].index} ({g.ops[pos].kind}) cannot be in a patched stage: {why}")
    return ops


def max_split(low: Lowered) -> int:
    """How many leading device ops can run in a windowed stage."""
    g = low.graph
    n = 0
    for pos in low.device_ops:
        if streamable(g, g.ops[pos]):
            break
        n += 1
    return n


def _fusions(g, ops: list[int], users, full: set) -> dict[int, int]:
    """1x1 convolution -> the depthwise conv feeding it, fused pixel by pixel.

    The depthwise output then never exists as rows: each pixel's channels are made into a
    small scratch and consumed at once by the 1x1 convolution. That removes a whole row
    buffer per inverted-residual block, the largest saving after streaming itself.
    """
    fuse = {}
    in_stage = set(ops)
    for p in ops:
        op = g.ops[p]
        if op.kind != "DEPTHWISE_CONV_2D":
            continue
        out = op.outputs[0]
        u = users.get(out, [])
        if len(u) != 1 or u[0] not in in_stage or out in full:
            continue
        pw = g.ops[u[0]]
        w = g.t(pw.inputs[1]).shape if pw.kind == "CONV_2D" else None
        if w and w[1] == w[2] == 1 and pw.data["stride"] == (1, 1) and pw.inputs[0] == out:
            fuse[u[0]] = p
    return fuse


def plan_stream(low: Lowered, split: int, band: int = 1, input_band: int = 1, stream_input: bool = True,
                fuse: bool = True) -> Plan:
    g = low.graph
    ops = stage_ops(low, split)
    if not ops:
        raise McutoolError("a streamed stage needs at least one op")
    in_stage = set(ops)
    users = consumers(g)
    produced = {g.ops[p].outputs[0] for p in ops}
    # Whole tensors: stage results read after the stage, and device outputs.
    full = {t for t in produced if t in low.device_outputs or any(u not in in_stage for u in users.get(t, []))}
    fused = _fusions(g, ops, users, full) if fuse else {}
    head = {p: fused.get(p, p) for p in ops}  # the op whose geometry reads a node's inputs
    nodes = [p for p in ops if p not in fused.values()]
    node_of = {p: p for p in nodes} | {dw: pw for pw, dw in fused.items()}
    pixel = {g.ops[dw].outputs[0] for dw in fused.values()}
    inputs = [t for t in low.device_inputs if any(u in in_stage for u in users.get(t, []))]
    streamed = set(inputs) if stream_input else set()
    H = {t: g.t(t).shape[1] for t in (produced - pixel) | set(inputs)}
    avail = {t: (H[t] if t in inputs and t not in streamed else 0) for t in H}
    done = {p: 0 for p in nodes}
    cap = {t: 0 for t in H}

    from .windows import geometry

    # Per node, per input tensor: (tensor, stride, effective kernel, pad before, height);
    # the window arithmetic below is the hot loop of planning, so it is inlined.
    reads = {}
    for p in nodes:
        hop = g.ops[head[p]]
        s_, k_, p_ = geometry(g, hop, 0)
        reads[p] = [(t, s_, k_, p_, H[t]) for t in hop.inputs if t >= 0 and not g.t(t).is_const]
    readers = {}  # tensor -> [(node, stride, keff, pad)] of stage consumers
    for p in ops:
        n = node_of[p]
        s_, k_, p_ = geometry(g, g.ops[p], 0)
        for t in g.ops[p].inputs:
            if t in H:
                readers.setdefault(t, []).append((n, s_, k_, p_))
    out_h = {p: H[g.ops[p].outputs[0]] for p in nodes}

    def ready(p, e):  # can output rows [0, e) be computed from what is available?
        for t, s_, k_, p_, h in reads[p]:
            if avail[t] < min(h, (e - 1) * s_ - p_ + k_):
                return False
        return True

    def first_needed(t):  # lowest row of t any stage consumer will still read
        lo = H[t]
        for n, s_, k_, p_ in readers.get(t, ()):
            d = done[n]
            if d < out_h[n]:
                lo = min(lo, max(0, d * s_ - p_))
        return lo

    steps: list[Step] = []
    order = list(reversed(nodes))  # most downstream first
    remaining = len(nodes)
    while remaining:
        for p in order:
            h = out_h[p]
            d = done[p]
            if d >= h or not ready(p, d + 1):
                continue
            out = g.ops[p].outputs[0]
            e = d + 1
            while e < h and e - d < band and ready(p, e + 1):
                e += 1
            steps.append(Step(WINDOW, p, d, e, 0, g.t(out).shape[2], fused=fused.get(p, -1)))
            done[p] = e
            avail[out] = e
            if e == h:
                remaining -= 1
            cap[out] = max(cap[out], e - first_needed(out))
            break
        else:
            pending = [t for t in streamed if avail[t] < H[t]]
            if not pending:
                raise McutoolError("streamed stage is stuck: no op can make a row and no input is left")
            for t in pending:
                a = avail[t]
                b = min(H[t], a + input_band)
                steps.append(Step(INPUT, t, a, b, 0, g.t(t).shape[2]))
                avail[t] = b
                cap[t] = max(cap[t], b - first_needed(t))
    buffers: dict[int, Buffer] = {}
    for t in H:
        shape = g.t(t).shape
        if t in full or t not in streamed and t in inputs:
            buffers[t] = Buffer(t, FULL, shape[1], shape[2], shape[3])
        else:
            buffers[t] = Buffer(t, RING, max(1, min(cap[t], shape[1])), shape[2], shape[3])
    for t in pixel:
        buffers[t] = Buffer(t, PIXEL, 1, 1, g.t(t).shape[3])
    plan = assemble.build(low, steps, buffers, "stream", split=split, grid=(H[g.ops[ops[-1]].outputs[0]], 1),
                          halo="cache", streamed_input=bool(streamed))
    plan.macs = plan.base_macs  # every row once
    return plan
