"""The engine's C kernels (device/engine/src/kernels/) are bit-exact with the numpy reference.

The kernels are compiled with the host gcc into a shared library and called through ctypes
(tests/ckernels.py). Every op of every generated model (tests/modelgen.py CASES) that a
kernel serves is run on random data -- the op's prepared constants come from the real
pipeline (parse_tflite + prepare_graph) -- and compared with host/mcutool/ref:

* spatial and elementwise ops on random windows, through views that are FULL buffers or
  rings smaller than the tensor, with a column origin and padded rows, against
  plan_exec.compute_window; the bytes outside the window must stay untouched;
* random geometries beyond the cases (kernel, stride, dilation, padding larger than the
  kernel, depth multiplier, extreme offsets, biases and shifts) against the full reference;
* the in-place depthwise (stride 1 and 2) and the fused depthwise -> 1x1 conv against
  the unfused reference;
* the rescale arithmetic over the whole int32 range (through a depth-1 FC);
* where arm-none-eabi-gcc and unicorn are installed, the kernels built for the Cortex-M0+
  (-Os: Thumb-1, the inline-assembly dot product, fixedpoint.h's ARMv6-M multiply) run in
  an emulator and must produce the host build's bytes.
"""
from __future__ import annotations

import ctypes as C
import math
from types import SimpleNamespace

import numpy as np
import pytest

import ckernels as ck
import modelgen
from mcutool.geometry import explicit_padding, out_size
from mcutool.plan.windows import in_range
from mcutool.quant.prepare import prepare_graph
from mcutool.ref.conv import eval_conv_2d, eval_depthwise_conv_2d
from mcutool.ref.kernels import kernel
from mcutool.ref.plan_exec import compute_window
from mcutool.ref.pooling import eval_average_pool_2d, eval_max_pool_2d
from mcutool.tflite_import import parse_tflite

CASES = dict(modelgen.CASES)

# op kinds -> the C kernels that serve them
C_KINDS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D",
           "MEAN", "PAD", "RESHAPE", "TRANSPOSE", "CONCATENATION", "SOFTMAX", "QUANTIZE", "LOGISTIC",
           "HARD_SWISH", "RESIZE_NEAREST_NEIGHBOR"}


@pytest.fixture(scope="session")
def lib(tmp_path_factory):
    return ck.build(tmp_path_factory.mktemp("ckernels"))


_GRAPHS: dict = {}


def graph_of(case: str, seed: int = 0, match: str = "tflm"):
    key = (case, seed, match)
    if key not in _GRAPHS:
        _GRAPHS[key] = prepare_graph(parse_tflite(CASES[case](np.random.default_rng(seed))), match)
    return _GRAPHS[key]


def rand_int8(rng, shape, extreme=False):
    """Uniform int8, or (extreme) mostly -128 / 127 with some random values."""
    x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    if extreme:
        pick = rng.integers(0, 3, size=shape)
        x = np.where(pick == 0, np.int8(-128), np.where(pick == 1, np.int8(127), x)).astype(np.int8)
    return x


def random_windows(rng, oh, ow, n):
    """The whole output, then n random windows [r0, r1) x [c0, c1)."""
    wins = [(0, oh, 0, ow)]
    for _ in range(n):
        r0 = int(rng.integers(0, oh))
        r1 = int(rng.integers(r0 + 1, oh + 1))
        c0 = int(rng.integers(0, ow))
        c1 = int(rng.integers(c0 + 1, ow + 1))
        wins.append((r0, r1, c0, c1))
    return wins


def out_buffer(rng, shape_hwc, r0, r1, c0, c1):
    h, w, c = shape_hwc
    return ck.random_buffer(rng, h, w, c, r0, r1, c0, c1)


def check_window(buf: ck.Buffer, want: np.ndarray, r0, r1, c0, c1, what=""):
    got = buf.get(r0, r1, c0, c1)
    np.testing.assert_array_equal(got, want.reshape(got.shape), err_msg=f"{what} window {(r0, r1, c0, c1)}")
    assert buf.untouched_outside(r0, r1, c0, c1), f"{what}: wrote outside window {(r0, r1, c0, c1)}"


# ---- per-kind checkers on a prepared op ------------------------------------------------------


