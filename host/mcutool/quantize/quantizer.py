"""Post-training int8 quantization of a float .tflite: calibrate, choose scales, rewrite."""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..errors import McutoolError, UnsupportedOpError
from ..ir import Graph
from .float_exec import KERNELS

SUPPORTED = tuple(KERNELS)
IO_TYPES = ("int8", "float")


@dataclass
class Options:
    method: str = "minmax"
    percentile: float = 99.99
    io: str = "int8"
    progress: bool = True


def load_float_graph(buf: bytes, where: str = "model") -> Graph:
    """The float model's IR; a one-line error for anything the quantizer cannot take."""
    from ..tflite_import import parse_tflite
    from .write_tflite import _schema, read_model

    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise McutoolError(f"{where}: not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        m = read_model(buf)
    except McutoolError as e:
        raise McutoolError(f"{where}: {e}") from None
    except (IndexError, ValueError, TypeError, AttributeError, struct.error) as e:
        # The flatbuffers runtime reads offsets blindly: a damaged file fails somewhere inside.
        raise McutoolError(f"{where}: truncated or corrupt TFLite flatbuffer ({type(e).__name__})") from None
    names = {v: k for k, v in vars(_schema().BuiltinOperator).items() if not k.startswith("_")}
    for i, op in enumerate(m.subgraphs[0].operators or []):
        oc = m.operatorCodes[op.opcodeIndex]
        kind = names.get(max(oc.builtinCode, oc.deprecatedBuiltinCode), f"BUILTIN_{oc.builtinCode}")
        if kind == "CUSTOM":
            kind = f"CUSTOM({(oc.customCode or b'?').decode(errors='replace')})"
        if kind not in SUPPORTED:
            raise McutoolError(f"{where}: {UnsupportedOpError(kind, i, 'mcutool cannot quantize it', SUPPORTED)}")
    graph = parse_tflite(buf, where=where)
    for op in graph.ops:
        for i in op.inputs[:1] + op.outputs:
            t = graph.t(i)
            if t.dtype != "float32":
                raise McutoolError(f"{where}: op {op.index} ({op.kind}) has {t.dtype} tensor {t.name}: "
                                   "quantize takes float32 models (this one is already quantized?)")
    if len(graph.inputs) != 1:
        raise McutoolError(f"{where}: the model has {len(graph.inputs)} inputs; calibration takes single-input models")
    return graph


def quantize(buf: bytes, data: np.ndarray, opts: Options | None = None, where: str = "model") -> tuple[bytes, dict]:
    """(int8 .tflite bytes, summary) of the float model `buf`, calibrated on `data`
    ((N, *input shape) float32)."""
    from ..quant.prepare import prepare_graph
    from ..tflite_import import parse_tflite
    from .calibrate import calibrate
    from .ranges import activation_quant
    from .weights import quantize_constant, quantize_layer
    from .write_tflite import Rewriter, read_model

    opts = opts or Options()
    if opts.io not in IO_TYPES:
        raise McutoolError(f"unknown --io '{opts.io}'; choose one of {', '.join(IO_TYPES)}")
    graph = load_float_graph(buf, where)
    if data is None or len(data) == 0:
        raise McutoolError("no calibration data: give --calibration with images or an .npy of inputs")
    if not np.all(np.isfinite(data)):
        raise McutoolError("the calibration data holds NaN or infinite values")
    stats = calibrate(graph, data, progress=opts.progress)
    aq = activation_quant(graph, stats, opts.method, opts.percentile)

    rw = Rewriter(read_model(buf))
    io = set(graph.inputs) | set(graph.outputs) if opts.io == "float" else set()
    for i, (scale, zp) in aq.items():
        t = graph.t(i)
        if t.is_const:
            rw.set_constant(i, quantize_constant(t.data, scale, zp), scale, zp)
        elif i not in io:
            rw.set_activation(i, scale, zp)
    seen = set()
    for op in graph.ops:
        if op.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        consts = [i for i in op.inputs[1:] if i >= 0]
        if seen & set(consts):
            raise McutoolError(f"op {op.index} ({op.kind}) shares its weights or bias with another layer; "
                               "mcutool quantizes each layer's constants once")
        seen |= set(consts)
        b = graph.t(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        q = quantize_layer(op.kind, graph.t(op.inputs[1]).data, b, aq[op.inputs[0]][0])
        rw.set_constant(op.inputs[1], q.weights, q.weight_scales, np.zeros(q.weight_scales.size, np.int64), q.axis)
        rw.set_bias(op.index, q.bias, q.bias_scales)
    rw.int8_versions()
    if opts.io == "float":
        rw.float_io({i: aq[i] for i in graph.inputs}, {i: aq[i] for i in graph.outputs})
    out = rw.finish(f"mcutool int8 ({opts.method})")

    # What we wrote must be a model mcutool runs; a failure here is ours, not the user's.
    qgraph = prepare_graph(parse_tflite(out, where="quantized model"))
    return out, summary(graph, qgraph, aq, data.shape[0], opts)


def summary(fgraph: Graph, qgraph: Graph, aq: dict, n: int, opts: Options) -> dict:
    def consts(g):
        return sum(t.nbytes for t in g.tensors if t.is_const and any(t.index in op.inputs for op in g.ops))

    def filters(g):
        return sum(g.t(op.inputs[1]).nbytes for op in g.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                                                              "FULLY_CONNECTED"))

    def io(i):
        t = fgraph.t(i)
        return {"name": t.name, "shape": list(t.shape), "scale": aq[i][0], "zero_point": aq[i][1]}

    return {
        "method": opts.method,
        "percentile": opts.percentile if opts.method == "percentile" else None,
        "io": opts.io,
        "calibration_inputs": int(n),
        "ops": len(qgraph.ops),
        "float_weight_bytes": consts(fgraph),
        "weight_bytes": consts(qgraph),
        "float_filter_bytes": filters(fgraph),
        "filter_bytes": filters(qgraph),
        "inputs": [io(i) for i in fgraph.inputs],
        "outputs": [io(i) for i in fgraph.outputs],
    }
