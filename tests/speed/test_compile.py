"""``torch.compile`` takes the plain model whole: the image encode, a text + box prompt and a click each trace as one
graph with no graph break (``torch._dynamo.explain``, which traces without compiling), so a compiled model runs no
Python between its kernels. The CPU speed set is not meant for compiling (``SpeedOptions(cpu_kernels=False)``)."""

from __future__ import annotations

import pytest
import torch

from fixtures.weights import randomize_
from sam3kit.config import Sam3Config
from sam3kit.model.sam3 import Sam3Model
from sam3kit.pipelines.text import trim_padding


@pytest.fixture(scope="module")
def model():
    return randomize_(Sam3Model(Sam3Config.tiny()), 0).eval().requires_grad_(False)


def _explain(fn):
    torch._dynamo.reset()
    with torch.inference_mode():
        return torch._dynamo.explain(fn)()


def test_encode_text_prompt_and_click_trace_without_graph_breaks(model):
    s = model.config.image_size
    px = torch.rand(1, 3, s, s) * 2 - 1
    L = model.config.detector.text.context_length
    ids = torch.randint(1, 1000, (1, L), generator=torch.Generator().manual_seed(0))
    cut = trim_padding(ids, torch.arange(L)[None] >= 6)
    box = torch.tensor([[[0.45, 0.55, 0.3, 0.25]]])
    det = model.detector_model
    with torch.inference_mode():
        feats = model.encode_image(px, detector=True, tracker=True)

    def prompt():
        return det.forward_prompts(feats.detector, det.encode_text(*cut), box, masks=True, semantic=True)

    def click():
        return model.tracker_model.predict(feats.tracker, torch.tensor([[[40.0, 60.0]]]),
                                           torch.ones(1, 1, dtype=torch.long))

    for name, fn in (("encode", lambda: model.encode_image(px, detector=True, tracker=True)), ("prompt", prompt),
                     ("click", click)):
        ex = _explain(fn)
        reasons = [f"{b.reason.splitlines()[0]} at {b.user_stack[-1] if b.user_stack else '?'}"
                   for b in ex.break_reasons]
        assert ex.graph_break_count == 0 and ex.graph_count == 1, (name, reasons)
