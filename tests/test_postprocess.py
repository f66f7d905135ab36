"""Post-processing on synthetic outputs: classification, YOLOv3 decoding and NMS, FOMO."""
import numpy as np
import pytest

from mcutool.post import decode, dequantize_outputs, summary
from mcutool.post.classify import classify
from mcutool.post.fomo import decode_fomo
from mcutool.post.yolo import decode_yolo3, nms
from mcutool.zoo import load_zoo
from mcutool.zoo.preprocess import Geometry, fit_box

YOLO = load_zoo()["mcunet_person_det"].post
FOMO = load_zoo()["fomo_mask_int8"].post
IDENT = Geometry(160, 128, 0, 0, 1, 1)


def _logit(p):
    return float(np.log(p / (1 - p)))


def _heads(fill=-10.0):
    return [np.full((1, 4, 5, 18), fill), np.full((1, 8, 10, 18), fill), np.full((1, 16, 20, 18), fill)]


def test_classify_softmax_and_probabilities():
    r = classify({"labels": ["no person", "person"], "softmax": True, "positive": "person"}, [np.array([[0.0, np.log(3)]])])
    assert r["label"] == "person" and r["positive"] and r["score"] == pytest.approx(0.75)
    r = classify({"labels": ["no person", "person"]}, [np.array([[0.8, 0.2]])])
    assert [t["label"] for t in r["top"]] == ["no person", "person"] and summary(r) == "no person (0.800)"


def test_yolo_one_anchor_decodes_to_its_box():
    h = _heads()
    # stride 16 head, cell (y=2, x=3), anchor 1 (62x45): centre offset sigmoid(0) = 0.5, size exp(0) = anchor
    h[1][0, 2, 3, 6:12] = [0, 0, 0, 0, _logit(0.9), _logit(0.8)]
    r = decode_yolo3(YOLO, h, IDENT)
    assert len(r["detections"]) == 1
    d = r["detections"][0]
    cx, cy = 3.5 * 16, 2.5 * 16
    assert d["label"] == "person" and d["score"] == pytest.approx(0.72, abs=1e-4)
    assert d["box"] == [cx - 31, cy - 22.5, cx + 31, cy + 22.5]


def test_yolo_threshold_and_clipping_to_the_source():
    h = _heads()
    h[0][0, 0, 0, 0:6] = [0, 0, 0, 0, _logit(0.5), _logit(0.5)]  # score 0.25 < 0.3: dropped
    assert decode_yolo3(YOLO, h, IDENT)["detections"] == []
    h[0][0, 0, 0, 4:6] = [_logit(0.9), _logit(0.9)]  # 116x90 box at (16, 16): clipped at 0
    g = Geometry(320, 256, 0, 0, 2, 2)
    assert decode_yolo3(YOLO, h, g)["detections"][0]["box"] == [0.0, 0.0, 2 * (16 + 58), 2 * (16 + 45)]


def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    b = np.array([[0, 0, 10, 10, 0.6, 0], [1, 1, 11, 11, 0.9, 0], [50, 50, 60, 60, 0.5, 0], [0, 0, 10, 10, 0.7, 1]])
    kept = nms(b, 0.45, 100)
    assert kept[:, 4].tolist() == [0.9, 0.7, 0.5]
    assert nms(b, 0.45, 1)[:, 4].tolist() == [0.9]


def test_fomo_merges_touching_cells_of_one_class():
    p = np.zeros((1, 12, 12, 3))
    p[..., 0] = 1.0
    for y, x, c, s in [(4, 6, 1, 0.95), (4, 7, 1, 0.99), (9, 1, 2, 0.85), (9, 2, 1, 0.9), (0, 0, 2, 0.79)]:
        p[0, y, x] = 0
        p[0, y, x, c] = s
    r = decode_fomo(FOMO, [p], Geometry(96, 96, 0, 0, 1, 1))
    got = [(d["label"], d["score"], d["x"], d["y"], len(d["cells"])) for d in r["detections"]]
    assert got == [("mask", 0.99, 56.0, 36.0, 2), ("mask", 0.9, 20.0, 76.0, 1), ("no mask", 0.85, 12.0, 76.0, 1)]
    assert summary(r).startswith("3 found: mask 0.99 at (56,36)")


def test_dequantize_outputs_uses_the_board_specs():
    spec = {"shape": [1, 2], "zero_point": -128, "scale_bits": 998244352, "bytes": 2}  # 1/256
    (o,) = dequantize_outputs([bytes([0x8F, 0x71])], [spec])  # -113, 113
    assert o.tolist() == [[15 / 256, 241 / 256]]
    r = decode(load_zoo()["person_detect"], [o], None)
    assert r["label"] == "person" and r["score"] == pytest.approx(0.941406)


def test_fit_box_crops_the_middle():
    assert fit_box(320, 240, 96, 96, "crop") == (40.0, 0.0, 280.0, 240.0)
    assert fit_box(100, 200, 160, 128, "crop") == (0.0, 60.0, 100.0, 140.0)
    assert fit_box(320, 240, 96, 96, "stretch") == (0.0, 0.0, 320.0, 240.0)
