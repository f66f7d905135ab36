"""Helpers for the link tests: a fault injector for serial byte streams, a pty bridge that
puts one between pyserial and a process, and the device app under real MicroPython."""
from __future__ import annotations

import json
import os
import random
import select
import shutil
import subprocess
import sys
import threading
import time
import tty
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "device" / "app"
STANDIN = Path(__file__).resolve().parent / "mpy_standin"


class Faults:
    """Damages chunks of a byte stream, each with probability `rate`. `reboot` (optional)
    power-cycles the board; `stall_s` is how long a 'host timeout' fault holds a chunk
    back (longer than the host waits, so the host must resend)."""

    KINDS = ("flip", "drop", "drop_run", "garbage", "duplicate", "truncate", "stall", "reboot")

    def __init__(self, seed: int, rate: float, stall_s: float, reboot=None, kinds=KINDS):
        self.rng = random.Random(seed)
        self.rate = rate
        self.stall_s = stall_s
        self.reboot = reboot
        self.kinds = [k for k in kinds if k != "reboot" or reboot is not None]
        self.counts: Counter = Counter()
        self.on = True
        self.lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __call__(self, direction: str, data: bytes) -> bytes:
        with self.lock:
            if not self.on or not data or self.rng.random() >= self.rate:
                return data
            kind = self.rng.choice(self.kinds)
            self.counts[kind] += 1
            r = self.rng
            b = bytearray(data)
            i = r.randrange(len(b))
            if kind == "flip":
                b[i] ^= 1 << r.randrange(8)
            elif kind == "drop":
                del b[i]
            elif kind == "drop_run":
                del b[i:i + r.randint(2, 64)]
            elif kind == "garbage":
                b[i:i] = bytes(r.getrandbits(8) for _ in range(r.randint(1, 40)))
            elif kind == "duplicate":
                b = b + b
            elif kind == "truncate":
                del b[i:]
            elif kind == "stall":
                time.sleep(self.stall_s)
            elif kind == "reboot":
                del b[i:]  # the board dies in the middle of this chunk
                self.reboot()
            return bytes(b)


def standin_image(h: int, w: int, c: int, nout: int, band: int, name: str = "standin") -> bytes:
    return f"STANDIN {h} {w} {c} {nout} {band} {name}".encode()


def standin_outputs(x: bytes, nout: int) -> bytes:
    """What tests/mpy_standin/mcunet.py computes: predictable, and sensitive to every byte."""
    acc = [0] * nout
    for i, b in enumerate(x):
        v = b - 256 if b > 127 else b
        for j in range(nout):
            acc[j] += v * (i % 7 + 1 + j)
    return bytes((a >> 3) & 0xFF for a in acc)


class Bridge:
    """pyserial <-> pty A | bridge thread (faults here) | pty B <-> a process's stdin/stdout."""

    def __init__(self, fault=None):
        self.host_m, self.host_s = os.openpty()
        self.dev_m, self.dev_s = os.openpty()
        for fd in (self.host_s, self.dev_s):
            tty.setraw(fd)
        self.path = os.ttyname(self.host_s)
        self.fault = fault
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _pump(self, src, dst, direction):
        try:
            data = os.read(src, 4096)
        except OSError:
            return
        if self.fault:
            data = self.fault(direction, data)
        while data:
            try:
                n = os.write(dst, data)
            except OSError:
                return
            data = data[n:]

    def _run(self):
        while not self.stop_ev.is_set():
            r, _, _ = select.select([self.host_m, self.dev_m], [], [], 0.05)
            if self.host_m in r:
                self._pump(self.host_m, self.dev_m, "rx")
            if self.dev_m in r:
                self._pump(self.dev_m, self.host_m, "tx")

    def close(self):
        self.stop_ev.set()
        self.t.join(2)
        for fd in (self.host_m, self.host_s, self.dev_m, self.dev_s):
            try:
                os.close(fd)
            except OSError:
                pass


def micropython_cmd() -> str | None:
    cand = Path(sys.executable).parent / "micropython"
    return str(cand) if cand.exists() else shutil.which("micropython")


class MicroPythonBoard:
    """The device app (device/app/main.py) under the real MicroPython unix port, its
    stdin/stdout on a pty, with the stand-in engine. `reboot()` kills and restarts it."""

    def __init__(self, workdir: Path, image: bytes, config: dict, fault=None):
        self.mp = micropython_cmd()
        self.workdir = workdir
        (workdir / "model.mcu").write_bytes(image)
        (workdir / "mcutool.json").write_text(json.dumps(config))
        self.bridge = Bridge(fault)
        self.path = self.bridge.path
        self.proc = None
        self.start()

    def start(self):
        env = dict(os.environ, MICROPYPATH=f"{STANDIN}:{APP}")
        self.proc = subprocess.Popen([self.mp, str(APP / "main.py")], stdin=self.bridge.dev_s,
                                     stdout=self.bridge.dev_s, stderr=subprocess.PIPE, cwd=self.workdir, env=env)

    def reboot(self):
        self.proc.kill()
        self.proc.wait()
        self.start()

    def close(self) -> str:
        err = b""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            _, err = self.proc.communicate(timeout=5)
        except Exception:
            pass
        self.bridge.close()
        return (err or b"").decode(errors="replace")
