"""Load a model from disk, whatever its form, ready to run: the pipeline's front door."""
from __future__ import annotations

import os

from .errors import McutoolError
from .ir import Graph
from .quant.prepare import prepare_graph


def is_image(path: str | os.PathLike) -> bool:
    from .image.format import MAGIC

    with open(path, "rb") as f:
        return f.read(4) == MAGIC


def _exists(path: str) -> None:
    if not os.path.exists(path):
        raise McutoolError(f"{path}: no such file")
    if os.path.isdir(path):
        raise McutoolError(f"{path}: is a directory, not a model")


def load_model(path: str | os.PathLike, match: str = "tflm") -> Graph:
    """A prepared IR graph from a .tflite file or an .mcu flash image.

    `match` ("tflm" or "litert") picks whose rounding a .tflite is prepared to reproduce;
    an image keeps the choice it was made with. An image's graph is the lowered one it stores.
    """
    path = os.fspath(path)
    _exists(path)
    if is_image(path) or path.lower().endswith(".mcu"):  # a damaged image is told why, not "not TFLite"
        return load_image(path)[0]
    from .tflite_import import load_tflite

    return prepare_graph(load_tflite(path), match)


def load_image(path: str | os.PathLike):
    """(graph, plan) stored in an .mcu flash image."""
    from .image.format import read_image

    path = os.fspath(path)
    _exists(path)
    return read_image(path)
