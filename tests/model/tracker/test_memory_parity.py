"""Memory attention and memory encoder vs transformers ``Sam3TrackerVideoModel`` (same random weights, fp32).

transformers resizes the mask *logits* to 16g before the sigmoid / binarisation; the official code (ours) transforms
at full resolution first and resizes afterwards. The module-level comparison therefore feeds a mask
that is already 16g x 16g, where both agree; ``encode_memory``'s order is checked against an explicit official-order
computation.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sam3kit.model.tracker.memory_encoder import mask_for_memory
from tracker_refs import (
    build_tracker, hf_tracker_state, hf_video_tracker_config, max_diff,
)

transformers = pytest.importorskip("transformers")

SEEDS = (0, 1, 2)
S, G, D, MEM = 112, 8, 64, 64
TOL = 1e-4


@pytest.fixture(scope="module", params=SEEDS)
def pair(request):
    seed = request.param
    ours = build_tracker(seed)
    hf = transformers.Sam3TrackerVideoModel(hf_video_tracker_config(), remove_vision_encoder=True).eval()
    hf.load_state_dict(hf_tracker_state(ours), strict=True)  # every key matches by construction
    return seed, ours, hf


def _smooth_logits(gen, b, size, amp=6.0):
    return F.interpolate(torch.randn(b, 1, 5, 5, generator=gen) * amp, size=(size, size), mode="bilinear",
                         align_corners=False)


@pytest.mark.parametrize("frames,pointers", [(1, 0), (2, 8), (3, 16)])
def test_memory_attention_matches_transformers(pair, frames, pointers):
    seed, ours, hf = pair
    gen = torch.Generator().manual_seed(100 * seed + frames)
    b = 2
    feats = torch.randn(b, D, G, G, generator=gen)
    pos = torch.randn(b, D, G, G, generator=gen)
    n = frames * G * G + pointers
    memory = torch.randn(b, n, MEM, generator=gen)
    memory_pos = torch.randn(b, n, MEM, generator=gen)
    with torch.no_grad():
        out = ours.memory_attention(feats, memory, memory_pos, pos=pos, num_pointer_tokens=pointers)
        ref = hf.memory_attention(current_vision_features=feats.flatten(2).permute(2, 0, 1),
                                  memory=memory.transpose(0, 1),
                                  current_vision_position_embeddings=pos.flatten(2).permute(2, 0, 1),
                                  memory_posision_embeddings=memory_pos.transpose(0, 1),
                                  num_object_pointer_tokens=pointers)
    ref = ref.reshape(b, G * G, D).transpose(1, 2).reshape(b, D, G, G)  # (1, B, HW, d) -> (B, d, g, g)
    d = max_diff(out, ref)
    print(f"seed {seed} memory attention, {frames} frames + {pointers} pointer tokens: max|diff| {d:.2e} "
          f"(max|ref| {ref.abs().max():.2f}, change vs input {max_diff(out, feats):.2f})")
    assert out.shape == feats.shape and d <= TOL


def test_memory_attention_rope_skips_pointer_tokens(pair):
    """Pointer tokens carry no RoPE: permuting them (with their positions) leaves the output unchanged, while
    permuting spatial memory tokens does change it."""
    seed, ours, _ = pair
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(1, D, G, G, generator=gen)
    memory = torch.randn(1, G * G + 4, MEM, generator=gen)
    memory_pos = torch.randn(1, G * G + 4, MEM, generator=gen)
    perm_ptr = torch.cat([torch.arange(G * G), G * G + torch.tensor([2, 0, 3, 1])])
    perm_sp = torch.cat([torch.randperm(G * G, generator=gen), G * G + torch.arange(4)])
    with torch.no_grad():
        base = ours.memory_attention(feats, memory, memory_pos, num_pointer_tokens=4)
        p = ours.memory_attention(feats, memory[:, perm_ptr], memory_pos[:, perm_ptr], num_pointer_tokens=4)
        s = ours.memory_attention(feats, memory[:, perm_sp], memory_pos[:, perm_sp], num_pointer_tokens=4)
    assert max_diff(base, p) <= 1e-5
    assert max_diff(base, s) > 1e-3


def test_memory_encoder_matches_transformers(pair):
    seed, ours, hf = pair
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(2, D, G, G, generator=gen)
    mask = mask_for_memory(_smooth_logits(gen, 2, 16 * G))  # already at the encoder input size
    with torch.no_grad():
        out = ours.memory_encoder(feats, mask)
        ref, ref_pos = hf.memory_encoder(feats, mask)
    pos = ours.memory_encoder.position(G)
    d, dp = max_diff(out, ref), max_diff(pos[None].expand_as(ref_pos), ref_pos)
    print(f"seed {seed} memory encoder: max|diff| {d:.2e} (max|ref| {ref.abs().max():.2f}), position {dp:.2e}")
    assert out.shape == (2, MEM, G, G) and d <= TOL and dp <= 1e-6


@pytest.mark.parametrize("binarize", [False, True])
def test_encode_memory_official_order(pair, binarize):
    """encode_memory = transform at full resolution, then antialiased resize to 16g, then the encoder, plus the
    occlusion embedding where the object score is <= 0. The transformers order (resize logits first) differs for
    binarised masks."""
    seed, ours, hf = pair
    gen = torch.Generator().manual_seed(seed + 7)
    feats = torch.randn(2, D, G, G, generator=gen)
    logits = _smooth_logits(gen, 2, S)
    score = torch.tensor([[2.0], [-1.0]])
    big = (16 * G, 16 * G)
    with torch.no_grad():
        mem, pos = ours.encode_memory(feats, logits, score, binarize=binarize)
        m_off = F.interpolate(mask_for_memory(logits, binarize=binarize), size=big, mode="bilinear",
                              align_corners=False, antialias=True)
        ref, _ = hf.memory_encoder(feats, m_off)
        occluded = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)  # score <= 0 for the second object
        ref = ref + occluded * hf.occlusion_spatial_embedding_parameter.view(1, -1, 1, 1)
        m_hf = mask_for_memory(F.interpolate(logits, size=big, mode="bilinear", align_corners=False, antialias=True),
                               binarize=binarize)
        ref_hf_order, _ = hf.memory_encoder(feats, m_hf)
    d = max_diff(mem, ref)
    d_order = max_diff(mem[:1], ref_hf_order[:1])
    print(f"seed {seed} encode_memory binarize={binarize}: max|diff| vs official order {d:.2e}; "
          f"vs transformers order {d_order:.2e}")
    assert d <= TOL and pos.shape == (1, MEM, G, G)
    if binarize:
        assert d_order > 1e-2  # the order matters for click-derived (binarised) masks


def test_object_pointer(pair):
    seed, ours, hf = pair
    tok = torch.randn(2, D, generator=torch.Generator().manual_seed(seed))
    score = torch.tensor([[0.5], [-0.5]])
    with torch.no_grad():
        ptr = ours.object_pointer(tok, score)
        ref = hf.object_pointer_proj(tok[:1])
    assert max_diff(ptr[:1], ref) <= 1e-6
    assert torch.equal(ptr[1], hf.no_object_pointer[0].detach())
