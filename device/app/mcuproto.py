# mcuproto: framing for the host <-> board serial link (protocol v1).
#
# One module, run unchanged by CPython 3.10+ (host, pyserial) and by
# MicroPython (board).  Keep to what MicroPython's unix port has: struct,
# optional binascii; no typing, dataclasses or newer syntax.  The wire format
# is documented in docs/protocol.md.

import struct

try:
    import binascii

    _crc32_native = getattr(binascii, "crc32", None)
except ImportError:  # pragma: no cover - ports built without binascii
    _crc32_native = None

VERSION = 1
SYNC0 = 0xA5
SYNC1 = 0x5A
SYNC = b"\xa5\x5a"

# Message types.
HELLO = 0x01
INFO = 0x02
INFER = 0x03
ROWS = 0x04
RESULT = 0x05
ERROR = 0x06
PING = 0x07
PONG = 0x08
RESET = 0x09
ACK = 0x0A
NAK = 0x0B

TYPE_NAMES = {
    HELLO: "HELLO", INFO: "INFO", INFER: "INFER", ROWS: "ROWS",
    RESULT: "RESULT", ERROR: "ERROR", PING: "PING", PONG: "PONG",
    RESET: "RESET", ACK: "ACK", NAK: "NAK",
}

# sync0 sync1 ver_flags type seq(u16) len(u16) | hdr_crc16(u16)
_HDR = "<BBBBHH"
HEADER_SIZE = 10
TRAILER_SIZE = 4  # payload CRC-32
OVERHEAD = HEADER_SIZE + TRAILER_SIZE

MAX_PAYLOAD_LIMIT = 0xFFFF   # what the 16-bit length field can say
MIN_MAX_PAYLOAD = 64         # every implementation accepts at least this
DEFAULT_MAX_PAYLOAD = 1024   # before HELLO/INFO negotiation


# ---------------------------------------------------------------- CRCs

def _make_crc16_table():
    t = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if (c & 0x8000) else (c << 1)
        t.append(c & 0xFFFF)
    return t


