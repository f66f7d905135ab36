"""CLI subcommands of this stage; mcutool.cli calls add_parsers()."""
from __future__ import annotations

import os

from ..errors import McutoolError


def add_calibration_options(s, required: bool) -> None:
    """Options of the float -> int8 step, shared by `quantize` and `convert --calibration`."""
    s.add_argument("--calibration", required=required, metavar="DIR_OR_NPY",
                   help="calibration inputs: a folder of images (mapped per --input-range or --mean/--std) "
                        "or an .npy array of float inputs, shape (N, *input shape)"
                        + ("" if required else "; needed to convert a float model"))
    s.add_argument("--method", choices=("minmax", "percentile", "mse"), default="minmax",
                   help="activation ranges: calibration min/max (default), a percentile, or MSE-optimal clipping")
    s.add_argument("--percentile", type=float, default=None, metavar="P",
                   help="with --method percentile: keep the P-th percentile at each end (default 99.99)")
    s.add_argument("--io", choices=("int8", "float"), default="int8",
                   help="int8 input/output tensors (default), or float ones with QUANTIZE/DEQUANTIZE at the ends")
    s.add_argument("--input-range", metavar="LO,HI", help="images: pixels 0..255 map linearly onto LO..HI, e.g. 0,1")
    s.add_argument("--mean", metavar="M[,M,M]", help="images: input = (pixel - mean) / std, per channel or one value")
    s.add_argument("--std", metavar="S[,S,S]", help="see --mean")


def add_parsers(sub) -> None:
    s = sub.add_parser("quantize", help="quantize a float .tflite to int8 (post-training, calibrated)",
                       description="Post-training int8 quantization of a float .tflite, with numpy: per-channel "
                                   "symmetric weights, int32 biases, per-tensor activations from calibration. "
                                   "Writes an int8 .tflite that LiteRT and TFLM run.")
    s.add_argument("model", help="float .tflite model")
    add_calibration_options(s, required=True)
    s.add_argument("-o", "--output", help="int8 .tflite to write (default: MODEL_int8.tflite here)")
    s.add_argument("--eval", metavar="DIR_OR_NPY",
                   help="report accuracy against the float model on these inputs (same format as --calibration)")
    s.add_argument("--compare", action="append", metavar="OTHER_INT8.tflite",
                   help="with --eval: report another int8 model of the same float model too (repeatable)")
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_quantize)

    s = sub.add_parser("quantize-sets", help="make calibration and evaluation image folders from a few pictures",
                       description="Every picture in IMAGES and augmented variants of it (random crop, mirror, "
                                   "brightness; seeded) become the calibration folder; other variants the "
                                   "evaluation folder, disjoint from it. Both are PNGs of the model's input size, "
                                   "for quantize --calibration DIR --eval DIR.")
    s.add_argument("images", help="a folder of pictures (e.g. $MCUTOOL_MODELS/images)")
    s.add_argument("--calibration", required=True, metavar="DIR", help="new folder for the calibration images")
    s.add_argument("--eval", metavar="DIR", help="new folder for the evaluation images")
    s.add_argument("--size", type=int, default=96, help="side of the square images, the model's input (default 96)")
    s.add_argument("--variants", type=int, default=8, help="augmented variants per picture for calibration (default 8)")
    s.add_argument("--eval-variants", type=int, default=20, help="variants per picture for evaluation (default 20)")
    s.add_argument("--seed", type=int, default=1, help="seed of the augmentations (default 1)")
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_quantize_sets)


def cmd_quantize_sets(args) -> int:
    from ..output import print_json
    from .augment import write_sets

    if args.size < 8 or args.variants < 0 or args.eval_variants < 1:
        raise McutoolError("--size must be at least 8, --variants 0 or more, --eval-variants 1 or more")
    rep = write_sets(args.images, args.calibration, args.eval, args.size, args.variants, args.eval_variants, args.seed)
    if args.json:
        print_json(rep)
    else:
        print(f"wrote {rep['calibration_images']} calibration images to {args.calibration}"
              + (f", {rep['eval_images']} evaluation images to {args.eval}" if args.eval else ""))
    return 0


def _read(path: str) -> bytes:
    if not os.path.isfile(path):
        raise McutoolError(f"{path}: no such file" if not os.path.isdir(path) else f"{path}: is a directory, not a model")
    with open(path, "rb") as f:
        return f.read()


def quantize_from_args(args) -> tuple[bytes, dict, object]:
    """(int8 .tflite bytes, summary, float graph) for the model and calibration options in args."""
    from .preprocess import load_samples, parse_spec
    from .quantizer import Options, load_float_graph, quantize

    if args.percentile is not None and args.method != "percentile":
        raise McutoolError(f"--percentile works with --method percentile, not --method {args.method}")
    buf = _read(args.model)
    graph = load_float_graph(buf, args.model)
    spec = parse_spec(args.input_range, args.mean, args.std)
    data = load_samples(args.calibration, graph.t(graph.inputs[0]), spec)
    opts = Options(method=args.method, io=args.io,
                   percentile=Options.percentile if args.percentile is None else args.percentile)
    out, info = quantize(buf, data, opts, where=args.model)
    return out, info, graph


def quantized_graph(args):
    """`convert --calibration`: the prepared int8 graph of the float model in args."""
    from ..quant.prepare import prepare_graph
    from ..tflite_import import parse_tflite

    out, _, _ = quantize_from_args(args)
    return prepare_graph(parse_tflite(out, name=os.path.splitext(os.path.basename(args.model))[0]))


def cmd_quantize(args) -> int:
    from ..cli import _write_atomic
    from ..output import print_json as _print_json

    output = args.output or os.path.splitext(os.path.basename(args.model))[0] + "_int8.tflite"
    if not output.endswith(".tflite"):
        raise McutoolError(f"{output}: the quantized model should be named *.tflite")
    if args.compare and not args.eval:
        raise McutoolError("--compare needs --eval: the inputs to compare the models on")
    out, info, graph = quantize_from_args(args)
    rep = {"model": os.path.basename(args.model), "output": output, "bytes": len(out), **info}
    if args.eval:
        from .preprocess import load_samples, parse_spec
        from .report import accuracy_report

        data = load_samples(args.eval, graph.t(graph.inputs[0]), parse_spec(args.input_range, args.mean, args.std),
                            "evaluation")
        models = {os.path.basename(output): out}
        for p in args.compare or []:
            models[os.path.basename(p)] = _read(p)
        rep["accuracy"] = accuracy_report(_read(args.model), models, data)
    _write_atomic(output, out)  # last: an error anywhere above leaves nothing behind
    if args.json:
        _print_json(rep)
        return 0
    print(f"wrote {output}: {len(out):,} bytes, {info['ops']} ops, int8 with {info['io']} I/O, "
          f"{info['calibration_inputs']} calibration inputs ({info['method']})")
    print(f"  weights {info['weight_bytes']:,} B (float {info['float_weight_bytes']:,} B); "
          f"filters {info['filter_bytes']:,} B (float {info['float_filter_bytes']:,} B)")
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            print(f"  {kind[:-1]:<6} {t['name']} scale {t['scale']:.6g} zero point {t['zero_point']}")
    if args.eval:
        from .report import format_report

        print(format_report(rep["accuracy"]))
    return 0
