"""Host-side post-processing: a model's outputs -> an answer (labels and probabilities,
boxes, or centroids). One code path for `run-camera`, `demo` and anything else that
decodes a zoo model's outputs; outputs are first turned into floats, so int8 outputs from
a board and float outputs from a reference interpreter decode through the same code."""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError


def dequantize_outputs(raw: list, specs: list[dict]) -> list[np.ndarray]:
    """The board's int8 outputs (bytes or arrays) as float32, shaped per the INFO specs,
    with TFLite's DEQUANTIZE arithmetic (so a float-output model's own outputs match)."""
    from ..link.commands import _scale
    from ..ref.quantize import dequantize

    if len(raw) != len(specs):
        raise McutoolError(f"{len(raw)} outputs, the model has {len(specs)}")
    out = []
    for r, s in zip(raw, specs):
        q = np.frombuffer(r, np.int8) if isinstance(r, (bytes, bytearray, memoryview)) else np.asarray(r, np.int8)
        out.append(dequantize(q.reshape(s["shape"]), _scale(s), s["zero_point"]))
    return out


def decode(entry, outputs: list[np.ndarray], geom) -> dict:
    """Float outputs -> {"kind", and "top" (classify) or "detections" (yolo3, fomo)}."""
    kind = entry.post["kind"]
    if kind == "classify":
        from .classify import classify

        return classify(entry.post, outputs)
    if kind == "yolo3":
        from .yolo import decode_yolo3

        return decode_yolo3(entry.post, outputs, geom)
    if kind == "fomo":
        from .fomo import decode_fomo

        return decode_fomo(entry.post, outputs, geom)
    raise McutoolError(f"{entry.name}: unknown post-processing '{kind}'")


def summary(result: dict) -> str:
    """One line for people: what the model found."""
    if result["kind"] == "classify":
        t = result["top"][0]
        return f"{t['label']} ({t['score']:.3f})"
    dets = result["detections"]
    if not dets:
        return "nothing found"
    parts = []
    for d in dets:
        where = (f"box ({d['box'][0]:.0f},{d['box'][1]:.0f})-({d['box'][2]:.0f},{d['box'][3]:.0f})" if "box" in d
                 else f"at ({d['x']:.0f},{d['y']:.0f})")
        parts.append(f"{d['label']} {d['score']:.2f} {where}")
    return f"{len(dets)} found: " + "; ".join(parts)
