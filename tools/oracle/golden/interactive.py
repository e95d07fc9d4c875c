"""Case f: interactive (SAM-1 task) predictions on the image-1 state with points, a box, box + point, a mask input
and single-mask output, with the decoder's full outputs recorded from the same calls."""
from __future__ import annotations

import numpy as np
import torch

from .inputs import BOX_XYXY, LBL_THREE, PT_WITH_BOX, PTS_ONE, PTS_THREE
from .recording import record, record_interpolate_inputs, tensor_copy

FAMILIES = {
    "f": dict(
        description="Interactive (SAM-1 task) on the image-1 state: state = processor.set_image(image1); "
                    "masks, iou, low = model.predict_inst(state, point_coords=..., point_labels=..., box=..., "
                    "mask_input=..., multimask_output=..., return_logits=True) (numpy in/out). The decoder's full "
                    "outputs (all 4 mask tokens, all 4 IoUs, object-score logit) are recorded from the same call "
                    "path: the single tracker.sam_mask_decoder.predict_masks call made inside predict_inst "
                    "(SAM3InteractiveImagePredictor._predict discards the object score). The prompt-encoder inputs "
                    "are recorded from tracker.sam_prompt_encoder.forward, the hole-filled low-res logits from the "
                    "F.interpolate call in SAM2Transforms.postprocess_masks. Cases: f1_point (1 positive point, "
                    "multimask), f2_three_points (labels [1,0,1], multimask), f3_box (xyxy box, multimask), "
                    "f4_box_point (box + 1 positive point, multimask), f5_mask (mask_input = f1 low-res logits of the "
                    "best-IoU mask, no points, multimask), f6_point_single (1 point, multimask_output=False -> "
                    "dynamic stability fallback).",
        fields={
            "<f>_input_point_coords": "float64 (P,2) pixel (x,y) of the original image (as passed)",
            "<f>_input_point_labels": "int64 (P,) 1 = positive, 0 = negative",
            "<f>_input_box": "float64 (4,) pixel xyxy of the original image",
            "<f>_input_mask_input": "float32 (1,32,32) low-res mask logits passed as mask_input",
            "<f>_input_multimask_output": "bool",
            "<f>_prompt_encoder_coords / _labels": "(P',2) float32 / (P',) int32: what reaches the prompt encoder "
                    "(coords * 112 / (W,H) of the original image, box corners first with labels 2,3, then clicks); "
                    "the padding point (label -1) is appended inside the prompt encoder; empty for mask-only",
            "<f>_masks": "float16 (C,H,W) mask logits at the original size (C = 3 multimask, 1 otherwise); stored as "
                         "float16 to save space; the float32 values equal bit-exactly F.interpolate("
                         "<f>_low_res_logits_filled[None], (H,W), mode='bilinear', align_corners=False)[0] (checked)",
            "<f>_iou": "float32 (C,) predicted IoU (sigmoid)",
            "<f>_low_res_logits": "float32 (C,32,32) returned low-res logits: selected decoder masks clamped to "
                                  "+-32, NOT hole-filled",
            "<f>_low_res_logits_filled": "float32 (C,32,32) the selected decoder masks after the official hole "
                                         "filling (background components of area <= 256 low-res pixels, "
                                         "8-connectivity via scikit-image on CPU, set to +10), unclamped: the input "
                                         "of the final bilinear upsampling",
            "<f>_decoder_all_low_res_logits": "float32 (4,32,32) all 4 mask tokens of the decoder (token 0 = "
                                              "single-mask token), unclamped, before selection",
            "<f>_decoder_all_iou": "float32 (4,)",
            "<f>_object_score_logit": "float32 (1,1) object-score logit of the same decoder call (unused by "
                                      "predict_inst: no NO_OBJ_SCORE masking in the interactive image path)",
            "<f>_stability_score_token0": "float, stability score of token 0 (|logit>0.05| / |logit>-0.05|)",
            "f6_point_single_used_multimask_fallback": "bool, stability < 0.98 -> best-IoU multimask output returned",
            "f5_mask_input_from": "str, which f1 low-res map was used",
        }),
}


