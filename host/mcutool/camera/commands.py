"""`mcutool run-camera` (mcutool.cli calls add_parsers)."""
from __future__ import annotations


def cmd_run_camera(args) -> int:
    from .run_camera import run_camera

    return run_camera(args)


def add_parsers(sub) -> None:
    from ..link.commands import link_options

    s = sub.add_parser("run-camera", help="live: frames from a camera/video/folder, run on a board, drawn",
                       description="Streams frames to the board (or 'mcutool sim'): the host resizes, crops and "
                                   "colour-converts each frame per the model zoo, the board runs the model, the "
                                   "host decodes labels, boxes or centroids. Ctrl-C stops.",
                       epilog="Example without hardware: mcutool sim --model $MCUTOOL_MODELS/person_detect.tflite "
                              "& then mcutool run-camera --port /dev/pts/N --source test --frames 100 --headless --json")
    s.add_argument("--port", required=True, help="serial port of the board, or the path 'mcutool sim' printed")
    s.add_argument("--model", help="zoo model for pre/post-processing (default: the one the board says it runs)")
    s.add_argument("--source", default="0", help="0 (webcam number), a video file, a folder of images, or 'test' "
                   "(a moving test pattern); default 0")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--display", action="store_true", help="show the annotated frames in a window (q/Esc stops)")
    g.add_argument("--headless", action="store_true", help="no window (the default)")
    s.add_argument("--record", metavar="OUT.mp4", help="write the annotated frames to a video")
    s.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    s.add_argument("--json", action="store_true",
                   help="one JSON line per frame: frame, latency_ms, board_ms, fps, and top or detections")
    link_options(s)
    s.set_defaults(func=cmd_run_camera)
