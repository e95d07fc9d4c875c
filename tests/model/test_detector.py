"""Detector heads against transformers' Sam3Model (tiny config, same random weights, fp32).

Both sides get the same image features (transformers' vision encoder run on random pixels) and the same
projected text features, so the comparison covers geometry encoder, DETR encoder/decoder, scoring and the
segmentation head. Where the official model differs from transformers the reference is adapted:
  - text-only prompts: the official model always appends the geometry CLS token; transformers skips the
     geometry encoder without boxes, so its forward is re-assembled from its sub-modules with the geometry
     encoder always run (``_hf_forward_official``), and a test checks that transformers as shipped differs;
  - the presence logit is not clamped (transformers clamps to +-10): comparisons keep |presence| < 10, and a
     test checks the unclamped value.
transformers needs torchvision's roi_align, absent here: the literal reference of tests/fixtures/roi_align_reference.py
stands in for it.

The text + boxes, box-only and batch tests are device-parametrised (``tests/fixtures/devices.py``): both models run
on the CPU, and again on the device under test (CUDA when there is one, TF32 off) at the same tolerance.
"""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace

import pytest
import torch

from fixtures.devices import to_device
from fixtures.hf_keys import collapsed_patterns, released_patterns
from fixtures.roi_align_reference import roi_align_reference
from fixtures.weights import randomize_
from sam3kit.config import DetectorConfig, Sam3Config
from sam3kit.errors import InputError
from sam3kit.model.detector import Detector
from sam3kit.model.features import DetectorImageFeatures, TextFeatures
from sam3kit.model.position import sine_position_2d

transformers = pytest.importorskip("transformers")
# (``from transformers.models.sam3 import modeling_sam3`` yields a dummy object without torchvision)
import transformers.models.sam3.modeling_sam3 as hf_sam3  # noqa: E402

TOL = 1e-4
OWNED = ("text_projection", "geometry_encoder", "detr_encoder", "detr_decoder", "mask_decoder",
         "dot_product_scoring")



@pytest.fixture(scope="module")
def models():
    cfg = Sam3Config.tiny()
    ours = Detector(cfg.detector).eval()
    hf = transformers.Sam3Model(transformers.Sam3Config(**cfg.to_hf_dict()["detector_config"])).eval()
    return cfg.detector, ours, hf


def _roi_align_on_host(input, boxes, *args, **kwargs):
    """The CPU reference for inputs on any device (it computes in numpy), the result back on the input's device."""
    boxes = boxes.cpu() if isinstance(boxes, torch.Tensor) else [b.cpu() for b in boxes]
    return roi_align_reference(input.cpu(), boxes, *args, **kwargs).to(input.device)


@pytest.fixture(autouse=True)
def hf_roi_align(monkeypatch):
    monkeypatch.setattr(hf_sam3, "torchvision", SimpleNamespace(ops=SimpleNamespace(roi_align=_roi_align_on_host)),
                        raising=False)


def _on(test_device, ours, hf, *inputs):
    """The models (copies) and the inputs on the test's device; unchanged on the CPU."""
    dev = test_device.torch_device
    if dev.type == "cpu":
        return (ours, hf, *inputs)
    return (copy.deepcopy(ours).to(dev), copy.deepcopy(hf).to(dev), *to_device(inputs, dev))


HEADS = ("geometry_encoder", "detr_encoder", "detr_decoder", "mask_decoder", "dot_product_scoring", "text_projection")


def _randomize(models, seed: int):
    """Random weights in ours, copied into transformers (CLIP's attention output is ``out_proj`` there).

    The heads and the neck get larger weights than ``randomize_``'s default, and the score projections and the
    last mask-embedder layer are scaled up, so that every output is O(1..10) (class logits up to the clamp
    region, boxes moved by the refinement, mask logits of a few units) and the comparison is not trivial.
    """
    cfg, ours, hf = models
    randomize_(ours, seed)
    randomize_(ours.vision_encoder.neck, seed, std=0.04)
    for name in HEADS:
        randomize_(getattr(ours, name), seed, std=0.05)
    with torch.no_grad():
        ours.dot_product_scoring.text_proj.weight.mul_(6)
        ours.dot_product_scoring.query_proj.weight.mul_(6)
        ours.mask_decoder.mask_embedder.layers[2].weight.mul_(4)
    sd = {re.sub(r"(text_encoder\..*self_attn)\.o_proj", r"\1.out_proj", k): v for k, v in ours.state_dict().items()}
    hf.load_state_dict(sd, strict=True)
    return cfg, ours, hf


