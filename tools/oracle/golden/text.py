"""Case c: the official tokenizer's ids for five prompts, and the text features of "a cat"."""
from __future__ import annotations

from .builder import T
from .inputs import TEXT_PROMPTS
from .recording import tensor_copy

FAMILIES = {
    "c": dict(
        description="Text: ids = model.backbone.language_backbone.tokenizer(c_prompts, context_length=32) (official "
                    "SimpleTokenizer, CLIP BPE, pad 0, truncation forces the last id to 49407); features: "
                    "model.backbone.forward_text(['a cat'], device='cpu').",
        fields={
            "c_prompts": "list of 5 str: 'a cat', 'Yellow School Bus', '&amp; tom\\'s 12 dogs' (official unescapes "
                         "HTML entities), 'visual', a 60-word sentence (truncated to 32 tokens)",
            "c_token_ids": "int64 (5,32)",
            "c_a_cat_language_features": "float32 (32,1,64) seq-first, after the resizer (Linear 16->64), all 32 "
                                         "positions (padding positions included)",
            "c_a_cat_language_mask": "bool (1,32), True = padding (ids == 0)",
            "c_a_cat_language_embeds": "float32 (32,1,16) token embeddings before the text transformer (seq-first)",
        }),
}


def run(model, proc, imgs, cases):
    """Adds the c entries to ``cases``."""
    tok = model.backbone.language_backbone.tokenizer
    cases["c_prompts"] = list(TEXT_PROMPTS)
    cases["c_token_ids"] = tensor_copy(tok(TEXT_PROMPTS, context_length=T["text_context"]))
    to = model.backbone.forward_text(["a cat"], device="cpu")
    cases["c_a_cat_language_features"] = tensor_copy(to["language_features"])  # (32, 1, 64)
    cases["c_a_cat_language_mask"] = tensor_copy(to["language_mask"])          # (1, 32) True = padding
    cases["c_a_cat_language_embeds"] = tensor_copy(to["language_embeds"])      # (32, 1, 32) token embeddings
