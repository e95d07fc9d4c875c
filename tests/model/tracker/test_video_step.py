"""The tracker's per-frame video pieces (``model/tracker/video_step.py``) vs transformers ``Sam3TrackerVideoModel``
with the same random weights, fp32, d = 128 so that every object pointer is split into two 64-channel tokens.

Where the semantics agree the tolerance is 1e-4: the pointers' temporal encoding, the memory-conditioned features
(memory selection off: transformers has none, §12 row 6 of the design notes' divergence table is the official
side), and the SAM heads of a video frame (clicks, box, tracking without points, a previous mask as prompt).
Named divergence: the mask-as-output path (transformers resizes the mask to the model input size first and runs
``mask_downsample`` there, the official code (ours) works at 16g); its size is printed and the official formula
is checked instead (the official golden files check it end to end).
"""

from __future__ import annotations

import pytest
import torch

from sam3kit.model.features import MemoryPrompt, TrackerImageFeatures
from sam3kit.model.position import sine_position_2d
from sam3kit.model.tracker.video_step import (NO_OBJECT_SCORE, condition_on_memory, mask_as_output,
                                              no_memory_features, non_overlapping, pointer_positions, sam_heads)
from sam3kit.pipelines.video.memory_bank import MemoryBank, MemoryPolicy, FrameMemory
from video_refs import D_SPLIT, build_video_tracker, hf_video_model, hw_b_c, max_diff

transformers = pytest.importorskip("transformers")
from transformers.models.sam3_tracker_video import modeling_sam3_tracker_video as hf_mod  # noqa: E402

SEEDS = (0, 1)
S, G, D, MEM = 112, 8, D_SPLIT, 64
TOL = 1e-4


@pytest.fixture(scope="module", params=SEEDS)
def pair(request):
    seed = request.param
    ours = build_video_tracker(seed)
    return seed, ours, hf_video_model(ours)


def _features(ours, seed, batch=1):
    gen = torch.Generator().manual_seed(500 + seed)
    fpn = [torch.randn(batch, D, 4 * G, 4 * G, generator=gen), torch.randn(batch, D, 2 * G, 2 * G, generator=gen),
           torch.randn(batch, D, G, G, generator=gen)]
    with torch.no_grad():
        return ours.image_features(fpn)


def test_pointer_temporal_encoding_matches_transformers(pair):
    _, ours, hf = pair
    offsets = [0, 1, 5, -3, 15, 7]
    with torch.no_grad():
        out = pointer_positions(ours, offsets, 16)
        ref = hf.temporal_positional_encoding_projection_layer(
            hf_mod.get_1d_sine_pe(torch.tensor(offsets, dtype=torch.float32) / 15.0, dim=D))
    assert out.shape == (len(offsets), MEM) and max_diff(out, ref) <= 1e-6


def _bank_and_session(ours, seed, frames, cond=(0,)):
    """The same stored outputs in our bank and in a transformers session (one object)."""
    gen = torch.Generator().manual_seed(900 + seed)
    bank = MemoryBank(MemoryPolicy(memory_selection=False))
    sess = hf_mod.Sam3TrackerVideoInferenceSession(video_height=S, video_width=S, dtype=torch.float32)
    idx = sess.obj_id_to_idx(1)
    pos = ours.memory_encoder.position(G)[None]
    for f in frames:
        mm = (torch.randn(1, MEM, G, G, generator=gen) * 2).to(torch.bfloat16)
        ptr = torch.randn(1, D, generator=gen)
        m = FrameMemory(maskmem=mm, pointer=ptr, object_score=torch.ones(1, 1), iou=torch.ones(1), low_res=None,
                        score=1.0)
        is_cond = f in cond
        (bank.cond if is_cond else bank.non_cond)[f] = m
        sess.store_output(idx, f, output_value={"maskmem_features": hw_b_c(mm), "maskmem_pos_enc": hw_b_c(pos),
                                                "object_pointer": ptr, "object_score_logits": torch.ones(1, 1)},
                          is_conditioning_frame=is_cond)
    return bank, sess, idx


