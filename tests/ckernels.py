"""ctypes access to the engine's C kernels (device/engine/src/kernels/*.c) for the tests.

build(dir) compiles them with the host gcc into a shared library; the Structure classes
mirror device/engine/src/mcu_internal.h field for field; Views builds mcu_view buffers
(full or ring, with a column origin) around numpy data, filled with poison elsewhere so a
test can check that a kernel wrote exactly its window.
"""
from __future__ import annotations

import ctypes as C
import os
import shlex
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "device" / "engine"

I32 = C.c_int32
P8 = C.POINTER(C.c_int8)
P32 = C.POINTER(C.c_int32)


def build(out_dir: Path) -> C.CDLL:
    """Compile the kernels (extra gcc flags from $MCU_KERNEL_CFLAGS, e.g. --coverage)."""
    srcs = sorted(str(p) for p in (ENGINE / "src" / "kernels").glob("*.c"))
    lib = Path(out_dir) / "libkernels.so"
    cmd = ["gcc", "-O2", "-shared", "-fPIC", "-std=c99", "-Wall", "-Wextra", "-Werror",
           f"-I{ENGINE / 'include'}", f"-I{ENGINE / 'src'}", *shlex.split(os.environ.get("MCU_KERNEL_CFLAGS", "")), *srcs, "-o", str(lib)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"building the kernels failed:\n{' '.join(cmd)}\n{r.stderr}")
    return _declare(C.CDLL(str(lib)))


class View(C.Structure):
    _fields_ = [("base", P8), ("cap", I32), ("stride", I32), ("col0", I32), ("h", I32), ("w", I32), ("c", I32)]


class ConvParams(C.Structure):
    _fields_ = [(n, I32) for n in ("stride_h", "stride_w", "dil_h", "dil_w", "pad_t", "pad_l", "pad_b", "pad_r",
                                   "depth_multiplier", "input_offset", "output_offset", "act_min", "act_max")] + [
        ("kh", I32), ("kw", I32), ("weights", P8), ("bias", P32), ("rq", P32)]


class FCParams(C.Structure):
    _fields_ = [(n, I32) for n in ("input_offset", "output_offset", "act_min", "act_max")] + [
        ("multiplier", P32), ("shift", P32), ("single_rounding", I32), ("weights", P8), ("bias", P32),
        ("units", I32), ("depth", I32)]


class AddParams(C.Structure):
    _fields_ = [(n, I32) for n in ("input1_offset", "input2_offset", "output_offset", "left_shift",
                                   "input1_multiplier", "input1_shift", "input2_multiplier", "input2_shift",
                                   "output_multiplier", "output_shift", "act_min", "act_max")]


class MulParams(C.Structure):
    _fields_ = [(n, I32) for n in ("input1_offset", "input2_offset", "output_offset", "output_multiplier",
                                   "output_shift", "act_min", "act_max")]


class PoolParams(C.Structure):
    _fields_ = [(n, I32) for n in ("pad_t", "pad_l", "pad_b", "pad_r", "filter_h", "filter_w", "stride_h",
                                   "stride_w", "act_min", "act_max", "is_max")]


class RequantParams(C.Structure):
    _fields_ = [(n, I32) for n in ("input_zero_point", "output_zero_point", "multiplier", "shift")]


class SoftmaxParams(C.Structure):
    _fields_ = [(n, I32) for n in ("input_multiplier", "input_left_shift", "diff_min", "out_int16")]


class MeanParams(C.Structure):
    _fields_ = [("axes", I32 * 4)] + [(n, I32) for n in ("n_axes", "num_elements_in_axis", "input_zero_point",
                                                          "output_zero_point", "multiplier", "shift", "empty")]


class LogisticParams(C.Structure):
    _fields_ = [(n, I32) for n in ("input_zero_point", "input_range_radius", "input_multiplier", "input_left_shift")]


