"""All cases of ``cases.pt``, family after family, and their descriptions for ``meta.json``.

Every family runs on the same official model and one ``Sam3Processor``, in the order a, b, c, d (+ e), f: the
order of the entries in ``cases.pt`` and ``meta.json``. A new family is a module with ``FAMILIES`` (its letter ->
description and fields) and ``run(model, proc, imgs, cases)``, added to ``FAMILY_MODULES`` and called in
``run_cases``.
"""
from __future__ import annotations

import torch

from sam3.model.sam3_image_processor import Sam3Processor

from . import backbone, detector, interactive, postprocess, text
from .builder import T
from .inputs import make_images

FAMILY_MODULES = (backbone, text, detector, postprocess, interactive)
CASE_DOCS = {k: v for m in FAMILY_MODULES for k, v in m.FAMILIES.items()}
assert list(CASE_DOCS) == ["a", "b", "c", "d", "e", "f"]


@torch.inference_mode()
def run_cases(model):
    """Inputs and official outputs of every case (plain tensors, lists, floats, bools and strings)."""
    cases = {}
    imgs = make_images()
    proc = Sam3Processor(model, resolution=T["image_size"], device="cpu", confidence_threshold=0.5)
    backbone.run(model, proc, imgs, cases)     # a, b
    text.run(model, proc, imgs, cases)         # c
    detector.run(model, proc, imgs, cases)     # d, and e through postprocess
    interactive.run(model, proc, imgs, cases)  # f
    return cases
