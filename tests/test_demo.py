"""`mcutool demo` and `mcutool run-camera` against simulated boards. Every demo answer
must equal decoding the reference runtime's (TFLM's) outputs for the same picture."""
import json

import numpy as np
import pytest

from mcutool.cli import main
from mcutool.demo import SAMPLES, load_sample, run_demo
from mcutool.model import load_model
from mcutool.post import decode
from mcutool.ref.quantize import dequantize
from mcutool.refs.tflm import run_tflm
from mcutool.zoo import load_zoo
from mcutool.zoo.preprocess import prepare


@pytest.fixture(scope="module")
def demo(models, tmp_path_factory):
    import os

    os.environ["MCUTOOL_MODELS"] = str(models)
    return run_demo(out=str(tmp_path_factory.mktemp("demo")), progress=False)


def _reference(models, name, image, stored):
    """Decode TFLM's outputs for the picture, through the same post-processing."""
    entry = load_zoo()[name]
    path = models / entry.file
    g = load_model(str(path))
    t = g.t(g.inputs[0])
    quant = None
    if t.dtype == "float32":
        from mcutool.inputs import _float_input_quant

        quant = _float_input_quant(t, g)
    prep = prepare(load_sample(models / "images" / image, stored), entry, quant)
    outs = run_tflm(path.read_bytes(), [prep.x], len(g.outputs))
    floats = []
    for o, i in zip(outs, g.outputs, strict=True):
        q = g.t(i).quant
        floats.append(o.astype(np.float32) if o.dtype == np.float32
                      else dequantize(o, float(np.asarray(q.s).reshape(-1)[0]), int(np.asarray(q.zp).reshape(-1)[0])))
    return decode(entry, floats, prep.geom)


def test_every_sample_equals_the_reference_runtime(demo, models):
    assert [(s["model"], s["image"]) for s in demo["samples"]] == [(m, i) for m, i, _ in SAMPLES]
    for s, (name, image, stored) in zip(demo["samples"], SAMPLES):
        ref = _reference(models, name, image, stored)
        got = {k: s[k] for k in ref}
        assert got == ref, (name, image)


def test_person_detection_answers(demo):
    by = {(s["model"], s["image"]): s for s in demo["samples"]}
    assert by["person_detect", "person.bmp"]["label"] == "person"
    assert by["person_detect", "person.bmp"]["score"] == pytest.approx(241 / 256)  # TFLM's [-113, 113]
    assert by["person_detect", "no_person.bmp"]["label"] == "no person"
    assert by["person_detect", "no_person.bmp"]["score"] == pytest.approx(205 / 256)  # TFLM's [77, -77]
    assert by["mcunet_vww1", "person_crop.png"]["label"] == "person"
    assert by["mcunet_vww1", "no_person_crop.png"]["label"] == "no person"
    boxes = by["mcunet_person_det", "person_det.jpg"]["detections"]
    assert [d["label"] for d in boxes] == ["person", "person"]
    # two people side by side in a 1000x726 picture: one box on each half
    assert boxes[0]["box"][0] < 300 < boxes[0]["box"][2] and boxes[1]["box"][0] < 700 < boxes[1]["box"][2]
    masks = by["fomo_mask_int8", "masks_group.jpg"]["detections"]
    assert [d["label"] for d in masks] == ["mask"]


def test_memory_story_and_images(demo):
    rows = {m["model"]: m for m in demo["memory"]}
    assert set(rows) == {"person_detect", "mcunet_vww1", "mcunet_person_det", "fomo_mask_int8"}
    assert rows["person_detect"]["tflm_arena_bytes"] == 85264  # the shared README's figure
    for m in rows.values():
        assert m["peak_sram_bytes"] == m["board_arena_bytes"] < m["tflm_arena_bytes"]
    from PIL import Image

    for s in demo["samples"]:
        assert Image.open(s["annotated"]).mode == "RGB"


def test_demo_json_cli_one_model(capsys, models, tmp_path, monkeypatch):
    monkeypatch.setenv("MCUTOOL_MODELS", str(models))
    assert main(["demo", "--model", "person_detect", "--json", "--out", str(tmp_path)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [s["label"] for s in d["samples"]] == ["person", "no person"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no_person.person_detect.png", "person.person_detect.png"]


@pytest.fixture(scope="module")
def fomo_board(models):
    from mcutool.link.sim import SimBoard, load_model_image

    b = SimBoard(load_model_image(str(models / "fomo_mask_int8.tflite")), model_name="fomo_mask_int8.tflite").start()
    yield b
    b.stop()


def test_run_camera_test_pattern_json(capsys, fomo_board):
    assert main(["run-camera", "--port", fomo_board.path, "--source", "test", "--frames", "12", "--headless",
                 "--json"]) == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [l["frame"] for l in lines] == list(range(12))
    for l in lines:
        assert l["latency_ms"] > 0 and l["fps"] > 0 and l["board_ms"] > 0 and isinstance(l["detections"], list)


def test_run_camera_folder_decodes_like_the_demo(capsys, fomo_board, models, tmp_path):
    import shutil

    shutil.copy(models / "images" / "masks_group.jpg", tmp_path / "a.jpg")  # a temporary copy, outside the repo
    assert main(["run-camera", "--port", fomo_board.path, "--source", str(tmp_path), "--json"]) == 0
    (line,) = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [d["label"] for d in line["detections"]] == ["mask"]


def test_run_camera_refuses_a_model_the_board_does_not_run(capsys, fomo_board):
    assert main(["run-camera", "--port", fomo_board.path, "--model", "person_detect", "--source", "test",
                 "--frames", "1", "--json"]) == 2
    err = capsys.readouterr().err
    assert "runs fomo_mask_int8, not person_detect" in err and len(err.strip().splitlines()) == 1


def test_run_camera_board_gone_is_one_line(capsys, models):
    from mcutool.link.sim import SimBoard, load_model_image

    b = SimBoard(load_model_image(str(models / "person_detect.tflite")), model_name="person_detect.tflite").start()
    path = b.path
    b.stop()
    rc = main(["run-camera", "--port", path, "--source", "test", "--frames", "3", "--json", "--timeout", "0.2"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("mcutool: error:") and len(err.strip().splitlines()) == 1
