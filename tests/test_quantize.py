"""Post-training int8 quantization (mcutool quantize): vww_96_float end to end, one float
model per op against its float outputs, and the error paths."""
import json
from functools import partial

import numpy as np
import pytest
from mcutool.cli import main
from mcutool.errors import McutoolError
from mcutool.quant.prepare import prepare_graph
from mcutool.quantize.float_exec import run_float
from mcutool.quantize.quantizer import SUPPORTED, Options, quantize
from mcutool.quantize.report import accuracy_report, int8_outputs
from mcutool.ref.executor import run
from mcutool.ref.quantize import affine_quantize
from mcutool.tflite_import import parse_tflite
from modelgen import ModelBuilder, float_model, run_litert_ref, run_tflm

SIDE = 96


# ---- calibration and evaluation images: the shared images and augmented variants --------


def _as_input(img):
    return (np.asarray(img, np.float32) / 255.0).reshape(1, SIDE, SIDE, 3)  # --input-range 0,1


def image_sets(models):
    """(calibration, evaluation): 11 images + 8 variants each; 20 other variants each, as
    `mcutool quantize-sets` writes them."""
    from mcutool.quantize.augment import image_sets as sets

    calib, evals = sets(str(models / "images"), SIDE)
    return np.stack([_as_input(i) for i in calib]), np.stack([_as_input(i) for i in evals])


@pytest.fixture(scope="module")
def vww(models):
    path = models / "vww_96_float.tflite"
    buf = path.read_bytes()
    calib, evals = image_sets(models)
    q, info = quantize(buf, calib, Options(progress=False))
    return {"path": path, "float": buf, "calib": calib, "eval": evals, "int8": q, "info": info}


def _int8_input(graph, x):
    t = graph.t(graph.inputs[0])
    return affine_quantize(x, t.quant.s, t.quant.zp).reshape(t.shape)


# ---- vww_96_float ---------------------------------------------------------------------


def test_vww_eval_set_is_disjoint_from_calibration(vww):
    calib = {x.tobytes() for x in vww["calib"]}
    assert len(vww["eval"]) >= 200 and not any(x.tobytes() in calib for x in vww["eval"])


def test_vww_bit_exact_in_litert_tflm_and_our_engines(vww):
    from mcutool.native import runner_for_graph

    q = vww["int8"]
    g_tflm = prepare_graph(parse_tflite(q), "tflm")
    g_litert = prepare_graph(parse_tflite(q), "litert")  # LiteRT's FC rounds once, TFLM's twice
    native = runner_for_graph(g_tflm)
    for x in vww["eval"][::22]:
        xs = [_int8_input(g_tflm, x)]
        ours = run(g_tflm, xs)
        np.testing.assert_array_equal(ours[0], run_tflm(q, xs)[0].reshape(ours[0].shape))
        np.testing.assert_array_equal(ours[0], native(xs)[0])
        np.testing.assert_array_equal(run(g_litert, xs)[0], run_litert_ref(q, xs)[0].reshape(ours[0].shape))


def test_vww_float_io_bit_exact(vww):
    q, _ = quantize(vww["float"], vww["calib"], Options(io="float", progress=False))
    g = prepare_graph(parse_tflite(q))
    assert [g.ops[0].kind, g.ops[-1].kind] == ["QUANTIZE", "DEQUANTIZE"]
    assert g.t(g.inputs[0]).dtype == g.t(g.outputs[0]).dtype == "float32"
    for x in vww["eval"][:2]:
        ours = run(g, [x])[0]
        np.testing.assert_array_equal(ours, run_tflm(q, [x])[0].reshape(ours.shape))
        np.testing.assert_array_equal(ours, run_litert_ref(q, [x])[0].reshape(ours.shape))


def test_vww_accuracy_against_float(vww):
    rep = accuracy_report(vww["float"], {"mcutool": vww["int8"]}, vww["eval"], progress=False)
    (row,) = rep["models"]["mcutool"]
    assert rep["inputs"] >= 200
    assert row["top1_agreement"] >= 0.98, row
    assert row["mean_cosine"] >= 0.99, row


