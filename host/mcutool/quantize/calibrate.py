"""Run the float model over the calibration set and keep what range choice needs.

For every activation: its exact min and max, and a bounded random sample of its values,
from which percentile and MSE-optimal clipping are computed. A sample, not a histogram
with fixed bins, because the bins would have to be chosen before the range is known.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import Graph
from .float_exec import run_float
from .progress import Progress

SAMPLE_PER_TENSOR = 1 << 17  # values kept per activation, over the whole calibration set


@dataclass
class Stats:
    lo: float = np.inf
    hi: float = -np.inf
    samples: list = field(default_factory=list)

    def sample(self) -> np.ndarray:
        return np.concatenate(self.samples) if self.samples else np.zeros(0, np.float32)


def calibrate(graph: Graph, data: np.ndarray, batch: int = 16, seed: int = 0, progress: bool = True) -> dict[int, Stats]:
    """tensor index -> Stats, for every graph input and op output."""
    stats: dict[int, Stats] = {}
    rng = np.random.default_rng(seed)
    n = data.shape[0]
    per_batch = max(1, SAMPLE_PER_TENSOR * batch // max(n, 1))

    def visit(i: int, v: np.ndarray) -> None:
        s = stats.setdefault(i, Stats())
        flat = v.reshape(-1)
        s.lo = min(s.lo, float(flat.min()))
        s.hi = max(s.hi, float(flat.max()))
        s.samples.append(flat if flat.size <= per_batch else flat[rng.integers(0, flat.size, per_batch)])

    with Progress("calibrating", n, enabled=progress) as bar:
        for start in range(0, n, batch):
            chunk = data[start:start + batch]
            run_float(graph, [chunk], visit)
            bar.update(chunk.shape[0])
    return stats
