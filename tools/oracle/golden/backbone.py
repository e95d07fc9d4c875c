"""Cases a (preprocessing by ``Sam3Processor.set_image``) and b (ViT, detector and tracker necks on image 1)."""
from __future__ import annotations

import PIL
import torch

from .builder import T
from .recording import record, tensor_copy

FAMILIES = {
    "a": dict(
        description="Preprocessing with the official image API: Sam3Processor(model, resolution=112, device='cpu')"
                    ".set_image(img) where img is the (3,H,W) uint8 tensor of the stored HWC image (the PIL entry "
                    "point gives the identical tensor, checked). Pipeline: v2.Resize((112,112)) bilinear antialias "
                    "on uint8 -> ToDtype(float32, scale=True) -> Normalize(0.5, 0.5). The pixel tensor is the input "
                    "of model.backbone.forward_image, recorded during set_image.",
        fields={
            "image1": "uint8 (90,120,3) HWC RGB test image 1 (seeded smooth colour field + noise)",
            "image2": "uint8 (130,70,3) HWC RGB test image 2",
            "image{k}_resized_u8": "uint8 (1,3,112,112): torchvision v2 Resize((112,112)) (bilinear, antialias=True) "
                                   "of image k in CHW; the official float pixels equal bit-exactly "
                                   "(u8.float() * (1/255) - 0.5) / 0.5 (checked for both images)",
            "image1_pixel_values": "float32 (1,3,112,112): the official preprocessed tensor of image 1",
        }),
    "b": dict(
        description="Backbone on image 1: bo = model.backbone.forward_image(image1_pixel_values) (SAM3VLBackbone, "
                    "scalp=1 drops the 0.5x level); vit_out = model.backbone.vision_backbone.trunk(pixels)[-1].",
        fields={
            "b_vit_out": "(1,64,8,8) ViT trunk output (block 1 = last global block), channels-first",
            "b_det_fpn{0,1,2}": "detector neck (convs) levels bo['backbone_fpn'][i]: (1,64,32,32), (1,64,16,16), "
                                "(1,64,8,8) = analogues of 288/144/72",
            "b_trk_fpn{0,1,2}": "tracker neck (sam2_convs) levels bo['sam2_backbone_out']['backbone_fpn'][i], raw "
                                "(before conv_s0/conv_s1)",
            "b_trk_fpn0_conv_s0": "(1,8,32,32) tracker.sam_mask_decoder.conv_s0(b_trk_fpn0), what "
                                  "Sam3Processor.set_image stores in the state for the interactive predictor",
            "b_trk_fpn1_conv_s1": "(1,16,16,16) tracker.sam_mask_decoder.conv_s1(b_trk_fpn1)",
            "b_pos_enc2": "(1,64,8,8) sine position encoding of the 8x8 level (bo['vision_pos_enc'][2]; identical for "
                          "both necks and independent of the image)",
        }),
}


def run(model, proc, imgs, cases):
    """Adds the a and b entries to ``cases``."""
    from torchvision.transforms import v2

    # ---------------- a. preprocessing (Sam3Processor.set_image on a uint8 CHW tensor)
    states, pixels = [], []
    for i, img in enumerate(imgs):
        seen = []
        with record(model.backbone, "forward_image", seen, keep_args=True):
            st = proc.set_image(img.permute(2, 0, 1).contiguous())
        (args, kwargs, _), = seen
        pix = (args[0] if args else kwargs["samples"]).clone()
        # same tensor via the PIL entry point
        pil = PIL.Image.fromarray(img.numpy())
        pil_pix = proc.transform(v2.functional.to_image(pil)).unsqueeze(0)
        assert torch.equal(pil_pix, pix), "PIL and tensor entry points differ"
        # resized uint8 image + the exact float formula of the official v2 pipeline
        u8 = v2.Resize(size=(T["image_size"],) * 2)(img.permute(2, 0, 1).contiguous()).unsqueeze(0)
        assert u8.dtype == torch.uint8
        formula = (u8.to(torch.float32) * (1.0 / 255) - 0.5) / 0.5
        assert torch.equal(formula, pix), "pixel formula does not reproduce the official tensor bit-exactly"
        assert st["original_height"] == img.shape[0] and st["original_width"] == img.shape[1]
        states.append(st)
        pixels.append(pix)
        cases[f"image{i + 1}"] = img                       # (H, W, 3) uint8 RGB
        cases[f"image{i + 1}_resized_u8"] = u8             # (1, 3, 112, 112) uint8
    cases["image1_pixel_values"] = pixels[0]               # (1, 3, 112, 112) float32 in [-1, 1]

    # ---------------- b. backbone on image 1 (fresh forward; set_image modifies the tracker levels in place)
    bo = model.backbone.forward_image(pixels[0])
    vit_out = model.backbone.vision_backbone.trunk(pixels[0])[-1]
    cases["b_vit_out"] = tensor_copy(vit_out)
    for lvl in range(3):
        cases[f"b_det_fpn{lvl}"] = tensor_copy(bo["backbone_fpn"][lvl])
    sam2 = bo["sam2_backbone_out"]
    for lvl in range(3):
        cases[f"b_trk_fpn{lvl}"] = tensor_copy(sam2["backbone_fpn"][lvl])
    dec = model.inst_interactive_predictor.model.sam_mask_decoder
    cases["b_trk_fpn0_conv_s0"] = tensor_copy(dec.conv_s0(sam2["backbone_fpn"][0]))
    cases["b_trk_fpn1_conv_s1"] = tensor_copy(dec.conv_s1(sam2["backbone_fpn"][1]))
    cases["b_pos_enc2"] = tensor_copy(bo["vision_pos_enc"][2])
    for lvl in range(3):
        assert torch.equal(bo["vision_pos_enc"][lvl], sam2["vision_pos_enc"][lvl])
    assert len(bo["backbone_fpn"]) == 3  # scalp=1 dropped the 0.5x level
