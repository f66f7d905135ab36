"""A simulated board on a pseudo-terminal: the real device app (device/app) served by
CPython, with the C engine's CPython build in place of the `mcunet` module. Anything
that talks to a serial port (mcutool, pyserial, a terminal) can talk to it."""
from __future__ import annotations

import os
import select
import threading
import time

from ..errors import McutoolError
from .proto import app_module


class PtyPort:
    """The board's end of the pty, optionally paced to a UART's speed (10 bits a byte)."""

    def __init__(self, fd: int, baud: int | None = None, fault=None):
        self.fd = fd
        self.baud = baud
        self.fault = fault  # fault(direction, data) -> data: tests damage the link here
        self.rx_free = self.tx_free = 0.0
        self.bytes_in = self.bytes_out = 0

    def _pace(self, attr: str, n: int) -> None:
        if not self.baud:
            return
        now = time.monotonic()
        start = max(now, getattr(self, attr))
        end = start + n * 10 / self.baud
        setattr(self, attr, end)
        if end > now:
            time.sleep(end - now)

    def read(self, n: int, timeout_ms: int) -> bytes:
        r, _, _ = select.select([self.fd], [], [], timeout_ms / 1000)
        if not r:
            return b""
        try:
            # As much as is there: the board app's n is only the least it needs.
            data = os.read(self.fd, max(n, 4096) if not self.baud else max(1, min(n, 256)))
        except OSError:
            time.sleep(timeout_ms / 1000)
            return b""
        self.bytes_in += len(data)
        self._pace("rx_free", len(data))
        if self.fault:
            data = self.fault("rx", data)
        return data

    def write(self, data: bytes) -> None:
        if self.fault:
            data = self.fault("tx", data)
        self._pace("tx_free", len(data))
        view = memoryview(data)
        while view:
            # Nobody reading: like a UART with no listener, the bytes are lost, and the
            # board never blocks.
            _, w, _ = select.select([], [self.fd], [], 1.0)
            if not w:
                return
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                continue
            except OSError:
                return
            self.bytes_out += n
            view = view[n:]


def load_model_image(path: str, board: str | None = None) -> bytes:
    """A flash image as bytes: a .mcu as it is, a .tflite prepared, planned and packed."""
    from ..model import is_image

    from ..boards import load_board, sram_misfit

    if not os.path.isfile(path):
        raise McutoolError(f"{path}: no such file")
    budget = load_board(board)["sram_budget"] if board else None
    if is_image(path):
        from ..image.format import read_header

        image = open(path, "rb").read()
        peak = read_header(image, path).arena_bytes
    else:
        from ..image.format import pack
        from ..model import load_model
        from ..plan.planner import Objective, choose

        c = choose(load_model(path), Objective(budget=budget))
        image, peak = pack(c.lowered.graph, c.plan), c.plan.peak_sram_bytes
    misfit = sram_misfit(peak, budget, board)
    if misfit:  # as `mcutool convert` refuses it: the simulated board has no more SRAM than the real one
        raise McutoolError(f"{path}: {misfit}")
    return image


class SimBoard:
    """A board on a pty, serving in a thread (start/stop) or in the foreground (serve)."""

    def __init__(self, image: bytes | None, board: str = "sim", baud: int | None = None,
                 max_payload: int = 4096, fault=None, model_name: str | None = None):
        self.image = image
        self.board = board
        self.max_payload = max_payload
        self.model_name = model_name
        if not hasattr(os, "openpty"):
            raise McutoolError("mcutool sim needs pseudo-terminals (Linux or macOS); on Windows run it under WSL")
        self.master, self.slave = os.openpty()
        import tty

        tty.setraw(self.slave)  # bytes pass untouched: no echo, no CR/LF mapping, no ^C
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.port = PtyPort(self.master, baud, fault)
        self.boots = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.server = self._boot()

    def _boot(self):
        serve = app_module("mcuserve")
        model, err, arena = None, None, None
        if self.image is not None:
            from ..native import engine

            try:
                model = engine().Model(self.image)
                arena = bytearray(model.arena_size)
            except ValueError as e:
                model, err = None, str(e)
        else:
            err = "no model"
        self.boots += 1
        return serve.Server(self.port, model, arena, self.board, err, self.max_payload, self.boots,
                            self.model_name)

    def reboot(self) -> None:
        """Power-cycle the board: everything it held is gone, the line stays."""
        self.server = self._boot()

    def serve(self) -> None:
        while not self._stop.is_set():
            self.server.poll(50)

    def start(self) -> "SimBoard":
        self._thread = threading.Thread(target=self.serve, name="simboard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