def test_vww_weight_bytes_a_quarter_of_float(vww):
    info = vww["info"]
    assert abs(info["filter_bytes"] - info["float_filter_bytes"] / 4) <= 0.01 * info["float_filter_bytes"] / 4
    # Biases stay 4 bytes a value: TFLite's int8 spec makes them int32.
    biases = info["weight_bytes"] - info["filter_bytes"]
    assert biases == info["float_weight_bytes"] - info["float_filter_bytes"]


def test_vww_planned_peak_a_quarter_of_tflm_arena(vww):
    from mcutool.plan.planner import choose
    from mcutool.refs.tflm import tflm_arena

    peak = choose(prepare_graph(parse_tflite(vww["int8"]))).plan.peak_sram_bytes
    assert peak * 4 <= tflm_arena(vww["int8"])["total"]


@pytest.mark.parametrize("method", ["percentile", "mse"])
def test_vww_clipping_methods(vww, method):
    q, info = quantize(vww["float"], vww["calib"], Options(method=method, progress=False))
    assert info["method"] == method
    rep = accuracy_report(vww["float"], {"q": q}, vww["eval"][::4], progress=False)
    assert rep["models"]["q"][0]["mean_cosine"] >= 0.98


def test_float_executor_matches_litert(vww):
    from mcutool.refs.litert import litert_interpreter
    from mcutool.tflite_import import parse_tflite as parse

    ours = run_float(parse(vww["float"]), [vww["eval"][:4]])[0]
    it = litert_interpreter(vww["float"], reference=True)
    for x, o in zip(vww["eval"][:4], ours, strict=True):
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        np.testing.assert_allclose(o, it.get_tensor(it.get_output_details()[0]["index"]), atol=1e-4)


# ---- one float model per op, against its float outputs ---------------------------------

P = partial
OP_MODELS = {
    "conv": P(float_model, kind="CONV_2D"),
    "conv_relu6_s2": P(float_model, kind="CONV_2D", activation="RELU6", stride=(2, 2)),
    "conv_no_bias": P(float_model, kind="CONV_2D", bias=False),
    "depthwise_relu": P(float_model, kind="DEPTHWISE_CONV_2D", activation="RELU"),
    "depthwise_dm2_valid": P(float_model, kind="DEPTHWISE_CONV_2D", depth_multiplier=2, padding="VALID"),
    "fc": P(float_model, kind="FULLY_CONNECTED", in_shape=(1, 32), units=10),
    "fc_relu_4d": P(float_model, kind="FULLY_CONNECTED", activation="RELU", units=6),
    "add_residual": P(float_model, kind="ADD"),
    "add_const_relu": P(float_model, kind="ADD", shape2=(1, 1, 1, 4), const2=True, activation="RELU"),
    "mul_residual": P(float_model, kind="MUL"),
    "mul_const": P(float_model, kind="MUL", shape2=(4,), const2=True),
    "concat": P(float_model, kind="CONCATENATION", shape2=(1, 8, 8, 6)),
    "avgpool": P(float_model, kind="AVERAGE_POOL_2D"),
    "avgpool_same": P(float_model, kind="AVERAGE_POOL_2D", filter=(3, 3), stride=(2, 2), padding="SAME"),
    "maxpool": P(float_model, kind="MAX_POOL_2D"),
    "mean": P(float_model, kind="MEAN"),
    "pad": P(float_model, kind="PAD"),
    "reshape": P(float_model, kind="RESHAPE"),
    "transpose": P(float_model, kind="TRANSPOSE"),
    "resize_nn": P(float_model, kind="RESIZE_NEAREST_NEIGHBOR"),
    "softmax": P(float_model, kind="SOFTMAX", in_shape=(1, 10)),
    "logistic": P(float_model, kind="LOGISTIC"),
    "hard_swish": P(float_model, kind="HARD_SWISH"),
}


