"""Bit-exactness of the numpy SOFTMAX / LOGISTIC / HARD_SWISH / MEAN / RESIZE_NEAREST_NEIGHBOR
kernels against TFLite Micro, on single-op int8 models.

Each case builds a model with tests/modelgen.py's ModelBuilder, reads it back into the
IR by hand (tensors, scales, constants, options -- no importer is involved), runs
prepare_* / eval_* and compares with TFLM's Python interpreter. LiteRT with reference
kernels is run as well; it is *not* our reference, so disagreements with it only
produce a LiteRTDiffers warning (listed in pytest's warnings summary).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ai_edge_litert import schema_py_generated as schema  # noqa: E402
from modelgen import CASES, ModelBuilder, run_litert_ref, run_tflm  # noqa: E402

from mcutool.ir import (  # noqa: E402
    Graph,
    NoParams,
    Op,
    Quant,
    ReducerParams,
    ResizeParams,
    SoftmaxParams,
    Tensor,
)
from mcutool.ref.activations import (  # noqa: E402
    eval_hard_swish,
    eval_logistic,
    prepare_hard_swish,
    prepare_logistic,
)
from mcutool.ref.reduce import eval_mean, prepare_mean  # noqa: E402
from mcutool.ref.resize import eval_resize_nearest_neighbor, prepare_resize_nearest_neighbor  # noqa: E402
from mcutool.ref.softmax import eval_softmax, prepare_softmax  # noqa: E402


class LiteRTDiffers(UserWarning):
    """TFLM and LiteRT (BUILTIN_REF) disagree on a case; TFLM is the reference."""


KERNELS = {
    "SOFTMAX": (prepare_softmax, eval_softmax),
    "LOGISTIC": (prepare_logistic, eval_logistic),
    "HARD_SWISH": (prepare_hard_swish, eval_hard_swish),
    "MEAN": (prepare_mean, eval_mean),
    "RESIZE_NEAREST_NEIGHBOR": (prepare_resize_nearest_neighbor, eval_resize_nearest_neighbor),
}

_TFL_DTYPE = {
    schema.TensorType.INT8: "int8",
    schema.TensorType.INT16: "int16",
    schema.TensorType.INT32: "int32",
    schema.TensorType.FLOAT32: "float32",
}
_OP_NAME = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


# ---- model bytes -> IR (enough for single-op models) -----------------------------------


def graph_from_model(model_bytes: bytes) -> Graph:
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))
    sg = m.subgraphs[0]
    tensors = []
    for i, t in enumerate(sg.tensors):
        dtype = _TFL_DTYPE[t.type]
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        quant = None
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) > 0:
            quant = Quant(np.asarray(q.scale, dtype=np.float32),
                          np.asarray(q.zeroPoint, dtype=np.int64), int(q.quantizedDimension))
        data = None
        buf = m.buffers[t.buffer]
        if buf.data is not None and len(buf.data) > 0:
            data = np.frombuffer(np.asarray(buf.data, dtype=np.uint8).tobytes(),
                                 dtype=np.dtype(dtype)).reshape(shape)
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        tensors.append(Tensor(i, name, shape, dtype, quant, data))
    ops = []
    for k, o in enumerate(sg.operators):
        oc = m.operatorCodes[o.opcodeIndex]
        kind = _OP_NAME[max(oc.builtinCode, oc.deprecatedBuiltinCode)]
        opts = o.builtinOptions
        if kind == "SOFTMAX":
            params = SoftmaxParams(beta=float(opts.beta))
        elif kind == "MEAN":
            params = ReducerParams(keep_dims=bool(opts.keepDims))
        elif kind == "RESIZE_NEAREST_NEIGHBOR":
            params = ResizeParams(bool(opts.alignCorners), bool(opts.halfPixelCenters))
        else:
            params = NoParams()
        ops.append(Op(k, kind, [int(i) for i in o.inputs], [int(i) for i in o.outputs], params))
    return Graph("test", tensors, ops, [int(i) for i in sg.inputs], [int(i) for i in sg.outputs])


def run_numpy(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    g = graph_from_model(model_bytes)
    (op,) = g.ops
    prepare, ev = KERNELS[op.kind]
    op.data = prepare(g, op)
    xs = [x if i == g.inputs[0] else g.tensors[i].data for i in op.inputs]
    out = g.tensors[op.outputs[0]]
    y = ev(op, xs, out.shape)
    assert y.dtype == np.dtype(out.dtype) and y.shape == tuple(out.shape)
    return y


def input_shape(model_bytes: bytes) -> tuple[int, ...]:
    g = graph_from_model(model_bytes)
    return g.tensors[g.inputs[0]].shape


def inputs_for(shape, seed: int, n_random: int = 3) -> list[np.ndarray]:
    """Seeded random int8 inputs plus the extremes and a mixed one."""
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(n_random)]
    xs.append(np.full(shape, -128, np.int8))
    xs.append(np.full(shape, 127, np.int8))
    xs.append(rng.choice(np.array([-128, 127, 0, -1, 1], np.int8), size=shape))
    # a narrow band: many values close to each other (ties and near-ties in softmax)
    xs.append(rng.integers(90, 100, size=shape, dtype=np.int8))
    return xs


_ABORT_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, sys.argv[3])
from modelgen import run_tflm
run_tflm(open(sys.argv[1], "rb").read(), [np.load(sys.argv[2])])
"""


