"""Loading builds the model on the meta device without random initialisation (which would import torch._dynamo,
about 2 s per load, and compute nothing)."""

from __future__ import annotations

import subprocess
import sys

import torch

from sam3kit.config import Sam3Config
from sam3kit.model.sam3 import Sam3Model
from sam3kit.weights.loader import _SkipInit


def test_meta_build_skips_init_but_keeps_shapes():
    with _SkipInit(), torch.device("meta"):
        m = Sam3Model(Sam3Config.tiny())
    ref = Sam3Model(Sam3Config.tiny())
    shapes = {k: v.shape for k, v in m.state_dict().items()}
    assert shapes == {k: v.shape for k, v in ref.state_dict().items()}
    assert all(v.is_meta for v in m.state_dict().values())


def test_load_does_not_import_dynamo(tiny_checkpoint):
    code = ("import sys, sam3kit; m = sam3kit.load(sys.argv[1]); "
            "print('torch._dynamo' in sys.modules, m.config.image_size)")
    out = subprocess.run([sys.executable, "-c", code, str(tiny_checkpoint)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "112"]
