"""The mcutool command as a user runs it: a real subprocess, real files."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

MCUTOOL = [sys.executable, "-m", "mcutool.cli"]


def mcutool(*args, cwd=None):
    return subprocess.run([*MCUTOOL, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_lists_commands():
    r = mcutool("--help")
    assert r.returncode == 0
    for cmd in ("inspect", "convert", "run", "verify"):
        assert cmd in r.stdout


def test_inspect_json_person_detect(models):
    r = mcutool("inspect", models / "person_detect.tflite", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["macs"] == 7157888
    assert d["layer_peak_bytes"] == 55296
    assert len(d["ops"]) == 31 and d["weight_bytes"] > 0
    assert {"index", "op", "inputs", "outputs", "macs", "weight_bytes", "activation_bytes"} <= set(d["ops"][0])


def test_inspect_text(models):
    r = mcutool("inspect", models / "fomo_mask_int8.tflite")
    assert r.returncode == 0 and "layer-by-layer peak 225,840 B" in r.stdout


@pytest.mark.parametrize("name,peak", [("mcunet_vww1", 161472), ("mcunet_person_det", 337024),
                                       ("fomo_mask_int8", 225840), ("mobilenet_v2_224_int8", 2451840)])
def test_inspect_layer_peaks_match_readme(models, name, peak):
    d = json.loads(mcutool("inspect", models / f"{name}.tflite", "--json").stdout)
    assert d["layer_peak_bytes"] == peak


def test_run_no_person_image(models):
    r = mcutool("run", models / "person_detect.tflite", "--input", models / "images" / "no_person.bmp",
                "--input-format", "image", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["outputs"] == [[77, -77]]
    assert d["top"][0]["index"] == 0 and d["top"][0]["label"] == "no person"  # the zoo's labels
    text = mcutool("run", models / "person_detect.tflite", "--input", models / "images" / "no_person.bmp").stdout
    assert "top: #0 no person 77 (0.801), #1 person -77 (0.199)" in text


def test_run_person_raw_bytes(models, tmp_path):
    from PIL import Image

    raw = tmp_path / "person.raw"
    raw.write_bytes(np.asarray(Image.open(models / "images" / "person.bmp")).astype(np.uint8).tobytes())
    assert raw.stat().st_size == 9216
    d = json.loads(mcutool("run", models / "person_detect.tflite", "--input", raw, "--input-format", "raw", "--json").stdout)
    assert d["outputs"] == [[-113, 113]]


def test_convert_then_run_image(models, tmp_path):
    out = tmp_path / "pd.mcu"
    r = mcutool("convert", models / "person_detect.tflite", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["image_bytes"] == out.stat().st_size and d["peak_sram_bytes"] > 0 and isinstance(d["crc32"], int)
    r = mcutool("run", out, "--input", models / "images" / "no_person.bmp", "--json")
    assert json.loads(r.stdout)["outputs"] == [[77, -77]]
    r = mcutool("inspect", out, "--json")
    assert json.loads(r.stdout)["macs"] == 7157888


def test_convert_budget(models, tmp_path):
    out = tmp_path / "x.mcu"
    r = mcutool("convert", models / "person_detect.tflite", "-o", out, "--sram-budget", 1000)
    assert r.returncode == 2 and "nothing written" in r.stderr and not out.exists()
    r = mcutool("convert", models / "person_detect.tflite", "-o", out, "--board", "rp2040", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["fits"] is True
    r = mcutool("convert", models / "person_detect.tflite", "-o", out, "--board", "nosuchboard")
    assert r.returncode == 2 and "unknown board 'nosuchboard'" in r.stderr and "rp2040" in r.stderr


def test_verify_json(models):
    r = mcutool("verify", models / "fomo_mask_int8.tflite", "--inputs", 2, "--input",
                models / "images" / "fomo_mask_demo.png", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["max_abs_diff"] == 0 and d["inputs"] == 3 and d["reference"] == "tflm"
    assert d["engines"] == ["ref", "ref-plan", "ref-image", "native"]
    assert d["ok"] is True and all(r["compared"] > 0 and not r["problems"] for r in d["results"].values())


@pytest.mark.parametrize("tamper,problem", [
    (lambda outs: outs[:-1], "3 outputs, the reference gives 2"),
    (lambda outs: outs + outs, "3 outputs, the reference gives 6"),
    (lambda outs: [outs[0][..., :-1], outs[1]], "elements, the reference gives"),
    (lambda outs: [], "no output element was compared"),
])
def test_verify_fails_when_outputs_do_not_line_up(models, monkeypatch, capsys, tamper, problem):
    """A reference that returns too few, too many or differently sized outputs (a stand-in
    for the real references, which the other verify tests run) is a failure, never a
    shorter comparison that looks bit-exact."""
    import mcutool.refs
    from mcutool.cli import main

    real = mcutool.refs.run_reference
    monkeypatch.setattr(mcutool.refs, "run_reference", lambda *a, **k: tamper(real(*a, **k)))
    assert main(["verify", str(models / "mcunet_person_det.tflite"), "--inputs", "1", "--engine", "ref"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and problem in out


# ---- bad input: one line, exit 2, nothing written --------------------------------------


def _one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("mcutool: error: ")
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in r.stderr


def test_missing_file(tmp_path):
    _one_line_error(mcutool("inspect", tmp_path / "nope.tflite"), "nope.tflite: no such file")


def test_damaged_image_is_not_called_tflite(models, tmp_path):
    out = tmp_path / "pd.mcu"
    assert mcutool("convert", models / "person_detect.tflite", "-o", out).returncode == 0
    data = out.read_bytes()
    out.write_bytes(b"XXXX" + data[4:])
    _one_line_error(mcutool("inspect", out), "pd.mcu: not an mcutool flash image")
    out.write_bytes(data[:1000])
    _one_line_error(mcutool("inspect", out), "pd.mcu: truncated")


def test_not_a_tflite(tmp_path):
    p = tmp_path / "notes.tflite"
    p.write_text("hello, this is not a model at all")
    _one_line_error(mcutool("inspect", p), "not a TFLite model")


@pytest.mark.parametrize("cut", [8, 100, 1000, 50000, 150000, 290000])
def test_truncated_tflite(models, tmp_path, cut):
    data = (models / "person_detect.tflite").read_bytes()
    p = tmp_path / "cut.tflite"
    p.write_bytes(data[:cut])
    out = tmp_path / "cut.mcu"
    r = mcutool("convert", p, "-o", out)
    _one_line_error(r, "cut.tflite")
    assert not out.exists()


def test_float_model_refused(models, tmp_path):
    out = tmp_path / "f.mcu"
    r = mcutool("convert", models / "vww_96_float.tflite", "-o", out)
    _one_line_error(r, "op 0 (CONV_2D)", "float32", "int8")
    assert not out.exists()


def test_unsupported_op(tmp_path):
    from modelgen import ModelBuilder

    b = ModelBuilder()
    x, y = b.tensor((1, 8), "int8", scale=0.1), b.tensor((1, 8), "int8", scale=0.1)
    z = b.tensor((1, 8), "int8", scale=0.1)
    b.op("RESHAPE", [x], [y], new_shape=[1, 8])
    b.op("TANH", [y], [z])
    p = tmp_path / "tanh.tflite"
    p.write_bytes(b.build([x], [z]))
    out = tmp_path / "tanh.mcu"
    _one_line_error(mcutool("convert", p, "-o", out), "op 1 (TANH) is not supported", "supported ops:", "CONV_2D")
    assert not out.exists()


@pytest.mark.parametrize("plot,needle", [
    ("memory.xyz", ".xyz is not one of them"),
    ("memory", "no extension is not one of them"),
    ("nodir/memory.png", "does not exist"),
    ("/proc/memory.png", "cannot write"),
])
def test_plot_path_errors(models, tmp_path, plot, needle):
    path = plot if plot.startswith("/") else tmp_path / plot
    _one_line_error(mcutool("plan", models / "person_detect.tflite", "--plot", path), needle)
    assert not (tmp_path / plot).exists()


def test_corrupt_image(models, tmp_path):
    out = tmp_path / "pd.mcu"
    assert mcutool("convert", models / "person_detect.tflite", "-o", out).returncode == 0
    data = bytearray(out.read_bytes())
    data[5000] ^= 0x40
    bad = tmp_path / "bad.mcu"
    bad.write_bytes(bytes(data))
    _one_line_error(mcutool("run", bad, "--input", models / "images" / "no_person.bmp"), "CRC32 mismatch")
    bad.write_bytes(out.read_bytes()[:-7])
    _one_line_error(mcutool("inspect", bad), "truncated")


def test_wrong_input_size(models, tmp_path):
    p = tmp_path / "in.raw"
    p.write_bytes(b"\0" * 100)
    _one_line_error(mcutool("run", models / "person_detect.tflite", "--input", p, "--input-format", "raw"),
                    "100 bytes", "9216")


def test_output_directory_missing(models, tmp_path):
    _one_line_error(mcutool("convert", models / "person_detect.tflite", "-o", tmp_path / "no" / "x.mcu"),
                    "does not exist")


def test_verify_needs_tflite(models, tmp_path):
    out = tmp_path / "pd.mcu"
    mcutool("convert", models / "person_detect.tflite", "-o", out)
    _one_line_error(mcutool("verify", out), "verify needs the .tflite")


# ---- plan, bench -----------------------------------------------------------------------


def test_plan_json_and_plot(models, tmp_path):
    png = tmp_path / "mem.png"
    r = mcutool("plan", models / "person_detect.tflite", "--json", "--plot", png)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for k in ("layer_peak_bytes", "peak_sram_bytes", "macs", "mac_overhead", "split", "patches", "halo", "fits"):
        assert k in d
    assert d["layer_peak_bytes"] == 55296 and d["peak_sram_bytes"] <= 21316 and d["mac_overhead"] <= 0.05
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_text_and_budget(models):
    r = mcutool("plan", models / "fomo_mask_int8.tflite", "--board", "esp32")
    assert r.returncode == 0, r.stderr
    assert "planned peak" in r.stdout and "fits" in r.stdout
    r = mcutool("plan", models / "fomo_mask_int8.tflite", "--halo", "recompute", "--max-overhead", "1", "--json")
    d = json.loads(r.stdout)
    assert d["mac_overhead"] <= 0.01


def test_convert_reports_the_plans_peak(models, tmp_path):
    out = tmp_path / "m.mcu"
    d = json.loads(mcutool("convert", models / "mcunet_vww1.tflite", "-o", out, "--json").stdout)
    p = json.loads(mcutool("plan", models / "mcunet_vww1.tflite", "--json").stdout)
    assert d["peak_sram_bytes"] == p["peak_sram_bytes"] and d["split"] == p["split"]
    r = mcutool("run", out, "--input", models / "images" / "person_crop.png", "--json")
    assert r.returncode == 0, r.stderr
    want = mcutool("run", models / "mcunet_vww1.tflite", "--input", models / "images" / "person_crop.png", "--json")
    assert json.loads(r.stdout)["outputs"] == json.loads(want.stdout)["outputs"]


def test_bench_memory(models):
    r = mcutool("bench", "--memory", "person_detect", "fomo_mask_int8", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["memory"]
    pd = rows[0]
    assert pd["model"] == "person_detect" and pd["tflm_arena_bytes"] == 85264
    assert pd["peak_sram_bytes"] <= 21316 and pd["ratio_tflm"] >= 4
    r = mcutool("bench", "--memory", "person_detect")
    assert "TFLM arena" in r.stdout and "person_detect" in r.stdout
    assert "TinyEngine: a published figure, not measured in this run" in r.stdout


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed; CI installs it")
def test_bench_engine_native_m0plus_bit_exact(models):
    r = mcutool("bench", "--engine", "native", "person_detect", "--repeat", "1", "--json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert "m0plus_error" not in row, row["m0plus_error"]  # the firmware build or the emulated run failed
    assert row["m0plus_bit_exact"] is True and row["m0plus_instructions_per_mac"] > 0
    r = mcutool("bench", "--engine", "native", "person_detect", "--repeat", "1")
    assert "bit-exact" in r.stdout and "published figure" in r.stdout and "CMSIS-NN" in r.stdout


def test_bench_says_why_m0plus_is_missing(models, monkeypatch):
    monkeypatch.setenv("MCUTOOL_ARM_CROSS", "no-such-cross-")
    r = mcutool("bench", "--engine", "native", "person_detect", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    assert "person_detect: Cortex-M0+ not measured: no-such-cross-gcc not found: install gcc-arm-none-eabi" in r.stdout
