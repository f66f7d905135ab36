"""Just enough of ELF32 (little-endian) to load a firmware into an emulator: the loadable
segments and the symbol table."""
from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import McutoolError

PT_LOAD = 1
SHT_SYMTAB = 2
STT_OBJECT, STT_FUNC = 1, 2


@dataclass
class Segment:
    vaddr: int  # where it runs
    paddr: int  # where it is stored (LMA: .data's initial values sit in flash)
    data: bytes  # file bytes (filesz)
    memsz: int
    flags: int


@dataclass
class Symbol:
    name: str
    value: int
    size: int
    type: int


@dataclass
class Elf:
    path: Path
    entry: int
    segments: list[Segment]
    symbols: dict[str, Symbol]
    _funcs: list[tuple[int, int, str]] = field(default_factory=list, repr=False)  # (start, end, name)
    _starts: list[int] = field(default_factory=list, repr=False)

    def addr(self, name: str) -> int:
        """A symbol's address (Thumb bit cleared)."""
        try:
            return self.symbols[name].value & ~1
        except KeyError:
            raise McutoolError(f"{self.path}: no symbol {name!r}") from None

    def function_at(self, addr: int) -> str:
        """The function containing `addr`, or '?'."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            start, end, name = self._funcs[i]
            if start <= addr < max(end, start + 2):
                return name
        return "?"

    def read(self, addr: int, n: int) -> bytes:
        """Bytes of the loaded image at a run address (from the file's segments)."""
        for s in self.segments:
            if s.vaddr <= addr and addr + n <= s.vaddr + len(s.data):
                return s.data[addr - s.vaddr : addr - s.vaddr + n]
        raise McutoolError(f"{self.path}: 0x{addr:08x}+{n} is not in a loaded segment")


def read_elf(path) -> Elf:
    path = Path(path)
    b = path.read_bytes()
    if b[:4] != b"\x7fELF" or b[4] != 1 or b[5] != 1:
        raise McutoolError(f"{path}: not a little-endian ELF32 file")
    (e_entry, e_phoff, e_shoff, _flags, _ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum,
     _shstrndx) = struct.unpack_from("<IIIIHHHHHH", b, 24)
    segs = []
    for i in range(e_phnum):
        p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, _ = struct.unpack_from(
            "<8I", b, e_phoff + i * e_phentsize)
        if p_type == PT_LOAD and p_memsz:
            segs.append(Segment(p_vaddr, p_paddr, b[p_offset : p_offset + p_filesz], p_memsz, p_flags))
    sections = [struct.unpack_from("<10I", b, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    symbols: dict[str, Symbol] = {}
    funcs = []
    for sh in sections:
        if sh[1] != SHT_SYMTAB:
            continue
        strtab = sections[sh[6]]
        s_off, s_size = strtab[4], strtab[5]
        strs = b[s_off : s_off + s_size]
        for k in range(sh[5] // 16):
            st_name, st_value, st_size, st_info, _other, st_shndx = struct.unpack_from("<IIIBBH", b, sh[4] + 16 * k)
            if not st_name:
                continue
            name = strs[st_name : strs.index(b"\0", st_name)].decode("utf-8", "replace")
            if name.startswith("$"):  # mapping symbols ($t, $d)
                continue
            sym = Symbol(name, st_value, st_size, st_info & 15)
            if name not in symbols or (st_info >> 4) == 1:  # globals win over file-local namesakes
                symbols[name] = sym
            if sym.type == STT_FUNC:
                start = st_value & ~1
                funcs.append((start, start + st_size, name))
    funcs.sort()
    return Elf(path, e_entry, segs, symbols, funcs, [f[0] for f in funcs])
