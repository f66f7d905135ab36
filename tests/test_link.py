"""The device app with the real C engine on a simulated board (`mcutool sim`), driven over
a pty through pyserial: results bit-exact with the reference, and a damaged line never
yields a wrong result."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from linkfaults import Faults
from mcutool.errors import McutoolError
from mcutool.link.client import Link, LinkError
from mcutool.link.proto import P
from mcutool.link.sim import SimBoard, load_model_image

MCUTOOL = [sys.executable, "-m", "mcutool.cli"]


def run_cli(*args, timeout=120):
    return subprocess.run(MCUTOOL + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def sim_process(models):
    """`mcutool sim --json` as a user starts it; yields a function serving a given model."""
    procs = []

    def start(model, *extra):
        p = subprocess.Popen(MCUTOOL + ["sim", "--model", str(model), "--json", *extra], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        procs.append(p)
        line = p.stdout.readline()
        assert line, p.stderr.read()
        return json.loads(line)["port"]

    yield start
    for p in procs:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0


def test_sim_and_run_port_person_detect(models, sim_process, tmp_path):
    port = sim_process(models / "person_detect.tflite")
    r = run_cli("run", "--port", port, "--input", models / "images" / "no_person.bmp", "--input-format", "image",
                "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["outputs"] == [[77, -77]] and rep["model"] == "person_detect" and rep["engine"] == "board"
    assert set(rep) >= {"model", "engine", "outputs", "shapes", "top", "time_us", "arena_bytes"}
    assert [d["label"] for d in rep["top"]] == ["no person", "person"]  # the zoo knows the board's model
    raw = tmp_path / "person.raw"
    raw.write_bytes(np.asarray(Image.open(models / "images" / "person.bmp")).astype(np.uint8).tobytes())
    r = run_cli("run", "--port", port, "--input", raw, "--input-format", "raw", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["outputs"] == [[-113, 113]]
    r = run_cli("info", "--port", port, "--json")
    info = json.loads(r.stdout)
    assert info["model"] == "person_detect" and info["arena_size"] == 15416 and info["streamed"] is True


def test_fomo_on_its_images_equals_the_reference(models, sim_process):
    from mcutool.inputs import load_input
    from mcutool.model import load_model
    from mcutool.refs.tflm import run_tflm

    model = models / "fomo_mask_int8.tflite"
    graph = load_model(str(model))
    port = sim_process(model)
    for name in ("masks_group.jpg", "face_mask.jpg", "face_nomask.jpg", "face.jpg"):
        img = models / "images" / name
        x = load_input(str(img), graph.t(graph.inputs[0]), "image", graph)
        want = run_tflm(model.read_bytes(), [x], 1)[0]
        r = run_cli("run", "--port", port, "--input", img, "--input-format", "image", "--json")
        assert r.returncode == 0, r.stderr
        got = np.array(json.loads(r.stdout)["outputs"][0], np.int8)
        assert np.array_equal(got, want.reshape(-1)), name


def test_outputs_larger_than_a_frame_and_a_small_receive_buffer(models):
    """mcunet_person_det's 3 heads (7,560 B) come back in several RESULT frames; a board
    with a 1 KB receive buffer gets 1 KB frames."""
    from mcutool.native import NativeRunner

    image = load_model_image(str(models / "mcunet_person_det.tflite"))
    runner = NativeRunner(image)
    rng = np.random.default_rng(0)
    with SimBoard(image, max_payload=1024) as b, Link(b.path, timeout=2.0) as link:
        info = link.hello()
        assert link.max_payload == 1024
        spec = info["inputs"][0]
        for _ in range(2):
            x = rng.integers(-128, 128, spec["shape"], dtype=np.int8)
            res = link.infer([x.tobytes()])
            want = runner.model.invoke([x.tobytes()])
            assert res.outputs == want
        assert sum(o["bytes"] for o in info["outputs"]) > 1024


def test_uart_speed_is_emulated(models):
    """--baud paces the board's side of the line: its receive clock advances 10 bit times
    per byte read (the clock's arithmetic is checked, not how long the test took)."""
    image = load_model_image(str(models / "person_detect.tflite"))
    with SimBoard(image, baud=115200) as b, Link(b.path, baud=115200) as link:
        link.hello()
        rx0, n0 = b.port.rx_free, b.port.bytes_in
        res = link.infer([bytes(9216)])
        assert b.port.bytes_in - n0 == res.bytes_out == 9288
        assert b.port.rx_free - rx0 >= 9288 * 10 / 115200 - 1e-9


def test_link_errors_are_one_line(models, tmp_path):
    r = run_cli("run", "--port", "/dev/nonexistent-port", "--input", "x")
    assert r.returncode == 2 and "cannot open /dev/nonexistent-port" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("info", "--port", "/dev/nonexistent-port")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = run_cli("run", models / "person_detect.tflite", "--port", "/dev/x", "--input", "x")
    assert r.returncode == 2 and "not both" in r.stderr
    bad = tmp_path / "bad.mcu"
    good = load_model_image(str(models / "person_detect.tflite"))
    bad.write_bytes(good[:-10])
    r = run_cli("sim", "--model", bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    image = load_model_image(str(models / "person_detect.tflite"))
    with SimBoard(image) as b, Link(b.path, timeout=0.5) as link:
        link.hello()
        with pytest.raises(McutoolError, match="input 0 has 100 bytes, the board's model takes 9216"):
            link.infer([bytes(100)])
        with pytest.raises(LinkError, match="unknown message type"):
            link.request(0x77)
        assert link.infer([bytes(9216)]).outputs  # still serving
    # nothing on the other end: the host gives up with advice, never hangs
    with SimBoard(image) as b:
        b._stop.set()
        b._thread.join()
        with Link(b.path, timeout=0.1, compute_timeout=0.0, retries=1) as link:
            with pytest.raises(McutoolError, match="no answer from the board.*mcutool deploy"):
                link.hello()


def test_injected_faults_never_give_a_wrong_result(models):
    """Over 1,000 faults on both directions of the line (bit flips, dropped bytes and runs,
    garbage, duplicated and truncated chunks, stalls longer than the host's timeout, and
    the board rebooting mid-frame), with person_detect on the real engine: every result
    is right or reported, never wrong, and the link works again afterwards."""
    from mcutool.native import NativeRunner

    image = load_model_image(str(models / "person_detect.tflite"))
    model = NativeRunner(image).model
    holder = {}
    faults = Faults(seed=1, rate=0.3, stall_s=0.08, reboot=lambda: holder["b"].reboot())
    rng = random.Random(2)
    ok = reported = wrong = 0
    b = holder["b"] = SimBoard(image, fault=faults)
    b.port.fault = faults
    with b, Link(b.path, timeout=0.04, compute_timeout=0.02, retries=6, attempts=4,
                                                wire_baud=0) as link:
        faults.on = False
        link.hello()
        faults.on = True
        cache = {}
        while faults.total < 1000:
            seed = rng.randrange(16)  # a few distinct inputs, each checked against the engine
            x = cache.get(seed) or cache.setdefault(seed, np.random.default_rng(seed).integers(
                -128, 128, 9216, dtype=np.int8).tobytes())
            try:
                got = link.infer([x]).outputs
            except McutoolError:
                reported += 1
                continue
            want = model.invoke([x])
            if got == want:
                ok += 1
            else:
                wrong += 1
        faults.on = False
        time.sleep(0.1)
        x = cache[0]
        assert link.infer([x]).outputs == model.invoke([x])
        stats = link.stats
    print(f"\nfaults {faults.total} {dict(faults.counts)}; inferences ok {ok}, reported {reported}, wrong {wrong}; "
          f"resends {stats.resends}, naks {stats.naks}, restarts {stats.restarts}, board boots {b.boots}")
    assert faults.total >= 1000 and faults.counts["reboot"] > 20
    assert wrong == 0
    assert ok > 10 * reported


def test_protocol_overhead_is_under_2_percent_for_person_detect(models):
    """Bytes on the wire per inference against the 9,216 input bytes: deterministic, so a
    test (the figures per second are `mcutool bench --link`'s)."""
    from mcutool.link.bench import link_bench

    (r,) = link_bench(str(models / "person_detect.tflite"), bauds=(None,), count=3, progress=False)
    assert r["input_bytes"] == 9216 and r["resends"] == 0
    assert r["bytes_out_per_inference"] == 9216 + 15 + 3 * (14 + 5)  # INFER, then 3 ROWS bands
    assert r["overhead_out"] <= 0.02 and r["overhead_both_ways"] <= 0.02


def test_app_says_when_it_copied_a_partition_into_ram(monkeypatch):
    """ESP32 with the natmod engine: mcunet cannot map a partition from flash, so the app
    reads the image into RAM, and INFO's warning says so. The `esp32` and `mcunet` modules
    here are TEST DOUBLES (CPython has neither; the app's real engine is tested above)."""
    import struct
    import sys
    import types

    from mcutool.link.proto import app_module

    image = bytearray(64)
    struct.pack_into("<4sHHII", image, 0, b"MCUN", 2, 96, 0, len(image))
    opened = []

    class Model:
        def __init__(self, source):
            if isinstance(source, str):
                raise OSError("a natmod cannot map partitions")
            opened.append(bytes(source))

    class Partition:
        TYPE_DATA = 1

        @staticmethod
        def find(kind, label):
            return [Partition()] if label == "model" else []

        def readblocks(self, block, buf, offset):
            buf[:] = image[:len(buf)]

        def ioctl(self, op, arg):
            return {4: 16, 5: 4096}[op]

    monkeypatch.setitem(sys.modules, "mcunet", types.SimpleNamespace(Model=Model))
    monkeypatch.setitem(sys.modules, "esp32", types.SimpleNamespace(Partition=Partition))
    model, note = app_module("mcuapp").open_model({"partition": "model"})
    assert isinstance(model, Model) and opened == [bytes(image)]
    assert "partition 'model' not mapped from flash (a natmod cannot map partitions)" in note
    assert "64-byte image was copied into RAM" in note
