"""``sam3kit export onnx SRC OUT_DIR`` (the shared export of these tests is this command's): what it writes and
prints, and what it refuses."""

from __future__ import annotations

import json

from sam3kit.cli import main


def test_export_command(cli_export, tiny_checkpoint, plain_model, capsys):
    out, code, printed = cli_export
    assert code == 0
    for stem in ("vision_encoder", "text_encoder", "detector", "prompt_encoder_mask_decoder"):
        for name in (f"{stem}.onnx", f"{stem}_fp16.onnx"):
            assert name in printed and (out / name).is_file()
    assert "vision_encoder_int8.onnx" in printed and "text_encoder_int8.onnx" not in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["opset"] == 17 and manifest["source"]["path"] == str(tiny_checkpoint)
    assert manifest["source"]["fingerprint"] == plain_model.fingerprint  # the checkpoint's content fingerprint
    assert {k: sorted(v) for k, v in manifest["graphs"].items()} == {
        "vision_encoder": ["fp16", "fp32", "int8"], "text_encoder": ["fp16", "fp32"], "detector": ["fp16", "fp32"],
        "prompt_encoder_mask_decoder": ["fp16", "fp32"]}
    assert {"image_size", "rescale_factor", "image_mean", "image_std"} <= set(manifest["preprocessing"])
    assert manifest["tokenizer"]["files"] == ["vocab.json", "merges.txt"] and (out / "vocab.json").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".export-")]  # its scratch folder is gone

    assert main(["export", "onnx", str(tiny_checkpoint), str(out)]) == 2
    assert "holds an export already" in capsys.readouterr().err
    assert main(["export", "onnx", str(tiny_checkpoint), str(out.parent / "x"), "--opset", "9"]) == 2
    assert "opset must be an integer from 17 to 20" in capsys.readouterr().err