def _spatial_params(graph, op, keep):
    d = op.data
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = graph.t(op.inputs[1]).data
        b = graph.t(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        return ck.conv_params(d, w, b, keep)
    return ck.pool_params(d, op.kind == "MAX_POOL_2D")


def _spatial_fns(lib, op):
    if op.kind == "CONV_2D":
        # mcu_pointwise hands any shape but 1x1 / stride 1 / no padding to mcu_conv2d
        return [lib.mcu_conv2d, lib.mcu_pointwise]
    if op.kind == "DEPTHWISE_CONV_2D":
        return [lib.mcu_depthwise]
    return [lib.mcu_pool]


def check_spatial(lib, graph, op, rng, n_windows=5):
    """CONV_2D / DEPTHWISE_CONV_2D / pools: random windows through random views."""
    xt, yt = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    _, H, W, Ci = xt.shape
    _, OH, OW, Co = yt.shape
    keep = ck.Keep()
    params = _spatial_params(graph, op, keep)
    for fn in _spatial_fns(lib, op):
        for extreme in (False, True):
            x = rand_int8(rng, (H, W, Ci), extreme)

            def read(t, a, b, c, d, _x=x):
                assert t == op.inputs[0]
                return _x[None, a:b, c:d]

            for r0, r1, c0, c1 in random_windows(rng, OH, OW, n_windows):
                want = compute_window(graph, op, read, r0, r1, c0, c1)
                ylo, yhi = in_range(graph, op, 0, r0, r1, H)
                xlo, xhi = in_range(graph, op, 1, c0, c1, W)
                ib = ck.random_buffer(rng, H, W, Ci, ylo, yhi, xlo, xhi)
                ib.put(x, ylo, yhi, xlo, xhi)
                ob = out_buffer(rng, (OH, OW, Co), r0, r1, c0, c1)
                fn(C.byref(params), C.byref(ib.view), C.byref(ob.view), r0, r1, c0, c1)
                check_window(ob, want, r0, r1, c0, c1, f"{op.kind} {fn.__name__}")
                assert ib.untouched_outside(0, 0, 0, 0), "a kernel wrote into its input"


def check_elementwise(lib, graph, op, rng, n_windows=4):
    """ADD / MUL (same shapes), requantizing QUANTIZE, LOGISTIC, HARD_SWISH on windows."""
    yt = graph.t(op.outputs[0])
    _, H, W, Cc = yt.shape
    d = op.data
    if op.kind == "ADD":
        params, fn = ck.fields(ck.AddParams, d), lib.mcu_add
    elif op.kind == "MUL":
        params, fn = ck.fields(ck.MulParams, d), lib.mcu_mul
    elif op.kind == "QUANTIZE":
        params = ck.RequantParams(d["input_zero_point"], d["zero_point"], d["multiplier"], d["shift"])
        fn = lib.mcu_requantize
    elif op.kind == "LOGISTIC":
        params, fn = ck.fields(ck.LogisticParams, d), lib.mcu_logistic
    else:
        params, fn = ck.fields(ck.HardSwishParams, d), lib.mcu_hard_swish
    acts = [i for i in op.inputs if i >= 0 and not graph.t(i).is_const]
    for extreme in (False, True):
        xs = {t: rand_int8(rng, (H, W, Cc), extreme) for t in acts}
        for r0, r1, c0, c1 in random_windows(rng, H, W, n_windows):
            want = compute_window(graph, op, lambda t, a, b, c, e: xs[t][None, a:b, c:e], r0, r1, c0, c1)
            ins = []
            for t in acts:
                ib = ck.random_buffer(rng, H, W, Cc, r0, r1, c0, c1)
                ib.put(xs[t], r0, r1, c0, c1)
                ins.append(ib)
            ob = out_buffer(rng, (H, W, Cc), r0, r1, c0, c1)
            fn(C.byref(params), *[C.byref(b.view) for b in ins], C.byref(ob.view), r0, r1, c0, c1)
            check_window(ob, want, r0, r1, c0, c1, op.kind)


def check_broadcast(lib, graph, op, rng):
    a_t, b_t, y_t = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    for extreme in (False, True):
        a, b = rand_int8(rng, a_t.shape, extreme), rand_int8(rng, b_t.shape, extreme)
        for swap in (False, True):
            check_broadcast_data(lib, op, a, b, y_t.shape, swap)


def check_broadcast_data(lib, op, a, b, out_shape, swap=False):
    _, ev = kernel(op.kind)
    want = ev(op, [a, b], out_shape)
    pad4 = lambda s: np.array((1,) * (4 - len(s)) + tuple(s), np.int32)  # noqa: E731
    out = np.zeros(int(np.prod(out_shape)), np.int8)
    fn = lib.mcu_add_broadcast if op.kind == "ADD" else lib.mcu_mul_broadcast
    params = ck.fields(ck.AddParams if op.kind == "ADD" else ck.MulParams, op.data)
    sa, sb, so = pad4(a.shape), pad4(b.shape), pad4(out_shape)
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if swap and op.kind == "MUL":  # MUL is symmetric given swapped offsets
        params.input1_offset, params.input2_offset = params.input2_offset, params.input1_offset
        fn(C.byref(params), ck.ptr8(b), ck.ptr32(sb), ck.ptr8(a), ck.ptr32(sa), ck.ptr8(out), ck.ptr32(so))
    else:
        fn(C.byref(params), ck.ptr8(a), ck.ptr32(sa), ck.ptr8(b), ck.ptr32(sb), ck.ptr8(out), ck.ptr32(so))
    np.testing.assert_array_equal(out, want.reshape(-1), err_msg=f"{op.kind} broadcast {a.shape} {b.shape}")


def check_fc(lib, graph, op, rng):
    d = op.data
    x_t, w_t = graph.t(op.inputs[0]), graph.t(op.inputs[1])
    w = w_t.data
    bias = graph.t(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    units, depth = w.shape
    keep = ck.Keep()
    p = ck.FCParams(d["input_offset"], d["output_offset"], d["act_min"], d["act_max"], keep.p32(d["multiplier"]),
                    keep.p32(d["shift"]), int(d["rounding"] == "single"), keep.p8(w), keep.p32(bias), units, depth)
    _, ev = kernel(op.kind)
    for extreme in (False, True):
        x = rand_int8(rng, x_t.shape, extreme)
        want = ev(op, [x, w, bias], graph.t(op.outputs[0]).shape)
        rows = x.size // depth
        out = np.zeros(rows * units + 8, np.int8)
        lib.mcu_fully_connected(C.byref(p), ck.ptr8(np.ascontiguousarray(x).reshape(-1)), rows, ck.ptr8(out))
        np.testing.assert_array_equal(out[: rows * units], want.reshape(-1))
        assert not out[rows * units:].any()


def check_softmax_data(lib, op, x):
    _, ev = kernel("SOFTMAX")
    d = op.data
    want = ev(op, [x], x.shape)
    depth = x.shape[-1]
    outer = x.size // depth
    p = ck.SoftmaxParams(d["input_multiplier"], d["input_left_shift"], d["diff_min"], int(d["out_dtype"] == "int16"))
    out = np.zeros(x.size, want.dtype)
    lib.mcu_softmax(C.byref(p), ck.ptr8(np.ascontiguousarray(x).reshape(-1)), outer, depth,
                    out.ctypes.data_as(C.c_void_p))
    np.testing.assert_array_equal(out, want.reshape(-1))


def check_softmax(lib, graph, op, rng):
    shape = graph.t(op.inputs[0]).shape
    for extreme in (False, True):
        x = rand_int8(rng, shape, extreme)
        check_softmax_data(lib, op, x)
        op16 = SimpleNamespace(data={**op.data, "out_dtype": "int16"})
        check_softmax_data(lib, op16, x)


def check_mean_data(lib, graph, op, x):
    _, ev = kernel("MEAN")
    d = op.data
    y_shape = graph.t(op.outputs[0]).shape
    want = ev(op, [x], y_shape)
    rank = x.ndim
    shape4 = np.array((1,) * (4 - rank) + tuple(x.shape), np.int32)
    axes = [a + 4 - rank for a in d["axes"]] + [0] * (4 - len(d["axes"]))
    p = ck.MeanParams((C.c_int32 * 4)(*axes), len(d["axes"]), d["num_elements_in_axis"], d["input_zero_point"],
                      d["output_zero_point"], d["multiplier"], d["shift"], int(d["empty"]))
    out = np.full(max(want.size, 1) + 4, 99, np.int8)
    lib.mcu_mean(C.byref(p), ck.ptr8(np.ascontiguousarray(x).reshape(-1)), ck.ptr32(shape4), ck.ptr8(out))
    np.testing.assert_array_equal(out[: want.size], want.reshape(-1), err_msg=f"MEAN {x.shape} axes {d['axes']}")
    assert (out[want.size:] == 99).all()


def check_mean(lib, graph, op, rng):
    for extreme in (False, True):
        check_mean_data(lib, graph, op, rand_int8(rng, graph.t(op.inputs[0]).shape, extreme))


def check_resize(lib, graph, op, rng):
    x_t, y_t = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    _, H, W, Cc = x_t.shape
    _, OH, OW, _ = y_t.shape
    iy, ix = np.ascontiguousarray(op.data["in_y"], np.int32), np.ascontiguousarray(op.data["in_x"], np.int32)
    _, ev = kernel(op.kind)
    x = rand_int8(rng, (H, W, Cc))
    want = ev(op, [x[None]], y_t.shape)[0]
    ib = ck.random_buffer(rng, H, W, Cc, 0, H, 0, W)
    ib.put(x, 0, H, 0, W)
    ob = out_buffer(rng, (OH, OW, Cc), 0, OH, 0, OW)
    lib.mcu_resize_nearest(ck.ptr32(iy), ck.ptr32(ix), C.byref(ib.view), C.byref(ob.view))
    check_window(ob, want, 0, OH, 0, OW, "RESIZE")


def check_transpose_data(lib, x, perm):
    want = np.ascontiguousarray(x.transpose(perm))
    out = np.zeros(x.size + 4, np.int8)
    lib.mcu_transpose(ck.ptr32(np.array(perm, np.int32)), len(perm), ck.ptr32(np.array(x.shape, np.int32)),
                      ck.ptr8(np.ascontiguousarray(x).reshape(-1)), ck.ptr8(out))
    np.testing.assert_array_equal(out[: x.size], want.reshape(-1), err_msg=f"TRANSPOSE {x.shape} {perm}")
    assert not out[x.size:].any()


def check_pad_data(lib, x, pads, value):
    want = np.pad(x, pads, constant_values=value)
    out = np.zeros(want.size + 4, np.int8)
    lib.mcu_pad(ck.ptr32(np.array(pads, np.int32).reshape(-1, 2)), x.ndim, ck.ptr32(np.array(x.shape, np.int32)),
                value, ck.ptr8(np.ascontiguousarray(x).reshape(-1)), ck.ptr8(out))
    np.testing.assert_array_equal(out[: want.size], want.reshape(-1), err_msg=f"PAD {x.shape} {pads}")
    assert not out[want.size:].any()


def check_shape_op(lib, graph, op, rng):
    xs = [rand_int8(rng, graph.t(i).shape) for i in op.inputs if not graph.t(i).is_const]
    y_shape = graph.t(op.outputs[0]).shape
    if op.kind == "TRANSPOSE":
        check_transpose_data(lib, xs[0], op.data["perm"])
    elif op.kind == "PAD":
        check_pad_data(lib, xs[0], op.data["paddings"], op.data["value"])
    elif op.kind == "RESHAPE":
        out = np.zeros(xs[0].size, np.int8)
        lib.mcu_copy(ck.ptr8(xs[0].reshape(-1)), ck.ptr8(out), xs[0].size)
        np.testing.assert_array_equal(out, kernel("RESHAPE")[1](op, xs, y_shape).reshape(-1))
    else:  # CONCATENATION: one mcu_copy per input and outer index
        axis = op.data["axis"]
        want = kernel("CONCATENATION")[1](op, xs, y_shape)
        out = np.zeros(want.size, np.int8)
        outer = int(np.prod(y_shape[:axis], dtype=np.int64))
        pos = 0
        for o in range(outer):
            for x in xs:
                chunk = int(np.prod(x.shape[axis:], dtype=np.int64))
                src = np.ascontiguousarray(x).reshape(-1)[o * chunk:]
                lib.mcu_copy(ck.ptr8(src), C.cast(out.ctypes.data + pos, ck.P8), chunk)
                pos += chunk
        np.testing.assert_array_equal(out, want.reshape(-1))


def check_op(lib, graph, op, rng):
    k = op.kind
    acts = [graph.t(i) for i in op.inputs if i >= 0 and not graph.t(i).is_const]
    if k in ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D"):
        check_spatial(lib, graph, op, rng)
    elif k in ("ADD", "MUL"):
        if all(t.shape == graph.t(op.outputs[0]).shape for t in acts) and len(acts[0].shape) == 4:
            check_elementwise(lib, graph, op, rng)
        check_broadcast(lib, graph, op, rng)
    elif k == "QUANTIZE":
        if op.data["mode"] != "requant":
            return False  # float QUANTIZE runs on the host
        check_elementwise(lib, graph, op, rng)
    elif k in ("LOGISTIC", "HARD_SWISH"):
        check_elementwise(lib, graph, op, rng)
    elif k == "FULLY_CONNECTED":
        check_fc(lib, graph, op, rng)
    elif k == "SOFTMAX":
        check_softmax(lib, graph, op, rng)
    elif k == "MEAN":
        check_mean(lib, graph, op, rng)
    elif k == "RESIZE_NEAREST_NEIGHBOR":
        check_resize(lib, graph, op, rng)
    elif k in ("TRANSPOSE", "PAD", "RESHAPE", "CONCATENATION"):
        check_shape_op(lib, graph, op, rng)
    else:
        return False
    return True


# ---- every case of modelgen ------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_case(lib, case):
    ran = 0
    for seed in (0, 1):
        graph = graph_of(case, seed)
        rng = np.random.default_rng([seed, len(case)])
        for op in graph.ops:
            ran += bool(check_op(lib, graph, op, rng))
    if case.startswith("fc_"):  # LiteRT's single rounding
        graph = graph_of(case, 0, "litert")
        assert graph.ops[0].data["rounding"] == "single"
        check_fc(lib, graph, graph.ops[0], np.random.default_rng(7))
    if not ran:
        pytest.skip(f"{case}: no op of it runs on the device (host-side float conversion)")


def test_every_kernel_kind_is_covered():
    kinds = {op.kind for case in CASES for op in graph_of(case).ops}
    assert C_KINDS <= kinds


# ---- random geometries beyond the cases ------------------------------------------------------


def _multipliers(rng, n, acc_std, extreme=False):
    """Per-channel (multiplier, shift) putting acc_std near 40 output steps."""
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=n, dtype=np.int64).astype(np.int32)
    base = -int(round(math.log2(max(acc_std, 1.0) / 40.0)))
    shift = (base + rng.integers(-2, 3, size=n)).astype(np.int32)
    if extreme:
        shift[rng.integers(0, n)] = -31
        shift[rng.integers(0, n)] = int(rng.integers(1, 8))
    return mult, np.clip(shift, -31, 30).astype(np.int32)


def _epilogue(rng, extreme=False):
    in_off = int(rng.choice([-127, 128])) if extreme else int(rng.integers(-127, 129))
    out_off = int(rng.choice([-128, 127])) if extreme else int(rng.integers(-128, 128))
    lo = int(rng.integers(-128, 0)) if rng.integers(0, 3) == 0 else -128
    hi = int(rng.integers(0, 128)) if rng.integers(0, 3) == 0 else 127
    return {"input_offset": in_off, "output_offset": out_off, "act_min": lo, "act_max": hi}


def _bias(rng, n, extreme=False):
    if rng.integers(0, 4) == 0:
        return None
    if extreme:
        return rng.integers(-(1 << 31), (1 << 31) - 1, size=n, dtype=np.int64).astype(np.int32)
    return rng.integers(-20000, 20000, size=n).astype(np.int32)


def _sensitive(rng, d, x, w, co):
    """Make a random conv's output equal its accumulator (multiplier ~1.0, shift 0, small
    weights and inputs around the zero point), so an off-by-one anywhere shows."""
    zp = int(rng.integers(-10, 11))
    d.update(input_offset=-zp, output_offset=0, act_min=-128, act_max=127,
             multiplier=np.full(co, (1 << 31) - 1, np.int32), shift=np.zeros(co, np.int32))
    x[...] = rng.integers(-3, 4, size=x.shape) + zp
    w[...] = rng.integers(-2, 3, size=w.shape)


def random_conv_op(rng, depthwise, extreme=False, max_k=5, sensitive=False):
    """(op-like with .data, x, w, bias, out_shape) of a random conv or depthwise conv."""
    kh, kw = int(rng.integers(1, max_k + 1)), int(rng.integers(1, max_k + 1))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dh, dw = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if rng.integers(0, 3) == 0 else (1, 1)
    keh, kew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    H, W = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    pads = [int(rng.integers(0, k + 2)) for k in (keh, kew, keh, kew)]  # may exceed the kernel: a folded PAD
    OH, OW = (H + pads[0] + pads[2] - keh) // sh + 1, (W + pads[1] + pads[3] - kew) // sw + 1
    if OH < 1 or OW < 1:
        return random_conv_op(rng, depthwise, extreme, max_k, sensitive)
    if depthwise:
        ci, m = int(rng.integers(1, 7)), int(rng.integers(1, 4)) if rng.integers(0, 2) else 1
        co = ci * m
        w = rand_int8(rng, (1, kh, kw, co), extreme)
        taps = kh * kw
    else:
        ci, co, m = int(rng.integers(1, 9)), int(rng.integers(1, 11)), 1
        w = rand_int8(rng, (co, kh, kw, ci), extreme)
        taps = kh * kw * ci
    mult, shift = _multipliers(rng, co, 74 * 74 * math.sqrt(taps), extreme)
    d = {"pad": tuple(pads), "stride": (sh, sw), "dilation": (dh, dw), "depth_multiplier": m,
         "multiplier": mult, "shift": shift, **_epilogue(rng, extreme)}
    x = rand_int8(rng, (1, H, W, ci), extreme)
    bias = _bias(rng, co, extreme)
    if sensitive:
        _sensitive(rng, d, x, w, co)
        bias = None if bias is None else rng.integers(-20, 21, size=co).astype(np.int32)
    return SimpleNamespace(data=d, kind="DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"), x, w, \
        bias, (1, OH, OW, co)


def _run_window(lib, fn, params, x, out_shape, win, rng, in_rows_cols):
    _, H, W, Ci = x.shape
    _, OH, OW, Co = out_shape
    r0, r1, c0, c1 = win
    ylo, yhi, xlo, xhi = in_rows_cols(r0, r1, c0, c1)
    ib = ck.random_buffer(rng, H, W, Ci, ylo, yhi, xlo, xhi)
    ib.put(x[0], ylo, yhi, xlo, xhi)
    ob = out_buffer(rng, (OH, OW, Co), r0, r1, c0, c1)
    fn(C.byref(params), C.byref(ib.view), C.byref(ob.view), r0, r1, c0, c1)
    return ob


def _in_rows_cols(d, kh_eff, kw_eff, H, W):
    (sh, sw), (t, l) = d["stride"], d["pad"][:2]

    def f(r0, r1, c0, c1):
        ylo, yhi = max(0, r0 * sh - t), min(H, (r1 - 1) * sh - t + kh_eff)
        xlo, xhi = max(0, c0 * sw - l), min(W, (c1 - 1) * sw - l + kw_eff)
        return ylo, max(ylo, yhi), xlo, max(xlo, xhi)

    return f


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
def test_random_conv_geometry(lib, depthwise):
    rng = np.random.default_rng(1234 + depthwise)
    for it in range(400):
        op, x, w, b, out_shape = random_conv_op(rng, depthwise, extreme=it % 4 == 3, sensitive=it % 4 == 1)
        ev = eval_depthwise_conv_2d if depthwise else eval_conv_2d
        want = ev(op, [x, w, b], out_shape)[0]
        keep = ck.Keep()
        params = ck.conv_params(op.data, w, b, keep)
        (dh, dw) = op.data["dilation"]
        rc = _in_rows_cols(op.data, (w.shape[1] - 1) * dh + 1, (w.shape[2] - 1) * dw + 1, x.shape[1], x.shape[2])
        fns = [lib.mcu_depthwise] if depthwise else [lib.mcu_conv2d]
        if not depthwise and w.shape[1:3] == (1, 1) and op.data["stride"] == (1, 1) and op.data["pad"][:2] == (0, 0):
            fns.append(lib.mcu_pointwise)
        for fn in fns:
            for win in random_windows(rng, out_shape[1], out_shape[2], 3):
                ob = _run_window(lib, fn, params, x, out_shape, win, rng, rc)
                r0, r1, c0, c1 = win
                check_window(ob, want[r0:r1, c0:c1], *win, f"{fn.__name__} {op.data} w{w.shape}")


def test_random_pointwise(lib):
    """1x1 stride-1 convs with channel counts around the 4-channel blocks."""
    rng = np.random.default_rng(99)
    for it in range(150):
        ci, co = int(rng.integers(1, 40)), int(rng.integers(1, 20))
        H, W = int(rng.integers(1, 7)), int(rng.integers(1, 9))
        extreme = it % 3 == 2
        w = rand_int8(rng, (co, 1, 1, ci), extreme)
        mult, shift = _multipliers(rng, co, 74 * 74 * math.sqrt(ci), extreme)
        d = {"pad": (0, 0, 0, 0), "stride": (1, 1), "dilation": (1, 1), "multiplier": mult, "shift": shift,
             **_epilogue(rng, extreme)}
        op = SimpleNamespace(data=d, kind="CONV_2D")
        x = rand_int8(rng, (1, H, W, ci), extreme)
        b = _bias(rng, co, extreme)
        if it % 3 == 1:
            _sensitive(rng, d, x, w, co)
        want = eval_conv_2d(op, [x, w, b], (1, H, W, co))[0]
        params = ck.conv_params(d, w, b, ck.Keep())
        for fn in (lib.mcu_pointwise, lib.mcu_conv2d):
            for win in random_windows(rng, H, W, 2):
                ob = _run_window(lib, fn, params, x, (1, H, W, co), win, rng, _in_rows_cols(d, 1, 1, H, W))
                r0, r1, c0, c1 = win
                check_window(ob, want[r0:r1, c0:c1], *win, fn.__name__)


def test_random_pool_geometry(lib):
    rng = np.random.default_rng(77)
    for it in range(300):
        fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        H, W, Cc = int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.integers(1, 6))
        pads = [int(rng.integers(0, k)) for k in (fh, fw, fh, fw)]  # every window keeps a tap
        OH, OW = (H + pads[0] + pads[2] - fh) // sh + 1, (W + pads[1] + pads[3] - fw) // sw + 1
        if OH < 1 or OW < 1:
            continue
        e = _epilogue(rng, it % 4 == 3)
        d = {"pad": tuple(pads), "filter": (fh, fw), "stride": (sh, sw), "act_min": e["act_min"],
             "act_max": e["act_max"]}
        op = SimpleNamespace(data=d, index=0, kind="POOL")
        x = rand_int8(rng, (1, H, W, Cc), it % 4 == 3)
        for is_max, ev in ((False, eval_average_pool_2d), (True, eval_max_pool_2d)):
            want = ev(op, [x], (1, OH, OW, Cc))[0]
            params = ck.pool_params(d, is_max)
            for win in random_windows(rng, OH, OW, 2):
                ob = _run_window(lib, lib.mcu_pool, params, x, (1, OH, OW, Cc), win, rng,
                                 _in_rows_cols(d, fh, fw, H, W))
                r0, r1, c0, c1 = win
                check_window(ob, want[r0:r1, c0:c1], *win, f"pool max={is_max} {d}")


