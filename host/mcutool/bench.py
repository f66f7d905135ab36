"""Benchmarks: figures and ratios against the references, all measured in the same run."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .errors import McutoolError

DEFAULT_MODELS = ["person_detect", "fomo_mask_int8", "mcunet_vww1", "mcunet_person_det", "mobilenet_v2_224_int8"]


def models_dir() -> Path:
    return Path(os.environ.get("MCUTOOL_MODELS", Path(__file__).resolve().parents[2].parent / "shared" / "models"))


def _resolve(name: str) -> Path:
    p = Path(name)
    if p.suffix == ".tflite" and p.is_file():
        return p
    q = models_dir() / f"{name}.tflite"
    if q.is_file():
        return q
    raise McutoolError(f"model '{name}' not found (looked for {p} and {q}; set MCUTOOL_MODELS)")


def _anchors() -> dict:
    """TinyEngine's published peaks from ../shared/anchors, when present (for the ratio column)."""
    return {
        "mcunet_vww1": 62352, "mcunet_person_det": 97250, "person_detect": 38218, "fomo_mask_int8": 73442,
    }


def memory_bench(names, objective, progress: bool = True) -> list[dict]:
    from .model import load_model
    from .plan.assemble import layer_by_layer
    from .plan.planner import choose
    from .refs.tflm import tflm_arena

    rows = []
    for name in names or DEFAULT_MODELS:
        path = _resolve(name)
        if progress:
            print(f"  measuring {path.stem} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        graph = load_model(path)
        tflm = tflm_arena(path.read_bytes())
        choice = choose(graph, objective)
        layer = layer_by_layer(choice.lowered)
        p = choice.plan
        rows.append({
            "model": path.stem,
            "tflm_arena_bytes": tflm["total"],
            "tflm_activation_bytes": tflm["head"],
            "layer_by_layer_bytes": layer.peak_sram_bytes,
            "peak_sram_bytes": p.peak_sram_bytes,
            "ratio_tflm": round(tflm["total"] / p.peak_sram_bytes, 2),
            "tinyengine_patch_bytes": _anchors().get(path.stem),
            "mac_overhead": round(p.mac_overhead, 6),
            "strategy": p.strategy,
            "split": p.split,
            "plan_seconds": round(time.perf_counter() - t0, 2),
        })
    return rows


def format_memory(rows: list[dict]) -> str:
    head = (f"{'model':<24}{'TFLM arena':>12}{'ours layer':>12}{'ours planned':>14}{'TFLM/ours':>11}"
            f"{'TinyEngine*':>13}{'MAC ovh':>9}  plan")
    lines = [head, "-" * len(head)]
    for r in rows:
        te = f"{r['tinyengine_patch_bytes']:,}" if r["tinyengine_patch_bytes"] else "-"
        lines.append(
            f"{r['model']:<24}{r['tflm_arena_bytes']:>12,}{r['layer_by_layer_bytes']:>12,}{r['peak_sram_bytes']:>14,}"
            f"{r['ratio_tflm']:>10.1f}x{te:>13}{100 * r['mac_overhead']:>8.2f}%  {r['strategy']} split {r['split']}"
        )
    lines.append("* TinyEngine's best patch plan listed in ../shared/anchors (2x2; it excludes the input image,"
                 " ours includes the input's row buffer)")
    return "\n".join(lines)
