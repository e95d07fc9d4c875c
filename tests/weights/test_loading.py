"""Strict loading of the two released layouts (tiny checkpoints written by the tests in the released formats)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

import sam3kit
from sam3kit.config import Sam3Config
from sam3kit.errors import CheckpointError, InputError
from sam3kit.model.sam3 import Sam3Model
from sam3kit.weights.writer import save_hf, save_official

from fixtures.weights import randomize_


@pytest.fixture(scope="module")
def tiny_model():
    cfg = Sam3Config.tiny()
    return randomize_(Sam3Model(cfg).eval(), seed=3)


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_hf_directory_roundtrip(tiny_model, tmp_path):
    save_hf(tiny_model.state_dict(), tiny_model.config, tmp_path / "hf")
    loaded = sam3kit.load(tmp_path / "hf")
    assert loaded.config == tiny_model.config
    _same_state(tiny_model, loaded)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    # a bare .safetensors file with config.json beside it
    _same_state(tiny_model, sam3kit.load(tmp_path / "hf" / "model.safetensors"))


def test_official_pt_roundtrip(tiny_model, tmp_path):
    save_official(tiny_model.state_dict(), tiny_model.config, tmp_path / "off" / "sam3.pt")
    sd = torch.load(tmp_path / "off" / "sam3.pt")
    assert all(k.startswith(("detector.", "tracker.")) for k in sd)
    _same_state(tiny_model, sam3kit.load(tmp_path / "off"))
    _same_state(tiny_model, sam3kit.load(tmp_path / "off" / "sam3.pt"))
    # the official loaders also accept {"model": state_dict}
    torch.save({"model": sd}, tmp_path / "off" / "wrapped.pt")
    _same_state(tiny_model, sam3kit.load(tmp_path / "off" / "wrapped.pt"))


def test_sharded_safetensors(tiny_model, tmp_path):
    d = tmp_path / "sharded"
    save_hf(tiny_model.state_dict(), tiny_model.config, d)
    full = load_file(d / "model.safetensors")
    (d / "model.safetensors").unlink()
    keys = sorted(full)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    weight_map = {}
    for name, ks in shards.items():
        save_file({k: full[k] for k in ks}, d / name)
        weight_map.update({k: name for k in ks})
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    _same_state(tiny_model, sam3kit.load(d))


def test_dtype_and_device(tiny_model, tmp_path):
    save_hf(tiny_model.state_dict(), tiny_model.config, tmp_path)
    m = sam3kit.load(tmp_path, dtype="bf16")
    assert all(p.dtype == torch.bfloat16 for p in m.parameters())
    assert m.device.type == "cpu"


# ---------------------------------------------------------------- refusals
def _hf_dir(model, tmp_path, mutate):
    d = tmp_path / "ckpt"
    save_hf(model.state_dict(), model.config, d)
    sd = load_file(d / "model.safetensors")
    mutate(sd)
    save_file(sd, d / "model.safetensors")
    return d


def test_missing_tensor_is_refused(tiny_model, tmp_path):
    d = _hf_dir(tiny_model, tmp_path, lambda sd: sd.pop("detector_model.detr_decoder.query_embed.weight"))
    with pytest.raises(CheckpointError, match=r"do not match .*config\.json: missing: "
                                              r"detector_model\.detr_decoder\.query_embed\.weight") as e:
        sam3kit.load(d)
    assert "\n" not in str(e.value)  # one line; the tensors are in details
    assert e.value.details == ("missing: detector_model.detr_decoder.query_embed.weight",)


def test_unexpected_and_renamed_tensors_are_refused(tiny_model, tmp_path):
    def rename(sd):
        sd["detector_model.detr_decoder.query_embedding.weight"] = sd.pop("detector_model.detr_decoder.query_embed.weight")
        sd["extra.tensor"] = torch.zeros(3)
    d = _hf_dir(tiny_model, tmp_path, rename)
    with pytest.raises(CheckpointError) as e:
        sam3kit.load(d)
    msg = str(e.value)
    assert "\n" not in msg and "tensors: 1 missing, 2 unexpected" in msg and "Nothing was loaded" in msg
    assert set(e.value.details) == {"missing: detector_model.detr_decoder.query_embed.weight",
                                    "unexpected: detector_model.detr_decoder.query_embedding.weight",
                                    "unexpected: extra.tensor"}


def test_shape_mismatch_lists_expected_and_got(tiny_model, tmp_path):
    d = _hf_dir(tiny_model, tmp_path, lambda sd: sd.__setitem__("detector_model.detr_decoder.query_embed.weight", torch.zeros(7, 64)))
    with pytest.raises(CheckpointError, match=r"query_embed\.weight' has wrong shape: got \[7, 64\], expected \[10, 64\]"):
        sam3kit.load(d)


def test_wrong_config_for_checkpoint(tiny_model, tmp_path):
    save_hf(tiny_model.state_dict(), tiny_model.config, tmp_path)
    with pytest.raises(CheckpointError, match="wrong shape"):
        sam3kit.load(tmp_path, config=Sam3Config.tiny(d=128))


def test_another_model_is_refused(tmp_path):
    save_file({"bert.embeddings.word_embeddings.weight": torch.zeros(4, 4)}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="not a SAM 3 checkpoint"):
        sam3kit.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="not a SAM 3 checkpoint"):
        sam3kit.load(tmp_path)


def test_config_of_another_model_is_refused(tiny_model, tmp_path):
    save_hf(tiny_model.state_dict(), tiny_model.config, tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="model_type 'bert'"):
        sam3kit.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        sam3kit.load(tmp_path)


def test_truncated_safetensors_is_refused(tiny_model, tmp_path):
    save_hf(tiny_model.state_dict(), tiny_model.config, tmp_path)
    f = tmp_path / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match="truncated"):
        sam3kit.load(tmp_path)
    f.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="truncated|not a readable"):
        sam3kit.load(tmp_path)


def test_truncated_pt_is_refused(tiny_model, tmp_path):
    p = save_official(tiny_model.state_dict(), tiny_model.config, tmp_path / "sam3.pt")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        sam3kit.load(p)


def test_official_rope_table_must_match_config(tiny_model, tmp_path):
    p = save_official(tiny_model.state_dict(), tiny_model.config, tmp_path / "sam3.pt")
    sd = torch.load(p)
    k = "detector.backbone.vision_backbone.trunk.blocks.0.attn.freqs_cis"
    sd[k] = sd[k] * 1j
    torch.save(sd, p)
    # the values differ, not the shape: the message says so, with the largest difference
    with pytest.raises(CheckpointError, match=r"RoPE table has the expected shape \[16, 16\] but other values .*"
                                              r"max difference 1\.41") as e:
        sam3kit.load(p)
    assert "got shape" not in str(e.value)
    sd[k] = sd[k][:8]
    torch.save(sd, p)
    with pytest.raises(CheckpointError, match=r"RoPE table has shape \[8, 16\], but the configuration .* gives "
                                              r"\[16, 16\]"):
        sam3kit.load(p)


# ---------------------------------------------------------------- the tracker's two Gaussian matrices
PROMPT_GAUSSIAN = "tracker_model.prompt_encoder.shared_embedding.positional_embedding"
IMAGE_GAUSSIAN = "tracker_model.shared_image_embedding.positional_embedding"


def test_hf_gaussian_copies_load_each_into_its_own_buffer(tiny_model, tmp_path):
    """Two different copies (as transformers saves a freshly initialised model) load as they are and save back."""
    d = _hf_dir(tiny_model, tmp_path, lambda sd: sd[IMAGE_GAUSSIAN].add_(1))
    m = sam3kit.load(d)
    state = m.state_dict()
    assert torch.equal(state[PROMPT_GAUSSIAN], tiny_model.state_dict()[PROMPT_GAUSSIAN])
    assert torch.equal(state[IMAGE_GAUSSIAN], tiny_model.state_dict()[IMAGE_GAUSSIAN] + 1)
    save_hf(state, m.config, tmp_path / "again")
    _same_state(m, sam3kit.load(tmp_path / "again"))
    with pytest.raises(CheckpointError, match="official sam3.pt layout holds one tensor.*Hugging Face layout"):
        save_official(state, m.config, tmp_path / "off" / "sam3.pt")
    assert not (tmp_path / "off" / "sam3.pt").exists()


def test_official_gaussian_fills_both_buffers(tiny_model, tmp_path):
    save_official(tiny_model.state_dict(), tiny_model.config, tmp_path / "sam3.pt")
    assert "tracker.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix" in torch.load(tmp_path / "sam3.pt")
    state = sam3kit.load(tmp_path / "sam3.pt").state_dict()
    assert torch.equal(state[IMAGE_GAUSSIAN], state[PROMPT_GAUSSIAN])
    assert torch.equal(state[PROMPT_GAUSSIAN], tiny_model.state_dict()[PROMPT_GAUSSIAN])


def test_built_tracker_holds_one_matrix_until_loaded():
    """A new tracker holds the prompt encoder's matrix under both names (the official model's one matrix);
    ``load_state_dict`` gives each name its own values."""
    t = Sam3Model(Sam3Config.tiny()).tracker_model
    assert t.shared_image_embedding.positional_embedding is t.prompt_encoder.shared_embedding.positional_embedding
    sd = t.state_dict()
    sd["shared_image_embedding.positional_embedding"] = sd["shared_image_embedding.positional_embedding"] + 1
    t.load_state_dict(sd)
    assert torch.equal(t.shared_image_embedding.positional_embedding,
                       t.prompt_encoder.shared_embedding.positional_embedding + 1)


def test_bad_image_size_is_an_input_error(tiny_model, tmp_path):
    save_hf(tiny_model.state_dict(), tiny_model.config, tmp_path)
    with pytest.raises(InputError, match="multiple of patch_size x window_size = 56"):
        sam3kit.load(tmp_path, image_size=100)


def test_empty_directory_and_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="holds no SAM 3 weights"):
        sam3kit.load(tmp_path)
    with pytest.raises(CheckpointError, match="no such file"):
        sam3kit.load(tmp_path / "nothing" / "here.pt")
    (tmp_path / "w.onnx").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unknown checkpoint type"):
        sam3kit.load(tmp_path / "w.onnx")


# ---------------------------------------------------------------- the Hub path (no network: the client is stubbed)
def test_hub_id_downloads_the_needed_files(tiny_model, tmp_path, monkeypatch):
    import huggingface_hub

    save_hf(tiny_model.state_dict(), tiny_model.config, tmp_path / "snap")
    calls = {}

    def fake_snapshot_download(repo_id, **kw):
        calls.update(kw, repo_id=repo_id)
        return str(tmp_path / "snap")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    m = sam3kit.load("facebook/sam3", token="hf_xyz")
    _same_state(tiny_model, m)
    assert calls["repo_id"] == "facebook/sam3" and calls["token"] == "hf_xyz"
    assert "model.safetensors" in calls["allow_patterns"] and "tokenizer.json" in calls["allow_patterns"]
    assert not any(p.endswith(".pt") for p in calls["allow_patterns"])  # not the 3.4 GB duplicate


def test_hub_offline_error_says_what_to_do(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError, match="unreachable.*hf download facebook/sam3"):
        sam3kit.load("facebook/sam3")


def test_gated_error_says_what_to_do(monkeypatch):
    import httpx2
    import huggingface_hub
    from huggingface_hub import errors

    def gated(repo_id, **kw):
        raise errors.GatedRepoError("gated", response=httpx2.Response(403, request=httpx2.Request("GET", "https://x")))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", gated)
    with pytest.raises(CheckpointError, match="gated.*accept its license.*HF_TOKEN"):
        sam3kit.load("facebook/sam3")


# ---------------------------------------------------------------- no config.json: the released architecture assumed
def test_official_pt_without_config_says_the_released_architecture_was_assumed(tiny_model, tmp_path):
    p = save_official(tiny_model.state_dict(), tiny_model.config, tmp_path / "sam3.pt", with_config=False)
    with pytest.raises(CheckpointError) as e:
        sam3kit.load(p)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{p} (official sam3.pt layout): no config.json found, so the released SAM 3 "
                          "architecture was assumed")
    assert "probably not the released size: put its config.json beside the weights" in msg
    details = e.value.details
    assert len(details) == len(set(details))  # each tensor of the file once
    # the fused q/k/v tensor of a ViT block is one tensor of the file: one line, not one per q, k and v
    qkv = "'detector.backbone.vision_backbone.trunk.blocks.0.attn.qkv.weight'"
    assert sum(qkv in d for d in details) == 1
    assert any(d.startswith(f"tensor {qkv} has wrong shape: got [192, 64], expected [3072, 1024]") for d in details)
    assert any(d.startswith("... and ") for d in details)  # at most 20 lines per kind
    # the same checkpoint with its config.json loads
    save_official(tiny_model.state_dict(), tiny_model.config, p)
    _same_state(tiny_model, sam3kit.load(p))


def test_directory_without_config_says_so(tiny_model, tmp_path):
    save_hf(tiny_model.state_dict(), tiny_model.config, tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"Hugging Face layout\): no config\.json found, so the released SAM 3 "
                                              r"architecture was assumed.*probably not the released size"):
        sam3kit.load(tmp_path)


def test_missing_fused_tensor_is_listed_once(tiny_model, tmp_path):
    p = save_official(tiny_model.state_dict(), tiny_model.config, tmp_path / "sam3.pt")
    sd = torch.load(p)
    k = "detector.transformer.decoder.layers.0.self_attn.in_proj_weight"
    del sd[k]
    torch.save(sd, p)
    with pytest.raises(CheckpointError, match=rf"do not match .*config\.json: missing: {re.escape(k)}\.") as e:
        sam3kit.load(p)
    assert e.value.details == (f"missing: {k}",)


# ---------------------------------------------------------------- non-finite weights
def test_nan_weights_are_refused_naming_the_tensor(tiny_model, tmp_path):
    k = "detector_model.detr_decoder.query_embed.weight"
    d = _hf_dir(tiny_model, tmp_path, lambda sd: sd[k].__setitem__((3, 5), float("nan")))
    with pytest.raises(CheckpointError, match=rf"tensor '{re.escape(k)}' of the checkpoint holds NaN or infinite "
                                              "values") as e:
        sam3kit.load(d)
    assert e.value.details == (f"non-finite: {k}",) and "\n" not in str(e.value)


def test_infinite_weights_are_refused_under_the_official_name(tiny_model, tmp_path):
    p = save_official(tiny_model.state_dict(), tiny_model.config, tmp_path / "sam3.pt")
    sd = torch.load(p)
    k = "detector.backbone.vision_backbone.trunk.blocks.1.attn.qkv.weight"  # fused: the k part gets the inf
    sd[k][70, 3] = float("inf")
    torch.save(sd, p)
    with pytest.raises(CheckpointError, match=rf"tensor '{re.escape(k)}' of the checkpoint holds NaN"):
        sam3kit.load(p)
    with pytest.raises(CheckpointError, match=rf"tensor '{re.escape(k)}' of the checkpoint holds NaN"):
        sam3kit.load(p, dtype="bf16")


def test_finite_check_is_exact():
    from sam3kit.weights.values import nonfinite_tensors

    state = {"big": torch.full((4,), 3e38),  # finite, but its float32 sum overflows: confirmed element-wise
             "half": torch.full((8,), 60000.0, dtype=torch.float16),  # summed in float32: no overflow
             "nan": torch.tensor([1.0, float("nan")]), "ninf": torch.tensor([-float("inf"), 0.0]),
             "both": torch.tensor([float("inf"), -float("inf")]), "ints": torch.tensor([1, 2]),
             "empty": torch.zeros(0), "complex": torch.tensor([1 + 1j, complex("nan")], dtype=torch.complex64)}
    assert nonfinite_tensors(state) == ["nan", "ninf", "both", "complex"]


# ---------------------------------------------------------------- a refused pickle
def test_pickled_objects_are_refused_in_one_line(tiny_model, tmp_path):
    import argparse

    p = save_official(tiny_model.state_dict(), tiny_model.config, tmp_path / "sam3.pt")
    sd = torch.load(p)
    torch.save({"model": sd, "args": argparse.Namespace(lr=0.1)}, p)
    with pytest.raises(CheckpointError, match=r"holds pickled Python objects besides tensors \(argparse\.Namespace\), "
                                              r"which sam3kit refuses to unpickle") as e:
        sam3kit.load(p)
    msg = str(e.value)
    assert "\n" not in msg and "\x1b" not in msg
    assert e.value.details and not any("\x1b" in d or "\n" in d for d in e.value.details)


# ---------------------------------------------------------------- a mistyped local path that reads as a Hub id
def test_mistyped_path_says_no_local_path_then_what_the_hub_said(tmp_path, monkeypatch):
    import httpx2
    import huggingface_hub
    from huggingface_hub import errors

    def not_found(repo_id, **kw):
        response = httpx2.Response(404, request=httpx2.Request("GET", "https://x"))
        raise errors.RepositoryNotFoundError("404", response=response)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_found)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as e:
        sam3kit.load("ckpts/sam3")
    assert str(e.value).startswith("ckpts/sam3: no such local file or folder; as a Hugging Face Hub id: ckpts/sam3 "
                                   "was not found on the Hugging Face Hub")


# ---------------------------------------------------------------- the content fingerprint
def test_fingerprint_follows_the_content_not_the_path(tiny_model, tmp_path):
    import os
    import shutil

    from sam3kit.weights.fingerprint import checkpoint_fingerprint

    a = tmp_path / "a"
    save_hf(tiny_model.state_dict(), tiny_model.config, a)
    fp = sam3kit.load(a).fingerprint
    assert not fp.startswith("mem-") and fp == checkpoint_fingerprint(a)
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    os.utime(b / "model.safetensors", ns=(1, 1))  # touched
    assert sam3kit.load(b).fingerprint == fp
    assert sam3kit.load(b / "model.safetensors").fingerprint == fp  # the folder or its file: the same weights
    other = randomize_(Sam3Model(tiny_model.config).eval(), seed=4)
    save_hf(other.state_dict(), other.config, b)
    assert sam3kit.load(b).fingerprint != fp
    assert sam3kit.load(a, image_size=56).fingerprint == checkpoint_fingerprint(a, image_size=56) != fp
    p = save_official(tiny_model.state_dict(), tiny_model.config, tmp_path / "off" / "sam3.pt")
    q = tmp_path / "off2" / "renamed.pt"
    q.parent.mkdir()
    shutil.copy(p, q)
    shutil.copy(p.parent / "config.json", q.parent / "config.json")
    assert sam3kit.load(q).fingerprint == sam3kit.load(p).fingerprint


# ---------------------------------------------------------------- device="auto"
def test_auto_device(tiny_model, tmp_path):
    from sam3kit.loading import resolve_device

    save_hf(tiny_model.state_dict(), tiny_model.config, tmp_path)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == expected and resolve_device(torch.device("cpu")) == "cpu"
    assert sam3kit.load(tmp_path, device="auto").device.type == expected
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        sam3kit.load(tmp_path, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available here"):
            sam3kit.load(tmp_path, device="cuda")
