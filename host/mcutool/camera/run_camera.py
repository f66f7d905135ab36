"""The run-camera loop: source frame -> zoo preprocessing -> board (Link.infer) ->
post-processing -> JSON line and/or drawn frame (window, video file)."""
from __future__ import annotations

import sys
import time

import numpy as np

from ..errors import McutoolError
from ..output import print_json


class Viewer:
    """The window and the recording, both through OpenCV, opened on the first frame."""

    def __init__(self, display: bool, record: str | None, fps: float = 10.0):
        self.display, self.record, self.fps = display, record, fps
        self.writer = None
        self.cv2 = None
        if display or record:
            from .sources import need_cv2

            self.cv2 = need_cv2("--display" if display else "--record")

    def show(self, rgb: np.ndarray) -> bool:
        """False when the user closed the window (q or Esc)."""
        cv2 = self.cv2
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self.record:
            if self.writer is None:
                h, w = bgr.shape[:2]
                self.writer = cv2.VideoWriter(self.record, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
                if not self.writer.isOpened():
                    raise McutoolError(f"{self.record}: OpenCV cannot write this video (try a .mp4 path in a "
                                       "folder that exists)")
            self.writer.write(bgr)
        if self.display:
            try:
                cv2.imshow("mcutool run-camera", bgr)
                key = cv2.waitKey(1) & 0xFF
            except cv2.error:
                raise McutoolError("no window can be opened here (opencv-python-headless has no GUI, or there "
                                   "is no display): use --headless, or pip install opencv-python") from None
            return key not in (27, ord("q"))
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.display and self.cv2 is not None:
            try:
                self.cv2.destroyAllWindows()
            except Exception:
                pass


def _frame_line(n: int, result: dict, res, fps: float) -> dict:
    line = {"frame": n, "latency_ms": round(res.wall_s * 1000, 3), "board_ms": round(res.time_us / 1000, 3),
            "fps": round(fps, 2)}
    if result["kind"] == "classify":
        line["top"] = result["top"]
        line["label"] = result["label"]
    else:
        line["detections"] = result["detections"]
    return line


def run_camera(args, out=None) -> int:
    out = out or sys.stdout
    from PIL import Image

    from ..demo import infer
    from ..link.commands import _scale, open_link
    from ..post import summary
    from ..post.draw import annotate
    from ..zoo import board_entry
    from .sources import open_source

    if args.frames is not None and args.frames < 1:
        raise McutoolError(f"--frames must be 1 or more, got {args.frames}")
    frames = open_source(args.source)
    viewer = Viewer(args.display, args.record)
    link = open_link(args)
    n, t0, interrupted = 0, None, False
    try:
        info = link.hello()
        entry = board_entry(info, args.model)
        quant = (_scale(info["inputs"][0]), info["inputs"][0]["zero_point"])
        if not args.json:
            print(f"{args.port}: board {info.get('board')} runs {info.get('model')}; decoding as zoo model "
                  f"{entry.name} ({entry.kind}); Ctrl-C stops", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        for frame in frames:
            try:
                result, res = infer(entry, link, info, frame, quant)
            except McutoolError as e:
                raise McutoolError(f"after {n} frame(s): {e}") from None
            n += 1
            fps = n / max(time.perf_counter() - t0, 1e-9)
            line = _frame_line(n - 1, result, res, fps)
            if args.json:
                print_json(line, file=out)
            else:
                print(f"frame {n - 1}: {summary(result)}  [board {line['board_ms']:.1f} ms, round trip "
                      f"{line['latency_ms']:.1f} ms, {fps:.1f} FPS]", file=out, flush=True)
            if viewer.cv2 is not None:
                status = f"{fps:.1f} FPS  board {line['board_ms']:.1f} ms  link {line['latency_ms']:.1f} ms"
                drawn = annotate(Image.fromarray(frame), result, status)
                if not viewer.show(np.asarray(drawn)):
                    break
            if args.frames and n >= args.frames:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        link.close()
        viewer.close()
        close = getattr(frames, "close", None)
        if close:
            close()
    if t0 is not None and not args.json:
        dt = time.perf_counter() - t0
        print(f"{'interrupted' if interrupted else 'done'}: {n} frame(s) in {dt:.1f} s, "
              f"{n / dt if dt else 0:.1f} FPS" + (f"; recorded {args.record}" if args.record and n else ""),
              file=sys.stderr)
    return 0
