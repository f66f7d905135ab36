"""Exact counts of executed Thumb instructions, from unicorn's block hook.

Every executed translation block (address, size) is counted; afterwards each distinct
block is decoded once (a 32-bit Thumb instruction is a halfword whose top five bits are
0b11101, 0b11110 or 0b11111, followed by a second halfword) and the total is
sum(hits x instructions). The per-block hook is a tiny C function when a host C compiler
is available (compiled once into a cache directory and handed to unicorn as a native
callback: ~20-50x faster than a Python callback), else a Python callback.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

_C_SOURCE = r"""
#include <stdint.h>
/* One slot per distinct (address, size) block; open addressing, linear probing. */
typedef struct { uint64_t key, hits; } mcu_slot;
typedef struct { mcu_slot *slots; uint64_t mask, used, limit, dropped; } mcu_table;

void mcu_emu_block(void *uc, uint64_t address, uint32_t size, void *user) {
    mcu_table *t = (mcu_table *)user;
    uint64_t key = (address << 24) | (uint64_t)(size & 0xFFFFFFu) | (1ull << 63);
    uint64_t h = ((address >> 1) ^ ((uint64_t)size << 7)) * 0x9E3779B97F4A7C15ull;
    uint64_t i = (h >> 40) & t->mask;
    for (;;) {
        mcu_slot *s = &t->slots[i];
        if (s->key == key) { s->hits++; return; }
        if (!s->key) {
            if (t->used >= t->limit) { t->dropped++; return; }
            s->key = key; s->hits = 1; t->used++; return;
        }
        i = (i + 1) & t->mask;
    }
}
"""


class _Slot(ctypes.Structure):
    _fields_ = [("key", ctypes.c_uint64), ("hits", ctypes.c_uint64)]


class _Table(ctypes.Structure):
    _fields_ = [("slots", ctypes.POINTER(_Slot)), ("mask", ctypes.c_uint64), ("used", ctypes.c_uint64),
                ("limit", ctypes.c_uint64), ("dropped", ctypes.c_uint64)]


_native = None  # (CDLL, function address) once compiled; False if no compiler


def _native_hook():
    global _native
    if _native is None:
        _native = False
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if cc and os.environ.get("MCUTOOL_EMU_PYHOOK") != "1":
            tag = hashlib.sha256(_C_SOURCE.encode()).hexdigest()[:16]
            d = Path(tempfile.gettempdir()) / f"mcutool-emu-{os.getuid() if hasattr(os, 'getuid') else 0}"
            so = d / f"blockcount-{tag}.so"
            try:
                if not so.is_file():
                    d.mkdir(parents=True, exist_ok=True)
                    src = d / f"blockcount-{tag}.c"
                    src.write_text(_C_SOURCE)
                    tmp = d / f"blockcount-{tag}.{os.getpid()}.so"
                    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(src)], check=True,
                                   capture_output=True)
                    os.replace(tmp, so)
                lib = ctypes.CDLL(str(so))
                _native = (lib, ctypes.cast(lib.mcu_emu_block, ctypes.c_void_p).value)
            except (OSError, subprocess.CalledProcessError):
                _native = False
    return _native or None


class BlockCounter:
    """Counts executed blocks of one Uc instance. counts() -> {(address, size): hits}."""

    def __init__(self, uc, native: bool | None = None):
        from unicorn import UC_HOOK_BLOCK

        hook = _native_hook() if native in (None, True) else None
        if native is True and hook is None:
            raise RuntimeError("no host C compiler for the native block counter")
        self.native = hook is not None
        self.uc = uc
        if self.native:
            from unicorn.unicorn_py3.unicorn import uclib

            n = 1 << 16
            self._slots = (_Slot * n)()
            self._table = _Table(ctypes.cast(self._slots, ctypes.POINTER(_Slot)), n - 1, 0, n * 3 // 4, 0)
            self._lib = hook[0]
            h = ctypes.c_size_t()
            err = uclib.uc_hook_add(uc._uch, ctypes.byref(h), UC_HOOK_BLOCK, ctypes.c_void_p(hook[1]),
                                    ctypes.cast(ctypes.pointer(self._table), ctypes.c_void_p),
                                    ctypes.c_uint64(1), ctypes.c_uint64(0))
            if err:
                raise RuntimeError(f"uc_hook_add failed: {err}")
            self.handle = h.value
        else:
            self._counts: Counter = Counter()
            counts = self._counts

            def on_block(_uc, address, size, _user):
                counts[(address, size)] += 1

            self.handle = uc.hook_add(UC_HOOK_BLOCK, on_block)

    def counts(self) -> dict[tuple[int, int], int]:
        if not self.native:
            return dict(self._counts)
        if self._table.dropped:
            raise RuntimeError(f"block counter table full ({self._table.used} blocks)")
        a = np.ctypeslib.as_array(ctypes.cast(self._slots, ctypes.POINTER(ctypes.c_uint64)),
                                  shape=(2 * (self._table.mask + 1),)).reshape(-1, 2)
        used = a[a[:, 0] != 0]
        keys = used[:, 0] & np.uint64((1 << 63) - 1)
        return {(int(k >> np.uint64(24)), int(k & np.uint64(0xFFFFFF))): int(h) for k, h in zip(keys, used[:, 1])}



def thumb_count(code: bytes) -> int:
    """Instructions in a run of Thumb code that starts on an instruction boundary."""
    n = i = 0
    while i + 1 < len(code):
        hw = code[i] | (code[i + 1] << 8)
        i += 4 if (hw >> 11) in (0b11101, 0b11110, 0b11111) else 2
        n += 1
    return n


def instructions(counts: dict[tuple[int, int], int], read) -> tuple[int, dict[int, int]]:
    """Total instructions, and instructions per block start address. `read(addr, n)`
    returns code bytes."""
    total = 0
    per_block: dict[int, int] = {}
    cache: dict[tuple[int, int], int] = {}
    for (addr, size), hits in counts.items():
        if not size:
            continue
        k = cache.get((addr, size))
        if k is None:
            k = cache[(addr, size)] = thumb_count(read(addr, size))
        total += k * hits
        per_block[addr] = per_block.get(addr, 0) + k * hits
    return total, per_block
