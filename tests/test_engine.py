"""The C engine (CPython build of device/engine) against the numpy reference and TFLM."""
import zlib

import numpy as np
import pytest
from conftest import INT8_MODELS, random_inputs
from modelgen import CASES

from mcutool.image.format import pack
from mcutool.model import load_model
from mcutool.native import NativeRunner, engine
from mcutool.plan.assemble import layer_by_layer
from mcutool.plan.lower import lower
from mcutool.plan.patches import plan_patches
from mcutool.plan.planner import Objective, choose
from mcutool.plan.stream import max_split, plan_stream
from mcutool.quant.prepare import prepare_graph
from mcutool.ref.executor import run
from mcutool.tflite_import import parse_tflite

_engine = engine()


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x).reshape(y.shape), y)


def _plans(low):
    yield "layer", layer_by_layer(low)
    yield "layer-no-inplace", layer_by_layer(low, inplace=False)
    n = max_split(low)
    if n:
        yield "stream", plan_stream(low, n)
        yield "stream-half", plan_stream(low, max(1, n // 2), band=2, input_band=3)
        yield "stream-unfused", plan_stream(low, max(1, n // 2), fuse=False)


@pytest.mark.parametrize("name", INT8_MODELS)
def test_shared_models_every_strategy(models, name):
    g = load_model(models / f"{name}.tflite")
    low = lower(g)
    xs = [random_inputs(g, s) for s in (0, 1)]
    want = [run(g, x) for x in xs]
    plans = list(_plans(low))
    plans.append(("chosen", choose(g).plan))
    rec = choose(g, Objective(halo="recompute")).plan
    plans.append(("recompute", rec))
    for label, plan in plans:
        r = NativeRunner(pack(low.graph, plan))
        for x, w in zip(xs, want):
            _same(r(x), w)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_generated_case(case):
    _, factory = case
    g = prepare_graph(parse_tflite(factory(np.random.default_rng(0))))
    low = lower(g)
    xs = random_inputs(g, 21)
    want = run(g, xs)
    for label, plan in _plans(low):
        _same(NativeRunner(pack(low.graph, plan))(xs), want)


def test_patch_grids(models):
    g = load_model(models / "fomo_mask_int8.tflite")
    low = lower(g)
    xs = random_inputs(g, 3)
    want = run(g, xs)
    for split, grid in ((3, (2, 2)), (6, (3, 5)), (11, (4, 1))):
        _same(NativeRunner(pack(low.graph, plan_patches(low, split, *grid)))(xs), want)


def test_against_tflm_on_real_images(models):
    from mcutool.inputs import load_input
    from mcutool.refs import run_reference

    for name, img in (("person_detect", "no_person.bmp"), ("fomo_mask_int8", "face_mask.jpg"),
                      ("mcunet_person_det", "person_det.jpg")):
        path = models / f"{name}.tflite"
        g = load_model(path)
        x = load_input(str(models / "images" / img), g.t(g.inputs[0]), "image", g)
        want = run_reference("tflm", path.read_bytes(), [x], len(g.outputs))
        from mcutool.native import runner_for_graph

        _same(runner_for_graph(g)([x]), [w.reshape(g.t(t).shape) for w, t in zip(want, g.outputs, strict=True)])


def test_arena_too_small_and_badrandom_inputs(models):
    g = load_model(models / "person_detect.tflite")
    c = choose(g)
    m = _engine.Model(pack(c.lowered.graph, c.plan))
    x = random_inputs(g, 0)[0].tobytes()
    with pytest.raises(ValueError, match="arena too small"):
        m.invoke([x], arena=bytearray(m.arena_bytes - 4))
    with pytest.raises(ValueError, match="9216"):
        m.invoke([x[:100]])
    with pytest.raises(ValueError, match="takes 1 input"):
        m.invoke([x, x])
    assert m.invoke([x], arena=bytearray(m.arena_bytes)) == m.invoke([x])


@pytest.mark.parametrize("name", ["person_detect", "fomo_mask_int8"])
def test_engine_is_given_exactly_arena_bytes(models, name):
    """invoke() and the row-band API hand the engine exactly arena_bytes of a caller's arena
    (the glue compares the bytes after them once the run is done, and its own arena is a
    block of exactly arena_bytes, so ASan sees a byte past it)."""
    g = load_model(models / f"{name}.tflite")
    c = choose(g)
    m = _engine.Model(pack(c.lowered.graph, c.plan))
    xs = [np.asarray(v, np.int8).tobytes() for v in random_inputs(g, 1)]
    want = m.invoke(xs)
    big = bytearray(b"\x77" * (m.arena_bytes + 100))
    assert m.invoke(xs, arena=big) == want and big[m.arena_bytes:] == b"\x77" * 100
    big = bytearray(b"\x77" * (m.arena_bytes + 100))
    m.begin(big)
    for k, x in enumerate(xs):
        try:
            m.set_input(k, x)
        except ValueError:  # a streamed input comes in row bands
            pass
    need = m.need()
    while need is not None:
        k, r0, r1 = need
        row = m.inputs[k]["bytes"] // m.inputs[k]["shape"][1]
        if m.feed(k, r0, r1, xs[k][r0 * row : r1 * row]):
            break
        need = m.need()
    assert [bytes(m.output(k)) for k in range(len(want))] == want and big[m.arena_bytes:] == b"\x77" * 100


# ---- the loader, fuzzed ------------------------------------------------------------------


def _refresh_crcs(b: bytearray) -> bytearray:
    import struct

    struct.pack_into("<I", b, 16, zlib.crc32(bytes(b[96:])) & 0xFFFFFFFF)
    struct.pack_into("<I", b, 28, 0)
    struct.pack_into("<I", b, 28, zlib.crc32(bytes(b[:96])) & 0xFFFFFFFF)
    return b


def test_loader_statuses(models):
    g = load_model(models / "person_detect.tflite")
    c = choose(g)
    img = pack(c.lowered.graph, c.plan)
    assert _engine.load_status(img)[0] == 0
    assert _engine.load_status(b"")[0] == -2
    assert _engine.load_status(b"NOPE" + img[4:])[0] == -3
    assert _engine.load_status(img[:50])[0] == -2
    assert _engine.load_status(img[:-1])[0] == -2
    shifted = bytearray(len(img) + 1)
    shifted[1:] = img
    assert _engine.load_status(memoryview(shifted)[1:])[0] == -1  # a misaligned image
    b = bytearray(img)
    b[4] = 9
    assert _engine.load_status(bytes(b))[0] == -4
    b = bytearray(img)
    b[1000] ^= 1
    assert _engine.load_status(bytes(b))[0] == -7
    b = bytearray(img)
    b[24] ^= 1  # arena size, inside the header
    assert _engine.load_status(bytes(b))[0] == -6


# The loader fuzzed (random bytes, bits and truncations as well as field-aware edits) is
# tests/test_image_fuzz.py, with the fuzzer in tests/imagefuzz.py.
