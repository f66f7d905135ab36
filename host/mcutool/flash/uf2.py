"""UF2 files (https://github.com/microsoft/uf2): what the RP2040/RP2350 boot ROM's USB drive
accepts. Each 512-byte block carries 256 bytes of flash at an absolute address."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import McutoolError

MAGIC_START0 = 0x0A324655  # "UF2\n"
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FAMILY_ID_PRESENT = 0x00002000
BLOCK = 512
PAYLOAD = 256  # the boot ROMs program flash in 256-byte pages and want exactly this
_HEAD = struct.Struct("<8I")  # magic0, magic1, flags, address, size, block_no, n_blocks, family
DATA_AT = _HEAD.size
END_AT = BLOCK - 4

FAMILIES = {  # pico-sdk src/common/boot_uf2_headers/include/boot/uf2.h
    0xE48BFF56: "rp2040",
    0xE48BFF57: "absolute",
    0xE48BFF58: "data",
    0xE48BFF59: "rp2350-arm-s",
    0xE48BFF5A: "rp2350-riscv",
    0xE48BFF5B: "rp2350-arm-ns",
}


def pack(data: bytes, address: int, family: int) -> bytes:
    """`data` at flash `address` (a multiple of 256), as UF2 blocks; the last block is padded
    with 0xFF, the value of erased flash."""
    if address % PAYLOAD:
        raise McutoolError(f"UF2 target address {address:#x} is not a multiple of {PAYLOAD}")
    n = max(1, -(-len(data) // PAYLOAD))
    out = bytearray()
    for i in range(n):
        chunk = data[i * PAYLOAD : (i + 1) * PAYLOAD].ljust(PAYLOAD, b"\xff")
        block = bytearray(BLOCK)
        _HEAD.pack_into(block, 0, MAGIC_START0, MAGIC_START1, FLAG_FAMILY_ID_PRESENT, address + i * PAYLOAD,
                        PAYLOAD, i, n, family)
        block[DATA_AT : DATA_AT + PAYLOAD] = chunk
        struct.pack_into("<I", block, END_AT, MAGIC_END)
        out += block
    return bytes(out)


@dataclass
class Block:
    flags: int
    address: int
    size: int
    block_no: int
    n_blocks: int
    family: int | None
    payload: bytes


def parse(buf: bytes, where: str = "UF2") -> list[Block]:
    """Every block of a UF2 file, checked: magics, sizes, numbering. Raises McutoolError."""
    if not buf or len(buf) % BLOCK:
        raise McutoolError(f"{where}: {len(buf)} bytes is not a whole number of {BLOCK}-byte UF2 blocks")
    blocks = []
    for k in range(len(buf) // BLOCK):
        raw = buf[k * BLOCK : (k + 1) * BLOCK]
        m0, m1, flags, addr, size, no, n, fam = _HEAD.unpack_from(raw)
        (end,) = struct.unpack_from("<I", raw, END_AT)
        if (m0, m1, end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise McutoolError(f"{where}: block {k} has bad magic numbers; not a UF2 file")
        if size > END_AT - DATA_AT:
            raise McutoolError(f"{where}: block {k} claims {size} payload bytes")
        blocks.append(Block(flags, addr, size, no, n, fam if flags & FLAG_FAMILY_ID_PRESENT else None,
                            bytes(raw[DATA_AT : DATA_AT + size])))
    return blocks


def flash_span(blocks: list[Block]) -> tuple[int, int]:
    """[lowest, highest) address the main-flash blocks write."""
    main = [b for b in blocks if not b.flags & FLAG_NOT_MAIN_FLASH]
    if not main:
        return (0, 0)
    return min(b.address for b in main), max(b.address + b.size for b in main)
