"""The one way sam3kit counts a model's parameters: ``sam3kit info``, ``sam3kit convert`` and the loader agree.

The count is the number of values in the model's state dict under sam3kit's names (parameters and persistent
buffers, each name once), whatever the layout of the file they came from. So the official ``sam3.pt`` and its
Hugging Face conversion count the same: the fused q/k/v tensors count as their three parts, the cls slot of the
ViT position table, the stored RoPE tables and the detector's unused point projections do not count (the model
does not hold them), and the tracker's Gaussian matrix counts twice, as the model holds it twice (the prompt
coordinates' copy and the image-wide copy, two tensors in the Hugging Face layout, one in the official layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

import torch
from torch import Tensor, nn


def numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def parameter_count(state: Union[nn.Module, Mapping[str, Union[Tensor, Sequence[int]]]]) -> int:
    """Parameters of a model, a state dict (name -> tensor) or a table of shapes (name -> shape), counted as the
    module docstring says. Meta tensors count by their shapes."""
    if isinstance(state, nn.Module):
        state = state.state_dict()
    return sum(v.numel() if isinstance(v, Tensor) else numel(torch.Size(v)) for v in state.values())
