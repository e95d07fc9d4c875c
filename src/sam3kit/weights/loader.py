"""Strict checkpoint loading: build on the meta device, map every tensor, refuse anything partial.

Every parameter of the model must be filled and every tensor of the file must be used or skipped for a named
reason (``keymap.OFFICIAL_SKIPPED``); otherwise one ``CheckpointError`` lists all missing and unexpected keys and
every shape mismatch as ``expected [..], got [..]``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Optional, Union

import torch
from torch import Tensor

from ..config import Sam3Config
from ..errors import CheckpointError
from ..model.rope import axial_rope
from ..model.sam3 import Sam3Model
from . import keymap
from .reader import CheckpointFiles, TensorSource, locate

log = logging.getLogger(__name__)

_LIST_LIMIT = 20


def detect_layout(keys: list[str]) -> str:
    """"official" (sam3.pt), "hf" (facebook/sam3 model.safetensors) or "hf_detector" (Sam3Model.save_pretrained)."""
    if any(k.startswith(("detector.", "tracker.")) for k in keys):
        return "official"
    if any(k.startswith("detector_model.") for k in keys):
        return "hf"
    if any(k.startswith(("vision_encoder.backbone.", "detr_decoder.")) for k in keys):
        return "hf_detector"
    sample = sorted(keys)[:5]
    raise CheckpointError(
        f"this is not a SAM 3 checkpoint: none of its {len(keys)} tensors has a SAM 3 name "
        f"(e.g. 'detector_model.*' or 'detector.*'); first keys: {sample}")


def read_config(files: CheckpointFiles, layout: str, override: Optional[Sam3Config]) -> Sam3Config:
    if override is not None:
        return override
    if files.config is not None:
        try:
            d = json.loads(files.config.read_text())
        except ValueError as e:
            raise CheckpointError(f"{files.config} is not valid JSON: {e}") from e
        return Sam3Config.from_hf_dict(d)
    cfg = Sam3Config.released()
    return cfg.replace(tracker=None) if layout == "hf_detector" else cfg


def load_model(source: Union[str, Path], *, device: Union[str, torch.device] = "cpu",
               dtype: torch.dtype = torch.float32, config: Optional[Sam3Config] = None,
               image_size: Optional[int] = None) -> Sam3Model:
    """Load a local checkpoint (directory, ``.safetensors`` or ``.pt``) strictly into a ready ``Sam3Model``.

    ``image_size`` runs the model at another input resolution (``Sam3Config.with_image_size``); the checkpoint is
    checked against its own configuration.
    """
    files = locate(Path(source))
    src = TensorSource(files)
    layout = detect_layout(src.keys())
    cfg = read_config(files, layout, config)
    if layout == "official" and cfg.tracker is None:
        raise CheckpointError("an official sam3.pt holds the tracker too; its config cannot be detector-only")
    run_cfg = cfg.with_image_size(image_size) if image_size is not None else cfg
    with _meta_modules_skip_reset(), _SkipInit(), torch.device("meta"):
        model = Sam3Model(run_cfg)
    modules = dict(model.named_modules())
    expected = _state_shapes(modules)
    state = (_map_official if layout == "official" else _map_hf)(src, expected, cfg, layout)
    target = torch.device(device)
    state = {k: _convert(v, dtype, target) for k, v in state.items()}
    _assign(modules, state, expected)
    leftovers = [f"{path}.{name}".lstrip(".") for path, m in modules.items()
                 for name, t in list(m._parameters.items()) + list(m._buffers.items()) if t is not None and t.is_meta]
    if leftovers:  # internal invariant: every tensor is either loaded or computed
        raise AssertionError(f"tensors left on the meta device after loading: {leftovers[:5]}")
    model.eval()  # parameters were made with requires_grad=False by _assign
    log.info("loaded %s (%s layout, %d tensors) on %s as %s", source, layout, len(state), target, dtype)
    return model


def _state_shapes(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Size]:
    """The names and shapes of ``state_dict()`` (parameters and persistent buffers), from one walk over the
    modules; none of sam3kit's modules changes what it saves."""
    out: dict[str, torch.Size] = {}
    for path, m in modules.items():
        prefix = f"{path}." if path else ""
        for name, t in m._parameters.items():
            if t is not None:
                out[prefix + name] = t.shape
        for name, t in m._buffers.items():
            if t is not None and name not in m._non_persistent_buffers_set:
                out[prefix + name] = t.shape
    return out


