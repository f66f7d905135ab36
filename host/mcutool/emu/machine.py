"""Running firmware.elf (the bare-metal harness + engine) on an emulated Cortex-M.

Memory, as on an RP2040: flash (XIP) at 0x10000000 holds the firmware's code and read-only
data and, after it at a 16-byte aligned address, the flash image exactly as given (read in
place, mapped read-only); 264 KiB of SRAM at 0x20000000 holds the job block, .data/.bss,
then the device inputs, outputs and the arena (exactly mcu_arena_bytes unless told
otherwise), and the stack at the top.

The run stops twice: at mcu_harness_mark (after mcu_load), where the host learns the
model's I/O sizes and arena size from the job block and places inputs, outputs and arena;
and at mcu_harness_exit (the `bkpt #0` after main returns).
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import McutoolError
from .build import CPUS, ElfInfo
from .counter import BlockCounter, instructions
from .elf import Elf, read_elf

FLASH_BASE, FLASH_MAX = 0x10000000, 16 << 20
SRAM_BASE, SRAM_SIZE = 0x20000000, 264 << 10

# job.h
MAX_IO = 8
JOB_MAGIC, JOB_DONE, JOB_LOAD_ONLY = 0x314A434D, 0x454E4F44, 1
W_MAGIC, W_FLAGS, W_IMAGE, W_IMAGE_LEN, W_ARENA, W_ARENA_LEN, W_N_IN, W_N_OUT = range(8)
W_INPUTS, W_OUTPUTS = 8, 8 + MAX_IO
W_LOAD, W_INVOKE, W_ARENA_BYTES, W_MODEL_IN, W_MODEL_OUT = (8 + 2 * MAX_IO + k for k in range(5))
W_IN_BYTES, W_OUT_BYTES, W_DONE = 13 + 2 * MAX_IO, 13 + 3 * MAX_IO, 13 + 4 * MAX_IO
JOB_WORDS = 14 + 4 * MAX_IO

STACK_FILL = 0x5AC3A55C  # painted over free SRAM and the stack to measure the stack's depth
MCU_ERR_ARG = -1


class EmuError(McutoolError):
    pass


@dataclass
class EmuResult:
    outputs: list[bytes]
    status: int          # the load status if mcu_load failed, else mcu_invoke's
    load_status: int
    invoke_status: int | None  # None if not run (load failed or load_only)
    arena_bytes: int     # mcu_arena_bytes() as the device computed it (0 if the load failed)
    instructions: int | None = None         # executed instructions, reset to bkpt (count=True)
    load_instructions: int | None = None    # ... from reset through mcu_load
    invoke_instructions: int | None = None  # ... of the inference (mcu_invoke, incl. copies)
    per_function: dict[str, int] | None = None  # instructions by function (self), whole run
    stack_bytes: int = 0   # deepest stack use seen
    sram_bytes: int = 0    # job + .data + .bss + inputs + outputs + arena + deepest stack
    seconds: float = 0.0   # wall time of the emulation proper
    layout: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (address, bytes)


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


_elf_cache: dict[tuple[str, float], Elf] = {}


def _load_elf(path: Path) -> Elf:
    key = (str(path), path.stat().st_mtime)
    if key not in _elf_cache:
        _elf_cache[key] = read_elf(path)
    return _elf_cache[key]


def _new_uc(cpu: str):
    """A unicorn engine that really is `cpu`.

    Not UC_MODE_MCLASS: unicorn (2.1.4 and master) replaces any model chosen with
    ctl_set_cpu_model by the Cortex-M33 when that mode bit is set (qemu/target/arm/cpu.c,
    cpu_arm_init), so an "M0" would accept Thumb-2. Plain UC_MODE_THUMB with the M-profile
    model gives an M-profile CPU with exactly that model's instruction set (on the M0,
    Thumb-2 instructions such as sdiv or ldr.w are UC_ERR_INSN_INVALID).
    """
    from unicorn import UC_ARCH_ARM, UC_MODE_THUMB, Uc, arm_const

    model = getattr(arm_const, f"UC_CPU_ARM_CORTEX_{CPUS[cpu]}")
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
    uc.ctl_set_cpu_model(model)
    if uc.ctl_get_cpu_model() != model:
        raise EmuError(f"unicorn did not take cpu model {model} ({cpu})")
    return uc


def run(image: bytes, inputs: list[bytes], elf, count: bool | str = False, *, load_only: bool = False,
        arena_len: int | None = None, cpu: str | None = None, timeout: float = 600.0,
        native_counter: bool | None = None) -> EmuResult:
    """Run one inference of `image` on the emulated Cortex-M.

    elf: an ElfInfo from build() or a path to firmware.elf (then cpu defaults to cortex-m0plus).
    inputs: one bytes object per device input (int8 NHWC), as plan.device_inputs lists them.
    count: False (fastest), True (exact instruction counts from a block hook, with
      per-function attribution) or "code" (a per-instruction hook: slow, for checking).
    arena_len: bytes given to the engine (default: exactly what mcu_arena_bytes says).
    """
    from unicorn import UC_HOOK_CODE, UC_HOOK_INTR, UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_READ, UcError, arm_const

    if isinstance(elf, ElfInfo):
        cpu = cpu or elf.cpu
        elf = elf.path
    cpu = cpu or "cortex-m0plus"
    if cpu not in CPUS:
        raise EmuError(f"cpu {cpu!r}: choose one of {', '.join(CPUS)}")
    e = _load_elf(Path(elf))
    image = bytes(image)

    uc = _new_uc(cpu)

    # flash: firmware (code, rodata, .data's initial values), then the image
    flash_end = e.addr("__flash_end")
    image_addr = _align(flash_end, 16)
    flash_size = _align(image_addr + len(image) - FLASH_BASE, 64 << 10)
    if flash_size > FLASH_MAX:
        raise EmuError(f"firmware + image ({image_addr + len(image) - FLASH_BASE} bytes) exceed the 16 MiB XIP window")
    uc.mem_map(FLASH_BASE, flash_size, UC_PROT_READ | UC_PROT_EXEC)
    uc.mem_map(SRAM_BASE, SRAM_SIZE, UC_PROT_ALL)
    for s in e.segments:
        if s.data and FLASH_BASE <= s.paddr < FLASH_BASE + FLASH_MAX:
            uc.mem_write(s.paddr, s.data)
    uc.mem_write(image_addr, image)

    job_addr = e.addr("mcu_job_block")
    free_start, stack_limit, stack_top = e.addr("__free_start"), e.addr("__stack_limit"), e.addr("__stack_top")
    if job_addr != SRAM_BASE or stack_top != SRAM_BASE + SRAM_SIZE:
        raise EmuError(f"{elf}: the job block must be at 0x{SRAM_BASE:08x} and the stack end SRAM")
    uc.mem_write(free_start, struct.pack("<I", STACK_FILL) * ((stack_top - free_start) // 4))
    job = [0] * JOB_WORDS
    job[W_MAGIC], job[W_FLAGS] = JOB_MAGIC, JOB_LOAD_ONLY if load_only else 0
    job[W_IMAGE], job[W_IMAGE_LEN] = image_addr, len(image)
    uc.mem_write(job_addr, struct.pack(f"<{JOB_WORDS}I", *job))

    def read_job() -> list[int]:
        return list(struct.unpack(f"<{JOB_WORDS}i", uc.mem_read(job_addr, 4 * JOB_WORDS)))

    trap = []

    def on_intr(uc_, intno, _):
        trap.append((intno, uc_.reg_read(arm_const.UC_ARM_REG_PC)))
        uc_.emu_stop()

    uc.hook_add(UC_HOOK_INTR, on_intr)
    counter = None
    code_counts: dict[int, int] = {}
    if count == "code":
        def on_code(_uc, address, _size, _u):
            code_counts[address] = code_counts.get(address, 0) + 1
        uc.hook_add(UC_HOOK_CODE, on_code)
    elif count:
        counter = BlockCounter(uc, native_counter)

    def total_now() -> tuple[int, dict]:
        if count == "code":
            return sum(code_counts.values()), dict(code_counts)
        return instructions(counter.counts(), e.read)

    seconds = 0.0

    def go(begin: int, until: int, what: str):
        nonlocal seconds
        t0 = time.perf_counter()
        try:
            uc.emu_start(begin | 1, until, timeout=int(timeout * 1e6))
        except UcError as err:
            pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
            raise EmuError(f"emulation of {what} failed at pc=0x{pc:08x} ({e.function_at(pc)}): {err}") from None
        finally:
            seconds += time.perf_counter() - t0
        pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
        if trap:
            intno, tpc = trap[0]
            raise EmuError(f"{what}: exception {intno} at pc=0x{tpc:08x} ({e.function_at(tpc)})"
                           + (" (a fault: bkpt #1)" if tpc & ~1 == e.addr("mcu_harness_fault") else ""))
        if pc & ~1 != until:
            raise EmuError(f"{what}: stopped at pc=0x{pc:08x} ({e.function_at(pc)}) after {timeout:g} s")
        return pc

    # 1: reset .. mcu_load .. mcu_harness_mark
    pc = go(e.entry, e.addr("mcu_harness_mark"), "mcu_load")
    j = read_job()
    load_status = j[W_LOAD]
    load_count = total_now()[0] if count else None
    layout = {"job": (job_addr, 4 * JOB_WORDS), "image": (image_addr, len(image))}
    outputs_at: list[tuple[int, int]] = []
    arena_bytes = 0
    if load_status == 0:
        arena_bytes = j[W_ARENA_BYTES] & 0xFFFFFFFF
        n_in, n_out = j[W_MODEL_IN], j[W_MODEL_OUT]
        in_bytes, out_bytes = j[W_IN_BYTES : W_IN_BYTES + n_in], j[W_OUT_BYTES : W_OUT_BYTES + n_out]
        if not load_only:
            if len(inputs) != n_in:
                raise EmuError(f"the model takes {n_in} device input(s), got {len(inputs)}")
            for k, (x, n) in enumerate(zip(inputs, in_bytes)):
                if len(x) != n:
                    raise EmuError(f"device input {k} must be {n} bytes, got {len(x)}")
            at = free_start
            ins = []
            for k, x in enumerate(inputs):
                ins.append(at)
                uc.mem_write(at, bytes(x))
                layout[f"input{k}"] = (at, len(x))
                at = _align(at + len(x), 4)
            for k, n in enumerate(out_bytes):
                outputs_at.append((at, n))
                layout[f"output{k}"] = (at, n)
                at = _align(at + n, 4)
            at = _align(at, 16)
            alen = arena_bytes if arena_len is None else arena_len
            layout["arena"] = (at, alen)
            if at + alen > stack_limit:
                raise EmuError(f"inputs + outputs + arena ({at + alen - free_start} bytes) do not fit in the "
                               f"{stack_limit - free_start} bytes of SRAM between .bss and the stack")
            j[W_ARENA], j[W_ARENA_LEN], j[W_N_IN], j[W_N_OUT] = at, alen, n_in, n_out
            j[W_INPUTS : W_INPUTS + n_in] = ins
            j[W_OUTPUTS : W_OUTPUTS + n_out] = [a for a, _ in outputs_at]
            uc.mem_write(job_addr, struct.pack(f"<{JOB_WORDS}I", *(w & 0xFFFFFFFF for w in j)))
    # 2: mcu_invoke .. bkpt
    go(pc, e.addr("mcu_harness_exit"), "mcu_invoke")
    j = read_job()
    if j[W_DONE] & 0xFFFFFFFF != JOB_DONE:
        raise EmuError("the harness did not finish (job block not marked done)")
    invoked = load_status == 0 and not load_only
    invoke_status = j[W_INVOKE] if invoked else None
    outputs = [bytes(uc.mem_read(a, n)) for a, n in outputs_at] if invoked else []

    # the deepest stack use: the lowest painted word overwritten below the stack top
    low = _align(at + alen, 4) if invoked else free_start
    words = np.frombuffer(bytes(uc.mem_read(low, stack_top - low)), "<u4")
    touched = np.flatnonzero(words != STACK_FILL)
    stack_bytes = 4 * (len(words) - int(touched[0])) if len(touched) else 0
    used = (free_start - SRAM_BASE) + stack_bytes
    if invoked:
        used += at + alen - free_start

    res = EmuResult(outputs, invoke_status if invoked else load_status, load_status, invoke_status, arena_bytes,
                    stack_bytes=stack_bytes, sram_bytes=used, seconds=seconds, layout=layout)
    if count:
        total, per_addr = total_now()
        res.instructions, res.load_instructions, res.invoke_instructions = total, load_count, total - load_count
        per_fn: dict[str, int] = {}
        for addr, n in per_addr.items():
            name = e.function_at(addr)
            per_fn[name] = per_fn.get(name, 0) + n
        res.per_function = dict(sorted(per_fn.items(), key=lambda kv: -kv[1]))
    return res
