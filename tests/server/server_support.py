"""Helpers of the server tests: a tiny model biased to find things, pictures, clips, and a live uvicorn server."""

from __future__ import annotations

import io
import socket
import threading
import time

import numpy as np
import torch
from PIL import Image

from sam3kit.config import Sam3Config
from sam3kit.model.sam3 import Sam3Model
from sam3kit.testing import randomize_

BASE = "http://localhost"


def biased_model(seed: int = 0) -> Sam3Model:
    """A tiny random SAM 3 that finds things, so the page and the API have masks to show.

    Random weights give scores near 0 (a text finds nothing at the default threshold 0.5) and interactive masks
    that are empty or full. Here: the presence head's last bias +6 (presence about 1); the scoring's query
    projection scaled x20 with small biases on both projections, so the ten queries' scores spread over about
    0.45-0.65 (most, not all, are found at 0.5); and the tracker as in the video tests (std 0.1 weights, a proper
    positional embedding, object-score bias +2), so clicks give masks that follow them.
    """
    model = randomize_(Sam3Model(Sam3Config.tiny()).eval(), seed=seed)
    det = model.detector_model
    trk = model.tracker_model
    randomize_(trk, seed + 1, std=0.1)
    with torch.no_grad():
        det.detr_decoder.presence_head.layer3.bias.add_(6.0)
        scoring = det.dot_product_scoring
        scoring.query_proj.weight.mul_(20.0)
        scoring.query_proj.bias.fill_(0.06)
        scoring.text_proj.bias.fill_(0.12)
        pe = trk.prompt_encoder.shared_embedding.positional_embedding
        pe.normal_(generator=torch.Generator().manual_seed(seed))
        trk.shared_image_embedding.positional_embedding.copy_(pe)
        trk.mask_decoder.pred_obj_score_head.proj_out.bias.add_(2.0)
    return model


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A picture with gradients and a few flat discs (masks and boxes differ between objects)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full((h, w), 90)], axis=-1).astype(np.int64)
    for _ in range(4):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(6, max(7, min(h, w) // 3))
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    return img.astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def wait_ready(client, image_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = client.get(f"/v1/images/{image_id}").json()
        if st["status"] != "encoding" or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port in a thread of this process (so tests can look inside)."""

    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def disc_clip(num_frames: int, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Frames (H, W, 3) uint8: a red disc moving right over a smooth noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(xx / 7.0)[..., None] * 40 + np.cos(yy / 5.0)[..., None] * 40 + 120).repeat(3, axis=2)
    frames = []
    for t in range(num_frames):
        img = base + rng.normal(0, 6, (h, w, 3))
        cx = 12 + (w - 24) * t / max(num_frames - 1, 1)
        img[(xx - cx) ** 2 + (yy - h / 2) ** 2 <= (min(h, w) / 5) ** 2] = (220, 40, 40)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def write_clip(path, num_frames: int, fps: float = 5.0):
    from sam3kit.io.video import write_video

    write_video(path, disc_clip(num_frames), fps)
    return path
