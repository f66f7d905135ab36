"""The arena: where each buffer lives, given the steps over which it is live.

Two buffers may share bytes only if their live intervals never meet. Offsets come from
a first-fit placement tried in a few orders (largest first, longest-lived first, earliest
first); the smallest arena wins. This is TFLM's greedy planner made a little less greedy.
"""
from __future__ import annotations

from .model import Buffer

ARENA_ALIGN = 4  # word-aligned buffers: kernels may read int8 data a word at a time


def align(n: int) -> int:
    return (n + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN


def _overlap(a: list, b: list) -> bool:
    return any(a0 <= b1 and b0 <= a1 for a0, a1 in a for b0, b1 in b)


def _place(order: list[Buffer]) -> tuple[int, dict[int, int]]:
    placed: list[tuple[int, int, list]] = []
    offsets = {}
    for buf in order:
        size = align(buf.size)
        clashes = sorted((o, e) for o, e, live in placed if _overlap(live, buf.live))
        off = 0
        for o, e in clashes:
            if off + size <= o:
                break
            off = max(off, e)
        offsets[id(buf)] = off
        placed.append((off, off + size, buf.live))
    return max((e for _, e, _ in placed), default=0), offsets


def allocate(buffers: list[Buffer]) -> int:
    """Set every buffer's offset; returns the arena size in bytes."""
    def span(b):
        return sum(e - s + 1 for s, e in b.live)

    orders = [
        sorted(buffers, key=lambda b: (-b.size, b.live[0][0] if b.live else 0)),
        sorted(buffers, key=lambda b: (-span(b), -b.size)),
        sorted(buffers, key=lambda b: (b.live[0][0] if b.live else 0, -b.size)),
        sorted(buffers, key=lambda b: (-b.size * span(b))),
    ]
    best = None
    for order in orders:
        total, offs = _place(order)
        if best is None or total < best[0]:
            best = (total, offs)
    total, offs = best
    for b in buffers:
        b.offset = offs[id(b)]
    return total


def check_disjoint(buffers: list[Buffer]) -> None:
    """Raise AssertionError if two buffers live at once share a byte."""
    bs = sorted(buffers, key=lambda b: b.offset)
    for i, a in enumerate(bs):
        for b in bs[i + 1 :]:
            if b.offset >= a.offset + a.size:
                break
            if _overlap(a.live, b.live) and a.size and b.size:
                raise AssertionError(f"buffers of tensors {a.tensor} and {b.tensor} overlap in space and time")
