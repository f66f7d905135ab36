"""CLI subcommands that talk to a board: `sim` (a simulated board), `info`, and `run --port`
(registered by mcutool.cli); mcutool.cli calls add_parsers()."""
from __future__ import annotations

import struct
import sys

from ..errors import McutoolError
from ..output import print_json as _print_json


def decode_option(s) -> None:
    s.add_argument("--decode", nargs="?", const="auto", metavar="ZOO_MODEL",
                   help="decode the outputs with a zoo model's post-processing (labels, boxes, centroids; "
                        "coordinates in the model's input); with --port the board's model by default")


def link_options(s) -> None:
    s.add_argument("--baud", type=int, default=115200, help="serial speed (ignored by USB-CDC and the simulator)")
    s.add_argument("--timeout", type=float, default=1.0, metavar="S",
                   help="seconds to wait for a reply before resending a frame (default 1)")
    s.add_argument("--compute-timeout", type=float, default=10.0, metavar="S",
                   help="extra seconds allowed for the board to compute (default 10)")


def open_link(args):
    from .client import Link

    return Link(args.port, baud=args.baud, timeout=args.timeout, compute_timeout=args.compute_timeout)


# ---- info -------------------------------------------------------------------------------


def cmd_info(args) -> int:
    with open_link(args) as link:
        info = link.hello()
        rtt = link.ping()
    info = dict(info, port=args.port, ping_ms=round(rtt * 1000, 3), negotiated_max_payload=link.max_payload)
    if args.json:
        _print_json(info)
        return 0
    print(f"{args.port}: board {info.get('board')}, app {info.get('app')}, protocol v{info.get('protocol')}, "
          f"boot {info.get('boot')}")
    if info.get("load") != "ok":
        print(f"  model: none ({info.get('load')})")
    else:
        print(f"  model {info['model']}: engine {info.get('engine')}, image format v{info.get('format')}, "
              f"arena {info['arena_size']:,} B" + (", streamed input" if info.get("streamed") else ""))
        for name in ("inputs", "outputs"):
            for k, s in enumerate(info[name]):
                print(f"  {name[:-1]} {k}: int8 {'x'.join(map(str, s['shape']))} ({s['bytes']:,} B), "
                      f"scale {_scale(s):.6g}, zero point {s['zero_point']}")
    print(f"  frames up to {link.max_payload:,} B payload; ping {rtt * 1000:.2f} ms")
    return 0


def _scale(spec: dict) -> float:
    return struct.unpack("<f", struct.pack("<I", spec["scale_bits"]))[0]


# ---- run --port -------------------------------------------------------------------------


def _spec_tensor(k: int, spec: dict):
    import numpy as np

    from ..ir import Quant, Tensor

    q = Quant(np.array([_scale(spec)], np.float32), np.array([spec["zero_point"]], np.int64))
    return Tensor(k, f"input{k}", tuple(spec["shape"]), "int8", q)


