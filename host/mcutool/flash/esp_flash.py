"""ESP32 and ESP32-S3: firmware, partition table and model written through esptool's API
(esptool >= 5), then each region read back as an MD5 from the chip and compared."""
from __future__ import annotations

import contextlib
import hashlib
import sys

from ..errors import McutoolError
from . import esp_partitions
from .layout import Item

BEFORE = ("default-reset", "usb-reset", "no-reset")
AFTER = ("hard-reset", "soft-reset", "no-reset")


def partition_table(board: dict) -> bytes:
    esp = board["esp32"]
    parts = esp_partitions.from_board(esp["partitions"], where=f"board {board['name']}")
    esp_partitions.check(parts, f"board {board['name']}", esp["partition_table_offset"], board["flash_bytes"])
    return esp_partitions.build(parts)


def with_table(board: dict, firmware: bytes, table: bytes) -> bytes:
    """A combined firmware image carries the stock partition table; ours replaces it in the
    image itself, so the stock table never reaches flash and the firmware verifies as written."""
    at = board["esp32"]["partition_table_offset"] - board["flash"]["firmware_offset"]
    if len(firmware) <= at:
        return firmware
    fw = bytearray(firmware)
    fw[at : at + len(table)] = table[: max(0, len(fw) - at)]
    return bytes(fw)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


@contextlib.contextmanager
def _esptool_errors(port: str, chip: str):
    """esptool's exceptions as one-line McutoolErrors that say what to do."""
    import serial
    from esptool.util import FatalError

    try:
        yield
    except serial.SerialException as e:
        raise McutoolError(f"{port}: cannot open the serial port: {_one_line(e)}; check --port and that no "
                           f"other program (a REPL, mpremote) holds it") from None
    except FatalError as e:
        msg = _one_line(e)
        if "Wrong chip argument" in msg or "This chip is" in msg:
            raise McutoolError(f"{port}: {msg.split('. Wrong')[0]}: the device is not a {chip}; pick the matching "
                               f"--board") from None
        if "Failed to connect" in msg:
            raise McutoolError(f"{port}: {msg}; hold BOOT while resetting the board to enter the ROM loader, "
                               f"or try --before no-reset") from None
        raise McutoolError(f"{port}: esptool: {msg}") from None


def flash(board: dict, port: str, items: list[Item], blobs: dict, baud: int, before: str, after: str,
          stub: bool, quiet: bool) -> list[dict]:
    """Writes every item (its bytes in blobs[item.what]) and verifies each by MD5 on the chip.
    With quiet (for --json) esptool's own output and progress bars go to stderr."""
    from esptool import cmds
    from esptool.targets import CHIP_DEFS

    chip = board["esp32"]["chip"]
    writes = [(it.offset, blobs[it.what]) for it in items]
    out = contextlib.redirect_stdout(sys.stderr) if quiet else contextlib.nullcontext()
    esp = None
    with out, _esptool_errors(port, chip):
        try:
            esp = CHIP_DEFS[chip](port, baud)
            esp.connect(before)
            if stub:
                esp = cmds.run_stub(esp)
            cmds.attach_flash(esp)
            size = cmds.detect_flash_size(esp)
            have = _size_bytes(size)
            if have is not None and have < board["flash_bytes"]:
                raise McutoolError(f"{port}: the device has {size} of flash; board {board['name']} needs "
                                   f"{board['flash_bytes'] >> 20} MB; pick the matching --board")
            # esptool verifies each write by MD5 unless told otherwise; the second check below is ours.
            cmds.write_flash(esp, writes, flash_size="keep", flash_mode="keep", flash_freq="keep")
            results = []
            for it, (off, data) in zip(items, writes):
                got = esp.flash_md5sum(off, len(data))
                want = hashlib.md5(data).hexdigest()
                if got != want:
                    raise McutoolError(f"{port}: {it.what} at {off:#x} reads back with MD5 {got}, wrote {want}; "
                                       f"flash again, and check the USB cable and power")
                results.append({"what": it.what, "offset": off, "size": len(data), "md5": got, "verified": True})
            cmds.reset_chip(esp, after)
            return results
        finally:
            if esp is not None and getattr(esp, "_port", None) is not None:
                esp._port.close()


def _size_bytes(size: str | None) -> int | None:
    if not size:
        return None
    units = {"KB": 1 << 10, "MB": 1 << 20}
    for u, m in units.items():
        if size.upper().endswith(u):
            try:
                return int(size[: -len(u)]) * m
            except ValueError:
                return None
    return None
