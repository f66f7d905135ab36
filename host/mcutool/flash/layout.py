"""What goes where in a board's flash: the model image, the firmware, and (ESP32) the
partition table; whether each fits its region. Nothing here touches a device."""
from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass

from ..boards import flash_misfit, load_board
from ..errors import McutoolError

ESP_IMAGE_MAGIC = 0xE9
ESP_CHIP_IDS = {"esp32": 0, "esp32s3": 9}  # the chip id in an ESP image's extended header (byte 12)


@dataclass
class Item:
    what: str  # "firmware", "partition-table", "model"
    offset: int  # flash offset
    address: int  # where the CPU sees it: the XIP address on RP2, the flash offset on ESP32
    size: int
    room: int  # bytes its region has
    source: str

    @property
    def fits(self) -> bool:
        return self.size <= self.room


def family(board: dict) -> str:
    if "esp32" in board:
        return "esp32"
    if "rp2" in board:
        return "rp2"
    raise McutoolError(f"board '{board['name']}' has no [esp32] or [rp2] section, so mcutool cannot flash it")


def flash_board(name: str) -> dict:
    b = load_board(name)
    family(b)
    if "flash" not in b:
        raise McutoolError(f"board '{name}' has no [flash] layout (boards/{name}.toml); mcutool flash needs one")
    return b


def read_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise McutoolError(f"{path}: cannot read the {what}: {e.strerror}") from None


def read_model(path: str) -> bytes:
    """The image bytes, after the full check the engine makes at load time: a corrupt or
    truncated image is refused before anything is written."""
    from ..image.format import unpack

    data = read_file(path, "model image")
    unpack(data, where=path)
    return data


def check_esp_firmware(board: dict, fw: bytes, path: str) -> None:
    chip = board["esp32"]["chip"]
    if len(fw) < 16 or fw[0] != ESP_IMAGE_MAGIC:
        raise McutoolError(f"{path}: not an ESP firmware image (first byte {fw[:1].hex() or 'none'}, expected e9); "
                           f"give the combined firmware .bin that is flashed at {board['flash']['firmware_offset']:#x}")
    got = int.from_bytes(fw[12:14], "little")
    if got != ESP_CHIP_IDS[chip]:
        names = {v: k for k, v in ESP_CHIP_IDS.items()}
        raise McutoolError(f"{path}: firmware built for chip id {got} ({names.get(got, 'another chip')}), "
                           f"not {chip}; download the {chip} firmware or pick the right --board")


def plan(board: dict, image: bytes, image_path: str, firmware: bytes | None = None,
         firmware_path: str | None = None) -> list[Item]:
    fl = board["flash"]
    base = fl.get("xip_base", 0)
    items = []
    if firmware is not None:
        if family(board) == "esp32":
            check_esp_firmware(board, firmware, firmware_path)
            size = len(firmware)
        else:
            from .rp2_flash import firmware_span

            lo, hi = firmware_span(board, firmware, firmware_path)
            size = hi - base  # what counts is how far up the firmware reaches
        items.append(Item("firmware", fl["firmware_offset"], base + fl["firmware_offset"], size,
                          fl["firmware_max_bytes"], firmware_path))
    if family(board) == "esp32":
        from .esp_partitions import TABLE_BYTES

        pt = board["esp32"]["partition_table_offset"]
        items.append(Item("partition-table", pt, pt, TABLE_BYTES, TABLE_BYTES, "generated"))
    items.append(Item("model", fl["model_offset"], base + fl["model_offset"], len(image), fl["model_bytes"], image_path))
    return items


def refuse_misfits(board: dict, items: list[Item]) -> None:
    for it in items:
        if not it.fits:
            if it.what == "model":
                raise McutoolError(f"{it.source}: {flash_misfit(it.size, board)}; plan a smaller model "
                                   f"or use a board with a larger region (mcutool boards)")
            raise McutoolError(f"{it.source}: the firmware reaches {it.size:,} bytes past its start; board "
                               f"{board['name']} leaves it {it.room:,} below the model region (docs/boards.md)")


def report(board: dict, items: list[Item], port: str | None, dry_run: bool) -> dict:
    return {
        "board": board["name"],
        "port": port,
        "dry_run": dry_run,
        "fits": all(it.fits for it in items),
        "writes": [{**asdict(it), "fits": it.fits} for it in items],
    }


def format_plan(rep: dict) -> str:
    lines = [f"board {rep['board']}" + (f", port {rep['port']}" if rep.get("port") else "")]
    for w in rep["writes"]:
        lines.append(f"  {w['what']:<16} at {w['address']:#010x}  {w['size']:>10,} bytes of {w['room']:>10,}  "
                     f"{'fits' if w['fits'] else 'DOES NOT FIT'}  ({w['source']})")
    return "\n".join(lines)


class Progress:
    """A one-line progress bar on stderr, for the copies esptool does not draw itself."""

    def __init__(self, label: str, total: int, enabled: bool = True):
        self.label, self.total, self.done = label, max(total, 1), 0
        self.enabled = enabled and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"

    def update(self, n: int) -> None:
        self.done += n
        if self.enabled:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            print(f"\r{self.label} [{bar:<30}] {frac:6.1%} {self.done:,}/{self.total:,} B", end="", file=sys.stderr)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)
