"""The `mcutool` command line: small subcommands, one-line errors, --json on every report."""
from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .errors import McutoolError
from .output import print_json as _print_json

EXIT_ERROR = 2  # bad input: the message says what and where
EXIT_MISMATCH = 1  # verify found a difference

# Modules with an add_parsers(sub) that adds their subcommands.
COMMAND_MODULES = (".link.commands", ".quantize.commands", ".flash.commands", ".zoo.commands", ".camera.commands", ".demo")


def _write_atomic(path: str, data: bytes) -> None:
    """Write all or nothing: a failed run never leaves a half-written image behind."""
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise McutoolError(f"{path}: directory {d} does not exist")
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise McutoolError(f"{path}: cannot write: {e.strerror}") from None


# ---- inspect ----------------------------------------------------------------------------


def cmd_inspect(args) -> int:
    from .model import load_model
    from .report.inspect import format_inspect, inspect_graph

    rep = inspect_graph(load_model(args.model))
    if args.json:
        _print_json(rep)
    else:
        print(format_inspect(rep))
    return 0


# ---- convert ----------------------------------------------------------------------------


def _budget(args) -> tuple[int | None, str | None]:
    if args.sram_budget is not None:
        if args.sram_budget <= 0:
            raise McutoolError(f"--sram-budget must be a positive number of bytes, got {args.sram_budget}")
        return args.sram_budget, None
    if args.board:
        from .boards import load_board

        b = load_board(args.board)
        return b["sram_budget"], b["name"]
    return None, None


def _objective(args):
    from .plan.planner import Objective

    budget, _ = _budget(args)
    if args.max_overhead < 0:
        raise McutoolError(f"--max-overhead must be 0 or more (a percentage), got {args.max_overhead}")
    return Objective(max_overhead=args.max_overhead / 100.0, budget=budget, halo=args.halo)


def _choose(args):
    from .model import load_model
    from .plan.planner import choose

    graph = load_model(args.model)
    return graph, choose(graph, _objective(args))


def cmd_plan(args) -> int:
    from .report.plan import check_plot_path, format_plan, plan_report, plot_plan

    if args.plot:
        check_plot_path(args.plot)
    graph, choice = _choose(args)
    rep = plan_report(graph, choice)
    if args.plot:
        plot_plan(graph, choice, args.plot)
        rep["plot"] = args.plot
    if args.json:
        _print_json(rep)
    else:
        print(format_plan(rep))
        if args.plot:
            print(f"  plot                  {args.plot}")
    return 0


def cmd_convert(args) -> int:
    import zlib

    from .image.format import HEADER_SIZE, pack

    if not args.output.endswith(".mcu"):
        raise McutoolError(f"{args.output}: the flash image should be named *.mcu")
    if args.calibration:  # a float model: quantize it in memory first
        from .plan.planner import choose
        from .quantize.commands import quantized_graph

        graph = quantized_graph(args)
        choice = choose(graph, _objective(args))
    else:
        graph, choice = _choose(args)
    plan = choice.plan
    image = pack(choice.lowered.graph, plan)
    from .boards import flash_misfit, load_board, sram_misfit

    _, board = _budget(args)
    bd = load_board(board) if board else {}
    region = bd.get("flash", {}).get("model_bytes")
    flash_why = flash_misfit(len(image), bd) if bd else None
    rep = {
        "model": graph.name,
        "output": args.output,
        "image_bytes": len(image),
        "crc32": zlib.crc32(image[HEADER_SIZE:]) & 0xFFFFFFFF,
        "peak_sram_bytes": plan.peak_sram_bytes,
        "strategy": plan.strategy,
        "split": plan.split,
        "patches": list(plan.grid),
        "halo": plan.halo,
        "mac_overhead": round(plan.mac_overhead, 6),
        "board": board,
        "sram_budget": choice.budget,
        "fits": choice.fits,
        "model_region_bytes": region,
        "fits_flash": None if region is None else flash_why is None,
    }
    misfit = sram_misfit(plan.peak_sram_bytes, choice.budget, board) or flash_why
    if misfit:
        raise McutoolError(f"{misfit}; nothing written")
    from .native import check_loads

    check_loads(image, args.model)
    _write_atomic(args.output, image)
    if args.json:
        _print_json(rep)
    else:
        print(f"wrote {args.output}: {len(image):,} bytes, CRC32 {rep['crc32']:08x}")
        print(f"  {len(graph.ops)} ops, plan {plan.strategy}" + (f" (split {plan.split})" if plan.split else "")
              + f", peak SRAM {plan.peak_sram_bytes:,} B" + (f" (budget {choice.budget:,} B)" if choice.budget else "")
              + f", MAC overhead {100 * plan.mac_overhead:.2f}%")
        if region:
            print(f"  fits board {board}'s model region: {len(image):,} of {region:,} B")
    return 0


