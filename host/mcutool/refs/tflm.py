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


def tflm_arena(model: bytes) -> dict:
    """TFLM's own arena figures for a model: what `print_allocations()` reports.

    `total` is the smallest arena TFLM runs the model in (activations plus its persistent
    structures); `head` is the activation part alone. The figures are printed by C++ to the
    process's stdout, so a child process captures them.
    """
    import os
    import re
    import subprocess
    import sys
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as f:
        f.write(model)
        path = f.name
    # TFLM's default arena first: its figures depend (by alignment) on the arena it is given,
    # and the default is what the shared README reports. Then a roomier one.
    try:
        for size in ("None", str(_arena_size(model))):
            code = ("from tflite_micro.python.tflite_micro import runtime\n"
                    f"runtime.Interpreter.from_file({path!r}, arena_size={size}).print_allocations()\n")
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
            found = dict(re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", r.stdout + r.stderr))
            if "total" in found:
                break
    finally:
        os.unlink(path)
    if "total" not in found:
        raise missing("tflite_micro", "tflite-micro") if "No module" in r.stderr else RuntimeError(r.stderr[-500:])
    return {k: int(v) for k, v in found.items()}
