"""Another input resolution (``Sam3Config.with_image_size``, ``sam3kit.load(image_size=...)``): the ViT and
detector neck at 168 px (tiny config: 12 x 12 grid, 3 x 3 windows) against transformers configured for 168 px
with the same weights (both tile the pos-emb table and scale the global RoPE positions by window / grid)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures.weights import randomize_
from sam3kit.config import Sam3Config
from sam3kit.model.vision import VisionEncoder

transformers = pytest.importorskip("transformers")

TOL = 1e-4


def test_with_image_size_validates_and_propagates():
    cfg = Sam3Config.released().with_image_size(672)
    assert cfg.image_size == 672 and cfg.detector.vit.grid_size == 48 and cfg.tracker.grid_size == 48
    assert cfg.detector.vit.pretrain_image_size == 336  # the pos-emb table is unchanged (tiled)
    for bad in (700, 0, -336, 672.0):
        with pytest.raises(ValueError, match="multiple of patch_size x window_size = 336"):
            Sam3Config.released().with_image_size(bad)
    assert Sam3Config.tiny(with_tracker=False).with_image_size(168).tracker is None


@pytest.mark.parametrize("seed", [0, 1])
def test_vision_at_168_matches_transformers(seed):
    cfg = Sam3Config.tiny().with_image_size(168)
    ours = randomize_(VisionEncoder(cfg.detector.vit, cfg.detector.neck), seed, std=0.05).eval()
    hf_cfg = transformers.Sam3VisionConfig(**cfg.to_hf_dict()["detector_config"]["vision_config"])
    hf = transformers.Sam3VisionModel(hf_cfg).eval()
    hf.load_state_dict(ours.state_dict(), strict=True)
    pixels = torch.rand(2, 3, 168, 168, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with torch.inference_mode():
        a = ours.features_from_trunk(ours.backbone(pixels))
        b = hf(pixels)
    diffs = [(x - y).abs().max().item() for x, y in zip(a.fpn, b.fpn_hidden_states)]
    print(f"\n168 px seed={seed}: neck level max abs diffs {', '.join(f'{d:.1e}' for d in diffs)}")
    assert [tuple(f.shape[-2:]) for f in a.fpn] == [(48, 48), (24, 24), (12, 12)]
    assert max(diffs) <= TOL


def test_load_at_another_size_runs_the_pipeline(tiny_checkpoint):
    import sam3kit

    model = sam3kit.load(tiny_checkpoint, image_size=168)
    assert model.config.image_size == 168
    pred = sam3kit.ImagePredictor(model)
    pred.set_image(np.random.default_rng(1).integers(0, 256, (80, 100, 3), dtype=np.uint8))
    found = pred.segment(text="a dog", threshold=0.0)
    obj = pred.predict(points=[[50, 40]], multimask=False)
    assert found.masks.shape[1:] == (80, 100) and obj.masks.shape == (1, 80, 100)
    assert obj.low_res_logits.shape[-1] == 4 * 12
