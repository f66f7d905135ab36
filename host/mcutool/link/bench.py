"""`mcutool bench --link`: person_detect through `mcutool sim`, at a UART's 921,600 baud
and at unlimited speed (USB): inferences per second, bytes on the wire per inference, and
the protocol's overhead against the input it carries."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from ..errors import McutoolError


def _sim(model: str, baud: int | None):
    argv = [sys.executable, "-m", "mcutool.cli", "sim", "--model", model, "--json"]
    if baud:
        argv += ["--baud", str(baud)]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line:
        p.wait()
        raise McutoolError(f"mcutool sim did not start: {p.stderr.read().strip()}")
    return p, json.loads(line)["port"]


def link_bench(model: str, bauds=(921600, None), count: int = 20, progress: bool = True) -> list[dict]:
    from .client import Link

    rows = []
    for baud in bauds:
        proc, port = _sim(model, baud)
        try:
            with Link(port, baud=baud or 115200, wire_baud=baud or 0) as link:
                info = link.hello()
                spec = info["inputs"][0]
                x = np.random.default_rng(0).integers(-128, 128, spec["bytes"], dtype=np.int8).tobytes()
                link.infer([x])  # warm-up
                s0 = (link.stats.bytes_out, link.stats.bytes_in, link.stats.frames_out, link.stats.frames_in)
                t0 = time.perf_counter()
                board_us = 0
                for i in range(count):
                    board_us += link.infer([x]).time_us
                    if progress:
                        print(f"\r  link {baud or 'unlimited'}: {i + 1}/{count}", end="", file=sys.stderr)
                wall = time.perf_counter() - t0
                if progress:
                    print(file=sys.stderr)
                out = (link.stats.bytes_out - s0[0]) / count
                inn = (link.stats.bytes_in - s0[1]) / count
                payload = spec["bytes"]
                rows.append({
                    "model": info["model"], "baud": baud, "inferences_per_s": round(count / wall, 2),
                    "frames_out_per_inference": (link.stats.frames_out - s0[2]) / count,
                    "frames_in_per_inference": (link.stats.frames_in - s0[3]) / count,
                    "bytes_out_per_inference": out, "bytes_in_per_inference": inn, "input_bytes": payload,
                    "overhead_out": round((out - payload) / payload, 5),
                    "overhead_both_ways": round((out + inn - payload - sum(o["bytes"] for o in info["outputs"]))
                                                / payload, 5),
                    "wire_limit_per_s": round(baud / 10 / (out + inn), 2) if baud else None,
                    "board_compute_ms": round(board_us / count / 1000, 3),
                    "max_payload": link.max_payload, "resends": link.stats.resends,
                })
        finally:
            proc.terminate()
            proc.wait(10)
    return rows


def format_link(rows: list[dict]) -> str:
    lines = ["link: person_detect through mcutool sim (stop-and-wait frames, row bands)",
             f"  {'speed':>12} {'inf/s':>7} {'wire max':>8} {'frames':>7} {'B out':>7} {'B in':>6} "
             f"{'overhead out':>12} {'both ways':>9}"]
    for r in rows:
        speed = f"{r['baud']} Bd" if r["baud"] else "unlimited"
        wl = f"{r['wire_limit_per_s']:.2f}" if r["wire_limit_per_s"] else "-"
        lines.append(f"  {speed:>12} {r['inferences_per_s']:>7.2f} {wl:>8} {r['frames_out_per_inference']:>7.1f} "
                     f"{r['bytes_out_per_inference']:>7.0f} {r['bytes_in_per_inference']:>6.0f} "
                     f"{100 * r['overhead_out']:>11.2f}% {100 * r['overhead_both_ways']:>8.2f}%")
    return "\n".join(lines)