def tflm_aborts(model_bytes: bytes, x: np.ndarray) -> bool:
    """Whether TFLM dies (TFLITE_CHECK -> abort) on this input; run in a child process."""
    with tempfile.TemporaryDirectory() as d:
        mp, xp = os.path.join(d, "m.tflite"), os.path.join(d, "x.npy")
        with open(mp, "wb") as f:
            f.write(model_bytes)
        np.save(xp, x)
        r = subprocess.run([sys.executable, "-c", _ABORT_SCRIPT, mp, xp,
                            os.path.dirname(os.path.abspath(__file__))],
                           capture_output=True, timeout=120)
    return r.returncode != 0


def check(model_bytes: bytes, xs, label: str) -> None:
    for j, x in enumerate(xs):
        try:
            got = run_numpy(model_bytes, x)
        except ValueError as e:
            # Our kernel refuses exactly where TFLM's TFLITE_CHECK aborts the process.
            assert "TFLITE_CHECK" in str(e), e
            assert tflm_aborts(model_bytes, x), f"{label} input #{j}: numpy refused, TFLM ran"
            continue
        want = run_tflm(model_bytes, [x])[0]
        if not np.array_equal(got, want):
            bad = np.argwhere(got != want)
            k = tuple(bad[0])
            pytest.fail(f"{label} input #{j}: {len(bad)} mismatches, first at {k}: "
                        f"numpy {got[k]} vs TFLM {want[k]} (x={x[k]})")
        try:
            lite = run_litert_ref(model_bytes, [x])[0]
        except Exception as e:  # LiteRT refusing the model is also a difference
            warnings.warn(f"{label}: LiteRT-REF fails: {e}", LiteRTDiffers)
            return
        if not np.array_equal(lite, want):
            d = np.abs(lite.astype(np.int64) - want.astype(np.int64))
            warnings.warn(f"{label} input #{j}: LiteRT-REF differs from TFLM at "
                          f"{int((d > 0).sum())}/{d.size} elements, max |diff| {int(d.max())}",
                          LiteRTDiffers)
            return


# ---- model factories with explicit quantization ----------------------------------------


def softmax_model(shape, in_scale, in_zp, beta, out_dtype="int8"):
    mb = ModelBuilder("softmax")
    x = mb.tensor(shape, "int8", in_scale, in_zp, name="input")
    if out_dtype == "int8":
        y = mb.tensor(shape, "int8", 1.0 / 256, -128, name="output")
    else:
        y = mb.tensor(shape, "int16", 1.0 / 65536, -32768, name="output")
    mb.op("SOFTMAX", [x], [y], beta=beta)
    return mb.build([x], [y])


