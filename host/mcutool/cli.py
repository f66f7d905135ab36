"""The `mcutool` command line: small subcommands, one-line errors, --json on every report."""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .errors import McutoolError

EXIT_ERROR = 2  # bad input: the message says what and where
EXIT_MISMATCH = 1  # verify found a difference


def _print_json(obj) -> None:
    print(json.dumps(obj, separators=(", ", ": ")))


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


def cmd_convert(args) -> int:
    import zlib

    from .image.format import pack
    from .model import load_model
    from .plan import layer_by_layer

    if not args.output.endswith(".mcu"):
        raise McutoolError(f"{args.output}: the flash image should be named *.mcu")
    budget, board = _budget(args)
    graph = load_model(args.model)
    plan = layer_by_layer(graph)
    image = pack(graph, plan)
    fits = None if budget is None else plan.arena_bytes <= budget
    rep = {
        "model": graph.name,
        "output": args.output,
        "image_bytes": len(image),
        "crc32": zlib.crc32(image[96:]) & 0xFFFFFFFF,
        "peak_sram_bytes": plan.arena_bytes,
        "strategy": "layer-by-layer",
        "board": board,
        "sram_budget": budget,
        "fits": fits,
    }
    if fits is False:
        where = f"board {board}" if board else "the budget"
        raise McutoolError(
            f"the plan needs {plan.arena_bytes:,} B of SRAM, {where} allows {budget:,} B; nothing written"
        )
    _write_atomic(args.output, image)
    if args.json:
        _print_json(rep)
    else:
        print(f"wrote {args.output}: {len(image):,} bytes, CRC32 {rep['crc32']:08x}")
        print(f"  {len(graph.ops)} ops, {len(graph.tensors)} tensors, plan {rep['strategy']}, "
              f"peak SRAM {plan.arena_bytes:,} B" + (f" (budget {budget:,} B)" if budget else ""))
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


def cmd_run(args) -> int:
    from .inputs import load_input
    from .model import load_model
    from .ref.executor import run

    graph = load_model(args.model)
    if len(args.input) != len(graph.inputs):
        raise McutoolError(f"the model takes {len(graph.inputs)} input(s); give one --input per input")
    xs = [load_input(p, graph.t(i), args.input_format, graph) for p, i in zip(args.input, graph.inputs)]
    outs = run(graph, xs)
    rep = {"model": graph.name, "engine": args.engine, "outputs": [o.reshape(-1).tolist() for o in outs],
           "shapes": [list(o.shape) for o in outs], "top": _top(graph, outs)}
    if args.json:
        _print_json(rep)
    else:
        for i, o in zip(graph.outputs, outs):
            t = graph.t(i)
            vals = o.reshape(-1).tolist()
            more = f" ... ({len(vals)} values)" if len(vals) > 16 else ""
            print(f"{t.name} {'x'.join(map(str, t.shape))} {t.dtype}: {vals[:16]}{more}")
        print("top: " + ", ".join(f"#{d['index']} {d['value']} ({d['score']:.3f})" for d in rep["top"]))
    return 0


# ---- verify -----------------------------------------------------------------------------


def cmd_verify(args) -> int:
    from .verify import verify

    if args.inputs < 0:
        raise McutoolError(f"--inputs must be 0 or more, got {args.inputs}")
    rep = verify(args.model, args.reference, args.inputs, args.seed, args.input or [], args.input_format)
    if args.json:
        _print_json(rep)
    else:
        status = "bit-exact" if rep["max_abs_diff"] == 0 else "MISMATCH"
        print(f"{rep['model']}: {rep['inputs']} inputs, reference {rep['reference']}: {status}")
        for name, r in rep["results"].items():
            print(f"  {name:<10} max_abs_diff {r['max_abs_diff']}  mismatched elements {r['mismatched']}/{r['compared']}")
    return 0 if rep["max_abs_diff"] == 0 else EXIT_MISMATCH


# ---- parser -----------------------------------------------------------------------------


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

    s = sub.add_parser("convert", help="write the flash image (.mcu) of a model",
                       description="Prepare the model, plan its SRAM arena and write a flash image.")
    s.add_argument("model", help=".tflite model (int8)")
    s.add_argument("-o", "--output", required=True, help="flash image to write, e.g. person_detect.mcu")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--board", help="plan for this board's SRAM budget (see boards/)")
    g.add_argument("--sram-budget", type=int, metavar="BYTES", help="refuse plans that need more SRAM than this")
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("run", help="run a model on one input and print its outputs",
                       description="Run a .tflite or .mcu model with mcutool's engine on the given input(s).")
    s.add_argument("model", help=".tflite model or .mcu flash image")
    s.add_argument("--input", action="append", required=True, metavar="FILE",
                   help="input file; repeat for models with several inputs")
    s.add_argument("--input-format", choices=("auto", "raw", "npy", "image"), default="auto",
                   help="raw: bytes in the input's dtype; npy: a numpy array; image: a picture mapped to "
                        "int8 as pixel - 128 (auto: by file extension)")
    s.add_argument("--engine", choices=("ref",), default="ref", help="ref: the numpy reference executor")
    s.add_argument("--json", action="store_true", help="print the outputs as one JSON object")
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
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_verify)
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
