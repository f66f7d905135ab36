"""The plan: data made once on the host, followed step by step by every executor.

A plan says, for one lowered graph:
- which buffers exist in the arena (a whole tensor, or a ring of rows of one), where, and
  over which steps each is live;
- which steps run, in order: host pre/post-processing, a row band of streamed input, an
  op over a window of its output (rows x columns), or an op over its whole output.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# step kinds
PRE, POST, INPUT, RUN, WINDOW = "pre", "post", "input", "run", "window"
# buffer kinds
FULL, RING, PIXEL = "full", "ring", "pixel"  # PIXEL: one pixel's channels, a fused op's scratch


@dataclass
class Step:
    kind: str
    op: int = -1  # position in graph.ops (RUN, WINDOW, PRE, POST); tensor index for INPUT
    r0: int = 0  # output rows [r0, r1) and columns [c0, c1) (WINDOW, INPUT)
    r1: int = 0
    c0: int = 0
    c1: int = 0
    patch: int = 0  # which column-origin row of Plan.col_origin applies (WINDOW)
    inplace: bool = False  # RUN: output overwrites its input (depthwise, reshape)
    fused: int = -1  # WINDOW: a depthwise op computed pixel by pixel inside this (1x1 conv) step


@dataclass
class Buffer:
    tensor: int
    kind: str  # FULL: the whole tensor; RING: `rows` rows of `width` columns, row y at slot y % rows
    rows: int
    width: int
    channels: int
    offset: int = -1
    live: list = field(default_factory=list)  # [(first step, last step)], inclusive
    alias_of: int = -1  # tensor whose buffer this one reuses in place

    @property
    def row_bytes(self) -> int:
        return self.width * self.channels

    @property
    def size(self) -> int:
        return self.rows * self.row_bytes


@dataclass
class Plan:
    strategy: str  # "layer" | "stream" | "patch"
    steps: list
    buffers: dict  # tensor -> Buffer
    arena_bytes: int = 0
    scratch_bytes: int = 0  # largest kernel scratch of any step, after the arena
    col_origin: list = field(default_factory=lambda: [{}])  # per patch: tensor -> first column held
    split: int = 0  # device ops run in the patched/streamed stage
    grid: tuple = (1, 1)  # patches (rows, columns) of the split tensor
    halo: str = "none"  # "cache" | "recompute" | "none"
    macs: int = 0  # MACs the plan executes
    base_macs: int = 0  # MACs of the model run layer by layer
    device_inputs: list = field(default_factory=list)
    device_outputs: list = field(default_factory=list)
    streamed_input: bool = False

    @property
    def peak_sram_bytes(self) -> int:
        return self.arena_bytes + self.scratch_bytes

    @property
    def mac_overhead(self) -> float:
        return (self.macs - self.base_macs) / self.base_macs if self.base_macs else 0.0

    @property
    def offsets(self) -> dict:
        return {t: b.offset for t, b in self.buffers.items()}
