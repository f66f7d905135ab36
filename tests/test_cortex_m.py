"""The engine on an emulated Cortex-M0+ with an RP2040 memory map (mcutool.emu).

firmware.elf is device/engine built by arm-none-eabi-gcc with port/baremetal's startup,
linker script and harness; unicorn runs it with the flash image in (read-only) XIP flash,
read in place, and the arena, inputs, outputs and stack in 264 KiB of SRAM.
"""
import struct

import numpy as np
import pytest

from mcutool.emu import build, run, toolchain

pytestmark = pytest.mark.skipif(
    toolchain() is None,
    reason="arm-none-eabi-gcc is not installed (Debian/Ubuntu: apt-get install gcc-arm-none-eabi); CI installs it",
)

TEXT_BUDGET = 24 * 1024  # engine .text (+ .rodata) for cortex-m0plus at -Os
SRAM = 264 * 1024
MCU_ERR_TRUNCATED, MCU_ERR_MAGIC, MCU_ERR_HEADER_CRC, MCU_ERR_CRC = -2, -3, -6, -7


@pytest.fixture(scope="module")
def m0plus(tmp_path_factory):
    return build("cortex-m0plus", "-Os", tmp_path_factory.mktemp("m0plus-Os"))


@pytest.fixture(scope="module")
def person(models):
    from mcutool.image.format import pack
    from mcutool.model import load_model
    from mcutool.plan.model import POST, PRE
    from mcutool.plan.planner import choose

    graph = load_model(models / "person_detect.tflite")
    c = choose(graph)
    assert not [s for s in c.plan.steps if s.kind in (PRE, POST)], "person_detect has no host steps"
    return graph, c.plan, pack(c.lowered.graph, c.plan)


def _person_inputs(models, graph):
    from PIL import Image

    from mcutool.inputs import load_input

    t = graph.t(graph.inputs[0])
    no_person = load_input(str(models / "images" / "no_person.bmp"), t, "image")
    # person.bmp's pixel bytes are already int8 (see test_models.py)
    person = np.asarray(Image.open(models / "images" / "person.bmp")).astype(np.uint8).view(np.int8)
    noise = np.random.default_rng(7).integers(-128, 128, t.shape, dtype=np.int8)
    return {"no_person": no_person, "person": person.reshape(t.shape), "noise": noise}


def test_engine_text_fits_m0plus_budget(m0plus):
    per = ", ".join(f"{k}: {v.text}" for k, v in m0plus.objects.items())
    assert m0plus.engine.text <= TEXT_BUDGET, f"engine .text {m0plus.engine.text} > {TEXT_BUDGET} ({per})"
    assert m0plus.engine.data == 0 and m0plus.engine.bss == 0, "the engine has no mutable globals"


def test_person_detect_bit_exact_on_m0plus(m0plus, person, models):
    from mcutool.ref.executor import run as ref_run

    graph, plan, image = person
    for name, x in _person_inputs(models, graph).items():
        r = run(image, [x.tobytes()], m0plus)
        assert r.load_status == 0, f"mcu_load returned {r.load_status} in emulation"
        assert r.invoke_status == 0, f"mcu_invoke returned {r.invoke_status} ({name})"
        want = ref_run(graph, [x])[0]
        got = np.frombuffer(r.outputs[0], np.int8).reshape(want.shape)
        np.testing.assert_array_equal(got, want, err_msg=name)
        if name == "no_person":  # TFLM's figures (shared/models/README.md)
            assert got.tolist() == [[77, -77]]
        if name == "person":
            assert got.tolist() == [[-113, 113]]
    # everything the device needs fits the RP2040's SRAM, the arena being exactly the plan's
    assert r.arena_bytes == plan.arena_bytes
    assert r.layout["arena"][1] == plan.arena_bytes
    assert 0 < r.stack_bytes <= 0x2000, f"stack {r.stack_bytes} bytes"
    assert r.sram_bytes <= SRAM


