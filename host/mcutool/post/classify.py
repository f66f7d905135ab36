"""Classifiers: labels with probabilities, best first."""
from __future__ import annotations

import numpy as np


def classify(post: dict, outputs: list[np.ndarray]) -> dict:
    v = np.asarray(outputs[0], np.float64).reshape(-1)
    if post.get("softmax"):  # the model ends in logits
        e = np.exp(v - v.max())
        p = e / e.sum()
    else:  # the model ends in its own SOFTMAX: the dequantized values are probabilities
        p = v
    labels = post.get("labels") or []
    order = np.argsort(-p, kind="stable")
    top = [{"index": int(i), "label": labels[i] if i < len(labels) else f"#{int(i)}", "score": round(float(p[i]), 6)}
           for i in order]
    res = {"kind": "classify", "label": top[0]["label"], "score": top[0]["score"], "top": top}
    if post.get("positive"):
        res["positive"] = top[0]["label"] == post["positive"]
    return res
