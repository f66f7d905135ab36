"""`mcutool deploy`: the device app (every .py under device/app/, listed when the command
runs) and the engine natmod, copied with mpremote; then a soft reset starts the app."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..errors import McutoolError
from ..link.proto import app_dir

# py/persistentcode.h: MP_NATIVE_ARCH_*, the architecture in bits 2..7 of an .mpy's third byte.
MPY_ARCHS = ("none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
             "xtensa", "xtensawin", "rv32imc", "rv64imc")
ARM_ORDER = ("armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp")  # an ARM core runs any older one


def app_files(root: Path | None = None) -> list[tuple[Path, str]]:
    """(local file, device path) for every .py under the app folder, in a stable order."""
    root = root or app_dir()
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    if not files:
        raise McutoolError(f"{root}: no .py files to deploy; is the device app checked out?")
    return [(p, p.relative_to(root).as_posix()) for p in files]


def app_config(board: dict) -> dict:
    """mcutool.json for device/app/mcuapp.py: the board's name and where its model lives
    (the XIP address on RP2, the data partition on ESP32; the app reads the length from
    the image's header)."""
    fl = board.get("flash", {})
    if "esp32" in board:
        where = {"partition": board["esp32"].get("model_partition", "model")}
    elif "xip_base" in fl:
        # the filesystem is the top of flash: what is above the model region is its room
        where = {"xip": fl["xip_base"] + fl["model_offset"],
                 "fs_max": board["flash_bytes"] - fl["model_offset"] - fl["model_bytes"]}
    else:
        where = {"file": "model.mcu"}
    return {"board": board["name"], "model": where, "port": "stdio"}


def natmod_arch(path: str) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise McutoolError(f"{path}: cannot read the natmod: {e.strerror}") from None
    if len(head) < 4 or head[0:1] != b"M":
        raise McutoolError(f"{path}: not a MicroPython .mpy file")
    arch = head[2] >> 2
    return MPY_ARCHS[arch] if arch < len(MPY_ARCHS) else f"unknown ({arch})"


def check_natmod(board: dict | None, path: str) -> str:
    """The .mpy's architecture; refuses one the board's firmware would not import."""
    arch = natmod_arch(path)
    want = board.get("natmod_arch") if board else None
    if want and arch != want:
        older_arm = arch in ARM_ORDER and want in ARM_ORDER and ARM_ORDER.index(arch) < ARM_ORDER.index(want)
        if not older_arm:
            raise McutoolError(f"{path}: natmod built for {arch}, board {board['name']} imports {want}; "
                               f"rebuild it with ARCH={want}")
    return arch


def mpremote_argv(port: str, files: list[tuple[Path, str]], natmod: str | None = None, resume: bool = False,
                  reset: bool = True) -> list[str]:
    """One mpremote run: make the folders, copy each file to its device path, reset.
    mpremote skips a file whose hash on the device already matches. The reset is a hard one:
    mpremote works in the raw REPL, and a soft reset there does not run main.py."""
    argv = [sys.executable, "-m", "mpremote", "connect", port] + (["resume"] if resume else [])
    dirs = sorted({d for _, dev in files for d in _parents(dev)})
    if dirs:
        # mkdir fails on an existing folder, and one failure ends the whole chain.
        code = "import os\nfor d in %r:\n try: os.mkdir(d)\n except OSError: pass" % (dirs,)
        argv += ["exec", code, "+"]
    for local, dev in files:
        argv += ["fs", "cp", str(local), f":{dev}", "+"]
    if natmod:
        argv += ["fs", "cp", natmod, f":{Path(natmod).name}", "+"]
    if reset:
        return argv + ["reset"]
    return argv[:-1] if argv[-1] == "+" else argv


def _parents(dev: str) -> list[str]:
    parts = dev.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def run(argv: list[str]) -> None:
    try:
        import mpremote  # noqa: F401  (fail early, with the fix, if it is missing)
    except ImportError:
        raise McutoolError("mpremote is not installed; pip install mpremote") from None
    proc = subprocess.run(argv, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        err = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        sys.stderr.write(proc.stderr)
        raise McutoolError(f"mpremote failed (exit {proc.returncode}): {err[-1] if err else 'no message'}; "
                           f"check --port and that no other program holds it")
