"""FOMO heat maps -> centroids: each output cell holds class probabilities for an 8x8
patch of the input; a cell whose best non-background class beats the threshold marks an
object at the cell's centre, and touching cells of one class are one object (as Edge
Impulse's FOMO post-processing merges them)."""
from __future__ import annotations

import numpy as np


def decode_fomo(post: dict, outputs: list[np.ndarray], geom) -> dict:
    p = np.asarray(outputs[0], np.float64)
    p = p.reshape(p.shape[-3:])  # (rows, cols, classes)
    rows, cols, _ = p.shape
    bg = int(post.get("background", 0))
    labels = post["labels"]
    cell = float(post.get("cell", 8))
    thr = float(post.get("score_threshold", 0.8))
    fg = p.copy()
    fg[..., bg] = -1.0
    cls = fg.argmax(-1)
    score = fg.max(-1)
    hit = score > thr
    seen = np.zeros_like(hit)
    dets = []
    for y in range(rows):
        for x in range(cols):
            if not hit[y, x] or seen[y, x]:
                continue
            group, stack = [], [(y, x)]
            seen[y, x] = True
            while stack:
                cy, cx = stack.pop()
                group.append((cy, cx))
                if not post.get("merge", True):
                    break
                for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                    if 0 <= ny < rows and 0 <= nx < cols and hit[ny, nx] and not seen[ny, nx] \
                            and cls[ny, nx] == cls[y, x]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
            group.sort()
            gy = np.array([g[0] for g in group], np.float64)
            gx = np.array([g[1] for g in group], np.float64)
            mx, my = (gx.mean() + 0.5) * cell, (gy.mean() + 0.5) * cell
            box = [gx.min() * cell, gy.min() * cell, (gx.max() + 1) * cell, (gy.max() + 1) * cell]
            if geom is not None:
                sx, sy = geom.to_source(mx, my)
                box = geom.box_to_source(box)
            else:
                sx, sy = mx, my
            dets.append({"label": labels[int(cls[y, x])], "score": round(float(max(score[g] for g in group)), 4),
                         "x": round(float(sx), 1), "y": round(float(sy), 1), "cells": [list(map(int, g)) for g in group],
                         "region": box})
    dets.sort(key=lambda d: -d["score"])
    return {"kind": "fomo", "detections": dets}
