"""Video tracking vs the OFFICIAL ``Sam3TrackerPredictor`` (Meta's ``sam3==0.1.4``) through its golden files.

tests/golden/official_video/ (its README gives the format) holds a tiny random-weight model with a video-configured
tracker (memory 32 channels < hidden 64: two tokens per pointer), short synthetic clips at the model size, the
prompts and propagation calls of each case, and what the official predictor returned and stored, frame by frame.
Each case runs here through ``VideoSession`` with the default ``VideoOptions`` (the released video tracker's flags)
and is compared, step by step:

    - add calls: the stored prompt (box corners first, click history, first 8 + last 8), the prompted object's
      low-resolution logits, object score, pointer and best IoU, and the returned masks of every object;
    - every yielded frame (the official "both" yields its start frame twice; ``propagate`` yields it once): the
      frame order, the low-resolution logits and object scores, the masks, and what the bank stores for the frame
      (pointers, scores, IoUs, memory-selection score, bfloat16 memory maps) and which frames and pointers the
      frame read (the official memory plan, memory selection included).

Tolerances (meta.json ``tolerances``): exact for orders, ids and memory plans; 1e-4 on fp32 logits, scores and
pointers; memory maps within one bfloat16 step (memories are stored in bfloat16 as the official code stores them);
masks exact except pixels whose logit is within 1e-4 of 0; memory-selection scores 1e-5.

Device-parametrised (``tests/fixtures/devices.py``): every case runs on the CPU and again on the device under test
(CUDA when there is one, plain model, TF32 off) against the same official CPU outputs and tolerances.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from sam3kit.pipelines.video import VideoOptions, VideoPredictor
from sam3kit.pipelines.video.group import TrackGroup
from sam3kit.pipelines.video.memory_bank import COND, MemoryBank

from fixtures.devices import to_cpu

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "official_video"
pytestmark = pytest.mark.skipif(not (GOLDEN / "cases.pt").exists(), reason="official video golden files missing")
TOL = 1e-4
MEASURED: dict[str, float] = {}


def _meta():
    return json.loads((GOLDEN / "meta.json").read_text())


CASE_NAMES = list(_meta()["cases"]) if (GOLDEN / "meta.json").exists() else []


@pytest.fixture(scope="module")
def golden():
    return torch.load(GOLDEN / "cases.pt", weights_only=True)


@pytest.fixture(scope="module")
def model(test_device):
    return test_device.load(GOLDEN)


def close(name, ours, ref, tol=TOL):
    ours, ref = to_cpu(ours), to_cpu(ref)
    assert ours.shape == ref.shape, f"{name}: shape {tuple(ours.shape)} vs official {tuple(ref.shape)}"
    d = (ours - ref).abs().max().item() if ref.numel() else 0.0
    key = name.split(":")[-1].split("[")[0].strip()
    MEASURED[key] = max(MEASURED.get(key, 0.0), d)
    assert d <= tol, f"{name}: max |diff| {d:.3e} > {tol:.0e}"


def unpack(packed, s):
    bits = (packed[..., None] >> torch.arange(7, -1, -1, dtype=torch.uint8)) & 1
    return bits.reshape(packed.shape[0], s, s).bool()


def masks_match(name, ours_masks, ours_logits, ref_masks):
    differ = torch.as_tensor(ours_masks) != ref_masks
    borderline = torch.as_tensor(ours_logits).abs() <= TOL
    bad = int((differ & ~borderline).sum())
    assert bad == 0, f"{name}: {bad} mask pixels differ away from the decision boundary"


@contextmanager
def recording():
    """Record what each group computes (the low-resolution outputs, the bank entry of the frame right after it
    was computed, the memory choice of tracked frames), without changing anything."""
    rec = {"track": [], "choose": []}
    orig_track, orig_choose = TrackGroup.track, MemoryBank.choose

    def track(self, frame, reverse, features, num_frames):
        low, obj = orig_track(self, frame, reverse, features, num_frames)
        m = self.bank.get(frame)
        rec["track"].append(dict(frame=frame, low=low.clone(), obj=obj.clone(), pointer=m.pointer.clone(),
                                 object_score=m.object_score.clone(), iou=m.iou.clone(), score=m.score,
                                 maskmem=m.maskmem.clone(), cond=frame in self.bank.cond))
        return low, obj

    def choose(self, t, reverse, num_frames):
        ch = orig_choose(self, t, reverse, num_frames)
        rec["choose"].append(dict(frame=t, reverse=reverse, choice=ch))
        return ch

    TrackGroup.track, MemoryBank.choose = track, choose
    try:
        yield rec
    finally:
        TrackGroup.track, MemoryBank.choose = orig_track, orig_choose


def _check_add(name, step, session, result, s):
    group = session._group_of[step["obj_id"]]
    row = group.row(step["obj_id"])
    pend = group.pending[row][step["frame"]]
    assert result.object_ids.tolist() == step["returned_obj_ids"], name
    masks_match(f"{name}: returned masks", result.masks, result.mask_logits, unpack(step["video_res_masks_packed"], s))
    close(f"{name}: add object_score_logits", pend.object_score, step["object_score_logits"])
    close(f"{name}: add obj_ptr", pend.pointer, step["obj_ptr"])
    close(f"{name}: add iou_score", pend.iou.reshape(step["iou_score"].shape), step["iou_score"])
    if step["op"] == "add_points":
        coords, labels = group.points[row][step["frame"]]
        close(f"{name}: prompt coords", coords[0], step["prompt_point_coords"], 0.0)
        assert labels[0].tolist() == step["prompt_point_labels"].tolist(), name
        close(f"{name}: add low_res_logits", pend.low_res, step["low_res_logits"])


def _check_yield(name, y, r, tracked, plans, s):
    assert r.frame_index == y["frame"] and r.object_ids.tolist() == y["obj_ids"], name
    assert tracked["cond"] == (y["storage"] == "cond"), name
    close(f"{name}: low_res_logits", tracked["low"], y["low_res_logits"])
    close(f"{name}: object_score_logits", tracked["obj"], y["object_score_logits"])
    masks_match(f"{name}: masks", r.masks, r.mask_logits, unpack(y["video_res_masks_packed"], s))
    close(f"{name}: stored obj_ptr", tracked["pointer"], y["obj_ptr"])
    close(f"{name}: stored object score", tracked["object_score"], y["stored_object_score_logits"])
    close(f"{name}: stored iou_score", tracked["iou"].reshape(y["iou_score"].shape), y["iou_score"])
    ref_mem = y["maskmem_features"].float()
    step = ref_mem.abs() * 2 ** -7 + 1e-6
    excess = ((to_cpu(tracked["maskmem"]) - ref_mem).abs() - step).max().item()
    MEASURED["maskmem_features beyond one bf16 step"] = max(MEASURED.get("maskmem_features beyond one bf16 step",
                                                                         -1.0), excess)
    assert tracked["maskmem"].dtype == torch.bfloat16 and excess <= 0, f"{name}: memory maps off by {excess:.2e}"
    if "eff_iou_score" in y:
        close(f"{name}: eff_iou_score", tracked["score"], y["eff_iou_score"], 1e-5)
    for ev in y["events"]:
        if ev["event"] == "memory_attention" and ev["used"]:
            plan = plans.pop(0)
            assert plan["frame"] == ev["frame"] and plan["reverse"] == ev["reverse"], name
            ch = plan["choice"]
            spatial = [[f, ti, st == COND and ti == 6] for f, ti, st in ch.spatial]
            assert spatial == ev["spatial"], f"{name}: spatial memories {spatial} vs official {ev['spatial']}"
            assert [list(p[:2]) for p in ch.pointers] == [list(p[:2]) for p in ev["pointers"]], name
            if ev["valid_frames"] is not None:
                assert list(ch.candidates) == ev["valid_frames"], name


@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "unbounded"])
@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_case_matches_official(golden, model, case_name, bounded):
    """``bounded``: the default bank (what tracking can still read); unbounded: every frame kept, as officially."""
    case = golden["cases"][case_name]
    s = case["video_size"][0]
    frames = [f.numpy() for f in case["frames"]]
    opts = VideoOptions(return_logits=True, bounded_memory=bounded)
    with recording() as rec, VideoPredictor(model, opts).start(frames) as session:
        for k, step in enumerate(case["steps"]):
            name = f"{case_name} step {k} ({step['op']})"
            if step["op"] == "propagate":
                rec["track"].clear()
                rec["choose"].clear()
                results = list(session.propagate(start=step["start"], direction=step["direction"],
                                                 max_frames=step["max_frames"]))
                official = [y for y in step["yields"] if not (y["pass_index"] == 1 and y["frame"] == (
                    step["yields"][0]["frame"]))]
                assert [r.frame_index for r in results] == [y["frame"] for y in official], name
                tracked = {t["frame"]: t for t in rec["track"]}
                plans = list(rec["choose"])
                for y, r in zip(official, results):
                    _check_yield(f"{name} frame {y['frame']}", y, r, tracked[y["frame"]], plans, s)
                assert not plans, f"{name}: {len(plans)} memory reads the official run did not make"
            elif step["op"] == "add_points":
                kw = dict(clear_old_points=bool(step["clear_old_points"]))
                if "points" in step:
                    kw.update(points=step["points"].numpy(), point_labels=step["labels"].numpy())
                if "box" in step:
                    kw.update(box=step["box"].numpy())
                r = session.add_prompt(step["frame"], obj_id=step["obj_id"], **kw)
                _check_add(name, step, session, r, s)
            else:
                r = session.add_prompt(step["frame"], obj_id=step["obj_id"], mask=step["mask"].numpy())
                _check_add(name, step, session, r, s)


def test_report_measured_differences():
    """Prints the largest difference of each compared quantity over all cases (run with -s)."""
    for k, v in sorted(MEASURED.items()):
        print(f"official video golden: {k}: max |diff| {v:.2e}")
