"""Module swaps that keep the parameters: a module becomes a variant of its class holding the very same tensors.

The speed features of this package work this way (as ``quantize_int8`` swaps Linear layers): the model code keeps
its one plain form, and a swapped module differs only in its methods, so the state-dict keys, the parameter
objects and the loading stay exactly as they were, and the swap can be undone (``swap_modules`` with the reverse
mapping).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from torch import nn


def rebuild(module: nn.Module, cls: type[nn.Module]) -> nn.Module:
    """A ``cls`` object holding ``module``'s own submodules, parameters, buffers and attributes (the same objects,
    not copies; only the containers are new, so that later swaps in one do not show in the other).

    ``cls`` is a subclass of ``type(module)`` that adds no parameters (a speed variant), or a base class of it (back
    to the plain form). ``module`` itself is left as it was.
    """
    if not (issubclass(cls, type(module)) or issubclass(type(module), cls)):
        raise TypeError(f"{cls.__name__} is neither a variant nor a base of {type(module).__name__}")
    new = cls.__new__(cls)
    new.__dict__.update({k: copy.copy(v) if isinstance(v, (dict, set)) else v for k, v in vars(module).items()})
    return new


def swap_modules(root: nn.Module, kinds: Mapping[type[nn.Module], type[nn.Module]]) -> int:
    """Replace, in place, every module under ``root`` whose exact class is a key of ``kinds`` by
    ``rebuild(module, kinds[type(module)])``; returns how many were replaced. ``root`` itself is not replaced."""
    count = 0
    for name, child in list(root.named_children()):
        target = kinds.get(type(child))
        if target is not None:
            child = rebuild(child, target)
            setattr(root, name, child)
            count += 1
        count += swap_modules(child, kinds)
    return count