def test_conv_large_kernel_and_ring_wrap(lib):
    """A 7x7 dilated conv whose window rows wrap around a ring several times."""
    rng = np.random.default_rng(5)
    for depthwise in (False, True):
        for _ in range(6):
            op, x, w, b, out_shape = random_conv_op(rng, depthwise, max_k=7, sensitive=True)
            ev = eval_depthwise_conv_2d if depthwise else eval_conv_2d
            want = ev(op, [x, w, b], out_shape)[0]
            params = ck.conv_params(op.data, w, b, ck.Keep())
            fn = lib.mcu_depthwise if depthwise else lib.mcu_conv2d
            dh, dw = op.data["dilation"]
            keh, kew = (w.shape[1] - 1) * dh + 1, (w.shape[2] - 1) * dw + 1
            rc = _in_rows_cols(op.data, keh, kew, x.shape[1], x.shape[2])
            for r in range(out_shape[1]):  # row by row, as a streamed plan runs
                win = (r, r + 1, 0, out_shape[2])
                ylo, yhi, xlo, xhi = rc(*win)
                ib = ck.Buffer(rng, x.shape[1], x.shape[2], x.shape[3], 0, 0, x.shape[2],
                               cap=max(1, yhi - ylo), row_pad=3)
                ib.put(x[0], ylo, yhi, xlo, xhi)
                ob = out_buffer(rng, out_shape[1:], *win)
                fn(C.byref(params), C.byref(ib.view), C.byref(ob.view), *win)
                check_window(ob, want[r:r + 1], *win, "row by row")


