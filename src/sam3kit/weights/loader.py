"""Strict checkpoint loading: build on the meta device, map every tensor, refuse anything partial.

Every parameter of the model must be filled and every tensor of the file must be used or skipped for a named
reason (``keymap.OFFICIAL_SKIPPED``); otherwise one ``CheckpointError`` says so in one line and lists, in its
``details``, every missing and unexpected tensor and every shape mismatch as ``got [..], expected [..]``
(``matching.py``). The values are then checked (``values.py``): the official RoPE tables against the
configuration, every weight for NaN and infinities.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Optional, Union

import torch
from torch import Tensor

from ..config import Sam3Config
from ..errors import CheckpointError
from ..model.sam3 import Sam3Model
from . import keymap
from .counting import parameter_count
from .matching import KeyMatch, match_keys, mismatch_error
from .pages import release_mapped
from .reader import CheckpointFiles, TensorSource, locate
from .values import check_finite, check_rope_tables

log = logging.getLogger(__name__)


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


def config_origin(files: CheckpointFiles, override: Optional[Sam3Config]) -> str:
    """Where ``read_config`` takes the architecture from: "given", "file" (config.json) or "assumed" (released)."""
    return "given" if override is not None else "file" if files.config is not None else "assumed"


def expected_shapes(cfg: Sam3Config) -> dict[str, torch.Size]:
    """The names and shapes of the state dict of a ``Sam3Model(cfg)``, from a build on the meta device."""
    return _state_shapes(dict(_build_on_meta(cfg).named_modules()))


def _build_on_meta(cfg: Sam3Config) -> Sam3Model:
    with _meta_modules_skip_reset(), _SkipInit(), torch.device("meta"):
        return Sam3Model(cfg)


def load_model(source: Union[str, Path], *, device: Union[str, torch.device] = "cpu",
               dtype: torch.dtype = torch.float32, config: Optional[Sam3Config] = None,
               image_size: Optional[int] = None) -> Sam3Model:
    """Load a local checkpoint (directory, ``.safetensors`` or ``.pt``) strictly into a ready ``Sam3Model``.

    ``image_size`` runs the model at another input resolution (``Sam3Config.with_image_size``); the checkpoint is
    checked against its own configuration. Raises ``CheckpointError`` (one line, the tensors in ``details``)
    for tensors that are missing, unexpected or of the wrong shape, official RoPE tables of other values than
    the configuration gives, and weights holding NaN or infinite values.
    """
    files = locate(Path(source))
    src = TensorSource(files)
    layout = detect_layout(src.keys())
    cfg = read_config(files, layout, config)
    origin = config_origin(files, config)
    if origin == "assumed":
        log.info("no config.json beside %s: the released SAM 3 architecture is assumed", files.weights[0])
    if layout == "official" and cfg.tracker is None:
        raise CheckpointError("an official sam3.pt holds the tracker too; its config cannot be detector-only")
    run_cfg = cfg.with_image_size(image_size) if image_size is not None else cfg
    model = _build_on_meta(run_cfg)
    modules = dict(model.named_modules())
    expected = _state_shapes(modules)
    match = match_keys({k: src.shape(k) for k in src.keys()}, expected, cfg, layout)
    if not match.complete:
        where = str(files.weights[0]) if len(files.weights) == 1 else str(files.root)
        raise mismatch_error(match, where, origin, str(files.config) if files.config else None)
    if layout == "official":
        check_rope_tables(src, cfg)
    state = _read_state(src, match, expected)
    target = torch.device(device)
    state = {k: _convert(v, dtype, target) for k, v in state.items()}
    try:
        check_finite(state, {k: keys for k, (keys, _) in match.plan.items()})
    finally:
        if target.type == "cpu":  # the check read every page: give them back, so that loading stays lazy
            release_mapped(state.values())
    _assign(modules, state, expected)
    leftovers = [f"{path}.{name}".lstrip(".") for path, m in modules.items()
                 for name, t in list(m._parameters.items()) + list(m._buffers.items()) if t is not None and t.is_meta]
    if leftovers:  # internal invariant: every tensor is either loaded or computed
        raise AssertionError(f"tensors left on the meta device after loading: {leftovers[:5]}")
    model.eval()  # parameters were made with requires_grad=False by _assign
    log.info("loaded %s (%s layout, %d tensors, %s parameters) on %s as %s", source, layout, len(state),
             f"{parameter_count(state):,}", target, dtype)
    return model


def _read_state(src: TensorSource, match: KeyMatch, expected: dict[str, torch.Size]) -> dict[str, Tensor]:
    """Our tensors out of the file's, as ``match.plan`` says (views of the mapped file where possible)."""
    state: dict[str, Tensor] = {}
    for ours, (keys, fix) in match.plan.items():
        if fix is not None and fix.kind == "row":
            state[ours] = torch.stack([src[k].reshape(-1) for k in keys])
        else:
            state[ours] = keymap.extract(fix, src[keys[0]], expected[ours])
    return state


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
    zero-copy view of the file. Loading then reads each page once (the finite check) and gives it back
    (``pages.release_mapped``), so the pages stay out of the resident memory until the model first uses them.

    (safetensors places tensors at 8-byte-aligned offsets; kernels may take other code paths on such data, so
    the last bit of a result can depend on the file a weight came from, as with transformers' own loading.)
    """
    if t.is_floating_point() and t.dtype != dtype:
        t = t.to(dtype)
    return t.to(device).contiguous()
