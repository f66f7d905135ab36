"""Compare mcutool's engines against a reference interpreter, every output element."""
from __future__ import annotations

import os

import numpy as np

from .errors import McutoolError
from .ir import Graph, Tensor


def random_input(t: Tensor, graph: Graph, rng: np.random.Generator) -> np.ndarray:
    """Inputs nobody chose to be easy: the whole int8 range, or floats past the quantizer's ends."""
    if t.dtype == "int8":
        return rng.integers(-128, 128, t.shape, dtype=np.int8)
    if t.dtype == "uint8":
        return rng.integers(0, 256, t.shape, dtype=np.uint8)
    if t.dtype == "float32":
        lo, hi = -1.0, 1.0
        for op in graph.ops:
            if op.kind == "QUANTIZE" and op.inputs[0] == t.index:
                q = graph.t(op.outputs[0]).quant
                lo, hi = q.s * (-128 - q.zp), q.s * (127 - q.zp)
        span = hi - lo
        return rng.uniform(lo - 0.05 * span, hi + 0.05 * span, t.shape).astype(np.float32)
    raise McutoolError(f"input {t.name}: cannot make random {t.dtype} inputs")


ENGINES = ("ref", "ref-plan", "ref-image", "native")


def engines(graph: Graph, wanted=ENGINES) -> dict:
    """name -> callable(inputs) -> outputs, for every engine this build has."""
    from .image.format import pack, unpack
    from .plan.planner import choose
    from .ref.executor import run
    from .ref.plan_exec import run_plan

    choice = choose(graph)
    low, plan = choice.lowered, choice.plan
    # The flash image path: the planned graph written to an image and read back, run by
    # following the stored plan inside a poisoned arena.
    img_graph, img_plan = unpack(pack(low.graph, plan))
    runners = {
        "ref": lambda xs: run(graph, xs),
        "ref-plan": lambda xs: run_plan(low.graph, plan, xs),
        "ref-image": lambda xs: run_plan(img_graph, img_plan, xs),
    }
    if "native" in wanted:
        from .native import NativeRunner

        runners["native"] = NativeRunner(pack(low.graph, plan))  # the C engine, same image
    return {k: v for k, v in runners.items() if k in wanted or wanted == ENGINES}


def verify(model_path: str, reference: str, n_random: int, seed: int, files: list[str], fmt: str = "auto",
           wanted=ENGINES) -> dict:
    from .inputs import load_input
    from .model import load_model
    from .refs import run_reference

    if not model_path.endswith(".tflite"):
        raise McutoolError(f"{model_path}: verify needs the .tflite model (the reference interpreters read only TFLite)")
    graph = load_model(model_path, match=reference)
    model = open(model_path, "rb").read()
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n_random):
        cases.append([random_input(graph.t(i), graph, rng) for i in graph.inputs])
    for f in files:
        if len(graph.inputs) != 1:
            raise McutoolError("--input works with single-input models only")
        cases.append([load_input(f, graph.t(graph.inputs[0]), fmt, graph)])
    if not cases:
        raise McutoolError("nothing to verify: give --inputs N > 0 or --input FILE")
    runners = engines(graph, wanted)
    results = {name: {"max_abs_diff": 0.0, "mismatched": 0, "compared": 0, "problems": []} for name in runners}
    for n, xs in enumerate(cases):
        want = run_reference(reference, model, xs, len(graph.outputs))
        for name, runner in runners.items():
            got = runner(xs)
            r = results[name]
            # A missing output or one of another size is a failure, never a shorter zip.
            if len(got) != len(want):
                r["problems"].append(f"input {n}: {len(got)} outputs, the reference gives {len(want)}")
            for k, (g, w) in enumerate(zip(got, want)):
                g, w = np.asarray(g), np.asarray(w)
                if g.size != w.size:
                    r["problems"].append(f"input {n}, output {k}: {g.size} elements, the reference gives {w.size}")
                    continue
                diff = np.abs(g.reshape(-1).astype(np.float64) - w.reshape(-1).astype(np.float64))
                r["max_abs_diff"] = max(r["max_abs_diff"], float(diff.max()) if diff.size else 0.0)
                r["mismatched"] += int(np.count_nonzero(diff))
                r["compared"] += int(diff.size)
    for r in results.values():
        if r["compared"] == 0:
            r["problems"].append("no output element was compared")
        if float(r["max_abs_diff"]).is_integer():
            r["max_abs_diff"] = int(r["max_abs_diff"])
    worst = max(r["max_abs_diff"] for r in results.values())
    return {
        "model": os.path.basename(model_path),
        "reference": reference,
        "inputs": len(cases),
        "seed": seed,
        "engines": list(runners),
        "max_abs_diff": worst,
        # bit-exact means: every output of every input compared, and no element differs
        "ok": worst == 0 and not any(r["problems"] for r in results.values()),
        "results": results,
    }