# ---- depthwise in place, depthwise -> pointwise fused ----------------------------------------


def _inplace_case(lib, op, x, w, b, out_shape):
    want = eval_depthwise_conv_2d(op, [x, w, b], out_shape)[0]
    _, H, W, Cc = x.shape
    _, OH, OW, _ = out_shape
    assert OH * OW <= H * W
    buf = np.concatenate([x.reshape(-1), np.full(8, 77, np.int8)])
    plane = np.full(OH * OW + 8, 55, np.int8)
    view = ck.View(ck.ptr8(buf), 0, W * Cc, 0, H, W, Cc)
    lib.mcu_depthwise_inplace(C.byref(ck.conv_params(op.data, w, b, ck.Keep())), C.byref(view), OH, OW,
                              ck.ptr8(plane))
    np.testing.assert_array_equal(buf[: OH * OW * Cc], want.reshape(-1), err_msg=f"in place {op.data}")
    assert (buf[-8:] == 77).all() and (plane[-8:] == 55).all()


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_inplace(lib, stride):
    rng = np.random.default_rng(40 + stride)
    n = 0
    while n < 80:
        op, x, w, b, out_shape = random_conv_op(rng, True, extreme=n % 4 == 3, sensitive=n % 4 == 1)
        d = op.data
        if d["depth_multiplier"] != 1:
            continue
        d["stride"] = (stride, stride)
        # SAME / VALID padding as TFLite computes it (the output is never larger than the input)
        kh, kw = w.shape[1:3]
        dh, dw = d["dilation"]
        H, W = x.shape[1:3]
        same = bool(rng.integers(0, 2))
        pad_kind = "SAME" if same else "VALID"
        OH, OW = out_size(pad_kind, H, kh, stride, dh), out_size(pad_kind, W, kw, stride, dw)
        if OH < 1 or OW < 1:
            continue
        d["pad"] = explicit_padding(pad_kind, (H, W), (kh, kw), (stride, stride), (dh, dw), (OH, OW))
        _inplace_case(lib, op, x, w, b, (1, OH, OW, out_shape[3]))
        n += 1
    # and the generated depthwise cases
    for case in CASES:
        if case.startswith("dw_"):
            g = graph_of(case)
            op = g.ops[0]
            if op.data["depth_multiplier"] != 1 or max(op.data["stride"]) != stride:
                continue
            x = rand_int8(rng, g.t(op.inputs[0]).shape)
            b = g.t(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            _inplace_case(lib, op, x, g.t(op.inputs[1]).data, b, g.t(op.outputs[0]).shape)


def _fused_case(lib, rng, dw_op, x, w_dw, b_dw, mid_shape, pw_data, w_pw, b_pw, n_windows=3):
    mid = eval_depthwise_conv_2d(dw_op, [x, w_dw, b_dw], mid_shape)
    pw_op = SimpleNamespace(data=pw_data, kind="CONV_2D")
    co = w_pw.shape[0]
    out_shape = (1, mid_shape[1], mid_shape[2], co)
    want = eval_conv_2d(pw_op, [mid, w_pw, b_pw], out_shape)[0]
    keep = ck.Keep()
    pdw = ck.conv_params(dw_op.data, w_dw, b_dw, keep)
    ppw = ck.conv_params(pw_data, w_pw, b_pw, keep)
    d = dw_op.data
    (dh, dw) = d["dilation"]
    rc = _in_rows_cols(d, (w_dw.shape[1] - 1) * dh + 1, (w_dw.shape[2] - 1) * dw + 1, x.shape[1], x.shape[2])
    mid_c = mid_shape[3]
    for win in random_windows(rng, out_shape[1], out_shape[2], n_windows):
        r0, r1, c0, c1 = win
        ylo, yhi, xlo, xhi = rc(*win)
        ib = ck.random_buffer(rng, x.shape[1], x.shape[2], x.shape[3], ylo, yhi, xlo, xhi)
        ib.put(x[0], ylo, yhi, xlo, xhi)
        ob = out_buffer(rng, out_shape[1:], *win)
        pixel = np.full(mid_c + 8, 33, np.int8)
        lib.mcu_depthwise_pointwise(C.byref(pdw), C.byref(ppw), C.byref(ib.view), mid_c, C.byref(ob.view),
                                    ck.ptr8(pixel), r0, r1, c0, c1)
        check_window(ob, want[r0:r1, c0:c1], *win, f"fused dw {d}")
        assert (pixel[mid_c:] == 33).all()


def test_depthwise_pointwise_fused(lib):
    rng = np.random.default_rng(2024)
    for it in range(150):
        extreme = it % 4 == 3
        dw_op, x, w_dw, b_dw, mid_shape = random_conv_op(rng, True, extreme, sensitive=it % 4 == 1)
        mid_c = mid_shape[3]
        co = int(rng.integers(1, 11))
        w_pw = rand_int8(rng, (co, 1, 1, mid_c), extreme)
        mult, shift = _multipliers(rng, co, 74 * 74 * math.sqrt(mid_c), extreme)
        pw_data = {"pad": (0, 0, 0, 0), "stride": (1, 1), "dilation": (1, 1), "multiplier": mult, "shift": shift,
                   **_epilogue(rng, extreme)}
        if it % 4 == 1:  # the dw outputs are small: make the 1x1 conv exact too
            pw_data.update(input_offset=int(rng.integers(-3, 4)), output_offset=0, act_min=-128, act_max=127,
                           multiplier=np.full(co, (1 << 31) - 1, np.int32), shift=np.zeros(co, np.int32))
            w_pw[...] = rng.integers(-2, 3, size=w_pw.shape)
        _fused_case(lib, rng, dw_op, x, w_dw, b_dw, mid_shape, pw_data, w_pw, _bias(rng, co, extreme))
    # the depthwise -> 1x1 conv pair of the generated small_chain model
    g = graph_of("small_chain")
    dw_op, pw_op = g.ops[2], g.ops[3]
    assert (dw_op.kind, pw_op.kind) == ("DEPTHWISE_CONV_2D", "CONV_2D") and pw_op.inputs[0] == dw_op.outputs[0]
    for _ in range(3):
        x = rand_int8(rng, g.t(dw_op.inputs[0]).shape)
        _fused_case(lib, rng, dw_op, x, g.t(dw_op.inputs[1]).data, g.t(dw_op.inputs[2]).data,
                    g.t(dw_op.outputs[0]).shape, pw_op.data, g.t(pw_op.inputs[1]).data, g.t(pw_op.inputs[2]).data)


# ---- the other kernels beyond the cases ------------------------------------------------------


def test_logistic_and_hard_swish_all_inputs(lib):
    """Every int8 input value, for many input scales / zero points."""
    rng = np.random.default_rng(11)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 8, 32, 1)
    scales = [0.001, 0.004, 0.01, 0.03, 0.05, 0.08, 0.1, 0.2, 0.5, 1.0, 3.0, 20.0]
    for kind, models in (
        ("LOGISTIC", [modelgen.logistic(rng, (1, 8, 32, 1), input_scale=s) for s in scales]),
        ("HARD_SWISH", [modelgen.hard_swish(rng, (1, 8, 32, 1)) for _ in range(12)]
         + [modelgen.hard_swish(rng, (1, 8, 32, 1), input_zp=z) for z in (-128, 127)]),
    ):
        for m in models:
            try:
                g = prepare_graph(parse_tflite(m))
            except Exception:  # scales TFLM refuses
                continue
            op = g.ops[0]
            want = kernel(kind)[1](op, [x], x.shape)[0]
            params = ck.fields(ck.LogisticParams if kind == "LOGISTIC" else ck.HardSwishParams, op.data)
            fn = lib.mcu_logistic if kind == "LOGISTIC" else lib.mcu_hard_swish
            ib = ck.random_buffer(rng, 8, 32, 1, 0, 8, 0, 32)
            ib.put(x[0], 0, 8, 0, 32)
            ob = out_buffer(rng, (8, 32, 1), 0, 8, 0, 32)
            fn(C.byref(params), C.byref(ib.view), C.byref(ob.view), 0, 8, 0, 32)
            check_window(ob, want, 0, 8, 0, 32, f"{kind} {op.data}")


