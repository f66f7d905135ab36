"""Turn what a user hands us (raw bytes, .npy, an image) into a model input array."""
from __future__ import annotations

import os

import numpy as np

from .errors import McutoolError
from .ir import Graph, Tensor

INPUT_FORMATS = ("auto", "raw", "npy", "image")
_IMAGE_EXT = (".bmp", ".png", ".jpg", ".jpeg", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def guess_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return "npy"
    if ext in _IMAGE_EXT:
        return "image"
    return "raw"


def load_input(path: str, t: Tensor, fmt: str = "auto", graph: Graph | None = None) -> np.ndarray:
    if not os.path.isfile(path):
        raise McutoolError(f"{path}: no such input file")
    fmt = guess_format(path) if fmt == "auto" else fmt
    dt = np.dtype(t.dtype)
    if fmt == "raw":
        raw = open(path, "rb").read()
        if len(raw) != t.nbytes:
            raise McutoolError(
                f"{path}: {len(raw)} bytes, but input {t.name} is {t.dtype} {'x'.join(map(str, t.shape))} = {t.nbytes} bytes"
            )
        return np.frombuffer(raw, dt.newbyteorder("<")).astype(dt).reshape(t.shape)
    if fmt == "npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise McutoolError(f"{path}: not a readable .npy file ({e})") from None
        if a.size != t.size:
            raise McutoolError(f"{path}: array {a.shape} has {a.size} values, input {t.name} needs {t.shape}")
        if a.dtype != dt:
            raise McutoolError(f"{path}: array is {a.dtype}, input {t.name} is {t.dtype}")
        return a.reshape(t.shape)
    if fmt == "image":
        return image_to_input(path, t, graph)
    raise McutoolError(f"unknown input format '{fmt}'; choose one of {', '.join(INPUT_FORMATS)}")


def _hwc(t: Tensor) -> tuple[int, int, int, bool]:
    """(height, width, channels, channels_first) of an image input tensor."""
    s = t.shape
    if len(s) == 4 and s[0] == 1 and s[3] in (1, 3):
        return s[1], s[2], s[3], False
    if len(s) == 4 and s[0] == 1 and s[1] in (1, 3):
        return s[2], s[3], s[1], True
    if len(s) == 3 and s[2] in (1, 3):
        return s[0], s[1], s[2], False
    raise McutoolError(f"input {t.name} {t.shape} is not an image tensor (NHWC or NCHW, 1 or 3 channels)")


def image_to_input(path: str, t: Tensor, graph: Graph | None = None) -> np.ndarray:
    """Default mapping, TinyEngine's: int8 value = pixel - 128.

    A float input (a model that quantizes inside) gets the float that its QUANTIZE maps
    to pixel - 128, so both kinds of model see the same int8 image.
    """
    try:
        from PIL import Image
    except ImportError:
        raise McutoolError("reading images needs Pillow: pip install pillow") from None
    h, w, c, chw = _hwc(t)
    try:
        img = Image.open(path)
        img = img.convert("L" if c == 1 else "RGB")
    except (OSError, ValueError) as e:
        raise McutoolError(f"{path}: cannot read the image ({e})") from None
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    px = np.asarray(img, dtype=np.int16).reshape(h, w, c)
    q = (px - 128).astype(np.int8)
    if chw:
        q = q.transpose(2, 0, 1)
    q = q.reshape(t.shape)
    if t.dtype == "int8":
        return q
    if t.dtype == "float32":
        scale, zp = _float_input_quant(t, graph)
        return (np.float32(scale) * (q.astype(np.float32) - np.float32(zp))).astype(np.float32)
    if t.dtype == "uint8":
        return (q.astype(np.int16) + 128).astype(np.uint8)
    raise McutoolError(f"input {t.name} is {t.dtype}; images map only to int8, uint8 or float32 inputs")


def _float_input_quant(t: Tensor, graph: Graph | None) -> tuple[float, int]:
    if graph is not None:
        for op in graph.ops:
            if op.kind == "QUANTIZE" and op.inputs[0] == t.index:
                q = graph.t(op.outputs[0]).quant
                return q.s, q.zp
    raise McutoolError(f"input {t.name} is float32 with no QUANTIZE after it; pass an .npy with the float values")