class HardSwishParams(C.Structure):
    _fields_ = [(n, I32) for n in ("input_zero_point", "output_zero_point", "output_multiplier_fixedpoint_int16",
                                   "output_multiplier_exponent", "reluish_multiplier_fixedpoint_int16",
                                   "reluish_multiplier_exponent")]


def _declare(lib: C.CDLL) -> C.CDLL:
    PV = C.POINTER(View)
    win = [I32, I32, I32, I32]
    sig = {
        "mcu_conv2d": [C.POINTER(ConvParams), PV, PV, *win],
        "mcu_pointwise": [C.POINTER(ConvParams), PV, PV, *win],
        "mcu_depthwise": [C.POINTER(ConvParams), PV, PV, *win],
        "mcu_depthwise_inplace": [C.POINTER(ConvParams), PV, I32, I32, P8],
        "mcu_depthwise_pointwise": [C.POINTER(ConvParams), C.POINTER(ConvParams), PV, I32, PV, P8, *win],
        "mcu_fully_connected": [C.POINTER(FCParams), P8, I32, P8],
        "mcu_pool": [C.POINTER(PoolParams), PV, PV, *win],
        "mcu_add": [C.POINTER(AddParams), PV, PV, PV, *win],
        "mcu_mul": [C.POINTER(MulParams), PV, PV, PV, *win],
        "mcu_requantize": [C.POINTER(RequantParams), PV, PV, *win],
        "mcu_logistic": [C.POINTER(LogisticParams), PV, PV, *win],
        "mcu_hard_swish": [C.POINTER(HardSwishParams), PV, PV, *win],
        "mcu_add_broadcast": [C.POINTER(AddParams), P8, P32, P8, P32, P8, P32],
        "mcu_mul_broadcast": [C.POINTER(MulParams), P8, P32, P8, P32, P8, P32],
        "mcu_softmax": [C.POINTER(SoftmaxParams), P8, I32, I32, C.c_void_p],
        "mcu_mean": [C.POINTER(MeanParams), P8, P32, P8],
        "mcu_resize_nearest": [P32, P32, PV, PV],
        "mcu_transpose": [P32, I32, P32, P8, P8],
        "mcu_pad": [P32, I32, P32, C.c_int8, P8, P8],
        "mcu_copy": [P8, P8, I32],
    }
    for name, args in sig.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = None
    return lib


# ---- arrays -------------------------------------------------------------------------------


class Keep:
    """Holds the numpy arrays whose pointers a ctypes structure carries."""

    def __init__(self):
        self.arrays: list[np.ndarray] = []

    def p8(self, a) -> P8:
        if a is None:
            return P8()
        a = np.ascontiguousarray(a, dtype=np.int8)
        self.arrays.append(a)
        return a.ctypes.data_as(P8)

    def p32(self, a) -> P32:
        if a is None:
            return P32()
        a = np.ascontiguousarray(a, dtype=np.int32)
        self.arrays.append(a)
        return a.ctypes.data_as(P32)


def ptr8(a: np.ndarray) -> P8:
    assert a.dtype == np.int8 and a.flags.c_contiguous
    return a.ctypes.data_as(P8)


def ptr32(a: np.ndarray) -> P32:
    assert a.dtype == np.int32 and a.flags.c_contiguous
    return a.ctypes.data_as(P32)


