"""Draw masks, boxes, ids and scores over an image (Pillow only); the CLI's ``overlay.png`` and notebooks share it.

    from sam3kit.io.overlay import overlay_result
    overlay_result("photo.jpg", predictor.segment(text="dog"), label="dog")      # -> PIL.Image

Colours are a fixed function of the instance id, so the same id has the same colour in every image and run.
Captions never hide much of the image: each is drawn at the largest size (from about 1/50 of the image's longer
side down to 7 px) at which its box stays within half the image's width and a third of its height; when the full
caption does not fit, only the instance id is drawn, and on an image too small even for that, no caption.
"""

from __future__ import annotations

import colorsys
import functools
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import InputError
from .image import ImageInput, load_image


def color(i: int) -> tuple[int, int, int]:
    """A saturated RGB colour for id ``i`` (golden-ratio hue steps: neighbours differ clearly)."""
    h = (0.07 + i * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_overlay(image: ImageInput, masks: Any = None, boxes: Any = None, *, ids: Optional[Sequence[int]] = None,
                 captions: Optional[Sequence[str]] = None, points: Any = None, point_labels: Any = None,
                 prompt_boxes: Any = None, alpha: float = 0.45, outline: bool = True):
    """Blend coloured masks over ``image`` and draw boxes, captions and prompt points.

    Args:
        image: path, PIL image or (H, W, 3) uint8 array.
        masks: (N, H, W) bool at the image size, or None.
        boxes: (N, 4) pixel xyxy (None entries or rows allowed: nothing drawn), or None.
        ids: (N,) instance ids that pick the colours (default 0..N-1).
        captions: (N,) text drawn at each box's (or mask's) top-left corner, e.g. "0 dog 0.91".
        points: (P, 2) pixel (x, y) clicks, drawn as discs: green foreground, red background.
        point_labels: (P,) 1 foreground / 0 background (default all 1).
        prompt_boxes: (Q, 4) pixel xyxy prompt boxes, drawn dashed in white.
        alpha: mask opacity in [0, 1].
        outline: draw each mask's contour in its colour.
    Returns:
        an RGB ``PIL.Image`` of the image's size.
    """
    from PIL import Image, ImageDraw

    rgb = load_image(image)
    H, W = rgb.shape[:2]
    n = 0 if masks is None else len(masks)
    if boxes is not None:
        n = max(n, len(boxes))
    ids = list(range(n)) if ids is None else [int(i) for i in ids]
    if len(ids) < n:
        raise InputError(f"got {len(ids)} ids for {n} instances")
    out = rgb.astype(np.float32)
    if masks is not None:
        for k in range(len(masks)):
            m = np.asarray(masks[k]).astype(bool)
            if m.shape != (H, W):
                raise InputError(f"mask {k} has shape {list(m.shape)}, expected the image size {[H, W]}")
            c = np.array(color(ids[k]), dtype=np.float32)
            out[m] = out[m] * (1.0 - alpha) + c * alpha
            if outline:
                out[_contour(m)] = c
    im = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    width = max(1, round(max(H, W) / 400))
    font_size = max(11, round(max(H, W) / 50))
    for k in range(n):
        box = None if boxes is None or k >= len(boxes) else boxes[k]
        c = color(ids[k])
        if box is not None:
            x1, y1, x2, y2 = (float(v) for v in box)
            draw.rectangle([x1, y1, x2, y2], outline=c, width=width)
            anchor = (x1, y1)
        elif masks is not None and k < len(masks) and np.asarray(masks[k]).any():
            ys, xs = np.nonzero(np.asarray(masks[k]))
            anchor = (float(xs.min()), float(ys.min()))
        else:
            continue
        if captions is not None and k < len(captions) and captions[k]:
            fitted = fit_caption(draw, str(captions[k]), W, H, font_size)
            if fitted is not None:
                _caption(draw, anchor, *fitted, c, W, H)
    if prompt_boxes is not None:
        for b in np.asarray(prompt_boxes, dtype=np.float64).reshape(-1, 4):
            _dashed_rect(draw, b, (255, 255, 255), width)
    if points is not None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        labels = np.ones(len(pts), dtype=np.int64) if point_labels is None else np.asarray(point_labels).reshape(-1)
        r = max(3, round(max(H, W) / 120))
        for (x, y), lab in zip(pts, labels):
            fill = (40, 220, 60) if int(lab) == 1 else (235, 40, 40)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=(255, 255, 255), width=max(1, r // 3))
    return im


def overlay_result(image: ImageInput, result: Any, *, label: Optional[str] = None, ids: Optional[Sequence[int]] = None,
                   points: Any = None, point_labels: Any = None, box: Any = None, alpha: float = 0.45):
    """Overlay of a ``SegmentResult`` (every instance, captions "id label score") or a ``PredictResult`` (every
    candidate mask, captions "id iou=...", the best one marked with *), with the prompt points/box if given."""
    if hasattr(result, "iou_scores"):
        n = result.masks.shape[0]
        ids = list(range(n)) if ids is None else list(ids)
        caps = [f"{ids[k]}{'*' if k == result.best else ''} {label + ' ' if label else ''}iou={result.iou_scores[k]:.2f}"
                for k in range(n)]
        return draw_overlay(image, result.masks, None, ids=ids, captions=caps, points=points,
                            point_labels=point_labels, prompt_boxes=None if box is None else [box], alpha=alpha)
    n = len(result.scores)
    ids = list(range(n)) if ids is None else list(ids)
    caps = [f"{ids[k]} {label + ' ' if label else ''}{result.scores[k]:.2f}" for k in range(n)]
    return draw_overlay(image, result.masks, result.boxes, ids=ids, captions=caps, points=points,
                        point_labels=point_labels, prompt_boxes=None if box is None else [box], alpha=alpha)


def overlay_records(image: ImageInput, records: Sequence[dict], masks: Sequence[np.ndarray], *, points: Any = None,
                    point_labels: Any = None, prompt_boxes: Any = None, alpha: float = 0.45):
    """Overlay of instance records (``sam3kit.io.writers`` format) with their masks; what ``segment --overlay``
    draws. Captions: "id label score" for concept instances, "id label iou=..." for interactive masks."""
    return draw_overlay(image, list(masks), [r["box"] for r in records], ids=[r["id"] for r in records],
                        captions=[caption(r) for r in records], points=points, point_labels=point_labels,
                        prompt_boxes=prompt_boxes, alpha=alpha)


def caption(record: dict) -> str:
    """The short text drawn next to an instance: "3 dog 0.91" or "0* points iou=0.87" (* = best IoU)."""
    star = "*" if record.get("best") else ""
    if record.get("score") is not None:
        return f"{record['id']}{star} {record['label']} {record['score']:.2f}"
    return f"{record['id']}{star} {record['label']} iou={record['iou']:.2f}"


def _contour(m: np.ndarray) -> np.ndarray:
    """Pixels of ``m`` with a 4-neighbour outside ``m`` (the image border counts as outside)."""
    p = np.pad(m, 1, constant_values=False)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


MIN_FONT = 7  # px: smaller captions are not drawn


@functools.lru_cache(maxsize=64)
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _pad(size: int) -> int:
    return 2 if size >= 11 else 1


def fit_caption(draw, text: str, W: int, H: int, size: int) -> Optional[tuple[str, Any, int]]:
    """(text, font, padding) of the caption to draw on a W x H image, or None: ``text`` at the largest size from
    ``size`` down to ``MIN_FONT`` whose box fits in W/2 x H/3, else its first word (the instance id) likewise."""
    for candidate in dict.fromkeys([text, text.split(" ")[0]]):
        for s in range(max(size, MIN_FONT), MIN_FONT - 1, -1):
            font, pad = _font(s), _pad(s)
            l, t, r, b = draw.textbbox((0, 0), candidate, font=font)
            if r - l + 2 * pad <= W / 2 and b - t + 2 * pad <= H / 3:
                return candidate, font, pad
    return None


def _caption(draw, anchor: tuple[float, float], text: str, font, pad: int, c: tuple[int, int, int], W: int,
             H: int) -> None:
    x, y = anchor
    l, t, r, b = draw.textbbox((0, 0), text, font=font)
    tw, th = r - l + 2 * pad, b - t + 2 * pad
    x = min(max(0.0, x), max(0.0, W - tw))
    y = y - th if y - th >= 0 else min(y, max(0.0, H - th))
    draw.rectangle([x, y, x + tw - 1, y + th - 1], fill=c)  # both corners inclusive: tw x th pixels
    luminance = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    draw.text((x + pad - l, y + pad - t), text, fill=(0, 0, 0) if luminance > 140 else (255, 255, 255), font=font)


def _dashed_rect(draw, box: np.ndarray, c: tuple[int, int, int], width: int) -> None:
    x1, y1, x2, y2 = (float(v) for v in box)
    dash = max(4, 4 * width)
    for (ax, ay, bx, by) in ((x1, y1, x2, y1), (x2, y1, x2, y2), (x2, y2, x1, y2), (x1, y2, x1, y1)):
        length = max(abs(bx - ax), abs(by - ay))
        steps = max(1, int(length // dash))
        for s in range(0, steps, 2):
            t0, t1 = s / steps, min(1.0, (s + 1) / steps)
            draw.line([ax + (bx - ax) * t0, ay + (by - ay) * t0, ax + (bx - ax) * t1, ay + (by - ay) * t1],
                      fill=c, width=width)
