"""The inputs of the cases: two seeded test images, five text prompts, detector boxes and interactive prompts."""
from __future__ import annotations

import torch

from .builder import IMAGE_SEED

IMAGE_SHAPES = [(90, 120), (130, 70)]  # (H, W) of image 1 and image 2
TEXT_PROMPTS = [
    "a cat", "Yellow School Bus", "&amp; tom's 12 dogs", "visual",
    # 60 words: longer than the 32-token context -> truncated, last id forced to <end_of_text>
    " ".join(("the quick brown fox jumps over the lazy dog while a small red bird sings on an old wooden fence "
              "near the quiet river under a bright blue summer sky and three happy children play with a yellow "
              "ball in the green park beside tall trees full of ripe apples that fall slowly to the soft grass "
              "every single autumn day").split()[:60]),
]
assert len(TEXT_PROMPTS[4].split()) == 60
# detector box prompts: normalised (cx, cy, w, h) of the original image, label True = positive
DET_BOXES_TWO = [[0.5, 0.45, 0.4, 0.5], [0.25, 0.7, 0.3, 0.35]]
DET_LABELS_TWO = [True, False]
DET_BOX_ONE = [0.55, 0.5, 0.5, 0.6]
# interactive prompts: pixel coordinates of the original image 1 (W=120, H=90)
PTS_ONE = [[70.25, 40.5]]
PTS_THREE = [[70.25, 40.5], [25.0, 70.0], [100.5, 20.25]]
LBL_THREE = [1, 0, 1]
BOX_XYXY = [30.0, 20.5, 95.5, 75.0]
PT_WITH_BOX = [[60.0, 50.0]]


def make_images(seed=IMAGE_SEED):
    """Two uint8 RGB images (H, W, 3): smooth random colour field + pixel noise."""
    g = torch.Generator().manual_seed(seed)
    imgs = []
    for h, w in IMAGE_SHAPES:
        base = torch.rand(1, 3, 6, 8, generator=g) * 255
        base = torch.nn.functional.interpolate(base, size=(h, w), mode="bicubic", align_corners=False)[0]
        noise = torch.randn(3, h, w, generator=g) * 25
        img = (base + noise).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
        imgs.append(img)
    return imgs
