"""A picture or camera frame -> the model's input, per the zoo entry's input spec.

Both forms are returned: `x`, what the .tflite itself takes (float32 for a model with a
QUANTIZE in front, so a reference interpreter can run it), and `q`, the int8 tensor the
board takes (the QUANTIZE done here, bit-exactly as TFLite does it). Running `x` in TFLM
and `q` on the board must then give the same answer: the tests check exactly that."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import McutoolError
from . import Entry


@dataclass
class Geometry:
    """Where the model's input came from: source pixel = offset + model pixel * scale."""
    src_w: int
    src_h: int
    ox: float
    oy: float
    sx: float
    sy: float

    def to_source(self, x: float, y: float) -> tuple[float, float]:
        return self.ox + x * self.sx, self.oy + y * self.sy

    def box_to_source(self, box) -> list[float]:
        x0, y0 = self.to_source(box[0], box[1])
        x1, y1 = self.to_source(box[2], box[3])
        clip = lambda v, hi: float(min(max(v, 0.0), hi))  # noqa: E731
        return [round(clip(x0, self.src_w), 1), round(clip(y0, self.src_h), 1),
                round(clip(x1, self.src_w), 1), round(clip(y1, self.src_h), 1)]


@dataclass
class Prepared:
    q: np.ndarray  # int8 [1, h, w, c]: the board's input
    x: np.ndarray  # the .tflite's own input: float32 for a float-input model, else q
    geom: Geometry


def fit_box(src_w: int, src_h: int, w: int, h: int, fit: str) -> tuple[float, float, float, float]:
    """The region (x0, y0, x1, y1) of the source that the model sees."""
    if fit == "stretch":
        return 0.0, 0.0, float(src_w), float(src_h)
    want = w / h
    if src_w / src_h > want:  # too wide: keep the middle
        cw = src_h * want
        return (src_w - cw) / 2, 0.0, (src_w + cw) / 2, float(src_h)
    ch = src_w / want
    return 0.0, (src_h - ch) / 2, float(src_w), (src_h + ch) / 2


def prepare(image, entry: Entry, quant: tuple[float, int] | None = None) -> Prepared:
    """`image`: a PIL image, or an RGB uint8 array (h, w, 3) such as a camera frame.
    `quant`: (scale, zero_point) of the model's int8 input; needed for a float mapping."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    spec = entry.input
    img = image.convert("L" if spec.colour == "grey" else "RGB")
    box = fit_box(img.width, img.height, spec.width, spec.height, spec.fit)
    if box == (0.0, 0.0, float(img.width), float(img.height)) and img.size == (spec.width, spec.height):
        small = img
    else:
        small = img.resize((spec.width, spec.height), Image.BILINEAR, box=box)
    px = np.asarray(small, dtype=np.int16).reshape(spec.shape)
    geom = Geometry(img.width, img.height, box[0], box[1], (box[2] - box[0]) / spec.width,
                    (box[3] - box[1]) / spec.height)
    if spec.mapping == "int8":
        q = (px - 128).astype(np.int8)
        return Prepared(q, q, geom)
    if quant is None:
        raise McutoolError(f"{entry.name}: a float-input model needs its input scale and zero point")
    from ..ref.quantize import affine_quantize

    lo, hi = spec.range
    # The same float expression as MCUNet's eval scripts: pixel / 255 * 2 - 1 for [-1, 1].
    x = (px.astype(np.float32) / np.float32(255) * np.float32(hi - lo) + np.float32(lo)).astype(np.float32)
    return Prepared(affine_quantize(x, quant[0], quant[1]), x, geom)