def unary_model(kind, shape, in_q, out_q):
    mb = ModelBuilder(kind.lower())
    x = mb.tensor(shape, "int8", *in_q, name="input")
    y = mb.tensor(shape, "int8", *out_q, name="output")
    mb.op(kind, [x], [y])
    return mb.build([x], [y])


def mean_model(in_shape, axes, keep_dims, in_q, out_q):
    rank = len(in_shape)
    resolved = sorted({a % rank for a in axes})
    axes = np.asarray(axes, dtype=np.int32).reshape(-1)
    if keep_dims:
        out_shape = [1 if i in resolved else d for i, d in enumerate(in_shape)]
    else:
        out_shape = [d for i, d in enumerate(in_shape) if i not in resolved]
    mb = ModelBuilder("mean")
    x = mb.tensor(in_shape, "int8", *in_q, name="input")
    ax = mb.const(np.asarray(axes, dtype=np.int32), "int32", name="axes")
    y = mb.tensor(out_shape, "int8", *out_q, name="output")
    mb.op("MEAN", [x, ax], [y], keep_dims=keep_dims)
    return mb.build([x], [y])


def resize_model(in_shape, size, align_corners, half_pixel_centers, q=(0.05, 3)):
    mb = ModelBuilder("resize")
    x = mb.tensor(in_shape, "int8", *q, name="input")
    sz = mb.const(np.asarray(size, dtype=np.int32), "int32", name="size")
    y = mb.tensor((in_shape[0], size[0], size[1], in_shape[3]), "int8", *q, name="output")
    mb.op("RESIZE_NEAREST_NEIGHBOR", [x, sz], [y],
          align_corners=align_corners, half_pixel_centers=half_pixel_centers)
    return mb.build([x], [y])


ALL_INT8 = np.arange(-128, 128, dtype=np.int8)

# ---- SOFTMAX ---------------------------------------------------------------------------

SOFTMAX_CASES = [
    # shape, input scale, input zp, beta
    ((1, 2), 0.05, 0, 1.0),
    ((4, 3), 0.1, -7, 1.0),
    ((3, 10), 0.0625, 5, 1.0),
    ((2, 10), 0.02, 0, 1.0),
    ((2, 1000), 0.05, -3, 1.0),
    ((1, 1000), 0.2, 10, 1.0),
    ((2, 4, 10), 0.08, 2, 0.5),
    ((5, 10), 0.1, 0, 2.0),
    ((2, 16), 0.03, -20, 0.25),
    ((3, 3), 0.5, 0, 1.7),
    ((2, 7), 1.0, -128, 1.0),
    ((1, 4, 4, 6), 0.0390625, 1, 1.0),
    ((2, 10), 4.0, 0, 3.0),  # huge beta*scale: only the row maximum survives
    ((3, 10), 2e-7, 0, 1.0),  # tiny beta*scale: multiplier just above 1
    ((2, 10), 16.0, 0, 4.0),  # beta*scale*2**26 capped at 2**31 - 1: left shift 31
]


@pytest.mark.parametrize("shape,scale,zp,beta", SOFTMAX_CASES,
                         ids=[f"{'x'.join(map(str, c[0]))}-s{c[1]}-z{c[2]}-b{c[3]}" for c in SOFTMAX_CASES])
def test_softmax(shape, scale, zp, beta):
    b = softmax_model(shape, scale, zp, beta)
    seed = int(np.prod(shape)) + int(scale * 1e4) + int(beta * 10)
    check(b, inputs_for(shape, seed=seed), f"softmax{shape} s{scale} b{beta}")


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_softmax_int16_output(beta):
    shape = (3, 12)
    b = softmax_model(shape, 0.07, -4, beta, out_dtype="int16")
    check(b, inputs_for(shape, seed=11), "softmax int8->int16")


