"""The model zoo file, `mcutool models list/pull`, and downloads (from a local HTTP
server on 127.0.0.1 only: the tests never touch the internet)."""
import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from mcutool.cli import main
from mcutool.errors import McutoolError
from mcutool.zoo import load_zoo
from mcutool.zoo.pull import sha256_file

NAMES = ["person_detect", "mcunet_vww1", "mcunet_person_det", "fomo_mask_int8"]


def run_cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_zoo_has_the_four_models_with_their_facts():
    zoo = load_zoo()
    assert list(zoo) == NAMES
    assert {n: e.kind for n, e in zoo.items()} == {"person_detect": "classify", "mcunet_vww1": "classify",
                                                    "mcunet_person_det": "yolo3", "fomo_mask_int8": "fomo"}
    assert zoo["mcunet_person_det"].input.shape == [1, 128, 160, 3]
    assert zoo["fomo_mask_int8"].input.shape == [1, 96, 96, 1]
    det = zoo["mcunet_person_det"].post
    # the anchors and strides TinyEngine ships with the model (detection_config.json)
    assert det["strides"] == [32, 16, 8] and det["anchors"][2] == [[10, 13], [16, 30], [33, 23]]


def test_zoo_anchors_match_tinyengines_config(models):
    cfg = json.loads((models / "mcunet_person_det.json").read_text())
    det = load_zoo()["mcunet_person_det"].post
    for k, head in enumerate(["output1", "output2", "output3"]):
        assert cfg[head]["stride"] == det["strides"][k]
        assert cfg[head]["anchors"] == [v for a in det["anchors"][k] for v in a]


@pytest.mark.parametrize("name", NAMES)
def test_sha256_matches_the_shared_file(models, name):
    e = load_zoo()[name]
    assert sha256_file(models / e.file) == e.sha256


def test_models_list_json(capsys, models):
    rc, out, _ = run_cli(capsys, "models", "list", "--models-dir", models, "--json")
    assert rc == 0
    rows = {r["name"]: r for r in json.loads(out)["models"]}
    assert list(rows) == NAMES and all(r["path"] for r in rows.values())
    assert rows["mcunet_vww1"]["input"]["mapping"] == "float"


def test_pull_finds_the_local_copy_first(capsys, models, tmp_path, monkeypatch):
    monkeypatch.setenv("MCUTOOL_CACHE", str(tmp_path / "cache"))
    rc, out, _ = run_cli(capsys, "models", "pull", "fomo_mask_int8", "--models-dir", models, "--json")
    d = json.loads(out)
    assert rc == 0 and d["downloaded"] is False and d["path"] == str(models / "fomo_mask_int8.tflite")
    assert not (tmp_path / "cache").exists()


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _zoo_with_url(tmp_path, url, sha):
    src = load_zoo()["fomo_mask_int8"]
    z = tmp_path / "zoo.toml"
    z.write_text(f'[fomo_mask_int8]\nfile = "{src.file}"\nurl = "{url}"\nsha256 = "{sha}"\n'
                 'input = { size = [96, 96], colour = "grey", fit = "crop", mapping = "int8" }\n'
                 'post = { kind = "fomo", labels = ["background", "mask", "no mask"] }\n')
    return z


def test_pull_downloads_into_the_cache_and_checks_sha256(capsys, models, tmp_path, monkeypatch, http_root):
    root, base = http_root
    data = (models / "fomo_mask_int8.tflite").read_bytes()
    (root / "m.tflite").write_bytes(data)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MCUTOOL_CACHE", str(cache))
    monkeypatch.setenv("MCUTOOL_MODELS", str(tmp_path / "nothing-here"))
    z = _zoo_with_url(tmp_path, f"{base}/m.tflite", hashlib.sha256(data).hexdigest())
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, _ = run_cli(capsys, "models", "pull", "fomo_mask_int8", "--zoo", z, "--models-dir", empty, "--json")
    d = json.loads(out)
    assert rc == 0 and d["downloaded"] is True and d["bytes"] == len(data)
    assert (cache / "fomo_mask_int8.tflite").read_bytes() == data
    # a second pull finds the cached copy
    rc, out, _ = run_cli(capsys, "models", "pull", "fomo_mask_int8", "--zoo", z, "--models-dir", empty, "--json")
    assert json.loads(out)["downloaded"] is False


def test_pull_refuses_a_wrong_sha256_and_keeps_nothing(capsys, tmp_path, monkeypatch, http_root):
    root, base = http_root
    (root / "m.tflite").write_bytes(b"not the model")
    monkeypatch.setenv("MCUTOOL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MCUTOOL_MODELS", str(tmp_path / "nothing-here"))
    z = _zoo_with_url(tmp_path, f"{base}/m.tflite", "0" * 64)
    rc, _, err = run_cli(capsys, "models", "pull", "fomo_mask_int8", "--zoo", z)
    errs = [l for l in err.splitlines() if l.startswith("mcutool: error")]
    assert rc == 2 and len(errs) == 1 and "sha256" in errs[0]
    assert not list((tmp_path / "cache").glob("*"))
    rc, _, err = run_cli(capsys, "models", "pull", "fomo_mask_int8", "--zoo", _zoo_with_url(tmp_path, f"{base}/gone", "0" * 64))
    assert rc == 2 and "cannot download" in err


def test_demo_without_models_says_what_to_do(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MCUTOOL_MODELS", str(tmp_path))
    monkeypatch.setenv("MCUTOOL_CACHE", str(tmp_path / "cache"))
    rc, out, err = run_cli(capsys, "demo", "--out", tmp_path / "o")
    assert rc == 2 and out == ""
    assert "mcutool models pull person_detect" in err and "MCUTOOL_MODELS" in err


def test_unknown_model_is_one_line():
    with pytest.raises(McutoolError, match="models list"):
        from mcutool.zoo import get_entry

        get_entry("nope")
