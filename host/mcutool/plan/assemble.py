"""Assemble a whole plan: host steps, the (optional) windowed stage, the layer-by-layer tail,
buffer lifetimes, in-place tricks and the arena."""
from __future__ import annotations

from ..ir import Graph
from ..report.inspect import op_macs
from .arena import allocate
from .lower import Lowered, consumers
from .model import FULL, INPUT, POST, PRE, RING, RUN, WINDOW, Buffer, Plan, Step

INPLACE_KINDS = ("DEPTHWISE_CONV_2D", "RESHAPE")


def full_buffer(graph: Graph, t: int) -> Buffer:
    shape = graph.t(t).shape
    # A FULL buffer is a tensor of any rank, stored flat: one "row" of all its bytes.
    if len(shape) == 4:
        return Buffer(t, FULL, shape[1], shape[2], shape[3])
    return Buffer(t, FULL, 1, 1, graph.t(t).nbytes)


def _inplace_ok(graph: Graph, op, users: dict, tail_pos: int, stage_buffers: dict, device_outputs) -> bool:
    """May this tail op write its output over its input?"""
    if op.kind not in INPLACE_KINDS:
        return False
    x = op.inputs[0]
    if x in device_outputs or x in stage_buffers and stage_buffers[x].kind != FULL:
        return False
    if any(u > tail_pos for u in users.get(x, [])) or len(users.get(x, [])) != 1:
        return False  # someone reads the input after this op
    if op.kind == "DEPTHWISE_CONV_2D":
        # TinyEngine's trick: channel by channel through a one-plane scratch. Needs each
        # output channel to read only its own input channel.
        return op.data["depth_multiplier"] == 1
    return True  # RESHAPE: same bytes, new shape


def build(low: Lowered, stage_steps: list[Step], stage_buffers: dict[int, Buffer], strategy: str,
          split: int = 0, inplace: bool = True, **meta) -> Plan:
    g = low.graph
    dev = low.device_ops
    tail = dev[split:]
    users = consumers(g)
    steps: list[Step] = [Step(PRE, p) for p in low.pre]
    steps += stage_steps
    buffers: dict[int, Buffer] = dict(stage_buffers)
    for t in low.device_inputs:
        buffers.setdefault(t, full_buffer(g, t))
    scratch: list[Buffer] = []
    for pos in tail:
        op = g.ops[pos]
        out = op.outputs[0]
        step = Step(RUN, pos)
        if inplace and _inplace_ok(g, op, users, pos, stage_buffers, low.device_outputs):
            step.inplace = True
            b = full_buffer(g, out)
            b.alias_of = op.inputs[0]
            buffers[out] = b
            if op.kind == "DEPTHWISE_CONV_2D":
                # one output channel plane, computed aside before it overwrites its input
                y = g.t(out)
                scratch.append(Buffer(-1 - len(steps), FULL, 1, 1, y.shape[1] * y.shape[2]))
        else:
            buffers.setdefault(out, full_buffer(g, out))
        steps.append(step)
    steps += [Step(POST, p) for p in low.post]
    for s in scratch:
        buffers[s.tensor] = s
    plan = Plan(strategy, steps, buffers, split=split,
                device_inputs=list(low.device_inputs), device_outputs=list(low.device_outputs), **meta)
    roots = liveness(g, plan)
    plan.arena_bytes = allocate(roots)
    for b in buffers.values():
        if b.alias_of >= 0:
            b.offset = _root(buffers, b).offset
    plan.base_macs = sum(op_macs(g, g.ops[p]) for p in dev)
    plan.macs = plan.base_macs
    return plan


def _root(buffers: dict, b: Buffer) -> Buffer:
    while b.alias_of >= 0:
        b = buffers[b.alias_of]
    return b


def liveness(g: Graph, plan: Plan) -> list[Buffer]:
    """Set every buffer's live intervals from the steps; returns the buffers that own bytes
    (an in-place output shares its input's bytes: one region, live over both)."""
    # In a patch plan a ring is refilled by every patch: its bytes are free between patches.
    per_patch = {t for t, b in plan.buffers.items() if plan.strategy == "patch" and b.kind == RING}
    _liveness(g, plan.steps, plan.buffers, plan.device_inputs, plan.device_outputs, per_patch)
    for key, b in plan.buffers.items():
        if key < 0:  # a step's scratch: live during that step only
            b.live = [(-1 - key, -1 - key)]
    roots = [b for b in plan.buffers.values() if b.alias_of < 0]
    for b in plan.buffers.values():
        if b.alias_of >= 0:
            root = _root(plan.buffers, b)
            root.live = [(min(root.live[0][0], b.live[0][0]), max(root.live[-1][1], b.live[-1][1]))]
    return roots


def _liveness(g: Graph, steps: list[Step], buffers: dict[int, Buffer], device_inputs, device_outputs,
              per_patch: set) -> None:
    """Each buffer live from the first step that touches it to the last; for buffers in
    `per_patch`, separately within each patch."""
    touch: dict[int, dict[int, list[int]]] = {}

    def mark(t, i, patch=0):
        if t in buffers:
            touch.setdefault(t, {}).setdefault(patch if t in per_patch else 0, []).append(i)

    last = len(steps) - 1
    first_device = next((i for i, s in enumerate(steps) if s.kind != PRE), 0)
    for t in device_inputs:
        mark(t, first_device)
    for i, s in enumerate(steps):
        if s.kind == INPUT:
            mark(s.op, i)
        elif s.kind in (RUN, WINDOW):
            op = g.ops[s.op]
            reads = list(op.inputs) + (list(g.ops[s.fused].inputs) if s.fused >= 0 else [])
            for t in reads:
                if t >= 0 and not g.t(t).is_const:
                    mark(t, i, s.patch)
            mark(op.outputs[0], i, s.patch)
    for t in device_outputs:
        mark(t, last)
    for t, b in buffers.items():
        if t < 0:
            continue
        spans = touch.get(t, {0: [first_device]})
        b.live = sorted((min(v), max(v)) for v in spans.values())


def layer_by_layer(low: Lowered, inplace: bool = True) -> Plan:
    return build(low, [], {}, "layer", split=0, inplace=inplace)
