"""Every generated single-op model (tests/modelgen.py) runs bit-exact in the numpy reference."""
import numpy as np
import pytest
from modelgen import CASES, random_input, run_litert_ref, run_tflm, small_chain

from mcutool.errors import McutoolError
from mcutool.quant.prepare import prepare_graph
from mcutool.ref.executor import run
from mcutool.tflite_import import parse_tflite

CASE_IDS = [c[0] for c in CASES]


def _model(factory, seed=0):
    return factory(np.random.default_rng(seed))


def _prepared(model, match="tflm"):
    return prepare_graph(parse_tflite(model), match)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_case_bit_exact_with_tflm(case):
    _, factory = case
    model = _model(factory)
    graph = _prepared(model)
    rng = np.random.default_rng(123)
    for _ in range(3):
        xs = random_input(rng, model)
        want = run_tflm(model, xs)
        got = run(graph, xs)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w.reshape(g.shape))


def _litert_accepts(model):
    try:
        run_litert_ref(model, random_input(np.random.default_rng(0), model))
        return True
    except (RuntimeError, ValueError):
        return False


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_case_bit_exact_with_litert(case):
    name, factory = case
    model = _model(factory)
    if not _litert_accepts(model):
        pytest.skip(f"LiteRT refuses {name} (TFLM runs it; see test_modelgen.py)")
    graph = _prepared(model, "litert")
    rng = np.random.default_rng(321)
    for _ in range(3):
        xs = random_input(rng, model)
        want = run_litert_ref(model, xs)
        got = run(graph, xs)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w.reshape(g.shape))


@pytest.mark.parametrize("seed", range(5))
def test_small_chain_bit_exact(seed):
    model = small_chain(np.random.default_rng(seed))
    graph = _prepared(model)
    xs = random_input(np.random.default_rng(seed + 100), model)
    for g, w in zip(run(graph, xs), run_tflm(model, xs), strict=True):
        np.testing.assert_array_equal(g, w.reshape(g.shape))


def test_unsupported_op_names_op_index_and_supported_list():
    from modelgen import ModelBuilder

    b = ModelBuilder()
    x = b.tensor((1, 4), "float32")
    y = b.tensor((1, 4), "float32")
    z = b.tensor((1, 4), "float32")
    b.op("RELU", [x], [y])
    b.op("TANH", [y], [z])
    with pytest.raises(McutoolError) as e:
        parse_tflite(b.build([x], [z]))
    msg = str(e.value)
    assert "op 0 (RELU) is not supported" in msg and "CONV_2D" in msg and "SOFTMAX" in msg
