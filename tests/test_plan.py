"""Plans change memory, never a single output bit; and they reach the issue's SRAM bounds."""
import numpy as np
import pytest
from conftest import INT8_MODELS, random_inputs
from modelgen import CASES, small_chain

from mcutool.model import load_model
from mcutool.plan.arena import check_disjoint
from mcutool.plan.assemble import layer_by_layer
from mcutool.plan.lower import lower
from mcutool.plan.planner import Objective, choose
from mcutool.plan.stream import max_split, plan_stream
from mcutool.quant.prepare import prepare_graph
from mcutool.ref.executor import run
from mcutool.ref.plan_exec import PlanError, run_plan
from mcutool.tflite_import import parse_tflite

# Peak SRAM bounds of the planner issue (bytes), MAC overhead <= 5%.
BOUNDS = {
    "person_detect": 21316,
    "fomo_mask_int8": 39992,
    "mcunet_vww1": 56244,
    "mcunet_person_det": 96568,
    "mobilenet_v2_224_int8": 176128,
}


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _owned(plan):
    return [b for b in plan.buffers.values() if b.alias_of < 0]


@pytest.fixture(scope="module", params=INT8_MODELS)
def planned(request, models):
    g = load_model(models / f"{request.param}.tflite")
    return request.param, g, choose(g)


def test_plan_within_bound_and_overhead(planned):
    name, _, c = planned
    assert c.plan.peak_sram_bytes <= BOUNDS[name]
    assert c.plan.mac_overhead <= 0.05


@pytest.mark.parametrize("overhead", [1.0, 0.0])
def test_tight_overhead_keeps_bounds(models, overhead):
    """--max-overhead 1 (and even 0): cached halos keep every bound without extra MACs."""
    for name in INT8_MODELS:
        c = choose(load_model(models / f"{name}.tflite"), Objective(max_overhead=overhead / 100))
        assert c.plan.mac_overhead <= overhead / 100
        assert c.plan.peak_sram_bytes <= BOUNDS[name], name


def test_planned_outputs_bit_identical(planned):
    _, g, c = planned
    check_disjoint(_owned(c.plan))
    for seed in (0, 1):
        xs = random_inputs(g, seed)
        _same(run_plan(c.lowered.graph, c.plan, xs, poison_seed=seed), run(g, xs))


def test_layer_by_layer_plan_bit_identical_and_beats_tflm_activations(planned, models):
    from mcutool.refs.tflm import tflm_arena

    name, g, c = planned
    p = layer_by_layer(c.lowered)
    check_disjoint(_owned(p))
    xs = random_inputs(g, 5)
    _same(run_plan(c.lowered.graph, p, xs), run(g, xs))
    tflm = tflm_arena((models / f"{name}.tflite").read_bytes())
    assert p.peak_sram_bytes <= tflm["head"] < tflm["total"]


@pytest.mark.parametrize("name", ["person_detect", "fomo_mask_int8"])
def test_every_split_bit_identical(models, name):
    g = load_model(models / f"{name}.tflite")
    low = lower(g)
    xs = random_inputs(g, 3)
    want = run(g, xs)
    for split in range(1, max_split(low) + 1):
        for fuse in (True, False):
            p = plan_stream(low, split, fuse=fuse)
            check_disjoint(_owned(p))
            _same(run_plan(low.graph, p, xs, poison_seed=split), want)


@pytest.mark.parametrize("band,input_band", [(2, 3), (4, 1), (1, 8)])
def test_row_bands_bit_identical(models, band, input_band):
    g = load_model(models / "mcunet_vww1.tflite")
    low = lower(g)
    xs = random_inputs(g, 4)
    p = plan_stream(low, 14, band=band, input_band=input_band)
    _same(run_plan(low.graph, p, xs), run(g, xs))


def test_whole_input_plan_bit_identical(models):
    g = load_model(models / "fomo_mask_int8.tflite")
    low = lower(g)
    p = plan_stream(low, 10, stream_input=False)
    assert not p.streamed_input
    xs = random_inputs(g, 6)
    _same(run_plan(low.graph, p, xs), run(g, xs))


STREAMABLE = []
for _id, _f in CASES:
    _low = lower(prepare_graph(parse_tflite(_f(np.random.default_rng(0)))))
    if max_split(_low):
        STREAMABLE.append((_id, _f))


@pytest.mark.parametrize("case", STREAMABLE, ids=[c[0] for c in STREAMABLE])
def test_generated_cases_every_split(case):
    _, factory = case
    g = prepare_graph(parse_tflite(factory(np.random.default_rng(0))))
    low = lower(g)
    xs = random_inputs(g, 9)
    want = run(g, xs)
    _same(run_plan(low.graph, layer_by_layer(low), xs), want)
    for split in range(1, max_split(low) + 1):
        p = plan_stream(low, split)
        check_disjoint(_owned(p))
        _same(run_plan(low.graph, p, xs), want)


@pytest.mark.parametrize("seed", range(4))
def test_small_chain_every_split(seed):
    g = prepare_graph(parse_tflite(small_chain(np.random.default_rng(seed))))
    low = lower(g)
    assert low.folded_pads == 1
    xs = random_inputs(g, seed)
    want = run(g, xs)
    for split in range(1, max_split(low) + 1):
        _same(run_plan(low.graph, plan_stream(low, split), xs), want)


