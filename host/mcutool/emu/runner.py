"""A flash image run as a board would run it, with the device part on the emulated
Cortex-M: host pre/post steps (QUANTIZE, TRANSPOSE, DEQUANTIZE) in numpy, exactly as
mcutool.native.NativeRunner does them around the CPython build of the engine."""
from __future__ import annotations

import numpy as np

from .machine import EmuError, EmuResult, run


class EmuRunner:
    """runner = EmuRunner(image, elf); outputs = runner([x]); runner.last is the EmuResult."""

    def __init__(self, image: bytes, elf, count: bool | str = False):
        from ..image.format import unpack

        self.image = bytes(image)
        self.graph, self.plan = unpack(self.image)
        self.elf = elf
        self.count = count
        self.last: EmuResult | None = None

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        from ..ref.host_steps import device_inputs, graph_outputs

        vals, dev_in = device_inputs(self.graph, self.plan, inputs)
        r = self.last = run(self.image, dev_in, self.elf, count=self.count)
        if r.status != 0:
            raise EmuError(f"the engine returned status {r.status} (load {r.load_status}, invoke {r.invoke_status})")
        return graph_outputs(self.graph, self.plan, vals, r.outputs)
