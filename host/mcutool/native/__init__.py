"""The C engine (device/engine) driven from Python: host pre/post steps in numpy, the
device part in C, exactly as a board would run it."""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError
from ..ir import Graph


def engine():
    """The extension module. MCUTOOL_ENGINE_SO names another build of it (the sanitizer
    build that CI tests with) to load instead of the installed one."""
    import os
    import sys

    so = os.environ.get("MCUTOOL_ENGINE_SO")
    if so:
        if "mcutool._engine" not in sys.modules:
            import importlib.util

            spec = importlib.util.spec_from_file_location("mcutool._engine", so)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            sys.modules["mcutool._engine"] = mod
        return sys.modules["mcutool._engine"]
    try:
        from .. import _engine
    except ImportError as e:
        raise McutoolError(f"the native engine is not built ({e}); reinstall mcutool: pip install -e .") from None
    return _engine


def check_loads(image: bytes, where: str) -> None:
    """Refuse, in one line, an image the engine would refuse on the board. The Python
    reader enforces the same contract as the C loader (docs/flash-image.md §6) and names
    the op, step or tensor at fault; the C loader must then agree, or one of them has a bug."""
    from ..image.format import unpack

    try:
        unpack(image)
    except McutoolError as e:
        raise McutoolError(f"{where}: the engine cannot run this model as planned: {e}; nothing written") from None
    res = engine().load_status(image)
    if res[0] < 0:
        check = f", check {res[2]}" if len(res) > 2 else ""
        raise McutoolError(f"{where}: the C engine refuses the image ({res[1]}, status {res[0]}{check}) that the "
                           "Python reader accepts: a bug in one of them, please report it; nothing written")


class NativeRunner:
    """Runs one flash image: its graph's host steps in numpy, its plan in the C engine."""

    def __init__(self, image: bytes):
        from ..image.format import unpack

        self.graph, self.plan = unpack(image)
        try:
            self.model = engine().Model(image)
        except ValueError as e:
            raise McutoolError(str(e)) from None

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        from ..ref.host_steps import device_inputs, graph_outputs

        vals, dev_in = device_inputs(self.graph, self.plan, inputs)
        try:
            outs = self.model.invoke(dev_in)
        except ValueError as e:
            raise McutoolError(str(e)) from None
        return graph_outputs(self.graph, self.plan, vals, outs)


def runner_for_graph(graph: Graph):
    """Plan a prepared graph, pack its image, and return a NativeRunner for it."""
    from ..image.format import pack
    from ..plan.planner import choose

    c = choose(graph)
    return NativeRunner(pack(c.lowered.graph, c.plan))