def conv_params(d: dict, w: np.ndarray, bias, keep: Keep) -> ConvParams:
    """mcu_conv_params from a prepared CONV_2D / DEPTHWISE_CONV_2D op.data and its constants."""
    t, l, b, r = d["pad"]
    p = ConvParams()
    p.stride_h, p.stride_w = d["stride"]
    p.dil_h, p.dil_w = d["dilation"]
    p.pad_t, p.pad_l, p.pad_b, p.pad_r = t, l, b, r
    p.depth_multiplier = d.get("depth_multiplier", 1)
    p.input_offset, p.output_offset = d["input_offset"], d["output_offset"]
    p.act_min, p.act_max = d["act_min"], d["act_max"]
    p.kh, p.kw = int(w.shape[1]), int(w.shape[2])
    p.weights = keep.p8(w)
    p.bias = keep.p32(bias)
    # the per-channel table as prepare derives it, from these very constants (a test may
    # hand-make op.data or change its multipliers)
    from mcutool.ref.conv import rq_words

    oc = len(d["multiplier"])
    dw = w.shape[0] != oc  # 1HWO, else OHWI (the same sums when both read oc)
    wsum = (w.reshape(-1, oc).sum(axis=0) if dw else w.reshape(oc, -1).sum(axis=1)).astype(np.int64)
    rq = rq_words(bias, wsum, d["input_offset"], d["multiplier"], d["shift"])
    p.rq = keep.p32(rq)
    p._rq = rq  # alive as long as the struct (callers may drop `keep`)
    return p


def pool_params(d: dict, is_max: bool) -> PoolParams:
    p = PoolParams()
    p.pad_t, p.pad_l, p.pad_b, p.pad_r = d["pad"]
    p.filter_h, p.filter_w = d["filter"]
    p.stride_h, p.stride_w = d["stride"]
    p.act_min, p.act_max = d["act_min"], d["act_max"]
    p.is_max = int(is_max)
    return p


def fields(struct_cls, d: dict):
    """A flat int32 parameter structure from op.data (same field names)."""
    s = struct_cls()
    for name, _ in struct_cls._fields_:
        setattr(s, name, int(d[name]))
    return s


# ---- views ---------------------------------------------------------------------------------


class Buffer:
    """An arena buffer holding rows/columns of a (H, W, C) int8 tensor as a view does.

    cap = 0: a FULL buffer (row y in slot y); else a ring of `cap` rows (slot y % cap).
    Columns [col0, col0 + width) are held; each row takes `stride` >= width * C bytes.
    """

    def __init__(self, rng, h, w, c, rows, col0, width, cap=0, row_pad=0):
        self.h, self.w, self.c = h, w, c
        self.cap, self.col0, self.width = cap, col0, width
        self.stride = width * c + row_pad
        n_rows = cap if cap else rows
        self.mem = rng.integers(-128, 128, n_rows * self.stride + 16, dtype=np.int8)  # poison
        self.initial = self.mem.copy()
        self.view = View(self.mem.ctypes.data_as(P8), cap, self.stride, col0, h, w, c)

    def _slot(self, y):
        return y % self.cap if self.cap else y

    def _rowbytes(self, y, x0, x1):
        a = self._slot(y) * self.stride + (x0 - self.col0) * self.c
        return slice(a, a + (x1 - x0) * self.c)

    def put(self, x: np.ndarray, y0, y1, x0, x1):
        """Store x[y0:y1, x0:x1] (x is the whole H x W x C tensor)."""
        assert x0 >= self.col0 and x1 <= self.col0 + self.width
        assert not self.cap or y1 - y0 <= self.cap
        for y in range(y0, y1):
            self.mem[self._rowbytes(y, x0, x1)] = x[y, x0:x1].reshape(-1)
        self.initial = self.mem.copy()

    def get(self, y0, y1, x0, x1) -> np.ndarray:
        out = np.empty((y1 - y0, x1 - x0, self.c), np.int8)
        for y in range(y0, y1):
            out[y - y0] = self.mem[self._rowbytes(y, x0, x1)].reshape(x1 - x0, self.c)
        return out

    def untouched_outside(self, y0, y1, x0, x1) -> bool:
        """No byte outside the window's bytes changed."""
        mask = np.ones(self.mem.shape, bool)
        for y in range(y0, y1):
            mask[self._rowbytes(y, x0, x1)] = False
        return bool(np.array_equal(self.mem[mask], self.initial[mask]))