def test_softmax_all_pairs_of_rows():
    """Every (a, b) pair of int8 values as a row of length 2."""
    a, c = np.meshgrid(ALL_INT8, ALL_INT8, indexing="ij")
    x = np.stack([a.ravel(), c.ravel()], axis=1).astype(np.int8)
    for scale in (0.01, 0.1, 0.7):
        b = softmax_model(x.shape, scale, 0, 1.0)
        check(b, [x], f"softmax pairs s{scale}")


def test_softmax_refusals():
    mb = ModelBuilder("softmax_bad")
    x = mb.tensor((1, 4), "int8", 0.1, 0)
    y = mb.tensor((1, 4), "int8", 1.0 / 255, -128)
    mb.op("SOFTMAX", [x], [y])
    b = mb.build([x], [y])
    with pytest.raises(ValueError, match="1/256"):
        run_numpy(b, np.zeros((1, 4), np.int8))
    with pytest.raises(Exception):
        run_tflm(b, [np.zeros((1, 4), np.int8)])
    b = softmax_model((1, 4), 1e-8, 0, 1.0)  # beta * scale * 2**26 < 1
    with pytest.raises(ValueError, match="<= 1"):
        run_numpy(b, np.zeros((1, 4), np.int8))


# ---- LOGISTIC --------------------------------------------------------------------------

LOGISTIC_CASES = [
    (0.01, 0), (0.03, -5), (0.0625, 0), (0.1, 12), (0.25, -128), (0.5, 127),
    (1.0, 0), (2.0, 3), (0.047, -20), (3e-3, 40), (1e-4, 0),
    (4.0, 0), (8.0, 0), (100.0, 0),  # input_range_radius 1, 0, 0: TFLM saturates early
]


@pytest.mark.parametrize("scale,zp", LOGISTIC_CASES, ids=[f"s{s}-z{z}" for s, z in LOGISTIC_CASES])
def test_logistic(scale, zp):
    b = unary_model("LOGISTIC", ALL_INT8.shape, (scale, zp), (1.0 / 256, -128))
    check(b, [ALL_INT8], f"logistic s{scale} z{zp} (all values)")
    shape = (1, 5, 5, 3)
    b = unary_model("LOGISTIC", shape, (scale, zp), (1.0 / 256, -128))
    check(b, inputs_for(shape, seed=int(scale * 1000) + zp), f"logistic s{scale} z{zp}")


def test_logistic_output_scale_ignored():
    """TFLM never looks at the int8 output scale, only at its zero point (-128)."""
    b = unary_model("LOGISTIC", ALL_INT8.shape, (0.05, 0), (0.01, -128))
    got = run_numpy(b, ALL_INT8)
    assert np.array_equal(got, run_tflm(b, [ALL_INT8])[0])
    ref = unary_model("LOGISTIC", ALL_INT8.shape, (0.05, 0), (1.0 / 256, -128))
    assert np.array_equal(got, run_numpy(ref, ALL_INT8))


def test_logistic_refuses_output_zero_point():
    b = unary_model("LOGISTIC", (4,), (0.05, 0), (1.0 / 256, 0))
    with pytest.raises(ValueError, match="-128"):
        run_numpy(b, np.zeros(4, np.int8))
    with pytest.raises(Exception):
        run_tflm(b, [np.zeros(4, np.int8)])


@pytest.mark.parametrize("case_id", [c for c, _ in CASES if c.startswith(("logistic", "softmax"))])
def test_modelgen_cases_activations(case_id):
    factory = dict(CASES)[case_id]
    b = factory(np.random.default_rng(7))
    check(b, inputs_for(input_shape(b), seed=7), case_id)


# ---- HARD_SWISH ------------------------------------------------------------------------

