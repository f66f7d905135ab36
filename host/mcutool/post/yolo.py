"""YOLOv3 heads -> boxes, as MCUNet's Yolo3Output and TinyEngine's yoloOutput.c decode them:
per cell and anchor (tx, ty, tw, th, objectness, classes...), centre = (sigmoid(t) + cell)
* stride, size = exp(t) * anchor, score = sigmoid(objectness) * sigmoid(class); then
greedy per-class NMS."""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def candidates(post: dict, outputs: list[np.ndarray]) -> np.ndarray:
    """All anchors' boxes as rows (x0, y0, x1, y1, score, class), in model-input pixels."""
    strides, anchors = post["strides"], post["anchors"]
    nc = len(post["labels"])
    if len(outputs) != len(strides):
        raise McutoolError(f"yolo3: {len(outputs)} outputs, the zoo entry describes {len(strides)} heads")
    rows = []
    for o, stride, anc in zip(outputs, strides, anchors):
        o = np.asarray(o, np.float64)
        _, h, w, c = o.shape
        na = len(anc)
        if c != na * (5 + nc):
            raise McutoolError(f"yolo3: a head has {c} channels, {na} anchors x (5 + {nc} classes) expected")
        t = o.reshape(h, w, na, 5 + nc)
        gy, gx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        a = np.asarray(anc, np.float64)  # (na, 2): width, height
        cx = (_sigmoid(t[..., 0]) + gx[..., None]) * stride
        cy = (_sigmoid(t[..., 1]) + gy[..., None]) * stride
        bw = np.exp(t[..., 2]) * a[:, 0]
        bh = np.exp(t[..., 3]) * a[:, 1]
        obj = _sigmoid(t[..., 4])
        for k in range(nc):
            score = obj * _sigmoid(t[..., 5 + k])
            rows.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, score,
                                  np.full_like(score, k)], -1).reshape(-1, 6))
    return np.concatenate(rows)


def _iou(b: np.ndarray, others: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(b[2], others[:, 2]) - np.maximum(b[0], others[:, 0]), 0, None)
    ih = np.clip(np.minimum(b[3], others[:, 3]) - np.maximum(b[1], others[:, 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(b) + area(others) - inter, 1e-9)


def nms(boxes: np.ndarray, iou: float, max_boxes: int) -> np.ndarray:
    """Greedy NMS per class, best score first (stable on ties: the earlier anchor wins)."""
    keep = []
    for k in np.unique(boxes[:, 5]):
        b = boxes[boxes[:, 5] == k]
        b = b[np.argsort(-b[:, 4], kind="stable")]
        while len(b):
            keep.append(b[0])
            b = b[1:][_iou(b[0], b[1:]) <= iou]
    if not keep:
        return np.zeros((0, 6))
    out = np.stack(keep)
    return out[np.argsort(-out[:, 4], kind="stable")][:max_boxes]


def decode_yolo3(post: dict, outputs: list[np.ndarray], geom) -> dict:
    c = candidates(post, outputs)
    # Thresholding before NMS gives the same boxes as MCUNet's NMS-then-threshold: a box is
    # only ever suppressed by a better one, which passes the threshold too.
    c = c[c[:, 4] > post.get("score_threshold", 0.3)]
    kept = nms(c, post.get("nms_iou", 0.45), int(post.get("max_boxes", 100)))
    dets = [{"label": post["labels"][int(r[5])], "score": round(float(r[4]), 4),
             "box": geom.box_to_source(r[:4]) if geom is not None else [round(float(v), 1) for v in r[:4]]}
            for r in kept]
    return {"kind": "yolo3", "detections": dets}
