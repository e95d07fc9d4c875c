"""Text prompts: the padding columns are cut on the CPU before the model; encodings are kept per prompt."""

from __future__ import annotations

import pytest
import torch

from sam3kit.config import Sam3Config
from sam3kit.errors import InputError
from sam3kit.model.sam3 import Sam3Model
from sam3kit.pipelines.text import TextFeatureCache, quote_text, trim_padding
from sam3kit.tokenizer import Sam3Tokenizer

from fixtures.tokenizer_files import write_sam3_tokenizer_files
from fixtures.weights import randomize_


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return Sam3Tokenizer.from_dir(write_sam3_tokenizer_files(tmp_path_factory.mktemp("tok")))


@pytest.fixture(scope="module")
def model():
    return randomize_(Sam3Model(Sam3Config.tiny()).eval(), seed=31)


@pytest.mark.parametrize("pad, n", [
    ([[False, False, True, True, True]], 2),
    ([[False, True, False, True, True]], 3),  # a padding id inside the text (the rare "!" token): kept
    ([[False, False, True, True], [False, False, False, True]], 3),  # the longest row of the batch
    ([[True, True, True]], 1),
    ([[False, False, False]], 3),
])
def test_trim_padding(pad, n):
    pad = torch.tensor(pad)
    ids = torch.arange(pad.numel()).view(pad.shape)
    ti, tp = trim_padding(ids, pad)
    assert ti.shape == tp.shape == (pad.shape[0], n)
    assert torch.equal(ti, ids[:, :n]) and torch.equal(tp, pad[:, :n])


def test_cache_encodes_a_prompt_once_and_trims(model, tokenizer):
    texts = TextFeatureCache(model, tokenizer, max_items=2)
    calls = []
    h = model.detector_model.text_encoder.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape))
    try:
        a = texts.get("a cat")
        assert texts.get("a cat") is a
        texts.get("a dog")
        texts.get("a bird")  # evicts "a cat"
        texts.get("a cat")
    finally:
        h.remove()
    ids, pad = tokenizer(["a cat"])
    n = int((~pad[0]).nonzero().max()) + 1
    assert len(calls) == 4 and calls[0] == (1, n)  # only the real tokens reach the model
    assert a.features.shape[:2] == (1, n) and not a.padding_mask.any()
    with torch.inference_mode():
        full = model.encode_text(ids, pad)
    torch.testing.assert_close(a.features[0], full.features[0, :n], rtol=0, atol=1e-6)


def test_tokenizer_defaults(model, tokenizer):
    assert TextFeatureCache(model, tokenizer).tokenizer is tokenizer
    model.tokenizer = tokenizer
    try:
        assert TextFeatureCache(model).tokenizer is tokenizer
    finally:
        model.tokenizer = None
    assert isinstance(TextFeatureCache(model).tokenizer, Sam3Tokenizer)  # the bundled vocabulary


def test_overlong_prompt_is_an_error(model, tokenizer):
    with pytest.raises(InputError, match="tokens long"):
        TextFeatureCache(model, tokenizer).get(" ".join(["word"] * 40))


def test_overlong_prompt_error_quotes_a_prefix_and_names_the_option(model, tokenizer):
    """Defect 5: the error quotes the first 40 characters and the length, and names the truncation it offers."""
    text = " ".join(["word"] * 40) + " the-end"
    with pytest.raises(InputError) as e:
        TextFeatureCache(model, tokenizer).check(text)
    msg = str(e.value)
    assert repr(text[:40] + "…") in msg and "the-end" not in msg
    assert f"is {tokenizer.num_tokens(text)} tokens long, the model reads at most 32" in msg
    assert "truncate_text=True" in msg and "--truncate-text" in msg
    assert quote_text("short") == "'short'"


def test_truncation_on_request(model, tokenizer, caplog):
    """With truncate=True the prompt is cut as the official tokenizer cuts it (its first 31 ids, then the end id),
    with a warning; a cached cut prompt is still refused to a later call that does not allow the cut."""
    text = " ".join(["word"] * 40)
    texts = TextFeatureCache(model, tokenizer)
    with caplog.at_level("WARNING"):
        cut = texts.get(text, truncate=True)
    assert "only the first 32 are used" in caplog.text
    ids, pad = tokenizer([text], truncate=True)
    assert ids.shape == (1, 32) and not pad.any()
    with torch.inference_mode():
        full = model.encode_text(ids, pad)
    torch.testing.assert_close(cut.features, full.features, rtol=0, atol=1e-6)
    assert texts.get(text, truncate=True) is cut  # cached
    with pytest.raises(InputError, match="tokens long"):
        texts.get(text)
    assert texts.get("a cat") is texts.get("a cat", truncate=True)  # a prompt that fits: either way
