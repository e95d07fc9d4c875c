"""``onnx.attention``: attention computed a block of queries at a time (the exported graphs' memory bound) against
the plain ``Attention``, the swap in and out of a model, and an export whose every long attention is split against
the shared (unsplit) export and the torch modules."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from sam3kit.errors import InputError
from sam3kit.model.layers import Attention
from sam3kit.onnx.attention import STATIC_QUERIES, ChunkedAttention, chunked_attention
from sam3kit.speed.swap import rebuild


def _counting(monkeypatch) -> list[int]:
    """Counts the plain ``Attention.attend`` calls (ChunkedAttention makes one per block)."""
    calls = []
    plain = Attention.attend

    def attend(self, q, k, v, mask):
        calls.append(q.shape[-2])
        return plain(self, q, k, v, mask)

    monkeypatch.setattr(Attention, "attend", attend)
    return calls


@pytest.mark.parametrize("masking", ["none", "bias per query", "key padding"])
def test_blocks_match_plain_attention(monkeypatch, masking):
    g = torch.Generator().manual_seed(0)
    att = Attention(32, 4).eval()
    x = torch.randn(2, 50, 32, generator=g)
    kwargs = {}
    if masking == "bias per query":
        kwargs["attn_bias"] = torch.randn(2, 4, 50, 50, generator=g)
    elif masking == "key padding":
        kwargs["key_padding_mask"] = torch.arange(50)[None].expand(2, -1) >= torch.tensor([[50], [37]])
    calls = _counting(monkeypatch)
    with torch.no_grad():
        want = att(x, x, x, **kwargs)
        chunked = rebuild(att, ChunkedAttention)
        chunked.max_scores = 4 * 50 * 13  # 4 blocks of 13 queries, the last of 11
        got = chunked(x, x, x, **kwargs)
    assert calls == [50, 13, 13, 13, 11]
    assert torch.allclose(got, want, atol=1e-6, rtol=0), float((got - want).abs().max())


def test_swap_in_and_out(plain_model):
    params = {n: p for n, p in plain_model.named_parameters()}
    kinds = {n: type(m) for n, m in plain_model.named_modules()}
    with chunked_attention(plain_model, 4096) as parts:
        assert len(parts) == len(STATIC_QUERIES)
        swapped = {n for n, m in plain_model.named_modules() if type(m) is ChunkedAttention}
        assert swapped and all(n.startswith(STATIC_QUERIES) for n in swapped)
        assert all(m.max_scores == 4096 for n, m in plain_model.named_modules() if n in swapped)
        # every other attention keeps its dynamic query axis (text, boxes, prompts) unsplit
        assert any(type(m) is Attention for n, m in plain_model.named_modules() if n.startswith("tracker_model"))
    assert {n: type(m) for n, m in plain_model.named_modules()} == kinds
    assert not any(hasattr(m, "max_scores") for m in plain_model.modules() if type(m) is Attention)
    assert all(p is params[n] for n, p in plain_model.named_parameters())
    for bad in (0, -3, 1.5, True):
        with pytest.raises(InputError, match="max_attention_scores"):
            with chunked_attention(plain_model, bad):
                pass


def test_split_export_matches(plain_model, export_dir, tmp_path):
    """At the tiny size nothing is split by default; a 4096-element bound splits the ViT's global attention and
    the DETR encoder's self-attention (2 heads x 64 x 64 scores) in two: the graphs give the same outputs."""
    import onnxruntime as ort

    from sam3kit.onnx import export_onnx
    from sam3kit.onnx.sessions import session_options

    out = tmp_path / "split"
    export_onnx(plain_model, out, max_attention_scores=4096)

    def softmaxes(path):
        return sum(n.op_type == "Softmax" for n in onnx.load(str(path)).graph.node)

    for name in ("vision_encoder", "detector"):
        assert softmaxes(out / f"{name}.onnx") > softmaxes(export_dir / f"{name}.onnx"), name
    for name in ("text_encoder", "prompt_encoder_mask_decoder"):
        assert softmaxes(out / f"{name}.onnx") == softmaxes(export_dir / f"{name}.onnx"), name

    so = session_options()
    rng = np.random.default_rng(0)

    def run(folder, name, feeds):
        s = ort.InferenceSession(str(folder / f"{name}.onnx"), so, providers=["CPUExecutionProvider"])
        return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))

    pixels = rng.uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32)
    a, b = run(out, "vision_encoder", {"pixel_values": pixels}), run(export_dir, "vision_encoder",
                                                                    {"pixel_values": pixels})
    for k in b:
        assert np.abs(a[k] - b[k]).max() <= 1e-5, k
    with torch.no_grad():  # and against the torch modules (as test_onnx_parity for the shared export)
        det = plain_model.detector_features(plain_model.image_trunk(torch.from_numpy(pixels)))
    for i, level in enumerate(det.fpn):
        assert np.abs(a[f"detector_embeddings.{i}"] - level.numpy()).max() <= 1e-4, i
    d = plain_model.config.detector.d_model
    feeds = {f"detector_embeddings.{i}": b[f"detector_embeddings.{i}"] for i in range(3)}
    feeds.update(text_features=rng.normal(size=(2, 5, d)).astype(np.float32),
                 text_padding_mask=np.array([[False] * 3 + [True] * 2, [False] * 5]),
                 input_boxes=np.tile(np.array([[[0.5, 0.5, 0.3, 0.2]]], np.float32), (2, 1, 1)),
                 input_box_labels=np.ones((2, 1), np.int64))
    a, b = run(out, "detector", feeds), run(export_dir, "detector", feeds)
    for k in b:
        assert np.abs(a[k] - b[k]).max() <= 1e-5, k
