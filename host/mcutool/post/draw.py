"""Drawing answers over a picture (Pillow only): boxes, centroids, the label, and a
status line (FPS, board latency) for the camera view."""
from __future__ import annotations

_COLOURS = {"person": (0, 220, 0), "no person": (230, 40, 40), "mask": (0, 220, 0), "no mask": (240, 40, 40)}


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed bitmap size
        return ImageFont.load_default()


def _label(d, xy, text, colour, font):
    x, y = xy
    l, t, r, b = d.textbbox((x, y), text, font=font)
    d.rectangle((l - 2, t - 2, r + 2, b + 2), fill=(0, 0, 0))
    d.text((x, y), text, fill=colour, font=font)


def annotate(image, result: dict, status: str | None = None):
    """A copy of `image` (PIL, any mode) with `result` drawn on it, in RGB."""
    from PIL import ImageDraw

    img = image.convert("RGB")
    d = ImageDraw.Draw(img)
    w, h = img.size
    size = max(10, min(w, h) // 18)
    font = _font(size)
    lw = max(1, min(w, h) // 120)
    if result["kind"] == "classify":
        t = result["top"][0]
        _label(d, (lw * 3, lw * 3), f"{t['label']} {t['score']:.2f}", _COLOURS.get(t["label"], (255, 255, 0)), font)
    else:
        for det in result["detections"]:
            c = _COLOURS.get(det["label"], (255, 255, 0))
            text = f"{det['label']} {det['score']:.2f}"
            if "box" in det:
                x0, y0, x1, y1 = det["box"]
                d.rectangle((x0, y0, x1, y1), outline=c, width=lw)
                _label(d, (x0 + lw, max(0, y0 - size - 4)), text, c, font)
            else:
                x, y = det["x"], det["y"]
                x0, y0, x1, y1 = det["region"]
                d.rectangle((x0, y0, x1, y1), outline=c, width=max(1, lw // 2))
                r = max(3, lw * 3)
                d.ellipse((x - r, y - r, x + r, y + r), fill=c, outline=(0, 0, 0))
                _label(d, (x + r + 2, y - size // 2), text, c, font)
        if not result["detections"]:
            _label(d, (lw * 3, lw * 3), "nothing found", (255, 255, 0), font)
    if status:
        _label(d, (lw * 3, h - size - lw * 4), status, (255, 255, 255), font)
    return img
