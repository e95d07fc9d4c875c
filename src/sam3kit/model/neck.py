"""SimpleFPN neck: one ViT map -> multi-scale maps. SAM 3 has two: the detector's and the tracker's.

Level k rescales the (B, C, g, g) trunk output by ``scale_factors[k]`` then projects to ``d`` channels with a 1x1
and a 3x3 convolution (both with bias, no norm):

====  =====  ==========================================  ===============
k     scale  ``scale_layers``                            output
====  =====  ==========================================  ===============
0     4x     ConvT(C, C/2, 2, 2), GELU, ConvT(C/2, C/4)  (B, d, 4g, 4g)
1     2x     ConvT(C, C/2, 2, 2)                         (B, d, 2g, 2g)
2     1x     (none)                                      (B, d, g, g)
3     1/2x   MaxPool(2, 2)                               (B, d, g/2, g/2)
====  =====  ==========================================  ===============

Level 3 is in the checkpoint but SAM 3 never uses it, so it is only computed when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..config import NeckConfig
from ..errors import CheckpointError, InputError


class FPNLayer(nn.Module):
    """One neck level: rescale (``scale_layers``) then ``proj1`` (1x1) and ``proj2`` (3x3)."""

    def __init__(self, in_dim: int, out_dim: int, scale: float) -> None:
        super().__init__()
        self.scale_layers = nn.ModuleList()
        if scale == 4.0:
            self.scale_layers.extend([nn.ConvTranspose2d(in_dim, in_dim // 2, kernel_size=2, stride=2), nn.GELU(),
                                      nn.ConvTranspose2d(in_dim // 2, in_dim // 4, kernel_size=2, stride=2)])
            mid = in_dim // 4
        elif scale == 2.0:
            self.scale_layers.append(nn.ConvTranspose2d(in_dim, in_dim // 2, kernel_size=2, stride=2))
            mid = in_dim // 2
        elif scale == 1.0:
            mid = in_dim
        elif scale == 0.5:
            self.scale_layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            mid = in_dim
        else:
            raise CheckpointError(f"unsupported FPN scale factor {scale}; expected one of 4, 2, 1, 0.5 (check the "
                                  "configuration)")
        self.proj1 = nn.Conv2d(mid, out_dim, kernel_size=1)
        self.proj2 = nn.Conv2d(out_dim, out_dim, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, g, g) -> (B, d, s*g, s*g)."""
        for layer in self.scale_layers:
            x = layer(x)
        return self.proj2(self.proj1(x))


class FPNNeck(nn.Module):
    """The multi-scale neck. ``fpn_layers[k]`` follows ``cfg.scale_factors[k]``.

    Args:
        in_dim: channels of the trunk output (1024 at release).
        cfg: neck configuration (``hidden_size`` = d, 256 at release).
    """

    def __init__(self, in_dim: int, cfg: NeckConfig) -> None:
        super().__init__()
        self.fpn_layers = nn.ModuleList(FPNLayer(in_dim, cfg.hidden_size, s) for s in cfg.scale_factors)

    def forward(self, x: Tensor, levels: Sequence[int] = (0, 1, 2)) -> list[Tensor]:
        """Compute only the requested levels.

        Args:
            x: (B, C, g, g) trunk output.
            levels: indices into ``scale_factors``; SAM 3 uses (0, 1, 2) = 4g, 2g, g.
        Returns:
            one (B, d, s*g, s*g) map per requested level, in the order of ``levels``.
        """
        n = len(self.fpn_layers)
        for k in levels:
            if not 0 <= k < n:
                raise InputError(f"FPN level {k} does not exist; this neck has levels 0..{n - 1}")
        return [self.fpn_layers[k](x) for k in levels]