def test_corrupt_images_refused_in_emulation(m0plus, person):
    from mcutool.image.format import read_header

    graph, plan, image = person
    data_off, data_size = read_header(image).sections["DATA"]
    flipped = bytearray(image)
    flipped[data_off + data_size // 2] ^= 0x10  # a weight bit: only the content CRC can tell
    header = bytearray(image)
    header[20] ^= 1  # n_tensors: the header CRC catches it
    cases = {
        "weight bit flipped": (bytes(flipped), MCU_ERR_CRC),
        "header byte flipped": (bytes(header), MCU_ERR_HEADER_CRC),
        "truncated": (image[: len(image) - 64], MCU_ERR_TRUNCATED),
        "not an image": (b"TFL3" + image[4:], MCU_ERR_MAGIC),
    }
    x = bytes(96 * 96)
    for what, (img, want) in cases.items():
        r = run(img, [x], m0plus)
        assert r.load_status == want, f"{what}: status {r.load_status}, expected {want}"
        assert r.status == want and r.invoke_status is None and r.outputs == []
        from mcutool.errors import McutoolError
        from mcutool.native import engine  # the host build (MCUTOOL_ENGINE_SO: the sanitizer's)

        try:  # the host build of the same sources must agree, when it is built
            _engine = engine()
        except McutoolError:
            continue
        assert _engine.load_status(img)[0] == want, what


def test_instruction_count_matches_per_instruction_hook(m0plus):
    """The block-hook count is exact: on ARMv6-M (no IT blocks) it equals a count by a
    per-instruction hook, function by function. A small generated model keeps the slow
    per-instruction run short."""
    from modelgen import random_input, small_chain

    from mcutool.image.format import pack
    from mcutool.plan.planner import choose
    from mcutool.quant.prepare import prepare_graph
    from mcutool.ref.executor import run as ref_run
    from mcutool.tflite_import import parse_tflite

    model = small_chain(np.random.default_rng(0))
    graph = prepare_graph(parse_tflite(model), "tflm")
    c = choose(graph)
    image = pack(c.lowered.graph, c.plan)
    assert c.plan.device_inputs == graph.inputs and c.plan.device_outputs == graph.outputs
    xs = random_input(np.random.default_rng(1), model)
    blocks = run(image, [x.tobytes() for x in xs], m0plus, count=True)
    insns = run(image, [x.tobytes() for x in xs], m0plus, count="code")
    assert blocks.status == 0 and insns.status == 0
    assert blocks.instructions == insns.instructions > 0
    assert blocks.load_instructions == insns.load_instructions
    assert blocks.per_function == insns.per_function
    for got, want in zip(blocks.outputs, ref_run(graph, xs), strict=True):
        np.testing.assert_array_equal(np.frombuffer(got, np.int8).reshape(want.shape), want)


def test_person_detect_instruction_count(m0plus, person):
    graph, plan, image = person
    x = np.random.default_rng(3).integers(-128, 128, 96 * 96, dtype=np.int8).tobytes()
    fast = run(image, [x], m0plus)
    r = run(image, [x], m0plus, count=True)
    assert r.status == 0 and r.outputs == fast.outputs  # counting changes nothing
    assert r.instructions == r.load_instructions + r.invoke_instructions
    assert sum(r.per_function.values()) == r.instructions
    per_mac = r.invoke_instructions / plan.macs
    assert 1 < per_mac < 60, f"{per_mac:.1f} instructions/MAC"


def test_job_block_layout_matches_header():
    """host/mcutool/emu mirrors port/baremetal/job.h: check the word offsets agree."""
    import re

    from mcutool.emu import machine
    from mcutool.emu.build import PORT

    text = (PORT / "job.h").read_text()
    env = {"MCU_MAX_IO": machine.MAX_IO}
    for name, expr in re.findall(r"#define MCU_JOB_(W_\w+|WORDS) (.+)", text):
        env[name.removeprefix("W_")] = eval(expr.replace("MCU_JOB_W_", ""), {}, env)
    mine = {"MAGIC": machine.W_MAGIC, "FLAGS": machine.W_FLAGS, "IMAGE": machine.W_IMAGE,
            "IMAGE_LEN": machine.W_IMAGE_LEN, "ARENA": machine.W_ARENA, "ARENA_LEN": machine.W_ARENA_LEN,
            "N_INPUTS": machine.W_N_IN, "N_OUTPUTS": machine.W_N_OUT, "INPUTS": machine.W_INPUTS,
            "OUTPUTS": machine.W_OUTPUTS, "LOAD_STATUS": machine.W_LOAD, "INVOKE_STATUS": machine.W_INVOKE,
            "ARENA_BYTES": machine.W_ARENA_BYTES, "MODEL_INPUTS": machine.W_MODEL_IN,
            "MODEL_OUTPUTS": machine.W_MODEL_OUT, "INPUT_BYTES": machine.W_IN_BYTES,
            "OUTPUT_BYTES": machine.W_OUT_BYTES, "DONE": machine.W_DONE, "WORDS": machine.JOB_WORDS}
    assert {k: env[k] for k in mine} == mine
    for name, value in re.findall(r"#define MCU_JOB_(MAGIC|DONE|ADDR) (0x[0-9A-Fa-f]+)u", text):
        assert int(value, 16) == {"MAGIC": machine.JOB_MAGIC, "DONE": machine.JOB_DONE,
                                  "ADDR": machine.SRAM_BASE}[name]
    assert struct.calcsize(f"<{machine.JOB_WORDS}I") == 4 * machine.JOB_WORDS


def test_m0plus_emulation_is_armv6m():
    """The emulated M0+ refuses Thumb-2 (unicorn's MCLASS mode would silently give an M33)
    and traps unaligned word loads, as the RP2040's core does."""
    from unicorn import UC_HOOK_INTR, UcError
    from unicorn.arm_const import UC_ARM_REG_R1, UC_ARM_REG_SP

    from mcutool.emu.machine import _new_uc

    def execute(cpu, code, r1=0):
        uc = _new_uc(cpu)
        uc.mem_map(0x10000000, 0x1000)
        uc.mem_map(0x20000000, 0x1000)
        uc.mem_write(0x10000000, code + bytes.fromhex("00bf00bf"))
        uc.reg_write(UC_ARM_REG_SP, 0x20001000)
        uc.reg_write(UC_ARM_REG_R1, r1)
        traps = []
        uc.hook_add(UC_HOOK_INTR, lambda u, n, _: (traps.append(n), u.emu_stop()))
        uc.emu_start(0x10000001, 0x10000000 + len(code))
        return traps

    sdiv = bytes.fromhex("91fbf2f0")  # sdiv r0, r1, r2 (ARMv7-M)
    with pytest.raises(UcError):
        execute("cortex-m0plus", sdiv)
    assert execute("cortex-m33", sdiv) == []
    ldr = bytes.fromhex("0868")  # ldr r0, [r1]
    assert execute("cortex-m0plus", ldr, 0x20000002) != []  # unaligned: a fault
    assert execute("cortex-m0plus", ldr, 0x20000004) == []
    assert execute("cortex-m33", ldr, 0x20000002) == []
