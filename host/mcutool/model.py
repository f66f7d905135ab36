"""Load a model from disk, whatever its form, ready to run: the pipeline's front door."""
from __future__ import annotations

import os

from .errors import McutoolError
from .ir import Graph
from .quant.prepare import prepare_graph


def load_model(path: str | os.PathLike, match: str = "tflm") -> Graph:
    """A prepared IR graph from a .tflite file or an .mcu flash image.

    `match` ("tflm" or "litert") picks whose rounding a .tflite is prepared to reproduce;
    an image keeps the choice it was made with.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise McutoolError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(8)
    from .image.format import MAGIC

    if head[:4] == MAGIC:
        from .image.format import read_image

        return read_image(path)
    from .tflite_import import load_tflite

    return prepare_graph(load_tflite(path), match)