def test_hard_swish_random_params(lib):
    """HARD_SWISH's int16 paths for random multipliers and exponents."""
    rng = np.random.default_rng(12)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256, 1)
    _, ev = kernel("HARD_SWISH")
    for _ in range(200):
        d = {"input_zero_point": int(rng.integers(-128, 128)), "output_zero_point": int(rng.integers(-128, 128)),
             "output_multiplier_fixedpoint_int16": int(rng.integers(16384, 32768)),
             "output_multiplier_exponent": int(rng.integers(-20, 1)),
             "reluish_multiplier_fixedpoint_int16": int(rng.integers(16384, 32768)),
             "reluish_multiplier_exponent": int(rng.integers(-20, 20))}
        want = ev(SimpleNamespace(data=d), [x], x.shape)[0]
        ib = ck.random_buffer(rng, 1, 256, 1, 0, 1, 0, 256)
        ib.put(x[0], 0, 1, 0, 256)
        ob = out_buffer(rng, (1, 256, 1), 0, 1, 0, 256)
        lib.mcu_hard_swish(C.byref(ck.fields(ck.HardSwishParams, d)), C.byref(ib.view), C.byref(ob.view), 0, 1, 0, 256)
        check_window(ob, want, 0, 1, 0, 256, f"HARD_SWISH {d}")


