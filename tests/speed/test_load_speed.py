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


def test_load_applies_the_cpu_set_on_the_cpu_unless_told_not_to(tiny_checkpoint):
    import pytest

    import sam3kit
    from sam3kit.errors import InputError
    from sam3kit.speed import SpeedOptions, has_cpu_kernels

    assert has_cpu_kernels(sam3kit.load(tiny_checkpoint))
    assert has_cpu_kernels(sam3kit.load(tiny_checkpoint, fast="none"))
    assert not has_cpu_kernels(sam3kit.load(tiny_checkpoint, fast=SpeedOptions(cpu_kernels=False)))
    assert SpeedOptions.parse(None) == SpeedOptions() and SpeedOptions.parse("INT8") == SpeedOptions(int8=True)
    assert SpeedOptions().cpu_kernels_on("cpu") and not SpeedOptions().cpu_kernels_on("cuda")
    assert SpeedOptions(cpu_kernels=True).cpu_kernels_on("cuda")
    for bad in ("int4", 8):
        with pytest.raises(InputError, match="unknown fast mode"):
            sam3kit.load(tiny_checkpoint, fast=bad)