@pytest.mark.parametrize("t,reverse,frames,cond", [
    (1, False, [0], (0,)),                             # the first tracked frame: one prompted frame only
    (4, False, [0, 1, 2, 3], (0,)),                    # some memories, some pointers
    (12, False, list(range(12)), (0,)),                # 6 memories, 11 pointers
    (20, False, list(range(20)), (0, 5)),              # a second prompted frame; 15 pointers
    (3, True, list(range(3, 14)), (13,)),              # backwards
    (8, False, list(range(8)) + [15], (0, 15)),        # a prompted frame ahead: its memory, not its pointer
])
def test_condition_on_memory_matches_transformers(pair, t, reverse, frames, cond):
    seed, ours, hf = pair
    frames = [f for f in frames if f != t]
    bank, sess, idx = _bank_and_session(ours, seed, frames, cond)
    feats = _features(ours, seed)
    n_frames = 40
    choice = bank.choose(t, reverse, n_frames)
    with torch.no_grad():
        out = condition_on_memory(ours, feats.embed, bank.prompt(choice, torch.device("cpu")))
        img_pos = sine_position_2d(G, G, D)[None]
        ref = hf._prepare_memory_conditioned_features(
            inference_session=sess, frame_idx=t, obj_idx=idx, is_initial_conditioning_frame=False,
            current_vision_features=hw_b_c(feats.embed), current_vision_positional_embeddings=hw_b_c(img_pos),
            num_total_frames=n_frames, track_in_reverse_time=reverse)
    d = max_diff(out, ref)
    print(f"seed {seed} t={t} reverse={reverse}: {len(choice.spatial)} memories, {len(choice.pointers)} pointers; "
          f"max|diff| {d:.2e} (max|ref| {ref.abs().max():.2f})")
    assert out.shape == (1, D, G, G) and d <= TOL


def test_objects_share_the_first_self_attention(pair):
    """Features of batch 1 with memories of batch 2 = each object on its own (one image stream shared)."""
    seed, ours, _ = pair
    gen = torch.Generator().manual_seed(seed)
    feats = _features(ours, seed)
    mems = [(torch.randn(2, MEM, G, G, generator=gen)).to(torch.bfloat16) for _ in range(3)]
    ptrs = torch.randn(4, 2, D, generator=gen)
    prompt = MemoryPrompt(spatial=mems, spatial_tpos=[6, 1, 0], pointers=ptrs, pointer_offsets=[3, 1, 2, 3],
                          pointer_scale=16)
    with torch.no_grad():
        both = condition_on_memory(ours, feats.embed, prompt)
        one = [condition_on_memory(ours, feats.embed, MemoryPrompt(
            spatial=[m[i:i + 1] for m in mems], spatial_tpos=[6, 1, 0], pointers=ptrs[:, i:i + 1],
            pointer_offsets=[3, 1, 2, 3], pointer_scale=16)) for i in range(2)]
        expanded = condition_on_memory(ours, feats.embed.expand(2, -1, -1, -1), prompt)
    assert max_diff(both, torch.cat(one)) <= 1e-5 and max_diff(both, expanded) <= 1e-5


def _hf_heads(hf, pix, feats, points=None, labels=None, mask_input=None, multimask=True):
    hr = [f.contiguous() for f in feats.high_res]
    with torch.no_grad():
        o = hf._single_frame_forward(
            input_points=None if points is None else points[:, None], input_labels=None if labels is None
            else labels[:, None].int(), input_masks=mask_input, image_embeddings=hr + [pix], multimask_output=multimask)
    return o