def test_logistic_random_params(lib):
    rng = np.random.default_rng(13)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256, 1)
    _, ev = kernel("LOGISTIC")
    from mcutool.ref.softmax import calculate_input_radius

    for _ in range(200):
        shift = int(rng.integers(0, 32))
        d = {"input_zero_point": int(rng.integers(-128, 128)), "input_multiplier": int(rng.integers(1 << 30, 1 << 31)),
             "input_left_shift": shift, "input_range_radius": calculate_input_radius(4, shift, 31)}
        want = ev(SimpleNamespace(data=d), [x], x.shape)[0]
        ib = ck.random_buffer(rng, 1, 256, 1, 0, 1, 0, 256)
        ib.put(x[0], 0, 1, 0, 256)
        ob = out_buffer(rng, (1, 256, 1), 0, 1, 0, 256)
        lib.mcu_logistic(C.byref(ck.fields(ck.LogisticParams, d)), C.byref(ib.view), C.byref(ob.view), 0, 1, 0, 256)
        check_window(ob, want, 0, 1, 0, 256, f"LOGISTIC {d}")


def test_softmax_random(lib):
    rng = np.random.default_rng(21)
    for it in range(40):
        beta = float(rng.choice([0.25, 0.5, 1.0, 2.0]))
        s_in = float(rng.uniform(0.01, 0.3))
        depth = int(rng.choice([1, 2, 3, 10, 100, 1000]))
        outer = int(rng.integers(1, 5))
        try:
            g = prepare_graph(parse_tflite(modelgen.softmax(rng, (outer, depth), beta=beta, input_scale=s_in)))
        except Exception:
            continue
        op = g.ops[0]
        x = rand_int8(rng, (outer, depth), it % 3 == 2)
        if it % 5 == 4:
            x[:] = x[0, 0]  # all equal
        for dt in ("int8", "int16"):
            check_softmax_data(lib, SimpleNamespace(data={**op.data, "out_dtype": dt}), x)


def test_mean_random(lib):
    rng = np.random.default_rng(31)
    for it in range(60):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(1, 7, size=rank))
        n_ax = int(rng.integers(1, rank + 1))
        axes = tuple(int(a) for a in rng.choice(rank, size=n_ax, replace=False))
        keep = bool(rng.integers(0, 2))
        try:
            g = prepare_graph(parse_tflite(modelgen.mean(rng, shape, axes, keep_dims=keep,
                                                         same_scale=bool(rng.integers(0, 2)))))
        except Exception:
            continue
        op = g.ops[0]
        check_mean_data(lib, g, op, rand_int8(rng, shape, it % 3 == 2))


def test_broadcast_random(lib):
    rng = np.random.default_rng(41)
    ops = [graph_of(c).ops[0] for c in ("add", "add_extreme_zps", "add_saturating", "mul", "mul_extreme_zps")]
    for it in range(60):
        rank = int(rng.integers(1, 5))
        out = tuple(int(v) for v in rng.integers(1, 6, size=rank))
        a = tuple(d if rng.integers(0, 2) else 1 for d in out)
        b = tuple(d if rng.integers(0, 2) else 1 for d in out)
        b = b[int(rng.integers(0, rank)):]  # numpy-style: fewer leading dims
        for op in ops:
            check_broadcast_data(lib, op, rand_int8(rng, a, it % 3 == 2), rand_int8(rng, b, it % 3 == 2),
                                 np.broadcast_shapes(a, b))


