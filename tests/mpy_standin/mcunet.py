# A pure-Python stand-in for the `mcunet` C module, for running the device
# app under the real MicroPython unix interpreter in tests.  The C module
# cannot be compiled into the PyPI `micropython` binary, so this TEST DOUBLE
# offers the same API with a toy computation the test can predict
# (tests/linkfaults.standin_outputs).  The real engine behind the same app
# is tested through `mcutool sim` (tests/test_link.py), and the C module
# itself by hand against a MicroPython build (device/micropython/README.md).
#
# Its "flash image" is a line of text: b"STANDIN h w c nout band".


class Model:
    def __init__(self, source, length=None):
        if isinstance(source, int):
            raise OSError("the stand-in reads no flash addresses")
        f = bytes(source).split()
        if len(f) != 7 or f[0] != b"STANDIN":
            raise ValueError("engine: not an mcutool flash image (status -3)")
        self.h, self.w, self.c, self.nout, self.band = [int(x) for x in f[1:6]]
        self.name = f[6].decode()
        self.arena_size = 64
        self.streamed = True
        self.input_spec = (((1, self.h, self.w, self.c), -1, 0x3C010101, self.h * self.w * self.c),)
        self.output_spec = (((1, self.nout), -128, 0x3B800000, self.nout),)
        self._need = None
        self._acc = None

    def info(self):
        return {"name": self.name, "arena_size": self.arena_size, "engine": "standin", "format": 0,
                "streamed": self.streamed, "steps": 0, "inputs": self.input_spec,
                "outputs": self.output_spec}

    def _add(self, data, first):
        acc = self._acc
        n = self.nout
        i = first
        for b in data:
            v = b - 256 if b > 127 else b
            m = i % 7 + 1
            for j in range(n):
                acc[j] += v * (m + j)
            i += 1

    def _outs(self):
        return [bytearray([(a >> 3) & 0xFF for a in self._acc])]

    def _arena(self, arena):
        if arena is None or len(arena) < self.arena_size:
            raise ValueError("engine: arena smaller than the model needs (status -15)")

    def run(self, inputs, outputs=None, arena=None):
        self._arena(arena)
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        if len(inputs) != 1 or len(inputs[0]) != self.input_spec[0][3]:
            raise ValueError("input size")
        self._acc = [0] * self.nout
        self._add(inputs[0], 0)
        return self._outs()

    def begin(self, arena):
        self._arena(arena)
        self._acc = [0] * self.nout
        self._need = (0, 0, min(self.band, self.h))

    def need(self):
        return self._need

    def feed(self, k, r0, r1, rows):
        if self._need != (k, r0, r1):
            raise ValueError("engine: rows other than those asked for (status -16)")
        rb = self.w * self.c
        if len(rows) != (r1 - r0) * rb:
            raise ValueError("rows size")
        self._add(rows, r0 * rb)
        self._need = None if r1 >= self.h else (0, r1, min(r1 + self.band, self.h))
        return self._need is None

    def output(self, k, buf=None):
        o = self._outs()[0]
        if buf is None:
            return o
        buf[:] = o
        return buf
