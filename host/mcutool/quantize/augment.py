"""Calibration and evaluation images made from a few pictures: each picture, and seeded
augmented variants of it (a random crop, maybe mirrored, brightness changed), resized to
the model's input. `mcutool quantize-sets` writes them as folders of PNGs, the form
`quantize --calibration DIR --eval DIR` reads; the tests use the same images."""
from __future__ import annotations

import os

import numpy as np

from ..errors import McutoolError


def base_images(folder: str) -> list:
    """The folder's pictures in name order, as RGB, with a sample's storage quirk undone
    (person.bmp holds int8 bytes: see mcutool.demo.SAMPLES)."""
    from ..demo import SAMPLES, load_sample
    from .preprocess import list_images

    stored = {image: how for _, image, how in SAMPLES}
    files = list_images(folder) if os.path.isdir(folder) else []
    if not files:
        raise McutoolError(f"{folder}: no images (.png, .jpg, .bmp, ...) to make the sets from")
    return [load_sample(f, stored.get(os.path.basename(f))).convert("RGB") for f in files]


def augment(img, rng: np.random.Generator, side: int):
    """A random crop (0.5-1 of the shorter side, aspect 0.8-1.25), mirrored half the time,
    brightness x0.6-1.4, resized to side x side."""
    from PIL import Image, ImageEnhance

    w, h = img.size
    edge = min(w, h) * rng.uniform(0.5, 1.0)
    aspect = rng.uniform(0.8, 1.25)
    cw, ch = min(w, int(edge * aspect)), min(h, int(edge / aspect))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.6, 1.4))
    return img.resize((side, side), Image.BILINEAR)


def image_sets(folder: str, side: int, variants: int = 8, eval_variants: int = 20, seed: int = 1):
    """(calibration, evaluation) PIL images: every picture and `variants` variants of each;
    `eval_variants` other variants of each, from another seed, so the sets are disjoint."""
    from PIL import Image

    base = base_images(folder)
    rc, re = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    calib = [b.resize((side, side), Image.BILINEAR) for b in base]
    calib += [augment(b, rc, side) for b in base for _ in range(variants)]
    evals = [augment(b, re, side) for b in base for _ in range(eval_variants)]
    return calib, evals


def write_sets(folder: str, calib_dir: str, eval_dir: str | None, side: int, variants: int, eval_variants: int,
               seed: int) -> dict:
    calib, evals = image_sets(folder, side, variants, eval_variants, seed)
    out = {"calibration": calib_dir, "calibration_images": len(calib)}
    todo = [(calib_dir, calib)] + ([(eval_dir, evals)] if eval_dir else [])
    for d, imgs in todo:
        if os.path.exists(d) and (not os.path.isdir(d) or os.listdir(d)):
            raise McutoolError(f"{d}: exists and is not an empty folder; give a new one")
    for d, imgs in todo:
        os.makedirs(d, exist_ok=True)
        for k, img in enumerate(imgs):
            img.save(os.path.join(d, f"{k:04d}.png"))
    if eval_dir:
        out.update(eval=eval_dir, eval_images=len(evals))
    return out