def _error_bound(fg, qg, x):
    """Largest output error int8 arithmetic may make on inputs within the calibrated
    ranges: each input's rounding (half a step) carried through the op's worst-case
    gain, weight rounding, and the output's own rounding and rescale (one step)."""
    op = next(o for o in fg.ops if o.outputs[0] in fg.outputs)
    q = {t.index: t.quant for t in qg.tensors if t.quant is not None}
    s_out = q[op.outputs[0]].s if op.kind not in ("SOFTMAX", "LOGISTIC") else 1 / 256
    values = {}
    run_float(fg, [x], lambda i, v: values.__setitem__(i, np.abs(v).max()))

    def err(i):  # an operand's error: its own rounding, plus a producing conv's (residual branch)
        prod = next((o for o in fg.ops if o.outputs[0] == i), None)
        e = q[i].s / 2 if i in q else 0.0
        return e + (_conv_err(fg, qg, prod, values) if prod is not None else 0.0)

    ins = [i for i in op.inputs if i >= 0 and fg.t(i).dtype == "float32" and i not in (
        op.inputs[1:] if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") else [])]
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return _conv_err(fg, qg, op, values) + s_out
    e = [err(i) for i in ins]
    if op.kind == "ADD":
        return e[0] + e[1] + s_out
    if op.kind == "MUL":
        a, b = (values[i] if not fg.t(i).is_const else np.abs(fg.t(i).data).max() for i in ins)
        return a * e[1] + b * e[0] + e[0] * e[1] + s_out
    if op.kind == "SOFTMAX":
        return op.params.beta * e[0] / 2 + 2 * s_out  # |dp/dz| sums to at most 1/2
    if op.kind == "LOGISTIC":
        return e[0] / 4 + 2 * s_out
    if op.kind == "HARD_SWISH":
        return 1.5 * e[0] + 2 * s_out
    return max(e) + s_out  # pooling, MEAN and data movement: no gain


def _conv_err(fg, qg, op, values):
    """Input rounding times the filter's L1 norm, weight rounding times the window's L1
    norm, bias rounding; the largest over output channels."""
    w = np.abs(fg.t(op.inputs[1]).data.astype(np.float64))
    qw = qg.t(op.inputs[1]).quant
    axis = 3 if op.kind == "DEPTHWISE_CONV_2D" else 0
    w = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    s_in = qg.t(op.inputs[0]).quant.s
    s_w = qw.scale.astype(np.float64)
    taps = w.shape[1]
    return float(np.max(s_in / 2 * w.sum(axis=1) + s_w / 2 * taps * values[op.inputs[0]] + s_in * s_w / 2))


@pytest.mark.parametrize("name", list(OP_MODELS))
def test_op_model_within_quantization_error(name):
    rng = np.random.default_rng(7)
    fbuf = OP_MODELS[name](rng)
    fg = parse_tflite(fbuf)
    shape = fg.t(fg.inputs[0]).shape
    calib = rng.standard_normal((64,) + shape).astype(np.float32)
    q, _ = quantize(fbuf, calib, Options(progress=False))
    qg = parse_tflite(q)
    # Inputs within the calibrated ranges, so the bound holds: the first calibration inputs.
    x = calib[:16]
    want = run_float(fg, [x])[0]
    got = int8_outputs(q, x, progress=False)[0]
    bound = _error_bound(fg, qg, x)
    err = float(np.max(np.abs(got.reshape(want.shape) - want)))
    assert err <= bound, (err, bound)
    f, g = want.reshape(len(x), -1), got.reshape(len(x), -1)
    cos = np.sum(f * g, 1) / np.maximum(np.linalg.norm(f, axis=1) * np.linalg.norm(g, axis=1), 1e-30)
    assert cos.mean() >= 0.99, cos.mean()
    # ... and the int8 model is bit-exact with TFLM and LiteRT's reference kernels.
    xs = [_int8_input(prepare_graph(parse_tflite(q)), calib[0])]
    for match, ref in (("tflm", run_tflm), ("litert", run_litert_ref)):
        ours = run(prepare_graph(parse_tflite(q), match), xs)[0]
        np.testing.assert_array_equal(ours, ref(q, xs)[0].reshape(ours.shape))


def test_supported_ops_all_have_a_model():
    kinds = {f.keywords["kind"] for f in OP_MODELS.values()}
    assert kinds == set(SUPPORTED)


# ---- errors ---------------------------------------------------------------------------


def _lstm_model():
    b = ModelBuilder()
    x = b.tensor((1, 8), "float32")
    y = b.tensor((1, 8), "float32")
    z = b.tensor((1, 8), "float32")
    b.op("LOGISTIC", [x], [y])
    b.op("LSTM", [y], [z])
    return b.build([x], [z])


def test_unsupported_op_one_line_error_names_op_and_supported_set():
    with pytest.raises(McutoolError) as e:
        quantize(_lstm_model(), np.zeros((4, 1, 8), np.float32), Options(progress=False))
    msg = str(e.value)
    assert "\n" not in msg and "op 1 (LSTM) is not supported" in msg
    assert all(k in msg for k in SUPPORTED)


def test_no_calibration_data_is_an_error():
    fbuf = float_model(np.random.default_rng(0), "CONV_2D")
    with pytest.raises(McutoolError, match="no calibration data"):
        quantize(fbuf, np.zeros((0, 1, 8, 8, 4), np.float32), Options(progress=False))


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys, models):
    lstm = tmp_path / "lstm.tflite"
    lstm.write_bytes(_lstm_model())
    np.save(tmp_path / "c.npy", np.zeros((4, 1, 8), np.float32))
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out.tflite"
    cases = [
        ([str(lstm), "--calibration", str(tmp_path / "c.npy")], "op 1 (LSTM) is not supported"),
        ([str(models / "vww_96_float.tflite"), "--calibration", str(empty)], "no images"),
        ([str(models / "vww_96_float.tflite"), "--calibration", str(tmp_path / "c.npy")], "does not hold inputs"),
        ([str(models / "vww_96_float.tflite"), "--calibration", str(models / "images")], "--input-range"),
        ([str(models / "person_detect.tflite"), "--calibration", str(tmp_path / "c.npy")], "already quantized"),
        ([str(models / "vww_96_float.tflite"), "--calibration", str(tmp_path / "c.npy"), "--percentile", "99.9"],
         "--percentile works with --method percentile, not --method minmax"),
    ]
    for argv, want in cases:
        assert main(["quantize", *argv, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert want in err and err.count("\n") == 1, err
        assert not out.exists()


def test_cli_quantize_sets_make_readmes_folders(tmp_path, capsys, models, vww):
    """README's example as written: quantize-sets, then quantize from its folders, gives
    the model the tests quantize from the same images."""
    calib, evals = tmp_path / "calib", tmp_path / "eval"
    assert main(["quantize-sets", str(models / "images"), "--calibration", str(calib), "--eval", str(evals),
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["calibration_images"] == len(list(calib.glob("*.png"))) == len(vww["calib"]) == 99
    assert rep["eval_images"] == len(list(evals.glob("*.png"))) == len(vww["eval"]) == 220
    out = tmp_path / "vww_int8.tflite"
    assert main(["quantize", str(vww["path"]), "--calibration", str(calib), "--input-range", "0,1", "-o", str(out),
                 "--eval", str(evals), "--json"]) == 0
    acc = json.loads(capsys.readouterr().out)["accuracy"]
    assert acc["inputs"] == 220
    assert main(["quantize-sets", str(models / "images"), "--calibration", str(calib)]) == 2  # never overwrites
    assert "exists and is not an empty folder" in capsys.readouterr().err


def test_cli_quantize_report_and_convert(tmp_path, capsys, models, vww):
    calib, evals = tmp_path / "calib.npy", tmp_path / "eval.npy"
    np.save(calib, vww["calib"][:24])
    np.save(evals, vww["eval"][:12])
    other = tmp_path / "other.tflite"
    other.write_bytes(vww["int8"])
    out = tmp_path / "vww_int8.tflite"
    argv = ["quantize", str(vww["path"]), "--calibration", str(calib), "-o", str(out), "--eval", str(evals),
            "--compare", str(other), "--json"]
    assert main(argv) == 0
    rep = json.loads(capsys.readouterr().out)
    assert out.exists() and rep["bytes"] == out.stat().st_size
    assert set(rep["accuracy"]["models"]) == {"vww_int8.tflite", "other.tflite"}
    assert rep["accuracy"]["inputs"] == 12
    mcu = tmp_path / "vww.mcu"
    assert main(["convert", str(vww["path"]), "-o", str(mcu), "--calibration", str(models / "images"),
                 "--input-range", "0,1", "--io", "float", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["image_bytes"] == mcu.stat().st_size
    assert main(["run", str(mcu), "--input", str(models / "images" / "person_crop.png"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["outputs"][0]) == 2
