"""RP2040/RP2350: the model as a UF2 at its reserved XIP address, copied to the boot drive.

The boot ROM's USB drive (BOOTSEL) writes each UF2 block to the flash address it names and
reboots when the file's last block has arrived. The firmware, when given, goes into the
same file ahead of the model: a separate copy would reboot the board into the firmware
before the model arrives."""
from __future__ import annotations

import glob
import os

from ..errors import McutoolError
from . import uf2
from .layout import Progress

INFO_FILE = "INFO_UF2.TXT"
# Families the boot ROM of each chip takes for flash; "absolute" is RP2350's family for
# blocks that ignore any partition table (picotool adds one to RP2350 firmware UF2s).
CHIP_FAMILIES = {0xE48BFF56: {0xE48BFF56}, 0xE48BFF59: {0xE48BFF57, 0xE48BFF58, 0xE48BFF59, 0xE48BFF5A, 0xE48BFF5B}}
MOUNT_GLOBS = ("/media/*/*", "/run/media/*/*", "/media/*", "/mnt/*", "/Volumes/*")


def firmware_span(board: dict, fw: bytes, path: str) -> tuple[int, int]:
    """[lowest, highest) flash address a firmware UF2 writes; refuses another chip's firmware."""
    blocks = uf2.parse(fw, where=path)
    fam = board["rp2"]["uf2_family"]
    ok = CHIP_FAMILIES.get(fam, {fam})
    bad = {b.family for b in blocks if b.family not in ok}
    if bad:
        names = ", ".join(uf2.FAMILIES.get(f, f"{f:#x}") if f is not None else "none" for f in sorted(bad, key=str))
        raise McutoolError(f"{path}: UF2 family {names} does not run on board {board['name']}; "
                           f"download its firmware or pick the right --board")
    lo, hi = uf2.flash_span(blocks)
    base = board["flash"]["xip_base"]
    if lo < base:
        raise McutoolError(f"{path}: the firmware writes below flash ({lo:#x} < {base:#x})")
    return lo, hi


def build(board: dict, image: bytes, firmware: bytes | None = None) -> bytes:
    """One UF2: the firmware's blocks (when given) then the model's, numbered as one file."""
    fl = board["flash"]
    model = uf2.parse(uf2.pack(image, fl["xip_base"] + fl["model_offset"], board["rp2"]["uf2_family"]))
    blocks = (uf2.parse(firmware) if firmware is not None else []) + model
    out = bytearray()
    for i, b in enumerate(blocks):
        raw = bytearray(uf2.BLOCK)
        uf2._HEAD.pack_into(raw, 0, uf2.MAGIC_START0, uf2.MAGIC_START1, b.flags, b.address, b.size, i, len(blocks),
                            b.family or 0)
        raw[uf2.DATA_AT : uf2.DATA_AT + b.size] = b.payload
        raw[uf2.END_AT :] = uf2.MAGIC_END.to_bytes(4, "little")
        out += raw
    return bytes(out)


def _board_id(drive: str) -> str | None:
    try:
        with open(os.path.join(drive, INFO_FILE), encoding="ascii", errors="replace") as f:
            for line in f:
                if line.lower().startswith("board-id:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def find_boot_drive(board: dict, port: str | None) -> str:
    """The mounted BOOTSEL drive: --port if given (a directory with INFO_UF2.TXT), else the one
    mounted drive whose Board-ID matches the board."""
    label = board["rp2"].get("boot_drive_label", "")
    if port:
        if not os.path.isfile(os.path.join(port, INFO_FILE)):
            raise McutoolError(f"{port}: not a UF2 boot drive (no {INFO_FILE}); hold BOOTSEL while plugging the "
                               f"board in, then give its mount point, or write a file with -o")
        drives = [port]
    else:
        drives = sorted({os.path.dirname(p) for g in MOUNT_GLOBS for p in glob.glob(os.path.join(g, INFO_FILE))})
        if not drives:
            raise McutoolError(f"no UF2 boot drive is mounted; hold BOOTSEL while plugging the {board['name']} in, "
                               f"or give the drive with --port, or write a file with -o")
    matching = [d for d in drives if not label or (_board_id(d) or "").upper().startswith(label.upper())]
    if not matching:
        ids = ", ".join(f"{d} ({_board_id(d) or 'no Board-ID'})" for d in drives)
        raise McutoolError(f"boot drive {ids} is not a {board['name']} (Board-ID {label}); pick the right --board")
    if len(matching) > 1:
        raise McutoolError(f"{len(matching)} {board['name']} boot drives are mounted ({', '.join(matching)}); "
                           f"choose one with --port")
    return matching[0]


def write(data: bytes, path: str, progress: bool = True, label: str = "copy") -> None:
    """Written in 64 KB pieces with a progress bar, and synced: the boot ROM flashes as blocks
    arrive, and unplugging before the data is on the device loses it."""
    bar = Progress(label, len(data), progress)
    try:
        with open(path, "wb") as f:
            for i in range(0, len(data), 1 << 16):
                f.write(data[i : i + (1 << 16)])
                f.flush()
                bar.update(min(1 << 16, len(data) - i))
            os.fsync(f.fileno())
    except OSError as e:
        raise McutoolError(f"{path}: cannot write: {e.strerror}") from None
    finally:
        bar.close()
