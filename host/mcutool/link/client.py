"""The host's end of the serial link (pyserial): handshake, inference in row bands,
timeouts and retries. The framing is the board's own module (device/app/mcuproto.py)."""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field

from ..errors import McutoolError
from .proto import P


class LinkError(McutoolError):
    """The board answered ERROR: `code` is one of mcuproto's E_* codes."""

    def __init__(self, code: int, message: str):
        self.code = code
        name = P.ERROR_NAMES.get(code, f"error {code}")
        super().__init__(f"board: {name}: {message}")


class LinkTimeout(McutoolError):
    pass


# Errors worth starting the inference over for: the board lost its state (a reset) or
# the request never got through. Any other ERROR is the board's final word.
_RESTARTABLE = (P.E_STATE,)


@dataclass
class LinkStats:
    frames_out: int = 0
    frames_in: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    resends: int = 0     # frames sent again after a timeout
    restarts: int = 0    # inferences started over (board reset, state lost)
    stale: int = 0       # replies to an older request, ignored
    bad_frames: int = 0  # frames the decoder rejected (CRC, length)
    naks: int = 0        # requests the board said arrived damaged


@dataclass
class InferResult:
    outputs: list = field(default_factory=list)  # bytes per device output
    time_us: int = 0      # the board's compute time
    arena: int = 0        # arena bytes the board ran in
    wall_s: float = 0.0   # host-side round trip
    payload_bytes: int = 0  # input bytes carried
    frames_out: int = 0
    bytes_out: int = 0
    bytes_in: int = 0