HARD_SWISH_CASES = [
    # (in_scale, in_zp), (out_scale, out_zp)
    ((0.02, 5), (0.015, -100)),
    ((0.05, -128), (0.03, -128)),
    ((0.1, 0), (0.06, -50)),
    ((0.004, 30), (0.002, -10)),  # reluish exponent < 0
    ((0.5, -10), (0.4, -128)),  # reluish exponent > 0, saturating left shifts
    ((0.03, 127), (0.001, 0)),  # output saturates
    ((0.03, 0), (0.03, 0)),
    ((0.2, 20), (1.0, 60)),  # output scale >> input scale
    ((0.0234375, -3), (0.0234375 / 128 * 1.01, 0)),  # output exponent 0, tiny output scale
    ((1e-4, 0), (1e-4, 0)),  # reluish exponent very negative
    ((8.0, 0), (8.0, -128)),
    ((0.01, 0), (10.0, 0)),  # output exponent -16: int16 RoundingDivideByPOT mask wraps
    ((0.01, 0), (100.0, 0)),  # output exponent -20
    ((0.01, 5), (0.5, 126)),  # output zero point near the top
]


@pytest.mark.parametrize("in_q,out_q", HARD_SWISH_CASES,
                         ids=[f"in{a}-out{b}" for a, b in HARD_SWISH_CASES])
def test_hard_swish(in_q, out_q):
    b = unary_model("HARD_SWISH", ALL_INT8.shape, in_q, out_q)
    check(b, [ALL_INT8], f"hard_swish {in_q}->{out_q} (all values)")
    shape = (1, 4, 4, 5)
    b = unary_model("HARD_SWISH", shape, in_q, out_q)
    check(b, inputs_for(shape, seed=3), f"hard_swish {in_q}->{out_q}")


@pytest.mark.parametrize("in_scale,out_scale", [(1.0, 0.001), (0.0234375, 0.0234375 / 128)])
def test_hard_swish_refuses_positive_output_exponent(in_scale, out_scale):
    # (input_scale / 128) / output_scale >= 1 gives QuantizeMultiplier exponent >= 1.
    b = unary_model("HARD_SWISH", (4,), (in_scale, 0), (out_scale, 0))
    with pytest.raises(ValueError, match="exponent"):
        run_numpy(b, np.zeros(4, np.int8))
    with pytest.raises(Exception):
        run_tflm(b, [np.zeros(4, np.int8)])


@pytest.mark.parametrize("case_id", [c for c, _ in CASES if c.startswith("hard_swish")])
def test_modelgen_cases_hard_swish(case_id):
    b = dict(CASES)[case_id](np.random.default_rng(5))
    check(b, inputs_for(input_shape(b), seed=5), case_id)


# ---- MEAN ------------------------------------------------------------------------------

MEAN_CASES = [
    # in_shape, axes, keep_dims, (in_scale, in_zp), (out_scale, out_zp)
    ((1, 4, 4, 8), [1, 2], True, (0.05, 3), (0.05, 3)),  # equal scales
    ((1, 4, 4, 8), [1, 2], True, (0.05, 3), (0.02, -10)),
    ((1, 7, 7, 16), [1, 2], True, (0.04, -128), (0.01, 0)),  # n = 49
    ((2, 5, 3, 4), [2, 1], True, (0.1, 0), (0.3, 5)),  # out scale > in scale
    ((1, 6, 6, 8), [1, 2], False, (0.05, 3), (0.05, 3)),
    ((1, 6, 6, 8), [1, 2], False, (0.03, 10), (0.005, -20)),
    ((1, 32, 32, 3), [1, 2], True, (0.02, 0), (0.002, 1)),  # n = 1024
    ((1, 4, 5, 8), [3], True, (0.05, 7), (0.05, 7)),
    ((1, 4, 5, 8), [-1], False, (0.05, 7), (0.01, 0)),
    ((2, 3, 4, 5), [0, 2], False, (0.07, -3), (0.04, 2)),
    ((2, 3, 4, 5), [1, 2, 3], True, (0.07, -3), (0.07, -3)),
    ((2, 3, 4, 5), [0, 1, 2, 3], False, (0.07, -3), (0.01, 0)),
    ((3, 4, 5), [1], False, (0.1, 0), (0.05, 0)),
    ((6, 10), [1], True, (0.1, -128), (0.1, -128)),
    ((6, 10), [0], False, (0.1, 127), (0.2, -128)),
    ((1, 4, 4, 8), [1, 1, 2], True, (0.05, 3), (0.02, -10)),  # duplicate axis
    ((1, 3, 3, 4), [1, 2], True, (0.05, 0), (1e-3, 0)),  # saturating output
    ((1, 3, 5, 4), [2], True, (0.5, 0), (1e-6, 0)),  # ratio 5e5: large left shift
    ((1, 2, 2, 4), [1, 2], True, (1e-6, 0), (1.0, 0)),  # tiny ratio
    ((1, 2, 2, 4), [1, 2], True, (1e-3, 0), (1e-12, 0)),  # huge ratio
    ((1, 40, 40, 2), [1, 2], True, (0.01, 0), (0.01, 0)),  # n = 1600
    ((17,), [0], False, (0.1, 3), (0.02, -5)),  # 1-D to scalar
    ((2, 3), [], True, (0.1, 0), (0.05, 1)),  # no axes: a requantization
]


