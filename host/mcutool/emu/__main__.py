"""python -m mcutool.emu MODEL [--cpu cortex-m0plus] [--opt -Os] [--count] [--input FILE]

Builds the bare-metal firmware, plans MODEL (.tflite, or an .mcu image as it is), runs one
inference on the emulated Cortex-M and prints: engine size, status, whether the outputs are
bit-exact with the numpy reference, SRAM use, and with --count the instruction count, the
instructions per MAC and the functions that execute the most."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import McutoolError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mcutool.emu", description=__doc__.split("\n\n")[1])
    ap.add_argument("model")
    ap.add_argument("--cpu", default="cortex-m0plus")
    ap.add_argument("--opt", default="-Os")
    ap.add_argument("--out", help="build directory (default: under the temp dir)")
    ap.add_argument("--count", action="store_true", help="count executed instructions (block hook)")
    ap.add_argument("--input", help="an input file (image, .npy, ...) instead of random int8 data")
    ap.add_argument("--top", type=int, default=12, help="functions to list with --count")
    a = ap.parse_args(argv)
    try:
        from ..image.format import pack, unpack
        from ..model import load_model
        from ..ref.executor import run as ref_run
        from . import EmuRunner, build

        elf = build(a.cpu, a.opt, a.out)
        print(f"{a.cpu} {a.opt}: engine text {elf.engine.text} data {elf.engine.data} bss {elf.engine.bss}"
              f" (firmware text {elf.firmware.text}); {elf.path}")
        path = Path(a.model)
        if path.suffix == ".mcu":
            image = path.read_bytes()
            graph, plan = unpack(image)
        else:
            from ..plan.planner import choose

            c = choose(load_model(path))
            graph, plan = c.lowered.graph, c.plan
            image = pack(graph, plan)
        if a.input:
            from ..inputs import load_input

            xs = [load_input(a.input, graph.t(graph.inputs[0]), "auto", graph)]
        else:
            rng = np.random.default_rng(0)
            xs = [rng.integers(-128, 128, graph.t(t).shape).astype(graph.t(t).dtype) for t in graph.inputs]
        runner = EmuRunner(image, elf, count=a.count)
        outs = runner(xs)
        r = runner.last
        exact = all(np.array_equal(o, w) for o, w in zip(outs, ref_run(graph, xs)))
        print(f"image {len(image)} bytes, plan {plan.strategy}, arena {r.arena_bytes} bytes, {plan.macs} MACs")
        print(f"status {r.status}; outputs bit-exact with the reference: {exact}")
        for o in outs:
            print("  output", o.reshape(-1)[:16].tolist())
        print(f"SRAM {r.sram_bytes} of {264 * 1024} bytes (stack {r.stack_bytes}); emulation {r.seconds:.3f} s")
        if a.count:
            print(f"instructions: {r.instructions} = load {r.load_instructions} + inference {r.invoke_instructions}"
                  f" ({r.invoke_instructions / max(plan.macs, 1):.2f} per MAC),"
                  f" {r.instructions / r.seconds / 1e6:.0f} M/s emulated")
            for name, n in list(r.per_function.items())[: a.top]:
                print(f"  {n:>12} {100 * n / r.instructions:5.1f}%  {name}")
        return 0 if exact else 1
    except McutoolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