def random_buffer(rng, h, w, c, y0, y1, x0, x1, ring=None) -> Buffer:
    """A buffer able to hold rows [y0, y1) x columns [x0, x1): randomly a FULL buffer or a
    ring (cap between y1 - y0 and y1 - y0 + 2), with a column origin <= x0, spare columns,
    and sometimes padding bytes at the end of each row."""
    ring = bool(rng.integers(0, 2)) if ring is None else ring
    col0 = int(rng.integers(0, x0 + 1))
    width = x1 - col0 + int(rng.integers(0, 3))
    row_pad = int(rng.integers(0, 2)) * int(rng.integers(1, 5))
    if ring:
        cap = max(1, y1 - y0) + int(rng.integers(0, 3))
        return Buffer(rng, h, w, c, cap, col0, width, cap=cap, row_pad=row_pad)
    return Buffer(rng, h, w, c, max(y1, 1), col0, width, cap=0, row_pad=row_pad)


# ---- the same kernels built for the Cortex-M0+, run in an emulator --------------------------

_ARM_STUBS = r"""
#include <stddef.h>
void *memcpy(void *d, const void *s, size_t n) { unsigned char *a = d; const unsigned char *b = s; while (n--) *a++ = *b++; return d; }
void *memmove(void *d, const void *s, size_t n) {
    unsigned char *a = d; const unsigned char *b = s;
    if (a < b) { while (n--) *a++ = *b++; } else { a += n; b += n; while (n--) *--a = *--b; }
    return d;
}
void *memset(void *d, int c, size_t n) { unsigned char *a = d; while (n--) *a++ = (unsigned char)c; return d; }
"""

KERNEL_FUNCTIONS = ("mcu_conv2d", "mcu_pointwise", "mcu_depthwise", "mcu_depthwise_inplace",
                    "mcu_depthwise_pointwise", "mcu_fully_connected", "mcu_pool", "mcu_add", "mcu_mul",
                    "mcu_requantize", "mcu_logistic", "mcu_hard_swish", "mcu_add_broadcast", "mcu_mul_broadcast",
                    "mcu_softmax", "mcu_mean", "mcu_resize_nearest", "mcu_transpose", "mcu_pad", "mcu_copy")


def arm_toolchain_missing() -> str | None:
    """Why the Cortex-M0+ build cannot be emulated here, or None."""
    import shutil

    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-nm"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    try:
        import unicorn  # noqa: F401
    except ImportError:
        return "unicorn (CPU emulator) not installed"
    return None


