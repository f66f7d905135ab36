"""The engine on an emulated Cortex-M (unicorn): bit-exactness on the real instruction set,
instruction counts, code size.

    from mcutool.emu import build, run
    elf = build(cpu="cortex-m0plus", opt="-O2")        # arm-none-eabi-gcc, device/engine/port/baremetal
    r = run(image, [input_bytes], elf, count=True)      # r.outputs, r.status, r.instructions, ...

Needs arm-none-eabi-gcc (build) and the `unicorn` Python package (run).
"""
from .build import CPUS, ElfInfo, Sizes, build, toolchain
from .counter import thumb_count
from .machine import EmuError, EmuResult, run
from .runner import EmuRunner

__all__ = ["CPUS", "ElfInfo", "EmuError", "EmuResult", "EmuRunner", "Sizes", "build", "run", "thumb_count", "toolchain"]
