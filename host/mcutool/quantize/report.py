"""Accuracy of an int8 model against its float original, on an evaluation set.

The float model runs in LiteRT's interpreter (the float kernels everyone else uses); the
int8 model in mcutool's numpy reference, bit-exact with TFLM. Per output: top-1 agreement,
mean cosine similarity and the largest absolute error, all on dequantized values.
"""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError
from .progress import Progress


def float_outputs(buf: bytes, data: np.ndarray, progress: bool = True) -> list[np.ndarray]:
    """(N, *shape) float outputs of a float .tflite, one array per output."""
    from ..refs.litert import litert_interpreter

    it = litert_interpreter(buf, reference=False)
    d_in = it.get_input_details()[0]
    outs = [[] for _ in it.get_output_details()]
    with Progress("float model", len(data), enabled=progress) as bar:
        for x in data:
            it.set_tensor(d_in["index"], x.reshape(d_in["shape"]).astype(np.float32))
            it.invoke()
            for k, d in enumerate(it.get_output_details()):
                outs[k].append(np.array(it.get_tensor(d["index"]), np.float32))
            bar.update()
    return [np.stack(o) for o in outs]


def int8_outputs(buf: bytes, data: np.ndarray, where: str = "model", progress: bool = True) -> list[np.ndarray]:
    """(N, *shape) dequantized outputs of an int8 .tflite (int8 or float I/O), mcutool's reference."""
    from ..quant.prepare import prepare_graph
    from ..ref.executor import run
    from ..ref.quantize import affine_quantize, dequantize
    from ..tflite_import import parse_tflite

    g = prepare_graph(parse_tflite(buf, where=where))
    if len(g.inputs) != 1:
        raise McutoolError(f"{where}: the model has {len(g.inputs)} inputs; the report takes single-input models")
    t_in = g.t(g.inputs[0])
    if t_in.size != data[0].size:
        raise McutoolError(f"{where}: input {t_in.name} {t_in.shape} does not match the evaluation inputs {data.shape[1:]}")
    outs = [[] for _ in g.outputs]
    with Progress(f"int8 {where}"[:40], len(data), enabled=progress) as bar:
        for x in data:
            x = x.reshape(t_in.shape)
            if t_in.dtype == "int8":
                x = affine_quantize(x, t_in.quant.s, t_in.quant.zp)  # what a QUANTIZE op would do
            for k, (i, y) in enumerate(zip(g.outputs, run(g, [x.astype(t_in.dtype)]))):
                t = g.t(i)
                outs[k].append(dequantize(y, t.quant.s, t.quant.zp) if t.dtype == "int8" else y.astype(np.float32))
            bar.update()
    return [np.stack(o) for o in outs]


def compare(ref: list[np.ndarray], got: list[np.ndarray]) -> list[dict]:
    rows = []
    for k, (f, q) in enumerate(zip(ref, got)):
        f = f.reshape(len(f), -1).astype(np.float64)
        q = q.reshape(len(q), -1).astype(np.float64)
        if f.shape != q.shape:
            raise McutoolError(f"output {k}: shapes differ, {f.shape[1:]} against {q.shape[1:]}")
        nf, nq = np.linalg.norm(f, axis=1), np.linalg.norm(q, axis=1)
        both_zero = (nf == 0) & (nq == 0)
        cos = np.where(both_zero, 1.0, np.sum(f * q, axis=1) / np.maximum(nf * nq, 1e-30))
        rows.append({
            "output": k,
            "top1_agreement": float(np.mean(np.argmax(f, axis=1) == np.argmax(q, axis=1))),
            "mean_cosine": float(np.mean(cos)),
            "max_abs_error": float(np.max(np.abs(f - q))),
        })
    return rows


def accuracy_report(float_buf: bytes, models: dict[str, bytes], data: np.ndarray, progress: bool = True) -> dict:
    """{"inputs": N, "models": {name: [per-output rows]}}: each int8 model against the float one."""
    ref = float_outputs(float_buf, data, progress)
    return {"inputs": len(data),
            "models": {name: compare(ref, int8_outputs(b, data, name, progress)) for name, b in models.items()}}


def format_report(rep: dict) -> str:
    lines = [f"accuracy against the float model, {rep['inputs']} evaluation inputs:"]
    for name, rows in rep["models"].items():
        for r in rows:
            lines.append(f"  {name:<28} output {r['output']}: top-1 agreement {100 * r['top1_agreement']:.2f}%, "
                         f"mean cosine {r['mean_cosine']:.5f}, max abs error {r['max_abs_error']:.5g}")
    return "\n".join(lines)