def run(model, proc, imgs, cases):
    """Adds the f entries to ``cases``."""
    import sam3.model.utils.sam1_utils as sam1_utils

    st1 = proc.set_image(imgs[0].permute(2, 0, 1).contiguous())
    pred = model.inst_interactive_predictor

    def inst_case(**kw):
        dec_out, pe_in, interp_in = [], [], []
        with record(pred.model.sam_mask_decoder, "predict_masks", dec_out), \
                record(pred.model.sam_prompt_encoder, "forward", pe_in, keep_args=True), \
                record_interpolate_inputs(sam1_utils, interp_in):
            masks, iou, low = model.predict_inst(st1, return_logits=True, **kw)
        assert all(isinstance(v, np.ndarray) for v in (masks, iou, low))  # official API returns numpy
        (all_masks, all_iou, _, obj_logits), = dec_out
        (_, pe_kw, _), = pe_in
        filled, = interp_in
        masks, filled = torch.as_tensor(masks), filled[0]
        h, w = st1["original_height"], st1["original_width"]
        # the original-size logits are exactly a bilinear upsampling of the (hole-filled) low-res logits
        assert torch.equal(torch.nn.functional.interpolate(filled[None], (h, w), mode="bilinear",
                                                           align_corners=False)[0], masks)
        res = dict(masks=tensor_copy(masks).half(), iou=tensor_copy(iou), low_res_logits=tensor_copy(low),
                   low_res_logits_filled=tensor_copy(filled), decoder_all_low_res_logits=tensor_copy(all_masks[0]),
                   decoder_all_iou=tensor_copy(all_iou[0]), object_score_logit=tensor_copy(obj_logits))
        dec = pred.model.sam_mask_decoder
        res["stability_score_token0"] = float(dec._get_stability_scores(all_masks[:, 0:1])[0, 0])
        if not kw["multimask_output"]:
            thresh = dec.dynamic_multimask_stability_thresh
            res["used_multimask_fallback"] = bool(res["stability_score_token0"] < thresh)
        sel = all_masks[0, 1:] if kw["multimask_output"] else None
        if sel is not None:
            assert torch.equal(torch.as_tensor(low), sel.clamp(-32, 32))
        pts = pe_kw["points"]
        res["prompt_encoder_coords"] = tensor_copy(pts[0][0]) if pts is not None else torch.zeros(0, 2)
        res["prompt_encoder_labels"] = tensor_copy(pts[1][0]) if pts is not None else torch.zeros(0, dtype=torch.int32)
        return res

    f1 = inst_case(point_coords=np.array(PTS_ONE), point_labels=np.array([1]), multimask_output=True)
    best = int(np.argmax(f1["iou"].numpy()))
    specs = {
        "f1_point": dict(point_coords=np.array(PTS_ONE), point_labels=np.array([1]), multimask_output=True),
        "f2_three_points": dict(point_coords=np.array(PTS_THREE), point_labels=np.array(LBL_THREE),
                                multimask_output=True),
        "f3_box": dict(box=np.array(BOX_XYXY), multimask_output=True),
        "f4_box_point": dict(box=np.array(BOX_XYXY), point_coords=np.array(PT_WITH_BOX), point_labels=np.array([1]),
                             multimask_output=True),
        "f5_mask": dict(mask_input=f1["low_res_logits"][best:best + 1].numpy(), multimask_output=True),
        "f6_point_single": dict(point_coords=np.array(PTS_ONE), point_labels=np.array([1]), multimask_output=False),
    }
    for name, kw in specs.items():
        r = inst_case(**kw)
        for k in ("point_coords", "point_labels", "box", "mask_input"):
            if k in kw:
                r[f"input_{k}"] = tensor_copy(torch.as_tensor(np.asarray(kw[k])))
        r["input_multimask_output"] = bool(kw["multimask_output"])
        for k, v in r.items():
            cases[f"{name}_{k}"] = v
    cases["f5_mask_input_from"] = f"f1_point_low_res_logits[{best}] (argmax iou)"
