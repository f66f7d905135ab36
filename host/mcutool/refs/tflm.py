"""TensorFlow Lite Micro's own interpreter (the `tflite-micro` package): our ground truth."""
from __future__ import annotations

import numpy as np

from . import missing


def run_tflm(model: bytes, inputs: list[np.ndarray], n_outputs: int) -> list[np.ndarray]:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise missing("tflite_micro", "tflite-micro") from None
    it = runtime.Interpreter.from_bytes(model, arena_size=_arena_size(model))
    for i, x in enumerate(inputs):
        it.set_input(x, i)
    it.invoke()
    return [np.array(it.get_output(i)) for i in range(n_outputs)]


def _arena_size(model: bytes) -> int:
    """Room for every tensor at 4 bytes an element: TFLM's default (10x the model's size)
    is too small for activation-heavy models with few weights."""
    import tflite

    sg = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
    elements = sum(int(np.prod(sg.Tensors(i).ShapeAsNumpy())) if sg.Tensors(i).ShapeLength() else 1
                   for i in range(sg.TensorsLength()))
    return 10 * len(model) + 4 * elements + (64 << 10)
