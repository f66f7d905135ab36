"""Choose a plan for one model and one board: the strategies, the split point, the objective.

Objectives:
- no budget: the smallest peak SRAM whose MAC overhead stays within `max_overhead`;
- a budget (a board's, or --sram-budget): the fewest MACs whose peak fits, then the
  smallest peak among those (so a budget never gives a larger peak than no budget when
  the unbudgeted plan fits at no extra MACs).
Candidates: layer by layer, and a streamed stage (cached halos) at every split point that
could beat the best so far. A lower bound prunes the rest: no plan with that split can
need less than its stage's whole outputs or its tail's largest single tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import McutoolError
from ..ir import Graph
from .assemble import layer_by_layer
from .lower import Lowered, consumers, lower
from .model import Plan
from .patches import patch_geometry, plan_patches
from .stream import max_split, plan_stream

GRIDS = [(n, m) for n in range(1, 5) for m in range(1, 5) if (n, m) != (1, 1)]

HALO_CHOICES = ("auto", "cache", "recompute")


@dataclass
class Objective:
    max_overhead: float = 0.05  # fraction of the model's MACs
    budget: int | None = None  # bytes of SRAM
    halo: str = "auto"


@dataclass
class Choice:
    lowered: Lowered
    plan: Plan
    candidates: list = field(default_factory=list)  # (strategy, split, peak, overhead) of every plan tried

    @property
    def fits(self):
        return None if self.budget is None else self.plan.peak_sram_bytes <= self.budget

    budget: int | None = None


def _lower_bound(low: Lowered, split: int) -> int:
    g = low.graph
    dev = low.device_ops
    stage = set(dev[:split])
    users = consumers(g)
    outs = 0
    for p in dev[:split]:
        t = g.ops[p].outputs[0]
        if t in low.device_outputs or any(u not in stage for u in users.get(t, [])):
            outs += g.t(t).nbytes
    tail = 0
    for p in dev[split:]:
        op = g.ops[p]
        tail = max([tail, g.t(op.outputs[0]).nbytes] + [t.nbytes for t in g.activation_inputs(op)])
    return max(outs, tail)


def tail_macs(low: Lowered, split: int) -> int:
    from ..report.inspect import op_macs

    return sum(op_macs(low.graph, low.graph.ops[p]) for p in low.device_ops[split:])


def _better(a: Plan, b: Plan | None, obj: Objective) -> bool:
    if b is None:
        return True
    if obj.budget is not None:
        fa, fb = a.peak_sram_bytes <= obj.budget, b.peak_sram_bytes <= obj.budget
        if fa != fb:
            return fa
        if fa:
            return (a.macs, a.peak_sram_bytes) < (b.macs, b.peak_sram_bytes)
        return (a.peak_sram_bytes, a.macs) < (b.peak_sram_bytes, b.macs)
    oa, ob = a.mac_overhead <= obj.max_overhead + 1e-12, b.mac_overhead <= obj.max_overhead + 1e-12
    if oa != ob:
        return oa
    return (a.peak_sram_bytes, a.macs) < (b.peak_sram_bytes, b.macs)


def _settled(best: Plan, obj: Objective) -> bool:
    """True once only less SRAM can make a plan better than `best`: always without a
    budget (within the overhead allowed), and with one once `best` fits it, since the
    fewest MACs come first and then the least SRAM. The lower bounds prune only then."""
    return obj.budget is None or best.peak_sram_bytes <= obj.budget


def choose(graph: Graph, obj: Objective | None = None) -> Choice:
    obj = obj or Objective()
    if obj.halo not in HALO_CHOICES:
        raise McutoolError(f"--halo must be one of {', '.join(HALO_CHOICES)}, got {obj.halo}")
    low = lower(graph)
    best = layer_by_layer(low)
    tried = [("layer", 0, best.peak_sram_bytes, 0.0)]
    if obj.halo in ("auto", "cache"):
        splits = sorted(range(1, max_split(low) + 1), key=lambda s: (_lower_bound(low, s), s))
        for s in splits:
            if _lower_bound(low, s) >= best.peak_sram_bytes and _settled(best, obj):
                break
            p = plan_stream(low, s)
            tried.append(("stream", s, p.peak_sram_bytes, p.mac_overhead))
            if _better(p, best, obj):
                best = p
    if obj.halo in ("auto", "recompute"):
        whole_inputs = sum(low.graph.t(t).nbytes for t in low.device_inputs)
        splits = sorted(range(1, max_split(low) + 1), key=lambda s: (_lower_bound(low, s), s))
        for s in splits:
            lb = max(_lower_bound(low, s), whole_inputs)
            if lb >= best.peak_sram_bytes and _settled(best, obj):
                break
            for n, m in GRIDS:
                try:
                    geo = patch_geometry(low, s, n, m)
                except McutoolError:
                    continue  # this split has several outputs, or the grid is finer than the map
                overhead = (geo.macs + tail_macs(low, s) - best.base_macs) / best.base_macs if best.base_macs else 0
                if obj.budget is None and overhead > obj.max_overhead + 1e-12:
                    continue
                if obj.budget is not None and _settled(best, obj) and geo.macs + tail_macs(low, s) > best.macs:
                    continue  # more MACs than a plan that already fits
                if _settled(best, obj) and geo.lower_bound(low.graph) >= best.peak_sram_bytes:
                    continue
                p = plan_patches(low, s, n, m, geo)
                tried.append(("patch", s, p.peak_sram_bytes, p.mac_overhead))
                if _better(p, best, obj):
                    best = p
    choice = Choice(low, best, tried, obj.budget)
    return choice
