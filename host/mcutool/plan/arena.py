"""Layer-by-layer arena planning: offsets for every activation over its lifetime.

Greedy by size, each tensor at the lowest offset clear of every placed tensor whose
lifetime overlaps its own: the strategy of TFLM's GreedyMemoryPlanner. The patch-based
planner builds on the same Plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph

ARENA_ALIGN = 4  # word-aligned buffers: kernels may read int8 data a word at a time


@dataclass
class Plan:
    arena_bytes: int
    offsets: dict = field(default_factory=dict)  # tensor index -> arena byte offset
    steps: list = field(default_factory=list)  # positions in graph.ops, in run order


def _align(n: int) -> int:
    return (n + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN


def lifetimes(graph: Graph) -> dict[int, tuple[int, int]]:
    """tensor -> (first step it must exist, last step it is read), over activations only."""
    n = len(graph.ops)
    life: dict[int, list[int]] = {}
    for i in graph.inputs:
        life[i] = [0, 0]
    for step, op in enumerate(graph.ops):
        for i in op.inputs:
            if i >= 0 and not graph.t(i).is_const:
                life.setdefault(i, [step, step])[1] = step
        for o in op.outputs:
            life.setdefault(o, [step, step])
    for o in graph.outputs:
        life.setdefault(o, [n - 1, n - 1])[1] = n - 1
    return {t: (a, b) for t, (a, b) in life.items()}


def layer_by_layer(graph: Graph) -> Plan:
    life = lifetimes(graph)
    order = sorted(life, key=lambda t: (-graph.t(t).nbytes, life[t][0], t))
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first, last)
    offsets = {}
    for t in order:
        size = _align(graph.t(t).nbytes)
        first, last = life[t]
        clashes = sorted((o, e) for o, e, f, l in placed if f <= last and first <= l)
        off = 0
        for o, e in clashes:
            if off + size <= o:
                break
            off = max(off, e)
        offsets[t] = off
        placed.append((off, off + size, first, last))
    arena = max((e for _, e, _, _ in placed), default=0)
    return Plan(arena_bytes=arena, offsets=offsets, steps=list(range(len(graph.ops))))
