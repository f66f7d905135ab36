"""Per-op figures of a model: shapes, MACs, weight and activation bytes, layer-by-layer peak."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from ..ops import MAC_OPS


def op_macs(graph: Graph, op: Op) -> int:
    if op.kind not in MAC_OPS:
        return 0
    w = graph.t(op.inputs[1])
    y = graph.t(op.outputs[0])
    if op.kind == "CONV_2D":
        _, kh, kw, ic = w.shape
        return y.size * kh * kw * ic
    if op.kind == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = w.shape
        return y.size * kh * kw
    return y.size * w.shape[1]  # FULLY_CONNECTED: one MAC per weight per output row


def op_row(graph: Graph, op: Op) -> dict:
    acts = {i: graph.t(i) for i in op.inputs if i >= 0 and not graph.t(i).is_const}
    outs = {i: graph.t(i) for i in op.outputs}
    weights = sum(graph.t(i).nbytes for i in op.inputs if i >= 0 and graph.t(i).is_const)
    return {
        "index": op.index,
        "op": op.kind,
        "inputs": [list(t.shape) for t in acts.values()],
        "outputs": [list(t.shape) for t in outs.values()],
        "macs": op_macs(graph, op),
        "weight_bytes": weights,
        "activation_bytes": sum(t.nbytes for t in acts.values()) + sum(t.nbytes for t in outs.values()),
    }


def inspect_graph(graph: Graph) -> dict:
    rows = [op_row(graph, op) for op in graph.ops]
    consts = {i for op in graph.ops for i in op.inputs if i >= 0 and graph.t(i).is_const}
    peak_row = max(rows, key=lambda r: r["activation_bytes"], default=None)
    return {
        "model": graph.name,
        "inputs": [_io(graph, i) for i in graph.inputs],
        "outputs": [_io(graph, i) for i in graph.outputs],
        "ops": rows,
        "macs": sum(r["macs"] for r in rows),
        "weight_bytes": sum(graph.t(i).nbytes for i in consts),
        "layer_peak_bytes": peak_row["activation_bytes"] if peak_row else 0,
        "layer_peak_op": peak_row["index"] if peak_row else None,
    }


def _io(graph: Graph, i: int) -> dict:
    t = graph.t(i)
    d = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype}
    if t.quant is not None:
        d["scale"] = float(np.float32(t.quant.s))
        d["zero_point"] = t.quant.zp
    return d


def format_inspect(rep: dict) -> str:
    lines = [f"model {rep['model']}"]
    for kind in ("inputs", "outputs"):
        for io in rep[kind]:
            q = f" scale {io['scale']:.6g} zp {io['zero_point']}" if "scale" in io else ""
            lines.append(f"  {kind[:-1]:6} {io['name']}: {'x'.join(map(str, io['shape']))} {io['dtype']}{q}")
    lines.append("")
    lines.append(f"{'#':>3}  {'op':<24}{'input':<18}{'output':<18}{'MACs':>12}{'weights':>10}{'acts':>10}")
    for r in rep["ops"]:
        shp = lambda s: "x".join(map(str, s[0])) if s else "-"  # noqa: E731
        mark = " <- peak" if r["index"] == rep["layer_peak_op"] else ""
        lines.append(
            f"{r['index']:>3}  {r['op']:<24}{shp(r['inputs']):<18}{shp(r['outputs']):<18}"
            f"{r['macs']:>12,}{r['weight_bytes']:>10,}{r['activation_bytes']:>10,}{mark}"
        )
    lines.append("")
    lines.append(f"ops {len(rep['ops'])}, MACs {rep['macs']:,}, weights {rep['weight_bytes']:,} B, "
                 f"layer-by-layer peak {rep['layer_peak_bytes']:,} B (op {rep['layer_peak_op']})")
    return "\n".join(lines)
