"""LiteRT (ai-edge-litert) with its reference kernels, OpResolverType.BUILTIN_REF.

LiteRT refuses a rank-1 tensor whose quantized_dimension is not 0, which TFLM accepts
(person_detect's biases carry 3). The axis means nothing on a rank-1 tensor, so we hand
LiteRT a copy with it set to 0: the same model, in the form LiteRT's checker wants.
"""
from __future__ import annotations

import numpy as np

from . import missing


def _interpreter(model: bytes, reference: bool = True):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise missing("ai_edge_litert", "ai-edge-litert") from None
    kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    it = Interpreter(model_content=model, experimental_op_resolver_type=kind, num_threads=1)
    it.allocate_tensors()
    return it


def litert_interpreter(model: bytes, reference: bool = True):
    """A ready LiteRT interpreter: reference kernels, or the default optimized ones."""
    try:
        return _interpreter(model, reference)
    except ValueError as e:
        if "quantized_dimension" not in str(e):
            raise
        return _interpreter(normalize_quantized_dimension(model), reference)


def normalize_quantized_dimension(model: bytes) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(bytearray(model), 0)
    for sg in m.subgraphs:
        for t in sg.tensors:
            if t.quantization is not None and t.shape is not None and len(t.shape) <= 1:
                t.quantization.quantizedDimension = 0
    b = flatbuffers.Builder(len(model) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def run_litert(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    it = litert_interpreter(model)
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [np.array(it.get_tensor(d["index"])) for d in it.get_output_details()]
