"""What a plan costs: peak SRAM, MACs, overhead, split, grid; as text, JSON and a figure."""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError
from ..ir import Graph
from ..plan.model import RUN, WINDOW, Plan
from ..plan.planner import Choice
from .inspect import inspect_graph


def live_bytes(plan: Plan) -> list[int]:
    """Bytes of the arena in use at each step (buffers that own bytes, over their lives)."""
    use = np.zeros(len(plan.steps) + 1, np.int64)
    for b in plan.buffers.values():
        if b.alias_of >= 0:
            continue
        for s, e in b.live:
            use[s] += b.size
            use[e + 1] -= b.size
    return np.cumsum(use)[:-1].tolist()


def per_op_memory(graph: Graph, choice: Choice) -> tuple[list[int], list[int], list[int]]:
    """(op indices, layer-by-layer bytes, planned bytes) for every device op."""
    plan, low = choice.plan, choice.lowered
    g = low.graph
    live = live_bytes(plan)
    planned: dict[int, int] = {}
    for i, s in enumerate(plan.steps):
        if s.kind in (RUN, WINDOW):
            for pos in (s.op, s.fused):
                if pos >= 0:
                    planned[pos] = max(planned.get(pos, 0), live[i])
    ids, lbl, pln = [], [], []
    for pos in low.device_ops:
        op = g.ops[pos]
        ids.append(op.index)
        lbl.append(sum(t.nbytes for t in g.activation_inputs(op)) + g.t(op.outputs[0]).nbytes)
        pln.append(planned.get(pos, 0))
    return ids, lbl, pln


def plan_report(graph: Graph, choice: Choice) -> dict:
    plan, low = choice.plan, choice.lowered
    rep = inspect_graph(graph)
    dev = low.device_ops
    split_op = low.graph.ops[dev[plan.split - 1]].index if plan.split else None
    return {
        "model": graph.name,
        "strategy": plan.strategy,
        "layer_peak_bytes": rep["layer_peak_bytes"],
        "peak_sram_bytes": plan.peak_sram_bytes,
        "arena_bytes": plan.arena_bytes,
        "macs": plan.macs,
        "base_macs": plan.base_macs,
        "mac_overhead": round(plan.mac_overhead, 6),
        "split": plan.split,
        "split_op": split_op,
        "patches": list(plan.grid),
        "halo": plan.halo,
        "streamed_input": plan.streamed_input,
        "folded_pads": low.folded_pads,
        "host_ops": [low.graph.ops[p].kind for p in low.pre + low.post],
        "steps": len(plan.steps),
        "budget": choice.budget,
        "fits": choice.fits,
        "candidates": len(choice.candidates),
    }


def format_plan(r: dict) -> str:
    how = {"layer": "layer by layer", "stream": "streamed stage, cached halos", "patch": "patch-based stage"}[r["strategy"]]
    lines = [f"{r['model']}: {how}"]
    if r["split"]:
        lines.append(f"  split                 after op {r['split_op']} ({r['split']} device ops patched)")
        lines.append(f"  patches               {r['patches'][0]} x {r['patches'][1]} (rows x columns of the stage output)")
        lines.append(f"  halo                  {r['halo']}" + ("; input streamed in row bands" if r["streamed_input"] else ""))
    lines.append(f"  layer-by-layer peak   {r['layer_peak_bytes']:>10,} B")
    ratio = r["layer_peak_bytes"] / r["peak_sram_bytes"] if r["peak_sram_bytes"] else 0
    lines.append(f"  planned peak          {r['peak_sram_bytes']:>10,} B   ({ratio:.1f}x smaller)")
    lines.append(f"  arena                 {r['arena_bytes']:>10,} B")
    lines.append(f"  MACs                  {r['macs']:>10,}   (overhead {100 * r['mac_overhead']:.2f}%)")
    extras = []
    if r["folded_pads"]:
        extras.append(f"{r['folded_pads']} PAD ops folded into convolutions")
    if r["host_ops"]:
        extras.append("on the host: " + ", ".join(r["host_ops"]))
    if extras:
        lines.append("  " + "; ".join(extras))
    if r["budget"] is not None:
        lines.append(f"  budget                {r['budget']:>10,} B   {'fits' if r['fits'] else 'DOES NOT FIT'}")
    return "\n".join(lines)


def check_plot_path(path: str) -> None:
    """Refuse, before any planning, a plot that could not be written."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext not in kinds:
        raise McutoolError(f"{path}: --plot writes {', '.join('.' + k for k in sorted(kinds))}; "
                           f"{'.' + ext if ext else 'no extension'} is not one of them")
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise McutoolError(f"{path}: directory {d} does not exist")
    if not os.access(d, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise McutoolError(f"{path}: cannot write there (permission denied)")


def plot_plan(graph: Graph, choice: Choice, path: str) -> None:
    check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids, lbl, pln = per_op_memory(graph, choice)
    r = plan_report(graph, choice)
    x = np.arange(len(ids))
    fig, ax = plt.subplots(figsize=(max(8, len(ids) * 0.16), 4.8), dpi=120)
    ax.bar(x, np.array(lbl) / 1024, color="#c9c9c9", label=f"layer by layer (peak {r['layer_peak_bytes'] / 1024:,.1f} KB)")
    ax.bar(x, np.array(pln) / 1024, width=0.55, color="#2b7bba",
           label=f"planned: arena in use (peak {r['peak_sram_bytes'] / 1024:,.1f} KB)")
    if r["split"]:
        ax.axvline(r["split"] - 0.5, color="#d62728", ls="--", lw=1)
        ax.text(r["split"] - 0.4, ax.get_ylim()[1] * 0.95, " split: stage | tail", color="#d62728", va="top", fontsize=9)
    if r["budget"]:
        ax.axhline(r["budget"] / 1024, color="#2ca02c", lw=1)
        ax.text(0, r["budget"] / 1024, " SRAM budget", color="#2ca02c", va="bottom", fontsize=9)
    ax.set_xlabel("op (TFLite index)")
    ax.set_ylabel("SRAM (KB)")
    step = max(1, len(ids) // 30)
    ax.set_xticks(x[::step], [str(i) for i in ids[::step]], fontsize=8)
    ax.set_title(f"{graph.name}: memory per layer, {r['strategy']} plan, "
                 f"MAC overhead {100 * r['mac_overhead']:.1f}%", fontsize=11)
    ax.legend(loc="upper right", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as e:
        raise McutoolError(f"{path}: cannot write the plot: {e.strerror or e}") from None
    finally:
        plt.close(fig)
