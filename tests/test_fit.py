"""Images fit the boards' flash (issue 13, item 2): every shared model's image size, the
flash rule convert applies with --board, the larger-region RP2040 layout and the device
app's check that the firmware's filesystem leaves that region alone."""
import json
import sys
import types

import pytest

from mcutool import cli
from mcutool.boards import flash_misfit, load_board
from mcutool.flash.deploy import app_config
from mcutool.image.format import pack, unpack
from mcutool.model import load_model
from mcutool.plan.planner import choose

# Each shared model's image, against its int8 weights + int32 biases (all constants): the
# rq record (16 B per conv output channel) and the metadata are the rest. The bound is the
# measured ratio rounded up, so a regression of the packing shows here.
RATIO_BOUND = {"person_detect": 1.28, "mcunet_vww1": 1.28, "mcunet_person_det": 1.53, "fomo_mask_int8": 2.60,
               "mobilenet_v2_224_int8": 1.10}
# Which board's model region each must fit (docs/boards.md).
MUST_FIT = {"person_detect": "rp2040", "fomo_mask_int8": "rp2040", "mcunet_person_det": "rp2040",
            "mcunet_vww1": "rp2040-fs1m", "mobilenet_v2_224_int8": None}  # 3.9 MB: no board's region


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", sorted(RATIO_BOUND))
def test_image_size_against_weights(models, name):
    g = load_model(models / f"{name}.tflite")
    c = choose(g)
    image = pack(c.lowered.graph, c.plan)
    weights = sum(t.data.nbytes for t in c.lowered.graph.tensors if t.is_const)
    assert len(image) <= RATIO_BOUND[name] * weights, (len(image), weights, len(image) / weights)
    if MUST_FIT[name]:
        assert flash_misfit(len(image), load_board(MUST_FIT[name])) is None
    unpack(image)  # and it still reads back whole


def test_convert_board_checks_the_flash_region(models, tmp_path, capsys):
    """mcunet_vww1's image (~566 KB) outgrows the stock RP2040 region (288 KB): one line,
    nothing written; the 1 MB-filesystem layout holds it."""
    out = tmp_path / "vww1.mcu"
    code, _, err = run_cli(capsys, "convert", models / "mcunet_vww1.tflite", "-o", out, "--board", "rp2040")
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and "board rp2040's model region at 0x10058000 holds 294,912" in err
    assert "nothing written" in err
    code, stdout, _ = run_cli(capsys, "convert", models / "mcunet_vww1.tflite", "-o", out, "--board", "rp2040-fs1m",
                              "--json")
    rep = json.loads(stdout)
    assert code == 0 and out.stat().st_size == rep["image_bytes"]
    assert rep["model_region_bytes"] == 688_128 and rep["fits_flash"] is True
    code, stdout, _ = run_cli(capsys, "flash", out, "--board", "rp2040-fs1m", "--dry-run", "--json")
    assert code == 0 and json.loads(stdout)["fits"] is True


def test_readme_person_detect_on_rp2040(models, tmp_path, capsys):
    """README's own example: person_detect converted for the RP2040 fits its region."""
    out = tmp_path / "pd.mcu"
    code, stdout, _ = run_cli(capsys, "convert", models / "person_detect.tflite", "-o", out, "--board", "rp2040")
    assert code == 0 and "fits board rp2040's model region" in stdout
    code, stdout, _ = run_cli(capsys, "flash", out, "--board", "rp2040", "--dry-run", "--json")
    assert code == 0 and json.loads(stdout)["fits"] is True


def test_fs1m_layout_leaves_the_filesystem_room():
    stock, big = load_board("rp2040"), load_board("rp2040-fs1m")
    fl = big["flash"]
    assert fl["model_offset"] + fl["model_bytes"] == fl["filesystem_offset"]
    assert fl["filesystem_offset"] + fl["filesystem_bytes"] == big["flash_bytes"]
    assert app_config(stock)["model"]["fs_max"] == 1408 * 1024  # stock RPI_PICO's filesystem exactly
    assert app_config(big)["model"]["fs_max"] == 1024 * 1024


@pytest.mark.parametrize("fs_bytes, opens", [(1024 * 1024, True), (1408 * 1024, False)])
def test_app_refuses_a_firmware_whose_filesystem_overlaps(monkeypatch, fs_bytes, opens):
    """The device app under the rp2040-fs1m layout: a firmware whose filesystem is larger
    than the layout leaves room for is refused before the model is opened. `rp2`,
    `machine` and `mcunet` here are TEST DOUBLES (CPython has none of them; the real
    engine and app run under MicroPython in test_link and test_device_app)."""
    from mcutool.link.proto import app_module

    opened = []

    class Flash:
        def ioctl(self, op, arg):
            return {4: fs_bytes // 4096, 5: 4096}[op]

    class Model:
        def __init__(self, addr, length):
            opened.append((addr, length))

    monkeypatch.setitem(sys.modules, "rp2", types.SimpleNamespace(Flash=Flash))
    monkeypatch.setitem(sys.modules, "mcunet", types.SimpleNamespace(Model=Model))
    where = dict(app_config(load_board("rp2040-fs1m"))["model"], length=4096)
    model, note = app_module("mcuapp").open_model(where)
    if opens:
        assert isinstance(model, Model) and note is None and opened == [(0x10058000, 4096)]
    else:
        assert model is None and not opened
        assert f"filesystem is {1408 * 1024} bytes" in note and f"leaves it {1024 * 1024}" in note