def run_on_board(args) -> int:
    """`mcutool run --port`: the board runs the model it holds; the report has the keys of
    the host-side run, plus the board's figures."""
    import numpy as np

    from ..inputs import load_input

    with open_link(args) as link:
        info = link.hello()
        if info.get("load") != "ok":
            raise McutoolError(f"the board on {args.port} has no usable model: {info.get('load')}")
        specs = info["inputs"]
        if len(args.input) != len(specs):
            raise McutoolError(f"the board's model takes {len(specs)} input(s); give one --input per input")
        xs = [load_input(p, _spec_tensor(k, s), args.input_format) for k, (p, s) in enumerate(zip(args.input, specs))]
        res = link.infer([np.ascontiguousarray(x, np.int8).tobytes() for x in xs])
    outs = [np.frombuffer(b, np.int8).reshape(s["shape"]) for b, s in zip(res.outputs, info["outputs"])]
    o0 = info["outputs"][0]
    flat = outs[0].reshape(-1)
    order = np.argsort(-flat.astype(np.float64), kind="stable")[:5]
    top = [{"index": int(i), "value": int(flat[i]), "score": float(_scale(o0) * (int(flat[i]) - o0["zero_point"]))}
           for i in order]
    from pathlib import Path

    from ..output import label_top, top_line
    from ..zoo import class_labels

    label_top(top, class_labels([info["model"], Path(info.get("model_file") or "").stem], flat.size))
    rep = {"model": info["model"], "engine": "board", "board": info.get("board"), "port": args.port,
           "outputs": [o.reshape(-1).tolist() for o in outs], "shapes": [list(o.shape) for o in outs], "top": top,
           "time_us": res.time_us, "arena_bytes": res.arena, "latency_ms": round(res.wall_s * 1000, 3),
           "bytes_out": res.bytes_out, "bytes_in": res.bytes_in, "frames_out": res.frames_out,
           "resends": link.stats.resends, "restarts": link.stats.restarts}
    if args.decode:
        from ..post import decode, dequantize_outputs, summary
        from ..zoo import board_entry

        entry = board_entry(info, None if args.decode == "auto" else args.decode)
        rep["result"] = decode(entry, dequantize_outputs(res.outputs, info["outputs"]), None)
    if args.json:
        _print_json(rep)
        return 0
    if args.decode:
        print(f"{entry.name}: {summary(rep['result'])}")
    for k, o in enumerate(outs):
        vals = o.reshape(-1).tolist()
        more = f" ... ({len(vals)} values)" if len(vals) > 16 else ""
        print(f"output {k} {'x'.join(map(str, o.shape))} int8: {vals[:16]}{more}")
    print(top_line(top))
    print(f"board {rep['board']}: {res.time_us / 1000:.2f} ms compute, arena {res.arena:,} B; "
          f"round trip {res.wall_s * 1000:.1f} ms, {res.bytes_out:,} B out / {res.bytes_in:,} B in")
    return 0


# ---- sim --------------------------------------------------------------------------------


def cmd_sim(args) -> int:
    import signal

    from .sim import SimBoard, load_model_image

    if args.board:
        from ..boards import load_board

        load_board(args.board)  # an unknown name fails here, before the pty exists
    image = load_model_image(args.model, args.board)
    import os

    board = SimBoard(image, board=f"sim-{args.board}" if args.board else "sim", baud=args.baud,
                     max_payload=args.max_payload, model_name=os.path.basename(args.model))
    if board.server.model is None:
        board.stop()
        raise McutoolError(f"{args.model}: {board.server.load_error}")
    # SIGTERM stops it like Ctrl-C: scripts start and stop simulators.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if args.json:
        _print_json({"port": board.path})
    else:
        m = board.server.model
        print(f"simulated board on {board.path}  (model {m.name}, arena {m.arena_size:,} B"
              + (f", {args.baud} baud" if args.baud else ", unlimited speed") + "); Ctrl-C stops it", flush=True)
        print(f"  try: mcutool info --port {board.path}", flush=True)
    try:
        board.serve()
    except KeyboardInterrupt:
        pass
    finally:
        s = board.server
        board.stop()
        if not args.json:
            print(f"stopped after {s.inferences} inference(s), {s.requests} request(s)", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("sim", help="serve a simulated board on a pseudo-terminal (no hardware needed)",
                       description="Run the device app with the C engine on a pseudo-terminal, as a board "
                                   "would on USB: 'mcutool run --port' and 'mcutool info --port' talk to it. "
                                   "Prints the port path, then serves until Ctrl-C.")
    s.add_argument("--model", required=True, help="flash image (.mcu) or int8 .tflite to serve")
    s.add_argument("--board", help="plan for this board's SRAM budget and report its name (see 'mcutool boards')")
    s.add_argument("--baud", type=int, help="emulate a UART at this speed (default: unlimited, like USB)")
    s.add_argument("--max-payload", type=int, default=4096, metavar="BYTES",
                   help="largest frame payload the board takes, i.e. its receive buffer (default 4096)")
    s.add_argument("--json", action="store_true", help='print the port as one JSON line: {"port": "/dev/pts/N"}')
    s.set_defaults(func=cmd_sim)

    s = sub.add_parser("info", help="ask a board (or 'mcutool sim') what it runs",
                       description="Handshake with the board's app and print its board, model, arena and I/O.")
    s.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0, COM3, or a 'mcutool sim' path")
    link_options(s)
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_info)
