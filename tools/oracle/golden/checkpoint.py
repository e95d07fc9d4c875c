"""The tiny model's weights as a released ``sam3.pt``: layout conversion, the float16 copy that is saved, loading it
back the official way, and the key patterns compared with the full-size checkpoint's list."""
from __future__ import annotations

import re

import torch


def to_official_layout(sd):
    """Image-model state dict -> released sam3.pt layout (detector.* / tracker.*)."""
    out = {}
    for k, v in sd.items():
        if k.startswith("inst_interactive_predictor.model."):
            out["tracker." + k[len("inst_interactive_predictor.model."):]] = v
        else:
            out["detector." + k] = v
    return out


def collapse_key(k):
    return re.sub(r"\.\d+(?=\.|$)", ".{i}", k)


def compare_key_patterns(ck, reference_file):
    """Compare collapsed key patterns ({i} for numeric indices) against the full-size sam3.pt key list."""
    ref = set()
    with open(reference_file) as f:
        for line in f:
            if line.strip():
                ref.add(line.split("\t")[0])
    ours = {collapse_key(k) for k in ck}
    return sorted(ours - ref), sorted(ref - ours)


def checkpoint_for_saving(ck):
    """sam3.pt is stored in float16 to keep the golden files small: every floating tensor was rounded to a
    float16-representable value by randomise(), so the cast is lossless; complex RoPE tables stay complex64."""
    out = {}
    for k, v in ck.items():
        v = v.detach().clone().contiguous()
        if v.is_floating_point():
            assert torch.equal(v.half().float(), v), k
            v = v.half()
        out[k] = v
    return out


@torch.no_grad()
def load_official_checkpoint(model, path):
    """Load sam3.pt the way sam3.model_builder._load_checkpoint does for the image model (strict here)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    sd = {k.replace("detector.", "", 1): v for k, v in ckpt.items() if k.startswith("detector.")}
    sd.update({k.replace("tracker.", "inst_interactive_predictor.model.", 1): v for k, v in ckpt.items()
               if k.startswith("tracker.")})
    model.load_state_dict(sd, strict=True)  # copies (and casts float16 -> float32) into the float32 model
    return model
