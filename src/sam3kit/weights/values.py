"""Checks of a checkpoint's values at load: every weight finite, the official RoPE tables equal to ours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ..config import Sam3Config
from ..errors import CheckpointError
from ..model.rope import axial_rope

_HALF = (torch.float16, torch.bfloat16)


def nonfinite_tensors(state: Mapping[str, Tensor]) -> list[str]:
    """The names of the floating (or complex) tensors of ``state`` holding a NaN or an infinity.

    One pass over the values: the sum of a tensor (accumulated in float32 for half-precision tensors) is NaN or
    infinite when any element is, so a finite sum clears the tensor; a non-finite sum (which large finite values
    can also give, by overflow) is confirmed element by element with ``torch.isfinite``. On a GPU the per-tensor
    results are gathered before the single device-to-host copy.
    """
    names, flags = [], []
    for name, t in state.items():
        if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
            continue
        s = t.sum(dtype=torch.float32) if t.dtype in _HALF else t.sum()
        names.append(name)
        flags.append(torch.isfinite(s))
    if not flags:
        return []
    ok = torch.stack(flags).cpu()
    suspects = [n for n, f in zip(names, ok.tolist()) if not f]
    return [n for n in suspects if not bool(torch.isfinite(state[n]).all())]


def check_finite(state: Mapping[str, Tensor], file_names: Mapping[str, Sequence[str]]) -> None:
    """Refuse a state holding NaN or infinite values: one ``CheckpointError`` naming the tensors under their
    names in the file (``file_names``: our name -> the file tensor(s) it came from)."""
    bad = nonfinite_tensors(state)
    if not bad:
        return
    names = list(dict.fromkeys(file_names[n][0] if n in file_names else n for n in bad))
    more = f" and {len(names) - 1} more tensors" if len(names) > 1 else ""
    raise CheckpointError(
        f"tensor {names[0]!r}{more} of the checkpoint {'hold' if more else 'holds'} NaN or infinite values: the "
        "file is damaged or was saved from a diverged model, and such a model only answers NaN. Download or export "
        "it again; nothing was loaded.", details=[f"non-finite: {n}" for n in names])


def official_rope_table(cfg: Sam3Config, block: int) -> Tensor:
    """The complex64 ``freqs_cis`` buffer the official ViT stores for ``block`` (recomputed)."""
    vit = cfg.detector.vit
    head_dim = vit.hidden_size // vit.num_heads
    if block in vit.global_attn_indexes:
        g = vit.grid_size
        cos, sin = axial_rope(head_dim, g, g, theta=vit.rope_theta, scale=vit.window_size / g)
    else:
        w = vit.window_size
        cos, sin = axial_rope(head_dim, w, w, theta=vit.rope_theta)
    return torch.complex(cos, sin)


def rope_key(block: int) -> str:
    return f"detector.backbone.vision_backbone.trunk.blocks.{block}.attn.freqs_cis"


def check_rope_tables(src, cfg: Sam3Config) -> None:
    """The RoPE tables an official checkpoint stores must equal ours (``src``: a ``reader.TensorSource``): another
    shape means another window or grid than the config says, other values another theta or scale."""
    vit = cfg.detector.vit
    for i in range(vit.num_layers):
        k = rope_key(i)
        if k not in src:
            continue
        ours = official_rope_table(cfg, i)
        where = (f"the configuration (window {vit.window_size}, grid {vit.grid_size}, global blocks "
                 f"{list(vit.global_attn_indexes)}, theta {vit.rope_theta:g})")
        if tuple(src.shape(k)) != tuple(ours.shape):
            raise CheckpointError(
                f"{k}: the stored RoPE table has shape {list(src.shape(k))}, but {where} gives {list(ours.shape)}. "
                "Is the config.json right for this checkpoint?")
        stored = src[k].to(ours.dtype)
        if not torch.allclose(stored, ours, atol=1e-4):
            diff = (stored - ours).abs().max().item()
            raise CheckpointError(
                f"{k}: the stored RoPE table has the expected shape {list(ours.shape)} but other values than "
                f"{where} gives (max difference {diff:.3g}). Is the config.json right for this checkpoint?")
