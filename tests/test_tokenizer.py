"""Tokenizer: official ids (frozen golden file), agreement with transformers' CLIPTokenizer where the two agree,
and the documented official differences (HTML unescaping, pad id 0, ``ids == 0`` padding mask, literal specials).

The tokenizer files are written from the standard CLIP BPE vocabulary exactly as facebook/sam3 ships them
(``fixtures/tokenizer_files.py``); ``fixtures/official_token_ids.json`` holds ids produced by the official
``SimpleTokenizer`` (regenerate with ``fixtures/make_official_token_ids.py``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from fixtures.tokenizer_files import write_sam3_tokenizer_files
from sam3kit.errors import CheckpointError, InputError
from sam3kit.tokenizer import Sam3Tokenizer, clean_text

transformers = pytest.importorskip("transformers")

GOLDEN = Path(__file__).parent / "fixtures" / "official_token_ids.json"
SOT, EOT = 49406, 49407


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    return write_sam3_tokenizer_files(tmp_path_factory.mktemp("sam3_tokenizer"))


@pytest.fixture(scope="module")
def tok(tok_dir) -> Sam3Tokenizer:
    return Sam3Tokenizer.from_dir(tok_dir)


@pytest.fixture(scope="module")
def hf_tok(tok_dir):
    return transformers.CLIPTokenizer.from_pretrained(str(tok_dir))


def _golden() -> list[dict]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))["cases"]


def test_matches_official_golden_ids(tok):
    cases = _golden()
    ids, mask = tok([c["text"] for c in cases])
    expected = torch.tensor([c["ids"] for c in cases])
    bad = [c["text"] for c, a, b in zip(cases, ids, expected) if not torch.equal(a, b)]
    assert not bad, f"ids differ from the official tokenizer for {bad}"
    assert torch.equal(mask, expected == 0)  # the official model's mask: ids != 0 are valid


def test_vocab_merges_fallback_matches_tokenizer_json(tok, tmp_path):
    fallback = Sam3Tokenizer.from_dir(write_sam3_tokenizer_files(tmp_path, with_tokenizer_json=False))
    texts = [c["text"] for c in _golden()]
    a, b = tok(texts), fallback(texts)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


AGREE = ["a cat", "Yellow School Bus", "person in red shirt, holding a cup!", "  multiple   spaces\tand\ttabs ",
         "café crème brûlée", "the dog's toy", "12 apples", "don't", "NVIDIA H100 GPU", "😀 smiley",
         "日本語のテキスト", "I'M HERE", "striped umbrella on the beach", "x" * 200 + " long",
         " ".join(["word"] * 40)]


def test_agrees_with_transformers_clip_tokenizer(tok, hf_tok):
    ids, mask = tok(AGREE)
    for i, text in enumerate(AGREE):
        h = hf_tok(text, padding="max_length", max_length=32, truncation=True)
        hf_valid = [t for t, m in zip(h["input_ids"], h["attention_mask"]) if m]
        assert ids[i][~mask[i]].tolist() == hf_valid, text
        assert ids[i][mask[i]].eq(0).all()  # official pad id 0 (HF pads with 49407)


def test_html_entities_are_unescaped_twice(tok, hf_tok):
    ids, _ = tok(["fish &amp; chips", "fish &amp;amp; chips"])
    plain = hf_tok("fish & chips")["input_ids"]  # HF does not unescape
    assert ids[0][: len(plain)].tolist() == plain
    assert ids[1][: len(plain)].tolist() == plain
    assert hf_tok("fish &amp; chips")["input_ids"] != plain


def test_lowercasing_is_pythons(tok, hf_tok):
    # official: str.lower() (final sigma -> "ς"); HF's Rust Lowercase maps every "Σ" to "σ"
    assert clean_text("ΣΊΣΥΦΟΣ") == "σίσυφος"
    assert tok.encode("ΣΊΣΥΦΟΣ") == tok.encode("σίσυφος") != hf_tok("σίσυφοσ", add_special_tokens=False)["input_ids"]
    assert hf_tok("ΣΊΣΥΦΟΣ", add_special_tokens=False)["input_ids"] == hf_tok("σίσυφοσ", add_special_tokens=False)[
        "input_ids"]


def test_truncation_keeps_31_ids_and_ends_with_eot(tok, caplog):
    text = " ".join(["word"] * 40)
    full = tok.encode(text)
    assert tok.num_tokens(text) == 42
    with caplog.at_level(logging.WARNING, logger="sam3kit.tokenizer"):
        ids, mask = tok([text, "a cat"])
    assert ids[0].tolist() == [SOT] + full[:30] + [EOT]
    assert not mask[0].any()
    assert "42 tokens" in caplog.text
    with pytest.raises(InputError, match="42 tokens"):
        tok([text], truncate=False)
    # exactly 32 is not truncated
    fits = " ".join(["word"] * 30)
    assert tok.num_tokens(fits) == 32
    assert tok([fits], truncate=False)[0][0, -1].item() == EOT


def test_padding_mask_is_ids_equal_zero(tok):
    # a non-word-final "!" is id 0: the official model masks it like padding (HF's attention mask does not)
    ids, mask = tok(["wow!😀", "a cat"])
    assert ids[0, :5].tolist() == [SOT, 2781, 0, 7334, EOT]
    assert mask[0].tolist()[:5] == [False, False, True, False, False]
    assert mask[1].tolist() == [False] * 4 + [True] * 28
    assert ids.dtype == torch.int64 and mask.dtype == torch.bool and ids.shape == mask.shape == (2, 32)


def test_official_special_strings(tok):
    ids, _ = tok(["<start_of_text> hi <END_OF_TEXT>"])
    assert ids[0, :5].tolist() == [SOT, SOT, tok.encode("hi")[0], EOT, EOT]
    # the files' own special strings are ordinary text for the official tokenizer
    assert EOT not in tok.encode("<|endoftext|>")


def test_cleaning():
    assert clean_text("  Hello\t\tWORLD \n") == "hello world"
    assert clean_text("&amp;lt;") == "<"
    assert clean_text("mojibake: Ã©") == "mojibake: é"


@pytest.mark.parametrize("bad", ["", "   ", "\t\n", "&#32;"])
def test_rejects_empty_text(tok, bad):
    with pytest.raises(InputError, match="empty"):
        tok([bad])


@pytest.mark.parametrize("bad", [[None], [3], [b"cat"], ["ok", 1.5]])
def test_rejects_non_str(tok, bad):
    with pytest.raises(InputError, match="must be a str"):
        tok(bad)


def test_single_string_and_empty_batch(tok):
    assert torch.equal(tok("a cat")[0], tok(["a cat"])[0])
    with pytest.raises(InputError):
        tok([])


def test_missing_or_broken_files(tmp_path):
    with pytest.raises(CheckpointError, match="tokenizer.json"):
        Sam3Tokenizer.from_dir(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read"):
        Sam3Tokenizer.from_dir(tmp_path)


def test_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="context_length must be an int of at least 2"):
        Sam3Tokenizer.default(context_length=1)
    with pytest.raises(InputError, match="give tokenizer_json, or both vocab and merges"):
        Sam3Tokenizer.from_files(vocab="vocab.json")
