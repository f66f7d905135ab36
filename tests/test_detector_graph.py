"""A detector's graph end to end: the shape of AIZOO's face-mask detector (many-input
CONCATENATION, RESHAPE to [1, N, k], LOGISTIC on a long vector, two outputs).

The C engine once refused such a model after the planner had accepted it ("op parameters
out of range", status -11): its LOGISTIC runs on a rank-3 tensor. Here it runs in every
engine, bit-exact with TFLM: the numpy reference, the C engine on the host under every
plan, the C engine on an emulated Cortex-M0+, and through `mcutool convert` / `verify`.
"""
import subprocess
import sys

import numpy as np
import pytest
from conftest import random_inputs
from modelgen import face_mask_detector, run_litert_ref, run_tflm

from mcutool.cli import main
from mcutool.emu import build, run as emu_run, toolchain
from mcutool.image.format import pack
from mcutool.native import NativeRunner
from mcutool.plan.assemble import layer_by_layer
from mcutool.plan.lower import lower
from mcutool.plan.planner import choose
from mcutool.plan.stream import max_split, plan_stream
from mcutool.quant.prepare import prepare_graph
from mcutool.quantize.quantizer import Options, quantize
from mcutool.ref.executor import run
from mcutool.tflite_import import parse_tflite


def _check(got, want):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(g).reshape(w.shape), w)


@pytest.fixture(scope="module")
def detector():
    """The int8 model as `mcutool quantize` makes it from the float one (the issue's path)."""
    rng = np.random.default_rng(0)
    fm = face_mask_detector(rng, dtype="float32")
    calib = rng.uniform(-1, 1, (16, 1, 32, 32, 3)).astype(np.float32)
    q, _ = quantize(fm, calib, Options(progress=False))
    return q


def test_graph_has_the_detector_shape(detector):
    g = parse_tflite(detector)
    kinds = [o.kind for o in g.ops]
    assert kinds.count("CONCATENATION") == 2 and all(len(o.inputs) == 5 for o in g.ops if o.kind == "CONCATENATION")
    assert kinds.count("LOGISTIC") == 5 and kinds.count("RESHAPE") == 10
    assert [g.t(i).shape for i in g.outputs] == [(1, 682, 4), (1, 682, 2)]
    assert all(len(g.t(o.inputs[0]).shape) == 3 for o in g.ops if o.kind == "LOGISTIC")


@pytest.mark.parametrize("seed", [1, 2])
def test_reference_bit_exact_with_tflm_and_litert(detector, seed):
    g = prepare_graph(parse_tflite(detector))
    xs = random_inputs(g, seed)
    _check(run(g, xs), run_tflm(detector, xs))
    _check(run(prepare_graph(parse_tflite(detector), "litert"), xs), run_litert_ref(detector, xs))


def test_native_engine_every_plan_bit_exact_with_tflm(detector):
    g = prepare_graph(parse_tflite(detector))
    low = lower(g)
    plans = {"chosen": choose(g).plan, "layer": layer_by_layer(low), "layer-no-inplace": layer_by_layer(low, inplace=False)}
    n = max_split(low)
    if n:
        plans["stream"] = plan_stream(low, n)
    for seed in (1, 2):
        xs = random_inputs(g, seed)
        want = run_tflm(detector, xs)
        for label, plan in plans.items():
            _check(NativeRunner(pack(low.graph, plan))(xs), want)


@pytest.mark.skipif(toolchain() is None, reason="arm-none-eabi-gcc is not installed; CI installs it")
def test_m0plus_bit_exact_with_tflm(detector, tmp_path):
    g = prepare_graph(parse_tflite(detector))
    c = choose(g)
    assert c.plan.device_inputs == g.inputs and c.plan.device_outputs == g.outputs
    image = pack(c.lowered.graph, c.plan)
    fw = build("cortex-m0plus", "-Os", tmp_path)
    xs = random_inputs(g, 3)
    r = emu_run(image, [x.tobytes() for x in xs], fw)
    assert r.load_status == 0 and r.invoke_status == 0, (r.load_status, r.invoke_status)
    _check([np.frombuffer(o, np.int8) for o in r.outputs], run_tflm(detector, xs))


def test_native_long_outputs_bit_exact_with_tflm():
    """Closer to the real model's size: outputs [1, 9207, 4] and [1, 9207, 2], a LOGISTIC
    over 18,414 scores in one flat buffer."""
    model = face_mask_detector(np.random.default_rng(5), in_shape=(1, 96, 96, 3), anchors=3)
    g = prepare_graph(parse_tflite(model))
    assert [g.t(i).shape for i in g.outputs] == [(1, 9207, 4), (1, 9207, 2)]
    c = choose(g)
    xs = random_inputs(g, 4)
    _check(NativeRunner(pack(c.lowered.graph, c.plan))(xs), run_tflm(model, xs))


def test_convert_and_verify_native(detector, tmp_path, capsys):
    model = tmp_path / "detector.tflite"
    model.write_bytes(detector)
    assert main(["convert", str(model), "-o", str(tmp_path / "d.mcu")]) == 0
    assert main(["verify", str(model), "--engine", "native", "--inputs", "3"]) == 0
    out = capsys.readouterr().out
    assert "bit-exact" in out and "native" in out


def test_convert_refuses_what_the_engine_cannot_run(tmp_path):
    """A valid TFLite model the planner accepts but the engine cannot run (a stride past the
    engine's range): convert says which op, in one line, and writes nothing."""
    from modelgen import conv2d

    model = tmp_path / "stride65.tflite"
    model.write_bytes(conv2d(np.random.default_rng(0), in_shape=(1, 70, 70, 1), out_ch=2, kernel=(1, 1),
                             stride=(65, 65), padding="VALID"))
    out = tmp_path / "s.mcu"
    r = subprocess.run([sys.executable, "-m", "mcutool.cli", "convert", str(model), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "the engine cannot run this model as planned" in r.stderr and "op 0 (CONV_2D): stride (65, 65)" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("kind,shape2", [("ADD", (1, 1, 1, 4)), ("MUL", (4,))])
def test_constant_operand_runs_natively(kind, shape2):
    """An ADD or MUL with a constant operand (a quantized float model's): run whole, the
    engine reads the constant in place from DATA; bit-exact with TFLM."""
    from modelgen import float_model

    rng = np.random.default_rng(7)
    fm = float_model(rng, kind, shape2=shape2, const2=True)
    q, _ = quantize(fm, rng.standard_normal((64, 1, 8, 8, 4)).astype(np.float32), Options(progress=False))
    g = prepare_graph(parse_tflite(q))
    assert any(g.t(i).is_const for i in g.ops[0].inputs)
    for seed in (1, 2):
        xs = random_inputs(g, seed)
        _check(NativeRunner(pack(choose(g).lowered.graph, choose(g).plan))(xs), run_tflm(q, xs))
