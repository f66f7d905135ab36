"""Compute every op's executor constants once, on the host, and keep them in Op.data."""
from __future__ import annotations

from ..errors import McutoolError
from ..ir import Graph


def prepare_graph(graph: Graph) -> Graph:
    """Fill op.data for every op; raise McutoolError naming the op on anything we cannot run."""
    from ..ref.kernels import kernel

    for op in graph.ops:
        prepare, _ = kernel(op.kind)
        if not op.outputs:
            raise McutoolError(f"op {op.index} ({op.kind}) has no output")
        try:
            op.data = prepare(graph, op)
        except McutoolError:
            raise
        except (ValueError, IndexError, TypeError, ZeroDivisionError) as e:
            raise McutoolError(f"op {op.index} ({op.kind}): cannot prepare: {e}") from None
    return graph