class ArmKernels:
    """The kernels compiled with arm-none-eabi-gcc -mcpu=cortex-m0plus -mthumb (ARMv6-M: the
    inline-assembly dot product and fixedpoint.h's 32-bit multiply path), run in unicorn.

    call(name, *args): args are ints, ctypes Structures (passed by address, as the C takes
    them), or ctypes pointers into numpy arrays given to place() first; every placed array
    is copied in before and can be read back with fetch().
    """

    FLASH, RAM, RAM_SIZE, RET = 0x10000000, 0x20000000, 16 << 20, 0x0F000000

    def __init__(self, out_dir: Path, opt: str = "-Os"):
        import unicorn as U
        from unicorn import arm_const as A

        self.U, self.A = U, A
        out_dir = Path(out_dir)
        (out_dir / "stubs.c").write_text(_ARM_STUBS)
        elf, binf = out_dir / "kernels_m0.elf", out_dir / "kernels_m0.bin"
        srcs = sorted(str(p) for p in (ENGINE / "src" / "kernels").glob("*.c"))
        cmd = ["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", opt, "-std=c99", "-Wall", "-Wextra", "-Werror",
               "-ffreestanding", "-nostdlib", "-fno-builtin", f"-Wl,-Ttext={self.FLASH:#x}", "-Wl,-e,mcu_copy",
               "-Wl,--gc-sections", *[f"-Wl,--undefined={f}" for f in KERNEL_FUNCTIONS],
               f"-I{ENGINE / 'include'}", f"-I{ENGINE / 'src'}", *srcs, str(out_dir / "stubs.c"), "-lgcc",
               "-o", str(elf)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"building the kernels for the M0+ failed:\n{' '.join(cmd)}\n{r.stderr}")
        subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binf)], check=True)
        nm = subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True, text=True).stdout
        self.sym = {p[2]: int(p[0], 16) for p in (line.split() for line in nm.splitlines()) if len(p) == 3}
        self.uc = U.Uc(U.UC_ARCH_ARM, U.UC_MODE_THUMB | U.UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(A.UC_CPU_ARM_CORTEX_M0)
        code = binf.read_bytes()
        self.uc.mem_map(self.FLASH, (len(code) + 0xFFFF) & ~0xFFFF)
        self.uc.mem_write(self.FLASH, code)
        self.uc.mem_map(self.RAM, self.RAM_SIZE)
        self.uc.mem_map(self.RET, 0x1000)
        self.reset()

    def reset(self):
        self.top = self.RAM + 0x10000  # the stack grows down from here
        self.ranges: list[tuple[int, int, int, np.ndarray]] = []

    def _alloc(self, n: int) -> int:
        a = (self.top + 7) & ~7
        self.top = a + n
        if self.top > self.RAM + self.RAM_SIZE:
            raise MemoryError("emulated RAM exhausted")
        return a

    def place(self, *arrays):
        for arr in arrays:
            h = arr.ctypes.data
            if any(hs <= h < he for hs, he, _, _ in self.ranges):
                continue
            a = self._alloc(arr.nbytes + 8)
            self.uc.mem_write(a, arr.tobytes())
            self.ranges.append((h, h + arr.nbytes, a, arr))

    def fetch(self, arr: np.ndarray) -> np.ndarray:
        for hs, he, es, a in self.ranges:
            if a is arr:
                return np.frombuffer(bytes(self.uc.mem_read(es, he - hs)), arr.dtype).reshape(arr.shape)
        raise KeyError("array not placed")

    def _xlate(self, hp: int | None) -> int:
        if not hp:
            return 0
        for hs, he, es, _ in self.ranges:
            if hs <= hp <= he:
                return es + (hp - hs)
        raise KeyError(f"pointer {hp:#x} is into no placed array")

    def _struct(self, s) -> int:
        words = []
        for name, typ in s._fields_:
            v = getattr(s, name)
            if issubclass(typ, C._Pointer):
                words.append(self._xlate(C.cast(v, C.c_void_p).value))
            elif issubclass(typ, C.Array):
                words.extend(int(t) & 0xFFFFFFFF for t in v)
            else:
                words.append(int(v) & 0xFFFFFFFF)
        a = self._alloc(4 * len(words))
        self.uc.mem_write(a, np.array(words, "<u4").tobytes())
        return a

    def _arg(self, v) -> int:
        if isinstance(v, C.Structure):
            return self._struct(v)
        if isinstance(v, (C._Pointer, C.c_void_p)):
            return self._xlate(C.cast(v, C.c_void_p).value)
        return int(v) & 0xFFFFFFFF

    def call(self, name: str, *args):
        A = self.A
        vals = [self._arg(a) for a in args]
        sp = (self.RAM + 0x10000 - 64 - 4 * max(0, len(vals) - 4)) & ~7
        if len(vals) > 4:
            self.uc.mem_write(sp, np.array(vals[4:], "<u4").tobytes())
        for i, v in enumerate(vals[:4]):
            self.uc.reg_write(A.UC_ARM_REG_R0 + i, v)
        self.uc.reg_write(A.UC_ARM_REG_SP, sp)
        self.uc.reg_write(A.UC_ARM_REG_LR, self.RET | 1)
        self.uc.emu_start(self.sym[name] | 1, self.RET)