def _assign(modules: dict[str, torch.nn.Module], state: dict[str, Tensor], expected: dict[str, torch.Size]) -> None:
    """Put every tensor in place, as ``load_state_dict(strict=True, assign=True)`` would, without its per-module
    hooks and checks: the mappers above have already matched names and shapes one to one. ``modules``:
    ``dict(model.named_modules())``."""
    if state.keys() != expected.keys():  # internal invariant
        raise AssertionError(f"mapped keys differ from the model's: {sorted(set(state) ^ set(expected))[:5]}")
    for key, t in state.items():
        path, _, leaf = key.rpartition(".")
        module = modules[path]
        if leaf in module._parameters:
            module._parameters[leaf] = torch.nn.Parameter(t, requires_grad=False)
        elif leaf in module._buffers:
            module._buffers[leaf] = t
        else:
            raise AssertionError(f"{key} is neither a parameter nor a buffer of the model")


_RESET_CLASSES = (torch.nn.Linear, torch.nn.modules.conv._ConvNd, torch.nn.Embedding, torch.nn.LayerNorm,
                  torch.nn.GroupNorm)  # the classes that define reset_parameters (convolutions: their base)


@contextlib.contextmanager
def _meta_modules_skip_reset():
    """While the model is built on the meta device, torch's layers skip ``reset_parameters`` (random init through
    ``torch.nn.init``, half of the build time). The patched method still initialises layers whose weights are
    real tensors, so a layer built meanwhile by another thread is unaffected."""
    originals = {cls: cls.__dict__["reset_parameters"] for cls in _RESET_CLASSES}

    def make(original):
        def reset_parameters(self):
            weight = getattr(self, "weight", None)
            if weight is None or not weight.is_meta:
                original(self)
        return reset_parameters

    try:
        for cls, original in originals.items():
            cls.reset_parameters = make(original)
        yield
    finally:
        for cls, original in originals.items():
            cls.reset_parameters = original


