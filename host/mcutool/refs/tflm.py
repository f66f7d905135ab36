"""TensorFlow Lite Micro's own interpreter (the `tflite-micro` package): our ground truth."""
from __future__ import annotations

import numpy as np

from . import missing


def run_tflm(model: bytes, inputs: list[np.ndarray], n_outputs: int) -> list[np.ndarray]:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise missing("tflite_micro", "tflite-micro") from None
    it = runtime.Interpreter.from_bytes(model)
    for i, x in enumerate(inputs):
        it.set_input(x, i)
    it.invoke()
    return [np.array(it.get_output(i)) for i in range(n_outputs)]
