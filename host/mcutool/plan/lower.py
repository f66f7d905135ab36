"""Graph rewrites before planning; every one keeps the outputs bit-identical.

- Boundary folding: a leading QUANTIZE (float -> int8) or TRANSPOSE on a graph input, and a
  trailing DEQUANTIZE on a graph output, run on the host (pre- and post-processing) with
  the very same numpy kernels. The device then takes int8 NHWC in and gives int8 out.
- Virtual padding: a spatial PAD whose only consumer is a CONV_2D or DEPTHWISE_CONV_2D is
  dropped, its amounts added to the convolution's own border. A convolution skips border
  taps, which equals reading the PAD's fill (the input zero point) since (zp - zp) * w = 0.
  Pools are left alone: AVERAGE_POOL counts padded taps only when they are real.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ..ir import Graph, Op

HOST_PRE_KINDS = ("QUANTIZE", "TRANSPOSE")
HOST_POST_KINDS = ("DEQUANTIZE",)
PAD_CONSUMERS = ("CONV_2D", "DEPTHWISE_CONV_2D")


@dataclass
class Lowered:
    graph: Graph  # ops: host pre ops first, then device ops, then host post ops
    pre: list[int] = field(default_factory=list)  # positions in graph.ops run on the host, before
    post: list[int] = field(default_factory=list)  # ... and after the device
    device_inputs: list[int] = field(default_factory=list)  # what the device is handed
    device_outputs: list[int] = field(default_factory=list)  # what it hands back
    folded_pads: int = 0

    @property
    def device_ops(self) -> list[int]:
        skip = set(self.pre) | set(self.post)
        return [i for i in range(len(self.graph.ops)) if i not in skip]


def consumers(graph: Graph) -> dict[int, list[int]]:
    """tensor -> positions of the ops that read it."""
    users: dict[int, list[int]] = {}
    for pos, op in enumerate(graph.ops):
        for t in op.inputs:
            if t >= 0:
                users.setdefault(t, []).append(pos)
    return users


def _fold_pads(graph: Graph) -> int:
    users = consumers(graph)
    keep: list[Op] = []
    folded = 0
    drop = set()
    rewrite: dict[int, tuple[int, tuple]] = {}  # consumer position -> (new input, pad to add)
    for pos, op in enumerate(graph.ops):
        if op.kind != "PAD":
            continue
        out = op.outputs[0]
        pads = op.data["paddings"]
        u = users.get(out, [])
        if (
            len(pads) == 4
            and pads[0] == (0, 0)
            and pads[3] == (0, 0)
            and len(u) == 1
            and out not in graph.outputs
            and graph.ops[u[0]].kind in PAD_CONSUMERS
            and graph.ops[u[0]].inputs[0] == out
            and graph.t(out).quant is not None
            and graph.t(out).quant.zp == op.data["value"]
        ):
            (pt, pb), (pl, pr) = pads[1], pads[2]
            rewrite[u[0]] = (op.inputs[0], (pt, pl, pb, pr))
            drop.add(pos)
            folded += 1
    for pos, op in enumerate(graph.ops):
        if pos in drop:
            continue
        if pos in rewrite:
            src, (pt, pl, pb, pr) = rewrite[pos]
            op = copy.copy(op)
            op.inputs = [src] + list(op.inputs[1:])
            op.data = dict(op.data)
            t, l, b, r = op.data["pad"]
            op.data["pad"] = (t + pt, l + pl, b + pb, r + pr)
        keep.append(op)
    graph.ops = keep
    return folded


def lower(graph: Graph, fold_boundary: bool = True, virtual_pad: bool = True) -> Lowered:
    """A rewritten copy of a prepared graph; the original is left untouched."""
    g = Graph(graph.name, graph.tensors, list(graph.ops), list(graph.inputs), list(graph.outputs))
    folded = _fold_pads(g) if virtual_pad else 0
    pre: list[int] = []
    post: list[int] = []
    dev_in = list(g.inputs)
    dev_out = list(g.outputs)
    if fold_boundary:
        users = consumers(g)
        # Walk each input's single-consumer chain of host-foldable ops.
        for k, t in enumerate(dev_in):
            while True:
                u = users.get(t, [])
                if len(u) != 1 or g.ops[u[0]].kind not in HOST_PRE_KINDS:
                    break
                op = g.ops[u[0]]
                if op.kind == "QUANTIZE" and op.data["mode"] != "float":
                    break
                # Only a prefix of the op list can move to the host: it must run first.
                if u[0] != len(pre):
                    break
                pre.append(u[0])
                t = op.outputs[0]
            dev_in[k] = t
        producer = {o: pos for pos, op in enumerate(g.ops) for o in op.outputs}
        users = consumers(g)
        for k, t in enumerate(dev_out):
            pos = producer.get(t)
            if pos is not None and g.ops[pos].kind in HOST_POST_KINDS and len(users.get(g.ops[pos].inputs[0], [])) == 1:
                post.append(pos)
                dev_out[k] = g.ops[pos].inputs[0]
        # Post ops must be the last ops; move them there (they depend only on device outputs).
        if post:
            rest = [op for i, op in enumerate(g.ops) if i not in post]
            tail = [g.ops[i] for i in sorted(post)]
            g.ops = rest + tail
            post = list(range(len(rest), len(g.ops)))
    return Lowered(g, pre, post, dev_in, dev_out, folded)
