"""`mcutool demo`: person detection and mask detection on the sample images, on simulated
boards (the real device app and C engine on a pseudo-terminal), no hardware needed.

Each model is planned, packed into a flash image and served by a SimBoard; every sample
goes over the serial protocol exactly as a camera frame would (`run-camera` shares this
code path: zoo preprocessing -> Link.infer -> post-processing -> drawing)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .errors import McutoolError
from .output import print_json

# (model, image, how the file stores its pixels).
# person.bmp is stored as tflite-micro's test feeds it: its bytes ARE the int8 input
# (two's complement), so as an ordinary 8-bit image its pixels have bit 7 flipped (see
# $MCUTOOL_MODELS/README.md). Flipping bit 7 back gives the true grey picture; the usual
# pixel - 128 mapping of that picture is then exactly the file's bytes as int8: the input
# TFLM's own test uses (score [-113, 113], person). no_person.bmp is an ordinary image
# (pixel - 128 gives [77, -77], no person). Treating both alike would feed one of them a
# scrambled picture, so the flip belongs to the file, not to the model.
SAMPLES = [
    ("person_detect", "person.bmp", "bit7"),
    ("person_detect", "no_person.bmp", None),
    ("mcunet_vww1", "person_crop.png", None),
    ("mcunet_vww1", "no_person_crop.png", None),
    ("mcunet_person_det", "person_det.jpg", None),
    ("fomo_mask_int8", "masks_group.jpg", None),
    ("fomo_mask_int8", "face.jpg", None),
    ("fomo_mask_int8", "face_mask.jpg", None),
    ("fomo_mask_int8", "face_nomask.jpg", None),
]
TASKS = {"person_detect": "person detection", "mcunet_vww1": "person detection",
         "mcunet_person_det": "person detection (boxes)", "fomo_mask_int8": "mask detection"}


def load_sample(path: Path, stored: str | None = None):
    """A sample picture as a PIL image, its storage quirk undone."""
    import numpy as np
    from PIL import Image

    try:
        img = Image.open(path)
        img.load()
    except OSError as e:
        raise McutoolError(f"{path}: cannot read the image ({e})") from None
    if stored == "bit7":
        img = Image.fromarray(np.asarray(img.convert("L")) ^ np.uint8(0x80))
    return img


def images_dir(model_path: Path, models_dir: str | None) -> Path:
    from .zoo.pull import search_dirs

    for d in [model_path.parent, *search_dirs(models_dir)]:
        if (d / "images").is_dir():
            return d / "images"
    raise McutoolError(f"no sample images next to {model_path} (an images/ folder): set MCUTOOL_MODELS to the "
                       "shared models folder, which holds images/")


class Served:
    """One model planned, packed and served on a simulated board, with a link to it."""

    def __init__(self, entry, path: Path):
        from .image.format import pack
        from .link.client import Link
        from .link.sim import SimBoard
        from .model import load_model
        from .plan.planner import Objective, choose

        self.entry, self.path = entry, path
        graph = load_model(str(path))
        choice = choose(graph, Objective())
        self.plan = choice.plan
        self.board = SimBoard(pack(choice.lowered.graph, choice.plan), board="sim", model_name=path.name).start()
        try:
            self.link = Link(self.board.path, timeout=2.0)
            self.info = self.link.hello()
        except Exception:
            self.board.stop()
            raise

    @property
    def quant(self) -> tuple[float, int]:
        from .link.commands import _scale

        s = self.info["inputs"][0]
        return _scale(s), s["zero_point"]

    def close(self) -> None:
        self.link.close()
        self.board.stop()


def infer(entry, link, info, image, quant):
    """The shared path: picture -> zoo preprocessing -> board -> post-processing."""
    from .post import decode, dequantize_outputs
    from .zoo.preprocess import prepare

    prep = prepare(image, entry, quant)
    res = link.infer([prep.q.tobytes()])
    return decode(entry, dequantize_outputs(res.outputs, info["outputs"]), prep.geom), res


def run_demo(only: str | None = None, out: str = "mcutool-demo", models_dir: str | None = None,
             progress: bool = True) -> dict:
    from .post import summary
    from .post.draw import annotate
    from .zoo import get_entry, load_zoo
    from .zoo.pull import require_model

    t0 = time.perf_counter()
    zoo = load_zoo()
    names = list(dict.fromkeys(m for m, _, _ in SAMPLES))
    if only:
        get_entry(only, zoo)
        if only not in names:
            raise McutoolError(f"the demo has no samples for {only}; it runs: {', '.join(names)}")
        names = [only]
    paths = {n: require_model(zoo[n], models_dir) for n in names}  # all missing models reported before any work
    outdir = Path(out)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise McutoolError(f"{out}: cannot create the output folder ({e.strerror})") from None
    samples, memory = [], []
    for name in names:
        entry, path = zoo[name], paths[name]
        imgs = images_dir(path, models_dir)
        if progress:
            print(f"  {name}: planning, packing, starting a simulated board ...", file=sys.stderr, flush=True)
        served = Served(entry, path)
        try:
            for model, image_name, stored in SAMPLES:
                if model != name:
                    continue
                p = imgs / image_name
                if not p.is_file():
                    raise McutoolError(f"{p}: sample image missing; set MCUTOOL_MODELS to the shared models folder")
                img = load_sample(p, stored)
                result, res = infer(entry, served.link, served.info, img, served.quant)
                png = outdir / f"{Path(image_name).stem}.{name}.png"
                status = f"sim board {res.time_us / 1000:.1f} ms"
                annotate(img, result, status).save(png)
                samples.append({"model": name, "task": TASKS.get(name, entry.kind), "image": image_name,
                                **({"stored": "int8 bytes (bit 7 flipped as a picture)"} if stored == "bit7" else {}),
                                "summary": summary(result), **result, "board_ms": round(res.time_us / 1000, 3),
                                "annotated": str(png)})
            memory.append(_memory_row(name, path, served))
        finally:
            served.close()
    return {"samples": samples, "memory": memory, "out": str(outdir), "seconds": round(time.perf_counter() - t0, 2)}


def _memory_row(name: str, path: Path, served: Served) -> dict:
    from .refs.tflm import tflm_arena

    try:
        tflm = tflm_arena(path.read_bytes())["total"]
    except McutoolError:  # tflite-micro not installed: show ours alone
        tflm = None
    ours = served.plan.peak_sram_bytes
    return {"model": name, "tflm_arena_bytes": tflm, "peak_sram_bytes": ours,
            "board_arena_bytes": served.info.get("arena_size"),
            "ratio_tflm": round(tflm / ours, 2) if tflm else None}


def format_demo(rep: dict) -> str:
    lines = ["mcutool demo: int8 models on simulated boards (the device app and the C engine on a pty)", ""]
    task = None
    for s in rep["samples"]:
        if s["task"] != task:
            task = s["task"]
            lines.append(task)
        lines.append(f"  {s['model']:<18} {s['image']:<19} {s['summary']}   [{s['board_ms']:.1f} ms]")
    lines += ["", "memory: peak SRAM, TFLM's arena against ours (planned, as the board runs it)"]
    for m in rep["memory"]:
        tflm = f"{m['tflm_arena_bytes']:>9,} B" if m["tflm_arena_bytes"] else "   (no tflite-micro)"
        ratio = f"{m['ratio_tflm']:.1f}x less" if m["ratio_tflm"] else ""
        lines.append(f"  {m['model']:<18} TFLM {tflm}   ours {m['peak_sram_bytes']:>8,} B   {ratio}")
    lines += ["", f"annotated images in {rep['out']}/   ({rep['seconds']:.1f} s)"]
    return "\n".join(lines)


def cmd_demo(args) -> int:
    rep = run_demo(args.model, args.out, args.models_dir, progress=not args.json)
    if args.json:
        print_json(rep)
    else:
        print(format_demo(rep))
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("demo", help="person and mask detection on the sample images, on a simulated board",
                       description="Runs the zoo models on the sample images ($MCUTOOL_MODELS/images) on simulated "
                                   "boards, prints what they find and the memory story (TFLM's arena against "
                                   "ours), and writes an annotated image per sample. No hardware, no network.")
    s.add_argument("--model", help="only this zoo model (see 'mcutool models list')")
    s.add_argument("--out", default="mcutool-demo", metavar="DIR",
                   help="folder for the annotated images (default ./mcutool-demo)")
    s.add_argument("--models-dir", metavar="DIR", help="look for the models here first (else $MCUTOOL_MODELS, "
                   "then the download cache)")
    s.add_argument("--json", action="store_true", help="print the results as one JSON object")
    s.set_defaults(func=cmd_demo)
