"""Benchmarks: figures and ratios against the references, all measured in the same run."""
from __future__ import annotations

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
    lines.append("* TinyEngine: a published figure, not measured in this run: its best patch plan as listed in "
                 "../shared/anchors (2x2; it excludes the input image, ours includes the input's row buffer). "
                 "The other columns are measured now: TFLM's arena by tflite-micro itself.")
    return "\n".join(lines)


def _median_ms(fn, repeat: int) -> float:
    import numpy as np

    fn()  # warm-up: first-call allocation and caches
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def speed_bench(name: str, repeat: int = 30, m0plus: bool = True, progress: bool = True) -> dict:
    """Host latency of the C engine against LiteRT (default and reference kernels), and the
    instruction count of the same image on an emulated Cortex-M0+, in one run."""
    import numpy as np

    from .image.format import pack
    from .model import load_model
    from .native import NativeRunner
    from .plan.planner import choose
    from .refs.litert import litert_interpreter
    from .verify import random_input

    path = _resolve(name)
    graph = load_model(path)
    choice = choose(graph)
    image = pack(choice.lowered.graph, choice.plan)
    runner = NativeRunner(image)
    xs = [random_input(graph.t(i), graph, np.random.default_rng(0)) for i in graph.inputs]
    row = {"model": path.stem, "macs": choice.plan.base_macs, "plan": choice.plan.strategy,
           "peak_sram_bytes": choice.plan.peak_sram_bytes}
    if progress:
        print(f"  host latency of {path.stem} ...", file=sys.stderr, flush=True)
    row["native_ms"] = round(_median_ms(lambda: runner(xs), repeat), 3)
    for key, ref in (("litert_ms", False), ("litert_ref_ms", True)):
        it = litert_interpreter(path.read_bytes(), reference=ref)
        ins = it.get_input_details()

        def once():
            for d, x in zip(ins, xs):
                it.set_tensor(d["index"], x)
            it.invoke()

        row[key] = round(_median_ms(once, repeat), 3)
    row["ratio_vs_litert"] = round(row["native_ms"] / row["litert_ms"], 2)
    row["ratio_vs_litert_ref"] = round(row["native_ms"] / row["litert_ref_ms"], 2)
    row["m0plus_instructions"] = row["m0plus_instructions_per_mac"] = None
    if m0plus:
        try:
            from .emu import EmuRunner, build

            if progress:
                print(f"  Cortex-M0+ instructions of {path.stem} (emulated) ...", file=sys.stderr, flush=True)
            elf = build(cpu="cortex-m0plus", opt="-Os")
            emu = EmuRunner(image, elf, count=True)
            same = all(np.array_equal(np.asarray(a).reshape(np.shape(b)), b)
                       for a, b in zip(emu(xs), runner(xs), strict=True))
            n = emu.last.invoke_instructions
            row["m0plus_instructions"] = n
            row["m0plus_instructions_per_mac"] = round(n / row["macs"], 3)
            row["m0plus_load_instructions"] = emu.last.load_instructions
            row["m0plus_bit_exact"] = same
            row["m0plus_text_bytes"] = elf.engine.text
        except (McutoolError, ImportError) as e:
            row["m0plus_error"] = str(e)
    return row


def format_speed(rows: list[dict]) -> str:
    head = (f"{'model':<24}{'native ms':>10}{'LiteRT ms':>11}{'LiteRT ref ms':>15}{'vs LiteRT':>11}"
            f"{'vs ref':>8}{'M0+ instr':>14}{'per MAC':>9}{'M0+ = host':>12}")
    lines = [head, "-" * len(head)]
    why = []
    for r in rows:
        m0 = f"{r['m0plus_instructions']:,}" if r["m0plus_instructions"] else "-"
        pm = f"{r['m0plus_instructions_per_mac']:.2f}" if r["m0plus_instructions_per_mac"] else "-"
        exact = {True: "bit-exact", False: "MISMATCH"}.get(r.get("m0plus_bit_exact"), "-")
        lines.append(f"{r['model']:<24}{r['native_ms']:>10.2f}{r['litert_ms']:>11.2f}{r['litert_ref_ms']:>15.2f}"
                     f"{r['ratio_vs_litert']:>10.2f}x{r['ratio_vs_litert_ref']:>7.2f}x{m0:>14}{pm:>9}{exact:>12}")
        if r.get("m0plus_error"):
            why.append(f"  {r['model']}: Cortex-M0+ not measured: {r['m0plus_error']}")
        elif r["m0plus_instructions"] is None:
            why.append(f"  {r['model']}: Cortex-M0+ not measured (--no-m0plus)")
    lines += why
    lines.append("LiteRT: ai-edge-litert, default kernels (XNNPACK) and BUILTIN_REF, one thread; medians.")
    lines.append("For scale, a published figure (../shared/anchors), not measured in this run: CMSIS-NN on "
                 "Cortex-M0+ runs person_detect at 11.69 instructions per MAC.")
    return "\n".join(lines)
