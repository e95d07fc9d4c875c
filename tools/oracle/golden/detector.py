"""Case d: the detector's raw outputs and prompt tokens, recorded from the calls the official ``Sam3Processor``
makes for text, text + boxes, box-only and second-image prompts (their post-processing: ``postprocess``)."""
from __future__ import annotations

import torch

from . import postprocess
from .inputs import DET_BOX_ONE, DET_BOXES_TWO, DET_LABELS_TWO
from .recording import record, tensor_copy

DET_OUT_KEYS = ["pred_logits", "presence_logit_dec", "pred_boxes", "pred_boxes_xyxy", "pred_masks", "semantic_seg",
                "queries"]


FAMILIES = {
    "d": dict(
        description="Detector (PCS) raw outputs, recorded from the model.forward_grounding(backbone_out=state"
                    "['backbone_out'], find_input=processor.find_stage, find_target=None, geometric_prompt=state"
                    "['geometric_prompt']) call that the official Sam3Processor makes; the prompt tokens are recorded "
                    "from the same call's model._encode_prompt. Cases: d1_text = set_image(image1); set_text_prompt"
                    "('a cat') (text only: the official model appends the geometry CLS token, prompt = 32 + 1 tokens); "
                    "d2_text_2boxes = set_image(image1); set_text_prompt('a cat'); add_geometric_prompt(box0, True); "
                    "add_geometric_prompt(box1, False) (outputs of the last call: 32 text + 2 boxes + CLS); "
                    "d3_box_only = set_image(image1); add_geometric_prompt(box, True) without text (the processor uses "
                    "the text 'visual'; 32 + 1 + 1 tokens); d4_image2_text = set_image(image2); "
                    "set_text_prompt('a cat').",
        fields={
            "<d>_pred_logits": "(1,10,1) per-query class logits (dot-product scoring, clamped +-12)",
            "<d>_presence_logit_dec": "(1,1) presence logit (official: not clamped)",
            "<d>_pred_boxes": "(1,10,4) normalised cxcywh",
            "<d>_pred_boxes_xyxy": "(1,10,4) normalised xyxy (not clipped to [0,1])",
            "<d>_pred_masks": "(1,10,32,32) mask logits (analogue of 288x288)",
            "<d>_semantic_seg": "(1,1,32,32) semantic logits",
            "<d>_queries": "(1,10,64) last-layer normed decoder query states",
            "<d>_prompt": "(L,1,64) the prompt fed to the DETR encoder/decoder = cat(text 32, geometry tokens incl. "
                          "CLS); L = 33 (text only), 35 (two boxes), 34 (one box)",
            "<d>_prompt_mask": "bool (1,L), True = padding",
            "<d>_geo_box_embeddings / _geo_box_labels / _geo_box_mask": "the official Prompt object after the "
                          "processor calls: boxes (N,1,4) normalised cxcywh, labels (N,1) (bool as given by the "
                          "processor; the encoder uses labels.long()), mask (1,N) True = padding",
            "d2_text_2boxes_input_boxes_cxcywh, d3_box_only_input_boxes_cxcywh": "float32 (N,4) the boxes as given "
                          "to add_geometric_prompt: normalised (cx, cy, w, h) of the original image",
            "d2_text_2boxes_input_labels, d3_box_only_input_labels": "bool (N,) as given (True = positive)",
        }),
}

SPECS = {  # case name -> (image index, processor calls in order)
    "d1_text": (0, [("text", "a cat")]),
    "d2_text_2boxes": (0, [("text", "a cat"), ("box", (DET_BOXES_TWO[0], DET_LABELS_TWO[0])),
                           ("box", (DET_BOXES_TWO[1], DET_LABELS_TWO[1]))]),
    "d3_box_only": (0, [("box", (DET_BOX_ONE, True))]),
    "d4_image2_text": (1, [("text", "a cat")]),
}


def detector_case(model, proc, image, steps, threshold):
    """Run the processor ``steps`` on ``image`` with ``threshold``; the raw outputs and prompt of the last
    ``forward_grounding`` call, the geometric prompt, then the processor's post-processed state (e fields)."""
    st = proc.set_image(image.permute(2, 0, 1).contiguous())
    raw, prompts = [], []
    proc.confidence_threshold = threshold
    with record(model, "forward_grounding", raw), record(model, "_encode_prompt", prompts):
        for kind, arg in steps:
            if kind == "text":
                st = proc.set_text_prompt(arg, st)
            else:
                st = proc.add_geometric_prompt(arg[0], arg[1], st)
    out, (prompt, prompt_mask, _) = raw[-1], prompts[-1]
    gp = st["geometric_prompt"]
    res = {k: tensor_copy(out[k]) for k in DET_OUT_KEYS}
    res.update(prompt=tensor_copy(prompt), prompt_mask=tensor_copy(prompt_mask),
               geo_box_embeddings=tensor_copy(gp.box_embeddings), geo_box_labels=tensor_copy(gp.box_labels),
               geo_box_mask=tensor_copy(gp.box_mask))
    res.update(postprocess.processor_outputs(st))
    return res


def run(model, proc, imgs, cases):
    """Adds the d entries (and, per case, the e entries of ``postprocess``) to ``cases``.

    Each case runs twice: at threshold 0.5 to see the query probabilities, then at the threshold that
    ``postprocess.pick_threshold`` places in their widest gap; the raw outputs of the two runs must be equal.
    """
    for name, (i, steps) in SPECS.items():
        first = detector_case(model, proc, imgs[i], steps, 0.5)
        thr, margin = postprocess.pick_threshold(postprocess.query_probabilities(first).tolist())
        r = detector_case(model, proc, imgs[i], steps, thr)
        r["confidence_threshold"] = thr
        r["threshold_gap"] = margin
        for k in DET_OUT_KEYS:
            assert torch.equal(r[k], first[k])
        postprocess.check_and_compact(r, thr, imgs[i].shape[:2])
        for k, v in r.items():
            cases[f"{name}_{k}"] = v
    cases["d2_text_2boxes_input_boxes_cxcywh"] = tensor_copy(torch.tensor(DET_BOXES_TWO))
    cases["d2_text_2boxes_input_labels"] = tensor_copy(torch.tensor(DET_LABELS_TWO))
    cases["d3_box_only_input_boxes_cxcywh"] = tensor_copy(torch.tensor([DET_BOX_ONE]))
    cases["d3_box_only_input_labels"] = tensor_copy(torch.tensor([True]))
