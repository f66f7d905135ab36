"""The numpy reference is bit-exact with TFLM and LiteRT (BUILTIN_REF) on the real models."""
import numpy as np
import pytest
from conftest import INT8_MODELS

from mcutool.inputs import load_input
from mcutool.model import load_model
from mcutool.ref.executor import run
from mcutool.refs import run_reference
from mcutool.verify import random_input

SEEDS = [0, 1, 2]


def _check(graph, model_bytes, xs, reference):
    want = run_reference(reference, model_bytes, xs, len(graph.outputs))
    got = run(graph, xs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w.reshape(g.shape))


@pytest.mark.parametrize("reference", ["tflm", "litert"])
@pytest.mark.parametrize("name", INT8_MODELS)
def test_random_inputs_bit_exact(models, name, reference):
    path = models / f"{name}.tflite"
    graph = load_model(path, match=reference)
    model_bytes = path.read_bytes()
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        xs = [random_input(graph.t(i), graph, rng) for i in graph.inputs]
        _check(graph, model_bytes, xs, reference)


IMAGES = {
    "person_detect": ["no_person.bmp", "person.bmp", "person_crop.png", "face.jpg"],
    "fomo_mask_int8": ["fomo_mask_demo.png", "face_mask.jpg", "face_nomask.jpg", "masks_group.jpg"],
    "mcunet_vww1": ["person_crop.png", "no_person_crop.png"],
    "mcunet_person_det": ["person_det.jpg", "masks_group.jpg"],
    "mobilenet_v2_224_int8": ["person_det.jpg"],
}


@pytest.mark.parametrize("reference", ["tflm", "litert"])
@pytest.mark.parametrize("name", list(IMAGES))
def test_real_images_bit_exact(models, name, reference):
    path = models / f"{name}.tflite"
    graph = load_model(path, match=reference)
    for img in IMAGES[name]:
        x = load_input(str(models / "images" / img), graph.t(graph.inputs[0]), "image", graph)
        _check(graph, path.read_bytes(), [x], reference)


def test_person_detect_scores_match_tflm_figures(models):
    """The figures in shared/models/README.md, measured with TFLM."""
    from PIL import Image

    graph = load_model(models / "person_detect.tflite")
    t = graph.t(graph.inputs[0])
    no_person = load_input(str(models / "images" / "no_person.bmp"), t, "image")
    assert run(graph, [no_person])[0].tolist() == [[77, -77]]
    # person.bmp's pixel bytes are already int8: fed as they are, not as pixel - 128.
    raw = np.asarray(Image.open(models / "images" / "person.bmp")).astype(np.uint8).view(np.int8)
    assert run(graph, [raw.reshape(t.shape)])[0].tolist() == [[-113, 113]]


def test_float_model_is_refused_with_op_named(models):
    from mcutool.errors import McutoolError

    with pytest.raises(McutoolError, match=r"op 0 \(CONV_2D\).*float32.*int8"):
        load_model(models / "vww_96_float.tflite")


def test_every_truncation_errors_cleanly_or_reads_everything(models):
    """A cut file is refused with McutoolError, or (when only trailing padding is lost) reads
    back exactly the same constants: never a crash, never silently different weights."""
    from mcutool.errors import McutoolError
    from mcutool.tflite_import import parse_tflite

    data = (models / "fomo_mask_int8.tflite").read_bytes()
    full = parse_tflite(data)
    rng = np.random.default_rng(7)
    cuts = sorted(set(rng.integers(0, len(data), 150).tolist()) | {0, 3, 7, 8, len(data) - 1})
    for cut in cuts:
        try:
            g = parse_tflite(data[:cut])
        except McutoolError:
            continue
        for a, b in zip(full.tensors, g.tensors):
            assert (a.data is None) == (b.data is None)
            if a.data is not None:
                np.testing.assert_array_equal(a.data, b.data)