def cmd_bench(args) -> int:
    from .bench import format_memory, format_speed, memory_bench, speed_bench

    if not args.memory and args.engine != "native" and not args.link:
        raise McutoolError("choose what to measure: --memory, --engine native (speed), or --link (serial protocol)")
    report = {}
    if args.memory:
        report["memory"] = memory_bench(args.models or None, _objective(args), progress=not args.json)
    if args.link:
        from .bench import _resolve
        from .link.bench import link_bench

        report["link"] = link_bench(str(_resolve("person_detect")), progress=not args.json)
    if args.engine == "native":
        from .bench import DEFAULT_MODELS

        names = args.models or DEFAULT_MODELS[:2]
        report["speed"] = [speed_bench(n, args.repeat, m0plus=not args.no_m0plus, progress=not args.json) for n in names]
    if args.json:
        if len(report) == 1 and "speed" in report and len(report["speed"]) == 1:
            _print_json(report["speed"][0])  # one model: its figures at the top level
        else:
            _print_json(report)
    else:
        if "memory" in report:
            print(format_memory(report["memory"]))
        if "speed" in report:
            print(format_speed(report["speed"]))
        if "link" in report:
            from .link.bench import format_link

            print(format_link(report["link"]))
    wrong = [r["model"] for r in report.get("speed", []) if r.get("m0plus_bit_exact") is False]
    if wrong:  # a speed figure of wrong outputs is no figure
        print(f"mcutool: the emulated Cortex-M0+ gave other outputs than the host engine for {', '.join(wrong)}",
              file=sys.stderr)
        return EXIT_MISMATCH
    return 0


# ---- run --------------------------------------------------------------------------------


def _top(graph, outputs, k: int = 5) -> list[dict]:
    import numpy as np

    if not outputs:
        return []
    t = graph.t(graph.outputs[0])
    flat = np.asarray(outputs[0]).reshape(-1)
    order = np.argsort(-flat.astype(np.float64), kind="stable")[:k]
    top = []
    for i in order:
        v = flat[i]
        score = float(t.quant.s * (int(v) - t.quant.zp)) if (t.quant is not None and t.dtype != "float32") else float(v)
        top.append({"index": int(i), "value": v.item(), "score": score})
    return top


def _decode(name: str, graph, outs) -> dict:
    """Graph outputs -> the zoo model's answer (int8 outputs dequantized first)."""
    import numpy as np

    from .post import decode
    from .zoo import get_entry

    if name == "auto":
        name = graph.name
    entry = get_entry(name)
    floats = []
    for i, o in zip(graph.outputs, outs):
        q = graph.t(i).quant
        floats.append(o.astype(np.float32) if q is None or o.dtype.kind == "f"
                      else ((o.astype(np.float32) - float(q.zero_point[0])) * float(q.scale[0])))
    return decode(entry, floats, None)


