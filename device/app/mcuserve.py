# mcuserve: the board's side of the serial protocol (docs/protocol.md).
#
# Runs unchanged under MicroPython (on the board, and the unix port in tests)
# and CPython (`mcutool sim`, with the C engine's CPython build standing in
# for the `mcunet` module).  Keep to MicroPython's subset: no typing,
# dataclasses, or CPython-only modules.
#
# A Server owns one model, one arena and one port.  Requests are served
# strictly one at a time (stop-and-wait), so the board never holds more than
# one frame it has not answered: that is the flow control.  Every reply is
# kept until the next request, and a request repeated with the same seq (the
# host timed out and resent it) gets the kept reply again without being run
# twice.

import json

import mcuproto as P

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython
    import time

    def ticks_us():
        return int(time.perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b

APP_VERSION = "0.1.0"


def spec_json(spec):
    return [{"shape": list(s[0]), "zero_point": s[1], "scale_bits": s[2], "bytes": s[3]} for s in spec]


class _Rows:
    """An inference whose inputs arrive in ROWS frames, in order."""

    def __init__(self, model, arena, streamed):
        self.spec = model.input_spec
        self.k = 0          # input the next ROWS frame must carry
        self.row = 0        # and its first row
        self.streamed = streamed
        self.time_us = 0
        if streamed:
            # Rows go straight into the engine's input ring as it asks for
            # them; `pend` holds rows received but not yet asked for.
            self.pend = b""
            self.pend_r0 = 0
            t = ticks_us()
            model.begin(arena)
            self.need = model.need()
            self.time_us += ticks_diff(ticks_us(), t)
        else:
            self.stage = [bytearray(s[3]) for s in self.spec]

    def row_bytes(self, k):
        shape = self.spec[k][0]
        h = shape[1] if len(shape) > 1 else 1
        return self.spec[k][3] // h

    def rows(self, k):
        shape = self.spec[k][0]
        return shape[1] if len(shape) > 1 else 1


class Server:
    def __init__(self, port, model=None, arena=None, board="unknown", load_error=None,
                 max_payload=4096, boot=0, model_file=None, repl_escape=False):
        self.port = port
        self.model = model
        self.arena = arena
        self.board = board
        self.load_error = load_error
        self.my_max = max_payload
        self.max_payload = P.DEFAULT_MAX_PAYLOAD
        self.dec = P.Decoder(max_payload)
        self.boot = boot
        self.model_file = model_file
        self.repl_escape = repl_escape
        self.last_seq = None
        self.last_reply = []
        self.job = None
        self.requests = 0
        self.resent = 0
        self.inferences = 0
        self.running = True
        self._prev = 0

    # ---------------------------------------------------------- replies

    def _send(self, frames):
        self.last_reply = frames
        for f in frames:
            self.port.write(f)

    def _frame(self, mtype, seq, payload=b""):
        return P.encode(mtype, seq, payload, self.max_payload)

    def _error(self, seq, code, message):
        self.job = None
        return [self._frame(P.ERROR, seq, P.error_payload(code, message))]

    def info(self):
        m = self.model
        d = {"board": self.board, "app": APP_VERSION, "protocol": P.VERSION, "boot": self.boot,
             "max_payload": self.my_max, "model_file": self.model_file}
        if m is None:
            d["model"] = None
            d["load"] = self.load_error or "no model"
        else:
            i = m.info()
            if self.load_error:
                d["warning"] = self.load_error  # e.g. a broken config, defaults used
            d["model"] = i["name"]
            d["load"] = "ok"
            d["engine"] = i["engine"]
            d["format"] = i["format"]
            d["arena_size"] = i["arena_size"]
            d["streamed"] = bool(i["streamed"])
            d["inputs"] = spec_json(i["inputs"])
            d["outputs"] = spec_json(i["outputs"])
        return d

    # ---------------------------------------------------------- serving

    def serve(self, timeout_ms=1000):
        while self.running:
            self.poll(timeout_ms)

    def poll(self, timeout_ms=50):
        want = self.dec.wanted()
        data = self.port.read(want, timeout_ms)
        if not data:
            return
        if self.repl_escape and self._escape(data):
            self.running = False
            return
        for mtype, seq, payload in self.dec.feed(data):
            self.handle(mtype, seq, payload)
        if self.dec.damaged:
            for mtype, seq in self.dec.damaged:
                # a damaged new request: ask for it again now (a repeat of the
                # last one is answered by its resend instead)
                if mtype in (P.HELLO, P.INFER, P.ROWS, P.PING, P.RESET) and seq != self.last_seq:
                    self.port.write(P.encode(P.NAK, seq))
            self.dec.damaged = []

    def _escape(self, data):
        # mpremote and pyboard.py start with b"\r\x03" (Ctrl-C), which
        # kbd_intr(-1) turned into data: seen between frames, it hands the
        # board back to the REPL.
        if self.dec.pending():
            self._prev = 0
            return False
        for b in data:
            if self._prev == 0x0D and b == 0x03:
                return True
            self._prev = b
        return False

    def handle(self, mtype, seq, payload):
        try:
            if mtype == P.HELLO:
                # A new session: always served, and it forgets the old one.
                hv = P.parse_hello(payload)
                if hv is None:
                    self._send(self._error(seq, P.E_BAD_REQUEST, "HELLO payload too short"))
                    return
                self.max_payload = P.negotiate(self.my_max, hv[1])
                self.job = None
                self.last_seq = seq
                self.requests += 1
                self._send([P.encode(P.INFO, seq, P.hello_payload(self.my_max)
                                     + json.dumps(self.info()).encode())])
                return
            if mtype in (P.INFO, P.RESULT, P.ACK, P.NAK, P.PONG, P.ERROR):
                return  # replies are the host's business; a board ignores them
            if self.last_seq is not None:
                d = (seq - self.last_seq) & 0xFFFF
                if d == 0:
                    self.resent += 1
                    for f in self.last_reply:
                        self.port.write(f)
                    return
                if d >= 0x8000:
                    return  # older than the last request: a stale resend
            self.last_seq = seq
            self.requests += 1
            self._send(self.dispatch(mtype, seq, payload))
        except Exception as e:  # the board must keep serving whatever arrives
            self._send(self._error(seq, P.E_BAD_REQUEST, "%s: %s" % (type(e).__name__, e)))

    def dispatch(self, mtype, seq, payload):
        if mtype == P.PING:
            return [self._frame(P.PONG, seq, payload)]
        if mtype == P.RESET:
            self.job = None
            if bytes(payload) == b"repl":
                self.running = False
            return [self._frame(P.ACK, seq)]
        if mtype == P.INFER:
            return self._infer(seq, payload)
        if mtype == P.ROWS:
            return self._rows(seq, payload)
        return self._error(seq, P.E_UNKNOWN_TYPE, "message type 0x%02x is not served" % mtype)

    # ---------------------------------------------------------- inference

    def _infer(self, seq, payload):
        self.job = None
        m = self.model
        if m is None:
            return self._error(seq, P.E_NO_MODEL, self.load_error or "no model loaded")
        if len(payload) < 1:
            return self._error(seq, P.E_BAD_REQUEST, "INFER payload too short")
        spec = m.input_spec
        if payload[0] & P.INFER_ROWS:
            # Only a single-input streamed plan can take rows straight into
            # the engine; other models gather their inputs whole first.
            self.job = _Rows(m, self.arena, bool(m.streamed) and len(spec) == 1)
            return [self._frame(P.ACK, seq)]
        data = payload[1:]
        total = 0
        for s in spec:
            total += s[3]
        if len(data) != total:
            return self._error(seq, P.E_BAD_REQUEST,
                               "INFER carries %d input bytes, the model takes %d" % (len(data), total))
        ins = []
        off = 0
        for s in spec:
            ins.append(data[off:off + s[3]])
            off += s[3]
        t = ticks_us()
        try:
            outs = m.run(ins, None, self.arena)
        except ValueError as e:
            return self._error(seq, P.E_ENGINE, str(e))
        return self._result(seq, ticks_diff(ticks_us(), t), outs)

    def _result(self, seq, time_us, outs):
        self.job = None
        self.inferences += 1
        return P.result_frames(seq, time_us, self.model.arena_size, outs, self.max_payload)

    def _rows(self, seq, payload):
        j = self.job
        if j is None:
            return self._error(seq, P.E_STATE, "ROWS with no inference in progress; send INFER first")
        r = P.parse_rows(payload)
        if r is None:
            return self._error(seq, P.E_BAD_REQUEST, "ROWS payload too short")
        k, r0, r1, data = r
        if k != j.k or r0 != j.row or r1 <= r0 or r1 > j.rows(k):
            return self._error(seq, P.E_STATE, "ROWS %d [%d, %d) out of order: expected input %d from row %d"
                               % (k, r0, r1, j.k, j.row))
        rb = j.row_bytes(k)
        if len(data) != (r1 - r0) * rb:
            return self._error(seq, P.E_BAD_REQUEST, "ROWS [%d, %d) carries %d bytes, expected %d"
                               % (r0, r1, len(data), (r1 - r0) * rb))
        j.row = r1
        if j.row == j.rows(k):
            j.k += 1
            j.row = 0
        m = self.model
        try:
            if j.streamed:
                pend = j.pend + bytes(data) if j.pend else bytes(data)
                p0 = j.pend_r0 if j.pend else r0
                t = ticks_us()
                while j.need is not None:
                    nk, n0, n1 = j.need
                    if nk != k or n1 > p0 + len(pend) // rb:
                        break
                    if n0 < p0:
                        return self._error(seq, P.E_STATE, "the engine asked again for rows already fed")
                    m.feed(nk, n0, n1, pend[(n0 - p0) * rb:(n1 - p0) * rb])
                    j.need = m.need()
                    # rows before n1 are never asked for again
                    pend = pend[(n1 - p0) * rb:]
                    p0 = n1
                j.time_us += ticks_diff(ticks_us(), t)
                j.pend = pend
                j.pend_r0 = p0
                if j.need is None:
                    return self._result(seq, j.time_us, [m.output(i) for i in range(len(m.output_spec))])
            else:
                j.stage[k][r0 * rb:r1 * rb] = data
                if j.k == len(j.spec):
                    t = ticks_us()
                    outs = m.run(j.stage, None, self.arena)
                    return self._result(seq, ticks_diff(ticks_us(), t), outs)
        except ValueError as e:
            return self._error(seq, P.E_ENGINE, str(e))
        if j.k == len(j.spec):
            return self._error(seq, P.E_STATE, "all rows given but the engine wants more")
        return [self._frame(P.ACK, seq)]
