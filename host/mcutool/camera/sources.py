"""Frame sources, each an iterator of RGB uint8 arrays (height, width, 3).

OpenCV is needed only for a webcam, a video file, --display and --record; the test
pattern and folders of images need only numpy and Pillow."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import McutoolError

IMAGE_EXT = (".bmp", ".png", ".jpg", ".jpeg", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def need_cv2(why: str):
    try:
        import cv2
    except ImportError:
        raise McutoolError(f"{why} needs OpenCV: pip install opencv-python-headless "
                           "(or opencv-python for --display), or mcutool[camera]") from None
    return cv2


def moving_pattern(width: int = 320, height: int = 240):
    """A moving scene, the same every run: a colour gradient, a bright disc circling, a dark
    bar sweeping across. It exercises the whole path without a camera."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width * 200 + 30, yy / height * 200 + 30, np.full_like(xx, 90)], -1)
    k = 0
    while True:
        t = k / 30.0
        f = base.copy()
        cx, cy = width / 2 + width / 3 * np.cos(t), height / 2 + height / 3 * np.sin(t)
        f[(xx - cx) ** 2 + (yy - cy) ** 2 < (min(width, height) / 8) ** 2] = 250
        bx = int((k * 4) % (width + 40)) - 40
        f[height // 4: 3 * height // 4, max(0, bx): max(0, bx + 30)] = 15
        yield f.astype(np.uint8)
        k += 1


def folder(path: Path):
    from PIL import Image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXT)
    if not files:
        raise McutoolError(f"{path}: no images in this folder ({', '.join(IMAGE_EXT)})")
    for p in files:
        try:
            yield np.asarray(Image.open(p).convert("RGB"))
        except OSError as e:
            raise McutoolError(f"{p}: cannot read the image ({e})") from None


def capture(src, what: str):
    cv2 = need_cv2(what)
    cap = cv2.VideoCapture(src)
    if not cap.isOpened():
        raise McutoolError(f"cannot open {what}" + (": is a camera connected (try --source 1)?" if isinstance(src, int)
                                                     else ": is it a video OpenCV can read?"))
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                if isinstance(src, int):
                    raise McutoolError(f"{what} stopped giving frames")
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def open_source(spec: str):
    """`spec`: 'test', a camera number, a folder of images, an image or a video file."""
    if spec == "test":
        return moving_pattern()
    if spec.isdigit():
        return capture(int(spec), f"camera {spec}")
    p = Path(spec)
    if p.is_dir():
        return folder(p)
    if not p.is_file():
        raise McutoolError(f"{spec}: no such file or folder; --source takes 0 (a camera), a video, a folder of "
                           "images, or 'test'")
    if p.suffix.lower() in IMAGE_EXT:
        return folder_of_one(p)
    return capture(os.fspath(p), f"video {spec}")


def folder_of_one(p: Path):
    from PIL import Image

    try:
        yield np.asarray(Image.open(p).convert("RGB"))
    except OSError as e:
        raise McutoolError(f"{p}: cannot read the image ({e})") from None
