"""The reference interpreters mcutool checks itself against: TFLM and LiteRT's reference kernels.

Both are optional dependencies (`pip install mcutool[verify]`); importing them is deferred
so that inspect/convert/run never need an interpreter.
"""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError

REFERENCES = ("tflm", "litert")


def run_reference(name: str, model: bytes, inputs: list[np.ndarray], n_outputs: int) -> list[np.ndarray]:
    if name == "tflm":
        from .tflm import run_tflm

        return run_tflm(model, inputs, n_outputs)
    if name == "litert":
        from .litert import run_litert

        return run_litert(model, inputs)
    raise McutoolError(f"unknown reference '{name}'; choose one of {', '.join(REFERENCES)}")


def missing(package: str, pip_name: str) -> McutoolError:
    return McutoolError(f"the reference needs the '{package}' package: pip install {pip_name} (or mcutool[verify])")