def test_poisoned_arena_catches_a_ring_one_row_short(models):
    """The checks are real: shrink one ring buffer by a row and the executor notices."""
    g = load_model(models / "person_detect.tflite")
    low = lower(g)
    p = plan_stream(low, 12)
    ring = next(b for b in p.buffers.values() if b.kind == "ring" and b.rows > 1)
    ring.rows -= 1
    with pytest.raises(PlanError, match="is not in its buffer"):
        run_plan(low.graph, p, random_inputs(g, 0))


def test_poisoned_arena_catches_overlapping_buffers(models):
    g = load_model(models / "person_detect.tflite")
    low = lower(g)
    p = plan_stream(low, 12)
    a, b = sorted((b for b in p.buffers.values() if b.kind == "ring" and b.alias_of < 0), key=lambda b: -b.size)[:2]
    b.offset = a.offset  # two live rings on the same bytes
    with pytest.raises(AssertionError):
        check_disjoint(_owned(p))
    try:
        out = run_plan(low.graph, p, random_inputs(g, 0))
    except PlanError:
        return
    assert not all(np.array_equal(x, y) for x, y in zip(out, run(g, random_inputs(g, 0))))


def test_lowering_moves_boundary_ops_to_host(models):
    low = lower(load_model(models / "mcunet_person_det.tflite"))
    assert [low.graph.ops[p].kind for p in low.pre] == ["QUANTIZE"]
    assert [low.graph.ops[p].kind for p in low.post] == ["DEQUANTIZE"] * 3
    assert low.folded_pads == 5
    assert all(low.graph.t(t).dtype == "int8" for t in low.device_inputs + low.device_outputs)
    low = lower(load_model(models / "mobilenet_v2_224_int8.tflite"))
    assert [low.graph.ops[p].kind for p in low.pre] == ["TRANSPOSE"]
    assert low.graph.t(low.device_inputs[0]).shape == (1, 224, 224, 3)
    assert low.folded_pads == 18


def test_budget_objective(models):
    g = load_model(models / "mcunet_vww1.tflite")
    c = choose(g, Objective(budget=64 * 1024))
    assert c.fits and c.plan.peak_sram_bytes <= 64 * 1024 and c.plan.mac_overhead == 0
    c = choose(g, Objective(budget=10_000))
    assert c.fits is False  # nothing fits: the smallest peak is returned, flagged


@pytest.mark.parametrize("name", ["person_detect", "mcunet_vww1", "mcunet_person_det", "fomo_mask_int8"])
def test_a_board_never_makes_the_plan_worse(models, name):
    """Among the plans with the fewest MACs that fit a board, the least SRAM: a board
    whose budget the unbudgeted plan fits gets that plan's peak (or less), never more."""
    from mcutool.boards import load_board

    g = load_model(models / f"{name}.tflite")
    free = choose(g).plan
    assert free.mac_overhead == 0
    for board in ("rp2040", "esp32"):
        c = choose(g, Objective(budget=load_board(board)["sram_budget"]))
        assert c.fits and c.plan.mac_overhead == 0
        assert c.plan.peak_sram_bytes <= free.peak_sram_bytes, (board, c.plan.peak_sram_bytes, free.peak_sram_bytes)


def test_recompute_plan_bit_identical(models):
    """--halo recompute: MCUNetV2 patches, every halo recomputed; outputs unchanged."""
    for name in INT8_MODELS:
        g = load_model(models / f"{name}.tflite")
        c = choose(g, Objective(halo="recompute"))
        assert c.plan.strategy in ("patch", "layer")
        assert c.plan.mac_overhead <= 0.05
        check_disjoint(_owned(c.plan))
        xs = random_inputs(g, 11)
        _same(run_plan(c.lowered.graph, c.plan, xs), run(g, xs))


@pytest.mark.parametrize("grid", [(2, 2), (3, 1), (1, 3), (4, 4), (3, 5)])
def test_patch_grids_bit_identical(models, grid):
    """Grids that do not divide the map, row-only and column-only grids, odd strides."""
    from mcutool.plan.patches import plan_patches

    g = load_model(models / "fomo_mask_int8.tflite")  # stride 2 on 96 -> 48 -> 24, asymmetric pads
    low = lower(g)
    xs = random_inputs(g, 12)
    want = run(g, xs)
    for split in (3, 6, 11):
        p = plan_patches(low, split, *grid)
        assert p.mac_overhead > 0 or grid in ((3, 1), (1, 3))
        check_disjoint(_owned(p))
        _same(run_plan(low.graph, p, xs), want)


def test_patches_inside_residual_blocks(models):
    """A split inside a residual block (TinyEngine's generated code gets this wrong): the
    stage has two tensors leaving it and is refused; every split the planner accepts is exact."""
    from mcutool.errors import McutoolError
    from mcutool.plan.patches import plan_patches

    g = load_model(models / "mcunet_vww1.tflite")
    low = lower(g)
    xs = random_inputs(g, 13)
    want = run(g, xs)
    refused = 0
    for split in range(1, 16):
        try:
            p = plan_patches(low, split, 2, 2)
        except McutoolError as e:
            assert "one output tensor" in str(e)
            refused += 1
            continue
        _same(run_plan(low.graph, p, xs), want)
    assert refused > 0