class Link:
    """One session with one board. `port` is a device path or a pyserial URL; `serial`
    may be an open pyserial-like object instead (tests)."""

    def __init__(self, port: str | None = None, baud: int = 115200, timeout: float = 1.0,
                 compute_timeout: float = 10.0, retries: int = 4, attempts: int = 3, serial=None,
                 wire_baud: int | None = None):
        self.port_name = port
        self.baud = baud
        # The speed timeouts allow for: the line's, unless the caller knows better (USB-CDC
        # and ptys ignore the baud rate; 0 means no allowance).
        self.wire_baud = baud if wire_baud is None else wire_baud
        self.timeout = timeout
        self.compute_timeout = compute_timeout
        self.retries = retries
        self.attempts = attempts
        self.stats = LinkStats()
        self.info: dict | None = None
        self.max_payload = P.DEFAULT_MAX_PAYLOAD
        self.dec = P.Decoder(P.MAX_PAYLOAD_LIMIT)
        # A random first seq: a new session is never mistaken for a resend of the last one.
        self.seq = random.SystemRandom().randrange(0x10000)
        self.ser = serial if serial is not None else self._open(port, baud)
        self._pending: list = []

    @staticmethod
    def _open(port, baud):
        import serial

        if not port:
            raise McutoolError("no port given: pass --port PORT (e.g. /dev/ttyUSB0, COM3, or the path "
                               "'mcutool sim' printed)")
        try:
            ser = serial.serial_for_url(port, baudrate=baud, timeout=0.02, write_timeout=5)
        except (serial.SerialException, ValueError, OSError) as e:
            raise McutoolError(f"cannot open {port}: {e}. Is the board connected? "
                               "List ports with: python -m serial.tools.list_ports") from None
        try:
            ser.reset_input_buffer()
        except Exception:
            pass
        return ser

    def close(self) -> None:
        try:
            self.ser.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ frames

    def _write(self, frame: bytes) -> None:
        try:
            self.ser.write(frame)
            self.ser.flush()
        except Exception as e:
            raise McutoolError(f"lost the board on {self.port_name}: {e}") from None
        self.stats.frames_out += 1
        self.stats.bytes_out += len(frame)

    def _read_frames(self) -> list:
        try:
            n = self.ser.in_waiting
            data = self.ser.read(n if n else 1)
        except Exception as e:
            raise McutoolError(f"lost the board on {self.port_name}: {e}") from None
        if not data:
            return []
        self.stats.bytes_in += len(data)
        errs = self.dec.errors
        frames = self.dec.feed(data)
        self.stats.bad_frames += self.dec.errors - errs
        self.stats.frames_in += len(frames)
        return frames

    def _wire_s(self, nbytes: int) -> float:
        return nbytes * 10 / self.wire_baud if self.wire_baud else 0.0

    def _next_seq(self) -> int:
        self.seq = P.next_seq(self.seq)
        return self.seq

    def request(self, mtype: int, payload: bytes = b"", want=(P.ACK,), compute: bool = False):
        """Send one request and wait for its reply, resending it (same seq) on timeout.
        Returns (type, payload) of the reply, or for RESULT the reassembled
        (time_us, arena, data). Raises LinkError on ERROR, LinkTimeout after the retries."""
        seq = self._next_seq()
        frame = P.encode(mtype, seq, payload, self.max_payload)
        wait = self.timeout + 2 * self._wire_s(len(frame) + 64) + (self.compute_timeout if compute else 0.0)
        chunks: dict[int, bytes] = {}
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.resends += 1
                self.dec.reset()
            self._write(frame)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                for t, s, p in self._read_frames():
                    if s != seq:
                        self.stats.stale += 1
                        continue
                    if t == P.NAK:  # it arrived damaged: resend now
                        self.stats.naks += 1
                        deadline = 0
                        break
                    if t == P.ERROR:
                        raise LinkError(*P.parse_error(p))
                    if t not in want:
                        self.stats.stale += 1
                        continue
                    if t != P.RESULT:
                        return t, p
                    r = P.parse_result(p)
                    if r is None:
                        continue
                    t_us, arena, off, total, chunk = r
                    chunks[off] = bytes(chunk)
                    data = _assemble(chunks, total)
                    if data is not None:
                        return P.RESULT, (t_us, arena, data)
        what = P.TYPE_NAMES.get(mtype, hex(mtype))
        raise LinkTimeout(f"no answer from the board on {self.port_name} to {what} after {self.retries + 1} "
                          f"tries of {wait:.1f} s: is the mcutool app running on it (mcutool deploy)?")

    # ------------------------------------------------------------------ messages

    def hello(self) -> dict:
        _, p = self.request(P.HELLO, P.hello_payload(P.MAX_PAYLOAD_LIMIT), want=(P.INFO,))
        hv = P.parse_hello(p)
        if hv is None or hv[0] != P.VERSION:
            raise McutoolError(f"the board speaks protocol {hv[0] if hv else '?'}, mcutool speaks {P.VERSION}: "
                               "deploy the matching app (mcutool deploy)")
        self.max_payload = P.negotiate(P.MAX_PAYLOAD_LIMIT, hv[1])
        try:
            self.info = json.loads(bytes(p[3:]).decode())
        except ValueError:
            raise McutoolError("the board's INFO is not valid JSON") from None
        return self.info

    def ping(self, payload: bytes = b"") -> float:
        t = time.perf_counter()
        _, p = self.request(P.PING, payload, want=(P.PONG,))
        if bytes(p) != bytes(payload):
            raise McutoolError("PONG does not echo PING")
        return time.perf_counter() - t

    def reset(self, to_repl: bool = False) -> None:
        self.request(P.RESET, b"repl" if to_repl else b"", want=(P.ACK,))

    def infer(self, inputs: list[bytes]) -> InferResult:
        """Run one inference; starts over (after a new HELLO) when the board lost its state
        or stopped answering, up to `attempts` times. Never returns a partial result."""
        if self.info is None:
            self.hello()
        last: Exception | None = None
        for attempt in range(self.attempts):
            if attempt:
                self.stats.restarts += 1
                try:
                    self.hello()
                except LinkTimeout as e:
                    last = e
                    continue
            try:
                return self._infer_once(inputs)
            except LinkTimeout as e:
                last = e
            except LinkError as e:
                if e.code not in _RESTARTABLE:
                    raise
                last = e
        raise last

    def _specs(self) -> list[dict]:
        info = self.info or {}
        if info.get("load") != "ok":
            raise McutoolError(f"the board has no usable model: {info.get('load')}")
        return info["inputs"]

    def _infer_once(self, inputs: list[bytes]) -> InferResult:
        specs = self._specs()
        if len(inputs) != len(specs):
            raise McutoolError(f"the board's model takes {len(specs)} input(s), got {len(inputs)}")
        for k, (x, s) in enumerate(zip(inputs, specs)):
            if len(x) != s["bytes"]:
                raise McutoolError(f"input {k} has {len(x)} bytes, the board's model takes {s['bytes']} "
                                   f"(shape {s['shape']}, int8)")
        s0 = (self.stats.frames_out, self.stats.bytes_out, self.stats.bytes_in)
        t0 = time.perf_counter()
        total = sum(len(x) for x in inputs)
        if 1 + total <= self.max_payload:
            _, (t_us, arena, data) = self.request(P.INFER, bytes([0]) + b"".join(inputs), want=(P.RESULT,),
                                                  compute=True)
        else:
            self.request(P.INFER, bytes([P.INFER_ROWS]), want=(P.ACK,))
            res = None
            for k, (x, s) in enumerate(zip(inputs, specs)):
                h = s["shape"][1] if len(s["shape"]) > 1 else 1
                rb = s["bytes"] // h
                band = max(1, (self.max_payload - P.ROWS_HEADER) // rb)
                for r0 in range(0, h, band):
                    r1 = min(h, r0 + band)
                    last = k == len(inputs) - 1 and r1 == h
                    t, p = self.request(P.ROWS, P.rows_payload(k, r0, r1, x[r0 * rb:r1 * rb]),
                                        want=(P.RESULT,) if last else (P.ACK,), compute=True)
                    if last:
                        res = p
            t_us, arena, data = res
        outs, off = [], 0
        for s in (self.info or {})["outputs"]:
            outs.append(data[off:off + s["bytes"]])
            off += s["bytes"]
        if off != len(data):
            raise McutoolError(f"the board sent {len(data)} output bytes, its model has {off}")
        return InferResult(outs, t_us, arena, time.perf_counter() - t0, total,
                           self.stats.frames_out - s0[0], self.stats.bytes_out - s0[1], self.stats.bytes_in - s0[2])


def _assemble(chunks: dict[int, bytes], total: int) -> bytes | None:
    """The RESULT data once its chunks cover [0, total) exactly, else None."""
    out, pos = [], 0
    while pos < total:
        c = chunks.get(pos)
        if not c:
            return None
        out.append(c)
        pos += len(c)
    if pos != total:
        return None
    if total == 0 and 0 not in chunks:
        return None
    return b"".join(out)
