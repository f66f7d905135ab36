"""Calibration and evaluation inputs: a folder of images mapped per an input spec, or an .npy.

An image becomes the float the model was trained on: either a linear map of pixel values
0..255 onto --input-range LO,HI, or (pixel - mean) / std per channel. An .npy holds the
model's float inputs already, one per row: (N, *input shape) or (N, *input shape[1:]).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import McutoolError
from ..inputs import _IMAGE_EXT, _hwc
from ..ir import Tensor


@dataclass
class InputSpec:
    input_range: tuple[float, float] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def given(self) -> bool:
        return self.input_range is not None or self.mean is not None or self.std is not None


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise McutoolError(f"{what} takes comma-separated numbers, got '{text}'") from None


def parse_spec(input_range: str | None, mean: str | None, std: str | None) -> InputSpec:
    if input_range is not None and (mean is not None or std is not None):
        raise McutoolError("give either --input-range or --mean/--std, not both")
    spec = InputSpec()
    if input_range is not None:
        r = _floats(input_range, "--input-range")
        if len(r) != 2 or not r[0] < r[1]:
            raise McutoolError(f"--input-range takes LO,HI with LO < HI, got '{input_range}'")
        spec.input_range = (r[0], r[1])
    if mean is not None or std is not None:
        spec.mean = _floats(mean, "--mean") if mean is not None else (0.0,)
        spec.std = _floats(std, "--std") if std is not None else (1.0,)
        if any(s == 0 for s in spec.std):
            raise McutoolError("--std must not be 0")
    return spec


def list_images(folder: str) -> list[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if os.path.splitext(f)[1].lower() in _IMAGE_EXT)


def count_samples(path: str) -> int:
    if os.path.isdir(path):
        return len(list_images(path))
    return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])


def image_to_float(path: str, t: Tensor, spec: InputSpec) -> np.ndarray:
    """One image as the model's float input, resized (bilinear) to the input's size."""
    from PIL import Image

    h, w, c, chw = _hwc(t)
    try:
        img = Image.open(path).convert("L" if c == 1 else "RGB")
    except (OSError, ValueError) as e:
        raise McutoolError(f"{path}: cannot read the image ({e})") from None
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    px = np.asarray(img, np.float32).reshape(h, w, c)
    if spec.input_range is not None:
        lo, hi = spec.input_range
        x = lo + px * np.float32((hi - lo) / 255.0)
    else:
        mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
        if mean.size not in (1, c) or std.size not in (1, c):
            raise McutoolError(f"--mean/--std take 1 or {c} values for a {c}-channel input")
        x = (px - mean) / std
    return (x.transpose(2, 0, 1) if chw else x).reshape(t.shape).astype(np.float32)


def load_samples(path: str, t: Tensor, spec: InputSpec, what: str = "calibration") -> np.ndarray:
    """(N, *input shape) float32 model inputs from a folder of images or an .npy file."""
    if not os.path.exists(path):
        raise McutoolError(f"{path}: no such {what} folder or .npy file")
    if os.path.isdir(path):
        files = list_images(path)
        if not files:
            raise McutoolError(f"{path}: no images (.png, .jpg, .bmp, ...) in the {what} folder")
        if not spec.given:
            raise McutoolError(f"{path}: say how images map to the model's input: --input-range LO,HI "
                               "(e.g. 0,1 or -1,1) or --mean M --std S")
        return np.stack([image_to_float(f, t, spec) for f in files])
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise McutoolError(f"{path}: not a readable .npy file ({e})") from None
    if a.ndim == 0 or a.shape[0] == 0:
        raise McutoolError(f"{path}: the {what} array is empty")
    if a.dtype.kind not in "fiu":
        raise McutoolError(f"{path}: the {what} array is {a.dtype}, not numbers")
    if a[0].size != t.size:
        raise McutoolError(f"{path}: {what} array {a.shape} does not hold inputs of shape {t.shape} "
                           f"(want (N, {', '.join(map(str, t.shape))}))")
    return a.astype(np.float32).reshape((a.shape[0],) + t.shape)