@pytest.mark.parametrize("case", ["one_click", "clicks", "box_and_click", "tracking", "mask_prompt"])
def test_sam_heads_match_transformers(pair, case):
    seed, ours, hf = pair
    feats = _features(ours, seed)
    gen = torch.Generator().manual_seed(77 + seed)
    pix = no_memory_features(ours, feats.embed) if case != "tracking" else torch.randn(1, D, G, G, generator=gen)
    points = labels = mask = None
    if case == "one_click":
        points, labels = torch.rand(1, 1, 2, generator=gen) * S, torch.ones(1, 1, dtype=torch.long)
    elif case == "clicks":
        points, labels = torch.rand(1, 3, 2, generator=gen) * S, torch.tensor([[1, 0, 1]])
    elif case == "box_and_click":
        points = torch.cat([torch.tensor([[[20.0, 30.0], [80.0, 90.0]]]), torch.rand(1, 1, 2, generator=gen) * S], 1)
        labels = torch.tensor([[2, 3, 1]])
    elif case == "mask_prompt":
        points, labels = torch.rand(1, 1, 2, generator=gen) * S, torch.ones(1, 1, dtype=torch.long)
        mask = torch.randn(1, 1, 4 * G, 4 * G, generator=gen) * 8
    multimask = points is None or points.shape[1] <= 1
    with torch.no_grad():
        out = sam_heads(ours, pix, feats, points, labels, mask, multimask=multimask)
    ref = _hf_heads(hf, pix, feats, points, labels, mask, multimask)
    diffs = dict(low=max_diff(out.low_res_masks, ref.pred_masks), high=max_diff(out.high_res_masks, ref.high_res_masks),
                 iou=max_diff(out.iou_scores, ref.iou_scores.flatten(0, 1)), ptr=max_diff(out.pointer,
                                                                                        ref.object_pointer),
                 obj=max_diff(out.object_score_logit, ref.object_score_logits))
    print(f"seed {seed} {case}: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    assert out.low_res_masks.shape == (1, 1, 4 * G, 4 * G) and out.high_res_masks.shape == (1, 1, S, S)
    assert all(v <= TOL for v in diffs.values())


def test_absent_object_masks_and_pointer(pair):
    """Where the object score is <= 0 every low-resolution logit is NO_OBJECT_SCORE and the pointer is
    ``no_object_pointer`` (official ``_forward_sam_heads``)."""
    seed, ours, _ = pair
    feats = _features(ours, seed)
    with torch.no_grad():
        ours.mask_decoder.pred_obj_score_head.proj_out.bias.sub_(1000.0)
        try:
            out = sam_heads(ours, no_memory_features(ours, feats.embed), feats, multimask=True)
        finally:
            ours.mask_decoder.pred_obj_score_head.proj_out.bias.add_(1000.0)
    assert (out.object_score_logit <= 0).all()
    assert torch.all(out.low_res_multimasks == NO_OBJECT_SCORE)
    assert torch.allclose(out.high_res_masks, torch.full_like(out.high_res_masks, NO_OBJECT_SCORE))
    assert torch.equal(out.pointer, ours.no_object_pointer.detach())


def test_mask_as_output_official_formula(pair):
    """Logits ``mask * 20 - 10`` at 16g and antialiased to ``16g // 14 * 4``; IoU 1; object score +-10 by whether
    the mask has a pixel; the pointer of the SAM heads on ``mask_downsample(mask)`` without points (no memory, no
    no-memory embedding) or ``no_object_pointer`` for an empty mask. transformers resizes the mask to the model
    input size first (a named divergence; its effect on the pointer is printed)."""
    seed, ours, hf = pair
    feats = _features(ours, seed)
    gen = torch.Generator().manual_seed(seed)
    mask = (torch.rand(2, 1, 16 * G, 16 * G, generator=gen) > 0.6).float()
    mask[1] = 0
    with torch.no_grad():
        out = mask_as_output(ours, feats, mask)
        heads = sam_heads(ours, feats.embed.expand(2, -1, -1, -1), feats, mask_input=ours.mask_downsample(mask),
                          multimask=False)
        ref_hf = hf._use_mask_as_output(feats.embed, [f.contiguous() for f in feats.high_res], mask[:1])
    assert torch.equal(out.high_res_masks, mask * 20 - 10)
    assert out.low_res_masks.shape == (2, 1, 16 * G // 14 * 4, 16 * G // 14 * 4)
    assert torch.equal(out.object_score_logit, torch.tensor([[10.0], [-10.0]]))
    assert torch.equal(out.iou_scores, torch.ones(2, 1))
    assert torch.equal(out.pointer[0], heads.pointer[0])
    assert torch.equal(out.pointer[1], ours.no_object_pointer[0].detach())
    print(f"seed {seed} mask as output: pointer vs transformers (mask resized to {S} first): "
          f"max|diff| {max_diff(out.pointer[:1], ref_hf.object_pointer):.2e}")


def test_non_overlapping():
    x = torch.tensor([[[[1.0, -2.0, 5.0]]], [[[3.0, -1.0, 4.0]]], [[[0.5, -3.0, -20.0]]]])
    y = non_overlapping(x)
    assert torch.equal(y[:, 0, 0], torch.tensor([[-10.0, -10.0, 5.0], [3.0, -1.0, -10.0], [-10.0, -10.0, -20.0]]))
    assert torch.equal(non_overlapping(x[:1]), x[:1])


def test_features_dataclass_untouched_by_video_step(pair):
    """The video pieces never write into the frame's features (a session shares them between objects)."""
    seed, ours, _ = pair
    feats = _features(ours, seed)
    copy = TrackerImageFeatures(feats.embed.clone(), [f.clone() for f in feats.high_res], feats.dense_pe.clone())
    with torch.no_grad():
        sam_heads(ours, no_memory_features(ours, feats.embed), feats, multimask=True)
        mask_as_output(ours, feats, torch.ones(1, 1, 16 * G, 16 * G))
        ours.encode_memory(feats.embed, torch.randn(3, 1, S, S), torch.tensor([[1.0], [-1.0], [2.0]]))
    assert torch.equal(copy.embed, feats.embed) and all(torch.equal(a, b) for a, b in zip(copy.high_res,
                                                                                           feats.high_res))
