"""Building the bare-metal firmware (device/engine/port/baremetal) with arm-none-eabi-gcc."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import McutoolError

from ..resources import shipped

PORT = shipped("device/engine/port/baremetal")
CROSS = os.environ.get("MCUTOOL_ARM_CROSS", "arm-none-eabi-")

# -mcpu -> unicorn's cpu model (unicorn has no M0+: the M0 runs the same ARMv6-M code)
CPUS = {"cortex-m0plus": "M0", "cortex-m0": "M0", "cortex-m3": "M3", "cortex-m4": "M4", "cortex-m7": "M7",
        "cortex-m33": "M33"}


@dataclass(frozen=True)
class Sizes:
    text: int  # .text + .rodata (Berkeley `size`)
    data: int
    bss: int


@dataclass
class ElfInfo:
    path: Path
    cpu: str
    opt: str
    engine: Sizes                                  # the engine's objects alone (no harness, libc, libgcc)
    objects: dict[str, Sizes] = field(default_factory=dict)  # per engine object
    firmware: Sizes | None = None                   # the whole linked ELF


def toolchain() -> str | None:
    """The cross compiler's path, or None if it is not installed."""
    return shutil.which(CROSS + "gcc")


def _size_table(text: str) -> dict[str, Sizes]:
    rows = {}
    for line in text.splitlines()[1:]:
        parts = line.split(None, 5)
        if len(parts) == 6:
            rows[parts[5].strip()] = Sizes(int(parts[0]), int(parts[1]), int(parts[2]))
    return rows


def build(cpu: str = "cortex-m0plus", opt: str = "-O2", out_dir=None, kernel_srcs=None, jobs: int | None = None,
          stack_size: int = 0x2000) -> ElfInfo:
    """Build firmware.elf for `cpu` at `opt` into out_dir (default: a directory under the
    system temp dir) and return where it is and how big the engine is.

    kernel_srcs replaces device/engine/src/kernels/*.c (a list of .c paths)."""
    if cpu not in CPUS:
        raise McutoolError(f"cpu {cpu!r}: choose one of {', '.join(CPUS)}")
    if not toolchain():
        raise McutoolError(f"{CROSS}gcc not found: install gcc-arm-none-eabi (Debian/Ubuntu) or the Arm GNU toolchain")
    if not (PORT / "Makefile").is_file():
        raise McutoolError(f"{PORT}: the bare-metal port is not there; reinstall mcutool (pip install mcutool)")
    # make's dependency files name sources by absolute path: one build directory per source
    # tree (and user), or a build from another checkout breaks this one's
    tree = hashlib.sha1(str(PORT.resolve()).encode()).hexdigest()[:10]
    user = os.getuid() if hasattr(os, "getuid") else 0
    out = Path(out_dir) if out_dir else Path(tempfile.gettempdir()) / f"mcutool-emu-{user}" / f"{cpu}{opt}-{tree}"
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["make", "-s", "-C", str(PORT), f"-j{jobs or os.cpu_count() or 2}", f"CPU={cpu}", f"OPT={opt}",
           f"OUT={out.resolve()}", f"CROSS={CROSS}", f"STACK_SIZE={stack_size:#x}", "all"]
    if kernel_srcs is not None:
        cmd.append("KERNEL_SRCS=" + " ".join(str(Path(s).resolve()) for s in kernel_srcs))
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise McutoolError(f"firmware build failed ({' '.join(cmd)}):\n{r.stdout}\n{r.stderr}")
    objects = _size_table((out / "engine-size.txt").read_text())
    total = objects.pop("(TOTALS)")
    fw = subprocess.run([CROSS + "size", str(out / "firmware.elf")], capture_output=True, text=True, check=True)
    firmware = next(iter(_size_table(fw.stdout).values()))
    return ElfInfo(out / "firmware.elf", cpu, opt, total, objects, firmware)