class _SkipInit(torch.overrides.TorchFunctionMode):
    """Skip the random initialisation of parameters being built on the meta device: it computes nothing there,
    and ``normal_`` / ``randn`` on meta tensors import ``torch._dynamo``, a slow import that loading does not
    need. Use only together with ``torch.device("meta")`` (random factories return empty tensors). This covers
    sam3kit's own modules (the prompt encoder's random Fourier matrix); ``_meta_modules_skip_reset`` keeps torch's
    layers from even calling their initialisers, each of which would otherwise pass through this mode."""

    _FACTORIES = {torch.randn, torch.rand}

    _INIT = {torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.zero_, torch.Tensor.fill_,
             torch.nn.init.normal_, torch.nn.init.uniform_, torch.nn.init.trunc_normal_,
             torch.nn.init.kaiming_uniform_, torch.nn.init.xavier_uniform_, torch.nn.init.zeros_, torch.nn.init.ones_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._FACTORIES:
            return torch.empty(*args, **{k: v for k, v in kwargs.items() if k != "generator"})
        if func in self._INIT:
            t = args[0] if args else kwargs.get("tensor")
            if isinstance(t, Tensor) and t.is_meta:
                return t
        return func(*args, **kwargs)


def _convert(t: Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Cast and move only when needed: a memory-mapped tensor that already has the right dtype and device stays a
    zero-copy view of the file, so loading reads nothing and pages come in when the model first uses them.

    (safetensors places tensors at 8-byte-aligned offsets; kernels may take other code paths on such data, so
    the last bit of a result can depend on the file a weight came from, as with transformers' own loading.)
    """
    if t.is_floating_point() and t.dtype != dtype:
        t = t.to(dtype)
    return t.to(device).contiguous()


def _report(missing: list[str], unexpected: list[str], mismatched: list[str], what: str) -> None:
    if not (missing or unexpected or mismatched):
        return
    parts = [f"the checkpoint does not match the {what} model:"]
    for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
        if items:
            shown = "\n    ".join(items[:_LIST_LIMIT])
            more = f"\n    ... and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
            parts.append(f"  {len(items)} {title}:\n    {shown}{more}")
    parts.append("Is this the right checkpoint and config.json for SAM 3? Nothing was loaded.")
    raise CheckpointError("\n".join(parts))


def _shape_error(key: str, expected, got) -> str:
    return f"tensor {key!r} has wrong shape: got {list(got)}, expected {list(expected)}"


def _map_hf(src: TensorSource, expected: dict[str, torch.Size], cfg: Sam3Config, layout: str) -> dict[str, Tensor]:
    prefix = "detector_model." if layout == "hf_detector" else ""
    canonical = {_canonical_hf_key(k): k for k in src.keys()}  # canonical name -> name in the file
    state: dict[str, Tensor] = {}
    used: set[str] = set()
    missing, mismatched = [], []
    for ours, shape in expected.items():
        fk = keymap.hf_file_key(ours)
        if prefix:
            fk = fk[len(prefix):] if fk.startswith(prefix) else fk
        if fk not in canonical:
            missing.append(fk)
            continue
        fk = canonical[fk]
        used.add(fk)
        if tuple(src.shape(fk)) != tuple(shape):
            mismatched.append(_shape_error(fk, shape, src.shape(fk)))
            continue
        state[ours] = src[fk]
    unexpected = [fk for fk in canonical.values() if fk not in used]
    if layout == "hf_detector" and cfg.tracker is not None:
        missing.append("(tracker) this is a detector-only checkpoint (transformers Sam3Model): load it with a "
                       "detector-only config")
    _report(missing, unexpected, mismatched, "SAM 3 (Hugging Face layout)")
    return state


def _canonical_hf_key(key: str) -> str:
    for alias, canonical in keymap.HF_PREFIX_ALIASES.items():
        if key.startswith(alias):
            return canonical + key[len(alias):]
    return key


def _map_official(src: TensorSource, expected: dict[str, torch.Size], cfg: Sam3Config, layout: str
                  ) -> dict[str, Tensor]:
    rules = keymap.official_rules(cfg)
    state: dict[str, Tensor] = {}
    used: set[str] = set()
    missing, mismatched = [], []
    for ours, shape in expected.items():
        ok, fix = keymap.official_key(rules, ours)
        if fix is not None and fix.kind == "row":
            keys = [ok.format(row=r) for r in range(shape[0])]
            if not all(k in src for k in keys):
                missing.extend(k for k in keys if k not in src)
                continue
            used.update(keys)
            rows = [src[k].reshape(-1) for k in keys]
            if any(r.numel() != shape[1] for r in rows):
                mismatched.append(_shape_error(keys[0], (1, shape[1]), src.shape(keys[0])))
                continue
            state[ours] = torch.stack(rows)
            continue
        if ok not in src:
            missing.append(ok)
            continue
        used.add(ok)
        t = keymap.extract(fix, src[ok], shape)
        if tuple(t.shape) != tuple(shape):
            mismatched.append(_shape_error(ok, _official_shape(fix, shape), src.shape(ok)))
            continue
        state[ours] = t
    unexpected = []
    for k in src.keys():
        if k in used:
            continue
        if any(re.match(p, k) for p in keymap.OFFICIAL_SKIPPED):
            continue
        unexpected.append(k)
    _report(missing, unexpected, mismatched, "SAM 3 (official sam3.pt layout)")
    _check_rope_tables(src, cfg)
    return state


def _official_shape(fix: Optional[keymap.Fix], shape: torch.Size) -> tuple[int, ...]:
    s = list(shape)
    if fix is None:
        return tuple(s)
    if fix.kind == "chunk":
        s[0] *= fix.parts
    elif fix.kind == "pos_embed":
        s[1] += 1
    elif fix.kind == "transpose":
        s = s[::-1]
    return tuple(s)


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


def _check_rope_tables(src: TensorSource, cfg: Sam3Config) -> None:
    """The stored RoPE tables must equal ours: a mismatch means another window/grid/theta than the config says."""
    for i in range(cfg.detector.vit.num_layers):
        k = f"detector.backbone.vision_backbone.trunk.blocks.{i}.attn.freqs_cis"
        if k not in src:
            continue
        stored = src[k]
        ours = official_rope_table(cfg, i)
        if stored.shape != ours.shape or not torch.allclose(stored.to(ours.dtype), ours, atol=1e-4):
            raise CheckpointError(
                f"{k}: the stored RoPE table does not match the configuration (window {cfg.detector.vit.window_size}, "
                f"global blocks {cfg.detector.vit.global_attn_indexes}); got shape {list(stored.shape)}, expected "
                f"{list(ours.shape)}. Is the config.json right for this checkpoint?")