_CRC16_TABLE = _make_crc16_table()


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF); check('123456789') = 0x29B1."""
    t = _CRC16_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ t[((crc >> 8) ^ b) & 0xFF]
    return crc


_CRC32_TABLE = None


def crc32_py(data, crc=0):
    """CRC-32 (IEEE 802.3, as zlib/binascii) in pure Python; check = 0xCBF43926."""
    global _CRC32_TABLE
    t = _CRC32_TABLE
    if t is None:
        t = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0xEDB88320 if (c & 1) else (c >> 1)
            t.append(c)
        _CRC32_TABLE = t
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


if _crc32_native is not None:
    def crc32(data, crc=0):
        return _crc32_native(data, crc) & 0xFFFFFFFF
else:  # pragma: no cover
    crc32 = crc32_py


# ---------------------------------------------------------------- encoder

def encode(mtype, seq, payload=b"", max_payload=MAX_PAYLOAD_LIMIT):
    """One frame: header (10 bytes) + payload + CRC-32 of payload (4 bytes)."""
    if not 0 <= mtype <= 0xFF:
        raise ValueError("message type out of range")
    if not 0 <= seq <= 0xFFFF:
        raise ValueError("seq out of range")
    payload = bytes(payload)
    n = len(payload)
    if n > max_payload or n > MAX_PAYLOAD_LIMIT:
        raise ValueError("payload too long")
    hdr = struct.pack(_HDR, SYNC0, SYNC1, VERSION << 4, mtype, seq, n)
    return (hdr + struct.pack("<H", crc16(hdr)) + payload
            + struct.pack("<I", crc32(payload)))


def next_seq(seq):
    return (seq + 1) & 0xFFFF


# ---------------------------------------------------------------- decoder

class Decoder:
    """Incremental frame parser.

    feed(data) returns a list of (type, seq, payload) for every frame that
    completed with good CRCs.  Bad frames are counted in `errors` (and the
    finer counters) and skipped by moving one byte past their sync pair, so a
    real frame hiding inside a bad one is still found.  The buffer never
    holds more than HEADER_SIZE + max_payload + TRAILER_SIZE bytes, and feed
    never raises.
    """

    def __init__(self, max_payload=DEFAULT_MAX_PAYLOAD):
        if not 0 <= max_payload <= MAX_PAYLOAD_LIMIT:
            raise ValueError("max_payload out of range")
        self.max_payload = max_payload
        self.capacity = OVERHEAD + max_payload
        self.buf = b""
        self.errors = 0          # all rejected frames / inputs
        self.header_errors = 0   # header CRC failed
        self.payload_errors = 0  # payload CRC failed
        self.length_errors = 0   # good header, length > max_payload
        self.version_errors = 0  # good header, other protocol version
        self.skipped = 0         # bytes skipped while hunting for sync
        self.frames = 0          # frames delivered
        # (type, seq) of frames whose header was good but payload was not: the
        # receiver may NAK them at once instead of letting the sender time out
        self.damaged = []

    def reset(self):
        """Drop a partial frame (e.g. after an inter-byte timeout)."""
        self.skipped += len(self.buf)
        self.buf = b""

    def pending(self):
        return len(self.buf)

    def wanted(self):
        """Bytes that must still arrive to complete the frame begun in the buffer
        (1 while hunting for sync).  A board whose read(n) blocks until n bytes
        come reads this many: an intact frame then arrives in two reads."""
        L = len(self.buf)
        if L < 2:
            return 1
        if L < HEADER_SIZE:
            return HEADER_SIZE - L
        n = struct.unpack_from("<H", self.buf, 6)[0]
        w = HEADER_SIZE + n + TRAILER_SIZE - L
        return w if w > 0 else 1

    def feed(self, data):
        out = []
        try:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                self.errors += 1
                return out
            data = bytes(data)
            pos = 0
            n = len(data)
            while True:
                room = self.capacity - len(self.buf)
                if pos < n and room > 0:
                    take = n - pos
                    if take > room:
                        take = room
                    self.buf = self.buf + data[pos:pos + take]
                    pos += take
                self._parse(out)
                if pos >= n:
                    break
        except Exception:  # pragma: no cover - defensive: never raise
            self.errors += 1
            self.buf = b""
        return out

    def _parse(self, out):
        buf = self.buf
        L = len(buf)
        i = 0
        maxp = self.max_payload
        while True:
            j = buf.find(SYNC, i)
            if j < 0:
                # keep a trailing first sync byte: its pair may come next
                keep = L - 1 if (L > i and buf[L - 1] == SYNC0) else L
                self.skipped += keep - i
                i = keep
                break
            self.skipped += j - i
            i = j
            if L - i < HEADER_SIZE:
                break
            _s0, _s1, vf, mtype, seq, n = struct.unpack_from(_HDR, buf, i)
            hcrc = struct.unpack_from("<H", buf, i + 8)[0]
            if crc16(buf[i:i + 8]) != hcrc:
                self.errors += 1
                self.header_errors += 1
                i += 1
                continue
            if (vf >> 4) != VERSION:
                self.errors += 1
                self.version_errors += 1
                i += 1
                continue
            if n > maxp:
                self.errors += 1
                self.length_errors += 1
                i += 1
                continue
            end = i + HEADER_SIZE + n
            if L < end + TRAILER_SIZE:
                break
            payload = buf[i + HEADER_SIZE:end]
            if crc32(payload) != struct.unpack_from("<I", buf, end)[0]:
                self.errors += 1
                self.payload_errors += 1
                if len(self.damaged) < 4:
                    self.damaged.append((mtype, seq))
                i += 1
                continue
            out.append((mtype, seq, payload))
            self.frames += 1
            i = end + TRAILER_SIZE
        self.buf = buf[i:] if i else buf


# ---------------------------------------------------------------- sequences

NEW = "new"
DUPLICATE = "duplicate"
OUT_OF_ORDER = "out_of_order"


class SeqTracker:
    """Classifies received sequence numbers (16-bit, wrapping).

    A seq up to 0x7FFF ahead of the highest seen is 'new' (a jump counts the
    skipped numbers in `lost`).  A seq behind it is 'duplicate' if it was
    seen within the last `window` (<= 32) numbers, otherwise 'out_of_order'
    (a late one inside the window is then remembered, so a second copy is
    a 'duplicate').
    """

    def __init__(self, window=32):
        self.window = min(max(window, 1), 32)
        self.reset()

    def reset(self):
        self.last = None
        self.mask = 0  # bit k set: seq (last - k) was seen
        self.lost = 0
        self.duplicates = 0
        self.out_of_order = 0

    def accept(self, seq):
        seq &= 0xFFFF
        if self.last is None:
            self.last = seq
            self.mask = 1
            return NEW
        ahead = (seq - self.last) & 0xFFFF
        if ahead == 0:
            self.duplicates += 1
            return DUPLICATE
        if ahead < 0x8000:
            self.lost += ahead - 1
            if ahead >= self.window:
                self.mask = 1
            else:
                self.mask = ((self.mask << ahead) | 1) & ((1 << self.window) - 1)
            self.last = seq
            return NEW
        behind = (self.last - seq) & 0xFFFF
        if behind < self.window:
            bit = 1 << behind
            if self.mask & bit:
                self.duplicates += 1
                return DUPLICATE
            self.mask |= bit
            if self.lost:
                self.lost -= 1
        self.out_of_order += 1
        return OUT_OF_ORDER


# ---------------------------------------------------------------- HELLO / INFO

def hello_payload(max_payload):
    """HELLO and INFO both start with: u8 protocol version, u16 max payload."""
    return struct.pack("<BH", VERSION, max_payload)


def parse_hello(payload):
    """(version, max_payload) from a HELLO/INFO payload, or None if too short."""
    if len(payload) < 3:
        return None
    return struct.unpack_from("<BH", payload, 0)


def negotiate(mine, theirs):
    """The max payload both ends use after HELLO/INFO: the smaller of the two."""
    return mine if mine < theirs else theirs


# ---------------------------------------------------------------- messages
#
# Payloads of the message types (docs/protocol.md, "Messages").  Every
# reply carries the seq of the request it answers.

# ERROR codes
E_UNKNOWN_TYPE = 1   # a message type the receiver does not serve
E_BAD_REQUEST = 2    # a payload too short, sizes that disagree with the model
E_ENGINE = 3         # the engine refused (its status and message follow)
E_STATE = 4          # ROWS with no inference in progress, rows out of order
E_NO_MODEL = 5       # the board has no usable model (INFO says why)
E_TOO_BIG = 6        # a transfer larger than the board can hold

ERROR_NAMES = {
    E_UNKNOWN_TYPE: "unknown message type", E_BAD_REQUEST: "bad request",
    E_ENGINE: "engine error", E_STATE: "protocol state", E_NO_MODEL: "no model",
    E_TOO_BIG: "too big",
}

INFER_ROWS = 0x01    # INFER flag: the inputs follow in ROWS frames

_ROWS = "<BHH"       # input index, first row, end row
ROWS_HEADER = 5
_RESULT = "<IIII"    # compute time (us), arena bytes, offset, total
RESULT_HEADER = 16


def error_payload(code, message):
    return struct.pack("<h", code) + message.encode()[:200]


def parse_error(payload):
    """(code, message); a short payload gives code 0."""
    if len(payload) < 2:
        return 0, ""
    return struct.unpack_from("<h", payload, 0)[0], bytes(payload[2:]).decode("utf-8", "replace")


def rows_payload(k, r0, r1, data):
    return struct.pack(_ROWS, k, r0, r1) + bytes(data)


def parse_rows(payload):
    """(k, r0, r1, data) or None if too short."""
    if len(payload) < ROWS_HEADER:
        return None
    k, r0, r1 = struct.unpack_from(_ROWS, payload, 0)
    return k, r0, r1, payload[ROWS_HEADER:]


def result_frames(seq, time_us, arena, outputs, max_payload):
    """RESULT frames carrying the concatenated outputs, split to fit max_payload."""
    data = b"".join(bytes(o) for o in outputs)
    total = len(data)
    step = max_payload - RESULT_HEADER
    if step < 1:
        raise ValueError("max payload too small for RESULT")
    frames = []
    off = 0
    while True:
        chunk = data[off:off + step]
        frames.append(encode(RESULT, seq, struct.pack(_RESULT, time_us, arena, off, total) + chunk,
                             max_payload))
        off += len(chunk)
        if off >= total:
            return frames


def parse_result(payload):
    """(time_us, arena, offset, total, chunk) or None if too short."""
    if len(payload) < RESULT_HEADER:
        return None
    t, a, off, total = struct.unpack_from(_RESULT, payload, 0)
    return t, a, off, total, payload[RESULT_HEADER:]
