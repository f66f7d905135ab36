"""Compute every op's executor constants once, on the host, and keep them in Op.data."""
from __future__ import annotations

from ..errors import McutoolError
from ..ir import Graph

# The two TFLite references agree bit for bit except where listed here: what to change in
# an op's prepared data to match the other one. TFLM is the default, the ground truth.
REFERENCE_FLAVOURS = {
    "tflm": {},
    # LiteRT's BUILTIN_REF FULLY_CONNECTED requantizes with single rounding.
    "litert": {"FULLY_CONNECTED": {"rounding": "single"}},
}


def prepare_graph(graph: Graph, match: str = "tflm") -> Graph:
    """Fill op.data for every op; raise McutoolError naming the op on anything we cannot run.

    `match` picks which reference's rounding the constants reproduce: "tflm" or "litert".
    """
    from ..ref.kernels import kernel

    if match not in REFERENCE_FLAVOURS:
        raise McutoolError(f"unknown reference '{match}'; choose one of {', '.join(REFERENCE_FLAVOURS)}")
    for op in graph.ops:
        prepare, _ = kernel(op.kind)
        if not op.outputs:
            raise McutoolError(f"op {op.index} ({op.kind}) has no output")
        try:
            op.data = prepare(graph, op)
        except McutoolError:
            raise
        except (ValueError, IndexError, TypeError, ZeroDivisionError) as e:
            raise McutoolError(f"op {op.index} ({op.kind}): {e}") from None
        op.data.update(REFERENCE_FLAVOURS[match].get(op.kind, {}))
    return graph