@pytest.mark.parametrize("in_shape,axes,keep,in_q,out_q", MEAN_CASES,
                         ids=[f"{'x'.join(map(str, c[0]))}-ax{''.join(map(str, c[1]))}-k{int(c[2])}"
                              f"-{c[3][0]}to{c[4][0]}" for c in MEAN_CASES])
def test_mean(in_shape, axes, keep, in_q, out_q):
    b = mean_model(in_shape, axes, keep, in_q, out_q)
    check(b, inputs_for(in_shape, seed=len(in_shape) * 100 + sum(in_shape)),
          f"mean {in_shape} {axes} keep={keep} {in_q}->{out_q}")


@pytest.mark.parametrize("case_id", [c for c, _ in CASES if c.startswith("mean")])
def test_modelgen_cases_mean(case_id):
    b = dict(CASES)[case_id](np.random.default_rng(3))
    check(b, inputs_for(input_shape(b), seed=3), case_id)


def test_mean_refuses_bad_axis():
    b = mean_model((1, 4, 4, 2), [1], True, (0.1, 0), (0.1, 0))
    g = graph_from_model(b)
    g.tensors[g.ops[0].inputs[1]].data = np.array([4], np.int32)
    with pytest.raises(ValueError, match="out of range"):
        prepare_mean(g, g.ops[0])


# ---- RESIZE_NEAREST_NEIGHBOR -----------------------------------------------------------

RESIZE_CASES = [
    ((1, 3, 4, 2), (6, 8)),
    ((1, 3, 4, 2), (5, 7)),
    ((1, 5, 5, 3), (9, 7)),
    ((1, 9, 9, 2), (4, 5)),
    ((2, 4, 6, 3), (2, 3)),
    ((1, 4, 4, 1), (1, 1)),
    ((1, 1, 1, 4), (3, 5)),
    ((1, 3, 4, 2), (3, 4)),
    ((1, 7, 3, 2), (13, 11)),
]


@pytest.mark.parametrize("flags", [(False, False), (True, False), (False, True), (True, True)],
                         ids=["plain", "align", "half", "align+half"])
@pytest.mark.parametrize("in_shape,size", RESIZE_CASES,
                         ids=[f"{'x'.join(map(str, s))}-to{h}x{w}" for s, (h, w) in RESIZE_CASES])
def test_resize_nearest_neighbor(in_shape, size, flags):
    b = resize_model(in_shape, size, *flags)
    check(b, inputs_for(in_shape, seed=9, n_random=2), f"resize {in_shape}->{size} {flags}")


@pytest.mark.parametrize("case_id", [c for c, _ in CASES if c.startswith("resize")])
def test_modelgen_cases_resize(case_id):
    b = dict(CASES)[case_id](np.random.default_rng(1))
    check(b, inputs_for(input_shape(b), seed=1), case_id)
