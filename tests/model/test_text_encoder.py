"""Text encoder: parity with transformers ``CLIPTextModelWithProjection`` (``Sam3Model.text_encoder``), key names.

Official semantics: no padding mask inside the transformer, only the causal mask. HF additionally applies the
attention mask, which changes only the states at padding positions; so valid tokens are compared against HF
given the attention mask, and all tokens against HF given no attention mask.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fixtures.weights import randomize_
from fixtures.hf_keys import collapsed_patterns, released_patterns
from sam3kit.config import Sam3Config
from sam3kit.errors import InputError
from sam3kit.model.text import TextEncoder

transformers = pytest.importorskip("transformers")

TOL = 1e-4


def _ours(seed: int) -> TextEncoder:
    cfg = dataclasses.replace(Sam3Config.tiny().detector.text, num_layers=2)
    ours = randomize_(TextEncoder(cfg), seed)
    with torch.no_grad():  # peaked attention so that the causal mask matters
        for name, p in ours.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                p.mul_(8.0)
    return ours.eval()


def _reference(ours: TextEncoder):
    hf_cfg = dict(Sam3Config.tiny().to_hf_dict()["detector_config"]["text_config"], num_hidden_layers=2)
    ref = transformers.CLIPTextModelWithProjection(transformers.CLIPTextConfig(**hf_cfg)).eval()
    # the one allowed rename: our Attention's o_proj is the checkpoint's out_proj
    state = {k.replace(".self_attn.o_proj.", ".self_attn.out_proj."): v for k, v in ours.state_dict().items()}
    ref.load_state_dict(state, strict=True)
    return ref


def _ids(seed: int, lengths: list[int], context: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), context, dtype=torch.int64)
    for i, n in enumerate(lengths):
        ids[i, 0] = 49406
        ids[i, 1:n - 1] = torch.randint(0, 49406, (n - 2,), generator=g)
        ids[i, n - 1] = 49407
    valid = torch.arange(context)[None] < torch.tensor(lengths)[:, None]
    return ids, valid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_text_encoder_matches_transformers(seed):
    ours = _ours(seed)
    ref = _reference(ours)
    ids, valid = _ids(seed, [7, 32])
    with torch.no_grad():
        out = ours(ids)
        with_mask = ref(input_ids=ids, attention_mask=valid.long()).last_hidden_state
        causal_only = ref(input_ids=ids).last_hidden_state
    assert out.shape == (2, 32, 32)
    d_valid = (out - with_mask)[valid].abs().max().item()
    d_all = (out - causal_only).abs().max().item()
    print(f"text seed {seed}: valid tokens {d_valid:.3e}, all tokens (causal only) {d_all:.3e} "
          f"(max |out| {out.abs().max():.2f})")
    assert d_valid <= TOL and d_all <= TOL, (d_valid, d_all)


def test_text_encoder_shorter_sequences_and_padding_independence():
    ours = _ours(0)
    ids, _ = _ids(3, [6], context=32)
    with torch.no_grad():
        full = ours(ids)
        short = ours(ids[:, :6])
        other_pad = ours(torch.cat([ids[:, :6], torch.full((1, 26), 49407)], dim=1))
    assert torch.allclose(full[:, :6], short, atol=1e-6)
    assert torch.allclose(full[:, :6], other_pad[:, :6], atol=1e-6)


def test_text_encoder_rejects_bad_input():
    ours = _ours(0)
    with pytest.raises(InputError, match="at most 32"):
        ours(torch.zeros(1, 33, dtype=torch.int64))
    with pytest.raises(InputError, match="integer"):
        ours(torch.zeros(1, 4))


def test_released_text_encoder_keys_and_shapes():
    with torch.device("meta"):
        enc = TextEncoder(Sam3Config.released().detector.text)
    state = {k.replace(".self_attn.o_proj.", ".self_attn.out_proj."): v for k, v in enc.state_dict().items()}
    assert collapsed_patterns(state) == released_patterns("detector_model.text_encoder.")
