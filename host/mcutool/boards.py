"""Board descriptions from boards/*.toml: what the planner may spend on each board, and
where the flash tools put the model (docs/boards.md)."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import McutoolError

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

# The ARCH values MicroPython's natmod build accepts (docs/develop/natmod.rst).
NATMOD_ARCHS = ("x86", "x64", "armv6m", "armv7m", "armv7emsp", "armv7emdp", "xtensa", "xtensawin",
                "rv32imc", "rv64imc")
FLASH_SECTOR = 4096  # the erase unit of every supported board's flash
FLASH_REGIONS = ("firmware", "model", "filesystem")


def boards_dir() -> Path:
    env = os.environ.get("MCUTOOL_BOARDS")
    from .resources import shipped

    return Path(env) if env else shipped("boards")


def list_boards() -> list[str]:
    d = boards_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def load_board(name: str) -> dict:
    path = boards_dir() / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(list_boards()) or "none found"
        raise McutoolError(f"unknown board '{name}'; known boards: {known}")
    try:
        with open(path, "rb") as f:
            b = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise McutoolError(f"{path}: {e}") from None
    _check(b, str(path))
    b.setdefault("name", name)
    return b


def sram_misfit(peak: int, budget: int | None, board: str | None = None) -> str | None:
    """The one SRAM rule that convert, sim and flash apply alike: the plan's arena (its
    peak) within the budget. Says why not, or None when it fits or there is no budget."""
    if budget is None or peak <= budget:
        return None
    where = f"board {board}" if board else "the budget"
    return f"the plan needs {peak:,} B of SRAM, {where} allows {budget:,} B"


def flash_misfit(size: int, board: dict) -> str | None:
    """The one flash rule that convert and flash apply alike: the image within the board's
    model region. Says why not, or None when it fits or the board has no [flash] layout."""
    fl = board.get("flash")
    if not fl or size <= fl["model_bytes"]:
        return None
    return (f"the image is {size:,} bytes; board {board['name']}'s model region at "
            f"{fl.get('xip_base', 0) + fl['model_offset']:#x} holds {fl['model_bytes']:,} (docs/boards.md)")


def _int(b: dict, key: str, where: str, minimum: int = 1) -> None:
    v = b.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise McutoolError(f"{where}: needs {'a positive' if minimum else 'a non-negative'} integer '{key}'")


def _check(b: dict, where: str) -> None:
    """Only 'sram_budget' is required (plan and convert need nothing else); every other field
    a board file has must be well-formed, so flash and deploy can trust what they read."""
    _int(b, "sram_budget", where)
    if "sram_budget_source" in b and not (isinstance(b["sram_budget_source"], str) and b["sram_budget_source"].strip()):
        raise McutoolError(f"{where}: 'sram_budget_source' must say where the SRAM budget comes from")
    for key in ("clock_hz", "flash_bytes", "sram_bytes"):
        if key in b:
            _int(b, key, where)
    if "natmod_arch" in b and b["natmod_arch"] not in NATMOD_ARCHS:
        raise McutoolError(f"{where}: natmod_arch '{b['natmod_arch']}' is not one of {', '.join(NATMOD_ARCHS)}")
    if "sram_bytes" in b and b["sram_budget"] > b["sram_bytes"]:
        raise McutoolError(f"{where}: sram_budget {b['sram_budget']} exceeds sram_bytes {b['sram_bytes']}")
    serial = b.get("serial", {})
    if not isinstance(serial, dict):
        raise McutoolError(f"{where}: [serial] must be a table")
    if "baud" in serial:
        _int(serial, "baud", f"{where} [serial]")
    if "flash" in b:
        _check_flash(b, where)
    if "esp32" in b and "rp2" in b:
        raise McutoolError(f"{where}: a board is either [esp32] or [rp2], not both")
    if "rp2" in b:
        _int(b["rp2"], "uf2_family", f"{where} [rp2]")
        _int(b["flash"] if "flash" in b else {}, "xip_base", f"{where} [flash]")


def _check_flash(b: dict, where: str) -> None:
    fl = b["flash"]
    w = f"{where} [flash]"
    if "flash_bytes" not in b:
        raise McutoolError(f"{where}: a [flash] layout needs 'flash_bytes'")
    spans = []
    for region in FLASH_REGIONS:
        _int(fl, f"{region}_offset", w, minimum=0)
        size_key = "firmware_max_bytes" if region == "firmware" else f"{region}_bytes"
        _int(fl, size_key, w)
        off, size = fl[f"{region}_offset"], fl[size_key]
        if region != "firmware" and (off % FLASH_SECTOR or size % FLASH_SECTOR):
            raise McutoolError(f"{w}: the {region} region {off:#x} + {size:#x} is not aligned to {FLASH_SECTOR}-byte sectors")
        if off + size > b["flash_bytes"]:
            raise McutoolError(f"{w}: the {region} region {off:#x} + {size:#x} runs past the end of flash ({b['flash_bytes']:#x})")
        spans.append((off, off + size, region))
    spans.sort()
    for (a0, a1, an), (b0, _b1, bn) in zip(spans, spans[1:]):
        if b0 < a1:
            raise McutoolError(f"{w}: the {an} region [{a0:#x}, {a1:#x}) overlaps the {bn} region at {b0:#x}")
    if "esp32" in b:
        esp = b["esp32"]
        if esp.get("chip") not in ("esp32", "esp32s3"):
            raise McutoolError(f"{where} [esp32]: chip must be 'esp32' or 'esp32s3'")
        _int(esp, "partition_table_offset", f"{where} [esp32]")
        parts = esp.get("partitions")
        if not isinstance(parts, list) or not parts:
            raise McutoolError(f"{where} [esp32]: needs a 'partitions' list")
        model = [p for p in parts if isinstance(p, dict) and p.get("name") == esp.get("model_partition")]
        if len(model) != 1:
            raise McutoolError(f"{where} [esp32]: 'model_partition' must name exactly one partition")
        if (model[0].get("offset"), model[0].get("size")) != (fl["model_offset"], fl["model_bytes"]):
            raise McutoolError(f"{where}: the model partition and [flash] model_offset/model_bytes disagree")