def test_transpose_pad_random(lib):
    rng = np.random.default_rng(51)
    for _ in range(60):
        rank = int(rng.integers(1, 7))
        shape = tuple(int(v) for v in rng.integers(1, 5, size=rank))
        x = rand_int8(rng, shape)
        check_transpose_data(lib, x, tuple(int(v) for v in rng.permutation(rank)))
        pads = [(int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(rank)]
        check_pad_data(lib, x, pads, int(rng.integers(-128, 128)))


def test_copy_overlapping(lib):
    buf = np.arange(64, dtype=np.int8)
    want = buf.copy()
    want[10:40] = buf[5:35]
    lib.mcu_copy(ck.ptr8(buf[5:]), ck.ptr8(buf[10:]), 30)
    np.testing.assert_array_equal(buf, want)


def test_mean_empty_and_resize_one_channel(lib):
    rng = np.random.default_rng(61)
    # MEAN of a tensor with a zero dimension writes zeros
    p = ck.MeanParams((C.c_int32 * 4)(1, 2, 0, 0), 2, 0, 3, -5, 1 << 30, -3, 1)
    out = np.full(8, 99, np.int8)
    lib.mcu_mean(C.byref(p), ck.ptr8(np.zeros(4, np.int8)), ck.ptr32(np.array([1, 0, 3, 4], np.int32)),
                 ck.ptr8(out))
    assert (out[:4] == 0).all() and (out[4:] == 99).all()
    # single-channel gather
    for size in ((7, 3), (10, 12)):
        m = modelgen.resize_nearest_neighbor(rng, in_shape=(1, 5, 6, 1), size=size,
                                             half_pixel_centers=size[0] == 7)
        g = prepare_graph(parse_tflite(m))
        check_resize(lib, g, g.ops[0], rng)


def test_rank0_transpose_pad(lib):
    x = np.array([-7], np.int8)
    out = np.zeros(2, np.int8)
    lib.mcu_transpose(ck.P32(), 0, ck.P32(), ck.ptr8(x), ck.ptr8(out))
    lib.mcu_pad(ck.P32(), 0, ck.P32(), 5, ck.ptr8(x), ck.ptr8(out[1:]))
    assert out.tolist() == [-7, -7]



def test_requantize_arithmetic(lib):
    """The kernels' rescale (on the device, SaturatingRoundingDoublingHighMul without 64-bit
    arithmetic) against fixedpoint.py over the whole int32 range: an FC of depth 1 with
    weight 1 makes acc = bias, with one (acc, multiplier, shift) triple per unit; the shift
    is mostly chosen to bring the result into the int8 range so that every bit shows."""
    from mcutool.quant.fixedpoint import multiply_by_quantized_multiplier, single_rounding_multiply

    rng = np.random.default_rng(71)
    n = 50000
    acc = rng.integers(-(1 << 31), 1 << 31, n, dtype=np.int64)
    small = rng.integers(0, 3, n) == 0
    acc[small] = rng.integers(-70000, 70000, small.sum())
    acc[:6] = [-(1 << 31), (1 << 31) - 1, 0, -1, 1, -(1 << 30)]
    mult = rng.integers(1 << 30, 1 << 31, n, dtype=np.int64)
    mult[rng.integers(0, 50, n) == 0] = (1 << 31) - 1
    mult[rng.integers(0, 50, n) == 0] = 0
    neg = rng.integers(0, 50, n) == 0
    mult[neg] = rng.integers(-(1 << 31), 0, neg.sum())  # negative: the generic path
    mult[6], acc[6] = -(1 << 31), -(1 << 31)  # SaturatingRoundingDoublingHighMul's overflow case
    mag = np.abs(acc.astype(np.float64)) * np.abs(mult.astype(np.float64)) / 2.0**31 + 1.0
    shift = np.floor(-np.log2(mag)).astype(np.int64) + rng.integers(4, 9, n)
    wild = rng.integers(0, 8, n) == 0
    shift[wild] = rng.integers(-31, 8, wild.sum())  # saturating and wrapping (<< shift) cases
    mult, acc, shift = mult.astype(np.int32), acc.astype(np.int32), np.clip(shift, -31, 30).astype(np.int32)
    keep = ck.Keep()
    for single, f in ((False, multiply_by_quantized_multiplier), (True, single_rounding_multiply)):
        want = np.clip(f(acc, mult, shift).astype(np.int64), -128, 127).astype(np.int8)
        p = ck.FCParams(0, 0, -128, 127, keep.p32(mult), keep.p32(shift), int(single),
                        keep.p8(np.ones(n, np.int8)), keep.p32(acc), n, 1)
        out = np.zeros(n, np.int8)
        lib.mcu_fully_connected(C.byref(p), ck.ptr8(np.zeros(1, np.int8)), 1, ck.ptr8(out))
        np.testing.assert_array_equal(out, want, err_msg=f"single rounding: {single}")
        assert len(np.unique(want)) == 256 and (np.abs(want) < 100).mean() > 0.7


# ---- the Cortex-M0+ build, emulated ----------------------------------------------------------


@pytest.fixture(scope="module")
def arm(tmp_path_factory):
    why = ck.arm_toolchain_missing()
    if why:
        pytest.skip(f"no Cortex-M0+ emulation: {why}")
    return ck.ArmKernels(tmp_path_factory.mktemp("m0plus"))


def _dual(lib, arm, name, arrays, *args):
    """Run a kernel on the emulated M0+ and on the host from the same bytes; every array
    involved must end up identical."""
    arm.reset()
    arm.place(*arrays)
    arm.call(name, *args)
    getattr(lib, name)(*[C.byref(a) if isinstance(a, C.Structure) else a for a in args])
    for a in arrays:
        np.testing.assert_array_equal(arm.fetch(a), a, err_msg=name)


def _conv_scenario(rng, depthwise, extreme, sensitive):
    op, x, w, b, out_shape = random_conv_op(rng, depthwise, extreme, sensitive=sensitive)
    keep = ck.Keep()
    params = ck.conv_params(op.data, w, b, keep)
    (dh, dw), (_, OH, OW, Co) = op.data["dilation"], out_shape
    rc = _in_rows_cols(op.data, (w.shape[1] - 1) * dh + 1, (w.shape[2] - 1) * dw + 1, x.shape[1], x.shape[2])
    win = random_windows(rng, OH, OW, 1)[int(rng.integers(0, 2))]
    ylo, yhi, xlo, xhi = rc(*win)
    ib = ck.random_buffer(rng, x.shape[1], x.shape[2], x.shape[3], ylo, yhi, xlo, xhi)
    ib.put(x[0], ylo, yhi, xlo, xhi)
    ob = out_buffer(rng, (OH, OW, Co), *win)
    return op, x, w, b, out_shape, params, keep, ib, ob, win


def test_m0plus_build_matches_host(lib, arm):
    """The same kernels built for the RP2040's core (Thumb-1, the inline-assembly dot
    product, fixedpoint.h's ARMv6-M 32 x 32 -> 64 multiply) produce the host's bytes."""
    rng = np.random.default_rng(88)
    for it in range(100):
        for depthwise in (False, True):
            _, _, w, _, _, params, keep, ib, ob, win = _conv_scenario(rng, depthwise, it % 4 == 3, it % 4 == 1)
            fns = ["mcu_depthwise"] if depthwise else ["mcu_conv2d", "mcu_pointwise"]
            for fn in fns:
                _dual(lib, arm, fn, [*keep.arrays, ib.mem, ob.mem], params, ib.view, ob.view, *win)
    for it in range(60):  # 1x1 convs with every channel-block remainder
        ci, co, W = int(rng.integers(1, 70)), int(rng.integers(1, 13)), int(rng.integers(1, 6))
        w = rand_int8(rng, (co, 1, 1, ci), it % 3 == 2)
        mult, shift = _multipliers(rng, co, 74 * 74 * math.sqrt(ci), it % 3 == 2)
        d = {"pad": (0, 0, 0, 0), "stride": (1, 1), "dilation": (1, 1), "multiplier": mult, "shift": shift,
             **_epilogue(rng, it % 3 == 2)}
        keep = ck.Keep()
        params = ck.conv_params(d, w, _bias(rng, co, it % 3 == 2), keep)
        ib = ck.random_buffer(rng, 2, W, ci, 0, 2, 0, W)
        ob = out_buffer(rng, (2, W, co), 0, 2, 0, W)
        _dual(lib, arm, "mcu_pointwise", [*keep.arrays, ib.mem, ob.mem], params, ib.view, ob.view, 0, 2, 0, W)
    for it in range(40):  # in place (stride 1 and 2), and fused with a 1x1 conv
        op, x, w, b, out_shape, params, keep, ib, ob, win = _conv_scenario(rng, True, it % 4 == 3, it % 4 == 1)
        _, H, W, Cc = x.shape
        if op.data["depth_multiplier"] == 1 and out_shape[1] * out_shape[2] <= H * W:
            buf, plane = x.reshape(-1).copy(), np.zeros(out_shape[1] * out_shape[2], np.int8)
            io = ck.View(ck.ptr8(buf), 0, W * Cc, 0, H, W, Cc)
            _dual(lib, arm, "mcu_depthwise_inplace", [*keep.arrays, buf, plane], params, io, *out_shape[1:3],
                  ck.ptr8(plane))
        mid_c, co = out_shape[3], int(rng.integers(1, 11))
        pw = ck.conv_params({"pad": (0, 0, 0, 0), "stride": (1, 1), "dilation": (1, 1),
                             "multiplier": _multipliers(rng, co, 8000)[0], "shift": _multipliers(rng, co, 8000)[1],
                             **_epilogue(rng)}, rand_int8(rng, (co, 1, 1, mid_c)), _bias(rng, co), keep)
        ob2 = out_buffer(rng, (out_shape[1], out_shape[2], co), *win)
        pixel = np.zeros(mid_c, np.int8)
        _dual(lib, arm, "mcu_depthwise_pointwise", [*keep.arrays, ib.mem, ob2.mem, pixel], params, pw, ib.view,
              mid_c, ob2.view, ck.ptr8(pixel), *win)
    # every generated case's ops (pools, elementwise, FC, softmax, MEAN, shape ops ...)
    for case in CASES:
        g = graph_of(case)
        for op in g.ops:
            for name, arrays, args in _op_calls(g, op, rng):
                _dual(lib, arm, name, arrays, *args)


def _slow_dead_case(rng, ci, co):
    """A 1x1 conv whose channels mix the fast rescale (shift 0 to -16) with slow ones (shift
    1 to 30, below -16: rq_words' slow mark), some of either dead (zero weights and bias:
    every accumulator 0, which the M0+ asm keeps on its fast path)."""
    shifts = rng.integers(-16, 1, co).astype(np.int32)
    slow = rng.integers(0, 5, co) == 0  # sparse: a block's only slow channel, at any position
    shifts[slow] = rng.choice([1, 3, 7, 30, -17, -20, -31], slow.sum())
    mult = rng.integers(1 << 30, 1 << 31, co, dtype=np.int64).astype(np.int32)
    w = rand_int8(rng, (co, 1, 1, ci))
    b = rng.integers(-3000, 3000, co).astype(np.int32)
    dead = rng.integers(0, 3, co) == 0
    w[dead], b[dead] = 0, 0
    d = {"pad": (0, 0, 0, 0), "stride": (1, 1), "dilation": (1, 1), "multiplier": mult, "shift": shifts,
         "input_offset": int(rng.integers(-127, 129)), "output_offset": 0, "act_min": -128, "act_max": 127}
    return d, w, b


def test_slow_and_dead_channels(lib, arm):
    """Slow channels (the record's slow mark) and dead ones (acc always 0) on every path that
    rescales a conv: host kernels against the reference, the M0+ build against the host."""
    rng = np.random.default_rng(5)
    for it in range(150):
        ci, co, H, W = int(rng.integers(1, 40)), int(rng.integers(4, 25)), 2, int(rng.integers(1, 6))
        d, w, b = _slow_dead_case(rng, ci, co)
        op = SimpleNamespace(data=d, kind="CONV_2D")
        x = rand_int8(rng, (1, H, W, ci))
        want = eval_conv_2d(op, [x, w, b], (1, H, W, co))[0]
        keep = ck.Keep()
        params = ck.conv_params(d, w, b, keep)
        for fn in ("mcu_pointwise", "mcu_conv2d"):
            ib = ck.random_buffer(rng, H, W, ci, 0, H, 0, W)
            ib.put(x[0], 0, H, 0, W)
            ob = out_buffer(rng, (H, W, co), 0, H, 0, W)
            getattr(lib, fn)(C.byref(params), C.byref(ib.view), C.byref(ob.view), 0, H, 0, W)
            check_window(ob, want, 0, H, 0, W, fn)
            _dual(lib, arm, fn, [*keep.arrays, ib.mem, ob.mem], params, ib.view, ob.view, 0, H, 0, W)


def _op_calls(g, op, rng):
    """(kernel, arrays, arguments) exercising an op of a generated case."""
    k, d = op.kind, op.data
    acts = [g.t(i) for i in op.inputs if i >= 0 and not g.t(i).is_const]
    y = g.t(op.outputs[0])
    if k in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        _, H, W, Cc = acts[0].shape
        _, OH, OW, _ = y.shape
        ib = ck.random_buffer(rng, H, W, Cc, 0, H, 0, W)
        ob = out_buffer(rng, (OH, OW, Cc), 0, OH, 0, OW)
        yield "mcu_pool", [ib.mem, ob.mem], (ck.pool_params(d, k == "MAX_POOL_2D"), ib.view, ob.view, 0, OH, 0, OW)
    elif k in ("ADD", "MUL", "LOGISTIC", "HARD_SWISH") or (k == "QUANTIZE" and d["mode"] == "requant"):
        structs = {"ADD": ck.AddParams, "MUL": ck.MulParams, "LOGISTIC": ck.LogisticParams,
                   "HARD_SWISH": ck.HardSwishParams}
        p = ck.fields(structs[k], d) if k in structs else \
            ck.RequantParams(d["input_zero_point"], d["zero_point"], d["multiplier"], d["shift"])
        if all(t.shape == y.shape for t in acts) and len(y.shape) == 4:
            _, H, W, Cc = y.shape
            ins = [ck.random_buffer(rng, H, W, Cc, 0, H, 0, W) for _ in acts]
            ob = out_buffer(rng, (H, W, Cc), 0, H, 0, W)
            name = {"ADD": "mcu_add", "MUL": "mcu_mul", "LOGISTIC": "mcu_logistic", "HARD_SWISH": "mcu_hard_swish",
                    "QUANTIZE": "mcu_requantize"}[k]
            yield name, [*[b.mem for b in ins], ob.mem], (p, *[b.view for b in ins], ob.view, 0, H, 0, W)
        if k in ("ADD", "MUL"):
            pad4 = lambda s: np.array((1,) * (4 - len(s)) + tuple(s), np.int32)  # noqa: E731
            a, b = rand_int8(rng, acts[0].shape).reshape(-1), rand_int8(rng, acts[1].shape).reshape(-1)
            sa, sb, so = pad4(acts[0].shape), pad4(acts[1].shape), pad4(y.shape)
            out = np.zeros(y.size, np.int8)
            yield f"mcu_{k.lower()}_broadcast", [a, b, out, sa, sb, so], \
                (p, ck.ptr8(a), ck.ptr32(sa), ck.ptr8(b), ck.ptr32(sb), ck.ptr8(out), ck.ptr32(so))
    elif k == "FULLY_CONNECTED":
        w = g.t(op.inputs[1]).data
        bias = g.t(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        x = rand_int8(rng, acts[0].shape).reshape(-1)
        out = np.zeros(y.size, np.int8)
        for single in (0, 1):
            keep = ck.Keep()
            p = ck.FCParams(d["input_offset"], d["output_offset"], d["act_min"], d["act_max"],
                            keep.p32(d["multiplier"]), keep.p32(d["shift"]), single, keep.p8(w), keep.p32(bias),
                            w.shape[0], w.shape[1])
            yield "mcu_fully_connected", [*keep.arrays, x, out], (p, ck.ptr8(x), x.size // w.shape[1], ck.ptr8(out))
    elif k == "SOFTMAX":
        x = rand_int8(rng, acts[0].shape).reshape(-1)
        depth = acts[0].shape[-1]
        for i16 in (0, 1):
            out = np.zeros(x.size, np.int16 if i16 else np.int8)
            p = ck.SoftmaxParams(d["input_multiplier"], d["input_left_shift"], d["diff_min"], i16)
            yield "mcu_softmax", [x, out], (p, ck.ptr8(x), x.size // depth, depth, out.ctypes.data_as(C.c_void_p))
    elif k == "MEAN":
        x = rand_int8(rng, acts[0].shape).reshape(-1)
        rank = len(acts[0].shape)
        shape4 = np.array((1,) * (4 - rank) + tuple(acts[0].shape), np.int32)
        axes = [a + 4 - rank for a in d["axes"]] + [0] * (4 - len(d["axes"]))
        p = ck.MeanParams((C.c_int32 * 4)(*axes), len(d["axes"]), d["num_elements_in_axis"], d["input_zero_point"],
                          d["output_zero_point"], d["multiplier"], d["shift"], int(d["empty"]))
        out = np.zeros(y.size, np.int8)
        yield "mcu_mean", [x, shape4, out], (p, ck.ptr8(x), ck.ptr32(shape4), ck.ptr8(out))
    elif k == "RESIZE_NEAREST_NEIGHBOR":
        _, H, W, Cc = acts[0].shape
        _, OH, OW, _ = y.shape
        iy, ix = np.ascontiguousarray(d["in_y"], np.int32), np.ascontiguousarray(d["in_x"], np.int32)
        ib = ck.random_buffer(rng, H, W, Cc, 0, H, 0, W)
        ob = out_buffer(rng, (OH, OW, Cc), 0, OH, 0, OW)
        yield "mcu_resize_nearest", [iy, ix, ib.mem, ob.mem], (ck.ptr32(iy), ck.ptr32(ix), ib.view, ob.view)
    elif k in ("TRANSPOSE", "PAD"):
        x = rand_int8(rng, acts[0].shape).reshape(-1)
        shape = np.array(acts[0].shape, np.int32)
        out = np.zeros(y.size, np.int8)
        if k == "TRANSPOSE":
            perm = np.array(d["perm"], np.int32)
            yield "mcu_transpose", [perm, shape, x, out], (ck.ptr32(perm), len(perm), ck.ptr32(shape), ck.ptr8(x),
                                                          ck.ptr8(out))
        else:
            pads = np.array(d["paddings"], np.int32).reshape(-1, 2)
            yield "mcu_pad", [pads, shape, x, out], (ck.ptr32(pads), len(shape), ck.ptr32(shape), d["value"],
                                                    ck.ptr8(x), ck.ptr8(out))
    elif k in ("RESHAPE", "CONCATENATION"):
        x = rand_int8(rng, acts[0].shape).reshape(-1)
        out = np.zeros(x.size, np.int8)
        yield "mcu_copy", [x, out], (ck.ptr8(x), ck.ptr8(out), x.size)
