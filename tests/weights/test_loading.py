"""Strict loading of the two released layouts (tiny checkpoints written by the tests in the released formats)."""

from __future__ import annotations

import json

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
    with pytest.raises(CheckpointError, match=r"1 missing:\n    detector_model\.detr_decoder\.query_embed\.weight"):
        sam3kit.load(d)


def test_unexpected_and_renamed_tensors_are_refused(tiny_model, tmp_path):
    def rename(sd):
        sd["detector_model.detr_decoder.query_embedding.weight"] = sd.pop("detector_model.detr_decoder.query_embed.weight")
        sd["extra.tensor"] = torch.zeros(3)
    d = _hf_dir(tiny_model, tmp_path, rename)
    with pytest.raises(CheckpointError) as e:
        sam3kit.load(d)
    msg = str(e.value)
    assert "1 missing" in msg and "query_embed.weight" in msg
    assert "2 unexpected" in msg and "extra.tensor" in msg and "query_embedding.weight" in msg
    assert "Nothing was loaded" in msg


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
    with pytest.raises(CheckpointError, match="RoPE table does not match"):
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