def _inputs(cfg: DetectorConfig, hf, seed: int, bsz: int, valid_tokens: list[int]):
    """Image features of ``bsz`` random images and projected text features with the given valid lengths."""
    gen = torch.Generator().manual_seed(1000 + seed)
    size = cfg.vit.image_size
    pixels = torch.rand(bsz, 3, size, size, generator=gen) * 2 - 1
    length = cfg.text.context_length
    ids = torch.randint(1, cfg.text.vocab_size, (len(valid_tokens), length), generator=gen)
    valid = torch.arange(length)[None] < torch.tensor(valid_tokens)[:, None]
    with torch.no_grad():
        vo = hf.vision_encoder(pixels)
        text = hf.get_text_features(input_ids=ids, attention_mask=valid.long()).pooler_output
    g, d = cfg.vit.grid_size, cfg.d_model
    image = DetectorImageFeatures(fpn=list(vo.fpn_hidden_states[:3]), pos=sine_position_2d(g, g, d))
    return vo, image, TextFeatures(features=text, padding_mask=~valid), ids


def _boxes(seed: int, bsz: int, nb: int):
    gen = torch.Generator().manual_seed(2000 + seed)
    centre = torch.rand(bsz, nb, 2, generator=gen) * 0.8 + 0.1
    size = torch.rand(bsz, nb, 2, generator=gen) * 0.5 + 0.05
    return torch.cat([centre, size], dim=-1)


def _hf_outputs(out):
    return {"logits": out.pred_logits, "presence": out.presence_logits.reshape(-1), "boxes": out.pred_boxes,
            "masks": out.pred_masks, "semantic": out.semantic_seg}


def _our_outputs(out):
    return {"logits": out.logits, "presence": out.presence_logit, "boxes": out.boxes, "masks": out.mask_logits,
            "semantic": out.semantic_logits}


def _compare(name: str, ours: dict, ref: dict) -> dict:
    diffs = {k: (ours[k] - ref[k]).abs().max().item() for k in ref}
    scale = {k: ref[k].abs().max().item() for k in ref}
    print(f"\n{name}: " + ", ".join(f"{k} {diffs[k]:.2e} (|ref| {scale[k]:.1f})" for k in diffs))
    assert ref["presence"].abs().max().item() < 10, "transformers clamps the presence logit at 10"
    for k, v in diffs.items():
        assert v <= TOL, (name, k, v)
    return diffs


def _hf_forward_official(hf, vo, text: torch.Tensor, valid: torch.Tensor, boxes, labels, box_valid):
    """transformers' Sam3Model.forward re-assembled from its sub-modules, running the geometry encoder even
    without boxes (official semantics; transformers skips the geometry encoder)."""
    fpn, fpos = vo.fpn_hidden_states[:-1], vo.fpn_position_encoding[:-1]
    geo = hf.geometry_encoder(box_embeddings=boxes, box_mask=box_valid, box_labels=labels, img_feats=fpn,
                              img_pos_embeds=fpos)
    prompt = torch.cat([text, geo.last_hidden_state], dim=1)
    prompt_valid = torch.cat([valid, geo.attention_mask], dim=1)
    enc = hf.detr_encoder(vision_features=[fpn[-1]], text_features=prompt, vision_pos_embeds=[fpos[-1]],
                          text_mask=prompt_valid)
    dec = hf.detr_decoder(vision_features=enc.last_hidden_state, text_features=enc.text_features,
                          vision_pos_encoding=enc.pos_embeds_flattened, text_mask=prompt_valid,
                          spatial_shapes=enc.spatial_shapes)
    last = dec.intermediate_hidden_states[-1]
    cxcywh = (hf_sam3.inverse_sigmoid(dec.reference_boxes[-1]) + hf.detr_decoder.box_head(last)).sigmoid()
    logits = hf.dot_product_scoring(dec.intermediate_hidden_states, enc.text_features, prompt_valid)[-1, ..., 0]
    seg = hf.mask_decoder(decoder_queries=last, backbone_features=list(fpn),
                          encoder_hidden_states=enc.last_hidden_state, prompt_features=prompt,
                          prompt_mask=prompt_valid)
    return {"logits": logits, "presence": dec.presence_logits[-1].reshape(-1),
            "boxes": hf_sam3.box_cxcywh_to_xyxy(cxcywh), "masks": seg.pred_masks, "semantic": seg.semantic_seg}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_text_and_mixed_boxes(models, seed, test_device):
    cfg, ours, hf = _randomize(models, seed)
    vo, image, text, _ = _inputs(cfg, hf, seed, 1, [5])
    boxes, labels = _boxes(seed, 1, 3), torch.tensor([[1, 0, 1]])
    ours, hf, vo, image, text, boxes, labels = _on(test_device, ours, hf, vo, image, text, boxes, labels)
    with torch.no_grad():
        out = ours.forward_prompts(image, text, boxes, labels)
        ref = hf(vision_embeds=vo, text_embeds=SimpleNamespace(pooler_output=text.features),
                 attention_mask=(~text.padding_mask).long(), input_boxes=boxes, input_boxes_labels=labels)
    _compare(f"text+boxes on {test_device.name} seed={seed}", _our_outputs(out), _hf_outputs(ref))