def cmd_run(args) -> int:
    if args.port:
        if args.model:
            raise McutoolError("give either a model (run here) or --port (run on the board), not both")
        from .link.commands import run_on_board

        return run_on_board(args)
    if not args.model:
        raise McutoolError("give a model to run here, or --port PORT to run on a board")
    from .inputs import load_input
    from .model import is_image, load_image, load_model
    from .ref.executor import run

    plan = None
    if is_image(args.model):
        graph, plan = load_image(args.model)
    else:
        graph = load_model(args.model)
    if len(args.input) != len(graph.inputs):
        raise McutoolError(f"the model takes {len(graph.inputs)} input(s); give one --input per input")
    xs = [load_input(p, graph.t(i), args.input_format, graph) for p, i in zip(args.input, graph.inputs)]
    if args.engine == "native":
        from .native import NativeRunner, runner_for_graph

        outs = NativeRunner(open(args.model, "rb").read())(xs) if plan is not None else runner_for_graph(graph)(xs)
    elif plan is not None:
        from .ref.plan_exec import run_plan

        outs = run_plan(graph, plan, xs)  # follows the image's plan in one arena
    else:
        outs = run(graph, xs)
    rep = {"model": graph.name, "engine": args.engine, "outputs": [o.reshape(-1).tolist() for o in outs],
           "shapes": [list(o.shape) for o in outs], "top": _top(graph, outs)}
    from pathlib import Path

    from .output import label_top, top_line
    from .zoo import class_labels

    label_top(rep["top"], class_labels([graph.name, Path(args.model).stem], graph.t(graph.outputs[0]).size))
    if args.decode:
        rep["result"] = _decode(args.decode, graph, outs)
    if args.json:
        _print_json(rep)
    else:
        if args.decode:
            from .post import summary

            print(f"{graph.name if args.decode == 'auto' else args.decode}: {summary(rep['result'])}")
        for i, o in zip(graph.outputs, outs):
            t = graph.t(i)
            vals = o.reshape(-1).tolist()
            more = f" ... ({len(vals)} values)" if len(vals) > 16 else ""
            print(f"{t.name} {'x'.join(map(str, t.shape))} {t.dtype}: {vals[:16]}{more}")
        print(top_line(rep["top"]))
    return 0


# ---- verify -----------------------------------------------------------------------------


def cmd_verify(args) -> int:
    from .verify import verify

    if args.inputs < 0:
        raise McutoolError(f"--inputs must be 0 or more, got {args.inputs}")
    from .verify import ENGINES

    wanted = ENGINES if args.engine == "all" else ("ref", "native") if args.engine == "native" else ("ref",)
    rep = verify(args.model, args.reference, args.inputs, args.seed, args.input or [], args.input_format, wanted)
    if args.json:
        _print_json(rep)
    else:
        status = "bit-exact" if rep["ok"] else "MISMATCH"
        print(f"{rep['model']}: {rep['inputs']} inputs, reference {rep['reference']}: {status}")
        for name, r in rep["results"].items():
            print(f"  {name:<10} max_abs_diff {r['max_abs_diff']}  mismatched elements {r['mismatched']}/{r['compared']}")
            for p in r["problems"]:
                print(f"  {'':<10} {p}")
    return 0 if rep["ok"] else EXIT_MISMATCH


# ---- parser -----------------------------------------------------------------------------


