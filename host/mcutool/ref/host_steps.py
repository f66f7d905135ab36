"""The host's part of a plan: PRE and POST steps (QUANTIZE, TRANSPOSE, DEQUANTIZE), run
in numpy around whichever engine runs the device part."""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from ..plan.model import Plan
from .kernels import evaluate


def run_host_steps(graph: Graph, plan: Plan, vals: dict, kind: str) -> None:
    """Run the plan's steps of `kind` (PRE or POST), reading and writing `vals` (tensor -> array)."""
    for s in plan.steps:
        if s.kind == kind:
            op = graph.ops[s.op]
            vals[op.outputs[0]] = evaluate(graph, op, vals.__getitem__)


def device_inputs(graph: Graph, plan: Plan, inputs: list) -> tuple[dict, list[bytes]]:
    """Graph inputs -> (values so far, the device inputs as int8 bytes)."""
    from ..plan.model import PRE

    vals = {t: np.asarray(x).reshape(graph.t(t).shape) for t, x in zip(graph.inputs, inputs)}
    run_host_steps(graph, plan, vals, PRE)
    return vals, [np.ascontiguousarray(vals[t], dtype=np.int8).tobytes() for t in plan.device_inputs]


def graph_outputs(graph: Graph, plan: Plan, vals: dict, device_out: list[bytes]) -> list:
    """The device outputs (int8 bytes) -> the graph's outputs, through the POST steps."""
    from ..plan.model import POST

    for t, b in zip(plan.device_outputs, device_out):
        vals[t] = np.frombuffer(b, np.int8).reshape(graph.t(t).shape)
    run_host_steps(graph, plan, vals, POST)
    return [vals[t] for t in graph.outputs]