@pytest.mark.parametrize("seed", [0, 1])
def test_box_only(models, seed, test_device):
    """No text prompt: the text is the placeholder "visual" (3 valid tokens: start, word, end)."""
    cfg, ours, hf = _randomize(models, seed)
    vo, image, text, _ = _inputs(cfg, hf, seed, 1, [3])
    boxes = _boxes(seed + 10, 1, 1)
    ours, hf, vo, image, text, boxes = _on(test_device, ours, hf, vo, image, text, boxes)
    with torch.no_grad():
        out = ours.forward_prompts(image, text, boxes)
        ref = hf(vision_embeds=vo, text_embeds=SimpleNamespace(pooler_output=text.features),
                 attention_mask=(~text.padding_mask).long(), input_boxes=boxes)
    _compare(f"box only on {test_device.name} seed={seed}", _our_outputs(out), _hf_outputs(ref))


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_with_box_padding(models, seed, test_device):
    cfg, ours, hf = _randomize(models, seed)
    vo, image, text, _ = _inputs(cfg, hf, seed, 2, [4, 7])
    boxes = _boxes(seed, 2, 3)
    labels = torch.tensor([[1, 0, 1], [0, 1, 1]])
    padding = torch.tensor([[False, False, False], [False, True, True]])
    ours, hf, vo, image, text, boxes, labels, padding = _on(test_device, ours, hf, vo, image, text, boxes, labels,
                                                            padding)
    with torch.no_grad():
        out = ours.forward_prompts(image, text, boxes, labels, padding)
        ref = hf(vision_embeds=vo, text_embeds=SimpleNamespace(pooler_output=text.features),
                 attention_mask=(~text.padding_mask).long(), input_boxes=boxes,
                 input_boxes_labels=labels.masked_fill(padding, -10))  # -10 = padding in transformers
    _compare(f"batch of 2, padded boxes on {test_device.name} seed={seed}", _our_outputs(out), _hf_outputs(ref))


@pytest.mark.parametrize("seed", [0, 1])
def test_text_only_keeps_the_geometry_cls_token(models, seed):
    cfg, ours, hf = _randomize(models, seed)
    vo, image, text, _ = _inputs(cfg, hf, seed, 2, [6, 3])
    valid = ~text.padding_mask
    with torch.no_grad():
        out = _our_outputs(ours.forward_prompts(image, text))
        official = _hf_forward_official(hf, vo, text.features, valid, torch.zeros(2, 0, 4),
                                        torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, 0, dtype=torch.bool))
        shipped = _hf_outputs(hf(vision_embeds=vo, text_embeds=SimpleNamespace(pooler_output=text.features),
                                 attention_mask=valid.long()))
    _compare(f"text only (official CLS) seed={seed}", out, official)
    # transformers as shipped omits the CLS token, which changes every output
    gap = {k: (out[k] - shipped[k]).abs().max().item() for k in ("logits", "masks")}
    print(f"text only, transformers as shipped differs by {gap}")
    assert min(gap.values()) > 1e-3, gap


