"""ESP-IDF partition tables in their binary form (ESP-IDF docs, "Partition Tables";
components/partition_table/gen_esp32part.py is the reference reader).

The table is a flash sector of 32-byte entries: magic 0xAA50, type, subtype, offset, size,
a 16-byte NUL-padded label, flags. An MD5 row (0xEBEB, fourteen 0xFF, the MD5 of the entries
before it) follows them, and 0xFF fills the rest, up to 0xC00 bytes."""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from ..errors import McutoolError

MAGIC = 0xAA50
MD5_MAGIC = 0xEBEB
TABLE_BYTES = 0xC00  # the bootloader reads this much: at most 95 entries and the MD5 row
ENTRY = struct.Struct("<HBBII16sI")
APP_ALIGN = 0x10000  # app partitions are memory-mapped in 64 KB MMU pages
DATA_ALIGN = 0x1000

TYPES = {"app": 0x00, "data": 0x01}
SUBTYPES = {
    "app": {"factory": 0x00, **{f"ota_{i}": 0x10 + i for i in range(16)}, "test": 0x20},
    # "undefined" (0x06) is ESP-IDF's subtype for a data partition no IDF component owns.
    "data": {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04, "efuse": 0x05,
             "undefined": 0x06, "esphttpd": 0x80, "fat": 0x81, "spiffs": 0x82, "littlefs": 0x83},
}


@dataclass
class Partition:
    name: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    @property
    def end(self) -> int:
        return self.offset + self.size


def from_board(entries: list[dict], where: str = "board") -> list[Partition]:
    """Partitions from a board file's [esp32] partitions list (names or numbers)."""
    parts = []
    for e in entries:
        try:
            t = e["type"] if isinstance(e["type"], int) else TYPES[e["type"]]
            tname = {v: k for k, v in TYPES.items()}.get(t)
            st = e["subtype"] if isinstance(e["subtype"], int) else SUBTYPES[tname][e["subtype"]]
            parts.append(Partition(e["name"], t, st, e["offset"], e["size"], int(e.get("flags", 0))))
        except (KeyError, TypeError) as err:
            raise McutoolError(f"{where}: partition {e!r}: bad or missing {err}") from None
    check(parts, where)
    return parts


def check(parts: list[Partition], where: str = "partition table", table_offset: int = 0x8000,
          flash_bytes: int | None = None) -> None:
    """What the bootloader and esp_partition rely on: alignment, no overlaps, unique labels,
    nothing over the table itself or past the end of flash."""
    if len(parts) > TABLE_BYTES // ENTRY.size - 1:
        raise McutoolError(f"{where}: {len(parts)} partitions; a table holds at most {TABLE_BYTES // ENTRY.size - 1}")
    names = set()
    for p in parts:
        if not p.name or len(p.name.encode()) > 16:
            raise McutoolError(f"{where}: partition label {p.name!r} must be 1 to 16 bytes")
        if p.name in names:
            raise McutoolError(f"{where}: two partitions are labelled '{p.name}'")
        names.add(p.name)
        align = APP_ALIGN if p.type == TYPES["app"] else DATA_ALIGN
        if p.offset % align or p.size % DATA_ALIGN or p.size <= 0:
            raise McutoolError(f"{where}: partition '{p.name}' at {p.offset:#x} + {p.size:#x} is not aligned "
                               f"(offset to {align:#x}, size to {DATA_ALIGN:#x})")
        if p.offset < table_offset + DATA_ALIGN:
            raise McutoolError(f"{where}: partition '{p.name}' at {p.offset:#x} overlaps the bootloader or the table")
        if flash_bytes is not None and p.end > flash_bytes:
            raise McutoolError(f"{where}: partition '{p.name}' ends at {p.end:#x}, past the {flash_bytes:#x}-byte flash")
    spans = sorted(parts, key=lambda p: p.offset)
    for a, b in zip(spans, spans[1:]):
        if b.offset < a.end:
            raise McutoolError(f"{where}: partitions '{a.name}' [{a.offset:#x}, {a.end:#x}) and '{b.name}' overlap")


def build(parts: list[Partition]) -> bytes:
    check(parts)
    rows = b"".join(ENTRY.pack(MAGIC, p.type, p.subtype, p.offset, p.size, p.name.encode(), p.flags) for p in parts)
    md5_row = struct.pack("<H", MD5_MAGIC) + b"\xff" * 14 + hashlib.md5(rows).digest()
    return (rows + md5_row).ljust(TABLE_BYTES, b"\xff")


def parse(buf: bytes, where: str = "partition table") -> list[Partition]:
    """The partitions of a binary table, with its MD5 row checked. Raises McutoolError."""
    parts = []
    for i in range(0, min(len(buf), TABLE_BYTES), ENTRY.size):
        row = buf[i : i + ENTRY.size]
        (magic,) = struct.unpack_from("<H", row)
        if magic == MAGIC:
            _, t, st, off, size, label, flags = ENTRY.unpack(row)
            parts.append(Partition(label.rstrip(b"\0").decode(errors="replace"), t, st, off, size, flags))
        elif magic == MD5_MAGIC:
            if row[2:16] != b"\xff" * 14 or row[16:] != hashlib.md5(buf[:i]).digest():
                raise McutoolError(f"{where}: the MD5 row does not match the entries; the table is corrupt")
            if buf[i + ENTRY.size : TABLE_BYTES] != b"\xff" * (TABLE_BYTES - i - ENTRY.size):
                raise McutoolError(f"{where}: bytes after the MD5 row are not erased (0xFF)")
            return parts
        elif row == b"\xff" * ENTRY.size:
            raise McutoolError(f"{where}: no MD5 row after {len(parts)} entries")
        else:
            raise McutoolError(f"{where}: entry {i // ENTRY.size} has magic {magic:#06x}, not {MAGIC:#06x}")
    raise McutoolError(f"{where}: no MD5 row within {TABLE_BYTES} bytes")
