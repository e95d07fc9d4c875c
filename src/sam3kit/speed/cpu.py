"""The CPU speed set: kernel choices for torch's CPU kernels, swapped into a built model and out again.

``apply_cpu_kernels(model)`` replaces, in place, every ``Attention`` by a ``CpuAttention`` and the ViT and
DETR/geometry encoder layers by variants whose MLP step runs in row blocks written into the residual stream
(``blocked_mlp``). The swapped modules hold the very same parameters: the state-dict keys, the weights and the
outputs (up to rounding) are those of the plain model. ``remove_cpu_kernels(model)`` swaps the plain modules back.
``sam3kit.load`` applies the set when the model is on the CPU (``SpeedOptions(cpu_kernels=False)`` keeps the
plain model; ``torch.compile`` and exporters want the plain one).

Works with ``quantize_int8`` in either order: int8 layers take part in the blocked MLP step, and the folded
few-keys attention runs only while the projections are plain Linear layers.
"""

from __future__ import annotations

from torch import nn

from ..model.detr_encoder import EncoderLayer
from ..model.layers import Attention
from ..model.vit import ViTLayer
from .blocked_mlp import BlockedEncoderLayer, BlockedViTLayer
from .cpu_attention import CpuAttention
from .swap import rebuild, swap_modules

CPU_KINDS: dict[type[nn.Module], type[nn.Module]] = {
    Attention: CpuAttention,
    ViTLayer: BlockedViTLayer,
    EncoderLayer: BlockedEncoderLayer,
}
"""Plain module class -> its CPU variant."""
PLAIN_KINDS = {fast: plain for plain, fast in CPU_KINDS.items()}


def apply_cpu_kernels(model: nn.Module) -> nn.Module:
    """Swap the CPU variants into ``model`` in place (modules already swapped are left alone); returns ``model``,
    or a new object holding the same parameters when ``model`` itself is one of the swapped kinds."""
    swap_modules(model, CPU_KINDS)
    return rebuild(model, CPU_KINDS[type(model)]) if type(model) in CPU_KINDS else model


def remove_cpu_kernels(model: nn.Module) -> nn.Module:
    """Undo ``apply_cpu_kernels``: the plain modules back, in place (the same parameters); returns ``model``, or a
    new object when ``model`` itself is a CPU variant."""
    swap_modules(model, PLAIN_KINDS)
    return rebuild(model, PLAIN_KINDS[type(model)]) if type(model) in PLAIN_KINDS else model


def has_cpu_kernels(model: nn.Module) -> bool:
    """Whether any module of ``model`` is a CPU variant."""
    return any(type(m) in PLAIN_KINDS for m in model.modules())