def test_one_image_shared_by_several_prompts(models):
    cfg, ours, hf = _randomize(models, 3)
    vo, image, text, _ = _inputs(cfg, hf, 3, 1, [4, 6])
    boxes = _boxes(3, 2, 2)
    labels = torch.tensor([[1, 1], [1, 0]])
    vo2 = SimpleNamespace(fpn_hidden_states=[f.expand(2, -1, -1, -1) for f in vo.fpn_hidden_states],
                          fpn_position_encoding=[p.expand(2, -1, -1, -1) for p in vo.fpn_position_encoding],
                          hidden_states=None, attentions=None)
    with torch.no_grad():
        out = ours.forward_prompts(image, text, boxes, labels)
        ref = hf(vision_embeds=vo2, text_embeds=SimpleNamespace(pooler_output=text.features),
                 attention_mask=(~text.padding_mask).long(), input_boxes=boxes, input_boxes_labels=labels)
    _compare("1 image x 2 prompts", _our_outputs(out), _hf_outputs(ref))


def test_presence_logit_is_not_clamped(models):
    """transformers clamps the presence logit to +-10, the official model does not."""
    cfg, ours, hf = _randomize(models, 4)
    with torch.no_grad():
        ours.detr_decoder.presence_head.layer3.bias.fill_(40.0)
        hf.detr_decoder.presence_head.layer3.bias.fill_(40.0)
    vo, image, text, _ = _inputs(cfg, hf, 4, 1, [5])
    with torch.no_grad():
        out = ours.forward_prompts(image, text, masks=False, semantic=False)
        ref = _hf_forward_official(hf, vo, text.features, ~text.padding_mask, torch.zeros(1, 0, 4),
                                   torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0, dtype=torch.bool))
    assert ref["presence"].item() == 10.0
    assert out.presence_logit.item() > 20.0


def test_skipping_masks(models):
    cfg, ours, hf = _randomize(models, 5)
    _, image, text, _ = _inputs(cfg, hf, 5, 1, [5])
    boxes = _boxes(5, 1, 2)
    with torch.no_grad():
        full = ours.forward_prompts(image, text, boxes)
        none = ours.forward_prompts(image, text, boxes, masks=False, semantic=False)
        sem = ours.forward_prompts(image, text, boxes, masks=False)
    assert none.mask_logits is None and none.semantic_logits is None
    assert sem.mask_logits is None and torch.equal(sem.semantic_logits, full.semantic_logits)
    for name in ("logits", "presence_logit", "boxes", "queries"):
        assert torch.equal(getattr(none, name), getattr(full, name))
    g = cfg.vit.grid_size
    assert full.mask_logits.shape == (1, cfg.decoder.num_queries, 4 * g, 4 * g)
    assert full.semantic_logits.shape == (1, 1, 4 * g, 4 * g)


def _cut(ids, padding_mask):
    """The columns up to the last valid token of the batch (what the pipeline encodes)."""
    n = int((~padding_mask).any(0).nonzero().max()) + 1
    return ids[:, :n], padding_mask[:, :n]


def test_encode_text_matches_transformers(models):
    cfg, ours, hf = _randomize(models, 6)
    _, _, text, ids = _inputs(cfg, hf, 6, 1, [5, 9])
    with torch.no_grad():
        full = ours.encode_text(ids, text.padding_mask)
        got = ours.encode_text(*_cut(ids, text.padding_mask))
    valid = ~text.padding_mask
    diff = (full.features[valid] - text.features[valid]).abs().max().item()
    print(f"\nencode_text (valid tokens): max|diff| = {diff:.2e}")
    assert diff <= TOL and torch.equal(full.padding_mask, text.padding_mask)
    assert full.features.shape[1] == ids.shape[1]  # every position it is given
    # cut after the last valid token of the batch (9 of the two prompts): the same states there
    n = 9
    assert got.features.shape[1] == n and torch.equal(got.padding_mask, text.padding_mask[:, :n])
    assert (got.features - full.features[:, :n]).abs().max().item() <= TOL


def test_trimmed_text_gives_the_same_detections(models):
    """Padding after the last valid token is neither seen by the causal text encoder nor read downstream."""
    cfg, ours, hf = _randomize(models, 7)
    _, image, text, ids = _inputs(cfg, hf, 7, 2, [3, 6])
    boxes = _boxes(7, 2, 2)
    with torch.no_grad():
        full = ours.encode_text(ids, text.padding_mask)
        trimmed = ours.encode_text(*_cut(ids, text.padding_mask))
        a = ours.forward_prompts(image, full, boxes)
        b = ours.forward_prompts(image, trimmed, boxes)
    assert trimmed.features.shape[1] < full.features.shape[1]
    for name in ("logits", "presence_logit", "boxes", "mask_logits", "semantic_logits"):
        assert (getattr(a, name) - getattr(b, name)).abs().max().item() <= TOL, name


