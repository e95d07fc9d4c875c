"""Write a model in either released layout: Hugging Face (``config.json`` + ``model.safetensors``) or official
(``sam3.pt``). Files are written atomically (a temporary name, then a rename)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from ..config import Sam3Config
from ..errors import CheckpointError
from . import keymap
from .values import official_rope_table

_IMAGE_WIDE_GAUSSIAN = "tracker_model.shared_image_embedding.positional_embedding"
"""May be the very tensor of ``prompt_encoder.shared_embedding`` (a tracker that was built rather than loaded, or
loaded from the official layout's one matrix); safetensors refuses tensors that share memory, so it is copied."""


def hf_state_dict(state: dict[str, Tensor], cfg: Sam3Config) -> dict[str, Tensor]:
    """Our state dict under the names of a Hugging Face ``model.safetensors`` (``facebook/sam3`` layout)."""
    out = {keymap.hf_file_key(k): v for k, v in state.items()}
    if _IMAGE_WIDE_GAUSSIAN in out:
        out[_IMAGE_WIDE_GAUSSIAN] = out[_IMAGE_WIDE_GAUSSIAN].clone()
    if cfg.tracker is None:  # transformers Sam3Model.save_pretrained has no prefix
        out = {k[len("detector_model."):]: v for k, v in out.items()}
    return out


def official_state_dict(state: dict[str, Tensor], cfg: Sam3Config) -> dict[str, Tensor]:
    """Our state dict in the official ``sam3.pt`` layout (fused q/k/v, cls slot, RoPE tables, point projections).

    The cls slot of the ViT position table and the detector's point projections are not used by SAM 3 inference
    and do not exist in the Hugging Face layout; they are written as zeros.

    Raises CheckpointError for a detector-only model, and when the tracker's two Gaussian matrices differ (a
    checkpoint transformers saved from a freshly initialised model): the official layout holds one matrix, so
    writing either copy would change the model's outputs. Such a model is written in the Hugging Face layout.
    """
    if cfg.tracker is None:
        raise CheckpointError("the official layout holds detector and tracker; this model is detector-only")
    rules = keymap.official_rules(cfg)
    fused: dict[str, list[Optional[Tensor]]] = {}
    out: dict[str, Tensor] = {}
    written_from: dict[str, str] = {}  # official key -> our first key written there
    for k, v in state.items():
        ok, fix = keymap.official_key(rules, k)
        if fix is None and ok in out:  # two of ours in one official tensor: they must be equal
            if v.device.type != "meta" and not torch.equal(v, out[ok]):
                raise CheckpointError(
                    f"{k} differs from {written_from[ok]}; the official sam3.pt layout holds one tensor for both ({ok}). "
                    "Write this model in the Hugging Face layout (.safetensors or a folder) instead")
        elif fix is None:
            out[ok] = v
            written_from[ok] = k
        elif fix.kind == "chunk":
            fused.setdefault(ok, [None] * fix.parts)[fix.index] = v
        elif fix.kind == "pos_embed":
            out[ok] = torch.cat([torch.zeros_like(v[:, :1]), v], dim=1)
        elif fix.kind == "transpose":
            out[ok] = v.t().contiguous()
        elif fix.kind == "row":
            for r in range(v.shape[0]):
                out[ok.format(row=r)] = v[r:r + 1].clone()
    for ok, parts in fused.items():
        out[ok] = torch.cat(parts, dim=0)
    for i in range(cfg.detector.vit.num_layers):
        out[f"detector.backbone.vision_backbone.trunk.blocks.{i}.attn.freqs_cis"] = official_rope_table(cfg, i)
    d = cfg.detector.d_model
    ref = next(iter(state.values()))
    zeros = lambda *s: torch.zeros(*s, dtype=ref.dtype)  # noqa: E731
    out["detector.geometry_encoder.points_direct_project.weight"] = zeros(d, 2)
    out["detector.geometry_encoder.points_direct_project.bias"] = zeros(d)
    out["detector.geometry_encoder.points_pool_project.weight"] = zeros(d, d)
    out["detector.geometry_encoder.points_pool_project.bias"] = zeros(d)
    out["detector.geometry_encoder.points_pos_enc_project.weight"] = zeros(d, d)
    out["detector.geometry_encoder.points_pos_enc_project.bias"] = zeros(d)
    return out


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_hf(state: dict[str, Tensor], cfg: Sam3Config, directory: Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory``; returns the weights path."""
    from safetensors.torch import save_file

    directory = Path(directory)
    sd = {k: v.contiguous() for k, v in hf_state_dict(state, cfg).items()}
    _atomic(directory / "model.safetensors", lambda p: save_file(sd, p, metadata={"format": "pt"}))
    _atomic(directory / "config.json", lambda p: Path(p).write_text(json.dumps(cfg.to_hf_dict(), indent=2)))
    return directory / "model.safetensors"


def save_official(state: dict[str, Tensor], cfg: Sam3Config, path: Path, *, with_config: bool = True) -> Path:
    """Write an official-layout ``sam3.pt`` (and ``config.json`` beside it unless ``with_config`` is False)."""
    path = Path(path)
    sd = official_state_dict(state, cfg)
    _atomic(path, lambda p: torch.save(sd, p))
    if with_config:
        _atomic(path.parent / "config.json", lambda p: Path(p).write_text(json.dumps(cfg.to_hf_dict(), indent=2)))
    return path