def _plan_options(s) -> None:
    g = s.add_mutually_exclusive_group()
    g.add_argument("--board", help="plan for this board's SRAM budget (the boards: 'mcutool boards')")
    g.add_argument("--sram-budget", type=int, metavar="BYTES", help="plan within this many bytes of SRAM")
    s.add_argument("--max-overhead", type=float, default=5.0, metavar="PCT",
                   help="extra MACs allowed for recomputed halos, in percent of the model's (default 5)")
    s.add_argument("--halo", choices=("auto", "cache", "recompute"), default="auto",
                   help="cache halo rows (no extra MACs), recompute them (MCUNetV2 patches), or choose (default)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mcutool",
        description="Put int8 CNNs on microcontrollers: inspect, convert and check TFLite models.",
        epilog="Run 'mcutool COMMAND --help' for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"mcutool {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("inspect", help="per-op shapes, MACs, weight and activation bytes",
                       description="Per-op table of a .tflite or .mcu model, with totals and the layer-by-layer peak.")
    s.add_argument("model", help=".tflite model or .mcu flash image")
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("plan", help="plan patch-based/streamed execution and the SRAM arena; report it",
                       description="Choose how the model runs within SRAM: layer by layer, or its early stage "
                                   "streamed row by row with cached halos. Without a budget: the smallest peak "
                                   "within the MAC overhead allowed; with one: the fewest MACs that fit.")
    s.add_argument("model", help=".tflite model (int8)")
    _plan_options(s)
    s.add_argument("--plot", metavar="FILE.png", help="write a figure of memory per layer, layer-by-layer against planned")
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("convert", help="write the flash image (.mcu) of a model and its plan",
                       description="Prepare the model, plan its execution and SRAM arena, write a flash image.")
    s.add_argument("model", help=".tflite model (int8)")
    s.add_argument("-o", "--output", required=True, help="flash image to write, e.g. person_detect.mcu")
    _plan_options(s)
    from .quantize.commands import add_calibration_options

    add_calibration_options(s, required=False)
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("bench", help="measure mcutool against TFLM and TinyEngine",
                       description="Benchmarks that print figures and ratios against the references in one run.")
    s.add_argument("models", nargs="*", help="models to measure (default: every int8 model in $MCUTOOL_MODELS)")
    s.add_argument("--memory", action="store_true", help="peak SRAM: TFLM's arena, ours layer by layer, ours planned")
    s.add_argument("--engine", choices=("native",), help="speed of the C engine: host latency against LiteRT's "
                   "default and reference kernels, and Cortex-M0+ instructions per inference (emulated)")
    s.add_argument("--link", action="store_true", help="the serial protocol through 'mcutool sim' at 921600 "
                   "baud and unlimited: inferences/s, bytes on the wire, overhead")
    s.add_argument("--repeat", type=int, default=30, help="timed runs per measurement (median; default 30)")
    s.add_argument("--no-m0plus", action="store_true", help="skip the Cortex-M0+ emulation")
    _plan_options(s)
    s.add_argument("--json", action="store_true", help="print the results as one JSON object")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("run", help="run a model on one input and print its outputs",
                       description="Run a .tflite or .mcu model with mcutool's engine on the given input(s), "
                                   "or with --port on a board (or 'mcutool sim') that holds the model.")
    s.add_argument("model", nargs="?", help=".tflite model or .mcu flash image (not with --port)")
    s.add_argument("--port", help="run on the board at this serial port instead (see 'mcutool sim')")
    s.add_argument("--input", action="append", required=True, metavar="FILE",
                   help="input file; repeat for models with several inputs")
    s.add_argument("--input-format", choices=("auto", "raw", "npy", "image"), default="auto",
                   help="raw: bytes in the input's dtype; npy: a numpy array; image: a picture mapped to "
                        "int8 as pixel - 128 (auto: by file extension)")
    s.add_argument("--engine", choices=("ref", "native"), default="ref",
                   help="ref: the numpy reference executor; native: the C engine (the device's code)")
    s.add_argument("--json", action="store_true", help="print the outputs as one JSON object")
    from .link.commands import decode_option, link_options

    decode_option(s)
    link_options(s)
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("verify", help="compare mcutool's engines against TFLM or LiteRT, element by element",
                       description="Run random and given inputs through mcutool's engines and a reference "
                                   "interpreter; exit 1 if any output element differs.")
    s.add_argument("model", help=".tflite model")
    s.add_argument("--reference", choices=("tflm", "litert"), default="tflm",
                   help="tflm: TensorFlow Lite Micro (default); litert: LiteRT's reference kernels")
    s.add_argument("--inputs", type=int, default=10, metavar="N", help="random inputs to try (default 10)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    s.add_argument("--input", action="append", metavar="FILE", help="also run this input file (repeatable)")
    s.add_argument("--input-format", choices=("auto", "raw", "npy", "image"), default="auto")
    s.add_argument("--engine", choices=("all", "ref", "native"), default="all",
                   help="engines to check: ref (numpy reference), native (the C engine), all (default: both, "
                        "plus the reference following the plan and the plan read back from its flash image)")
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_verify)

    # Commands that live with their pipeline stage register themselves here.
    import importlib
    for mod in COMMAND_MODULES:
        importlib.import_module(mod, __package__).add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        return args.func(args)
    except McutoolError as e:
        print(f"mcutool: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mcutool: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