def test_batch_mismatch_is_an_input_error(models):
    cfg, ours, hf = _randomize(models, 0)
    _, image, text, _ = _inputs(cfg, hf, 0, 2, [4, 5])
    with pytest.raises(InputError, match="batch sizes"):
        ours.forward_prompts(image, text, _boxes(0, 3, 1))
    with pytest.raises(InputError, match="box_labels"):
        ours.forward_prompts(image, text, _boxes(0, 2, 2), torch.ones(2, 3, dtype=torch.long))


def test_released_key_names_and_shapes():
    with torch.device("meta"):
        det = Detector(DetectorConfig())
    ours = collapsed_patterns({k: v for k, v in det.state_dict().items() if k.startswith(OWNED)})
    expected = {k: v for k, v in released_patterns("detector_model.").items() if k.startswith(OWNED)}
    assert ours == expected


def test_precomputed_image_terms_give_the_same_outputs(models):
    """``with_image_terms`` moves the prompt-independent work out of the prompt: the first DETR-encoder
    self-attention and the image part of the pixel decoder (the prompt part then runs at the coarse resolution).
    The same outputs up to rounding, for one image shared by two prompts and for one image per prompt."""
    cfg, ours, hf = _randomize(models, 8)
    g = cfg.vit.grid_size
    for n_images in (1, 2):
        _, image, text, _ = _inputs(cfg, hf, 8, n_images, [4, 6])
        boxes = _boxes(8, 2, 2)
        with torch.no_grad():
            prepared = ours.with_image_terms(image)
            a = ours.forward_prompts(image, text, boxes)
            b = ours.forward_prompts(prepared, text, boxes)
        assert image.seg_terms is None and image.encoder_start is None
        assert ours.with_image_terms(prepared) is prepared
        assert tuple(prepared.encoder_start.shape) == (n_images, g * g, cfg.d_model)
        assert [tuple(t.shape[-2:]) for t in prepared.seg_terms] == [(2 * g, 2 * g), (4 * g, 4 * g)]
        for name in ("logits", "presence_logit", "boxes", "queries", "mask_logits", "semantic_logits"):
            assert (getattr(a, name) - getattr(b, name)).abs().max().item() <= TOL, name
        with torch.no_grad():
            no_masks = ours.with_image_terms(image, masks=False)
        assert no_masks.seg_terms is None and torch.equal(no_masks.encoder_start, prepared.encoder_start)


def test_detr_encoder_ffn_runs_in_row_blocks(models, monkeypatch):
    """Image tokens are the flattened (B, d, h, w) map: a transposed view when the map is stored channels-first
    (features from a file, from transformers), a contiguous one when channels-last (our necks). The encoder's
    residual stream must be contiguous at every FFN either way, or the row-blocked FFN of the CPU speed set
    (``sam3kit.speed.blocked_mlp``) silently falls back to ``x + mlp(x)`` (full-size hidden activations). With and
    without the cached encoder start, one image and two."""
    import copy
    from dataclasses import replace

    from sam3kit.speed import blocked_mlp
    from sam3kit.speed.cpu import apply_cpu_kernels

    cfg, ours, hf = _randomize(models, 3)
    fast = apply_cpu_kernels(copy.deepcopy(ours))
    seen = []
    add_mlp_into = blocked_mlp.add_mlp_into

    def spy(mlp, x, inp, **kw):
        if any(mlp is layer.mlp for layer in fast.detr_encoder.layers):
            seen.append(x.is_contiguous())
        return add_mlp_into(mlp, x, inp, **kw)

    monkeypatch.setattr(blocked_mlp, "add_mlp_into", spy)
    runs = 0
    for n_images in (1, 2):
        _, image, text, _ = _inputs(cfg, hf, 3, n_images, [4, 6])
        for layout in (torch.contiguous_format, torch.channels_last):
            image = replace(image, fpn=[t.contiguous(memory_format=layout) for t in image.fpn])
            with torch.inference_mode():
                for feats in (image, fast.with_image_terms(image)):
                    fast.forward_prompts(feats, text, _boxes(3, 2, 1))
                    runs += 1
    assert len(seen) == runs * len(fast.detr_encoder.layers) and all(seen), seen
