"""How reports print. JSON: one object per line, flushed at once, because scripts read
the lines while mcutool runs (`sim --json` prints its port, then serves). And the top-k
line `run` prints, here and on a board alike."""
from __future__ import annotations

import json


def print_json(obj, file=None) -> None:
    print(json.dumps(obj, separators=(", ", ": ")), file=file, flush=True)


def label_top(top: list[dict], labels: list[str]) -> None:
    """Name each top entry's class, where the labels are known."""
    for d in top:
        if d["index"] < len(labels):
            d["label"] = labels[d["index"]]


def top_line(top: list[dict]) -> str:
    return "top: " + ", ".join(f"#{d['index']}" + (f" {d['label']}" if "label" in d else "")
                               + f" {d['value']} ({d['score']:.3f})" for d in top)
