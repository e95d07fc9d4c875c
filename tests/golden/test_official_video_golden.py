"""The golden files of the OFFICIAL video tracker (Meta's ``sam3==0.1.4`` ``Sam3TrackerPredictor``) are
self-consistent.

tests/golden/official_video/ (made by tools/oracle/make_golden_video.py; its README.md gives the format) holds a tiny
random-weight model in the released ``sam3.pt`` layout with a video-configured tracker, short synthetic clips, the
prompts and propagation calls of each case and what the official predictor returned and stored. These tests check the
files themselves: shapes and dtypes, object ids, frame orders against the official ordering rules, that the stored
video-size masks are the upsampled low-res logits, that the recorded memory plans add up to the memory tokens the
official memory attention received, and that the tracks are not trivial (masks neither empty nor full). The
comparison of sam3kit's video tracking against them lives with the video pipeline's tests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

GOLDEN = Path(__file__).parent / "official_video"
META = json.loads((GOLDEN / "meta.json").read_text())
CASE_NAMES = list(META["cases"])
S = META["tiny_config"]["image_size"]
GRID = META["tiny_config"]["grid"]
LOW = 4 * GRID
D = META["tiny_config"]["d"]
MEM = META["tiny_config"]["mem_dim"]
FLAGS = META["tracker_flags"]


@pytest.fixture(scope="module")
def golden():
    return torch.load(GOLDEN / "cases.pt", weights_only=True)


def _case(golden, name):
    return golden["cases"][name]


def unpack_masks(packed: torch.Tensor, size: int = S) -> torch.Tensor:
    """(..., size*size/8) uint8 -> (..., size, size) bool: row-major pixels, 8 per byte, the first pixel in the most
    significant bit (numpy.packbits order), as README.md describes."""
    bits = (packed[..., None] >> torch.arange(7, -1, -1, dtype=torch.uint8)) & 1
    return bits.reshape(*packed.shape[:-1], size, size).bool()


def _steps(case, op=None):
    return [s for s in case["steps"] if op is None or s["op"] == op]


def test_metadata_and_format(golden):
    assert META["reference"]["version"] == "sam3==0.1.4"
    assert golden["format"] == META["format"] == "sam3kit official video golden v1"
    assert list(golden["cases"]) == CASE_NAMES
    # the released video model's tracker flags, at tiny size
    assert FLAGS["use_memory_selection"] is True and FLAGS["num_maskmem"] == 7
    assert FLAGS["max_cond_frames_in_attn"] == 4 and FLAGS["max_obj_ptrs_in_encoder"] == 16
    assert MEM < D, "the pointer split (hidden / mem_dim tokens per pointer) must be exercised"


def test_checkpoint_is_the_one_recorded():
    data = (GOLDEN / "sam3.pt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == META["weights"]["sam3.pt"]["sha256"]
    ck = torch.load(GOLDEN / "sam3.pt", weights_only=True)
    assert len(ck) == META["weights"]["sam3.pt"]["entries"]
    assert all(k.startswith(("detector.", "tracker.")) for k in ck)
    assert all(v.dtype in (torch.float16, torch.complex64) for v in ck.values() if v.is_floating_point()
               or v.is_complex())
    assert ck["tracker.maskmem_backbone.out_proj.weight"].shape == (MEM, D, 1, 1)
    assert ck["tracker.obj_ptr_tpos_proj.weight"].shape == (MEM, D)
    for key in META["weights"]["biases_added_after_randomisation"]:
        assert key in ck
    cfg = json.loads((GOLDEN / "config.json").read_text())
    assert cfg["model_type"] == "sam3_video"
    assert cfg["tracker_config"]["memory_encoder_output_channels"] == MEM


def _expected_order(start, direction, max_frames, n, cond_frames):
    start = min(cond_frames) if start is None else start
    mx = n if max_frames is None else max_frames
    fwd = list(range(start, min(start + mx, n - 1) + 1))
    bwd = list(range(start, max(start - mx, 0) - 1, -1)) if start > 0 else [0]
    return {"forward": [(f, 0) for f in fwd], "backward": [(f, 0) for f in bwd],
            "both": [(f, 0) for f in fwd] + [(f, 1) for f in bwd]}[direction]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_inputs(golden, name):
    case = _case(golden, name)
    fr = case["frames"]
    assert fr.dtype == torch.uint8 and fr.shape == (case["num_frames"], S, S, 3)
    assert case["video_size"] == [S, S]
    assert fr.float().std() > 10, "frames must not be flat"
    for st in _steps(case):
        assert st["op"] in ("add_points", "add_mask", "propagate")
        if st["op"] == "add_points":
            assert 0 <= st["frame"] < case["num_frames"]
            assert "points" in st or "box" in st
            if "points" in st:
                p, lab = st["points"], st["labels"]
                assert p.dtype == torch.float32 and p.ndim == 2 and p.shape[1] == 2
                assert lab.dtype == torch.int32 and lab.shape == (p.shape[0],)
                assert set(lab.tolist()) <= {0, 1}
                assert ((p >= 0) & (p <= S)).all()
            if "box" in st:
                b = st["box"]
                assert b.shape == (4,) and b[0] < b[2] and b[1] < b[3]
        elif st["op"] == "add_mask":
            assert st["mask"].dtype == torch.bool and st["mask"].shape == (S, S)
            assert st["mask"].any() or name == "empty_mask_object"


@pytest.mark.parametrize("name", CASE_NAMES)
def test_frame_order_and_object_ids(golden, name):
    case = _case(golden, name)
    n = case["num_frames"]
    ids, cond = [], set()
    for st in _steps(case):
        if st["op"] != "propagate":
            if st["obj_id"] not in ids:
                ids.append(st["obj_id"])
            cond.add(st["frame"])
            assert st["returned_obj_ids"] == ids and st["returned_frame"] == st["frame"]
            continue
        got = [(y["frame"], y["pass_index"]) for y in st["yields"]]
        assert got == _expected_order(st["start"], st["direction"], st["max_frames"], n, cond)
        assert len(st["official_calls"]) == (2 if st["direction"] == "both" else 1)
        for y in st["yields"]:
            assert y["obj_ids"] == ids
            assert y["reverse"] == (st["direction"] == "backward" or y["pass_index"] == 1)
            prompt_frame = y["frame"] in cond
            assert (y["source"] == "consolidated_prompt_frame") == prompt_frame
            assert y["storage"] == ("cond" if prompt_frame else "non_cond")


@pytest.mark.parametrize("name", CASE_NAMES)
def test_shapes_and_dtypes(golden, name):
    case = _case(golden, name)
    assert case["maskmem_pos_enc"].shape == (1, MEM, GRID, GRID)
    for st in _steps(case):
        if st["op"] == "propagate":
            for y in st["yields"]:
                n = len(y["obj_ids"])
                assert y["low_res_logits"].shape == (n, 1, LOW, LOW) and y["low_res_logits"].dtype == torch.float32
                assert torch.isfinite(y["low_res_logits"]).all()
                assert y["object_score_logits"].shape == (n, 1)
                assert torch.equal(y["object_score_logits"], y["stored_object_score_logits"])
                assert y["obj_ptr"].shape == (n, D) and y["obj_ptr"].dtype == torch.float32
                assert y["video_res_masks_packed"].shape == (n, S * S // 8)
                assert y["video_res_masks_packed"].dtype == torch.uint8
                assert y["maskmem_shape"] == [n, MEM, GRID, GRID] and y["maskmem_dtype"] == "bfloat16"
                # as the official state stores it: (N, 1) for a consolidated prompt frame, (N,) for a tracked one
                assert y["iou_score"].shape == ((n, 1) if y["storage"] == "cond" else (n,))
                if "maskmem_features" in y:
                    assert y["maskmem_features"].dtype == torch.bfloat16
                    assert list(y["maskmem_features"].shape) == y["maskmem_shape"]
                assert ("eff_iou_score" in y) == (y["storage"] == "non_cond")
        else:
            n = len(st["returned_obj_ids"])
            assert st["video_res_masks_packed"].shape == (n, S * S // 8)
            assert [o["obj_id"] for o in st["objects"]] == st["returned_obj_ids"]
            assert st["obj_ptr"].shape == (1, D) and st["object_score_logits"].shape == (1, 1)
            assert st["iou_score"].shape == (1,)
            if st["op"] == "add_points":
                assert st["low_res_logits"].shape == (1, 1, LOW, LOW)
                assert st["prompt_point_coords"].shape[0] == st["prompt_point_labels"].shape[0] <= 16


def _masks_match(logits, masks):
    """bool masks == logits > 0, except where the recomputed logit is within 1e-4 of 0 (threads may move the last
    bits of the interpolation)."""
    differ = (logits > 0) != masks
    return bool((~differ | (logits.abs() < 1e-4)).all())


@pytest.mark.parametrize("name", CASE_NAMES)
def test_video_masks_are_the_upsampled_low_res_logits(golden, name):
    case = _case(golden, name)
    for st in _steps(case):
        if st["op"] == "propagate":
            for y in st["yields"]:
                up = F.interpolate(y["low_res_logits"], size=(S, S), mode="bilinear", align_corners=False)[:, 0]
                assert _masks_match(up, unpack_masks(y["video_res_masks_packed"])), (name, y["frame"])
            continue
        masks = unpack_masks(st["video_res_masks_packed"])
        for i, o in enumerate(st["objects"]):
            m = masks[i]
            if "low_res_logits" in o:
                up = F.interpolate(o["low_res_logits"][None], size=(S, S), mode="bilinear", align_corners=False)[0, 0]
                assert _masks_match(up, m)
            elif o["source"] == "none":
                assert not m.any()
            else:
                assert o["source"] == "mask"
        if st["op"] == "add_mask":
            i = st["returned_obj_ids"].index(st["obj_id"])
            assert torch.equal(masks[i], st["mask"])
            assert st["object_score_logits"].item() == (10.0 if st["mask"].any() else -10.0)
            assert st["iou_score"].item() == 1.0


@pytest.mark.parametrize("name", CASE_NAMES)
def test_memory_plans_add_up(golden, name):
    """Every memory read recorded: conditioning frames first (at most 4, temporal index 6), then at most 6 other
    frames (indices 5..0), pointers split into D / MEM tokens; the counts equal what the memory attention received."""
    case = _case(golden, name)
    seen = 0
    for st in _steps(case):
        events = st.get("events", []) + [e for y in st.get("yields", []) for e in y["events"]]
        for ev in events:
            if ev["event"] != "memory_attention" or not ev["used"]:
                continue
            seen += 1
            cond = [s for s in ev["spatial"] if s[2]]
            other = [s for s in ev["spatial"] if not s[2]]
            assert len(cond) <= FLAGS["max_cond_frames_in_attn"] and all(s[1] == 6 for s in cond)
            assert len(other) <= FLAGS["num_maskmem"] - 1
            assert [s[1] for s in other] == sorted((s[1] for s in other), reverse=True)
            assert ev["frame"] not in [s[0] for s in ev["spatial"]]
            assert len(ev["pointers"]) <= len(cond) + FLAGS["max_obj_ptrs_in_encoder"] - 1
            assert ev["num_pointer_tokens"] == len(ev["pointers"]) * (D // MEM)
            assert ev["num_memory_tokens"] == len(ev["spatial"]) * GRID * GRID + ev["num_pointer_tokens"]
            assert ev["memory_dtype_after_cat"] == "float32"
    assert seen > 0


@pytest.mark.parametrize("name", CASE_NAMES)
def test_tracks_are_not_trivial(golden, name):
    """Random weights track something: on most propagated (frame, object) pairs the mask is neither empty nor full."""
    case = _case(golden, name)
    total = nontrivial = 0
    for st in _steps(case, "propagate"):
        for y in st["yields"]:
            area = unpack_masks(y["video_res_masks_packed"]).float().mean(dim=(1, 2))
            total += area.numel()
            nontrivial += int(((area > 0.01) & (area < 0.99)).sum())
    assert total > 0 and nontrivial >= 0.75 * total, (name, nontrivial, total)


def test_two_objects_meet_the_non_overlap_constraint(golden):
    steps = _case(golden, "two_objects")["steps"]
    events = [e for y in steps[-1]["yields"] for e in y["events"]]
    no = [e for e in events if e["event"] == "non_overlap"]
    assert no and no[0]["overlap_pixels"] > 0 and no[0]["changed_pixels"] > 0


def test_both_directions_backward_pass_reads_the_forward_pass(golden):
    """In 'both' the backward pass (from the prompt frame 5) reads frames the forward pass tracked after frame 5."""
    y = [y for y in _case(golden, "both_directions")["steps"][-1]["yields"] if y["pass_index"] == 1 and y["frame"] == 4]
    (ev,) = [e for e in y[0]["events"] if e["event"] == "memory_attention"]
    assert any(f > 5 for f, _, is_cond in ev["spatial"] if not is_cond)


def test_memory_selection_outcome_is_recorded(golden):
    """meta.json says whether memory selection skipped a low-score frame; what it says matches cases.pt."""
    thr = FLAGS["mf_threshold"]
    for name, rep in META["memory_selection"].items():
        case = _case(golden, name)
        for f, score in rep["low_score_frames"].items():
            ys = [y for st in _steps(case, "propagate") for y in st["yields"] if y["frame"] == int(f)
                  and "eff_iou_score" in y]
            assert any(abs(y["eff_iou_score"] - score) < 1e-12 and y["eff_iou_score"] <= thr for y in ys)


def _events(step, kind):
    evs = list(step.get("events", [])) + [e for y in step.get("yields", []) for e in y["events"]]
    return [e for e in evs if e["event"] == kind]


def test_memories_are_encoded_at_consolidation_for_prompt_frames_and_in_track_step_otherwise(golden):
    """Add calls never run the memory encoder; the first propagation's preflight encodes the prompt frames from the
    consolidated masks, binarised (is_mask_from_pts, even for a mask prompt); tracked frames encode their own
    sigmoid mask inside track_step."""
    for name in CASE_NAMES:
        for st in _case(golden, name)["steps"]:
            enc = _events(st, "memory_encoder")
            if st["op"] != "propagate":
                assert not enc
                continue
            cond = {y["frame"] for y in st["yields"] if y["storage"] == "cond"}
            for e in enc:
                if e["caller"] == "consolidation":
                    assert e["is_mask_from_pts"] and e["mask_size"] == [S, S]
                else:
                    assert not e["is_mask_from_pts"] and e["frame"] not in cond


def test_click_history_and_previous_logits(golden):
    steps = _case(golden, "several_clicks")["steps"]
    counts = [st["prompt_point_coords"].shape[0] for st in steps[:3]]
    assert counts == [1, 2, 3]
    for st, prev in zip(steps[:3], (False, True, True)):
        (ts,) = _events(st, "track_step")
        assert ts["prev_mask_logits"] is prev and ts["init_cond_frame"]
    many = _case(golden, "many_clicks")["steps"][0]
    assert torch.equal(many["prompt_point_coords"], torch.cat([many["points"][:8], many["points"][-8:]]))
    assert torch.equal(many["prompt_point_labels"], torch.cat([many["labels"][:8], many["labels"][-8:]]))
    box = _case(golden, "box_and_click")["steps"][0]
    assert box["prompt_point_labels"].tolist() == [2, 3, 1]
    assert torch.equal(box["prompt_point_coords"][:2].flatten(), box["box"])


def test_refinement_click_on_a_tracked_frame(golden):
    steps = _case(golden, "refine")["steps"]
    refine = steps[2]
    assert refine["frame_was_tracked_before"]
    (ts,) = _events(refine, "track_step")
    assert not ts["init_cond_frame"] and ts["prev_mask_logits"] and ts["multimask_output"]
    (ma,) = _events(refine, "memory_attention")
    assert not ma["used"] and ma["why"] == "use_prev_mem_frame=False"
    # the second propagation restarts at the first conditioning frame and frames before 6 see conditioning frame 6
    second = steps[3]["yields"]
    assert second[0]["frame"] == 0
    plans = {e["frame"]: e for e in _events(steps[3], "memory_attention") if e["used"]}
    assert plans[3]["selected_cond_frames"] == [0, 6]


def test_an_absent_object(golden):
    st = _case(golden, "empty_mask_object")["steps"]
    assert st[1]["object_score_logits"].item() == -10.0
    y0 = st[2]["yields"][0]
    assert y0["object_score_logits"][1].item() == -10.0 and not unpack_masks(y0["video_res_masks_packed"])[1].any()
    (enc,) = [e for e in _events(st[2], "memory_encoder") if e["caller"] == "consolidation"]
    assert enc["object_present"] == [True, False]


def test_sam3kit_loads_the_checkpoint():
    import sam3kit

    model = sam3kit.load(GOLDEN)
    assert model.config.tracker.memory_dim == MEM and model.config.tracker.hidden_size == D
    assert model.config.image_size == S
